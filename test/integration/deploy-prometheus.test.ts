/**
 * A real Prometheus (Debian's /usr/bin/prometheus; scripts/install-deploy-tools.sh) scrapes a
 * real local cluster (etcd, Dolt nodes, agent processes; a proxy too once `doltgate proxy` runs)
 * and the doltgate metrics are found through Prometheus's HTTP API. The config is built the way
 * deploy/prometheus/prometheus.yml is (same job names) but with 1 s intervals and the sandbox's
 * targets, and it loads deploy/prometheus/doltgate-alerts.yml: every rule must evaluate against
 * the real series without error, and no alert may fire on a healthy cluster.
 *
 * Everything listens on 127.0.0.1; Prometheus is our child, stopped by PID (ManagedChild).
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ManagedChild } from '../../common/child-process';
import { freePort } from '../../common/free-port';
import type { LocalCluster } from '../../sandbox/local-cluster';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { repoRoot } from '../bed/dolt-binary';
import { eventually } from '../bed/eventually';
import { startLocalCluster } from '../bed/local-cluster';

const prometheusBinary = process.env.DOLTGATE_PROMETHEUS ?? '/usr/bin/prometheus';

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function api<T>(base: string, path: string): Promise<T> {
  const response = await fetch(`${base}${path}`);
  const body = (await response.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? response.status}`);
  return body.data;
}

async function query(base: string, promql: string): Promise<Sample[]> {
  const data = await api<{ resultType: string; result: Sample[] }>(base, `/api/v1/query?query=${encodeURIComponent(promql)}`);
  return data.result;
}

/** True when this build's `doltgate proxy` runs (it exits 3 "not built yet" before that). */
function proxyCommandBuilt(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'dist', 'bin', 'doltgate.js'), 'proxy', '--help'], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve(!error && !/not built yet/.test(`${stdout}${stderr}`));
    });
  });
}

