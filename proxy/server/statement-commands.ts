/**
 * What the session does with each COM_STMT_* command, decided from the packet and the session's
 * StatementRegistry alone (no sockets), as a `StatementPlan`:
 *
 * - PREPARE: classified like a query and routed by that verdict; the client id is reserved now
 *   and written over the backend's in the PREPARE_OK on the way back. A KILL is refused: run by
 *   Dolt, its id would name one of Dolt's connections (kill-command.ts).
 * - EXECUTE: routed like its statement's classification (a write to the primary, a read to a
 *   replica unless the session is in a transaction or pinned), and forced onto the backend that
 *   holds long data for it; the parameter types it binds are saved for re-sends.
 * - SEND_LONG_DATA: follows earlier long data of the statement, else routed like an execute; it
 *   has no response, so an unknown statement is dropped silently, as MySQL does.
 * - CLOSE: no response; the statement is forgotten and closed on every backend that has it.
 * - RESET / FETCH: go where the statement last ran (or got long data). A RESET with nothing to
 *   reset anywhere is answered OK here; a FETCH without a cursor is an error.
 * Malformed and unknown-id packets become errors that keep the connection usable.
 */

import { Command, statementIdOf, type PacketView } from '../protocol';
import type { Classification } from '../routing/classifier';
import type { BackendConnection } from './backend-connection';
import { READ_CLASSIFICATION, type JobFields } from './command-job';
import { AccountStatementRefusedError, BackendErrorReply, MalformedCommandError, ServerStateRefusedError, SessionMemoryLimitError, UnknownStatementError } from './errors';
import { isAccountStatement } from './command-job';
import { serverStateRefusal } from './server-state-guard';
import { KILL_NOT_PREPARED, parseKill } from './kill-command';
import { executeLayoutAt, keepParameterTypes, placementOn, type ExecuteLayout, type PreparedStatement, type StatementRegistry } from './prepared-statements';

export type StatementPlan =
  /** Route like `routing`, with these job fields. */
  | { action: 'route'; routing: Classification; mayWrite: boolean; job: JobFields }
  /** Answer with this error (after the rest of the packet, if it spans frames); send these COM_STMT_CLOSEs first. */
  | { action: 'refuse'; error: Error; closes?: Array<[BackendConnection, number]> }
  /** Answer OK. */
  | { action: 'ok' }
  /** No response; send these COM_STMT_CLOSEs to backends. */
  | { action: 'none'; closes: Array<[BackendConnection, number]> };

const NOTHING: StatementPlan = Object.freeze({ action: 'none', closes: [] }) as StatementPlan;

function usable(conn: BackendConnection | null): BackendConnection | null {
  return conn !== null && !conn.isClosed ? conn : null;
}

/**
 * `maxLongData`: the long data one execute may carry (max_allowed_packet). Past it the chunk is
 * dropped — SEND_LONG_DATA has no response — and the execute is refused, as MySQL does.
 */
