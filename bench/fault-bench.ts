/**
 * `npm run bench:faults`: the Jepsen-style fault campaign. Not a test — it prints. Fresh
 * sandboxes under two writers through the proxy (autocommit INSERTs and BEGIN/INSERT/INSERT/
 * COMMIT) and a writability probe of every node; faults from bench/faults/fault-menu.ts one after
 * another; after each, convergence and an audit of every acknowledged write. The report: per
 * fault kind, runs, acknowledged, lost, orphaned, gone, dual-writable windows, the longest write
 * gap, convergence and client errors by errno; then the verdict.
 *
 * Environment:
 *   FAULTS_COUNT        faults in all (default: 8 of every kind)
 *   FAULTS_KINDS        comma-separated kind names (default: all)
 *   FAULTS_SEED         PRNG seed for the order and the durations (default 1)
 *   FAULTS_PER_SANDBOX  faults before a fresh sandbox (default 10)
 *   FAULTS_ETCD_MEMBERS 1 or 3 (default 1)
 *   FAULTS_ETCD_AUTH    1: etcd with authentication on, as the sandbox runs it (default 1)
 *   FAULTS_REPLICATION  remote, cluster (Dolt's cluster replication) or both, comma-separated:
 *                       the same faults in each mode, one report each (default remote,cluster)
 *   FAULTS_KEEP_DIR     keep the sandboxes' directories (logs) instead of removing them
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killLiveChildrenSync } from '../common/child-process';
import { repositoryRoot, resolveDoltBinary } from '../sandbox/dolt-binary';
import { prng } from '../common/prng';
import { planFaults, runCampaign } from './faults/fault-campaign';
import { faultKinds } from './faults/fault-menu';
import { formatReport, verdict, type FaultRun } from './faults/fault-report';
import { healAll } from './faults/loopback-partition';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
}

async function main(): Promise<void> {
  const kinds = (process.env.FAULTS_KINDS ?? faultKinds.map((k) => k.name).join(',')).split(',').map((k) => k.trim()).filter(Boolean);
  for (const kind of kinds) if (!faultKinds.some((k) => k.name === kind)) throw new Error(`FAULTS_KINDS: no fault named ${kind}; known: ${faultKinds.map((k) => k.name).join(', ')}`);
  const count = envInt('FAULTS_COUNT', kinds.length * 8);
  const seed = envInt('FAULTS_SEED', 1);
  const perSandbox = envInt('FAULTS_PER_SANDBOX', 10);
  const members = envInt('FAULTS_ETCD_MEMBERS', 1);
  if (members !== 1 && members !== 3) throw new Error('FAULTS_ETCD_MEMBERS must be 1 or 3');
  const etcdAuth = envInt('FAULTS_ETCD_AUTH', 1);
  if (etcdAuth !== 0 && etcdAuth !== 1) throw new Error('FAULTS_ETCD_AUTH must be 0 or 1');
  const modes = (process.env.FAULTS_REPLICATION ?? 'remote,cluster').split(',').map((mode) => mode.trim());
  for (const mode of modes) if (mode !== 'remote' && mode !== 'cluster') throw new Error(`FAULTS_REPLICATION: ${mode} is not remote or cluster`);
  const dir = await mkdtemp(join(tmpdir(), 'doltgate-faults-'));
  const faults = planFaults(kinds, count, prng(seed * 7919));
  const started = Date.now();
  const say = (line: string): void => {
    process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${line}\n`);
  };
  say(`${count} faults of ${kinds.length} kinds, seed ${seed}, ${perSandbox} per sandbox, ${members} etcd member(s), etcd auth ${etcdAuth === 1 ? 'on' : 'off'}, replication ${modes.join(' then ')}, in ${dir}`);
  const byMode = new Map<string, FaultRun[]>();
  try {
    for (const mode of modes) {
      const runs: FaultRun[] = [];
      byMode.set(mode, runs);
      await runCampaign({
        faults, faultsPerSandbox: perSandbox, etcdMembers: members as 1 | 3, etcdAuth: etcdAuth === 1, replication: mode as 'remote' | 'cluster', seed, dir: join(dir, mode),
        doltBinary: resolveDoltBinary(), doltgateEntry: join(repositoryRoot(), 'dist', 'bin', 'doltgate.js'), say,
        recorded: (run) => {
          runs.push(run);
          const problems = run.lost > 0 || run.dualWindows > 0 || !run.converged;
          say(`  → ${mode} ${run.kind}: ${run.acknowledged} acknowledged, ${run.lost} lost, ${run.dualWindows} dual-writable, gap ${(run.longestGapMs / 1000).toFixed(1)} s, ${run.converged ? `converged in ${((run.convergeMs ?? 0) / 1000).toFixed(1)} s` : 'NOT converged'}${problems || run.notes.length > 0 ? ` — ${run.notes.join('; ')}` : ''}`);
        },
      });
    }
  } finally {
    await healAll();
    if (!process.env.FAULTS_KEEP_DIR) await rm(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
  for (const [mode, runs] of byMode) {
    process.stdout.write(`\n${mode} replication\n${formatReport(runs)}\n`);
    const v = verdict(runs);
    process.stdout.write(v.ok ? `verdict (${mode}): 0 acknowledged writes lost or off main, 0 dual-writable windows, converged ${runs.length}/${runs.length}\n` : `verdict (${mode}): ${v.problems.length} problem(s)\n${v.problems.map((p) => `  - ${p}`).join('\n')}\n`);
  }
  process.stdout.write(`took ${((Date.now() - started) / 60_000).toFixed(1)} min\n`);
}

process.on('exit', () => killLiveChildrenSync());
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    void healAll().finally(() => process.exit(130));
  });
}
main().catch((error: Error) => {
  process.stderr.write(`bench:faults: ${error.stack ?? error.message}\n`);
  void healAll().finally(() => process.exit(1));
});
