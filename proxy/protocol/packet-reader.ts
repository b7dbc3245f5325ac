/**
 * Framing of one direction of one connection: socket chunks go in with `push`, complete packets
 * come out as views. Nothing here does I/O, allocates per packet, or creates closures; the
 * proxy's per-connection loop is `reader.push(chunk)` then `while ((v = reader.next…()) !== null)`.
 *
 * Two ways to read, not to be mixed inside one logical packet:
 * - `nextFrameViewUntilNextRead` yields every wire frame (header + up to 0xFFFFFF payload bytes)
 *   as it completes. This is the forwarding path: a 100 MiB packet passes through frame by frame
 *   and is never held whole. `startsPacket` marks the frame whose first bytes classify the
 *   packet (command byte, query keywords, OK/ERR/EOF), `endsPacket` the frame that ends it.
 * - `nextPacketViewUntilNextRead` yields one logical packet, reassembling >= 16 MiB packets from
 *   their frames (the only case that copies). For packets the proxy must read whole
 *   (handshake, auth) or when it prefers to see only whole packets.
 * - `nextRunViewUntilNextRead` yields, between packets, a run of complete small packets the
 *   owner need not decode one by one (result-set rows) as one view, to be forwarded in one step.
 *
 * Views: every method returns the same `PacketView` object, refilled on every call, pointing into
 * the reader's storage or into the chunk last pushed. A view and every Buffer taken from it are
 * valid only until the next `push` or `next…` call; copy what must live longer.
 *
 * Storage: while the reader holds no partial frame, a pushed chunk is read in place (borrowed,
 * not copied), so a chunk of whole packets costs no copy at all. Only the tail of a partial frame
 * moves into the reader's own buffer, which grows by doubling (or straight to the frame's
 * declared size), compacts by moving unread bytes to the front, and is dropped once drained if a
 * huge packet had made it bigger than `retainCapacity`. Borrowing assumes the caller does not
 * reuse a chunk after pushing it (true of 'data' events); with a shared read buffer (`onread`),
 * call `keepUnread` before the buffer is reused, or set `copyChunks`.
 *
 * Checks, done as soon as a frame header is complete and before its body is buffered: the
 * logical packet must not exceed `maxPacketSize` (PacketTooLargeError), and each frame's
 * sequence id must be the expected one (PacketOutOfOrderError). The owner says what to expect at
 * each exchange boundary with `resetSequence` (0 before a client command, 1 before the reply to
 * a command it sent); within an exchange the id simply increments. Errors are sticky: once a
 * reader has thrown it throws the same error on every later call, because the stream position
 * is lost and the connection must be closed.
 */

import { Buffer } from 'node:buffer';
import { DEFAULT_MAX_PACKET_SIZE, MAX_FRAME_PAYLOAD, PACKET_HEADER_LENGTH } from './constants';
import { PacketOutOfOrderError, PacketTooLargeError, ProtocolError } from './errors';

const EMPTY = Buffer.alloc(0);

export interface PacketReaderOptions {
  /** Largest logical packet payload accepted. Default 64 MiB, MySQL's max_allowed_packet. */
  maxPacketSize?: number;
  /** Verify sequence ids. Default true. */
  checkSequence?: boolean;
  /** Size of the reader's own buffer when first needed. Default 16 KiB. */
  initialCapacity?: number;
  /** Own storage above this size is released once drained. Default 1 MiB. */
  retainCapacity?: number;
  /** Copy every pushed chunk instead of reading it in place. Default false. */
  copyChunks?: boolean;
}

/**
 * One frame or one logical packet, as positions in `buffer` plus lazily created Buffer views.
 * Reused by its reader: valid only until the reader's next `push` or `next…` call.
 */
