/**
 * The route decision, row by row: each rule of proxy/routing/route-decision.ts where it applies,
 * and each pair of rules where the earlier one must win. A row names only the facts that differ
 * from a plain autocommit read with nothing open (which goes to a replica).
 */

import { expect } from 'chai';
import { readTarget, routeOf, type RouteFacts, type RouteKind } from '../../proxy/routing/route-decision';

const plainRead: RouteFacts = {
  inTransaction: false,
  autocommit: true,
  pinned: false,
  followsPrevious: false,
  previousUsable: false,
  classifiedPrimary: false,
  hintedReplica: false,
  readYourWritesOpen: false,
};

const rows: Array<{ name: string; facts: Partial<RouteFacts>; route: RouteKind }> = [
  { name: '6: a plain autocommit read goes to a replica', facts: {}, route: 'replica' },
  { name: '6: hinted to a replica, nothing else', facts: { hintedReplica: true }, route: 'replica' },
  { name: '1: in a transaction', facts: { inTransaction: true }, route: 'primary' },
  { name: '1: autocommit off', facts: { autocommit: false }, route: 'primary' },
  { name: '1 before 3: a follow-up inside a transaction stays on the primary', facts: { inTransaction: true, followsPrevious: true, previousUsable: true }, route: 'primary' },
  { name: '1 before 6: a replica hint does not move a transaction', facts: { inTransaction: true, hintedReplica: true }, route: 'primary' },
  { name: '2: pinned', facts: { pinned: true }, route: 'primary' },
  { name: '2 before 3: a pinned session\'s follow-up stays on the primary', facts: { pinned: true, followsPrevious: true, previousUsable: true }, route: 'primary' },
  { name: '2 before 6: a replica hint does not move a pinned session', facts: { pinned: true, hintedReplica: true }, route: 'primary' },
  { name: '3: a follow-up goes to the connection that ran the previous statement', facts: { followsPrevious: true, previousUsable: true, classifiedPrimary: true }, route: 'previous' },
  { name: '3: a follow-up whose previous connection is gone falls to rule 4', facts: { followsPrevious: true, previousUsable: false, classifiedPrimary: true }, route: 'primary' },
  { name: '3 before 5: a follow-up inside the read-your-writes window stays with its connection', facts: { followsPrevious: true, previousUsable: true, classifiedPrimary: true, readYourWritesOpen: true }, route: 'previous' },
  { name: '3: a usable previous connection without a follow-up is not a reason', facts: { previousUsable: true }, route: 'replica' },
  { name: '4: classified primary (a write, DDL, CALL, a locking read, a primary hint)', facts: { classifiedPrimary: true }, route: 'primary' },
  { name: '4 before 6: classified primary wins over a replica hint the classifier ignored', facts: { classifiedPrimary: true, hintedReplica: true }, route: 'primary' },
  { name: '5: the read-your-writes window is open', facts: { readYourWritesOpen: true }, route: 'primary' },
  { name: '5: a replica hint opts out of the read-your-writes window', facts: { readYourWritesOpen: true, hintedReplica: true }, route: 'replica' },
];

describe('route decision (pure, rule by rule)', () => {
  for (const row of rows) {
    it(row.name, () => {
      expect(routeOf({ ...plainRead, ...row.facts })).to.equal(row.route);
    });
  }

  it('every combination of facts gets a route, and only the first three rules can keep a read off a replica when nothing else does', () => {
    const keys = Object.keys(plainRead) as Array<keyof RouteFacts>;
    for (let bits = 0; bits < 1 << keys.length; bits++) {
      const facts = { ...plainRead };
      keys.forEach((key, i) => (facts[key] = Boolean(bits & (1 << i))));
      const route = routeOf(facts);
      const mustPrimary = facts.inTransaction || !facts.autocommit || facts.pinned;
      if (mustPrimary) expect(route, JSON.stringify(facts)).to.equal('primary');
      if (route === 'previous') expect(facts.followsPrevious && facts.previousUsable, JSON.stringify(facts)).to.equal(true);
      if (route === 'replica') expect(facts.classifiedPrimary || (facts.readYourWritesOpen && !facts.hintedReplica), JSON.stringify(facts)).to.equal(false);
    }
  });

  it('6: a replica route runs on the primary when no replica was picked', () => {
    expect(readTarget('n2')).to.equal('replica');
    expect(readTarget(undefined)).to.equal('primary');
  });
});
