/** The proxy benchmark's report: medians, CPU per query, the ratios and their verdicts, per-round spread. */

import { expect } from 'chai';

import { formatBeforeAfter, formatRatios, median, roundQpsRatios, summarize, type LegName, type Sample } from '../../bench/bench-report';

function sample(round: number, leg: LegName, qps: number, queries: number, legCpuSeconds: number | null, workload = 'point_select 16 threads'): Sample {
  return { workload, leg, round, result: { qps, tps: qps, p95Ms: 2, queries, errors: 0, reconnects: 0 }, legCpuSeconds, doltCpuSeconds: 1 };
}

describe('bench report', () => {
  const medians: Array<[number[], number]> = [
    [[], NaN],
    [[5], 5],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
  ];
  for (const [values, expected] of medians) {
    it(`median of [${values.join(', ')}] is ${expected}`, () => {
      if (Number.isNaN(expected)) expect(median(values)).to.be.NaN;
      else expect(median(values)).to.equal(expected);
    });
  }

  it('CPU per query is total CPU over total queries, not a mean of per-run figures', () => {
    const [proxy] = summarize([sample(1, 'doltgate', 100, 1000, 0.01), sample(2, 'doltgate', 100, 3000, 0.09)], ['point_select 16 threads'], ['doltgate']);
    expect(proxy.legCpuUsPerQuery).to.be.closeTo((0.1 / 4000) * 1e6, 1e-9);
    expect(proxy.runs).to.equal(2);
  });

  it('pairs doltgate with the pipe round by round, skipping rounds missing a leg', () => {
    const samples = [
      sample(1, 'pipe', 100, 1, 0),
      sample(1, 'doltgate', 90, 1, 0),
      sample(2, 'doltgate', 50, 1, 0),
      sample(3, 'doltgate', 110, 1, 0),
      sample(3, 'pipe', 100, 1, 0),
      sample(3, 'pipe', 999, 1, 0, 'read_only 16 threads'),
    ];
    expect(roundQpsRatios(samples, 'point_select 16 threads').map((r) => r.toFixed(2))).to.deep.equal(['0.90', '1.10']);
  });

  const verdicts: Array<{ proxyQps: number; proxyCpu: number; says: RegExp }> = [
    { proxyQps: 95, proxyCpu: 0.11, says: /QPS 0\.95x \(meets\)\s+CPU\/query 1\.10x \(meets\)/ },
    { proxyQps: 89, proxyCpu: 0.11, says: /QPS 0\.89x \(MISSES\)/ },
    { proxyQps: 95, proxyCpu: 0.12, says: /CPU\/query 1\.20x \(MISSES\)/ },
  ];
  for (const { proxyQps, proxyCpu, says } of verdicts) {
    it(`doltgate at ${proxyQps} QPS and ${proxyCpu} s CPU against the pipe's 100 and 0.1 s: ${says.source}`, () => {
      const samples = [sample(1, 'pipe', 100, 1000, 0.1), sample(1, 'doltgate', proxyQps, 1000, proxyCpu)];
      const summaries = summarize(samples, ['point_select 16 threads'], ['pipe', 'doltgate']);
      expect(formatRatios(summaries, ['point_select 16 threads'], samples)).to.match(says);
    });
  }

  it('prints the per-round range only when there are several rounds', () => {
    const one = [sample(1, 'pipe', 100, 1000, 0.1), sample(1, 'doltgate', 90, 1000, 0.1)];
    const two = [...one, sample(2, 'pipe', 100, 1000, 0.1), sample(2, 'doltgate', 97, 1000, 0.1)];
    const workloads = ['point_select 16 threads'];
    expect(formatRatios(summarize(one, workloads, ['pipe', 'doltgate']), workloads, one)).not.to.match(/by round/);
    expect(formatRatios(summarize(two, workloads, ['pipe', 'doltgate']), workloads, two)).to.match(/QPS by round 0\.90-0\.97x/);
  });

  it('says n/a for a workload without both legs', () => {
    const samples = [sample(1, 'doltgate', 90, 1000, 0.1)];
    expect(formatRatios(summarize(samples, ['point_select 16 threads'], ['doltgate']), ['point_select 16 threads'], samples)).to.match(/n\/a \(needs both/);
  });

  it('doltgate / before: this build against the earlier one, per workload; nothing without a before leg', () => {
    const w = 'point_select 16 threads';
    const samples = [sample(1, 'before', 100, 1000, 0.1), sample(1, 'doltgate', 110, 1000, 0.09)];
    const text = formatBeforeAfter(summarize(samples, [w], ['before', 'doltgate']), [w]);
    expect(text).to.match(/^doltgate \/ before/);
    expect(text).to.contain('QPS 1.10x');
    expect(text).to.contain('CPU/query 0.90x');
    expect(formatBeforeAfter(summarize([sample(1, 'doltgate', 110, 1000, 0.09)], [w], ['doltgate']), [w])).to.equal('');
  });
});
