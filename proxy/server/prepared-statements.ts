/**
 * Prepared statements of one client session, made transparent across backends: the client sees
 * ids the proxy hands out (1, 2, 3, ... per session); each backend connection the statement has
 * been prepared on has its own id, kept in `backendIds`. A statement is prepared on the backend
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

import type { Classification } from '../routing/classifier';
import { MalformedPacketError } from '../protocol';
import type { BackendConnection } from './backend-connection';

export interface PreparedStatement {
  readonly clientId: number;
  readonly sql: string;
  readonly classification: Classification;
  readonly paramCount: number;
  readonly columnCount: number;
  readonly backendIds: Map<BackendConnection, number>;
  /** Parameter types (2 bytes each) of the last execute that bound them; null before. */
  types: Buffer | null;
  /** Backends that have been sent `types` for this statement. */
  readonly typesSentTo: Set<BackendConnection>;
  /** Where COM_STMT_SEND_LONG_DATA went since the last execute; the execute must follow. */
  longDataConn: BackendConnection | null;
  /** Where the last execute ran (COM_STMT_FETCH and COM_STMT_RESET follow it). */
  lastConn: BackendConnection | null;
}

export class StatementRegistry {
  private readonly byId = new Map<number, PreparedStatement>();
  private nextId = 1;

  get size(): number {
    return this.byId.size;
  }

  /** Reserves the id the client will see for a prepare in flight. */
  reserveId(): number {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xfffffffe ? 1 : this.nextId + 1;
    return id;
  }

  add(stmt: Omit<PreparedStatement, 'backendIds' | 'types' | 'typesSentTo' | 'longDataConn' | 'lastConn'>, conn: BackendConnection, backendId: number): PreparedStatement {
    // Field by field, not a spread: every statement gets one object shape, so the per-execute
    // reads and writes of these fields stay monomorphic.
    const full: PreparedStatement = {
      clientId: stmt.clientId,
      sql: stmt.sql,
      classification: stmt.classification,
      paramCount: stmt.paramCount,
      columnCount: stmt.columnCount,
      backendIds: new Map([[conn, backendId]]),
      types: null,
      typesSentTo: new Set(),
      longDataConn: null,
      lastConn: null,
    };
    this.byId.set(stmt.clientId, full);
    return full;
  }

  get(clientId: number): PreparedStatement | undefined {
    return this.byId.get(clientId);
  }

  delete(clientId: number): PreparedStatement | undefined {
    const s = this.byId.get(clientId);
    this.byId.delete(clientId);
    return s;
  }

  /** A backend connection is gone or back in the pool: its statement ids mean nothing now. */
  forgetConnection(conn: BackendConnection): void {
    for (const s of this.byId.values()) {
      s.backendIds.delete(conn);
      s.typesSentTo.delete(conn);
      if (s.longDataConn === conn) s.longDataConn = null;
      if (s.lastConn === conn) s.lastConn = null;
    }
  }

  clear(): void {
    this.byId.clear();
  }

  values(): IterableIterator<PreparedStatement> {
    return this.byId.values();
  }
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
