/**
 * The proxy's metrics: every metric the proxy promises is in the registry under its documented
 * name with the cluster label, process metrics carry the proxy prefix, and the HTTP server on
 * 127.0.0.1 answers /metrics, /healthz (200 when healthy, 503 otherwise) and 404 elsewhere.
 */

import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, Registry } from 'prom-client';
import { ProxyMetrics, serveProxyHttp } from '../../proxy/proxy-metrics';

const names = [
  'doltgate_proxy_client_connections',
  'doltgate_proxy_connections_rejected_total',
  'doltgate_proxy_queries_total',
  'doltgate_proxy_query_duration_seconds',
  'doltgate_proxy_held_writes',
  'doltgate_proxy_hold_timeouts_total',
  'doltgate_proxy_hold_cutoffs_total',
  'doltgate_proxy_hold_writes_total',
  'doltgate_proxy_topology_epoch',
  'doltgate_proxy_backend_up',
  'doltgate_proxy_errors_total',
  'doltgate_proxy_etcd_reachable',
];

async function get(server: Server, path: string, method = 'GET'): Promise<{ status: number; type: string | null; body: string }> {
  const { port } = server.address() as AddressInfo;
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
}

describe('proxy metrics', () => {
  it('the registry holds every metric by name, with help text and the cluster label', async () => {
    const metrics = new ProxyMetrics({ cluster: 'c1' });
    metrics.clientConnections.inc();
    metrics.connectionsRejected.inc({ reason: 'too_many_connections' });
    metrics.queries.inc({ route: 'primary', command: 'query' });
    metrics.queryLatency.observe({ route: 'replica' }, 0.002);
    metrics.heldWrites.set(3);
    metrics.holdTimeouts.inc();
    metrics.holdCutOffs.inc();
    metrics.observeHold(() => ({ held: 9, released: 5, timedOut: 1, cutOff: 1, aborted: 1, rejected: 4, waiting: 1 }));
    metrics.topologyEpoch.set(7);
    metrics.backendUp.set({ backend: 'n1', role: 'primary' }, 1);
    metrics.errors.inc({ kind: 'HOLD_TIMEOUT' });
    metrics.etcdReachable.set(1);
    const text = await metrics.registry.metrics();
    for (const name of names) {
      expect(text, name).to.match(new RegExp(`^# HELP ${name} \\S`, 'm'));
      expect(text, name).to.match(new RegExp(`^${name}(_bucket|_sum|_count)?\\{[^}]*cluster="c1"`, 'm'));
    }
    expect(text).to.contain('doltgate_proxy_topology_epoch{cluster="c1"} 7');
    expect(text).to.contain('doltgate_proxy_hold_writes_total{outcome="held",cluster="c1"} 9');
    expect(text).to.contain('doltgate_proxy_hold_writes_total{outcome="cut_off",cluster="c1"} 1');
    expect(text).to.contain('doltgate_proxy_hold_writes_total{outcome="rejected",cluster="c1"} 4');
    expect(text).to.contain('doltgate_proxy_backend_up{backend="n1",role="primary",cluster="c1"} 1');
    // prom-client puts the prefix before its own names: process_cpu_seconds_total, nodejs_heap_..., as the agent does.
    expect(text).to.match(/^doltgate_proxy_process_process_cpu_seconds_total\{cluster="c1"\}/m);
    expect(text).to.match(/^doltgate_proxy_process_nodejs_heap_size_used_bytes\{cluster="c1"\}/m);
  });

  it('recordQuery exposes what prom-client would for the same queries (counter and histogram)', async () => {
    // The reference: prom-client's own Counter and Histogram, fed label objects per query.
    const reference = new Registry();
    reference.setDefaultLabels({ cluster: 'c1' });
    const counter = new Counter({ name: 'doltgate_proxy_queries_total', help: 'h', labelNames: ['route', 'command'], registers: [reference] });
    const histogram = new Histogram({ name: 'doltgate_proxy_query_duration_seconds', help: 'h', labelNames: ['route'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [reference] });
    const metrics = new ProxyMetrics({ cluster: 'c1' });
    const queries: Array<[string, string, number]> = [
      ['replica', 'execute', 0.0003], ['primary', 'query', 0.002], ['primary', 'execute', 12], ['replica', 'execute', 0.0005],
      ['primary', 'query', 0.0005000001], ['other-route', 'query', 0.1], ['primary', 'other-command', 1],
    ];
    const series = async (registry: Registry): Promise<string> =>
      (await registry.metrics()).split('\n').filter((line) => /^doltgate_proxy_(queries_total|query_duration_seconds)/.test(line)).join('\n');
    for (let round = 0; round < 2; round++) {
      for (const [route, command, seconds] of queries) {
        counter.inc({ route, command });
        histogram.observe({ route }, seconds);
        metrics.recordQuery(route, command, seconds);
      }
      expect(await series(metrics.registry), `round ${round}`).to.equal(await series(reference));
    }
    expect(() => metrics.queryLatency.observe({ node: 'n1' } as never, 1)).to.throw(/not included in initial labelset/);
    expect(() => metrics.queryLatency.observe({ route: 'primary' }, NaN)).to.throw(TypeError);
  });

  it('two proxies in one process keep separate registries', async () => {
    const a = new ProxyMetrics({ cluster: 'a' });
    const b = new ProxyMetrics({ cluster: 'b' });
    a.topologyEpoch.set(1);
    b.topologyEpoch.set(2);
    expect(await a.registry.metrics()).to.contain('doltgate_proxy_topology_epoch{cluster="a"} 1');
    expect(await b.registry.metrics()).to.contain('doltgate_proxy_topology_epoch{cluster="b"} 2');
  });

  describe('HTTP', () => {
    let server: Server;
    let healthy = true;
    const metrics = new ProxyMetrics({ cluster: 'web' });

    before(async () => {
      server = await serveProxyHttp(metrics, '127.0.0.1', 0, () => ({ ok: healthy, detail: { epoch: 4, primary: healthy ? 'n1' : null } }));
    });

    after(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    it('serves /metrics in the Prometheus text format', async () => {
      metrics.heldWrites.set(2);
      const response = await get(server, '/metrics');
      expect(response.status).to.equal(200);
      expect(response.type).to.contain('text/plain');
      for (const name of names) expect(response.body).to.contain(`# HELP ${name} `);
      expect(response.body).to.contain('doltgate_proxy_held_writes{cluster="web"} 2');
    });

    it('serves /healthz with 200 when healthy and 503 when not', async () => {
      healthy = true;
      const ok = await get(server, '/healthz');
      expect(ok.status).to.equal(200);
      expect(ok.type).to.equal('application/json');
      expect(JSON.parse(ok.body)).to.deep.equal({ ok: true, detail: { epoch: 4, primary: 'n1' } });
      healthy = false;
      const down = await get(server, '/healthz?verbose=1');
      expect(down.status).to.equal(503);
      expect(JSON.parse(down.body)).to.deep.equal({ ok: false, detail: { epoch: 4, primary: null } });
    });

    it('a health callback that throws answers 503 with the error', async () => {
      const failing = await serveProxyHttp(metrics, '127.0.0.1', 0, () => {
        throw new Error('router not started');
      });
      try {
        const response = await get(failing, '/healthz');
        expect(response.status).to.equal(503);
        expect(JSON.parse(response.body)).to.deep.equal({ ok: false, detail: { error: 'router not started' } });
      } finally {
        await new Promise((resolve) => failing.close(resolve));
      }
    });

    it('answers 404 for other paths and 405 for other methods', async () => {
      expect((await get(server, '/')).status).to.equal(404);
      expect((await get(server, '/metricsx')).status).to.equal(404);
      expect((await get(server, '/metrics', 'POST')).status).to.equal(405);
    });

    it('rejects when the port is taken', async () => {
      const { port } = server.address() as AddressInfo;
      let error: unknown;
      try {
        const second = await serveProxyHttp(metrics, '127.0.0.1', port, () => ({ ok: true, detail: null }));
        second.close();
      } catch (e) {
        error = e;
      }
      expect((error as { code?: string } | undefined)?.code).to.equal('EADDRINUSE');
    });
  });
});
