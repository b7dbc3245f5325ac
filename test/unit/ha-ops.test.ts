/**
 * dryRunOp and opArbiter: what `doltgate switchover|failover --dry-run` will print. decide()
 * rows already cover who acts; these rows cover the plan itself (the outline of who runs which
 * step) and the refusals only visible to the CLI (etcd down, no topology).
 */

import { expect } from 'chai';
import { dryRunOp, opArbiter, type OpDryRun } from '../../agent/ha/ops';
import type { PendingOp } from '../../agent/ha/observation';
import { cluster, config, observe, T0, type Scenario } from './ha-fixtures.test';

function op(kind: PendingOp['kind'], target: string | null, force = false): PendingOp {
  return { id: 'op-9', kind, target, force, requestedAt: T0 };
}

interface Row {
  name: string;
  scenario: Scenario;
  op: PendingOp;
  outcome: OpDryRun['outcome'];
  reason: RegExp;
  executor?: string;
  outline?: string[];
}

const rows: Row[] = [
  {
    name: 'execute: switchover outline is the primary fencing, then the target doing the rest',
    scenario: cluster('b'),
    op: op('switchover', 'c'),
    outcome: 'execute',
    executor: 'a',
    outline: ['a fence', 'c disable-read-only', 'c recover', 'c enable-push-on-write', 'c reroute'],
    reason: /^switchover op-9 from a to c at epoch 8: /,
  },
  {
    name: 'execute: failover with the primary gone is all the candidate’s',
    scenario: cluster('b', { nodes: { a: { live: false }, b: {}, c: {} }, leader: null }),
    op: op('failover', null),
    outcome: 'execute',
    executor: 'b',
    outline: ['b fence', 'b disable-read-only', 'b recover', 'b enable-push-on-write', 'b reroute'],
    reason: /^failover op-9 from a to b at epoch 8: b runs fence, disable-read-only, recover, enable-push-on-write, reroute$/,
  },
  { name: 'refuse: etcd unreachable', scenario: cluster('b', { etcd: { reachable: false, hasQuorum: false } }), op: op('switchover', 'c'), outcome: 'refuse', reason: /^switchover op-9 refused: etcd is unreachable$/ },
  { name: 'refuse: no quorum even forced', scenario: cluster('b', { etcd: { reachable: true, hasQuorum: false } }), op: op('failover', 'c', true), outcome: 'refuse', reason: /etcd has no quorum: no promotion, even with --force$/ },
  { name: 'refuse: not bootstrapped', scenario: { self: 'a', nodes: { a: {}, b: {} }, topology: null, leader: null }, op: op('switchover', 'b'), outcome: 'refuse', reason: /the cluster has no topology yet \(not bootstrapped\)$/ },
  {
    name: 'refuse: a replica holds the key mid-campaign',
    scenario: cluster('b', { nodes: { a: { live: false }, b: {}, c: {} }, leader: 'c' }),
    op: op('failover', 'b'),
    outcome: 'refuse',
    reason: /c holds the leader key and is taking over from a$/,
  },
  {
    name: 'refuse: no eligible candidate without a target',
    scenario: cluster('b', { nodes: { a: { role: 'primary' }, b: { healthy: false }, c: { nofailover: true } } }),
    op: op('switchover', null),
    outcome: 'refuse',
    reason: /refused: no eligible candidate: b is unhealthy \(3 failed checks\), c has nofailover$/,
  },
];

describe('ha dryRunOp', () => {
  for (const row of rows) {
    it(row.name, () => {
      const run = dryRunOp(observe(row.scenario), row.op, config, T0);
      expect(run.outcome, run.reason).to.equal(row.outcome);
      expect(run.reason).to.match(row.reason);
      if (run.outcome === 'execute') {
        expect(run.executor).to.equal(row.executor);
        expect(run.outline.map((o) => `${o.node} ${o.step}`)).to.deep.equal(row.outline);
        expect(run.plan.opId).to.equal('op-9');
      }
    });
  }

  it('does not depend on which agent runs it', () => {
    for (const self of ['a', 'b', 'c']) {
      expect(dryRunOp(observe(cluster(self)), op('switchover', 'c'), config, T0)).to.deep.equal(
        dryRunOp(observe(cluster('a')), op('switchover', 'c'), config, T0),
      );
    }
  });
});

describe('ha opArbiter', () => {
  const rows: Array<[string, Scenario, PendingOp, string | null]> = [
    ['the target when it has a live agent', cluster('a'), op('switchover', 'c'), 'c'],
    ['the leader when the target has no agent', cluster('a'), op('switchover', 'zz'), 'a'],
    ['the first live member when neither', cluster('c', { nodes: { a: { live: false }, b: {}, c: {} }, leader: null }), op('failover', 'zz'), 'b'],
    ['nobody with no live members', cluster('c', { nodes: { a: { live: false } }, leader: null }), op('failover', null), null],
  ];
  for (const [name, scenario, pending, expected] of rows) {
    it(`${expected ?? 'null'}: ${name}`, () => expect(opArbiter(observe(scenario), pending)).to.equal(expected));
  }
});
