/** planRetention: which finished operations and history records the leader deletes, as a table. */

import { expect } from 'chai';

import { FINISHED_OP_GRACE_MS, planRetention, type RetentionPolicy } from '../../agent/retention';
import type { OperationRecord, OperationState } from '../../proto';

const NOW = Date.parse('2026-11-27T12:00:00Z');
const MINUTE = 60_000;

/** An operation asked for `askedMinutesAgo`, whose last step ended `endedMinutesAgo` (null: no steps). */
function op(id: string, state: OperationState, askedMinutesAgo: number, endedMinutesAgo: number | null = null): OperationRecord {
  const iso = (minutesAgo: number) => new Date(NOW - minutesAgo * MINUTE).toISOString();
  return {
    id,
    kind: 'switchover',
    target: 'n2',
    force: false,
    drainTimeoutMs: 1000,
    requestedAt: iso(askedMinutesAgo),
    requestedBy: 'sre',
    state,
    executor: null,
    epoch: null,
    steps: endedMinutesAgo === null ? [] : [{ name: 'fence', state: 'done', startedAt: iso(askedMinutesAgo), endedAt: iso(endedMinutesAgo), detail: '' }],
    reason: '',
  };
}

interface Row {
  name: string;
  ops: OperationRecord[];
  latestEpoch: number | null;
  policy: RetentionPolicy;
  deleteOps: string[];
  historyBelow: number | null;
}

const rows: Row[] = [
  { name: 'nothing in etcd', ops: [], latestEpoch: null, policy: { keepFinishedOps: 2, keepHistory: 3, keepAudit: 1000 }, deleteOps: [], historyBelow: null },
  {
    name: 'fewer finished ops than kept, and history within bounds',
    ops: [op('a', 'succeeded', 100, 99), op('b', 'failed', 90, 89)],
    latestEpoch: 3,
    policy: { keepFinishedOps: 2, keepHistory: 3, keepAudit: 1000 },
    deleteOps: [],
    historyBelow: null,
  },
  {
    name: 'the oldest finished ops beyond the count go, newest by finish time stay',
    ops: [op('a', 'succeeded', 300, 299), op('b', 'refused', 200), op('c', 'failed', 100, 99), op('d', 'succeeded', 50, 49)],
    latestEpoch: 4,
    policy: { keepFinishedOps: 2, keepHistory: 3, keepAudit: 1000 },
    deleteOps: ['b', 'a'],
    historyBelow: 2,
  },
  {
    name: 'running and pending ops are never deleted, however old',
    ops: [op('run', 'running', 500), op('wait', 'pending', 400), op('x', 'succeeded', 100, 99)],
    latestEpoch: 1,
    policy: { keepFinishedOps: 1, keepHistory: 1, keepAudit: 1000 },
    deleteOps: [],
    historyBelow: null,
  },
  {
    name: 'an op finished within the grace period stays even beyond the count (a CLI may be watching)',
    ops: [op('new', 'succeeded', 3, 1), op('recent', 'succeeded', 8, 5), op('older', 'failed', 30, 29)],
    latestEpoch: 10,
    policy: { keepFinishedOps: 1, keepHistory: 10, keepAudit: 1000 },
    deleteOps: ['older'],
    historyBelow: null,
  },
  {
    name: 'finish time is the last step end, not when it was asked for',
    ops: [op('long', 'succeeded', 600, 1), op('short', 'succeeded', 100, 99)],
    latestEpoch: 20,
    policy: { keepFinishedOps: 1, keepHistory: 5, keepAudit: 1000 },
    deleteOps: ['short'],
    historyBelow: 16,
  },
];

describe('agent/retention planRetention', () => {
  for (const row of rows) {
    it(row.name, () => {
      const plan = planRetention(row.ops, row.latestEpoch, row.policy, NOW);
      expect(plan).to.deep.equal({ opIds: row.deleteOps, historyBelow: row.historyBelow });
    });
  }

  it('the grace period is long enough for a watching CLI (minutes, not seconds)', () => {
    expect(FINISHED_OP_GRACE_MS).to.be.at.least(5 * MINUTE);
  });
});
