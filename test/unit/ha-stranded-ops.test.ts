/** Ops an executor left running, settled from the history (agent/ha/stranded-ops.ts), row by row. */

import { expect } from 'chai';
import type { HistoryRecord, OperationRecord } from '../../proto';
import { settleStrandedOps } from '../../agent/ha/stranded-ops';
import { topology } from './ha-fixtures.test';

function op(id: string, state: OperationRecord['state'] = 'running'): OperationRecord {
  return { id, kind: 'switchover', target: 'b', force: false, drainTimeoutMs: 5000, requestedAt: '2026-12-04T00:00:00Z', requestedBy: 't', state, executor: 'b', epoch: null, steps: [], reason: 'r' };
}

function record(epoch: number, opId: string | null, outcome: HistoryRecord['outcome']): HistoryRecord {
  return { epoch, kind: 'switchover', reason: 'r', fromPrimary: 'a', candidate: 'b', handOver: true, opId, takeoverFrom: null, startedAt: '2026-12-04T00:00:00Z', endedAt: null, outcome, steps: [], orphanedBranches: [] };
}

describe('stranded ops (pure)', () => {
  const rows: Array<{ name: string; ops: OperationRecord[]; history: HistoryRecord[]; epoch: number; state?: 'stable' | 'failover'; expect: string[] }> = [
    { name: 'succeeded: its record succeeded (the executor died before writing the outcome)', ops: [op('x')], history: [record(8, 'x', 'succeeded')], epoch: 9, expect: ['x succeeded@8'] },
    { name: 'succeeded even at the same epoch', ops: [op('x')], history: [record(8, 'x', 'succeeded')], epoch: 8, expect: ['x succeeded@8'] },
    { name: 'failed: its record did not finish and the cluster moved to a newer epoch', ops: [op('x')], history: [record(8, 'x', 'running')], epoch: 9, expect: ['x failed@8'] },
    { name: 'left alone: its epoch is still the topology\'s (it may be running now)', ops: [op('x')], history: [record(8, 'x', 'running')], epoch: 8, expect: [] },
    { name: 'left alone: the newer epoch is not stable yet', ops: [op('x')], history: [record(8, 'x', 'running')], epoch: 9, state: 'failover', expect: [] },
    { name: 'left alone: no record names it', ops: [op('x')], history: [record(8, 'y', 'running')], epoch: 9, expect: [] },
    { name: 'left alone: ops not running', ops: [op('x', 'pending'), op('y', 'succeeded'), op('z', 'failed')], history: [record(8, 'x', 'running'), record(7, 'y', 'succeeded')], epoch: 9, expect: [] },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const got = settleStrandedOps(row.ops, row.history, topology(row.epoch, 'b', ['a', 'b', 'c'], row.state ?? 'stable'));
      expect(got.map((o) => `${o.id} ${o.state}@${o.epoch}`)).to.deep.equal(row.expect);
    });
  }

  it('the reason says who became primary, or what superseded it', () => {
    const [won] = settleStrandedOps([op('x')], [record(8, 'x', 'succeeded')], topology(9, 'c', ['a', 'b', 'c']));
    expect(won?.reason).to.contain('b became primary at epoch 8');
    const [lost] = settleStrandedOps([op('x')], [record(8, 'x', 'running')], topology(9, 'c', ['a', 'b', 'c']));
    expect(lost?.reason).to.contain('superseded: c is primary at epoch 9');
  });
});
