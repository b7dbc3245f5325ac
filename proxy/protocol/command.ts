/**
 * Reading client command packets as far as routing and session replay need: the command byte,
 * where a COM_QUERY's SQL text starts, the statement id of the COM_STMT_* commands, the schema
 * of COM_INIT_DB, the cursor flags of COM_STMT_EXECUTE. Everything else in a command is
 * forwarded untouched.
 *
 * Functions take the payload as (buffer, start, length) so they work on a reader view's first
 * frame without creating a Buffer; for a COM_QUERY over 16 MiB the first frame holds the SQL's
 * first ~16 MB, plenty to classify by. The only complication is CLIENT_QUERY_ATTRIBUTES: with it
 * a COM_QUERY carries a block of typed, binary-encoded attributes before the SQL, which has to be
 * skipped value by value.
 */

import { Capability, ColumnType, Command } from './constants';
import { PayloadCursor } from './decode';
import { MalformedPacketError } from './errors';

const cursor = new PayloadCursor();

/** Command byte of a client packet, or -1 for an empty payload. */
export function commandOf(buf: Buffer, start: number, length: number): number {
  return length > 0 ? buf[start] : -1;
}

/**
 * Offset in `buf` where the SQL text of a COM_QUERY begins. Without CLIENT_QUERY_ATTRIBUTES that
 * is just after the command byte. Throws MalformedPacketError if the attribute block does not fit
 * inside the given bytes (which, for a first frame, means attributes of 16 MiB: refuse those).
 */
export function queryTextOffset(buf: Buffer, start: number, length: number, capabilities: number): number {
  if (length < 1 || buf[start] !== Command.COM_QUERY) throw new MalformedPacketError('not a COM_QUERY');
  if ((capabilities & Capability.CLIENT_QUERY_ATTRIBUTES) === 0) return start + 1;
  const c = cursor.reset(buf, start + 1, start + length);
  const paramCount = c.lenencInt();
  c.lenencInt(); // parameter_set_count, always 1
  if (paramCount === 0) return c.pos;
  const nullBitmap = c.pos;
  c.skip((paramCount + 7) >> 3);
  if (c.u8() !== 1) {
    // new_params_bind_flag 0 would mean "types as last time", which COM_QUERY has no notion of.
    throw new MalformedPacketError('COM_QUERY attributes without types');
  }
  const types = new Array<number>(paramCount);
  for (let i = 0; i < paramCount; i++) {
    types[i] = c.u8();
    c.skip(1); // unsigned flag
    c.lenencBytes(); // attribute name
  }
  for (let i = 0; i < paramCount; i++) {
    const isNull = (buf[nullBitmap + (i >> 3)] & (1 << (i & 7))) !== 0;
    if (!isNull) skipBinaryValue(c, types[i]);
  }
  return c.pos;
}

/** The SQL text of a COM_QUERY (decoded as UTF-8), at most `maxBytes` of it. */
export function queryText(buf: Buffer, start: number, length: number, capabilities: number, maxBytes = Infinity): string {
  const from = queryTextOffset(buf, start, length, capabilities);
  return buf.toString('utf8', from, Math.min(start + length, from + maxBytes));
}

/** Statement id of COM_STMT_EXECUTE / CLOSE / RESET / SEND_LONG_DATA / FETCH. */
export function statementIdOf(buf: Buffer, start: number, length: number): number {
  if (length < 5) throw new MalformedPacketError('statement command shorter than 5 bytes');
  return buf.readUInt32LE(start + 1);
}

/** COM_STMT_EXECUTE flags byte (CursorType bits). */
export function executeFlagsOf(buf: Buffer, start: number, length: number): number {
  if (length < 6 || buf[start] !== Command.COM_STMT_EXECUTE) throw new MalformedPacketError('not a COM_STMT_EXECUTE');
  return buf[start + 5];
}

/** Schema named by COM_INIT_DB. */
export function initDbSchemaOf(buf: Buffer, start: number, length: number): string {
  if (length < 1 || buf[start] !== Command.COM_INIT_DB) throw new MalformedPacketError('not a COM_INIT_DB');
  return buf.toString('utf8', start + 1, start + length);
}

/** Skips one value in the binary protocol's encoding for `type`. */
function skipBinaryValue(c: PayloadCursor, type: number): void {
  switch (type) {
    case ColumnType.MYSQL_TYPE_NULL:
      return;
    case ColumnType.MYSQL_TYPE_TINY:
      c.skip(1);
      return;
    case ColumnType.MYSQL_TYPE_SHORT:
    case ColumnType.MYSQL_TYPE_YEAR:
      c.skip(2);
      return;
    case ColumnType.MYSQL_TYPE_LONG:
    case ColumnType.MYSQL_TYPE_INT24:
    case ColumnType.MYSQL_TYPE_FLOAT:
      c.skip(4);
      return;
    case ColumnType.MYSQL_TYPE_LONGLONG:
    case ColumnType.MYSQL_TYPE_DOUBLE:
      c.skip(8);
      return;
    case ColumnType.MYSQL_TYPE_DATE:
    case ColumnType.MYSQL_TYPE_DATETIME:
    case ColumnType.MYSQL_TYPE_TIMESTAMP:
    case ColumnType.MYSQL_TYPE_TIME:
    case ColumnType.MYSQL_TYPE_NEWDATE:
    case ColumnType.MYSQL_TYPE_TIMESTAMP2:
    case ColumnType.MYSQL_TYPE_DATETIME2:
    case ColumnType.MYSQL_TYPE_TIME2:
      // Temporal values: one length byte (0, 4, 7, 8, 11 or 12), then that many bytes.
      c.skip(c.u8());
      return;
    default:
      // Strings, decimals, blobs, JSON, BIT, ENUM, SET, GEOMETRY: length-encoded.
      c.lenencBytes();
  }
}
