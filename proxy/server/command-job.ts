/**
 * A client command on its way through the proxy (`Job`), the record of one being answered
 * (`Inflight`), and the pure decisions the session makes about them:
 *
 * - `lostCommandErrors`: what to tell a client whose backend connection broke while its command
 *   was in flight. Inside a transaction on the primary the transaction is gone ("rolled back",
 *   40001) — unless the command was the COMMIT, whose outcome is then unknown; outside one, a
 *   statement that may write has an unknown outcome (2013); a read can simply be retried. When a
 *   transaction was open (or this very statement began one) and the reply does not already say
 *   "rolled back", the next command must fail too, so nothing later runs in autocommit as if the
 *   transaction were still there.
 * - `statementFrame`: the COM_STMT_* frame to send to one placement of the statement: the client's
 *   statement id replaced by that backend's, and saved parameter types spliced in when the client
 *   omitted them and this backend does not have the current ones.
 * - `mayWrite`, `isLocalInfile`, `commandLabel`: small classifications of a command.
 */

import { Buffer } from 'node:buffer';
import { Command, frame as frameOf } from '../protocol';
import { classifyQuery, type Classification } from '../routing/classifier';
import { SqlLexer, Tok } from '../routing/sql-lexer';
import type { BackendConnection } from './backend-connection';
import { MalformedCommandError, OutcomeUnknownError, ReadInterruptedError, TransactionLostError, type ProxyError } from './errors';
import { withParameterTypes, writeStatementId, type ExecuteLayout, type PreparedStatement, type StatementPlacement } from './prepared-statements';
import type { CommitPlan } from './outcome-token';
import type { RouteKind } from './session-backends';

/** A command on its way to a backend. */
export interface Job {
  command: number;
  route: RouteKind;
  replica: string | undefined;
  /** Effects to record when the response ends (COM_QUERY, COM_STMT_EXECUTE). */
  effects: Classification | null;
  /** Outcome-unknown when lost: anything that may write. */
  mayWrite: boolean;
  /** What the connection's commit message must be before this runs (outcome-token.ts). */
  commitPlan: CommitPlan;
  /** The token armed for it, once armed: named in the 2013 if its answer is lost. */
  outcomeToken: string | null;
  prepare: { clientId: number; sql: string; classification: Classification } | null;
  stmt: PreparedStatement | null;
  layout: ExecuteLayout | null;
  initDb: string | null;
  /**
   * The session has no current database and this write names its target's (write-target.ts):
   * selected on the backend connection before the write, so Dolt can commit it.
   */
  selectDatabase: string | null;
  /** Must run on exactly this connection (statement long data, reset, fetch). */
  fixedConn: BackendConnection | null;
  /** A LOAD DATA LOCAL's file: the only one the server may ask the client for (local-infile.ts). */
  localInfile: string | null;
  /** The first frame, stable beyond the reader's next read (see ClientSession.stableFrame). */
  frame: Buffer;
  endsPacket: boolean;
  /** Sequence id of the command's last frame seen so far (its first, until it is all sent). */
  seq: number;
  /** Sent again once already after its connection was lost (command-forwarder.ts resendsRead). */
  resent: boolean;
}

/** The fields of a Job that depend on the command; see `jobFields`. */
export type JobFields = Pick<Job, 'effects' | 'prepare' | 'stmt' | 'layout' | 'initDb' | 'selectDatabase' | 'fixedConn' | 'localInfile'>;

/**
 * JobFields with every field present (null when unused), so that every such object has one
 * shape and the session reads them without megamorphic property loads.
 */
export function jobFields(f: Partial<JobFields>): JobFields {
  return { effects: f.effects ?? null, prepare: f.prepare ?? null, stmt: f.stmt ?? null, layout: f.layout ?? null, initDb: f.initDb ?? null, selectDatabase: f.selectDatabase ?? null, fixedConn: f.fixedConn ?? null, localInfile: f.localInfile ?? null };
}

/** A command's Job: `route` and `commitPlan` as the session decided them, `frame` already stable. */
export function newJob(command: number, route: RouteKind, mayWrite: boolean, commitPlan: CommitPlan, frame: Buffer, endsPacket: boolean, seq: number, fields: JobFields): Job {
  // Field by field rather than a spread: one object of one shape per command.
  return {
    command,
    route,
    replica: undefined,
    effects: fields.effects,
    mayWrite,
    commitPlan,
    outcomeToken: null,
    prepare: fields.prepare,
    stmt: fields.stmt,
    layout: fields.layout,
    initDb: fields.initDb,
    selectDatabase: fields.selectDatabase,
    fixedConn: fields.fixedConn,
    localInfile: fields.localInfile,
    frame,
    endsPacket,
    seq,
    resent: false,
  };
}

export interface Inflight {
  job: Job;
  conn: BackendConnection;
  /** The replica counted as outstanding in the selector, or null. */
  replica: string | null;
  startedAt: number;
  wasInTransaction: boolean;
  expects: boolean;
  /** Sequence id of the last frame of the exchange (passed to the client, or a file's end from it), -1 before the first. */
  lastForwardedSeq: number;
  /** Set when the proxy itself kills the connection, to report this instead of a generic loss. */
  failure: Error | null;
  /**
   * Set once the proxy asked Dolt to stop the statement (KILL QUERY on a side connection, for
   * query_timeout_ms or a client's KILL QUERY): the ERR with which Dolt then ends the response is
   * replaced with this, and the connection stays.
   */
  stopping: Error | null;
  /** The KILL QUERY for `stopping` has been answered (or failed): it can no longer hit a later statement. */
  killSettled: boolean;
}

