/**
 * One fuzzer connection to the proxy: raw frames out, frames in through a PacketReader that
 * checks nothing (the proxy's framing is what is under test, so it is judged, not trusted), and
 * every wait bounded, so a proxy that stops answering shows up as a hang rather than a stuck run.
 */

import { Buffer } from 'node:buffer';
import { connect as netConnect, type Socket } from 'node:net';
import { PacketReader } from '../../proxy/protocol';

export interface Frame {
  sequenceId: number;
  payload: Buffer;
  /** The frame ends its logical packet (shorter than 16 MiB - 1). */
  endsPacket: boolean;
}

export class FuzzConnection {
  private readonly reader = new PacketReader({ checkSequence: false, maxPacketSize: Number.MAX_SAFE_INTEGER });
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | null = null;
  private protocolError: Error | null = null;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
        let v;
        while ((v = this.reader.nextFrameViewUntilNextRead()) !== null) this.frames.push({ sequenceId: v.sequenceId, payload: Buffer.from(v.payload), endsPacket: v.endsPacket });
      } catch (error) {
        this.protocolError = error as Error;
        socket.destroy();
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(host: string, port: number, timeoutMs: number): Promise<FuzzConnection> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no TCP connection to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new FuzzConnection(socket));
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Framing the proxy sent that no MySQL server would (a frame that does not parse). */
  get framingError(): Error | null {
    return this.protocolError;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next frame; null once the proxy closed the connection; 'timeout' after `withinMs`. */
  async next(withinMs: number): Promise<Frame | null | 'timeout'> {
    const deadline = performance.now() + withinMs;
    while (this.frames.length === 0 && !this.closed) {
      const left = deadline - performance.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames.shift() ?? null;
  }

  send(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
    this.closed = true;
  }
}

/** A wire frame around `payload` (split at 16 MiB - 1 as MySQL does). */
export function frameOf(seq: number, payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  let s = seq;
  let at = 0;
  for (;;) {
    const n = Math.min(0xffffff, payload.length - at);
    const header = Buffer.alloc(4);
    header.writeUIntLE(n, 0, 3);
    header[3] = s & 0xff;
    parts.push(header, payload.subarray(at, at + n));
    at += n;
    s++;
    if (n < 0xffffff) break;
  }
  return Buffer.concat(parts);
}
