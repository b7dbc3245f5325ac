/**
 * The proxy's Prometheus metrics (prom-client, one registry per proxy so tests can build several)
 * and the small HTTP server that exposes them with the health check. Names start with
 * `doltgate_proxy_` (process metrics `doltgate_proxy_process_`); every series carries the
 * `cluster` label. Label values are small closed sets chosen by the proxy (route, command name,
 * backend node name, error kind) — never SQL text or client addresses, which would explode the
 * number of series.
 *
 * HTTP: `GET /metrics` (Prometheus text format), `GET /healthz` (JSON `{ ok, detail }`, 200 when
 * ok, else 503 — a load balancer takes the proxy out of rotation on 503). Anything else is 404.
 */

import * as http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds; the proxy's own overhead is sub-millisecond, queries may take seconds. */
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly clientConnections: Gauge;
  readonly connectionsRejected: Counter<'reason'>;
  readonly queries: Counter<'route' | 'command'>;
  readonly queryLatency: Histogram<'route'>;
  readonly heldWrites: Gauge;
  readonly holdTimeouts: Counter;
  readonly topologyEpoch: Gauge;
  readonly backendUp: Gauge<'backend' | 'role'>;
  readonly errors: Counter<'kind'>;
  readonly etcdReachable: Gauge;

  constructor(labels: { cluster: string }) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry, prefix: 'doltgate_proxy_process_' });
    const registers = [this.registry];
    this.clientConnections = new Gauge({
      name: 'doltgate_proxy_client_connections',
      help: 'Client connections open on the proxy now',
      registers,
    });
    this.connectionsRejected = new Counter({
      name: 'doltgate_proxy_connections_rejected_total',
      help: 'Client connections refused, by reason (too many connections, auth failed, handshake error, ...)',
      labelNames: ['reason'],
      registers,
    });
    this.queries = new Counter({
      name: 'doltgate_proxy_queries_total',
      help: 'Client commands forwarded, by route (primary, replica) and command (query, execute, ...)',
      labelNames: ['route', 'command'],
      registers,
    });
    this.queryLatency = new Histogram({
      name: 'doltgate_proxy_query_duration_seconds',
      help: 'Time from a client command to the end of its response, as the client sees it, by route',
      labelNames: ['route'],
      buckets: latencyBuckets,
      registers,
    });
    this.heldWrites = new Gauge({
      name: 'doltgate_proxy_held_writes',
      help: 'Writes waiting in the write hold now (the cluster has no primary)',
      registers,
    });
    this.holdTimeouts = new Counter({
      name: 'doltgate_proxy_hold_timeouts_total',
      help: 'Held writes that failed because no primary appeared within the hold timeout (they were not executed)',
      registers,
    });
    this.topologyEpoch = new Gauge({
      name: 'doltgate_proxy_topology_epoch',
      help: 'Epoch of the topology the proxy routes by (0 before the first)',
      registers,
    });
    this.backendUp = new Gauge({
      name: 'doltgate_proxy_backend_up',
      help: '1 when the proxy can reach the backend Dolt server, by backend node name and role',
      labelNames: ['backend', 'role'],
      registers,
    });
    this.errors = new Counter({
      name: 'doltgate_proxy_errors_total',
      help: 'Errors the proxy sent to clients or saw on backends, by kind (the error code)',
      labelNames: ['kind'],
      registers,
    });
    this.etcdReachable = new Gauge({
      name: 'doltgate_proxy_etcd_reachable',
      help: '1 while the topology watch on etcd is connected and reads succeed',
      registers,
    });
  }
}

export interface HealthReport {
  ok: boolean;
  detail: unknown;
}

function pathOf(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0];
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

function handle(metrics: ProxyMetrics, health: () => HealthReport, request: http.IncomingMessage, response: http.ServerResponse): void {
  const path = pathOf(request.url);
  if (path !== '/metrics' && path !== '/healthz') {
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('not found: try /metrics or /healthz\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
    response.end('method not allowed: use GET\n');
    return;
  }
  if (path === '/metrics') {
    metrics.registry.metrics().then(
      (body) => {
        response.writeHead(200, { 'content-type': metrics.registry.contentType });
        response.end(body);
      },
      (error: Error) => {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.end(`could not collect metrics: ${error.message}\n`);
      },
    );
    return;
  }
  let report: HealthReport;
  try {
    report = health();
  } catch (error) {
    // A health callback that throws is itself a reason to leave the load balancer's rotation.
    report = { ok: false, detail: { error: error instanceof Error ? error.message : String(error) } };
  }
  response.writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  response.end(JSON.stringify({ ok: report.ok, detail: report.detail }) + '\n');
}

/** Listens on host:port (0 picks a free port: read `server.address()`); resolves once listening. */
export function serveProxyHttp(metrics: ProxyMetrics, host: string, port: number, health: () => HealthReport): Promise<http.Server> {
  const server = http.createServer((request, response) => handle(metrics, health, request, response));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
