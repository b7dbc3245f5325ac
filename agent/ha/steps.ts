/**
 * The named steps of a failover or switchover, in the order they run, and how to resume a
 * half-done one. `history/<epoch>` records completed steps by these names and `doltgate history`
 * shows them, so renaming one is a format change.
 *
 * Invariants: steps complete in list order; every step is idempotent, so re-running the first
 * step that history does not record as complete (and everything after it) is always safe;
 * `nextStep` of a complete list is null.
 */

export const failoverSteps = ['fence', 'disable-read-only', 'recover', 'enable-push-on-write', 'reroute'] as const;

export type FailoverStep = (typeof failoverSteps)[number];

/**
 * What each step must achieve, for the executor's author and for `doltgate history`. The words
 * are the contract; the executor decides how.
 */
export const stepPurpose: Readonly<Record<FailoverStep, string>> = {
  fence:
    'publish topology {state: failover|switchover, primary: null} at the new epoch so proxies hold writes; ' +
    'in a hand-over the outgoing primary also drains open transactions, pushes its heads and restarts read-only',
  'disable-read-only':
    "restart the candidate's dolt sql-server writable (read-only is a start-up setting in Dolt) on a private loopback listener " +
    'that no client knows, so nothing but recovery writes to it',
  recover:
    'fetch the remote (or backup, whichever is newer); fast-forward branches that are behind, keep branches that are ahead, ' +
    'save diverged ones as doltgate/orphaned/<epoch>/<branch> before resetting them, so nothing is dropped silently',
  'enable-push-on-write':
    'restart it on its public listener with dolt_replicate_to_remote set, the read-replica settings cleared and dolt_transaction_commit on, ' +
    'under the keeper that kills it when the leader lease is not renewed; push the branches the remote lacks',
  reroute: 'publish topology {state: stable, primary: candidate} at the same epoch; proxies release held writes to it',
};

/** The part of a planned hand-over that the outgoing primary runs before releasing the leader key. */
export const handOverSteps: readonly FailoverStep[] = ['fence'];

export function isFailoverStep(value: unknown): value is FailoverStep {
  return typeof value === 'string' && (failoverSteps as readonly string[]).includes(value);
}

/**
 * The first step, in list order, that `completed` lacks; null when all are done. A gap
 * (a later step recorded without an earlier one) resumes at the gap: order matters more than
 * the record, and steps are idempotent.
 */
export function nextStep(completed: readonly FailoverStep[]): FailoverStep | null {
  for (const step of failoverSteps) if (!completed.includes(step)) return step;
  return null;
}

/** Every step from `nextStep(completed)` to the end, in order: what a resuming executor runs. */
export function remainingSteps(completed: readonly FailoverStep[]): FailoverStep[] {
  const next = nextStep(completed);
  return next === null ? [] : failoverSteps.slice(failoverSteps.indexOf(next));
}

/** The steps that act on the candidate's own Dolt only. */
export const localSteps: readonly FailoverStep[] = ['disable-read-only', 'recover', 'enable-push-on-write'];

/**
 * What a candidate runs when it resumes: the remaining steps and, when its Dolt does not take
 * writes now, every local step again. Their effect lives partly in the Dolt process (its role,
 * its listener), and an agent restart undid it: Dolt comes back read-only, a replica pulls and
 * may overwrite what recovery kept. Steps are idempotent, so running them again is safe.
 */
export function resumeSteps(remaining: readonly FailoverStep[], candidateTakesWrites: boolean): FailoverStep[] {
  if (candidateTakesWrites || remaining.length === 0) return [...remaining];
  return failoverSteps.filter((step) => remaining.includes(step) || localSteps.includes(step));
}

/** `fence, recover` or `none`: for reasons a person reads. */
export function describeSteps(steps: readonly FailoverStep[]): string {
  return steps.length === 0 ? 'none' : steps.join(', ');
}
