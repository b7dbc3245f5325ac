/**
 * `npm run bench:proxy`: what the doltgate proxy costs against the cheapest possible proxy.
 * NOT a test — it prints numbers and ratios and never fails on them.
 *
 * It starts one real Dolt node (the test bed's TestDoltCluster), fills a sysbench table, and
 * measures three targets, all on 127.0.0.1:
 *   direct    sysbench → Dolt
 *   pipe      sysbench → bench/tcp-pipe-main (a bare Node TCP pipe, in its own process) → Dolt
 *   doltgate  sysbench → the proxy (proxy/proxy-main's runProxy, in its own process) → Dolt;
 *             skipped, saying so, when the proxy is not built yet.
 * Workloads: oltp_point_select at 1 and 16 threads, oltp_read_only at 16 threads, and
 * oltp_update_index at 4 threads (autocommit writes, each a Dolt commit). Targets are
 * interleaved within each round (rotating which goes first) so drift — page cache, thermal,
 * noisy neighbours — spreads over all of them. The pipe's and the proxy's CPU time is read from
 * /proc/<pid>/stat before and after each run and charged per query.
 *
 * Environment: BENCH_SECONDS (per run, default 10), BENCH_ROUNDS (default 3), BENCH_TABLE_SIZE
 * (default 10000), BENCH_WARMUP_SECONDS (default 2), BENCH_LEGS (default direct,pipe,doltgate),
 * BENCH_PROXY_MODULE (a compiled module exporting runProxy to use instead of proxy/proxy-main),
 * BENCH_BEFORE_MODULE (another build's proxy-main.js: adds a `before` leg run in the same rounds,
 * and prints doltgate / before — how a change is measured),
 * BENCH_WORKLOADS (comma-separated labels, default all), BENCH_NODE_ARGS (node flags for the pipe
 * and proxy processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to compare where their time goes).
 *
 * Every process it starts it stops by PID, also on failure, Ctrl-C, or its own overall deadline.
 */

import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as os from 'node:os';
import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { ManagedChild } from '../common/child-process';
import { freePort } from '../common/free-port';
import { TestDoltCluster } from '../test/bed/dolt-cluster';
import { registerCleanup, runCleanups, tempDir } from '../test/bed/cleanup';
import { formatBeforeAfter, formatPipeOverhead, formatRatios, formatTable, summarize, type LegName, type Sample } from './bench-report';
import { envInt } from './bench-env';
import { waitForPort } from './wait-for-port';
import { cpuSeconds } from './proc-cpu';
import { PROXY_NOT_BUILT_EXIT, defaultProxyModule } from './proxy-leg-main';
import { killRunningSysbench, prepareSysbench, runSysbench, type SysbenchTarget, type SysbenchTest } from './sysbench';

interface Settings {
  workloads: Workload[];
  nodeArgs: string[];
  seconds: number;
  rounds: number;
  tableSize: number;
  warmupSeconds: number;
  legs: LegName[];
}

interface Workload {
  label: string;
  test: SysbenchTest;
  threads: number;
}

interface Leg {
  name: LegName;
  port: number;
  /** The process between sysbench and Dolt, whose CPU is charged per query; null for direct. */
  pid: number | null;
}

const allWorkloads: Workload[] = [
  { label: 'point_select 1 thread', test: 'oltp_point_select', threads: 1 },
  { label: 'point_select 16 threads', test: 'oltp_point_select', threads: 16 },
  { label: 'read_only 16 threads', test: 'oltp_read_only', threads: 16 },
  // Autocommit writes: each is a Dolt commit, and through doltgate each gets an outcome token.
  { label: 'update_index 4 threads', test: 'oltp_update_index', threads: 4 },
];

const database = 'sbtest';

