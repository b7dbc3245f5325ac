/**
 * What the classifier says about a query, and how the verdicts of the statements of one
 * COM_QUERY combine into one. A Classification is a plain immutable value: where the query may
 * go (`route`), why (`reason`, a short stable string used in logs and metric labels), what kind
 * of statement it is, and the effects the session tracker must apply once the server has answered
 * OK: transaction starts and ends, autocommit changes, pins to the primary, and session state to
 * replay on the session's other backend connections.
 *
 * The server status flags in OK packets (IN_TRANS, AUTOCOMMIT, NO_BACKSLASH_ESCAPES) remain the
 * truth about transaction state; the effects here tell the router what a statement is about to do,
 * before any reply exists, and cover state the flags do not report (pins, replayable SETs).
 *
 * Invariants: `route === 'replica'` implies no pins, no session state, `followsPrevious` false and
 * neither transaction flag; `followsPrevious` implies `route === 'primary'` (the fallback when the
 * router has no previous backend); `parts` is empty unless `isMultiStatement`.
 */

/** 'replica' means: may go to a replica when the session is not in a transaction nor pinned. */
export type Route = 'primary' | 'replica';

export type Hint = 'primary' | 'replica';

export type StatementKind =
  | 'select' | 'insert' | 'update' | 'delete' | 'replace' | 'load' | 'ddl' | 'call' | 'do'
  | 'begin' | 'commit' | 'rollback' | 'savepoint' | 'set' | 'use' | 'show' | 'explain'
  | 'lock' | 'unlock' | 'handler' | 'prepare' | 'xa' | 'admin' | 'other' | 'empty' | 'multi';

export type Reason =
  // replica
  | 'read' | 'read-only-procedure'
  // primary: the statement changes data, schema or server state
  | 'write' | 'ddl' | 'temporary-table' | 'call' | 'dolt-write-function' | 'write-function' | 'admin'
  // primary, but the proxy refuses it: users and grants are per node (client-session.ts)
  | 'account-management'
  // primary: a read whose meaning is bound to the primary or to this session
  | 'locking-read' | 'select-into' | 'lock-function' | 'last-insert-id' | 'session-function'
  | 'diagnostics' | 'user-variable-assignment'
  // primary: transaction and session control
  | 'transaction-start' | 'transaction-end' | 'savepoint' | 'transaction-characteristics'
  | 'autocommit-off' | 'session-set' | 'global-set' | 'use' | 'lock-tables' | 'handler'
  | 'prepared-statement' | 'xa'
  // primary: the classifier cannot tell, so it is safe
  | 'multi-statement' | 'unterminated' | 'empty' | 'unknown'
  // hints (the unhinted verdict stays in `statementReason`)
  | 'hint-primary' | 'hint-replica' | 'replica-hint-ignored';

/**
 * Why a session must stay on the primary from now on. Each lasts until the session is reset
 * (COM_RESET_CONNECTION / COM_CHANGE_USER), except 'lock-tables', which UNLOCK TABLES ends.
 */
export type PinCause =
  | 'temporary-table' | 'lock-tables' | 'advisory-lock' | 'user-variable' | 'prepared-statement'
  | 'handler' | 'branch-checkout' | 'unreplayable-set';

const PIN_CAUSES: readonly PinCause[] = [
  'temporary-table', 'lock-tables', 'advisory-lock', 'user-variable', 'prepared-statement',
  'handler', 'branch-checkout', 'unreplayable-set',
];

/** Bit for a pin cause in the masks the scanner accumulates. */
export function pinBit(cause: PinCause): number {
  return 1 << PIN_CAUSES.indexOf(cause);
}

/**
 * Session state that must hold on every backend connection the session uses: the exact text of
 * the statement (trimmed, without the `;`) to run there after the client's own run succeeded.
 */
export interface SessionStateChange {
  readonly kind: 'variables' | 'names' | 'charset' | 'role' | 'database';
  readonly statement: string;
  /** For kind 'database': the database name (Dolt: may be `db/branch`), unquoted. */
  readonly database?: string;
}

