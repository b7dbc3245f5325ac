/**
 * `ops/<id>`: a switchover or failover an SRE asked for (through any agent's gRPC API), and its
 * progress. Agents pick up ops addressed to them (the target, or the chosen candidate when no
 * target is given) and write progress back; the CLI watches the key to show each step live.
 *
 * Invariant: at most one op is `running` per cluster; an op in a final state never changes again.
 */

export type OperationKind = 'switchover' | 'failover';
export type OperationState = 'pending' | 'running' | 'succeeded' | 'failed' | 'refused';

export interface OperationStep {
  name: string;
  state: 'running' | 'done' | 'failed' | 'skipped';
  startedAt: string;
  endedAt: string | null;
  detail: string;
  /** The node that ran the step (a hand-over's fence runs on the outgoing primary); absent in records written before it was kept. */
  executor?: string;
}

export interface OperationRecord {
  id: string;
  kind: OperationKind;
  /** The node to promote; null lets the agents choose (failover only). */
  target: string | null;
  force: boolean;
  /** Upper bound for letting open transactions finish during a switchover. */
  drainTimeoutMs: number;
  requestedAt: string;
  requestedBy: string;
  state: OperationState;
  /** Who is executing it, once running. */
  executor: string | null;
  /** The epoch the operation produced, once it rerouted. */
  epoch: number | null;
  steps: OperationStep[];
  reason: string;
}

export function isFinalOperationState(state: OperationState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'refused';
}

export function decodeOperation(raw: string | Buffer): OperationRecord {
  const value = JSON.parse(raw.toString()) as OperationRecord;
  if (typeof value !== 'object' || value === null || typeof value.id !== 'string' || (value.kind !== 'switchover' && value.kind !== 'failover')) {
    throw new Error('operation value is malformed: needs id and kind switchover|failover');
  }
  return value;
}
