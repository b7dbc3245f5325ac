/**
 * Running sysbench's OLTP Lua tests against one MySQL endpoint and reading its report.
 * Dolt needs nothing special: server-side prepared statements and the default options work
 * (checked against Dolt 1.86 with sysbench 1.0.20); the database must exist before `prepare`.
 *
 * Every run has a hard deadline (its duration plus a margin): sysbench is killed by its PID
 * (execFile's timeout) rather than left to hang the benchmark.
 */

import { execFile, type ChildProcess } from 'node:child_process';

export type SysbenchTest = 'oltp_point_select' | 'oltp_read_only' | 'oltp_read_write' | 'oltp_update_index';

export interface SysbenchTarget {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export interface SysbenchWorkload {
  test: SysbenchTest;
  threads: number;
  seconds: number;
  tables: number;
  tableSize: number;
}

export interface SysbenchResult {
  queries: number;
  qps: number;
  tps: number;
  p95Ms: number;
  errors: number;
  reconnects: number;
}

export class SysbenchError extends Error {
  readonly code = 'SYSBENCH';
  constructor(what: string, detail: string) {
    super(`sysbench ${what} failed: ${detail}`);
  }
}

export class SysbenchOutputError extends Error {
  readonly code = 'SYSBENCH_OUTPUT';
  constructor(missing: string, output: string) {
    super(`sysbench output has no ${missing}; last lines:\n${output.trim().split('\n').slice(-15).join('\n')}`);
  }
}

function connectionArgs(target: SysbenchTarget): string[] {
  const password = target.password === undefined ? [] : [`--mysql-password=${target.password}`];
  return [`--mysql-host=${target.host}`, `--mysql-port=${target.port}`, `--mysql-user=${target.user}`, ...password, `--mysql-db=${target.database}`, '--db-driver=mysql'];
}

const running = new Set<ChildProcess>();

/** SIGKILLs, by PID, every sysbench still running: for a benchmark that is being stopped. */
export function killRunningSysbench(): void {
  for (const child of running) {
    if (child.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

function run(args: string[], timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('sysbench', args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      running.delete(child);
      if (error) reject(new SysbenchError(what, `${error.message}\n${(stdout + stderr).trim().split('\n').slice(-10).join('\n')}`));
      else resolve(stdout);
    });
    running.add(child);
  });
}

/** Creates and fills the tables (dropping earlier ones first, so a rerun starts clean). */
export async function prepareSysbench(target: SysbenchTarget, workload: Pick<SysbenchWorkload, 'tables' | 'tableSize'>): Promise<void> {
  const shape = [`--tables=${workload.tables}`, `--table-size=${workload.tableSize}`];
  await run(['oltp_read_only', ...connectionArgs(target), ...shape, 'cleanup'], 120_000, 'cleanup');
  await run(['oltp_read_only', ...connectionArgs(target), ...shape, 'prepare'], 600_000, 'prepare');
}

export async function runSysbench(target: SysbenchTarget, workload: SysbenchWorkload): Promise<SysbenchResult> {
  const args = [
    workload.test,
    ...connectionArgs(target),
    `--tables=${workload.tables}`,
    `--table-size=${workload.tableSize}`,
    `--threads=${workload.threads}`,
    `--time=${workload.seconds}`,
    '--percentile=95',
    // Report nothing while running; the summary is what we parse.
    '--report-interval=0',
    'run',
  ];
  const output = await run(args, (workload.seconds + 60) * 1000, `${workload.test} run on port ${target.port}`);
  return parseSysbenchOutput(output);
}

function number(output: string, pattern: RegExp, what: string): number {
  const match = pattern.exec(output);
  if (!match) throw new SysbenchOutputError(what, output);
  return Number(match[1]);
}

/** Reads the summary sysbench 1.0 prints after a run. */
export function parseSysbenchOutput(output: string): SysbenchResult {
  return {
    queries: number(output, /^\s*queries:\s+(\d+)\s+\(/m, 'query count'),
    qps: number(output, /^\s*queries:\s+\d+\s+\(([\d.]+) per sec\.\)/m, 'queries per second'),
    tps: number(output, /^\s*transactions:\s+\d+\s+\(([\d.]+) per sec\.\)/m, 'transactions per second'),
    p95Ms: number(output, /^\s*95th percentile:\s+([\d.]+)/m, '95th percentile latency'),
    errors: number(output, /^\s*ignored errors:\s+(\d+)/m, 'error count'),
    reconnects: number(output, /^\s*reconnects:\s+(\d+)/m, 'reconnect count'),
  };
}
