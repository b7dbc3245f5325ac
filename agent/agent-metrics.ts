/**
 * The agent's Prometheus metrics (prom-client, one registry per agent). Names are prefixed
 * `doltgate_agent_`; action and wait-code labels use the same words as `decide`, so a dashboard,
 * a log line and `doltgate status` say the same thing.
 */

import * as http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MalformedValueLog } from './store/malformed-values';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly role: Gauge<'role'>;
  readonly epoch: Gauge;
  readonly healthy: Gauge;
  readonly healthCheckSeconds: Histogram;
  readonly healthCheckFailures: Counter;
  readonly leaseRenewSeconds: Histogram;
  readonly leaseRenewFailures: Counter;
  readonly decisions: Counter<'action' | 'code'>;
  readonly failovers: Counter<'kind' | 'trigger' | 'outcome'>;
  readonly failoverStepSeconds: Histogram<'step' | 'outcome'>;
  readonly commitsNotOnRemote: Gauge;
  readonly commitsBehindRemote: Gauge;
  readonly standbysBehind: Gauge;
  readonly orphanedBranches: Counter;
  readonly backupLastGoodSyncAge: Gauge;
  readonly backupSyncFailures: Counter;
  readonly etcdReachable: Gauge;
  readonly doltRestarts: Counter;

  constructor(labels: { cluster: string; node: string }) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry, prefix: 'doltgate_agent_process_' });
    const r = [this.registry];
    this.role = new Gauge({ name: 'doltgate_agent_role', help: '1 for the role this node has now (primary, replica, fenced, down)', labelNames: ['role'], registers: r });
    this.epoch = new Gauge({ name: 'doltgate_agent_epoch', help: 'Newest topology epoch this agent acted on', registers: r });
    this.healthy = new Gauge({ name: 'doltgate_agent_dolt_healthy', help: '1 when the local Dolt passes its checks', registers: r });
    this.healthCheckSeconds = new Histogram({ name: 'doltgate_agent_health_check_seconds', help: 'Latency of the SQL health check', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2], registers: r });
    this.healthCheckFailures = new Counter({ name: 'doltgate_agent_health_check_failures_total', help: 'Failed SQL health checks', registers: r });
    this.leaseRenewSeconds = new Histogram({ name: 'doltgate_agent_lease_renew_seconds', help: 'Latency of etcd lease keepalives', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2], registers: r });
    this.leaseRenewFailures = new Counter({ name: 'doltgate_agent_lease_renew_failures_total', help: 'etcd lease keepalives that failed', registers: r });
    this.decisions = new Counter({ name: 'doltgate_agent_decisions_total', help: 'HA decisions by action (and wait code)', labelNames: ['action', 'code'], registers: r });
    this.failovers = new Counter({ name: 'doltgate_agent_failovers_total', help: 'Failovers and switchovers this agent executed, by kind, trigger (automatic, operator, resumed) and outcome', labelNames: ['kind', 'trigger', 'outcome'], registers: r });
    this.failoverStepSeconds = new Histogram({ name: 'doltgate_agent_failover_step_seconds', help: 'Duration of each failover step', labelNames: ['step', 'outcome'], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: r });
    this.commitsNotOnRemote = new Gauge({ name: 'doltgate_agent_commits_not_on_remote', help: 'Commits on local heads that the remote lacks (failed pushes)', registers: r });
    this.commitsBehindRemote = new Gauge({ name: 'doltgate_agent_commits_behind_remote', help: 'Commits on the remote this node lacks', registers: r });
    this.standbysBehind = new Gauge({ name: 'doltgate_agent_cluster_standbys_behind', help: 'Cluster replication, on the primary: (database, standby) pairs dolt_cluster_status shows behind; commits there may be on the primary only', registers: r });
    this.orphanedBranches = new Counter({ name: 'doltgate_agent_orphaned_branches_total', help: 'Branches saved as doltgate/orphaned/... on rejoin', registers: r });
    this.backupLastGoodSyncAge = new Gauge({ name: 'doltgate_agent_backup_last_good_sync_age_seconds', help: 'Seconds since the last successful backup sync (-1: never)', registers: r });
    this.backupSyncFailures = new Counter({ name: 'doltgate_agent_backup_sync_failures_total', help: 'Failed backup syncs', registers: r });
    this.etcdReachable = new Gauge({ name: 'doltgate_agent_etcd_reachable', help: '1 when the last etcd read succeeded', registers: r });
    this.doltRestarts = new Counter({ name: 'doltgate_agent_dolt_restarts_total', help: 'Restarts of the local dolt sql-server after a crash', registers: r });
  }

  /** doltgate_agent_malformed_etcd_values_total{kind}, read from `log` at each scrape. */
  countMalformed(log: MalformedValueLog): void {
    new Counter({
      name: 'doltgate_agent_malformed_etcd_values_total',
      help: 'Distinct etcd values (key and revision) the agent could not decode and skipped, by kind of key',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [kind, count] of log.counts()) this.inc({ kind }, count);
      },
    });
  }

  setRole(role: string): void {
    for (const candidate of ['primary', 'replica', 'fenced', 'down']) this.role.set({ role: candidate }, candidate === role ? 1 : 0);
  }
}

/** `/metrics` and `/healthz` on one small HTTP server; `healthz` returns what `health()` says. */
export function serveMetrics(metrics: AgentMetrics, host: string, port: number, health: () => { ok: boolean; detail: unknown }): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    if (request.url === '/metrics') {
      metrics.registry.metrics().then(
        (body) => {
          response.writeHead(200, { 'content-type': metrics.registry.contentType });
          response.end(body);
        },
        (error: Error) => {
          response.writeHead(500);
          response.end(error.message);
        },
      );
    } else if (request.url === '/healthz') {
      const state = health();
      response.writeHead(state.ok ? 200 : 503, { 'content-type': 'application/json' });
      response.end(JSON.stringify(state.detail));
    } else {
      response.writeHead(404);
      response.end('not found: try /metrics or /healthz\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
