/**
 * Writing the protocol's primitive types: fixed-width little-endian integers, length-encoded
 * integers and strings, NUL-terminated strings. `PayloadWriter` appends them to one growable
 * buffer that keeps four bytes free in front, so a payload under 16 MiB becomes a frame by
 * filling in its header in place (`toFrame`) with no copy.
 *
 * The writer is for packets the proxy builds itself (handshakes, OK/ERR, replayed commands),
 * not for forwarded traffic, which is passed through as the reader's raw bytes. Strings are
 * written as UTF-8; the proxy negotiates a utf8mb4 collation so that is what peers expect.
 */

import { Buffer } from 'node:buffer';
import { MAX_FRAME_PAYLOAD, PACKET_HEADER_LENGTH } from './constants';

const TWO_POW_32 = 0x1_0000_0000;

/** Bytes a length-encoded integer takes for `value` (1, 3, 4 or 9). */
export function lenencIntLength(value: number | bigint): number {
  if (value < 0xfb) return 1;
  if (value <= 0xffff) return 3;
  if (value <= 0xffffff) return 4;
  return 9;
}

/**
 * Writes `value` as a length-encoded integer at `offset`; returns the offset after it.
 * Numbers must be safe integers; pass a bigint for values beyond 2^53.
 */
export function writeLenencInt(buf: Buffer, offset: number, value: number | bigint): number {
  if (value < 0) throw new RangeError(`length-encoded integer must not be negative: ${value}`);
  if (value < 0xfb) {
    buf[offset] = Number(value);
    return offset + 1;
  }
  if (value <= 0xffff) {
    buf[offset] = 0xfc;
    buf.writeUInt16LE(Number(value), offset + 1);
    return offset + 3;
  }
  if (value <= 0xffffff) {
    buf[offset] = 0xfd;
    buf.writeUIntLE(Number(value), offset + 1, 3);
    return offset + 4;
  }
  buf[offset] = 0xfe;
  if (typeof value === 'bigint') {
    buf.writeBigUInt64LE(value, offset + 1);
  } else {
    if (!Number.isSafeInteger(value)) throw new RangeError(`not a safe integer: ${value}; use a bigint`);
    buf.writeUInt32LE(value % TWO_POW_32, offset + 1);
    buf.writeUInt32LE(Math.floor(value / TWO_POW_32), offset + 5);
  }
  return offset + 9;
}

/** Encodes one length-encoded integer on its own (tests, one-off packets). */
export function encodeLenencInt(value: number | bigint): Buffer {
  const out = Buffer.allocUnsafe(lenencIntLength(value));
  writeLenencInt(out, 0, value);
  return out;
}

/**
 * Appends protocol primitives to one buffer that doubles when full. Reuse one writer by calling
 * `reset()`; the Buffers returned by `toPayload`/`toFrame` are views of the writer's storage,
 * valid until the next write after a `reset()`.
 */
export class PayloadWriter {
  private buf: Buffer;
  /** Next write offset; payload bytes live in [PACKET_HEADER_LENGTH, pos). */
  private pos = PACKET_HEADER_LENGTH;

