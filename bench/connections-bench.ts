/**
 * `npm run bench:connections`: many client connections through one proxy, against a real cluster
 * (etcd, two agents with their Dolt nodes: a primary and a replica). NOT a test — it prints
 * numbers and never fails on them.
 *
 * For each scale (1k, 5k, 10k, 50k client connections by default) it opens that many logged-in
 * connections (thin-client.ts, so the figures are the proxy's, not a driver's) and reports:
 *  - idle: the proxy's RSS per client connection (RSS now minus RSS before the first client,
 *    over the number of clients) and its backend connections per node;
 *  - active: every session runs point selects (to the replica) and, one statement in
 *    BENCH_WRITE_EVERY, a small write (to the primary), pausing BENCH_THINK_MS between statements,
 *    for BENCH_SECONDS: QPS, p50/p99 latency as the client sees it (reads and writes apart: a
 *    write waits for Dolt's commit and push), the peak of the proxy's
 *    backend connections per node, errors by number;
 *  - topology changes (the topology key's etcd revision) and agent health-check failures.
 *
 * Environment: BENCH_SCALES (default 1000,5000,10000,50000), BENCH_SECONDS (default 15),
 * BENCH_THINK_MS (default 2000), BENCH_WRITE_EVERY (default 20), BENCH_BUDGET (the proxy's
 * pool.max_connections_per_node, default 200), BENCH_MULTIPLEXING (default true), BENCH_NODES
 * (default 2; with 1 every statement runs on the primary).
 * The ephemeral port range holds ~28k connections to one address; past 25k the clients bind
 * their end to explicit 127.0.0.1 ports below it. The proxy and this process each hold one file
 * per client, so the open-files limit must exceed the largest scale: the npm script raises it as
 * far as the hard limit allows, and scales above it are skipped, saying so (a container without
 * CAP_SYS_RESOURCE keeps the hard limit it was given).
 *
 * Every process it starts it stops by PID, also on failure, Ctrl-C, or its own deadline.
 */

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { killLiveChildrenSync } from '../common/child-process';
import { repositoryRoot, resolveDoltBinary } from '../sandbox/dolt-binary';
import { LocalCluster, type LocalProxy } from '../sandbox/local-cluster';
import { scrapeSum } from '../test/bed/metrics-scrape';
import { envInt } from './bench-env';
import { rssKiB } from './proc-rss';
import { ThinClient } from './thin-client';

interface Settings {
  scales: number[];
  seconds: number;
  thinkMs: number;
  writeEvery: number;
  budget: number;
  multiplexing: boolean;
  nodes: number;
}

const TABLE_ROWS = 10_000;
const EPHEMERAL_SHARE = 25_000;
const FIRST_EXPLICIT_PORT = 10_000;

