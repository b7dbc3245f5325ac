/**
 * Keeping the cluster prefix small. Every agent reads the whole `/doltgate/<cluster>/` prefix each
 * cycle and `doltgate status` reads the ops in it, so finished operations and history records,
 * which only ever accumulate, would make every read slower for the life of the cluster. The
 * leader plans every cycle (`planRetention`, cheap and pure) and deletes only when the plan
 * names something (the store deletes).
 *
 * Kept: every operation that is not finished; the newest `keepFinishedOps` finished ones; any
 * finished within the last FINISHED_OP_GRACE_MS (a CLI may still be watching it, and a retried
 * request with the same op id must still find it); the history records of the newest
 * `keepHistory` epochs.
 */

import { isFinalOperationState, type OperationRecord } from '../proto';

export interface RetentionPolicy {
  keepFinishedOps: number;
  keepHistory: number;
  /** Audit records of control calls (audit.ts), pruned by the agent that appends one. */
  keepAudit: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { keepFinishedOps: 100, keepHistory: 500, keepAudit: 1000 };

export const FINISHED_OP_GRACE_MS = 10 * 60_000;

export interface RetentionPlan {
  /** Operations to delete. */
  opIds: string[];
  /** Delete history records of epochs below this one; null: none. */
  historyBelow: number | null;
}

/** When an operation finished: its last step's end, or when it was asked for (refused at once). */
function finishedAt(op: OperationRecord): number {
  let latest = Date.parse(op.requestedAt);
  for (const step of op.steps) {
    const end = step.endedAt === null ? NaN : Date.parse(step.endedAt);
    if (end > latest) latest = end;
  }
  return Number.isNaN(latest) ? 0 : latest;
}

export function planRetention(ops: readonly OperationRecord[], latestEpoch: number | null, policy: RetentionPolicy, now: number): RetentionPlan {
  const finished = ops
    .filter((op) => isFinalOperationState(op.state))
    .map((op) => ({ op, at: finishedAt(op) }))
    .sort((a, b) => b.at - a.at || (a.op.id < b.op.id ? 1 : -1));
  const opIds = finished
    .slice(policy.keepFinishedOps)
    .filter(({ at }) => now - at >= FINISHED_OP_GRACE_MS)
    .map(({ op }) => op.id);
  // Epochs start at 1: a bound of 1 or less would delete nothing.
  const below = latestEpoch === null ? 0 : latestEpoch - policy.keepHistory + 1;
  return { opIds, historyBelow: below > 1 ? below : null };
}
