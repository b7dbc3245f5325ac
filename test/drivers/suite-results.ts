/**
 * A driver's own test suite run twice, straight to a Dolt node and through the proxy, and what
 * differs between the two runs. The verdict the CI job gives (drivers-suites.test.ts): no test
 * may fail only through the proxy unless the known-differences list explains why.
 */

export type TestOutcome = 'pass' | 'fail' | 'skip';

/** One run of one suite: outcome per top-level test name. */
export type SuiteRun = ReadonlyMap<string, TestOutcome>;

export interface KnownDifference {
  suite: string;
  test: string;
  /** Why the proxy answers differently, and why that is right or accepted. */
  why: string;
}

export interface SuiteComparison {
  direct: Counts;
  proxy: Counts;
  /** Failed (or missing) through the proxy, passed or skipped direct, and not explained. */
  unexplained: string[];
  /** Failed only through the proxy, with the reason from the list. */
  explained: Array<{ test: string; why: string }>;
  /** Listed, but no longer differs: the list should lose them. */
  stale: string[];
  /** Failed direct, passed through the proxy. */
  betterThroughProxy: string[];
}

export interface Counts {
  pass: number;
  fail: number;
  skip: number;
}

function count(run: SuiteRun): Counts {
  const counts: Counts = { pass: 0, fail: 0, skip: 0 };
  for (const outcome of run.values()) counts[outcome]++;
  return counts;
}

/**
 * A test that did not run through the proxy at all (the run died before it) counts as failed
 * there: a crash of the suite must not pass for "no difference".
 */
export function compareRuns(suite: string, direct: SuiteRun, proxy: SuiteRun, known: readonly KnownDifference[]): SuiteComparison {
  const reasons = new Map(known.filter((entry) => entry.suite === suite).map((entry) => [entry.test, entry.why]));
  const unexplained: string[] = [];
  const explained: Array<{ test: string; why: string }> = [];
  const betterThroughProxy: string[] = [];
  const differing = new Set<string>();
  for (const [test, outcome] of [...direct].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const through = proxy.get(test) ?? 'fail';
    if (outcome !== 'fail' && through === 'fail') {
      differing.add(test);
      const why = reasons.get(test);
      if (why === undefined) unexplained.push(test);
      else explained.push({ test, why });
    } else if (outcome === 'fail' && through === 'pass') betterThroughProxy.push(test);
  }
  for (const [test, outcome] of proxy) {
    if (!direct.has(test) && outcome === 'fail' && !reasons.has(test)) unexplained.push(test);
  }
  const stale = [...reasons.keys()].filter((test) => !differing.has(test)).sort();
  return { direct: count(direct), proxy: count(proxy), unexplained, explained, stale, betterThroughProxy };
}

/**
 * `go test -json` output → verdict per top-level test (subtests are folded into their parent), and
 * the tests that started but got none: the test binary died under them (a panic, os.Exit).
 */
export function goTestVerdicts(output: string): { results: Map<string, TestOutcome>; unfinished: string[] } {
  const results = new Map<string, TestOutcome>();
  const started = new Set<string>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let event: { Action?: string; Test?: string };
    try {
      event = JSON.parse(line) as { Action?: string; Test?: string };
    } catch {
      continue;
    }
    if (event.Test === undefined || event.Test.includes('/')) continue;
    if (event.Action === 'run') started.add(event.Test);
    if (event.Action === 'pass' || event.Action === 'fail' || event.Action === 'skip') results.set(event.Test, event.Action);
  }
  return { results, unfinished: [...started].filter((test) => !results.has(test)).sort() };
}

/** Outcome per top-level test; one that started and never ended counts as failed. */
export function parseGoTestJson(output: string): Map<string, TestOutcome> {
  const { results, unfinished } = goTestVerdicts(output);
  for (const test of unfinished) results.set(test, 'fail');
  return results;
}
