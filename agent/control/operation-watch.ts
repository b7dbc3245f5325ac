/**
 * WatchOperation: the progress of one `ops/<id>` as a stream of events. `operationEvents` is the
 * pure part — the events between two versions of the record — and `watchOperation` the loop that
 * reads the record until it reaches a final state.
 *
 * Event order, so a person reads the story in order: while the op is not final its state event
 * comes first, then one event per step that appeared or changed (state, detail or end); when it
 * turns final the step events come first and the final state event last, with `final: true`.
 * The first read reports everything there is, so a watcher that connects late (or reconnects
 * through another agent) still sees every step once; the CLI drops repeats.
 *
 * The loop polls the store's snapshot instead of holding an etcd watch: ClusterStore has no
 * watch verb (one small interface for the agent), an op lasts seconds, and one read per
 * `pollMs` per watching CLI is nothing next to the agents' own cycles.
 */

import { isFinalOperationState, type OperationRecord } from '../../proto';
import type { OperationEvent } from '../../proto/control-types';
import { formatDuration } from '../ha';
import { StoreUnavailableError, type ClusterStore } from '../store/cluster-store';
import { ControlError } from './control-error';
import { operationMessage, operationStepMessage } from './control-messages';

export function operationEvents(previous: OperationRecord | null, next: OperationRecord): OperationEvent[] {
  const operation = operationMessage(next);
  const stepEvents: OperationEvent[] = [];
  next.steps.forEach((step, index) => {
    const before = previous?.steps[index];
    const changed = before === undefined || before.name !== step.name || before.state !== step.state || before.detail !== step.detail || before.endedAt !== step.endedAt;
    if (changed) stepEvents.push({ operation, step: operationStepMessage(step, next.executor), final: false });
  });
  const stateChanged = previous === null || previous.state !== next.state || previous.executor !== next.executor || previous.epoch !== next.epoch;
  if (!stateChanged) return stepEvents;
  const final = isFinalOperationState(next.state);
  const stateEvent: OperationEvent = { operation, step: null, final };
  return final ? [...stepEvents, stateEvent] : [stateEvent, ...stepEvents];
}

export interface WatchOptions {
  store: ClusterStore;
  opId: string;
  /** Delay between reads of the record. */
  pollMs: number;
  /**
   * A pending op nobody claimed within this long ends the watch (DEADLINE_EXCEEDED): no agent is
   * running the HA loop. The op stays pending; an agent that comes back refuses it as expired.
   */
  unclaimedAfterMs: number;
  /** etcd unreachable for this long ends the watch (UNAVAILABLE); shorter gaps are ridden out. */
  unavailableAfterMs: number;
  emit: (event: OperationEvent) => void;
  /** True once the client went away or the server stops. */
  cancelled: () => boolean;
  now?: () => number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves after the final event, or when cancelled; rejects with a ControlError otherwise. */
export async function watchOperation(options: WatchOptions): Promise<void> {
  const now = options.now ?? Date.now;
  let previous: OperationRecord | null = null;
  let failingSince: number | null = null;
  while (!options.cancelled()) {
    let record: OperationRecord | undefined;
    try {
      const snapshot = await options.store.snapshot();
      record = snapshot.ops.find((op) => op.value.id === options.opId)?.value;
      failingSince = null;
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      failingSince ??= now();
      if (now() - failingSince >= options.unavailableAfterMs) {
        throw new ControlError('etcd-unavailable', `${error.message} (for ${formatDuration(now() - failingSince)}, watching op ${options.opId})`);
      }
      await sleep(options.pollMs);
      continue;
    }
    if (record === undefined) {
      throw new ControlError('op-not-found', previous === null ? `op ${options.opId} does not exist in etcd` : `op ${options.opId} was deleted from etcd while being watched`);
    }
    if (options.cancelled()) return;
    for (const event of operationEvents(previous, record)) options.emit(event);
    previous = record;
    if (isFinalOperationState(record.state)) return;
    const waited = now() - Date.parse(record.requestedAt);
    if (record.state === 'pending' && waited > options.unclaimedAfterMs) {
      throw new ControlError(
        'op-unclaimed',
        `op ${options.opId} is still pending after ${formatDuration(waited)}: no agent claimed it (is any agent running its HA loop?)`,
      );
    }
    await sleep(options.pollMs);
  }
}
