/**
 * Read-your-writes for one session: replicas apply the primary's commits after a delay, so for a
 * configured window after the session's own write commits, its reads go to the primary. Pure:
 * the caller passes the time (milliseconds from a monotonic clock) to every call.
 *
 * When to note a commit: `commitsWrite(classification, inTransactionAfter)` says whether a
 * statement that just succeeded made the session's writes visible to others — a data-changing
 * statement that finished outside a transaction (autocommit, or DDL's implicit commit), or the
 * end of a transaction. Reads sent to the primary because of the window are not writes, so the
 * window never extends itself. A read hinted `doltgate:replica` has accepted stale data; the
 * router may let it bypass the window.
 *
 * Invariant: the window end only moves later, so a clock that steps back never shortens it.
 */

import { Classification, Reason } from './classification';

export class ReadYourWritesWindow {
  private until = Number.NEGATIVE_INFINITY;
  private readonly length: () => number;

  /**
   * `windowMs` 0 disables the window. A function is asked at each commit: the proxy's default
   * depends on how the cluster replicates, which the topology says (cluster-view.ts).
   */
  constructor(windowMs: number | (() => number)) {
    if (typeof windowMs === 'number') checkWindow(windowMs);
    this.length = typeof windowMs === 'number' ? () => windowMs : windowMs;
  }

  get windowMs(): number {
    return this.length();
  }

  /** The session's write became visible at `now`. */
  noteCommit(now: number): void {
    const windowMs = checkWindow(this.length());
    if (windowMs > 0) this.until = Math.max(this.until, now + windowMs);
  }

  /** Reads at `now` must go to the primary. */
  mustReadPrimary(now: number): boolean {
    return now < this.until;
  }

  /** Milliseconds until replicas may serve reads again; 0 when they already may. */
  remainingMs(now: number): number {
    return now < this.until ? this.until - now : 0;
  }

  /** Forget the last write (COM_RESET_CONNECTION, COM_CHANGE_USER). */
  reset(): void {
    this.until = Number.NEGATIVE_INFINITY;
  }
}

function checkWindow(windowMs: number): number {
  if (!(Number.isFinite(windowMs) && windowMs >= 0)) throw new RangeError(`read-your-writes window must be a finite number >= 0, got ${windowMs}`);
  return windowMs;
}

/**
 * The window when proxy.yaml sets none. Remote replication: 0, since a replica pulls at the start
 * of every transaction and so sees every commit pushed before it. Cluster replication: Dolt pushes
 * asynchronously (about 75 ms here, more under load; dolt-cluster-facts), so a session's read
 * right after its write could miss it on a standby.
 */
export function defaultReadYourWritesMs(clusterReplication: boolean): number {
  return clusterReplication ? 1_000 : 0;
}

/** Statement verdicts that change data or may (unknown statements, CALL, multi-statements). */
const WRITE_REASONS: ReadonlySet<Reason> = new Set<Reason>([
  'write', 'ddl', 'temporary-table', 'call', 'dolt-write-function', 'write-function', 'admin',
  'global-set', 'multi-statement', 'unknown',
]);

/**
 * Whether a statement that succeeded made the session's writes visible to other connections.
 * `inTransactionAfter` is SERVER_STATUS_IN_TRANS from its (last) OK packet. A COMMIT of a transaction
 * that only read also counts: the session tracker does not know what the transaction did, and an
 * extra window only costs a few primary reads. A ROLLBACK does not count.
 */
export function commitsWrite(c: Classification, inTransactionAfter: boolean): boolean {
  if (c.endsTransaction && c.kind !== 'rollback') return true; // COMMIT AND CHAIN leaves one open
  if (inTransactionAfter) return false;
  return WRITE_REASONS.has(c.statementReason);
}
