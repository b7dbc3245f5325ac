/**
 * One fault campaign: fresh sandboxes (etcd, three Dolt nodes with agents, one proxy, all as the
 * sandbox runs them), two writers through the proxy and a writability probe on every node, then
 * faults from the menu one after another. After each fault: heal, wait for convergence, look up
 * every write acknowledged so far, and record a FaultRun (fault-report.ts).
 *
 * Shared by `npm run bench:faults` (many faults, printed) and the fixed slice in `npm test`
 * (one of each kind, asserted). Everything it starts it stops, by PID, also on failure, and every
 * partition it makes it heals.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { prng } from '../../common/prng';
import { LocalCluster } from '../../sandbox/local-cluster';
import { queryAsRoot } from '../../sandbox/root-query';
import { sandboxUser } from '../../sandbox/sandbox-command';
import { auditAcks, waitConverged, waitOutageOver } from './cluster-audit';
import type { FaultRun } from './fault-report';
import { faultKind, type FaultContext } from './fault-menu';
import { healAll } from './loopback-partition';
import { WritabilityProbe } from './writability-probe';
import { sleep, Writer, type WriterKind } from './write-load';

export interface CampaignOptions {
  /** Fault kind names, in the order they are injected. */
  faults: string[];
  /** Faults per sandbox before a fresh one is made. */
  faultsPerSandbox: number;
  etcdMembers: 1 | 3;
  /** etcd with user/password authentication on, as the sandbox runs it. */
  etcdAuth: boolean;
  /** How the nodes replicate (agent config dolt.replication); default remote. */
  replication?: 'remote' | 'cluster';
  seed: number;
  dir: string;
  doltBinary: string;
  doltgateEntry: string;
  /** Longest wait for convergence after a fault. */
  convergeWithinMs?: number;
  say(line: string): void;
  /** Called with each run as it is recorded (progress). */
  recorded?(run: FaultRun, index: number): void;
}

export const ackTable = 'fault_acks';
/** dolt_cluster_ack_writes_timeout_secs in cluster mode's sandboxes. */
export const clusterAckWritesTimeoutSecs = 5;
export const probeTable = 'fault_probe';
const writerKinds: WriterKind[] = ['autocommit', 'transaction'];

/** `count` faults in which every kind appears as evenly as possible, shuffled by `rng`. */
export function planFaults(kinds: readonly string[], count: number, rng: () => number): string[] {
  const plan: string[] = [];
  while (plan.length < count) {
    const round = [...kinds];
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [round[i], round[j]] = [round[j], round[i]];
    }
    plan.push(...round.slice(0, count - plan.length));
  }
  return plan;
}

async function prepareTables(cluster: LocalCluster, port: number): Promise<void> {
  const mysql = (await import('mysql2/promise')).default;
  const client = await mysql.createConnection({ host: '127.0.0.1', port, user: sandboxUser.name, password: sandboxUser.password, database: 'app' });
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${ackTable} (id BIGINT PRIMARY KEY, writer INT NOT NULL, at BIGINT NOT NULL)`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${probeTable} (id BIGINT PRIMARY KEY)`);
  } finally {
    client.destroy();
  }
  // The probe writes to every node: each must have the table before the first round.
  for (const agent of cluster.agents) {
    for (let attempt = 0; ; attempt++) {
      try {
        await queryAsRoot(agent.sqlPort, `SELECT COUNT(*) FROM ${probeTable}`, [], { database: 'app', connectTimeoutMs: 2_000, queryTimeoutMs: 5_000 });
        break;
      } catch (error) {
        if (attempt > 100) throw new Error(`${agent.name} never got the ${probeTable} table: ${(error as Error).message}`);
        await sleep(100);
      }
    }
  }
}

