/**
 * ReplicaSelector and nextRetryDelayMs: exact distributions of the smooth weighted round robin,
 * least-outstanding with weights and round-robin tie-breaks, down/up with an injected clock,
 * exponential backoff with a cap, and replica-list changes that keep state.
 */

import { expect } from 'chai';

import {
  BackoffPolicy,
  nextRetryDelayMs,
  ReplicaConfigError,
  ReplicaSelector,
  ReplicaWeight,
  SelectionStrategy,
} from '../../proxy/routing/replica-selector';

function picks(selector: ReplicaSelector, n: number, now = 0): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(selector.pick(now) ?? 'primary');
  return out;
}

function counts(names: string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const n of names) c[n] = (c[n] ?? 0) + 1;
  return c;
}

function selector(strategy: SelectionStrategy, replicas: ReplicaWeight[], backoff?: BackoffPolicy): ReplicaSelector {
  const s = new ReplicaSelector(strategy, backoff);
  s.setReplicas(replicas);
  return s;
}

describe('ReplicaSelector round-robin (smooth weighted)', () => {
  const rows: Array<{ name: string; replicas: ReplicaWeight[]; n: number; want: Record<string, number> }> = [
    { name: 'a 100, b 200 for weights 1:2 over 300 picks', replicas: [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }], n: 300, want: { a: 100, b: 200 } },
    { name: 'a 500, b 100, c 100 for weights 5:1:1 over 700 picks', replicas: [{ name: 'a', weight: 5 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }], n: 700, want: { a: 500, b: 100, c: 100 } },
    { name: 'an even split for equal weights', replicas: [{ name: 'a', weight: 3 }, { name: 'b', weight: 3 }, { name: 'c', weight: 3 }], n: 90, want: { a: 30, b: 30, c: 30 } },
    { name: 'nothing for a weight-0 replica', replicas: [{ name: 'a', weight: 1 }, { name: 'drained', weight: 0 }], n: 10, want: { a: 10 } },
    { name: 'the primary when every replica is drained', replicas: [{ name: 'a', weight: 0 }], n: 3, want: { primary: 3 } },
    { name: 'the primary when there are no replicas', replicas: [], n: 3, want: { primary: 3 } },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(counts(picks(selector('round-robin', row.replicas), row.n))).to.deep.equal(row.want);
    });
  }

  it('spreads picks of the heavier replica instead of bunching them (B A B, then again)', () => {
    const s = selector('round-robin', [{ name: 'A', weight: 1 }, { name: 'B', weight: 2 }]);
    expect(picks(s, 6).join(' ')).to.equal('B A B B A B');
  });

  it('interleaves 5:1:1 as a a b a c a a', () => {
    const s = selector('round-robin', [{ name: 'a', weight: 5 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }]);
    expect(picks(s, 7).join(' ')).to.equal('a a b a c a a');
  });

  it('alternates strictly between two equal replicas, first listed first', () => {
    const s = selector('round-robin', [{ name: 'x', weight: 1 }, { name: 'y', weight: 1 }]);
    expect(picks(s, 4)).to.deep.equal(['x', 'y', 'x', 'y']);
  });
});

describe('ReplicaSelector down and up (injected clock)', () => {
  it('skips a replica marked down until its time has come, then uses it again', () => {
    const s = selector('round-robin', [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }]);
    s.markDown('b', 1000);
    expect(counts(picks(s, 10, 999))).to.deep.equal({ a: 10 });
    expect(s.isAvailable('b', 999)).to.equal(false);
    expect(s.isAvailable('b', 1000)).to.equal(true);
    expect(counts(picks(s, 10, 1000))).to.deep.equal({ a: 5, b: 5 });
  });

  it('markUp brings a replica back before its time', () => {
    const s = selector('round-robin', [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }]);
    s.markDown('b', 10_000);
    s.markUp('b');
    expect(counts(picks(s, 4, 0))).to.deep.equal({ a: 2, b: 2 });
  });

  it('falls back to the primary while every replica is down', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }]);
    s.markDown('a', 500);
    s.markDown('b', 700);
    expect(s.pick(499)).to.equal(undefined);
    expect(s.pick(600)).to.equal('a');
    expect(s.pick(700)).to.be.oneOf(['a', 'b']);
  });

  it('markFailed keeps a replica out for a backoff that doubles and resets on markUp', () => {
    const policy: BackoffPolicy = { initialMs: 100, maxMs: 1000, multiplier: 2 };
    const s = selector('round-robin', [{ name: 'a', weight: 1 }], policy);
    expect(s.markFailed('a', 0)).to.equal(100);
    expect(s.markFailed('a', 100)).to.equal(300);
    expect(s.markFailed('a', 300)).to.equal(700);
    expect(s.pick(699)).to.equal(undefined);
    expect(s.pick(700)).to.equal('a');
    s.markUp('a');
    expect(s.markFailed('a', 1000)).to.equal(1100);
    expect(s.status(1000)[0]).to.deep.include({ name: 'a', available: false, downUntilMs: 1100, failures: 1 });
  });

  it('ignores names it does not know', () => {
    const s = selector('round-robin', [{ name: 'a', weight: 1 }]);
    s.markDown('ghost', 1e9);
    s.markUp('ghost');
    s.begin('ghost');
    s.end('ghost');
    expect(s.markFailed('ghost', 0)).to.equal(undefined);
    expect(s.isAvailable('ghost', 0)).to.equal(false);
    expect(s.outstanding('ghost')).to.equal(0);
    expect(s.pick(0)).to.equal('a');
  });
});

