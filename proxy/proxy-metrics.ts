/**
 * The proxy's Prometheus metrics (prom-client, one registry per proxy so tests can build several)
 * and the small HTTP server that exposes them with the health check. Names start with
 * `doltgate_proxy_` (process metrics `doltgate_proxy_process_`); every series carries the
 * `cluster` label. Label values are small closed sets chosen by the proxy (route, command name,
 * backend node name, error kind) — never SQL text or client addresses, which would explode the
 * number of series.
 *
 * Per query the session calls `recordQuery`, which only bumps typed arrays: the queries counter
 * catches up when the registry is read, and the latency histogram is ./histogram's (same exposition as
 * prom-client's) because prom-client's observe costs a label hash per call.
 *
 * HTTP: `GET /metrics` (Prometheus text format), `GET /healthz` (JSON `{ ok, detail }`, 200 when
 * ok, else 503 — a load balancer takes the proxy out of rotation on 503). Anything else is 404.
 */

import * as http from 'node:http';
import { Counter, Gauge, Histogram as PromHistogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Histogram } from './histogram';
import type { HoldStats } from './hold/write-hold';

/** Seconds; the proxy's own overhead is sub-millisecond, queries may take seconds. */
const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Route label values recordQuery takes (a connection's role), by index. */
const QUERY_ROUTES = ['primary', 'replica'] as const;
/** Command label values recordQuery takes (see commandLabel in server/command-job.ts). */
const QUERY_COMMANDS = ['query', 'prepare', 'execute', 'long_data', 'stmt_reset', 'fetch', 'init_db', 'field_list', 'statistics', 'other'] as const;

export class ProxyMetrics {
  readonly registry = new Registry();
  /** Label sets of the queries counter, by cell (route index × QUERY_COMMANDS.length + command index). */
  private readonly queryCells = QUERY_ROUTES.flatMap((route) => QUERY_COMMANDS.map((command) => ({ route, command })));
  /** recordQuery counts not yet added to `queries` (done when the registry is read). */
  private readonly pendingQueries = new Float64Array(QUERY_ROUTES.length * QUERY_COMMANDS.length);
  /** Cells whose series `queries` has already created. */
  private readonly seenQueries = new Uint8Array(QUERY_ROUTES.length * QUERY_COMMANDS.length);
  private readonly commandIndex = new Map<string, number>(QUERY_COMMANDS.map((c, i) => [c, i]));
  private lastCommand = '';
  private lastCommandIndex = 0;
  /** Latency series by route index. */
  private readonly routeSeries: number[] = [];
  readonly clientConnections: Gauge;
  readonly connectionsRejected: Counter<'reason'>;
  readonly handshakingConnections: Gauge;
  readonly loginVerdictsHeld: Counter;
  readonly queries: Counter<'route' | 'command'>;
  readonly queryLatency: Histogram;
  readonly heldWrites: Gauge;
  readonly holdTimeouts: Counter;
  readonly readsResent: Counter;
  readonly holdCutOffs: Counter;
  readonly holdOutcomes: Counter<'outcome'>;
  readonly outcomeTokens: Counter;
  readonly outcomeQueries: Counter<'verdict'>;
  readonly primarySuspicions: Counter<'kind'>;
  readonly topologyEpoch: Gauge;
  readonly backendUp: Gauge<'backend' | 'role'>;
  readonly errors: Counter<'kind'>;
  readonly commandPhaseBugs: Counter<'phase' | 'event'>;
  readonly etcdReachable: Gauge;
  readonly backendConnections: Gauge<'backend' | 'state'>;
  readonly backendBudget: Gauge<'backend'>;
  readonly backendQueued: Gauge<'backend'>;
  readonly backendQueueWait: PromHistogram<'backend' | 'outcome'>;
  readonly backendBudgetExhausted: Counter<'backend'>;
  readonly sessionsHoldingBackends: Gauge<'reason'>;
  /** Read at scrape time: the pools' per-node figures, and the hold reason of every session. */
  private backendSource: () => ReadonlyArray<{ node: string; inUse: number; idle: number; connecting: number; queued: number; budget: number }> = () => [];
  private holdSource: () => Iterable<string | null> = () => [];
  private holdStatsSource: () => HoldStats | null = () => null;

  constructor(labels: { cluster: string }) {
    this.registry.setDefaultLabels(labels);
    collectDefaultMetrics({ register: this.registry, prefix: 'doltgate_proxy_process_' });
    const registers = [this.registry];
    this.clientConnections = new Gauge({
      name: 'doltgate_proxy_client_connections',
      help: 'Client connections open on the proxy now',
      registers,
    });
    this.handshakingConnections = new Gauge({
      name: 'doltgate_proxy_handshaking_connections',
      help: 'Client connections still logging in (bounded by login.max_handshaking, apart from max_client_connections)',
      registers,
    });
    this.loginVerdictsHeld = new Counter({
      name: 'doltgate_proxy_login_verdicts_held_total',
      help: 'Login attempts whose answer was held back because their address (and user) kept failing',
      registers,
    });
    this.connectionsRejected = new Counter({
      name: 'doltgate_proxy_connections_rejected_total',
      help: 'Client connections refused, by reason (too many connections, auth failed, handshake error, ...)',
      labelNames: ['reason'],
      registers,
    });
    const pending = this.pendingQueries;
    const cells = this.queryCells;
    this.queries = new Counter({
      name: 'doltgate_proxy_queries_total',
      help: 'Client commands forwarded, by route (primary, replica) and command (query, execute, ...)',
      labelNames: ['route', 'command'],
      registers,
      // Counts recorded by recordQuery are added when the registry is read.
      collect(this: Counter<'route' | 'command'>) {
        for (let i = 0; i < cells.length; i++) {
          if (pending[i] === 0) continue;
          this.inc(cells[i], pending[i]);
          pending[i] = 0;
        }
      },
    });
    this.queryLatency = new Histogram({
      name: 'doltgate_proxy_query_duration_seconds',
      help: 'Time from a client command to the end of its response, as the client sees it, by route',
      labelNames: ['route'],
      buckets: latencyBuckets,
      registers,
    });
    for (const route of QUERY_ROUTES) {
      const series = this.queryLatency.series(route);
      if (series !== this.routeSeries.length) throw new Error('route series out of order');
      this.routeSeries.push(series);
    }
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
    this.readsResent = new Counter({
      name: 'doltgate_proxy_reads_resent_total',
      help: 'Reads outside a transaction whose backend connection was lost before any answer reached the client (a replica restarted, a role change) and that were sent again',
      registers,
    });
    this.holdCutOffs = new Counter({
      name: 'doltgate_proxy_hold_cutoffs_total',
      help: 'Writes refused or let go because the cluster had no primary for longer than hold.max_episode_ms (they were not executed)',
      registers,
    });
    this.holdOutcomes = new Counter({
      name: 'doltgate_proxy_hold_writes_total',
      help: 'Writes the write hold dealt with, by outcome: held (queued), released, timed_out, cut_off (past hold.max_episode_ms), aborted (client left), rejected (never queued: queue full, episode over). held = released + timed_out + cut_off + aborted + doltgate_proxy_held_writes',
      labelNames: ['outcome'],
      registers,
      collect(this: Counter<'outcome'>) {
        const stats = self.holdStatsSource();
        if (stats === null) return;
        // The hold keeps the totals; a scrape copies them (they only rise).
        this.reset();
        for (const [outcome, n] of [['held', stats.held], ['released', stats.released], ['timed_out', stats.timedOut], ['cut_off', stats.cutOff], ['aborted', stats.aborted], ['rejected', stats.rejected]] as const) {
          this.inc({ outcome }, n);
        }
      },
    });
    this.outcomeTokens = new Counter({
      name: 'doltgate_proxy_outcome_tokens_total',
      help: 'Statements that could make a Dolt commit and were given an outcome token (one SET round trip each)',
      registers,
    });
    this.outcomeQueries = new Counter({
      name: 'doltgate_proxy_outcome_queries_total',
      help: "SELECT doltgate_outcome('<token>') answers, by verdict (committed, set aside, not committed, unknown)",
      labelNames: ['verdict'],
      registers,
    });
    this.primarySuspicions = new Counter({
      name: 'doltgate_proxy_primary_suspicions_total',
      help: 'Times the proxy began holding writes because it saw the primary fail before a new topology said so (kind: unreachable, read-only, lease-lost)',
      labelNames: ['kind'],
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
    this.commandPhaseBugs = new Counter({
      name: 'doltgate_proxy_command_phase_bugs_total',
      help: 'Impossible moves of a command phase (a bug: the session was closed rather than guessed at), by phase and event',
      labelNames: ['phase', 'event'],
      registers,
    });
    this.etcdReachable = new Gauge({
      name: 'doltgate_proxy_etcd_reachable',
      help: '1 while the topology watch on etcd is connected and reads succeed',
      registers,
    });
    const self = this;
    this.backendConnections = new Gauge({
      name: 'doltgate_proxy_backend_connections',
      help: "The proxy's connections to each backend node, by state: in_use (held by a session), idle (pooled), connecting",
      labelNames: ['backend', 'state'],
      registers,
      collect(this: Gauge<'backend' | 'state'>) {
        this.reset();
        for (const n of self.backendSource()) {
          this.set({ backend: n.node, state: 'in_use' }, n.inUse);
          this.set({ backend: n.node, state: 'idle' }, n.idle);
          this.set({ backend: n.node, state: 'connecting' }, n.connecting);
        }
      },
    });
    this.backendBudget = new Gauge({
      name: 'doltgate_proxy_backend_connection_budget',
      help: 'Connections this proxy may open to each backend node (pool.max_connections_per_node)',
      labelNames: ['backend'],
      registers,
      collect(this: Gauge<'backend'>) {
        this.reset();
        for (const n of self.backendSource()) this.set({ backend: n.node }, n.budget);
      },
    });
    this.backendQueued = new Gauge({
      name: 'doltgate_proxy_backend_queue_length',
      help: 'Statements waiting now for a backend connection to the node, its budget used up',
      labelNames: ['backend'],
      registers,
      collect(this: Gauge<'backend'>) {
        this.reset();
        for (const n of self.backendSource()) this.set({ backend: n.node }, n.queued);
      },
    });
    this.backendQueueWait = new PromHistogram({
      name: 'doltgate_proxy_backend_queue_wait_seconds',
      help: 'Time statements waited for a backend connection, by outcome (served, timeout, full, aborted)',
      labelNames: ['backend', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.backendBudgetExhausted = new Counter({
      name: 'doltgate_proxy_backend_budget_exhausted_total',
      help: "Times a statement found every connection of the node's budget in use and had to wait (or was refused)",
      labelNames: ['backend'],
      registers,
    });
    this.sessionsHoldingBackends = new Gauge({
      name: 'doltgate_proxy_sessions_pinned',
      help: 'Client sessions that keep their backend connections between statements, by reason (transaction, autocommit-off, prepared-statement, temporary-table, user-variable, ..., multiplexing-off)',
      labelNames: ['reason'],
      registers,
      collect(this: Gauge<'reason'>) {
        this.reset();
        const counts = new Map<string, number>();
        for (const reason of self.holdSource()) if (reason !== null) counts.set(reason, (counts.get(reason) ?? 0) + 1);
        for (const [reason, n] of counts) this.set({ reason }, n);
      },
    });
  }

  /** Where the hold outcome counters read their totals. */
  observeHold(stats: () => HoldStats): void {
    this.holdStatsSource = stats;
  }

  /** Where the backend connection gauges and the pinned-sessions gauge read their figures. */
  observeBackends(pools: () => ReadonlyArray<{ node: string; inUse: number; idle: number; connecting: number; queued: number; budget: number }>, holds: () => Iterable<string | null>): void {
    this.backendSource = pools;
    this.holdSource = holds;
  }

  /**
   * One client command answered, for the hot path: the same as `queries.inc({ route, command })`
   * plus `queryLatency.observe({ route }, seconds)`, without building or hashing label objects
   * per query (the count reaches `queries` when the registry is read).
   */
  recordQuery(route: string, command: string, seconds: number): void {
    const r = route === 'primary' ? 0 : route === 'replica' ? 1 : -1;
    // Sessions mostly repeat one command: compare with the last label before hashing it.
    let c: number | undefined;
    if (command === this.lastCommand) {
      c = this.lastCommandIndex;
    } else {
      c = this.commandIndex.get(command);
      if (c !== undefined) {
        this.lastCommand = command;
        this.lastCommandIndex = c;
      }
    }
    if (r < 0 || c === undefined) {
      this.queries.inc({ route, command });
      this.queryLatency.observe({ route }, seconds);
      return;
    }
    const cell = r * QUERY_COMMANDS.length + c;
    // The series is created at its first count, so the exposition lists series in that order.
    if (this.pendingQueries[cell]++ === 0 && this.seenQueries[cell] === 0) {
      this.seenQueries[cell] = 1;
      this.queries.inc(this.queryCells[cell], 0);
    }
    this.queryLatency.observeSeries(this.routeSeries[r], seconds);
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