function readSettings(): Settings {
  const scales = (process.env.BENCH_SCALES ?? '1000,5000,10000,50000').split(',').map((s) => Number(s.trim()));
  if (scales.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_SCALES must list positive integers, got ${process.env.BENCH_SCALES}`);
  const mux = process.env.BENCH_MULTIPLEXING ?? 'true';
  if (mux !== 'true' && mux !== 'false') throw new Error('BENCH_MULTIPLEXING must be true or false');
  return {
    scales: [...scales].sort((a, b) => a - b),
    seconds: envInt('BENCH_SECONDS', 15, 1),
    thinkMs: envInt('BENCH_THINK_MS', 2000, 0),
    writeEvery: envInt('BENCH_WRITE_EVERY', 20, 1),
    budget: envInt('BENCH_BUDGET', 200, 1),
    multiplexing: mux === 'true',
    nodes: envInt('BENCH_NODES', 2, 1),
  };
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null ? 1024 : Number(m[1]);
}

/** The proxy's backend connections per node (all states), from its /metrics. */
async function backendConnections(proxy: LocalProxy): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^doltgate_proxy_backend_connections\{([^}]*)\} (\S+)$/gm)) {
    const node = /backend="([^"]+)"/.exec(m[1])?.[1] ?? '?';
    out.set(node, (out.get(node) ?? 0) + Number(m[2]));
  }
  return out;
}

async function healthFailures(cluster: LocalCluster): Promise<number> {
  let sum = 0;
  for (const agent of cluster.agents) sum += await scrapeSum(agent.metricsPort, 'doltgate_agent_health_check_failures_total');
  return sum;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

class ClientFleet {
  readonly clients: ThinClient[] = [];
  private nextPort = FIRST_EXPLICIT_PORT;

  constructor(private readonly port: number) {}

  /** Opens clients until there are `n`, 500 logins at a time; says how long it took. */
  async growTo(n: number): Promise<void> {
    while (this.clients.length < n) {
      const wave = Math.min(500, n - this.clients.length);
      const opened = await Promise.all([...Array(wave)].map(() => this.openOne()));
      this.clients.push(...opened);
    }
  }

  private async openOne(): Promise<ThinClient> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const explicit = this.clients.length >= EPHEMERAL_SHARE;
      const localPort = explicit ? this.nextPort++ : 0;
      if (explicit && localPort >= 32_768) throw new Error('out of client ports below the ephemeral range');
      try {
        return await ThinClient.open({ host: '127.0.0.1', port: this.port, localPort, user: 'bench', password: 'pw', database: 'bench', timeoutMs: 60_000 });
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL') continue;
        throw error;
      }
    }
    throw new Error('could not find a free client port');
  }

  closeAll(): void {
    for (const c of this.clients) c.close();
    this.clients.length = 0;
  }
}

interface Latencies {
  p50: number;
  p99: number;
}

interface ActiveResult {
  statements: number;
  qps: number;
  reads: Latencies;
  writes: Latencies;
  errors: Map<number | string, number>;
  peakBackends: Map<string, number>;
}

async function runActive(fleet: ClientFleet, proxy: LocalProxy, s: Settings): Promise<ActiveResult> {
  const readLatencies: number[] = [];
  const writeLatencies: number[] = [];
  const errors = new Map<number | string, number>();
  const peak = new Map<string, number>();
  const endAt = performance.now() + s.seconds * 1000;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [node, n] of await backendConnections(proxy)) peak.set(node, Math.max(peak.get(node) ?? 0, n));
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const session = async (client: ThinClient, index: number): Promise<void> => {
    // Spread the starts over one think time, so the load is steady rather than a wave.
    await sleep(Math.random() * Math.max(1, s.thinkMs));
    let n = index;
    while (performance.now() < endAt && !client.closed) {
      const id = 1 + ((n * 7919) % TABLE_ROWS);
      const write = n % s.writeEvery === 0;
      n++;
      const sql = write ? `UPDATE kv SET v = v + 1 WHERE id = ${id}` : `SELECT v FROM kv WHERE id = ${id}`;
      const started = performance.now();
      try {
        const errno = await client.query(sql);
        if (errno === 0) (write ? writeLatencies : readLatencies).push(performance.now() - started);
        else errors.set(errno, (errors.get(errno) ?? 0) + 1);
      } catch (error) {
        const key = (error as Error).message;
        errors.set(key, (errors.get(key) ?? 0) + 1);
        return;
      }
      if (s.thinkMs > 0) await sleep(s.thinkMs);
    }
  };
  const started = performance.now();
  await Promise.all(fleet.clients.map((c, i) => session(c, i)));
  const elapsed = (performance.now() - started) / 1000;
  sampling = false;
  await sampler;
  const summary = (values: number[]): Latencies => {
    const sorted = Float64Array.from(values).sort();
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  };
  const statements = readLatencies.length + writeLatencies.length;
  return { statements, qps: statements / elapsed, reads: summary(readLatencies), writes: summary(writeLatencies), errors, peakBackends: peak };
}

function describeMap(m: Map<string | number, number>): string {
  return m.size === 0 ? 'none' : [...m].map(([k, v]) => `${k}×${v}`).join(' ');
}

async function bench(s: Settings, dir: string): Promise<void> {
  const limit = openFilesLimit();
  const scales = s.scales.filter((n) => n + 2_000 <= limit);
  for (const n of s.scales) if (!scales.includes(n)) say(`scale ${n} skipped: the open-files limit is ${limit} (run through npm run bench:connections, which raises it)`);
  if (scales.length === 0) return;
  say(`starting etcd and ${s.nodes} agents with their Dolt nodes (node ${process.version})`);
  const cluster = await LocalCluster.create({ dir, nodes: s.nodes, databases: ['bench'], doltBinary: resolveDoltBinary(), doltgateEntry: join(repositoryRoot(), 'dist', 'bin', 'doltgate.js') });
  try {
    const primary = await cluster.waitForStablePrimary(60_000);
    const direct = await mysql.createConnection({ host: '127.0.0.1', port: cluster.agent(primary).sqlPort, user: 'root', password: '', database: 'bench' });
    await direct.query('CREATE TABLE kv (id INT PRIMARY KEY, v INT NOT NULL)');
    for (let i = 0; i < TABLE_ROWS; i += 1000) {
      const rows = [...Array(1000).keys()].map((k) => `(${i + k + 1}, 0)`).join(',');
      await direct.query(`INSERT INTO kv VALUES ${rows}`);
    }
    direct.destroy();
    const largest = scales[scales.length - 1];
    const proxy = await cluster.startProxy(
      { name: 'bench', password: 'pw' },
      {
        default_auth_plugin: 'mysql_native_password',
        max_client_connections: largest + 1_000,
        handshake_timeout_ms: 120_000,
        pool: { max_connections_per_node: s.budget, max_queued: largest + 1_000, queue_timeout_ms: 60_000, multiplexing: s.multiplexing },
      },
    );
    const pid = proxy.process.pid as number;
    // A first client, so the replica has the table and the proxy its topology, before the baseline.
    const probe = await ThinClient.open({ host: '127.0.0.1', port: proxy.port, localPort: 0, user: 'bench', password: 'pw', database: 'bench', timeoutMs: 30_000 });
    for (let tries = 0; (await probe.query('SELECT v FROM kv WHERE id = 1')) !== 0 && tries < 100; tries++) await new Promise((r) => setTimeout(r, 200));
    probe.close();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const baseline = rssKiB(pid);
    const topologyBefore = (await cluster.snapshot()).topology?.modRevision;
    const failuresBefore = await healthFailures(cluster);
    say(`proxy pid ${pid}, RSS before clients ${(baseline / 1024).toFixed(1)} MiB; budget ${s.budget} per node, multiplexing ${s.multiplexing ? 'on' : 'off'}; active: ${s.seconds} s, think ${s.thinkMs} ms, 1 write in ${s.writeEvery}`);
    say('');
    say('clients | idle RSS/client | idle backends | active QPS | read p50/p99 ms (ratio) | write p50/p99 ms (ratio) | peak backends per node | errors');
    const fleet = new ClientFleet(proxy.port);
    try {
      for (const n of scales) {
        const t0 = performance.now();
        await fleet.growTo(n);
        const connectS = (performance.now() - t0) / 1000;
        await new Promise((resolve) => setTimeout(resolve, 2000));
        const perClient = ((rssKiB(pid) - baseline) * 1024) / n;
        const idle = await backendConnections(proxy);
        const active = await runActive(fleet, proxy, s);
        const show = (l: Latencies): string => `${l.p50.toFixed(2)}/${l.p99.toFixed(2)} (${(l.p50 > 0 ? l.p99 / l.p50 : 0).toFixed(2)})`.padStart(23);
        say(
          `${String(n).padStart(7)} | ${(perClient / 1000).toFixed(1).padStart(12)} kB | ${describeMap(idle).padEnd(13)} | ${active.qps.toFixed(0).padStart(10)} | ${show(active.reads)} | ${show(active.writes)} | ${describeMap(active.peakBackends).padEnd(22)} | ${describeMap(active.errors)}  (connect ${connectS.toFixed(1)} s, ${active.statements} statements)`,
        );
      }
    } finally {
      fleet.closeAll();
    }
    const topologyAfter = (await cluster.snapshot()).topology?.modRevision;
    say('');
    say(`topology changes: ${topologyAfter === topologyBefore ? 0 : `the topology was republished (revision ${topologyBefore} → ${topologyAfter})`}`);
    say(`agent health-check failures during the run: ${(await healthFailures(cluster)) - failuresBefore}`);
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  let settings: Settings;
  try {
    settings = readSettings();
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const dir = await mkdtemp(join(tmpdir(), 'doltgate-bench-connections-'));
  const budgetMs = (settings.scales.length * (settings.seconds + 180) + 300) * 1000;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench exceeded its ${Math.round(budgetMs / 1000)} s budget; stopping everything it started\n`);
    killLiveChildrenSync();
    process.exit(1);
  }, budgetMs);
  watchdog.unref();
  process.stdout.on('error', () => undefined);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench interrupted by ${signal}; stopping everything it started\n`);
      killLiveChildrenSync();
      process.exit(code);
    });
  }
  let code = 0;
  try {
    await bench(settings, dir);
  } catch (error) {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    code = 1;
  } finally {
    killLiveChildrenSync();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  process.exit(code);
}

void main();
