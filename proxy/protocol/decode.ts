/**
 * Reading the protocol's primitive types and the three generic responses: OK, ERR and EOF.
 *
 * `PayloadCursor` walks one payload with bounds checks; running off the end is a
 * `MalformedPacketError`, never a silent undefined. The `parse*` functions return plain objects
 * whose Buffers are copies, so results outlive the reader's view they were parsed from; they are
 * for the few packets the proxy reads in full. The hot path does not parse: it classifies by
 * first byte and length with the `is*` predicates, which take numbers so no payload view needs
 * to be created.
 *
 * Telling packets apart by first byte needs the length too: 0xFE is an EOF only when the payload
 * is under 9 bytes (a text row may start with 0xFE, the 8-byte length prefix of a >= 16 MiB
 * value), and under CLIENT_DEPRECATE_EOF the OK that ends a result set also starts with 0xFE.
 * Which predicate applies depends on where in a response the packet sits; that is the response
 * tracker's business. Integers beyond 2^53 (a BIGINT UNSIGNED insert id) lose precision as
 * `number`; use `lenencBigInt` where exactness matters.
 */

import { Buffer } from 'node:buffer';
import { Capability, MAX_FRAME_PAYLOAD, ResponseHeader, ServerStatus, SessionTrackType } from './constants';
import { MalformedPacketError } from './errors';

const EMPTY = Buffer.alloc(0);
const TWO_POW_32 = 0x1_0000_0000;

