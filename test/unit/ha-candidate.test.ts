/**
 * chooseCandidate: eligibility and ranking as one table. Each row names the expected winner (or
 * its absence) and asserts the full ranking and every exclusion reason, since waiting agents
 * print those reasons verbatim.
 */

import { expect } from 'chai';
import type { MemberRecord, Topology } from '../../proto';
import {
  chooseCandidate,
  compareCandidates,
  describeExclusions,
  standingOf,
  type CandidateOptions,
} from '../../agent/ha/candidate';
import { config, member, topology, type NodeSpec } from './ha-fixtures.test';

function members(specs: Record<string, NodeSpec>): Record<string, MemberRecord> {
  const out: Record<string, MemberRecord> = {};
  for (const [name, spec] of Object.entries(specs)) out[name] = member(name, spec);
  return out;
}

const stable: Topology = topology(7, 'a', ['a', 'b', 'c', 'd']);

interface Row {
  name: string;
  specs: Record<string, NodeSpec>;
  topology?: Topology | null;
  options?: CandidateOptions;
  ranked: string[];
  excluded?: string[];
}

const rows: Row[] = [
  {
    name: 'cluster mode: c, caught up with the failed primary a, beats b, which a last saw behind, despite priority and name',
    specs: { a: { role: 'primary', standbysBehind: ['b'] }, b: { priority: 200 }, c: { priority: 50 } },
    ranked: ['c', 'b'],
    excluded: ['a is the failed primary'],
  },
  {
    name: 'cluster mode: every standby behind: they rank by priority as usual (none is excluded for it)',
    specs: { a: { role: 'primary', standbysBehind: ['b', 'c'] }, b: { priority: 50 }, c: { priority: 100 } },
    ranked: ['c', 'b'],
    excluded: ['a is the failed primary'],
  },
  {
    name: 'cluster mode: the failed primary\'s record gone (its host lost): no position known, priority and name decide',
    specs: { b: {}, c: { priority: 150 } },
    ranked: ['c', 'b'],
  },
  {
    name: 'b: full tie on priority and lag goes to name order',
    specs: { a: { role: 'primary' }, c: {}, b: {} },
    ranked: ['b', 'c'],
    excluded: ['a is the failed primary'],
  },
  {
    name: 'c: higher priority beats lower lag and earlier name',
    specs: { a: { role: 'primary' }, b: { priority: 50 }, c: { priority: 100, behind: 20 } },
    ranked: ['c', 'b'],
    excluded: ['a is the failed primary'],
  },
  {
    name: 'c: same priority, least behind the remote wins',
    specs: { a: { role: 'primary' }, b: { behind: 5 }, c: { behind: 0 } },
    ranked: ['c', 'b'],
    excluded: ['a is the failed primary'],
  },
  {
    name: 'c: unhealthy b excluded, with its failure count and last error',
    specs: { a: { role: 'primary' }, b: { healthy: false, failures: 3, lastError: 'connection refused' }, c: {} },
    ranked: ['c'],
    excluded: ['a is the failed primary', 'b is unhealthy (3 failed checks: connection refused)'],
  },
  {
    name: 'c: b excluded at the failure threshold even though its checker still says healthy',
    specs: { a: { role: 'primary' }, b: { healthy: true, failures: 3 }, c: {} },
    ranked: ['c'],
    excluded: ['a is the failed primary', 'b is unhealthy (3 failed checks)'],
  },
  {
    name: 'b: one failed check below the threshold keeps b eligible',
    specs: { a: { role: 'primary' }, b: { healthy: true, failures: 1 }, c: { priority: 10 } },
    ranked: ['b', 'c'],
    excluded: ['a is the failed primary'],
  },
  {
    name: 'c: nofailover b excluded whatever its priority',
    specs: { a: { role: 'primary' }, b: { nofailover: true, priority: 1000 }, c: {} },
    ranked: ['c'],
    excluded: ['a is the failed primary', 'b has nofailover'],
  },
  {
    name: 'c: b over the lag limit excluded',
    specs: { a: { role: 'primary' }, b: { behind: 101, priority: 200 }, c: { behind: 100 } },
    ranked: ['c'],
    excluded: ['a is the failed primary', 'b is 101 commits behind the remote (limit 100)'],
  },
  {
    name: 'b: ignoreLag (forced op) ranks a lagging node again',
    specs: { a: { role: 'primary' }, b: { behind: 500, priority: 200 }, c: {} },
    options: { ignoreLag: true },
    ranked: ['b', 'c'],
    excluded: ['a is the failed primary'],
  },
  {
    name: 'c: a fenced old primary that has not rejoined is not a replica',
    specs: { a: { role: 'primary' }, b: { role: 'fenced', priority: 200 }, c: {} },
    ranked: ['c'],
    excluded: ['a is the failed primary', 'b reports role fenced, not replica'],
  },
  {
    name: 'none: every replica excluded',
    specs: { a: { role: 'primary' }, b: { healthy: false }, c: { nofailover: true } },
    ranked: [],
    excluded: ['a is the failed primary', 'b is unhealthy (3 failed checks)', 'c has nofailover'],
  },
  {
    name: 'b: switchover words the outgoing primary as current',
    specs: { a: { role: 'primary' }, b: {} },
    options: { outgoing: 'a', outgoingWhy: 'current' },
    ranked: ['b'],
    excluded: ['a is the current primary'],
  },
  {
    name: 'a: bootstrap (no topology) ranks every role and excludes no outgoing primary',
    specs: { a: { role: 'down', priority: 200 }, b: { role: 'fenced' } },
    topology: null,
    ranked: ['a', 'b'],
  },
  {
    name: 'c: a stalled failover excludes the failed primary named by history, not the topology',
    specs: { a: { role: 'primary' }, b: {}, c: { priority: 200 } },
    topology: topology(8, null, ['a', 'b', 'c'], 'failover'),
    options: { outgoing: 'b' },
    ranked: ['c'],
    excluded: ['a reports role primary, not replica', 'b is the failed primary'],
  },
];

