/**
 * Where one statement runs, decided purely from a flat record of session facts — the proxy's
 * counterpart of the agent's `decide`. The rules, in order; the first that applies wins:
 *
 *  1. the session is in a transaction, or has autocommit off → primary (a transaction never
 *     spans backends, and with autocommit off every statement is in one);
 *  2. the session is pinned (temporary table, LOCK TABLES, GET_LOCK, user variable, ...) → primary;
 *  3. the statement reads what the previous one left (SHOW WARNINGS, FOUND_ROWS()) and the
 *     connection that ran it is still usable → that connection ('previous');
 *  4. the classifier sends it to the primary (writes, DDL, CALL, locking reads, a primary hint)
 *     → primary;
 *  5. the read-your-writes window is open and the statement is not hinted to a replica → primary;
 *  6. a replica is available → replica; none is → primary.
 *
 * SessionBackends fills one RouteFacts per session and refills it for each statement, so the hot
 * path allocates nothing. Rule 6 needs the replica choice, which has a side effect (round robin,
 * outstanding counts): `routeOf` answers 'replica' for "a replica if one is available" and the
 * caller applies `readTarget` to what the selector picked.
 */

export type RouteKind = 'primary' | 'replica' | 'previous';

export interface RouteFacts {
  /** The primary connection is in a transaction (SERVER_STATUS_IN_TRANS of its last answer). */
  inTransaction: boolean;
  /** The AUTOCOMMIT flag of the last primary answer. */
  autocommit: boolean;
  /** The session holds state only its primary connection has (SessionState.pinned). */
  pinned: boolean;
  /** The classifier: the statement reads what the previous statement left. */
  followsPrevious: boolean;
  /** The connection that ran the previous statement is still open and pointed where it should be. */
  previousUsable: boolean;
  /** The classifier's route is 'primary'. */
  classifiedPrimary: boolean;
  /** A `doltgate:replica` hint. */
  hintedReplica: boolean;
  /** The session wrote within the read-your-writes window. */
  readYourWritesOpen: boolean;
}

export function routeOf(f: RouteFacts): RouteKind {
  if (f.inTransaction || !f.autocommit) return 'primary';
  if (f.pinned) return 'primary';
  if (f.followsPrevious && f.previousUsable) return 'previous';
  if (f.classifiedPrimary) return 'primary';
  if (f.readYourWritesOpen && !f.hintedReplica) return 'primary';
  return 'replica';
}

/** Rule 6: a 'replica' route runs on the picked replica, or on the primary when none was. */
export function readTarget(picked: string | undefined): 'replica' | 'primary' {
  return picked === undefined ? 'primary' : 'replica';
}