export interface Classification {
  readonly route: Route;
  /** Why `route`; equals `statementReason` unless a hint was found. */
  readonly reason: Reason;
  /** The verdict before hints were applied. */
  readonly statementReason: Reason;
  readonly kind: StatementKind;
  /** A `doltgate:primary` / `doltgate:replica` hint found in a comment; primary wins over replica. */
  readonly hint: Hint | undefined;
  /**
   * The result depends on the previous statement of the session (SHOW WARNINGS, FOUND_ROWS(),
   * ROW_COUNT(), @@warning_count, GET DIAGNOSTICS): send it to the backend that ran the previous
   * statement; `route` is the fallback when there is none.
   */
  readonly followsPrevious: boolean;
  /** Apply `endsTransaction` before `startsTransaction` (COMMIT AND CHAIN sets both). */
  readonly startsTransaction: boolean;
  readonly endsTransaction: boolean;
  /** The session's autocommit after this runs; undefined when unchanged or not a literal. */
  readonly setsAutocommit: boolean | undefined;
  readonly pins: readonly PinCause[];
  readonly unpins: readonly PinCause[];
  readonly sessionState: readonly SessionStateChange[];
  readonly isMultiStatement: boolean;
  /** For a multi-statement query, each statement's own classification, in order. */
  readonly parts: readonly Classification[];
}

/** What the scanner learned about one statement; mutable while the scan runs. */
export class StatementFacts {
  kind: StatementKind = 'other';
  route: Route = 'primary';
  reason: Reason = 'unknown';
  /** Primary only because a read could not be proven (a user procedure): a replica hint may win. */
  soft = false;
  followsPrevious = false;
  startsTransaction = false;
  endsTransaction = false;
  setsAutocommit: boolean | undefined = undefined;
  pins = 0;
  unpins = 0;
  sessionState: SessionStateChange | undefined = undefined;

  set(kind: StatementKind, route: Route, reason: Reason): void {
    this.kind = kind;
    this.route = route;
    this.reason = reason;
  }

  /**
   * Something in the statement's body keeps it off the replicas. Only the first such finding
   * names the reason of a read; a finding bound to the previous statement (FOUND_ROWS()) yields
   * to any other, since following the previous statement to a replica would be wrong for it.
   */
  finding(reason: Reason, previousBound = false): void {
    if (this.route === 'replica') {
      this.route = 'primary';
      this.reason = reason;
      this.followsPrevious = previousBound;
    } else if (this.followsPrevious && !previousBound) {
      this.reason = reason;
      this.followsPrevious = false;
    }
    this.soft = false;
  }
}

const NONE: readonly never[] = Object.freeze([]);
const pinListCache: (readonly PinCause[] | undefined)[] = [];

function pinList(mask: number): readonly PinCause[] {
  if (mask === 0) return NONE;
  let list = pinListCache[mask];
  if (list === undefined) {
    list = Object.freeze(PIN_CAUSES.filter((_, i) => (mask & (1 << i)) !== 0));
    pinListCache[mask] = list;
  }
  return list;
}

function toClassification(f: StatementFacts): Classification {
  return {
    route: f.route,
    reason: f.reason,
    statementReason: f.reason,
    kind: f.kind,
    hint: undefined,
    followsPrevious: f.followsPrevious,
    startsTransaction: f.startsTransaction,
    endsTransaction: f.endsTransaction,
    setsAutocommit: f.setsAutocommit,
    pins: pinList(f.pins),
    unpins: pinList(f.unpins),
    sessionState: f.sessionState === undefined ? NONE : [f.sessionState],
    isMultiStatement: false,
    parts: NONE,
  };
}

/**
 * One verdict for a whole COM_QUERY. A batch of statements runs on one backend, so it may go to a
 * replica only if every statement may; its effects are the net effect of running all of them in
 * order (a failing statement stops the batch early, which the status flags then reveal).
 * `followsPrevious` survives only on the first statement and only if the rest are plain reads.
 * An unterminated string or comment makes the text unclear, so it never goes to a replica.
 * Hints apply last: primary always wins; replica wins only over reads and soft verdicts, because
 * a write sent to a Dolt replica would be lost.
 */
