/**
 * Packets the proxy writes itself, framed and ready for `socket.write`: OK, ERR and EOF
 * responses to clients, and the handful of commands it sends to backends on its own account
 * (ping, quit, reset, replaying the session's database and statements).
 *
 * Each builder returns a Buffer no one else holds (possibly a view of a larger private
 * allocation) unless its doc says it is shared. Shared packets (`COM_PING_FRAME`, `plainOkFrame`,
 * ...) are built once and handed out again and again, so a caller must never write into them;
 * `socket.write` does not. Sequence ids passed in are taken modulo 256, because the id is one
 * byte and wraps on long exchanges.
 */

import { Buffer } from 'node:buffer';
import {
  Capability,
  Charset,
  ColumnType,
  Command,
  MAX_FRAME_PAYLOAD,
  PACKET_HEADER_LENGTH,
  ResponseHeader,
  ServerStatus,
  sqlStateFor,
} from './constants';
import { PayloadWriter, frameSplit } from './encode';

/** Frames a payload; payloads of 16 MiB or more become several frames (see `frameSplit`). */
export function frame(sequenceId: number, payload: Uint8Array): Buffer {
  if (payload.length >= MAX_FRAME_PAYLOAD) return frameSplit(sequenceId, payload);
  const out = Buffer.allocUnsafe(PACKET_HEADER_LENGTH + payload.length);
  writeFrameHeader(out, 0, payload.length, sequenceId);
  out.set(payload, PACKET_HEADER_LENGTH);
  return out;
}

/** Writes a 4-byte frame header; `payloadLength` must be at most 0xFFFFFF. */
export function writeFrameHeader(
  buf: Buffer,
  offset: number,
  payloadLength: number,
  sequenceId: number,
): void {
  if (payloadLength > MAX_FRAME_PAYLOAD) throw new RangeError(`frame payload too long: ${payloadLength}`);
  buf[offset] = payloadLength & 0xff;
  buf[offset + 1] = (payloadLength >>> 8) & 0xff;
  buf[offset + 2] = (payloadLength >>> 16) & 0xff;
  buf[offset + 3] = sequenceId & 0xff;
}

/**
 * Frames a logical packet of `payloadLength` bytes takes; the sequence id after it is
 * `(first + framesFor(n)) & 0xff`.
 */
export function framesFor(payloadLength: number): number {
  return Math.floor(payloadLength / MAX_FRAME_PAYLOAD) + 1;
}

export interface OkFields {
  affectedRows?: number | bigint;
  lastInsertId?: number | bigint;
  statusFlags?: number;
  warnings?: number;
  /** Human-readable info ("Rows matched: 1 Changed: 1 Warnings: 0"). */
  info?: string;
  /** Raw session-state-change block; only written when the client has CLIENT_SESSION_TRACK. */
  sessionStateChanges?: Uint8Array;
  /**
   * 0xFE instead of 0x00: the end-of-rows OK under CLIENT_DEPRECATE_EOF. Only valid there,
   * because anywhere else a short 0xFE packet reads as EOF.
   */
  asEndOfRows?: boolean;
}

/** Builds an OK payload in the layout `capabilities` (the negotiated set) calls for. */
export function buildOkPayload(fields: OkFields, capabilities: number): Buffer {
  const w = new PayloadWriter(32 + (fields.info?.length ?? 0));
  writeOk(w, fields, capabilities);
  return w.toPayload();
}

export function okFrame(sequenceId: number, fields: OkFields, capabilities: number): Buffer {
  const w = new PayloadWriter(32 + (fields.info?.length ?? 0));
  writeOk(w, fields, capabilities);
  return w.toFrame(sequenceId);
}