export class PacketView {
  /** Raw wire bytes: frame header(s) and payload(s), in [frameStart, frameEnd). */
  buffer: Buffer = EMPTY;
  frameStart = 0;
  frameEnd = 0;
  /**
   * Payload bytes in [payloadStart, payloadStart + payloadLength). Same as `buffer` except for a
   * reassembled multi-frame packet, whose payload is a fresh copy.
   */
  payloadBuffer: Buffer = EMPTY;
  payloadStart = 0;
  payloadLength = 0;
  /** First payload byte, or -1 for an empty payload; saves a bounds check on the hot path. */
  firstByte = -1;
  /** Sequence id of the (first) frame. */
  sequenceId = 0;
  /** Sequence id of the last frame; the peer's next packet in this exchange carries this + 1. */
  lastSequenceId = 0;
  /** This frame begins a logical packet (always true for logical packets). */
  startsPacket = true;
  /** This frame ends a logical packet (always true for logical packets). */
  endsPacket = true;
  /** Frames this view spans: 1 for a frame, 1+ for a logical packet or a run of packets. */
  frameCount = 1;

  private payloadCache: Buffer | null = null;
  private frameCache: Buffer | null = null;

  /** The payload as a Buffer view (created on first access; no copy). */
  get payload(): Buffer {
    if (this.payloadCache === null) {
      this.payloadCache = this.payloadBuffer.subarray(this.payloadStart, this.payloadStart + this.payloadLength);
    }
    return this.payloadCache;
  }

  /** The raw bytes to forward untouched: header(s) and payload(s). */
  get frame(): Buffer {
    if (this.frameCache === null) this.frameCache = this.buffer.subarray(this.frameStart, this.frameEnd);
    return this.frameCache;
  }

  /** @internal refill for the next packet; drops cached views. */
  set(
    buffer: Buffer,
    frameStart: number,
    frameEnd: number,
    payloadBuffer: Buffer,
    payloadStart: number,
    payloadLength: number,
    sequenceId: number,
    lastSequenceId: number,
    startsPacket: boolean,
    endsPacket: boolean,
    frameCount: number,
  ): this {
    this.buffer = buffer;
    this.frameStart = frameStart;
    this.frameEnd = frameEnd;
    this.payloadBuffer = payloadBuffer;
    this.payloadStart = payloadStart;
    this.payloadLength = payloadLength;
    this.firstByte = payloadLength > 0 ? payloadBuffer[payloadStart] : -1;
    this.sequenceId = sequenceId;
    this.lastSequenceId = lastSequenceId;
    this.startsPacket = startsPacket;
    this.endsPacket = endsPacket;
    this.frameCount = frameCount;
    this.payloadCache = null;
    this.frameCache = null;
    return this;
  }
}

export class PacketReader {
  readonly maxPacketSize: number;
  private readonly checkSequence: boolean;
  private readonly initialCapacity: number;
  private readonly retainCapacity: number;
  private readonly copyChunks: boolean;

  /** Bytes being read: `owned`, or a borrowed chunk. Unread bytes are [start, end). */
  private buf: Buffer = EMPTY;
  private start = 0;
  private end = 0;
  /** The reader's own growable storage; EMPTY until a partial frame first needs it. */
  private owned: Buffer = EMPTY;

  private expectedSeq = 0;
  /** Frame reading is inside a multi-frame logical packet. */
  private midPacket = false;
  /** Payload bytes of the current logical packet already returned frame by frame. */
  private packetBytesSoFar = 0;
  private failure: ProtocolError | null = null;
  private readonly view = new PacketView();

  constructor(options: PacketReaderOptions = {}) {
    this.maxPacketSize = options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE;
    this.checkSequence = options.checkSequence ?? true;
    this.initialCapacity = Math.max(options.initialCapacity ?? 16 * 1024, 64);
    this.retainCapacity = options.retainCapacity ?? 1024 * 1024;
    this.copyChunks = options.copyChunks ?? false;
  }

  /** Unread bytes held, complete or not (for backpressure decisions). */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /** The sequence id the next frame must carry; also the id of the proxy's reply to it. */
  get nextSequenceId(): number {
    return this.expectedSeq;
  }

  /** Inside a multi-frame packet read frame by frame: the next frame continues it. */
  get isMidPacket(): boolean {
    return this.midPacket;
  }

  /** The error this reader failed with, if any (it is rethrown by every read). */
  get error(): ProtocolError | null {
    return this.failure;
  }

  /** Sets the sequence id the next frame must carry (an exchange boundary). */
  resetSequence(next = 0): void {
    this.expectedSeq = next & 0xff;
  }

