/**
 * Prepared statements of one client session, made transparent across backends: the client sees
 * ids the proxy hands out (1, 2, 3, ... per session); each backend connection the statement has
 * been prepared on has its own id, kept in the statement's `placements`. A statement is prepared on the backend
 * the COM_STMT_PREPARE was routed to, and lazily (by the proxy, with the saved SQL) on any other
 * backend an execute is routed to — another replica, or a new primary after failover.
 *
 * COM_STMT_EXECUTE may omit parameter types (new_params_bound_flag = 0: "same as last time").
 * A backend that never saw this statement's types cannot read such a packet, so the types of the
 * last execute that sent them are kept and spliced back in (`withParameterTypes`) for a backend
 * that has not had them. Long data (COM_STMT_SEND_LONG_DATA) lives on one backend until the
 * next execute, which must therefore go there (`longDataConn`).
 *
 * The packet helpers work on a payload (command byte first) and are pure; the session rewrites
 * the 4-byte statement id in place in the frame it forwards.
 */

import { Buffer } from 'node:buffer';
import type { Classification } from '../routing/classifier';
import { ErrorCode, MalformedPacketError } from '../protocol';
import type { BackendConnection } from './backend-connection';
import { SessionMemoryLimitError } from './errors';
import { DEFAULT_SESSION_LIMITS, UNBOUNDED_BUDGET, type ProxyMemoryBudget, type SessionLimits } from './session-memory';

/** The statement on one backend connection. */
export interface StatementPlacement {
  readonly conn: BackendConnection;
  /** The backend's id for the statement. */
  readonly backendId: number;
  /** This backend has been sent the statement's current `types`. */
  typesSent: boolean;
}

export interface PreparedStatement {
  readonly clientId: number;
  readonly sql: string;
  readonly classification: Classification;
  /** Losing an execute mid-flight leaves its outcome unknown (see command-job.ts mayWrite). */
  readonly mayWrite: boolean;
  readonly paramCount: number;
  readonly columnCount: number;
  /**
   * The backend connections it is prepared on. A session has a handful of connections at most,
   * so a list scanned by identity is cheaper per execute than a map.
   */
  readonly placements: StatementPlacement[];
  /** Parameter types (2 bytes each) of the last execute that bound them; null before. */
  types: Buffer | null;
  /** Where COM_STMT_SEND_LONG_DATA went since the last execute; the execute must follow. */
  longDataConn: BackendConnection | null;
  /** Long data bytes sent since the last execute (bounded by max_allowed_packet, session-memory.ts). */
  longDataBytes: number;
  /** Set when long data was dropped for passing the bound: the next execute is refused with it. */
  longDataRefusal: string | null;
  /** Where the last execute ran (COM_STMT_FETCH and COM_STMT_RESET follow it). */
  lastConn: BackendConnection | null;
}

export class StatementRegistry {
  private readonly byId = new Map<number, PreparedStatement>();
  private nextId = 1;
  /** Bytes of SQL text held, charged to `budget`. */
  private keptBytes = 0;

  constructor(
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
    private readonly budget: ProxyMemoryBudget = UNBOUNDED_BUDGET,
  ) {}

  /** Null when a statement of `sqlBytes` may be prepared; else the refusal (nothing sent yet). */
  admit(sqlBytes: number): SessionMemoryLimitError | null {
    if (this.byId.size >= this.limits.maxPreparedStatements) {
      return new SessionMemoryLimitError(
        `this session holds ${this.byId.size} prepared statements, session_limits.max_prepared_statements; close some (COM_STMT_CLOSE) first`,
        ErrorCode.ER_MAX_PREPARED_STMT_COUNT_REACHED,
      );
    }
    if (this.keptBytes + sqlBytes > this.limits.maxPreparedBytes) {
      return new SessionMemoryLimitError(`this prepare would make the session's prepared statement text ${this.keptBytes + sqlBytes} bytes, over session_limits.max_prepared_bytes (${this.limits.maxPreparedBytes})`);
    }
    if (!this.budget.fits(sqlBytes)) {
      return new SessionMemoryLimitError(`the proxy holds its whole session_limits.total_bytes (${this.budget.totalBytes}) of session state; try again later`);
    }
    return null;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Reserves the id the client will see for a prepare in flight. */
  reserveId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
    return id;
  }

  add(stmt: Omit<PreparedStatement, 'placements' | 'types' | 'longDataConn' | 'longDataBytes' | 'longDataRefusal' | 'lastConn'>, conn: BackendConnection, backendId: number): PreparedStatement {
    // Field by field, not a spread: every statement gets one object shape, so the per-execute
    // reads and writes of these fields stay monomorphic.
    const full: PreparedStatement = {
      clientId: stmt.clientId,
      sql: stmt.sql,
      classification: stmt.classification,
      mayWrite: stmt.mayWrite,
      paramCount: stmt.paramCount,
      columnCount: stmt.columnCount,
      placements: [{ conn, backendId, typesSent: false }],
      types: null,
      longDataConn: null,
      longDataBytes: 0,
      longDataRefusal: null,
      lastConn: null,
    };
    const replaced = this.byId.get(stmt.clientId);
    if (replaced !== undefined) this.uncharge(replaced);
    this.byId.set(stmt.clientId, full);
    this.keptBytes += full.sql.length;
    this.budget.take(full.sql.length);
    return full;
  }

  get(clientId: number): PreparedStatement | undefined {
    return this.byId.get(clientId);
  }

