/**
 * Why the write hold refused or gave up on a write: one class per failure, each with a stable
 * `code` that logs, metrics and tests key on. Every message says that the write was NOT executed,
 * so the application (or the person reading its log) knows a retry is safe, and names the reason
 * the cluster had no primary (the `reason` given to `WriteHold.begin`).
 *
 * The proxy's single error-to-ERR-packet function decides the MySQL errno and SQLSTATE; these
 * classes stay free of the wire codec so the hold can be used and tested alone.
 */

/** The write waited the configured maximum and the cluster still had no primary. */
export class HoldTimeoutError extends Error {
  readonly code = 'HOLD_TIMEOUT';
  constructor(
    readonly heldMs: number,
    readonly reason: string,
  ) {
    super(`doltgate held this write for ${heldMs} ms while the cluster had no usable primary (${reason}); it was not executed — retry it once the failover completes`);
    this.name = 'HoldTimeoutError';
  }
}

/**
 * The whole episode (the cluster without a primary) has lasted past the hold's bound: writes are
 * no longer held at all, and those still waiting are let go with this error, as VTGate stops
 * buffering past its max failover duration. A failover that long needs a person, not patience.
 */
export class HoldEpisodeOverError extends Error {
  readonly code = 'HOLD_EPISODE_OVER';
  constructor(
    readonly episodeMs: number,
    readonly reason: string,
  ) {
    super(`doltgate stopped holding writes: the cluster has had no usable primary for ${episodeMs} ms (${reason}); this write was not executed — retry it once the failover completes`);
    this.name = 'HoldEpisodeOverError';
  }
}

/** As many writes as the hold may keep were already waiting; this one was refused at once. */
export class HoldQueueFullError extends Error {
  readonly code = 'HOLD_QUEUE_FULL';
  constructor(
    readonly maxHeld: number,
    readonly reason: string,
  ) {
    super(`doltgate is already holding ${maxHeld} writes while the cluster has no usable primary (${reason}); this write was not executed — retry it once the failover completes`);
    this.name = 'HoldQueueFullError';
  }
}

/**
 * The caller gave up waiting (its client disconnected). Nobody is left to read the message; it
 * exists so the awaiting code path ends instead of hanging, and is not a timeout in the stats.
 */
export class HoldAbortedError extends Error {
  readonly code = 'HOLD_ABORTED';
  constructor(readonly heldMs: number) {
    super(`the held write was abandoned by its caller after ${heldMs} ms; it was not executed`);
    this.name = 'HoldAbortedError';
  }
}