function writeOk(w: PayloadWriter, f: OkFields, capabilities: number): void {
  let status = f.statusFlags ?? ServerStatus.SERVER_STATUS_AUTOCOMMIT;
  const changes = f.sessionStateChanges;
  const tracking = (capabilities & Capability.CLIENT_SESSION_TRACK) !== 0;
  if (changes !== undefined && changes.length > 0 && tracking) {
    status |= ServerStatus.SERVER_SESSION_STATE_CHANGED;
  } else {
    status &= ~ServerStatus.SERVER_SESSION_STATE_CHANGED;
  }
  w.u8(f.asEndOfRows === true ? ResponseHeader.EOF : ResponseHeader.OK)
    .lenencInt(f.affectedRows ?? 0)
    .lenencInt(f.lastInsertId ?? 0)
    .u16(status)
    .u16(f.warnings ?? 0);
  const info = f.info ?? '';
  if (tracking) {
    // The info field is a lenenc string here, and MySQL omits it when it is empty and no state
    // changed; parsers accept either, we write it always for simplicity.
    w.lenencString(info);
    if ((status & ServerStatus.SERVER_SESSION_STATE_CHANGED) !== 0 && changes !== undefined) {
      w.lenencString(changes);
    }
  } else if (info.length > 0) {
    w.text(info);
  }
}

/**
 * ERR payload: 0xFF, errno, '#', 5-character SQLSTATE, message. The SQLSTATE marker is always
 * written: every client the proxy accepts speaks protocol 4.1.
 */
export function buildErrPayload(errno: number, sqlState: string, message: string): Buffer {
  const w = new PayloadWriter(16 + message.length);
  writeErr(w, errno, sqlState, message);
  return w.toPayload();
}

export function errFrame(sequenceId: number, errno: number, sqlState: string, message: string): Buffer {
  const w = new PayloadWriter(16 + message.length);
  writeErr(w, errno, sqlState, message);
  return w.toFrame(sequenceId);
}

/** ERR frame with the SQLSTATE MySQL pairs with `errno` (see `sqlStateFor`). */
export function errFrameFor(sequenceId: number, errno: number, message: string): Buffer {
  return errFrame(sequenceId, errno, sqlStateFor(errno), message);
}

function writeErr(w: PayloadWriter, errno: number, sqlState: string, message: string): void {
  if (!/^[0-9A-Z]{5}$/.test(sqlState)) throw new RangeError(`SQLSTATE must be 5 characters: ${sqlState}`);
  // MySQL caps messages at MYSQL_ERRMSG_SIZE (512) bytes and clients size buffers by it; cut on
  // a character boundary so the tail is not a broken UTF-8 sequence.
  const text = Buffer.from(message, 'utf8');
  let end = Math.min(text.length, 512);
  if (end < text.length) while (end > 0 && (text[end] & 0xc0) === 0x80) end--;
  w.u8(ResponseHeader.ERR).u16(errno).u8(0x23).text(sqlState).bytes(text.subarray(0, end));
}

/** EOF payload (protocol 4.1): 0xFE, warnings, status flags. */
export function buildEofPayload(warnings: number, statusFlags: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out[0] = ResponseHeader.EOF;
  out.writeUInt16LE(warnings & 0xffff, 1);
  out.writeUInt16LE(statusFlags & 0xffff, 3);
  return out;
}

export function eofFrame(sequenceId: number, warnings: number, statusFlags: number): Buffer {
  return frame(sequenceId, buildEofPayload(warnings, statusFlags));
}

const PLAIN_OK_CACHE = new Map<number, Buffer>();
const PLAIN_OK_CACHE_LIMIT = 256;

/**
 * Shared frame of the most common answer: OK with no rows, no insert id, no warnings, no info,
 * given status flags (so valid for any capabilities: with CLIENT_SESSION_TRACK the info field
 * may be omitted). Memoised per (sequence id, status) up to a small bound; never mutate it.
 */
export function plainOkFrame(sequenceId: number, statusFlags: number): Buffer {
  const key = ((sequenceId & 0xff) << 16) | (statusFlags & 0xffff & ~ServerStatus.SERVER_SESSION_STATE_CHANGED);
  const hit = PLAIN_OK_CACHE.get(key);
  if (hit !== undefined) return hit;
  const out = Buffer.from([7, 0, 0, key >>> 16, ResponseHeader.OK, 0, 0, key & 0xff, (key >>> 8) & 0xff, 0, 0]);
  if (PLAIN_OK_CACHE.size < PLAIN_OK_CACHE_LIMIT) PLAIN_OK_CACHE.set(key, out);
  return out;
}

/** A whole command packet (sequence id 0) with a text or binary body after the command byte. */
export function commandFrame(command: Command, body?: string | Uint8Array): Buffer {
  const w = new PayloadWriter(typeof body === 'string' ? body.length * 3 + 1 : (body?.length ?? 0) + 1);
  w.u8(command);
  if (typeof body === 'string') w.text(body);
  else if (body !== undefined) w.bytes(body);
  return w.toFrame(0);
}