describe('ReplicaSelector least-outstanding', () => {
  it('sends the next read to the replica with fewer queries in flight', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }]);
    s.begin('a');
    s.begin('a');
    s.begin('b');
    expect(s.pick(0)).to.equal('b');
    s.begin('b');
    s.begin('b');
    expect(s.pick(0)).to.equal('a');
  });

  it('divides the count in flight by weight', () => {
    const s = selector('least-outstanding', [{ name: 'light', weight: 1 }, { name: 'heavy', weight: 3 }]);
    s.begin('light'); // 1/1
    for (let i = 0; i < 2; i++) s.begin('heavy'); // 2/3 < 1
    expect(s.pick(0)).to.equal('heavy');
    s.begin('heavy'); // 3/3 == 1/1: tie
    s.begin('heavy'); // 4/3 > 1
    expect(s.pick(0)).to.equal('light');
  });

  it('keeps the counts in flight balanced when every pick begins a query', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }]);
    for (let i = 0; i < 30; i++) s.begin(s.pick(0) as string);
    expect({ a: s.outstanding('a'), b: s.outstanding('b') }).to.deep.equal({ a: 10, b: 20 });
  });

  it('breaks ties by weighted round robin: idle replicas 1:2 get 100 and 200 of 300 reads', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 2 }]);
    expect(counts(picks(s, 300))).to.deep.equal({ a: 100, b: 200 });
  });

  it('rotates among tied replicas rather than always taking the first', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }, { name: 'c', weight: 1 }]);
    s.begin('c');
    expect(picks(s, 4)).to.deep.equal(['a', 'b', 'a', 'b']);
  });

  it('never counts below zero on an unmatched end', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }]);
    s.end('a');
    s.end('a');
    expect(s.outstanding('a')).to.equal(0);
    s.begin('a');
    expect(s.outstanding('a')).to.equal(1);
    expect(s.pick(0)).to.equal('b');
  });

  it('skips down and drained replicas', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 0 }, { name: 'c', weight: 1 }]);
    s.begin('a');
    s.markDown('c', 100);
    expect(s.pick(50)).to.equal('a');
    expect(s.pick(100)).to.equal('c');
  });
});

describe('ReplicaSelector replica list changes', () => {
  it('keeps counts and down state of replicas that stay, forgets removed ones', () => {
    const s = selector('least-outstanding', [{ name: 'a', weight: 1 }, { name: 'b', weight: 1 }]);
    s.begin('a');
    s.markDown('b', 500);
    s.setReplicas([{ name: 'b', weight: 1 }, { name: 'c', weight: 2 }, { name: 'a', weight: 1 }]);
    expect(s.outstanding('a')).to.equal(1);
    expect(s.isAvailable('b', 0)).to.equal(false);
    s.setReplicas([{ name: 'b', weight: 1 }]);
    expect(s.outstanding('a')).to.equal(0);
    s.end('a'); // late end for a removed replica: ignored
    expect(s.status(0).map((r) => r.name)).to.deep.equal(['b']);
  });

  const bad: Array<[string, ReplicaWeight[]]> = [
    ['a duplicate name', [{ name: 'a', weight: 1 }, { name: 'a', weight: 2 }]],
    ['an empty name', [{ name: '', weight: 1 }]],
    ['a negative weight', [{ name: 'a', weight: -1 }]],
    ['a NaN weight', [{ name: 'a', weight: Number.NaN }]],
    ['an infinite weight', [{ name: 'a', weight: Number.POSITIVE_INFINITY }]],
  ];
  for (const [what, replicas] of bad) {
    it(`rejects ${what} with REPLICA_CONFIG and keeps the old list`, () => {
      const s = selector('round-robin', [{ name: 'keep', weight: 1 }]);
      expect(() => s.setReplicas(replicas)).to.throw(ReplicaConfigError).with.property('code', 'REPLICA_CONFIG');
      expect(s.pick(0)).to.equal('keep');
    });
  }

  it('reports status for metrics', () => {
    const s = selector('round-robin', [{ name: 'a', weight: 2 }, { name: 'b', weight: 1 }]);
    s.begin('a');
    s.markDown('b', 100);
    expect(s.status(50)).to.deep.equal([
      { name: 'a', weight: 2, available: true, downUntilMs: undefined, failures: 0, outstanding: 1 },
      { name: 'b', weight: 1, available: false, downUntilMs: 100, failures: 0, outstanding: 0 },
    ]);
    expect(s.status(100)[1]).to.deep.include({ available: true, downUntilMs: undefined });
  });
});

describe('nextRetryDelayMs', () => {
  const policy: BackoffPolicy = { initialMs: 250, maxMs: 30_000, multiplier: 2 };
  const rows: Array<[number, number]> = [
    [0, 0],
    [-3, 0],
    [Number.NaN, 0],
    [1, 250],
    [2, 500],
    [3, 1000],
    [7, 16_000],
    [8, 30_000],
    [1000, 30_000],
    [1e9, 30_000],
    [2.7, 500],
  ];
  for (const [failures, want] of rows) {
    it(`${want} ms after ${failures} failures`, () => {
      expect(nextRetryDelayMs(failures, policy)).to.equal(want);
    });
  }

  it('uses the default policy when none is given', () => {
    expect(nextRetryDelayMs(1)).to.equal(250);
    expect(nextRetryDelayMs(100)).to.equal(30_000);
  });

  it('follows a custom multiplier and cap', () => {
    const slow: BackoffPolicy = { initialMs: 10, maxMs: 100, multiplier: 3 };
    expect([1, 2, 3, 4].map((f) => nextRetryDelayMs(f, slow))).to.deep.equal([10, 30, 90, 100]);
  });
});