describe('ha chooseCandidate', () => {
  for (const row of rows) {
    it(row.name, () => {
      const choice = chooseCandidate(members(row.specs), row.topology === undefined ? stable : row.topology, config, row.options);
      expect(choice.ranked.map((c) => c.name)).to.deep.equal(row.ranked);
      expect(choice.chosen?.name ?? null).to.equal(row.ranked[0] ?? null);
      expect(choice.excluded.map((e) => e.reason)).to.deep.equal(row.excluded ?? []);
    });
  }

  it('gives the same answer whatever order the member records arrive in', () => {
    const specs: Record<string, NodeSpec> = { a: { role: 'primary' }, b: { priority: 50 }, c: { behind: 3 }, d: { behind: 3 }, e: { behind: 1 } };
    const names = Object.keys(specs);
    const expected = chooseCandidate(members(specs), stable, config).ranked.map((c) => c.name);
    expect(expected).to.deep.equal(['e', 'c', 'd', 'b']);
    for (let shift = 1; shift < names.length; shift++) {
      const order = [...names.slice(shift), ...names.slice(0, shift)].reverse();
      const shuffled: Record<string, NodeSpec> = {};
      for (const name of order) shuffled[name] = specs[name]!;
      expect(chooseCandidate(members(shuffled), stable, config).ranked.map((c) => c.name)).to.deep.equal(expected);
    }
  });

  it('judges a record under its etcd key when its body names another node', () => {
    const records = { b: { ...member('b'), name: 'zz' } };
    expect(chooseCandidate(records, stable, config).chosen?.name).to.equal('b');
  });

  it('sorts names by code unit, not locale', () => {
    const base = { priority: 1, commitsBehindRemote: 0 };
    expect(compareCandidates({ ...base, name: 'B' }, { ...base, name: 'a' })).to.be.below(0);
  });

  it('describes exclusions without the outgoing primary, and where a node stands', () => {
    const choice = chooseCandidate(members({ a: { role: 'primary' }, b: {}, c: { nofailover: true }, d: {} }), stable, config);
    expect(describeExclusions(choice.excluded)).to.equal('c has nofailover');
    expect(describeExclusions(choice.excluded.filter((e) => e.name === 'a'))).to.equal('no live replica');
    expect(standingOf(choice, 'd')).to.equal('this node ranks 2nd');
    expect(standingOf(choice, 'c')).to.equal('this node is excluded: c has nofailover');
    expect(standingOf(choice, 'x')).to.equal('this node has no live member record');
  });
});