function readSettings(): Settings {
  const before = process.env.BENCH_BEFORE_MODULE ?? '';
  const legs = (process.env.BENCH_LEGS ?? (before === '' ? 'direct,pipe,doltgate' : 'direct,pipe,doltgate,before')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const leg of legs) if (!['direct', 'pipe', 'doltgate', 'before'].includes(leg)) throw new Error(`BENCH_LEGS: unknown leg ${leg} (direct, pipe, doltgate, before)`);
  if (legs.includes('before') && !existsSync(before)) throw new Error(`BENCH_BEFORE_MODULE: ${before === '' ? 'not set' : `${before} does not exist`} (the before leg needs another build's proxy/proxy-main.js)`);
  const names = (process.env.BENCH_WORKLOADS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) if (!allWorkloads.some((w) => w.label === name)) throw new Error(`BENCH_WORKLOADS: unknown workload ${JSON.stringify(name)} (${allWorkloads.map((w) => w.label).join(', ')})`);
  return {
    workloads: names.length === 0 ? allWorkloads : allWorkloads.filter((w) => names.includes(w.label)),
    nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
    seconds: envInt('BENCH_SECONDS', 10, 1),
    rounds: envInt('BENCH_ROUNDS', 3, 1),
    tableSize: envInt('BENCH_TABLE_SIZE', 10_000, 1),
    warmupSeconds: envInt('BENCH_WARMUP_SECONDS', 2, 0),
    legs: legs as LegName[],
  };
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

async function startChild(command: string, args: string[], logFile: string): Promise<ManagedChild> {
  const child = new ManagedChild({ command, args, logFile });
  registerCleanup(() => child.stop(5000).then(() => undefined));
  await child.start();
  return child;
}

async function startPipe(dir: string, doltPort: number, nodeArgs: string[]): Promise<Leg> {
  const port = await freePort();
  const child = await startChild(process.execPath, [...nodeArgs, join(__dirname, 'tcp-pipe-main.js'), String(port), '127.0.0.1', String(doltPort)], join(dir, 'tcp-pipe.log'));
  await waitForPort(port, child, 10_000);
  return { name: 'pipe', port, pid: child.pid as number };
}

/** A doltgate leg (this build, or `before`: another), or a sentence saying why it is skipped. */
async function startDoltgate(dir: string, doltPort: number, nodeArgs: string[], name: 'doltgate' | 'before' = 'doltgate'): Promise<Leg | string> {
  const modulePath = name === 'before' ? (process.env.BENCH_BEFORE_MODULE as string) : process.env.BENCH_PROXY_MODULE || defaultProxyModule;
  if (!existsSync(modulePath)) return 'proxy not built';
  const port = await freePort();
  const config = join(dir, `${name}.yaml`);
  await writeFile(
    config,
    [
      '# Written by bench/proxy-bench.ts: one Dolt node, no etcd, root without a password.',
      `listen: { host: 127.0.0.1, port: ${port} }`,
      'default_auth_plugin: mysql_native_password',
      'users:',
      "  - { name: root, native_password_hash: '', caching_sha2_hash: '', backend_user: root, backend_password: '' }",
      'cluster: bench',
      'static_topology:',
      '  primary: n1',
      '  nodes:',
      `    n1: { host: 127.0.0.1, port: ${doltPort} }`,
      '',
    ].join('\n'),
  );
  const logFile = join(dir, `${name}.log`);
  const child = await startChild(process.execPath, [...nodeArgs, join(__dirname, 'proxy-leg-main.js'), config, modulePath], logFile);
  try {
    await waitForPort(port, child, 15_000);
  } catch (error) {
    await child.stop(2000);
    if (child.lastExit?.code === PROXY_NOT_BUILT_EXIT) {
      const why = /^proxy not built: (.*)$/m.exec(await readFile(logFile, 'utf8').catch(() => ''))?.[1];
      return why ? `proxy not built (${why})` : 'proxy not built';
    }
    return `proxy did not start (${(error as Error).message}); see ${logFile}`;
  }
  // One real query through it before trusting it with a benchmark.
  try {
    const connection = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', database, connectTimeout: 5000 });
    try {
      await connection.query('SELECT COUNT(*) FROM sbtest1');
    } finally {
      connection.destroy();
    }
  } catch (error) {
    await child.stop(2000);
    return `proxy did not answer a query (${(error as Error).message}); see ${logFile}`;
  }
  return { name, port, pid: child.pid as number };
}

function target(leg: Leg): SysbenchTarget {
  return { host: '127.0.0.1', port: leg.port, user: 'root', database };
}

function versionOf(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 10_000 }).trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