  delete(clientId: number): PreparedStatement | undefined {
    const s = this.byId.get(clientId);
    if (s === undefined) return undefined;
    this.byId.delete(clientId);
    this.uncharge(s);
    return s;
  }

  private uncharge(s: PreparedStatement): void {
    this.keptBytes -= s.sql.length;
    this.budget.give(s.sql.length);
  }

  /** `stmt` is no longer prepared on `conn` (closed there); the next execute there re-prepares. */
  dropPlacement(stmt: PreparedStatement, conn: BackendConnection): void {
    const i = stmt.placements.findIndex((p) => p.conn === conn);
    if (i >= 0) stmt.placements.splice(i, 1);
    if (stmt.lastConn === conn) stmt.lastConn = null;
  }

  /** A backend connection is gone or back in the pool: its statement ids mean nothing now. */
  forgetConnection(conn: BackendConnection): void {
    for (const s of this.byId.values()) {
      const i = s.placements.findIndex((p) => p.conn === conn);
      if (i >= 0) s.placements.splice(i, 1);
      if (s.longDataConn === conn) s.longDataConn = null;
      if (s.lastConn === conn) s.lastConn = null;
    }
  }

  clear(): void {
    this.budget.give(this.keptBytes);
    this.keptBytes = 0;
    this.byId.clear();
  }

  values(): IterableIterator<PreparedStatement> {
    return this.byId.values();
  }
}

/** The statement's placement on `conn`, or null when it is not prepared there. */
export function placementOn(stmt: PreparedStatement, conn: BackendConnection): StatementPlacement | null {
  const list = stmt.placements;
  for (let i = 0; i < list.length; i++) if (list[i].conn === conn) return list[i];
  return null;
}

/** Records that the statement is now prepared on `conn` as `backendId`. */
export function placeStatement(stmt: PreparedStatement, conn: BackendConnection, backendId: number): StatementPlacement {
  const placement: StatementPlacement = { conn, backendId, typesSent: false };
  stmt.placements.push(placement);
  return placement;
}

/**
 * Saves the parameter types at [from, to) of `buf` as the statement's types. Drivers resend the
 * same types with every execute; only new ones are copied, and only they make every backend
 * that had the old ones need the new ones.
 */
export function keepParameterTypes(stmt: PreparedStatement, buf: Buffer, from: number, to: number): void {
  const saved = stmt.types;
  if (saved !== null && saved.length === to - from && buf.compare(saved, 0, saved.length, from, to) === 0) return;
  stmt.types = Buffer.from(buf.subarray(from, to));
  for (const p of stmt.placements) p.typesSent = false;
}

export interface ExecuteLayout {
  /** Offset of new_params_bound_flag in the payload, or -1 when the statement has no parameters. */
  boundFlagOffset: number;
  /** True when the packet carries parameter types. */
  bound: boolean;
  /** [typesStart, typesEnd) in the payload when bound. */
  typesStart: number;
  typesEnd: number;
}

/**
 * COM_STMT_EXECUTE layout: 0x17, stmt_id<4>, flags<1>, iteration_count<4>, then for
 * `paramCount` > 0: NULL bitmap, new_params_bound_flag<1>, [types 2 * n], values.
 * (CLIENT_QUERY_ATTRIBUTES is never negotiated by the proxy, so there is no parameter count field.)
 */
export function executeLayout(payload: Buffer, paramCount: number): ExecuteLayout {
  return executeLayoutAt(payload, 0, payload.length, paramCount);
}

/** `executeLayout` of the payload at [start, start + length) of `buf`; offsets are payload-relative. */
export function executeLayoutAt(buf: Buffer, start: number, length: number, paramCount: number): ExecuteLayout {
  if (length < 10) throw new MalformedPacketError('COM_STMT_EXECUTE shorter than 10 bytes');
  if (paramCount === 0) return { boundFlagOffset: -1, bound: false, typesStart: 0, typesEnd: 0 };
  const flag = 10 + ((paramCount + 7) >> 3);
  if (length <= flag) throw new MalformedPacketError('COM_STMT_EXECUTE ends before new_params_bound_flag');
  const bound = buf[start + flag] === 1;
  const typesStart = flag + 1;
  const typesEnd = typesStart + 2 * paramCount;
  if (bound && length < typesEnd) throw new MalformedPacketError('COM_STMT_EXECUTE ends inside the parameter types');
  return { boundFlagOffset: flag, bound, typesStart, typesEnd };
}

/** The same execute payload with new_params_bound_flag = 1 and `types` spliced in. */
export function withParameterTypes(payload: Buffer, layout: ExecuteLayout, types: Buffer): Buffer {
  if (layout.boundFlagOffset < 0 || layout.bound) return payload;
  const out = Buffer.allocUnsafe(payload.length + types.length);
  payload.copy(out, 0, 0, layout.boundFlagOffset);
  out[layout.boundFlagOffset] = 1;
  types.copy(out, layout.boundFlagOffset + 1);
  payload.copy(out, layout.boundFlagOffset + 1 + types.length, layout.boundFlagOffset + 1);
  return out;
}

/** Writes `id` as the statement id of a COM_STMT_* payload (or a COM_STMT_PREPARE_OK) at `payloadStart`. */
export function writeStatementId(buf: Buffer, payloadStart: number, id: number): void {
  buf.writeUInt32LE(id >>> 0, payloadStart + 1);
}
