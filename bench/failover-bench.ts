/**
 * `npm run bench:failover`: what clients see during failovers. Not a test — it prints numbers.
 *
 * For each run: a fresh local cluster (etcd, three Dolt nodes with agents, one proxy), a client
 * writing rows one by one through the proxy, then a fault:
 *  - crash: kill -9 the primary's dolt sql-server;
 *  - host: kill -9 the primary's agent (its Dolt dies with it: a whole host lost);
 *  - switchover: a planned switchover to a replica through etcd `ops/` (zero errors expected).
 * The client's database is created through the proxy at run time (CREATE DATABASE), as an
 * application or sysbench would: it must fail over like one the deployment made.
 * It records the time from the fault to the first acknowledged write through the proxy, the
 * longest write pause, client errors, and acknowledged writes missing afterwards.
 * BENCH_RUNS (default 3) runs per scenario, BENCH_SCENARIOS (default crash,host,switchover),
 * BENCH_REPLICATION (default remote,cluster): each replication mode in turn, side by side in the
 * table. Cluster mode runs with ack_writes_timeout_secs 5 (every acknowledged write on every
 * standby that answers in time).
 */

import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import mysql from 'mysql2/promise';
import { killLiveChildrenSync } from '../common/child-process';
import { LocalCluster } from '../sandbox/local-cluster';
import { repositoryRoot, resolveDoltBinary } from '../sandbox/dolt-binary';
import type { OperationRecord } from '../proto';

type Scenario = 'crash' | 'host' | 'switchover';
type Replication = 'remote' | 'cluster';

interface RunResult {
  scenario: Scenario;
  replication: Replication;
  recoveryMs: number;
  maxPauseMs: number;
  errors: number;
  acknowledged: number;
  missing: number;
}

const user = { name: 'bench', password: 'bench' };
/** Created through the proxy in every run; no node has it before. */
const benchDatabase = 'bench_orders';

class Writer {
  acknowledged = new Set<number>();
  errors = 0;
  lastAckAt = 0;
  maxPauseMs = 0;
  private next = 1;
  private stopped = false;
  private connection: mysql.Connection | null = null;
  private acks: Array<{ sentAt: number; ackAt: number }> = [];

  constructor(private readonly port: number, private readonly deadline: number) {}

  async run(): Promise<void> {
    while (!this.stopped && Date.now() < this.deadline) {
      try {
        this.connection ??= await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: user.name, password: user.password, database: benchDatabase, connectTimeout: 5000 });
        const id = this.next++;
        const sentAt = Date.now();
        await this.connection.query({ sql: 'INSERT INTO bench VALUES (?, NOW())', timeout: 15_000 }, [id]);
        const now = Date.now();
        if (this.lastAckAt > 0) this.maxPauseMs = Math.max(this.maxPauseMs, now - this.lastAckAt);
        this.lastAckAt = now;
        this.acknowledged.add(id);
        this.acks.push({ sentAt, ackAt: now });
      } catch {
        this.errors++;
        this.connection?.destroy();
        this.connection = null;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    this.connection?.destroy();
  }

  /** When the first write *sent* at or after `at` was acknowledged: a write in flight at the fault does not count. */
  firstAckAtOrAfter(at: number): number | null {
    return this.acks.find((ack) => ack.sentAt >= at)?.ackAt ?? null;
  }

  stop(): void {
    this.stopped = true;
  }
}