export function combineStatements(
  facts: readonly StatementFacts[],
  hintPrimary: boolean,
  hintReplica: boolean,
  unterminated: boolean,
): Classification {
  let route: Route;
  let reason: Reason;
  let kind: StatementKind;
  let soft: boolean;
  let followsPrevious: boolean;
  let starts = false;
  let ends = false;
  let autocommit: boolean | undefined;
  let pins = 0;
  let unpins = 0;
  let sessionState: readonly SessionStateChange[] = NONE;
  let parts: readonly Classification[] = NONE;

  if (facts.length === 0) {
    route = 'primary';
    reason = 'empty';
    kind = 'empty';
    soft = false;
    followsPrevious = false;
  } else if (facts.length === 1) {
    const f = facts[0];
    ({ route, reason, kind, soft, followsPrevious, setsAutocommit: autocommit, pins, unpins } = f);
    starts = f.startsTransaction;
    ends = f.endsTransaction;
    if (f.sessionState !== undefined) sessionState = [f.sessionState];
  } else {
    kind = 'multi';
    const allReads = facts.every((f) => f.route === 'replica');
    const restAreReads = facts.every((f, i) => i === 0 || f.route === 'replica');
    route = allReads ? 'replica' : 'primary';
    followsPrevious = facts[0].followsPrevious && restAreReads;
    reason = allReads ? 'read' : followsPrevious ? facts[0].reason : 'multi-statement';
    soft = facts.every((f) => f.route === 'replica' || f.soft);
    let inTransaction: boolean | undefined;
    const states: SessionStateChange[] = [];
    for (const f of facts) {
      if (f.endsTransaction) {
        ends = true;
        inTransaction = false;
      }
      if (f.startsTransaction) inTransaction = true;
      if (f.setsAutocommit !== undefined) autocommit = f.setsAutocommit;
      unpins = (unpins | f.unpins) & ~f.pins;
      pins = (pins & ~f.unpins) | f.pins;
      if (f.sessionState !== undefined) states.push(f.sessionState);
    }
    starts = inTransaction === true;
    if (states.length > 0) sessionState = states;
    parts = facts.map(toClassification);
  }

  if (unterminated && route === 'replica') {
    route = 'primary';
    reason = 'unterminated';
    soft = false;
  }

  const statementReason = reason;
  let hint: Hint | undefined;
  if (hintPrimary) {
    hint = 'primary';
    route = 'primary';
    reason = 'hint-primary';
    followsPrevious = false;
  } else if (hintReplica) {
    hint = 'replica';
    if (route === 'replica' || soft) {
      route = 'replica';
      reason = 'hint-replica';
    } else {
      reason = 'replica-hint-ignored';
    }
  }

  return {
    route,
    reason,
    statementReason,
    kind,
    hint,
    followsPrevious,
    startsTransaction: starts,
    endsTransaction: ends,
    setsAutocommit: autocommit,
    pins: pinList(pins),
    unpins: pinList(unpins),
    sessionState,
    isMultiStatement: facts.length > 1,
    parts,
  };
}

/** What the classifier needs to know beyond the SQL text. */
export interface ClassifierOptions {
  /**
   * Procedures that only read, lower-case: `name` matches in any database, `db.name` only in
   * `db`. Build with `routineNames()`.
   */
  readonly readOnlyProcedures?: ReadonlySet<string>;
  /** Stored functions that write, lower-case bare names: a call anywhere means primary. */
  readonly writeFunctions?: ReadonlySet<string>;
  /**
   * The session runs with NO_BACKSLASH_ESCAPES, so `\` does not escape inside strings. Take it
   * from SERVER_STATUS_NO_BACKSLASH_ESCAPES (0x0200) in the session's last OK packet.
   */
  readonly noBackslashEscapes?: boolean;
}
