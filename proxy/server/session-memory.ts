/**
 * What a client may make the proxy hold. The proxy keeps, per session, the text of every
 * replayable SET (to rebuild the session on another backend connection) and of every prepared
 * statement (to re-prepare it elsewhere); left unbounded, one client sending 15 MiB SETs ran the
 * proxy out of heap and dropped every session. Bounds:
 *
 * - per session: `maxReplayBytes` of SET text, `maxPreparedStatements` statements and
 *   `maxPreparedBytes` of their text;
 * - per proxy: `totalBytes` over all sessions (`ProxyMemoryBudget`), so many sessions each
 *   within their own limit cannot add up to an out-of-memory either;
 * - long data (COM_STMT_SEND_LONG_DATA) of one execute: at most max_allowed_packet, the most one
 *   execute packet could carry inline. The proxy does not hold long data, but Dolt does.
 *
 * Invariant: a statement that would pass a bound is refused before it is sent (so the state the
 * proxy keeps is always the state the backend has) with SessionMemoryLimitError, and the session
 * lives on. The charge is taken when the state is recorded and given back when it is dropped
 * (statement closed, session reset or closed).
 */

export interface SessionLimits {
  maxReplayBytes: number;
  maxPreparedStatements: number;
  maxPreparedBytes: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = Object.freeze({
  maxReplayBytes: 1024 * 1024,
  maxPreparedStatements: 1024,
  maxPreparedBytes: 16 * 1024 * 1024,
});

/** The proxy-wide budget every session's kept state draws on. */
export class ProxyMemoryBudget {
  private usedBytes = 0;

  constructor(readonly totalBytes: number = Number.POSITIVE_INFINITY) {}

  get used(): number {
    return this.usedBytes;
  }

  fits(bytes: number): boolean {
    return this.usedBytes + bytes <= this.totalBytes;
  }

  /** Charges are taken only after `fits` said yes (one command per session at a time). */
  take(bytes: number): void {
    this.usedBytes += bytes;
  }

  give(bytes: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
  }
}

/** Shared by sessions that were not given one (tests, tools): no proxy-wide bound. */
export const UNBOUNDED_BUDGET = new ProxyMemoryBudget();
