/**
 * Turns the benchmark's samples into the table it prints: per workload and target the median
 * QPS and p95 latency over the rounds, and CPU microseconds per query of the middle process (the
 * pipe or the proxy) and of Dolt; then the ratios doltgate / pipe against the targets. Pure: the
 * numbers in, text out. It reports; it never fails a run because a ratio missed its target.
 */

import type { SysbenchResult } from './sysbench';

/** `before`: an earlier doltgate build (BENCH_BEFORE_MODULE), run in the same rounds to compare a change. */
export type LegName = 'direct' | 'pipe' | 'doltgate' | 'before';

export interface Sample {
  workload: string;
  leg: LegName;
  round: number;
  result: SysbenchResult;
  /** CPU seconds the pipe or proxy process used during the run; null for direct. */
  legCpuSeconds: number | null;
  doltCpuSeconds: number;
}

export interface Summary {
  workload: string;
  leg: LegName;
  runs: number;
  qps: number;
  p95Ms: number;
  /** CPU µs of the pipe/proxy process per query; null for direct. */
  legCpuUsPerQuery: number | null;
  doltCpuUsPerQuery: number;
  errors: number;
}

export const targets = { minQpsRatio: 0.9, maxCpuRatio: 1.15 };

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** CPU per query is total CPU over total queries (not a median of ratios): long runs weigh more. */
export function summarize(samples: Sample[], workloads: string[], legs: LegName[]): Summary[] {
  const summaries: Summary[] = [];
  for (const workload of workloads) {
    for (const leg of legs) {
      const mine = samples.filter((s) => s.workload === workload && s.leg === leg);
      if (mine.length === 0) continue;
      const queries = mine.reduce((sum, s) => sum + s.result.queries, 0);
      const legCpu = mine.every((s) => s.legCpuSeconds !== null) ? mine.reduce((sum, s) => sum + (s.legCpuSeconds ?? 0), 0) : null;
      summaries.push({
        workload,
        leg,
        runs: mine.length,
        qps: median(mine.map((s) => s.result.qps)),
        p95Ms: median(mine.map((s) => s.result.p95Ms)),
        legCpuUsPerQuery: legCpu === null || queries === 0 ? null : (legCpu / queries) * 1e6,
        doltCpuUsPerQuery: queries === 0 ? NaN : (mine.reduce((sum, s) => sum + s.doltCpuSeconds, 0) / queries) * 1e6,
        errors: mine.reduce((sum, s) => sum + s.result.errors, 0),
      });
    }
  }
  return summaries;
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function fixed(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

export function formatTable(summaries: Summary[]): string {
  const header = [pad('workload', 26), pad('target', 9), pad('QPS', 10, true), pad('p95 ms', 8, true), pad('mid µs CPU/q', 13, true), pad('dolt µs CPU/q', 14, true), pad('errors', 7, true), pad('runs', 5, true)];
  const lines = [header.join(' ')];
  let last = '';
  for (const s of summaries) {
    lines.push(
      [
        pad(s.workload === last ? '' : s.workload, 26),
        pad(s.leg, 9),
        pad(fixed(s.qps, 0), 10, true),
        pad(fixed(s.p95Ms, 2), 8, true),
        pad(fixed(s.legCpuUsPerQuery, 1), 13, true),
        pad(fixed(s.doltCpuUsPerQuery, 1), 14, true),
        pad(String(s.errors), 7, true),
        pad(String(s.runs), 5, true),
      ].join(' '),
    );
    last = s.workload;
  }
  return lines.join('\n');
}

/**
 * doltgate QPS over the pipe's within each round. Legs of a round run back to back, so a noisy
 * minute hits both; the spread of these shows how much one verdict can be trusted.
 */
export function roundQpsRatios(samples: Sample[], workload: string): number[] {
  const ratios: number[] = [];
  const rounds = new Set(samples.filter((s) => s.workload === workload).map((s) => s.round));
  for (const round of [...rounds].sort((a, b) => a - b)) {
    const pipe = samples.find((s) => s.workload === workload && s.round === round && s.leg === 'pipe');
    const proxy = samples.find((s) => s.workload === workload && s.round === round && s.leg === 'doltgate');
    if (pipe && proxy && pipe.result.qps > 0) ratios.push(proxy.result.qps / pipe.result.qps);
  }
  return ratios;
}

export function formatRatios(summaries: Summary[], workloads: string[], samples: Sample[] = []): string {
  const lines = [`doltgate / pipe (targets: QPS >= ${targets.minQpsRatio.toFixed(2)}x, CPU per query <= ${targets.maxCpuRatio.toFixed(2)}x)`];
  for (const workload of workloads) {
    const pipe = summaries.find((s) => s.workload === workload && s.leg === 'pipe');
    const proxy = summaries.find((s) => s.workload === workload && s.leg === 'doltgate');
    if (!pipe || !proxy) {
      lines.push(`  ${pad(workload, 26)} n/a (needs both the pipe and the doltgate legs)`);
      continue;
    }
    const qpsRatio = proxy.qps / pipe.qps;
    const cpuRatio = proxy.legCpuUsPerQuery !== null && pipe.legCpuUsPerQuery ? proxy.legCpuUsPerQuery / pipe.legCpuUsPerQuery : NaN;
    const qpsVerdict = qpsRatio >= targets.minQpsRatio ? 'meets' : 'MISSES';
    const cpuVerdict = cpuRatio <= targets.maxCpuRatio ? 'meets' : Number.isFinite(cpuRatio) ? 'MISSES' : 'n/a';
    const perRound = roundQpsRatios(samples, workload);
    const spread = perRound.length > 1 ? `   QPS by round ${fixed(Math.min(...perRound), 2)}-${fixed(Math.max(...perRound), 2)}x` : '';
    lines.push(`  ${pad(workload, 26)} QPS ${fixed(qpsRatio, 2)}x (${qpsVerdict})   CPU/query ${fixed(cpuRatio, 2)}x (${cpuVerdict})${spread}`);
  }
  return lines.join('\n');
}

/**
 * doltgate / before: the build under test against an earlier one, both proxies in the same
 * rounds (so drift hits both), per workload: QPS and proxy CPU per query; empty without a
 * `before` leg.
 */
export function formatBeforeAfter(summaries: Summary[], workloads: string[]): string {
  const lines: string[] = [];
  for (const workload of workloads) {
    const before = summaries.find((s) => s.workload === workload && s.leg === 'before');
    const after = summaries.find((s) => s.workload === workload && s.leg === 'doltgate');
    if (!before || !after) continue;
    const cpu = after.legCpuUsPerQuery !== null && before.legCpuUsPerQuery ? after.legCpuUsPerQuery / before.legCpuUsPerQuery : NaN;
    lines.push(`  ${pad(workload, 26)} QPS ${fixed(after.qps / before.qps, 2)}x   CPU/query ${fixed(cpu, 2)}x   p95 ${fixed(after.p95Ms / before.p95Ms, 2)}x`);
  }
  return lines.length === 0 ? '' : ['doltgate / before (this build against BENCH_BEFORE_MODULE, same rounds)', ...lines].join('\n');
}

/** Context for reading the table: what the pipe itself costs against going direct. */
export function formatPipeOverhead(summaries: Summary[], workloads: string[]): string {
  const lines = ['pipe / direct (the cost of any extra hop, for context)'];
  for (const workload of workloads) {
    const direct = summaries.find((s) => s.workload === workload && s.leg === 'direct');
    const pipe = summaries.find((s) => s.workload === workload && s.leg === 'pipe');
    if (!direct || !pipe) continue;
    lines.push(`  ${pad(workload, 26)} QPS ${fixed(pipe.qps / direct.qps, 2)}x   p95 ${fixed(pipe.p95Ms / direct.p95Ms, 2)}x`);
  }
  return lines.join('\n');
}