/** A plain read, for commands routed like one (COM_INIT_DB, COM_FIELD_LIST, COM_STATISTICS). */
export const READ_CLASSIFICATION: Classification = classifyQuery(Buffer.from('SELECT 1'));

/** Verdicts of statements that change nothing: losing them mid-flight means "retry", not "unknown". */
const READ_REASONS: ReadonlySet<string> = new Set(['read', 'read-only-procedure', 'last-insert-id', 'session-function', 'diagnostics', 'locking-read']);

export function mayWrite(c: Classification): boolean {
  return !READ_REASONS.has(c.statementReason);
}

const localInfileLexer = new SqlLexer();

/**
 * LOAD DATA [LOW_PRIORITY|CONCURRENT] LOCAL INFILE / LOAD XML LOCAL, alone or as any statement of
 * a multi-statement query, read by the lexer (comments of every kind, any length).
 */
export function isLocalInfile(c: Classification, sql: Buffer, noBackslashEscapes = false): boolean {
  if (c.kind !== 'load' && !(c.kind === 'multi' && c.parts.some((p) => p.kind === 'load'))) return false;
  const lx = localInfileLexer;
  lx.reset(sql, noBackslashEscapes);
  try {
    let atStart = true;
    for (let t = lx.next(); t !== Tok.End; t = lx.next()) {
      if (atStart && lx.keyword === 'load' && loadsLocal(lx)) return true;
      atStart = lx.type === Tok.Semicolon;
    }
    return false;
  } finally {
    lx.release();
  }
}

/** After LOAD: `DATA|XML [LOW_PRIORITY|CONCURRENT] LOCAL`. */
function loadsLocal(lx: SqlLexer): boolean {
  if (lx.next() !== Tok.Word || !(lx.is('data') || lx.is('xml'))) return false;
  let t = lx.next();
  if (t === Tok.Word && (lx.is('low_priority') || lx.is('concurrent'))) t = lx.next();
  return t === Tok.Word && lx.keyword === 'local';
}

/** CREATE/ALTER/DROP/RENAME USER or ROLE, GRANT, REVOKE, SET PASSWORD — alone or in a multi-statement query. */
export function isAccountStatement(c: Classification): boolean {
  if (c.statementReason === 'account-management') return true;
  return c.parts.some((part) => part.statementReason === 'account-management');
}

const COMMAND_LABELS: Readonly<Record<number, string>> = {
  [Command.COM_QUERY]: 'query',
  [Command.COM_STMT_PREPARE]: 'prepare',
  [Command.COM_STMT_EXECUTE]: 'execute',
  [Command.COM_STMT_SEND_LONG_DATA]: 'long_data',
  [Command.COM_STMT_RESET]: 'stmt_reset',
  [Command.COM_STMT_FETCH]: 'fetch',
  [Command.COM_INIT_DB]: 'init_db',
  [Command.COM_FIELD_LIST]: 'field_list',
  [Command.COM_STATISTICS]: 'statistics',
};

/** The `command` label of the queries metric. */
export function commandLabel(command: number): string {
  return COMMAND_LABELS[command] ?? 'other';
}

export interface LostCommand {
  /** The connection was the session's primary connection. */
  onPrimary: boolean;
  /** A transaction was open (or autocommit off) when the command was sent. */
  wasInTransaction: boolean;
  effects: Classification | null;
  mayWrite: boolean;
  backend: string;
  /** The outcome token the command was sent with, if any. */
  outcomeToken: string | null;
}

/** What the client hears now, and whether its next command must hear "transaction rolled back". */
export function lostCommandErrors(f: LostCommand, cause: string): { reply: ProxyError; transactionLost: boolean } {
  const c = f.effects;
  const committing = c !== null && c.endsTransaction && c.kind !== 'rollback';
  let reply: ProxyError;
  if (f.onPrimary && f.wasInTransaction && !committing) reply = new TransactionLostError(cause);
  else if (f.mayWrite || committing) reply = new OutcomeUnknownError(f.backend, cause, f.outcomeToken);
  else reply = new ReadInterruptedError(f.backend, cause);
  const opened = f.wasInTransaction || c?.startsTransaction === true;
  return { reply, transactionLost: f.onPrimary && opened && !committing && !(reply instanceof TransactionLostError) };
}

/**
 * The frame of a COM_STMT_* job for `conn`: the backend's statement id written over the client's
 * (in place: the job's frame is the proxy's to change), and, for an execute without parameter
 * types going to a backend that never got them, a new frame with the saved types spliced in.
 * An execute over 16 MiB cannot be rebuilt that way; it gets a MalformedCommandError.
 */
export function statementFrame(job: Job, stmt: PreparedStatement, placement: StatementPlacement): Buffer | MalformedCommandError {
  let frame = job.frame;
  const layout = job.layout;
  if (job.command === Command.COM_STMT_EXECUTE && layout !== null && !layout.bound && layout.boundFlagOffset >= 0 && stmt.types !== null && !placement.typesSent) {
    if (!job.endsPacket) return new MalformedCommandError('an execute over 16 MiB without parameter types cannot be moved to another backend; send the types again');
    frame = frameOf(job.seq, withParameterTypes(Buffer.from(frame.subarray(4)), layout, stmt.types));
  }
  writeStatementId(frame, 4, placement.backendId);
  return frame;
}