/** Runs the faults; resolves with one record per fault, in order. */
export async function runCampaign(options: CampaignOptions): Promise<FaultRun[]> {
  const rng = prng(options.seed);
  const runs: FaultRun[] = [];
  const convergeWithin = options.convergeWithinMs ?? 90_000;
  for (let start = 0, sandbox = 1; start < options.faults.length; start += options.faultsPerSandbox, sandbox++) {
    const chunk = options.faults.slice(start, start + options.faultsPerSandbox);
    const dir = join(options.dir, `sandbox-${sandbox}`);
    await mkdir(dir, { recursive: true });
    options.say(`sandbox ${sandbox}: starting (${options.etcdMembers} etcd member${options.etcdMembers > 1 ? 's' : ''}${options.etcdAuth ? ', auth on' : ''}, ${options.replication ?? 'remote'} replication) for ${chunk.join(', ')}`);
    // Cluster replication runs with ack writes on: a commit Dolt acknowledged without warning is on
    // every standby, so a failover must keep it on main.
    const agentOverrides = options.replication === 'cluster' ? { dolt: { cluster: { ack_writes_timeout_secs: clusterAckWritesTimeoutSecs } } } : undefined;
    const cluster = await LocalCluster.create({ dir, doltBinary: options.doltBinary, doltgateEntry: options.doltgateEntry, etcdMembers: options.etcdMembers, etcdAuth: options.etcdAuth, replication: options.replication, agentOverrides });
    const writers: Writer[] = [];
    let probe: WritabilityProbe | null = null;
    try {
      const proxy = await cluster.startProxy(sandboxUser);
      await prepareTables(cluster, proxy.port);
      const deadline = Date.now() + chunk.length * 10 * 60_000;
      for (const [index, kind] of writerKinds.entries()) {
        const writer = new Writer({ index: index + 1, kind, port: proxy.port, user: sandboxUser.name, password: sandboxUser.password, database: 'app', table: ackTable, deadline, maxWrites: 10_000_000, pauseMs: 15 });
        writer.start();
        writers.push(writer);
      }
      probe = new WritabilityProbe(() => cluster.agents.map((agent) => ({ name: agent.name, port: agent.sqlPort })), { database: 'app', table: probeTable, intervalMs: 100, timeoutMs: 1_000, deadline });
      probe.start();
      await sleep(2_000);
      const ctx: FaultContext = { cluster, proxy, rng, say: (line) => options.say(`  ${line}`) };
      let lostBefore = new Set<number>();
      for (const kind of chunk) {
        const fault = faultKind(kind);
        options.say(`sandbox ${sandbox}, fault ${runs.length + 1}/${options.faults.length}: ${fault.name} (${fault.what})`);
        const from = Date.now();
        const notes: string[] = [];
        try {
          await fault.run(ctx);
        } catch (error) {
          notes.push(`injecting failed: ${(error as Error).message}`);
        } finally {
          await healAll();
        }
        const healedAt = Date.now();
        // The writers run on until the cluster has a stable primary again, so the write gap and
        // the errors of the whole outage are seen; then they pause, so that "every head equal on
        // every node" and the audit look at data that is not moving.
        const outage = await waitOutageOver(cluster, (since) => writers.every((w) => w.ackedSentSince(since)), convergeWithin);
        if (!outage.ok) notes.push(`the outage did not end: still waiting for ${outage.waitingFor}`);
        await Promise.all(writers.map((w) => w.pause()));
        const until = Date.now();
        const convergence = await waitConverged(cluster, ['app'], Math.max(10_000, convergeWithin - (until - healedAt)));
        if (!convergence.ok) notes.push(`still waiting for ${convergence.waitingFor}`);
        const acknowledged = writers.flatMap((w) => w.acknowledgedIds());
        const inWindow = writers.reduce((n, w) => n + w.acknowledgedIds(from, until).length, 0);
        let lost: number[] = [];
        let orphaned = 0;
        let gone = 0;
        let warned = 0;
        if (convergence.primary !== null) {
          const audit = await auditAcks(cluster, convergence.primary, ackTable, acknowledged).catch((error: Error) => {
            notes.push(`audit failed: ${error.message}`);
            return null;
          });
          if (audit !== null) {
            const fresh = new Set(audit.orphaned.filter((id) => !lostBefore.has(id)));
            lost = audit.lost.filter((id) => !lostBefore.has(id));
            orphaned = lost.filter((id) => fresh.has(id)).length;
            gone = lost.length - orphaned;
            const warnedIds = new Set(writers.flatMap((w) => w.warnedIds()));
            warned = lost.filter((id) => warnedIds.has(id)).length;
            lostBefore = new Set(audit.lost);
            if (lost.length > 0) notes.push(`lost ids (first 10): ${lost.slice(0, 10).join(', ')}`);
          }
        } else {
          notes.push('no primary to audit against');
        }
        const errors: Record<string, number> = {};
        for (const w of writers) for (const [code, n] of Object.entries(w.errorsBetween(from, until))) errors[code] = (errors[code] ?? 0) + n;
        const windows = probe.dualWindows(from, until);
        for (const w of windows) notes.push(`dual-writable ${w.nodes.join('+')} for ${w.until - w.from} ms at +${w.from - from} ms`);
        for (const w of writers) w.resume();
        const run: FaultRun = {
          kind,
          sandbox,
          acknowledged: inWindow,
          lost: lost.length,
          orphaned,
          gone,
          warned,
          dualWindows: windows.length,
          longestDualMs: Math.max(0, ...windows.map((w) => w.until - w.from + 100)),
          longestGapMs: Math.max(...writers.map((w) => w.longestGap(from, until))),
          converged: convergence.ok,
          convergeMs: convergence.ok ? until - healedAt + convergence.tookMs : null,
          errors,
          notes,
        };
        runs.push(run);
        options.recorded?.(run, runs.length - 1);
      }
    } finally {
      await healAll();
      await probe?.stop();
      await Promise.all(writers.map((w) => w.stop()));
      await cluster.stop();
    }
  }
  return runs;
}