describe('deploy/prometheus against a real cluster (real Prometheus)', function () {
  this.timeout(180_000);
  let cluster: LocalCluster;
  let base: string;
  let withProxy = false;

  before(async function () {
    this.timeout(180_000);
    cluster = await startLocalCluster({ nodes: 2 });
    withProxy = await proxyCommandBuilt();
    if (withProxy) await cluster.startProxy({ name: 'app', password: 'app-password' });

    const dir = await tempDir('prometheus');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [join(repoRoot, 'deploy', 'prometheus', 'doltgate-alerts.yml')],
      scrape_configs: [
        { job_name: 'doltgate-agent', metrics_path: '/metrics', static_configs: [{ targets: cluster.agents.map((agent) => `127.0.0.1:${agent.metricsPort}`) }] },
        ...(withProxy ? [{ job_name: 'doltgate-proxy', metrics_path: '/metrics', static_configs: [{ targets: cluster.proxies.map((proxy) => `127.0.0.1:${proxy.metricsPort}`) }] }] : []),
      ],
    };
    const configFile = join(dir, 'prometheus.yml');
    await writeFile(configFile, stringify(config));
    const prometheus = new ManagedChild({
      command: prometheusBinary,
      args: [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1h',
        // Debian's defaults point at /etc/prometheus; nothing of the web UI is needed here.
        `--web.console.templates=${dir}`,
        `--web.console.libraries=${dir}`,
      ],
      logFile: join(dir, 'prometheus.log'),
    });
    await prometheus.start();
    registerCleanup(() => prometheus.stop(10_000).then(() => undefined));
    await eventually(
      async () => {
        if (!prometheus.running) throw new Error(`prometheus exited ${JSON.stringify(prometheus.lastExit)}; see ${join(dir, 'prometheus.log')}`);
        return (await fetch(`${base}/-/ready`)).ok;
      },
      { within: 30_000, what: 'prometheus ready' },
    );
  });

  it('scrapes every agent: doltgate_agent_role shows one primary and the other node a replica', async () => {
    const primary = await cluster.waitForStablePrimary(30_000);
    const samples = await eventually(
      async () => {
        const result = await query(base, 'doltgate_agent_role == 1');
        if (result.length !== cluster.agents.length) throw new Error(`${result.length} of ${cluster.agents.length} agents scraped`);
        return result;
      },
      { within: 30_000, what: 'doltgate_agent_role of every agent in Prometheus' },
    );
    const roles = Object.fromEntries(samples.map((sample) => [sample.metric.node, sample.metric.role]));
    expect(roles[primary]).to.equal('primary');
    for (const agent of cluster.agents.filter((a) => a.name !== primary)) expect(roles[agent.name]).to.equal('replica');
    for (const sample of samples) {
      expect(sample.metric.job).to.equal('doltgate-agent');
      expect(sample.metric.cluster).to.equal(cluster.cluster);
    }
  });

  it('the series the alerts and the dashboard use are there, from the real agents', async () => {
    for (const name of ['doltgate_agent_epoch', 'doltgate_agent_dolt_healthy', 'doltgate_agent_commits_not_on_remote', 'doltgate_agent_lease_renew_seconds_count', 'doltgate_agent_etcd_reachable']) {
      await eventually(async () => (await query(base, name)).length > 0, { within: 20_000, what: `${name} scraped` });
    }
    const healthy = await query(base, 'min(doltgate_agent_dolt_healthy)');
    expect(healthy[0].value[1]).to.equal('1');
  });

  it('every doltgate alert rule evaluates against the real series without error, and none fires on a healthy cluster', async () => {
    // Rules evaluated while the cluster was still electing its first primary are rightly pending;
    // only evaluations made after Prometheus itself sees the healthy cluster may be judged.
    await eventually(
      async () => {
        const primaries = await query(base, 'sum(doltgate_agent_role{role="primary"})');
        const healthy = await query(base, 'min(doltgate_agent_dolt_healthy)');
        return primaries[0]?.value[1] === '1' && healthy[0]?.value[1] === '1';
      },
      { within: 30_000, what: 'Prometheus seeing one primary and every node healthy' },
    );
    const healthySeenAt = Date.now();
    const groups = await eventually(
      async () => {
        const data = await api<{ groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string; state?: string; lastEvaluation: string }> }> }>(base, '/api/v1/rules');
        const rules = data.groups.flatMap((group) => group.rules);
        if (rules.length === 0 || rules.some((rule) => Date.parse(rule.lastEvaluation) <= healthySeenAt)) throw new Error('not every rule has been evaluated since the cluster was seen healthy');
        return data.groups;
      },
      { within: 20_000, what: 'every rule evaluated after the cluster was seen healthy' },
    );
    const rules = groups.flatMap((group) => group.rules);
    expect(rules.map((rule) => rule.name)).to.include.members(['DoltgateNoPrimary', 'DoltgateBackupStale', 'DoltgateWriteHoldTimeouts']);
    expect(rules.filter((rule) => rule.health !== 'ok').map((rule) => `${rule.name}: ${rule.lastError}`)).to.deep.equal([]);
    const alerts = await api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>(base, '/api/v1/alerts');
    expect(alerts.alerts.map((alert) => `${alert.labels.alertname} ${alert.state}`)).to.deep.equal([]);
  });

  it('every Grafana dashboard query is valid PromQL here, and the cluster panels show the real nodes', async () => {
    const dashboard = JSON.parse(readFileSync(join(repoRoot, 'deploy', 'grafana', 'doltgate-dashboard.json'), 'utf8')) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string; refId: string }>; panels?: unknown[] }>;
      annotations: { list: Array<{ expr?: string }> };
    };
    const queries = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ where: `${panel.title} ${target.refId}`, expr: target.expr })));
    for (const annotation of dashboard.annotations.list) if (annotation.expr) queries.push({ where: 'annotation', expr: annotation.expr });
    expect(queries.length).to.be.greaterThan(20);
    // What Grafana substitutes: the cluster variable, and windows that fit 1 s scrapes.
    const substitute = (expr: string): string => expr.replaceAll('$cluster', cluster.cluster).replaceAll('$__rate_interval', '5s').replaceAll('$__range', '5m');
    const failures: string[] = [];
    const results = new Map<string, Sample[]>();
    for (const q of queries) {
      try {
        results.set(q.where, await query(base, substitute(q.expr)));
      } catch (error) {
        failures.push(`${q.where}: ${(error as Error).message}`);
      }
    }
    expect(failures).to.deep.equal([]);
    const role = await eventually(
      async () => {
        const samples = await query(base, substitute(queries.find((q) => q.where === 'Role per node A')?.expr ?? 'missing'));
        if (samples.length !== cluster.agents.length) throw new Error(`role panel shows ${samples.length} nodes`);
        return samples;
      },
      { within: 20_000, what: 'the role panel showing every node' },
    );
    const primary = await cluster.waitForStablePrimary(10_000);
    // 4 = primary, 3 = replica in the panel's value mappings.
    expect(Object.fromEntries(role.map((sample) => [sample.metric.node, sample.value[1]]))).to.deep.equal(Object.fromEntries(cluster.agents.map((agent) => [agent.name, agent.name === primary ? '4' : '3'])));
    expect(results.get('Topology epoch per node and proxy A')?.length).to.equal(cluster.agents.length);
  });

  it('scrapes the proxy: doltgate_proxy_topology_epoch is the agents\' epoch', async function () {
    if (!withProxy) {
      // Pending until bin/doltgate.ts runs `doltgate proxy`; the agent checks above stand alone.
      this.skip();
    }
    const epoch = await eventually(
      async () => {
        const proxy = await query(base, 'max(doltgate_proxy_topology_epoch)');
        const agents = await query(base, 'max(doltgate_agent_epoch)');
        return proxy.length > 0 && agents.length > 0 && Number(proxy[0].value[1]) > 0 && proxy[0].value[1] === agents[0].value[1] ? proxy[0].value[1] : null;
      },
      { within: 30_000, what: 'the proxy at the agents\' topology epoch in Prometheus' },
    );
    expect(Number(epoch)).to.be.greaterThan(0);
  });
});
