/**
 * Whole-packet reading and writing for the connection phase — the few packets of a handshake and
 * an auth exchange, on either side (the proxy greeting a client, or logging in to a backend).
 * Not the hot path: each packet is copied out and awaited as a promise, which is fine for a
 * handful of packets per connection and keeps the auth code a straight line.
 *
 * It does its own framing rather than using PacketReader because the bytes after an SSLRequest
 * belong to TLS: `detach()` hands back whatever arrived after the last packet so the caller can
 * unshift it into the socket before wrapping it in TLS (a client may send its ClientHello in the
 * same segment as the SSLRequest). Packets of the connection phase are small, so a declared
 * length over `maxPacketSize` (and any multi-frame packet) is refused as PacketTooLargeError.
 *
 * Sequence ids: the channel checks that every packet it reads carries the id after the last one
 * read or written, and numbers what it writes the same way, so callers never count.
 */

import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import {
  MAX_FRAME_PAYLOAD,
  PACKET_HEADER_LENGTH,
  PacketOutOfOrderError,
  PacketTooLargeError,
  frame,
} from '../protocol';

const EMPTY = Buffer.alloc(0);

export class ChannelClosedError extends Error {
  readonly code = 'CHANNEL_CLOSED';
  constructor(what: string) {
    super(`connection closed ${what}`);
  }
}

export interface AuthIO {
  /** The next packet's payload (a copy). */
  readPacket(): Promise<Buffer>;
  /** Writes one packet with the next sequence id. */
  writePacket(payload: Uint8Array): void;
  readonly isTls: boolean;
}

export class PacketChannel implements AuthIO {
  private pending: Buffer = EMPTY;
  private waiter: { resolve: (payload: Buffer) => void; reject: (error: Error) => void } | null = null;
  private failure: Error | null = null;
  private socket: Duplex | null = null;
  /** Sequence id of the next packet read or written. */
  private seq: number;
  isTls = false;
  /** Since when (performance.now()) a read has waited for the peer's next packet; null when none waits. */
  waitingSince: number | null = null;

  private readonly onData = (chunk: Buffer): void => {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.deliver();
  };
  private readonly onEnd = (): void => this.fail(new ChannelClosedError('during the handshake'));
  private readonly onError = (error: Error): void => this.fail(error);

  constructor(
    socket: Duplex,
    private readonly maxPacketSize: number,
    firstSequenceId = 0,
  ) {
    this.seq = firstSequenceId;
    this.attach(socket, EMPTY);
  }

  get nextSequenceId(): number {
    return this.seq;
  }

  /** Bytes read by the owner (a socket read through `onread` emits no 'data'); kept, not borrowed. */
  feed(chunk: Buffer): void {
    this.onData(Buffer.from(chunk));
  }

  /** Starts reading `socket` (again, after a TLS upgrade); `leftover` is read first. */
  attach(socket: Duplex, leftover: Buffer): void {
    this.socket = socket;
    this.pending = leftover;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stops reading; returns the bytes received after the last packet read. */
  detach(): Buffer {
    const s = this.socket;
    if (s !== null) {
      s.off('data', this.onData);
      s.off('end', this.onEnd);
      s.off('close', this.onEnd);
      s.off('error', this.onError);
    }
    this.socket = null;
    const rest = this.pending;
    this.pending = EMPTY;
    return rest;
  }

  readPacket(): Promise<Buffer> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.waiter !== null) return Promise.reject(new Error('PacketChannel.readPacket called twice'));
    return new Promise<Buffer>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.waitingSince = performance.now();
      this.deliver();
    });
  }

  writePacket(payload: Uint8Array): void {
    const s = this.socket;
    if (s === null) throw new Error('PacketChannel.writePacket after detach');
    s.write(frame(this.seq, payload));
    this.seq = (this.seq + 1) & 0xff;
  }

  /** Writes a pre-framed packet (an ERR from errFrameForError) with the next sequence id. */
  writeFrame(build: (sequenceId: number) => Buffer): void {
    const s = this.socket;
    if (s === null) throw new Error('PacketChannel.writeFrame after detach');
    s.write(build(this.seq));
    this.seq = (this.seq + 1) & 0xff;
  }

  private deliver(): void {
    const w = this.waiter;
    if (w === null || this.failure !== null) return;
    const p = this.pending;
    if (p.length < PACKET_HEADER_LENGTH) return;
    const length = p[0] | (p[1] << 8) | (p[2] << 16);
    try {
      if (length > this.maxPacketSize || length === MAX_FRAME_PAYLOAD) throw new PacketTooLargeError(length, this.maxPacketSize);
      if (p[3] !== this.seq) throw new PacketOutOfOrderError(this.seq, p[3]);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    const end = PACKET_HEADER_LENGTH + length;
    if (p.length < end) return;
    const payload = Buffer.from(p.subarray(PACKET_HEADER_LENGTH, end));
    this.pending = p.length === end ? EMPTY : p.subarray(end);
    this.seq = (this.seq + 1) & 0xff;
    this.waiter = null;
    this.waitingSince = null;
    w.resolve(payload);
  }

  private fail(error: Error): void {
    if (this.failure === null) this.failure = error;
    const w = this.waiter;
    this.waiter = null;
    this.waitingSince = null;
    w?.reject(this.failure);
  }
}