async function bench(settings: Settings): Promise<void> {
  const dir = await tempDir('bench');
  say(`starting one Dolt node (${versionOf('sysbench', ['--version'])}, node ${process.version}, ${os.cpus().length} CPUs)`);
  const cluster = await TestDoltCluster.start({ nodes: 1, databases: [database] });
  const dolt = cluster.primary;
  const doltPid = dolt.server.pid as number;
  const direct: Leg = { name: 'direct', port: dolt.port, pid: null };
  say(`preparing sbtest1 with ${settings.tableSize} rows`);
  await prepareSysbench(target(direct), { tables: 1, tableSize: settings.tableSize });

  const legs: Leg[] = [];
  if (settings.legs.includes('direct')) legs.push(direct);
  if (settings.legs.includes('pipe')) legs.push(await startPipe(dir, dolt.port, settings.nodeArgs));
  if (settings.legs.includes('doltgate')) {
    const leg = await startDoltgate(dir, dolt.port, settings.nodeArgs);
    if (typeof leg === 'string') say(`doltgate leg skipped: ${leg}`);
    else legs.push(leg);
  }
  if (settings.legs.includes('before')) {
    const leg = await startDoltgate(dir, dolt.port, settings.nodeArgs, 'before');
    if (typeof leg === 'string') throw new Error(`the before leg did not start: ${leg}`);
    legs.push(leg);
  }
  say(`targets: ${legs.map((l) => `${l.name} :${l.port}`).join(', ')}; ${settings.rounds} rounds × ${settings.workloads.length} workloads × ${settings.seconds} s`);

  if (settings.warmupSeconds > 0) {
    for (const leg of legs) {
      await runSysbench(target(leg), { test: 'oltp_point_select', threads: 4, seconds: settings.warmupSeconds, tables: 1, tableSize: settings.tableSize });
    }
  }

  const samples: Sample[] = [];
  for (let round = 0; round < settings.rounds; round++) {
    for (const [w, workload] of settings.workloads.entries()) {
      const shift = (round + w) % legs.length;
      const order = [...legs.slice(shift), ...legs.slice(0, shift)];
      for (const leg of order) {
        const legBefore = leg.pid === null ? null : cpuSeconds(leg.pid);
        const doltBefore = cpuSeconds(doltPid);
        const result = await runSysbench(target(leg), { test: workload.test, threads: workload.threads, seconds: settings.seconds, tables: 1, tableSize: settings.tableSize });
        const legCpuSeconds = leg.pid === null || legBefore === null ? null : cpuSeconds(leg.pid) - legBefore;
        const doltCpuSeconds = cpuSeconds(doltPid) - doltBefore;
        samples.push({ workload: workload.label, leg: leg.name, round, result, legCpuSeconds, doltCpuSeconds });
        const cpu = legCpuSeconds === null ? '' : `, ${((legCpuSeconds / Math.max(1, result.queries)) * 1e6).toFixed(1)} µs CPU/q`;
        say(`  round ${round + 1} ${workload.label.padEnd(24)} ${leg.name.padEnd(8)} ${result.qps.toFixed(0).padStart(7)} qps, p95 ${result.p95Ms.toFixed(2)} ms${cpu}${result.errors ? `, ${result.errors} errors` : ''}`);
      }
    }
  }

  const labels = settings.workloads.map((w) => w.label);
  const summaries = summarize(samples, labels, legs.map((l) => l.name));
  say('');
  say(formatTable(summaries));
  say('');
  say(formatPipeOverhead(summaries, labels));
  say('');
  say(formatRatios(summaries, labels, samples));
  const beforeAfter = formatBeforeAfter(summaries, labels);
  if (beforeAfter !== '') {
    say('');
    say(beforeAfter);
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
  // A hard ceiling on the whole run: every sysbench run plus generous set-up time.
  const runs = settings.rounds * settings.workloads.length * settings.legs.length;
  const budgetMs = (runs * (settings.seconds + 15) + settings.legs.length * (settings.warmupSeconds + 15) + 300) * 1000;
  let cleanup: Promise<void> | null = null;
  // Every way out (done, failure, signal, watchdog) goes through here; a second caller waits for
  // the cleanup the first one started instead of exiting under it.
  const finish = async (code: number): Promise<never> => {
    cleanup ??= (async () => {
      killRunningSysbench();
      try {
        await runCleanups();
      } catch (error) {
        process.stderr.write(`cleanup: ${(error as Error).message}\n`);
      }
    })();
    await cleanup;
    process.exit(code);
  };
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench exceeded its ${Math.round(budgetMs / 1000)} s budget; stopping everything it started\n`);
    void finish(1);
  }, budgetMs);
  watchdog.unref();
  // Output piped into `head` must not kill the run before it cleans up.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  process.on('uncaughtException', (error) => {
    if (cleanup) return;
    process.stderr.write(`bench crashed: ${error.stack ?? error.message}\n`);
    void finish(1);
  });
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench interrupted by ${signal}; stopping everything it started\n`);
      void finish(code);
    });
  }
  try {
    await bench(settings);
  } catch (error) {
    // A run that fails because we are already stopping (signal, watchdog) says nothing more.
    if (!cleanup) process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
    await finish(1);
  }
  await finish(0);
}

void main();