  /** Takes the first `incoming` bytes of `chunk` (all of it by default; see Storage above). */
  push(chunk: Buffer, incoming = chunk.length): void {
    if (incoming === 0) return;
    const pending = this.end - this.start;
    if (pending === 0) {
      if (this.owned.length > this.retainCapacity) this.owned = EMPTY;
      this.start = 0;
      this.end = 0;
      if (!this.copyChunks) {
        this.buf = chunk;
        this.end = incoming;
        return;
      }
      this.buf = this.owned;
    }
    if (this.buf === this.owned && this.end + incoming <= this.owned.length) {
      chunk.copy(this.owned, this.end, 0, incoming);
      this.end += incoming;
      return;
    }
    this.ownUnread(incoming);
    chunk.copy(this.owned, this.end, 0, incoming);
    this.end += incoming;
  }

  /**
   * Moves unread bytes still in a borrowed chunk into the reader's own storage, for an owner
   * about to let that chunk be overwritten (a shared `onread` buffer); cheaper than `copyChunks`
   * when most chunks are read whole, since only a partial tail is copied.
   */
  keepUnread(): void {
    if (this.end === this.start || this.buf === this.owned) return;
    this.ownUnread(0);
  }

  /** Moves the unread bytes to the front of the reader's own storage, with room for `extra` more. */
  private ownUnread(extra: number): void {
    const pending = this.end - this.start;
    const needed = pending + extra;
    if (needed <= this.owned.length) {
      // Compact: the unread tail moves to the front (copyWithin handles the overlap).
      if (this.buf === this.owned) this.owned.copyWithin(0, this.start, this.end);
      else this.buf.copy(this.owned, 0, this.start, this.end);
    } else {
      const grown = Buffer.allocUnsafe(this.growTo(needed));
      this.buf.copy(grown, 0, this.start, this.end);
      this.owned = grown;
    }
    this.buf = this.owned;
    this.start = 0;
    this.end = pending;
  }

  /**
   * The next complete wire frame, or null until more bytes arrive. Frames of a >= 16 MiB packet
   * come one by one; see the file doc for `startsPacket`/`endsPacket` and view lifetime.
   */
  nextFrameViewUntilNextRead(): PacketView | null {
    if (this.failure !== null) throw this.failure;
    const s = this.start;
    if (this.end - s < PACKET_HEADER_LENGTH) return null;
    const b = this.buf;
    const length = b[s] | (b[s + 1] << 8) | (b[s + 2] << 16);
    const seq = b[s + 3];
    this.checkHeader(this.expectedSeq, seq, this.packetBytesSoFar + length);
    const frameEnd = s + PACKET_HEADER_LENGTH + length;
    if (frameEnd > this.end) return null;

    this.start = frameEnd;
    this.expectedSeq = (seq + 1) & 0xff;
    const starts = !this.midPacket;
    const ends = length < MAX_FRAME_PAYLOAD;
    this.midPacket = !ends;
    this.packetBytesSoFar = ends ? 0 : this.packetBytesSoFar + length;
    return this.view.set(b, s, frameEnd, b, s + PACKET_HEADER_LENGTH, length, seq, seq, starts, ends, 1);
  }

  /**
   * A run of complete single-frame packets (each under 16 MiB, not empty) whose first payload
   * byte is below `firstByteLimit`, as one view spanning all of them, or null when the next
   * packet is not such a packet or is not complete yet. For forwarding result-set rows in one
   * step when only the packet that ends them needs decoding: with a limit of 0xFE, rows (text
   * or binary) qualify and the EOF/OK/ERR that ends them does not. The view's `frameCount` says
   * how many packets it spans, `sequenceId`/`lastSequenceId` are the first's and the last's, and
   * its payload fields describe the first packet. A header that fails the checks (size, sequence
   * id) ends the run without throwing; the next `nextFrameViewUntilNextRead` reports it.
   * Same view lifetime as the other reads; not to be called inside a multi-frame packet.
   */
  nextRunViewUntilNextRead(firstByteLimit: number): PacketView | null {
    if (this.failure !== null || this.midPacket) return null;
    const b = this.buf;
    const s = this.start;
    const end = this.end;
    const limit = Math.min(this.maxPacketSize, MAX_FRAME_PAYLOAD - 1);
    let pos = s;
    let seq = this.expectedSeq;
    let frames = 0;
    while (end - pos >= PACKET_HEADER_LENGTH) {
      const length = b[pos] | (b[pos + 1] << 8) | (b[pos + 2] << 16);
      if (length === 0 || length > limit || (this.checkSequence && b[pos + 3] !== seq)) break;
      const next = pos + PACKET_HEADER_LENGTH + length;
      if (next > end || b[pos + PACKET_HEADER_LENGTH] >= firstByteLimit) break;
      seq = (b[pos + 3] + 1) & 0xff;
      pos = next;
      frames++;
    }
    if (frames === 0) return null;
    this.start = pos;
    this.expectedSeq = seq;
    const firstLength = b[s] | (b[s + 1] << 8) | (b[s + 2] << 16);
    return this.view.set(b, s, pos, b, s + PACKET_HEADER_LENGTH, firstLength, b[s + 3], (seq + 255) & 0xff, true, true, frames);
  }

