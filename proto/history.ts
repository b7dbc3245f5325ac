/**
 * `history/<epoch>`: every step of the failover or switchover that produced `epoch`, with timings
 * and outcome, written by the executing agent as it goes. A new executor reads it to resume a
 * half-done failover at the first step not marked done.
 */

export type FailoverStepName = 'fence' | 'disable-read-only' | 'recover' | 'enable-push-on-write' | 'reroute';

/** The failover steps in the order ../shared/design.md numbers them (3-7). */
export const failoverSteps: readonly FailoverStepName[] = ['fence', 'disable-read-only', 'recover', 'enable-push-on-write', 'reroute'];

export interface HistoryStep {
  name: FailoverStepName | 'drain' | 'demote' | 'confirm-remote' | 'orphan-save';
  state: 'running' | 'done' | 'failed';
  startedAt: string;
  endedAt: string | null;
  durationMs: number | null;
  executor: string;
  detail: string;
}

export interface HistoryRecord {
  epoch: number;
  kind: 'failover' | 'switchover' | 'bootstrap';
  reason: string;
  fromPrimary: string | null;
  candidate: string;
  /** A planned hand-over: the outgoing primary runs the fence, then releases the leader key. */
  handOver: boolean;
  /** The operator op this failover carries out, if any. */
  opId: string | null;
  /** Set when this attempt replaced a stalled one whose candidate was gone. */
  takeoverFrom: { candidate: string; epoch: number } | null;
  startedAt: string;
  endedAt: string | null;
  outcome: 'running' | 'succeeded' | 'failed';
  steps: HistoryStep[];
  /** Branches saved as doltgate/orphaned/<epoch>/<branch> when an old primary rejoined. */
  orphanedBranches: string[];
}

export function completedSteps(record: HistoryRecord): Set<string> {
  return new Set(record.steps.filter((step) => step.state === 'done').map((step) => step.name));
}

export function decodeHistory(raw: string | Buffer): HistoryRecord {
  const value = JSON.parse(raw.toString()) as HistoryRecord;
  if (typeof value !== 'object' || value === null || typeof value.epoch !== 'number' || !Array.isArray(value.steps)) {
    throw new Error('history value is malformed: needs epoch and steps');
  }
  return value;
}