/** `accountsReplicate`: as planQuery's (query-plan.ts): account statements may be prepared. */
export function planStatementCommand(view: PacketView, statements: StatementRegistry, classify: (sql: string) => Classification, maxLongData = Number.POSITIVE_INFINITY, accountsReplicate = false): StatementPlan {
  const command = view.firstByte;
  const buf = view.payloadBuffer;
  const start = view.payloadStart;
  const length = view.payloadLength;
  const whole = view.endsPacket;

  if (command === Command.COM_STMT_PREPARE) {
    if (!whole) return { action: 'refuse', error: new MalformedCommandError('a statement to prepare cannot be 16 MiB or longer') };
    const sql = buf.toString('utf8', start + 1, start + length);
    const c = classify(sql);
    if ((c.kind === 'admin' || c.kind === 'multi') && parseKill(c, buf.subarray(start + 1, start + length)) !== null) {
      return { action: 'refuse', error: new BackendErrorReply(1064, '42000', KILL_NOT_PREPARED) };
    }
    if (!accountsReplicate && isAccountStatement(c)) return { action: 'refuse', error: new AccountStatementRefusedError() };
    const guarded = serverStateRefusal(c, buf.subarray(start + 1, start + length), false);
    if (guarded !== null) return { action: 'refuse', error: new ServerStateRefusedError(guarded) };
    const overLimit = statements.admit(sql.length);
    if (overLimit !== null) return { action: 'refuse', error: overLimit };
    return { action: 'route', routing: c, mayWrite: false, job: { effects: null, prepare: { clientId: statements.reserveId(), sql, classification: c }, stmt: null, layout: null, initDb: null, selectDatabase: null, fixedConn: null, localInfile: null } };
  }

  if (command === Command.COM_STMT_CLOSE) {
    if (!whole || length < 5) return NOTHING;
    const stmt = statements.delete(buf.readUInt32LE(start + 1));
    if (stmt === undefined) return NOTHING;
    const closes: Array<[BackendConnection, number]> = [];
    for (const p of stmt.placements) if (!p.conn.isClosed && p.conn.isIdle) closes.push([p.conn, p.backendId]);
    return { action: 'none', closes };
  }

  let stmt: PreparedStatement | undefined;
  try {
    stmt = statements.get(statementIdOf(buf, start, length));
  } catch {
    if (command === Command.COM_STMT_SEND_LONG_DATA) return NOTHING;
    return { action: 'refuse', error: new MalformedCommandError('statement command shorter than 5 bytes') };
  }

  if (command === Command.COM_STMT_SEND_LONG_DATA) {
    if (stmt === undefined || stmt.longDataRefusal !== null) return NOTHING;
    // Header: command, statement id (4), parameter id (2).
    const bytes = length - 7;
    if (!whole) {
      stmt.longDataRefusal = 'a COM_STMT_SEND_LONG_DATA chunk of 16 MiB or more is not supported through the proxy; send long data in smaller chunks';
      return NOTHING;
    }
    if (stmt.longDataBytes + bytes > maxLongData) {
      stmt.longDataRefusal = `the long data sent for this execute passed max_allowed_packet (${maxLongData} bytes)`;
      return NOTHING;
    }
    stmt.longDataBytes += bytes;
    return { action: 'route', routing: stmt.classification, mayWrite: false, job: { effects: null, prepare: null, stmt, layout: null, initDb: null, selectDatabase: null, fixedConn: usable(stmt.longDataConn), localInfile: null } };
  }

  if (command === Command.COM_STMT_EXECUTE) {
    if (stmt === undefined) return { action: 'refuse', error: new UnknownStatementError(buf.readUInt32LE(start + 1), 'mysqld_stmt_execute') };
    if (stmt.longDataRefusal !== null) return refuseOverLongData(statements, stmt);
    let layout: ExecuteLayout;
    try {
      layout = executeLayoutAt(buf, start, length, stmt.paramCount);
    } catch (error) {
      return { action: 'refuse', error: new MalformedCommandError((error as Error).message.replace(/^malformed packet: /, '')) };
    }
    if (layout.bound) keepParameterTypes(stmt, buf, start + layout.typesStart, start + layout.typesEnd);
    const c = stmt.classification;
    return { action: 'route', routing: c, mayWrite: stmt.mayWrite, job: { effects: c, prepare: null, stmt, layout, initDb: null, selectDatabase: null, fixedConn: usable(stmt.longDataConn), localInfile: null } };
  }

  // COM_STMT_RESET, COM_STMT_FETCH
  const reset = command === Command.COM_STMT_RESET;
  const name = reset ? 'mysqld_stmt_reset' : 'mysqld_stmt_fetch';
  if (!whole) return { action: 'refuse', error: new MalformedCommandError(`${name} cannot be 16 MiB or longer`) };
  if (stmt === undefined) return { action: 'refuse', error: new UnknownStatementError(buf.readUInt32LE(start + 1), name) };
  const conn = usable(reset ? (stmt.longDataConn ?? stmt.lastConn) : stmt.lastConn);
  if (reset) {
    stmt.longDataConn = null;
    stmt.longDataBytes = 0;
    stmt.longDataRefusal = null;
  }
  if (conn === null || placementOn(stmt, conn) === null) {
    return reset ? { action: 'ok' } : { action: 'refuse', error: new BackendErrorReply(1421, 'HY000', 'The statement has no open cursor') };
  }
  return { action: 'route', routing: READ_CLASSIFICATION, mayWrite: false, job: { effects: null, prepare: null, stmt, layout: null, initDb: null, selectDatabase: null, fixedConn: conn, localInfile: null } };
}

/**
 * The execute after dropped long data: refused, and the statement closed on the backend that got
 * the rest of its long data (a later execute re-prepares it there, with no half of a parameter
 * left behind).
 */
function refuseOverLongData(statements: StatementRegistry, stmt: PreparedStatement): StatementPlan {
  const error = new SessionMemoryLimitError(stmt.longDataRefusal as string);
  const closes: Array<[BackendConnection, number]> = [];
  const conn = stmt.longDataConn;
  if (conn !== null) {
    const placement = placementOn(stmt, conn);
    if (placement !== null) {
      if (!conn.isClosed && conn.isIdle) closes.push([conn, placement.backendId]);
      statements.dropPlacement(stmt, conn);
    }
  }
  stmt.longDataConn = null;
  stmt.longDataBytes = 0;
  stmt.longDataRefusal = null;
  return { action: 'refuse', error, closes };
}
