/**
 * What a client session has made of its connection, kept so it can be rebuilt on every backend
 * connection the session opens (another replica, a new primary after failover, a pooled
 * connection): the default database, the replayable statements (session-scoped SET, SET NAMES,
 * SET CHARACTER SET, SET ROLE, in order), the COM_SET_OPTION multi-statements switch, and the
 * pins that keep the session on the primary (temporary tables, locks, user variables, ...).
 *
 * It is pure bookkeeping: `applyClassification` takes the classifier's verdict and whether the
 * server accepted the statement, and `pendingFor` says which statements a connection still needs.
 * Each recorded statement gets a rising `seq`; a connection remembers (generation, highest seq it
 * ran) and runs the entries above that mark, in list order.
 *
 * Bounds: the replay list keeps at most `maxStatements`. Repeating a constant SET (no `@@` or
 * `(` in it) moves it to the end under a new seq instead of growing the list — running it once
 * more, last, gives the same state. Past the bound the list stops growing and the session is pinned ('unreplayable-set'):
 * it stays on its primary connection, the one place its full state exists.
 *
 * Memory (session-memory.ts): the text kept is at most `maxReplayBytes` per session and draws on
 * the proxy's budget; `admit` refuses, before it is sent, a statement that would pass either.
 */

import type { Classification, PinCause } from '../routing/classifier';
import { SessionMemoryLimitError } from './errors';
import { DEFAULT_SESSION_LIMITS, UNBOUNDED_BUDGET, type ProxyMemoryBudget } from './session-memory';

export const DEFAULT_MAX_REPLAY_STATEMENTS = 256;

export interface ReplayEntry {
  /** Position in the order statements were recorded; only rises. */
  readonly seq: number;
  readonly statement: string;
}

export class SessionState {
  database: string | null;
  /** Incremented by reset(): a connection's applied mark counts only within one generation. */
  generation = 1;
  private entries: ReplayEntry[] = [];
  private nextSeq = 1;
  /** `fingerprint`, built when first asked after a change. */
  private fingerprintCache: string | null = '';
  readonly pins = new Set<PinCause>();
  /** COM_SET_OPTION: true = MULTI_STATEMENTS on, false = off, null = as negotiated. */
  multiStatements: boolean | null = null;
  /**
   * The client set dolt_transaction_commit_message itself: its commits carry its own message,
   * so the proxy gives them no outcome token (outcome-token.ts).
   */
  setsCommitMessage = false;

  /** Bytes of statement text in `entries`, charged to `budget`. */
  private keptBytes = 0;

  constructor(
    database: string | null,
    private readonly maxStatements = DEFAULT_MAX_REPLAY_STATEMENTS,
    private readonly maxReplayBytes = DEFAULT_SESSION_LIMITS.maxReplayBytes,
    private readonly budget: ProxyMemoryBudget = UNBOUNDED_BUDGET,
  ) {
    this.database = database;
  }

  get replayBytes(): number {
    return this.keptBytes;
  }

  /**
   * Null when the session may run `c`; else why not: the SET text it would keep passes the
   * session's or the proxy's bound. Nothing has been sent yet.
   */
  admit(c: Classification): SessionMemoryLimitError | null {
    if (c.sessionState.length === 0) return null;
    let bytes = 0;
    for (const s of c.sessionState) if (s.kind !== 'database') bytes += s.statement.length;
    if (bytes === 0) return null;
    if (this.keptBytes + bytes > this.maxReplayBytes) {
      return new SessionMemoryLimitError(`this SET would make the session's replayed state ${this.keptBytes + bytes} bytes, over session_limits.max_replay_bytes (${this.maxReplayBytes})`);
    }
    if (!this.budget.fits(bytes)) {
      return new SessionMemoryLimitError(`the proxy holds its whole session_limits.total_bytes (${this.budget.totalBytes}) of session state; try again later`);
    }
    return null;
  }

  get statements(): readonly ReplayEntry[] {
    return this.entries;
  }

  /** The mark of a connection that has run every recorded statement. */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /**
   * The replayed statements as one string ('' when there are none): two sessions with the same
   * fingerprint have the same replayable state, so a backend connection can pass from one to the
   * other as it is (backend-pool.ts). The database and the option switch are compared apart.
   */
  get fingerprint(): string {
    if (this.fingerprintCache === null) this.fingerprintCache = this.entries.map((e) => e.statement).join('\u0000');
    return this.fingerprintCache;
  }

  get pinned(): boolean {
    return this.pins.size > 0;
  }

  /**
   * Statements, in order, that a connection still has to run: it has run everything up to
   * `appliedSeq` in `generation` (any other generation: it has run nothing of this session's).
   */
  pendingFor(generation: number, appliedSeq: number): readonly ReplayEntry[] {
    const from = generation === this.generation ? appliedSeq : 0;
    if (from >= this.lastSeq) return [];
    return this.entries.filter((e) => e.seq > from);
  }

  /**
   * Records what a statement did. `succeeded`: the server answered it (all of a multi-statement)
   * without error. Pins are kept even on failure — a batch may have created a temporary table
   * before a later statement failed, and a needless pin only costs replica reads — while state to
   * replay and unpins are taken only from statements that succeeded.
   */
  applyClassification(c: Classification, succeeded: boolean): void {
    // Most statements have no effects at all: skip the loops (and their iterators) then.
    if (c.pins.length === 0 && (!succeeded || (c.unpins.length === 0 && c.sessionState.length === 0))) return;
    for (const p of c.pins) this.pins.add(p);
    if (!succeeded) return;
    for (const p of c.unpins) if (!c.pins.includes(p)) this.pins.delete(p);
    for (const s of c.sessionState) {
      if (s.kind === 'database') {
        if (s.database !== undefined) this.database = s.database;
        continue;
      }
      this.addStatement(s.statement);
    }
  }

  /**
   * Appends a statement to replay. A constant statement (no `@@`, no `(`) that was recorded
   * before moves to the end under a new seq: running it once more, last, gives the same state as
   * running the whole history, and the list does not grow with every `SET NAMES` a driver repeats.
   */
  addStatement(statement: string): void {
    if (/dolt_transaction_commit_message/i.test(statement)) this.setsCommitMessage = true;
    if (!statement.includes('@@') && !statement.includes('(')) {
      const at = this.entries.findIndex((e) => e.statement === statement);
      if (at >= 0) {
        if (at === this.entries.length - 1) return;
        this.fingerprintCache = null;
        this.entries.splice(at, 1);
        this.entries.push({ seq: this.nextSeq++, statement });
        return;
      }
    }
    if (this.entries.length >= this.maxStatements) {
      this.pins.add('unreplayable-set');
      return;
    }
    this.fingerprintCache = null;
    this.entries.push({ seq: this.nextSeq++, statement });
    this.keptBytes += statement.length;
    this.budget.take(statement.length);
  }

  /** The session is gone: its kept text goes back to the proxy's budget. */
  release(): void {
    this.budget.give(this.keptBytes);
    this.keptBytes = 0;
    this.entries = [];
    this.fingerprintCache = '';
  }

  /** COM_RESET_CONNECTION / COM_CHANGE_USER: back to a fresh login's state. */
  reset(database: string | null): void {
    this.database = database;
    this.generation++;
    this.release();
    this.pins.clear();
    this.multiStatements = null;
    this.setsCommitMessage = false;
  }
}
