/**
 * Operator ops left 'running' by an executor that will never finish them — its agent died after
 * the reroute but before it wrote the outcome, or mid-way and another node took over at a newer
 * epoch — settled from the history, which says what happened. Pure; the stable primary acts on
 * it (decision-actor.ts, on its renew-lease cycles), so `doltgate switchover` hears an outcome
 * instead of waiting out its own timeout. Found by the convergence simulator
 * (test/unit/ha-converge.test.ts).
 *
 * Rules, for an op in state running:
 * - its history record succeeded: the op succeeded, at that epoch;
 * - its record did not succeed and the stable topology is at a newer epoch: the op failed,
 *   superseded (nothing runs a plan of an epoch the cluster has left behind);
 * - no record (the claim and the record are one transaction, so only when retention removed
 *   it), or its epoch is still the topology's: left alone.
 */

import type { HistoryRecord, OperationRecord, Topology } from '../../proto';

export interface StrandedOpOutcome {
  id: string;
  state: 'succeeded' | 'failed';
  epoch: number;
  reason: string;
}

export function settleStrandedOps(ops: readonly OperationRecord[], history: readonly HistoryRecord[], topology: Topology): StrandedOpOutcome[] {
  const outcomes: StrandedOpOutcome[] = [];
  for (const op of ops) {
    if (op.state !== 'running') continue;
    const record = history.find((r) => r.opId === op.id);
    if (record === undefined) continue;
    if (record.outcome === 'succeeded') {
      outcomes.push({ id: op.id, state: 'succeeded', epoch: record.epoch, reason: `${record.candidate} became primary at epoch ${record.epoch} (its executor ${op.executor ?? '-'} stopped before recording the outcome)` });
    } else if (topology.state === 'stable' && topology.epoch > record.epoch) {
      outcomes.push({
        id: op.id,
        state: 'failed',
        epoch: record.epoch,
        reason: `its ${record.kind} to ${record.candidate} at epoch ${record.epoch} did not finish (executor ${op.executor ?? '-'} stopped); superseded: ${topology.primary ?? 'no node'} is primary at epoch ${topology.epoch}`,
      });
    }
  }
  return outcomes;
}