  /**
   * The next complete logical packet, or null until all of its frames have arrived. Only a
   * multi-frame packet is copied (into a fresh payload buffer; `frame` still spans the raw
   * frames). Throws if called while frame reading is inside a multi-frame packet.
   */
  nextPacketViewUntilNextRead(): PacketView | null {
    if (this.failure !== null) throw this.failure;
    if (this.midPacket) throw new Error('nextPacketViewUntilNextRead called inside a packet being read by frames');
    const b = this.buf;
    const s = this.start;
    let pos = s;
    let total = 0;
    let seq = this.expectedSeq;
    let frames = 0;
    let length: number;
    do {
      if (this.end - pos < PACKET_HEADER_LENGTH) return null;
      length = b[pos] | (b[pos + 1] << 8) | (b[pos + 2] << 16);
      this.checkHeader(seq, b[pos + 3], total + length);
      seq = b[pos + 3];
      if (pos + PACKET_HEADER_LENGTH + length > this.end) return null;
      pos += PACKET_HEADER_LENGTH + length;
      total += length;
      frames++;
      seq = (seq + 1) & 0xff;
    } while (length === MAX_FRAME_PAYLOAD);

    this.start = pos;
    this.expectedSeq = seq;
    const firstSeq = b[s + 3];
    const lastSeq = (seq + 255) & 0xff;
    if (frames === 1) {
      return this.view.set(b, s, pos, b, s + PACKET_HEADER_LENGTH, total, firstSeq, lastSeq, true, true, 1);
    }
    const payload = Buffer.allocUnsafe(total);
    let src = s;
    let dst = 0;
    for (let i = 0; i < frames; i++) {
      const n = b[src] | (b[src + 1] << 8) | (b[src + 2] << 16);
      b.copy(payload, dst, src + PACKET_HEADER_LENGTH, src + PACKET_HEADER_LENGTH + n);
      dst += n;
      src += PACKET_HEADER_LENGTH + n;
    }
    return this.view.set(b, s, pos, payload, 0, total, firstSeq, lastSeq, true, true, frames);
  }

  private checkHeader(expectedSeq: number, seq: number, packetLength: number): void {
    if (packetLength > this.maxPacketSize) {
      throw (this.failure = new PacketTooLargeError(packetLength, this.maxPacketSize));
    }
    if (this.checkSequence && seq !== expectedSeq) {
      throw (this.failure = new PacketOutOfOrderError(expectedSeq, seq));
    }
  }

  /**
   * New capacity for `needed` bytes: at least double the old one, and when a frame header is
   * already buffered, its whole frame, so a big frame arriving in small chunks is copied once
   * rather than once per doubling. The declared size counts only if within the packet limit;
   * an oversized header is about to fail its check anyway.
   */
  private growTo(needed: number): number {
    let capacity = Math.max(needed, this.owned.length * 2, this.initialCapacity);
    if (this.end - this.start >= PACKET_HEADER_LENGTH) {
      const b = this.buf;
      const s = this.start;
      const length = b[s] | (b[s + 1] << 8) | (b[s + 2] << 16);
      const frame = PACKET_HEADER_LENGTH + length;
      if (length <= this.maxPacketSize && frame > capacity) capacity = frame;
    }
    return capacity;
  }
}