  constructor(initialCapacity = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(initialCapacity, 16) + PACKET_HEADER_LENGTH);
  }

  /** Payload bytes written so far. */
  get length(): number {
    return this.pos - PACKET_HEADER_LENGTH;
  }

  reset(): this {
    this.pos = PACKET_HEADER_LENGTH;
    return this;
  }

  u8(value: number): this {
    this.ensure(1);
    this.buf[this.pos++] = value & 0xff;
    return this;
  }

  u16(value: number): this {
    this.ensure(2);
    this.pos = this.buf.writeUInt16LE(value & 0xffff, this.pos);
    return this;
  }

  u24(value: number): this {
    this.ensure(3);
    this.pos = this.buf.writeUIntLE(value & 0xffffff, this.pos, 3);
    return this;
  }

  /** Unsigned 32-bit; accepts the signed result of `a | b` on flags with bit 31 set. */
  u32(value: number): this {
    this.ensure(4);
    this.pos = this.buf.writeUInt32LE(value >>> 0, this.pos);
    return this;
  }

  u64(value: number | bigint): this {
    this.ensure(8);
    this.pos = this.buf.writeBigUInt64LE(BigInt(value), this.pos);
    return this;
  }

  lenencInt(value: number | bigint): this {
    this.ensure(9);
    this.pos = writeLenencInt(this.buf, this.pos, value);
    return this;
  }

  /** Length-encoded string: lenenc byte count, then the bytes. */
  lenencString(value: string | Uint8Array): this {
    if (typeof value === 'string') {
      const byteLength = Buffer.byteLength(value, 'utf8');
      this.lenencInt(byteLength);
      this.ensure(byteLength);
      this.pos += this.buf.write(value, this.pos, byteLength, 'utf8');
      return this;
    }
    this.lenencInt(value.length);
    return this.bytes(value);
  }

  /**
   * NUL-terminated string. The protocol cannot carry a NUL inside one, so reject it here rather
   * than let the peer split the field somewhere else.
   */
  nulString(value: string | Uint8Array): this {
    if (typeof value === 'string') {
      if (value.includes('\0')) throw new RangeError('NUL byte inside a NUL-terminated string');
      const byteLength = Buffer.byteLength(value, 'utf8');
      this.ensure(byteLength + 1);
      this.pos += this.buf.write(value, this.pos, byteLength, 'utf8');
    } else {
      if (value.includes(0)) throw new RangeError('NUL byte inside a NUL-terminated string');
      this.bytes(value);
      this.ensure(1);
    }
    this.buf[this.pos++] = 0;
    return this;
  }

  /** Raw bytes with no length prefix (string<EOF>, string<fix>). */
  bytes(value: Uint8Array): this {
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  /** Raw UTF-8 text with no length prefix. */
  text(value: string): this {
    const byteLength = Buffer.byteLength(value, 'utf8');
    this.ensure(byteLength);
    this.pos += this.buf.write(value, this.pos, byteLength, 'utf8');
    return this;
  }

  zeros(count: number): this {
    this.ensure(count);
    this.buf.fill(0, this.pos, this.pos + count);
    this.pos += count;
    return this;
  }

  /** The payload as a view of the writer's storage (see class doc for its lifetime). */
  toPayload(): Buffer {
    return this.buf.subarray(PACKET_HEADER_LENGTH, this.pos);
  }

  /** A copy of the payload that outlives the writer. */
  toPayloadCopy(): Buffer {
    return Buffer.from(this.toPayload());
  }

  /**
   * The payload framed with `sequenceId`. Under 16 MiB the header is written into the reserved
   * bytes and the result is a view of the writer's storage; larger payloads are split into a new
   * buffer by `frame`, which needs the header-free payload.
   */
  toFrame(sequenceId: number): Buffer {
    const length = this.length;
    if (length >= MAX_FRAME_PAYLOAD) return frameSplit(sequenceId, this.toPayload());
    this.buf.writeUIntLE(length, 0, 3);
    this.buf[3] = sequenceId & 0xff;
    return this.buf.subarray(0, this.pos);
  }

  private ensure(extra: number): void {
    const needed = this.pos + extra;
    if (needed <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/**
 * Splits a payload of 16 MiB or more into frames of 0xFFFFFF bytes plus a final shorter one,
 * which is empty when the length is an exact multiple: a full-size frame always promises a
 * continuation, so the peer needs that empty frame to know the packet ended.
 */
export function frameSplit(sequenceId: number, payload: Uint8Array): Buffer {
  const frames = Math.floor(payload.length / MAX_FRAME_PAYLOAD) + 1;
  const out = Buffer.allocUnsafe(payload.length + frames * PACKET_HEADER_LENGTH);
  let src = 0;
  let dst = 0;
  let seq = sequenceId & 0xff;
  for (let i = 0; i < frames; i++) {
    const chunk = Math.min(MAX_FRAME_PAYLOAD, payload.length - src);
    out.writeUIntLE(chunk, dst, 3);
    out[dst + 3] = seq;
    out.set(payload.subarray(src, src + chunk), dst + PACKET_HEADER_LENGTH);
    dst += PACKET_HEADER_LENGTH + chunk;
    src += chunk;
    seq = (seq + 1) & 0xff;
  }
  return out;
}