/**
 * COM_QUERY as sent to a backend. When the backend connection negotiated
 * CLIENT_QUERY_ATTRIBUTES the body must start with an (empty) attribute block, or the server
 * reads the first SQL bytes as counts.
 */
export function comQueryFrame(sql: string, capabilities: number): Buffer {
  const w = new PayloadWriter(sql.length * 3 + 3);
  w.u8(Command.COM_QUERY);
  if ((capabilities & Capability.CLIENT_QUERY_ATTRIBUTES) !== 0) w.lenencInt(0).lenencInt(1);
  w.text(sql);
  return w.toFrame(0);
}

export function comInitDbFrame(schema: string): Buffer {
  return commandFrame(Command.COM_INIT_DB, schema);
}

export function comStmtPrepareFrame(sql: string): Buffer {
  return commandFrame(Command.COM_STMT_PREPARE, sql);
}

export function comStmtCloseFrame(statementId: number): Buffer {
  const out = Buffer.from([5, 0, 0, 0, Command.COM_STMT_CLOSE, 0, 0, 0, 0]);
  out.writeUInt32LE(statementId >>> 0, 5);
  return out;
}

export function comStmtResetFrame(statementId: number): Buffer {
  const out = Buffer.from([5, 0, 0, 0, Command.COM_STMT_RESET, 0, 0, 0, 0]);
  out.writeUInt32LE(statementId >>> 0, 5);
  return out;
}

/** Shared COM_PING frame (health probe on a pooled backend connection). */
export const COM_PING_FRAME: Buffer = Buffer.from([1, 0, 0, 0, Command.COM_PING]);
/** Shared COM_QUIT frame (polite close of a backend connection). */
export const COM_QUIT_FRAME: Buffer = Buffer.from([1, 0, 0, 0, Command.COM_QUIT]);
/** Shared COM_RESET_CONNECTION frame (returning a backend connection to a pool). */
export const COM_RESET_CONNECTION_FRAME: Buffer = Buffer.from([1, 0, 0, 0, Command.COM_RESET_CONNECTION]);

/** An empty packet: the end of LOCAL INFILE data, or refusing a LOCAL INFILE request. */
export function emptyFrame(sequenceId: number): Buffer {
  return Buffer.from([0, 0, 0, sequenceId & 0xff]);
}

/**
 * The frames of a text result set the proxy answers itself (no backend has it): column count,
 * one VAR_STRING definition per column, EOF unless CLIENT_DEPRECATE_EOF, one row per `rows`
 * entry (null is SQL NULL), then the end of rows (EOF, or an OK marked 0xFE). Sequence ids run
 * on from `sequenceId`.
 */
export function textResultSetFrames(sequenceId: number, columns: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | null>>, statusFlags: number, capabilities: number): Buffer[] {
  const frames: Buffer[] = [];
  let seq = sequenceId;
  const next = (payload: Uint8Array): void => {
    frames.push(frame(seq, payload));
    seq = (seq + 1) & 0xff;
  };
  next(new PayloadWriter(9).lenencInt(columns.length).toPayload());
  for (const name of columns) {
    next(
      new PayloadWriter(64 + name.length * 2)
        .lenencString('def').lenencString('').lenencString('').lenencString('').lenencString(name).lenencString(name)
        .lenencInt(0x0c).u16(Charset.UTF8MB4_GENERAL_CI).u32(1024 * 1024).u8(ColumnType.MYSQL_TYPE_VAR_STRING).u16(0).u8(0).u16(0)
        .toPayload(),
    );
  }
  const deprecateEof = (capabilities & Capability.CLIENT_DEPRECATE_EOF) !== 0;
  if (!deprecateEof) next(buildEofPayload(0, statusFlags));
  for (const row of rows) {
    const w = new PayloadWriter(64);
    for (const value of row) {
      if (value === null) w.u8(0xfb);
      else w.lenencString(value);
    }
    next(w.toPayload());
  }
  if (deprecateEof) next(buildOkPayload({ statusFlags, asEndOfRows: true }, capabilities));
  else next(buildEofPayload(0, statusFlags));
  return frames;
}