/** Bounds-checked sequential reader over `buf[pos, end)`. Reusable: `reset` re-points it. */
export class PayloadCursor {
  buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Buffer = EMPTY, start = 0, end: number = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  reset(buf: Buffer, start = 0, end: number = buf.length): this {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  get atEnd(): boolean {
    return this.pos >= this.end;
  }

  u8(): number {
    this.need(1, 'int<1>');
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2, 'int<2>');
    const v = this.buf[this.pos] | (this.buf[this.pos + 1] << 8);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3, 'int<3>');
    const v = this.buf[this.pos] | (this.buf[this.pos + 1] << 8) | (this.buf[this.pos + 2] << 16);
    this.pos += 3;
    return v;
  }

  u32(): number {
    this.need(4, 'int<4>');
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** int<8> as a number (exact below 2^53). */
  u64(): number {
    this.need(8, 'int<8>');
    const v = this.buf.readUInt32LE(this.pos) + this.buf.readUInt32LE(this.pos + 4) * TWO_POW_32;
    this.pos += 8;
    return v;
  }

  /** Length-encoded integer; NULL (0xFB) and 0xFF are malformed here. */
  lenencInt(): number {
    const v = this.lenencIntOrNull();
    if (v === null) throw new MalformedPacketError('NULL where a length-encoded integer was required');
    return v;
  }

  /** Length-encoded integer, or null for the NULL marker 0xFB (text-row values). */
  lenencIntOrNull(): number | null {
    const first = this.u8();
    if (first < 0xfb) return first;
    switch (first) {
      case 0xfb:
        return null;
      case 0xfc:
        return this.u16();
      case 0xfd:
        return this.u24();
      case 0xfe:
        return this.u64();
      default:
        throw new MalformedPacketError('0xFF cannot start a length-encoded integer');
    }
  }

  /** Length-encoded integer as an exact bigint. */
  lenencBigInt(): bigint {
    if (this.remaining > 0 && this.buf[this.pos] === 0xfe) {
      this.pos++;
      this.need(8, 'int<8>');
      const v = this.buf.readBigUInt64LE(this.pos);
      this.pos += 8;
      return v;
    }
    return BigInt(this.lenencInt());
  }

  /** `n` bytes as a view (no copy). */
  bytes(n: number): Buffer {
    this.need(n, `string<${n}>`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  lenencBytes(): Buffer {
    return this.bytes(this.lenencInt());
  }

  /** Bytes up to the next NUL (consumed, not returned). A missing NUL is malformed. */
  nulBytes(): Buffer {
    const at = this.buf.indexOf(0, this.pos);
    if (at < 0 || at >= this.end) throw new MalformedPacketError('NUL-terminated string without its NUL');
    const out = this.buf.subarray(this.pos, at);
    this.pos = at + 1;
    return out;
  }

  /**
   * Bytes up to the next NUL, or to the end when there is none. Some servers end the handshake's
   * plugin name with the packet instead of a NUL; this is for such trailing fields only.
   */
  nulOrRestBytes(): Buffer {
    const at = this.buf.indexOf(0, this.pos);
    if (at < 0 || at >= this.end) return this.restBytes();
    const out = this.buf.subarray(this.pos, at);
    this.pos = at + 1;
    return out;
  }

  restBytes(): Buffer {
    const out = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return out;
  }

  lenencString(): string {
    return this.lenencBytes().toString('utf8');
  }

  nulString(): string {
    return this.nulBytes().toString('utf8');
  }

  restString(): string {
    return this.restBytes().toString('utf8');
  }

  skip(n: number): this {
    this.need(n, `${n} bytes`);
    this.pos += n;
    return this;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new MalformedPacketError(`${what} at offset ${this.pos} runs past the payload end ${this.end}`);
    }
  }
}

/** Bytes taken by a length-encoded integer whose first byte is `first` (1 for 0xFB, NULL). */
export function lenencIntSize(first: number): number {
  if (first < 0xfc) return 1;
  if (first === 0xfc) return 3;
  if (first === 0xfd) return 4;
  if (first === 0xfe) return 9;
  throw new MalformedPacketError('0xFF cannot start a length-encoded integer');
}

/** Length-encoded integer at `offset` (bounds-checked against `end`). */
export function readLenencInt(buf: Buffer, offset: number, end: number = buf.length): number {
  return new PayloadCursor(buf, offset, end).lenencInt();
}

// ---- classification by first byte and payload length ------------------------------------------

/** OK packet as the *whole* response or its first packet: 0x00 and at least 7 bytes. */
export function isOkPacket(firstByte: number, payloadLength: number): boolean {
  return firstByte === ResponseHeader.OK && payloadLength >= 7;
}

export function isErrPacket(firstByte: number): boolean {
  return firstByte === ResponseHeader.ERR;
}

/** EOF packet: 0xFE and under 9 bytes, so not a row whose first value is >= 16 MiB. */
export function isEofPacket(firstByte: number, payloadLength: number): boolean {
  return firstByte === ResponseHeader.EOF && payloadLength < 9;
}

/**
 * The packet that ends a run of rows: EOF, or under CLIENT_DEPRECATE_EOF the OK with header
 * 0xFE, whose session-state payload may exceed 9 bytes. A row that starts with 0xFE carries a
 * value of 16 MiB or more, so its first frame is always exactly 0xFFFFFF bytes.
 */
export function isEndOfRows(firstByte: number, payloadLength: number, capabilities: number): boolean {
  if (firstByte !== ResponseHeader.EOF) return false;
  return (capabilities & Capability.CLIENT_DEPRECATE_EOF) !== 0
    ? payloadLength < MAX_FRAME_PAYLOAD
    : payloadLength < 9;
}

// ---- OK / ERR / EOF ---------------------------------------------------------------------------

export interface OkPacket {
  /** 0x00, or 0xFE for the end-of-rows OK under CLIENT_DEPRECATE_EOF. */
  header: number;
  affectedRows: number;
  lastInsertId: number;
  statusFlags: number;
  warnings: number;
  info: string;
  /** The raw session-state block (see `parseSessionStateChanges`), or null when none. */
  sessionStateChanges: Buffer | null;
}

export interface ErrPacket {
  errno: number;
  /** Five characters, or '' when the server sent no '#' marker (pre-4.1 or early handshake). */
  sqlState: string;
  message: string;
}

export interface EofPacket {
  warnings: number;
  statusFlags: number;
}

const cursor = new PayloadCursor();

/** Parses an OK (or 0xFE end-of-rows OK) payload sent under `capabilities`. */
export function parseOk(payload: Buffer, capabilities: number): OkPacket {
  const c = cursor.reset(payload);
  const header = c.u8();
  if (header !== ResponseHeader.OK && header !== ResponseHeader.EOF) {
    throw new MalformedPacketError(`OK packet starts with 0x${header.toString(16)}`);
  }
  const affectedRows = c.lenencInt();
  const lastInsertId = c.lenencInt();
  const statusFlags = c.u16();
  const warnings = c.u16();
  let info = '';
  let sessionStateChanges: Buffer | null = null;
  if ((capabilities & Capability.CLIENT_SESSION_TRACK) !== 0) {
    // MySQL leaves the info field out entirely when it is empty and no state changed.
    if (!c.atEnd) info = c.lenencString();
    if ((statusFlags & ServerStatus.SERVER_SESSION_STATE_CHANGED) !== 0 && !c.atEnd) {
      sessionStateChanges = Buffer.from(c.lenencBytes());
    }
  } else if (!c.atEnd) {
    info = c.restString();
  }
  return { header, affectedRows, lastInsertId, statusFlags, warnings, info, sessionStateChanges };
}

export function parseErr(payload: Buffer): ErrPacket {
  const c = cursor.reset(payload);
  if (c.u8() !== ResponseHeader.ERR) throw new MalformedPacketError('ERR packet does not start with 0xFF');
  const errno = c.u16();
  let sqlState = '';
  if (c.remaining >= 6 && c.buf[c.pos] === 0x23) {
    c.skip(1);
    sqlState = c.bytes(5).toString('latin1');
  }
  return { errno, sqlState, message: c.restString() };
}

export function parseEof(payload: Buffer): EofPacket {
  if (payload.length < 5 || payload[0] !== ResponseHeader.EOF) {
    throw new MalformedPacketError(`EOF packet of ${payload.length} bytes`);
  }
  return { warnings: payload.readUInt16LE(1), statusFlags: payload.readUInt16LE(3) };
}

/**
 * Status flags of an OK or EOF payload at `buf[start, start + payloadLength)`: the 5-byte EOF
 * layout, or the OK layout (header, two lenenc ints, status) whatever its header byte. Reads in
 * place so the response tracker needs no view; -1 when the payload is too short for either.
 */
export function statusFlagsOf(buf: Buffer, start: number, payloadLength: number): number {
  if (payloadLength === 5 && buf[start] === ResponseHeader.EOF) return buf[start + 3] | (buf[start + 4] << 8);
  if (payloadLength < 7) return -1;
  const end = start + payloadLength;
  let p = start + 1;
  const a = buf[p];
  if (a === 0xfb || a === 0xff) return -1;
  p += lenencIntSize(a);
  if (p >= end) return -1;
  const b = buf[p];
  if (b === 0xfb || b === 0xff) return -1;
  p += lenencIntSize(b);
  if (p + 2 > end) return -1;
  return buf[p] | (buf[p + 1] << 8);
}

/** leavesFollowUpOf: the result carries warnings (or is an error). */
export const FOLLOW_UP_WARNINGS = 1;
/** leavesFollowUpOf: the OK's insert id is not 0, so LAST_INSERT_ID() now answers it. */
export const FOLLOW_UP_INSERT_ID = 2;

/**
 * What an OK or EOF payload (validated by statusFlagsOf) leaves that the next statement on the
 * same connection may ask for, as FOLLOW_UP_* bits: warnings for SHOW WARNINGS, an insert id for
 * LAST_INSERT_ID(). The proxy keeps a multiplexed session on such a connection for a while.
 */
export function leavesFollowUpOf(buf: Buffer, start: number, payloadLength: number): number {
  if (payloadLength === 5 && buf[start] === ResponseHeader.EOF) return (buf[start + 1] | buf[start + 2]) !== 0 ? FOLLOW_UP_WARNINGS : 0;
  let p = start + 1;
  p += lenencIntSize(buf[p]);
  const insertId = buf[p] !== 0 ? FOLLOW_UP_INSERT_ID : 0;
  p += lenencIntSize(buf[p]) + 2;
  return insertId | (p + 2 <= start + payloadLength && (buf[p] | buf[p + 1]) !== 0 ? FOLLOW_UP_WARNINGS : 0);
}

// ---- session state changes (CLIENT_SESSION_TRACK) ---------------------------------------------

export interface SessionStateChange {
  type: SessionTrackType | number;
  /** The type-specific data, copied. */
  data: Buffer;
}

/** Splits the session-state block of an OK packet into its (type, data) entries. */
export function parseSessionStateChanges(block: Buffer): SessionStateChange[] {
  const c = new PayloadCursor(block);
  const out: SessionStateChange[] = [];
  while (!c.atEnd) {
    const type = c.u8();
    out.push({ type, data: Buffer.from(c.lenencBytes()) });
  }
  return out;
}

/** The new default schema from a SESSION_TRACK_SCHEMA entry's data. */
export function decodeSchemaChange(data: Buffer): string {
  return new PayloadCursor(data).lenencString();
}

/** Name and new value from a SESSION_TRACK_SYSTEM_VARIABLES entry's data. */
export function decodeSystemVariableChange(data: Buffer): { name: string; value: string } {
  const c = new PayloadCursor(data);
  const name = c.lenencString();
  return { name, value: c.lenencString() };
}