async function oneRun(scenario: Scenario, replication: Replication): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'doltgate-bench-'));
  let keep = false;
  const overrides = replication === 'cluster' ? { ha: { min_failover_interval_ms: 1000 }, dolt: { cluster: { ack_writes_timeout_secs: 5 } } } : { ha: { min_failover_interval_ms: 1000 } };
  const cluster = await LocalCluster.create({ dir, doltBinary: resolveDoltBinary(), doltgateEntry: join(repositoryRoot(), 'dist', 'bin', 'doltgate.js'), agentOverrides: overrides, replication });
  try {
    const primary = await cluster.waitForStablePrimary(30_000);
    const proxy = await cluster.startProxy(user);
    const admin = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: user.name, password: user.password });
    await admin.query(`CREATE DATABASE ${benchDatabase}`);
    await admin.query(`USE ${benchDatabase}`);
    await admin.query('CREATE TABLE bench (id INT PRIMARY KEY, at DATETIME)');
    admin.destroy();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const writer = new Writer(proxy.port, Date.now() + 60_000);
    const writing = writer.run();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const faultAt = Date.now();
    if (scenario === 'crash') process.kill((await cluster.doltPid(primary)) as number, 'SIGKILL');
    else if (scenario === 'host') await cluster.agent(primary).process.kill9();
    else await requestSwitchover(cluster, primary);
    const next = await cluster.waitForStablePrimary(30_000, primary);
    // The first write acknowledged after the fault (for a switchover the write pause says more).
    let firstAck = writer.firstAckAtOrAfter(faultAt);
    const waitUntil = Date.now() + 20_000;
    while (firstAck === null && Date.now() < waitUntil) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      firstAck = writer.firstAckAtOrAfter(faultAt);
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    writer.stop();
    await writing;
    const check = await mysql.createConnection({ host: '127.0.0.1', port: cluster.agent(next).sqlPort, user: 'root', database: benchDatabase });
    const [rows] = await check.query('SELECT id FROM bench');
    check.destroy();
    const present = new Set((rows as Array<{ id: number }>).map((row) => row.id));
    const missing = [...writer.acknowledged].filter((id) => !present.has(id)).length;
    return { scenario, replication, recoveryMs: firstAck === null ? Number.NaN : firstAck - faultAt, maxPauseMs: writer.maxPauseMs, errors: writer.errors, acknowledged: writer.acknowledged.size, missing };
  } catch (error) {
    (error as Error).message += ` (cluster files kept in ${dir})`;
    keep = true;
    throw error;
  } finally {
    await cluster.stop();
    if (!keep) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

async function requestSwitchover(cluster: LocalCluster, primary: string): Promise<void> {
  const target = cluster.agents.map((agent) => agent.name).find((name) => name !== primary) as string;
  const store = cluster.store();
  try {
    const op: OperationRecord = {
      id: `bench-${Date.now()}`, kind: 'switchover', target, force: false, drainTimeoutMs: 5000, requestedAt: new Date().toISOString(),
      requestedBy: 'bench', state: 'pending', executor: null, epoch: null, steps: [], reason: 'benchmark switchover',
    };
    await store.putOperation(op, null);
  } finally {
    store.close();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const scenarios = (process.env.BENCH_SCENARIOS ?? 'crash,host,switchover').split(',') as Scenario[];
  const modes = (process.env.BENCH_REPLICATION ?? 'remote,cluster').split(',').map((mode) => mode.trim()) as Replication[];
  for (const mode of modes) if (mode !== 'remote' && mode !== 'cluster') throw new Error(`BENCH_REPLICATION: ${mode} is not remote or cluster`);
  const results: RunResult[] = [];
  for (const replication of modes) {
    for (const scenario of scenarios) {
      for (let i = 0; i < runs; i++) {
        const result = await oneRun(scenario, replication);
        results.push(result);
        process.stdout.write(`${replication} ${scenario} run ${i + 1}: recovery ${result.recoveryMs} ms, longest write pause ${result.maxPauseMs} ms, client errors ${result.errors}, acknowledged ${result.acknowledged}, missing ${result.missing}\n`);
      }
    }
  }
  const targets: Record<Replication, Record<Scenario, string>> = {
    remote: { crash: 'median < 5000 ms', host: 'median < 10000 ms', switchover: 'pause median < 1000 ms, 0 errors' },
    cluster: { crash: 'pause median <= 1500 ms, 0 missing', host: 'median < 10000 ms', switchover: 'pause median < 1000 ms, 0 errors' },
  };
  process.stdout.write('\nmode     scenario    runs  recovery median/max (ms)  pause median/max (ms)  errors  acked  missing  target\n');
  for (const replication of modes) for (const scenario of scenarios) {
    const rows = results.filter((result) => result.scenario === scenario && result.replication === replication);
    const recovery = rows.map((row) => row.recoveryMs);
    const pause = rows.map((row) => row.maxPauseMs);
    process.stdout.write(
      `${replication.padEnd(8)} ${scenario.padEnd(11)} ${String(rows.length).padStart(4)}  ${`${median(recovery).toFixed(0)}/${Math.max(...recovery).toFixed(0)}`.padStart(24)}  ${`${median(pause).toFixed(0)}/${Math.max(...pause).toFixed(0)}`.padStart(21)}  ${String(rows.reduce((n, row) => n + row.errors, 0)).padStart(6)}  ${String(rows.reduce((n, row) => n + row.acknowledged, 0)).padStart(5)}  ${String(rows.reduce((n, row) => n + row.missing, 0)).padStart(7)}  ${targets[replication][scenario]}\n`,
    );
  }
}

process.once('exit', killLiveChildrenSync);
main().catch((error: Error) => {
  process.stderr.write(`bench:failover failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
