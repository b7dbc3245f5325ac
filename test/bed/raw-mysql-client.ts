/**
 * A bare MySQL client over a socket, for what no driver will send: raw frames, wrong sequence ids,
 * commands a driver does not expose. Used against the proxy and against Dolt itself.
 */

import { connect as netConnect, type Socket } from 'node:net';
import {
  buildHandshakeResponse41,
  Capability,
  PacketReader,
  parseErr,
  parseHandshakeV10,
  scrambleNativePassword,
} from '../../proxy/protocol';
import { registerCleanup } from './cleanup';
import { eventually } from './eventually';

export class RawClient {
  private readonly reader = new PacketReader({ checkSequence: false, maxPacketSize: 1 << 30 });
  private readonly queue: Buffer[] = [];
  private waiter: (() => void) | null = null;
  closed = false;

  /** Chunks still to read slowly (pausing the socket after each), to build backpressure. */
  slowChunks = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (this.slowChunks > 0) {
        this.slowChunks--;
        socket.pause();
        setTimeout(() => socket.resume(), 5).unref();
      }
      this.reader.push(chunk);
      let v;
      while ((v = this.reader.nextPacketViewUntilNextRead()) !== null) this.queue.push(Buffer.from(v.payload));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** `localAddress`: a loopback address to connect from (127.0.0.0/8), for per-address limits. */
  static async connect(port: number, localAddress?: string): Promise<RawClient> {
    const socket = netConnect({ host: '127.0.0.1', port, localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    registerCleanup(() => {
      socket.destroy();
    });
    return new RawClient(socket);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next packet's payload, or null once the server closed the connection. */
  async next(withinMs = 5000): Promise<Buffer | null> {
    const deadline = Date.now() + withinMs;
    while (this.queue.length === 0 && !this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no packet from the server in time');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, left).unref();
      });
    }
    return this.queue.shift() ?? null;
  }

  send(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.from(bytes));
  }

  /** Sends a command (sequence 0). */
  command(command: number, body: Buffer | string = Buffer.alloc(0)): void {
    this.send(frame(0, Buffer.concat([Buffer.from([command]), Buffer.from(body)])));
  }

  /** Packets until one ends a response (OK/EOF-terminator 0xFE under 9 bytes... or ERR), inclusive. */
  async response(): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (;;) {
      const p = await this.next();
      if (p === null) throw new Error('connection closed mid-response');
      out.push(p);
      if (p[0] === 0xff || (out.length > 1 && p[0] === 0xfe && p.length < 0xffffff) || (out.length === 1 && p[0] === 0x00)) return out;
    }
  }

  /** Logs in with mysql_native_password (answering an AuthSwitch if the server asks). */
  async login(user: string, password: string, database = 'db'): Promise<void> {
    const greeting = parseHandshakeV10((await this.next()) as Buffer);
    const caps = (Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH | Capability.CLIENT_CONNECT_WITH_DB | Capability.CLIENT_DEPRECATE_EOF | Capability.CLIENT_MULTI_RESULTS | Capability.CLIENT_TRANSACTIONS) >>> 0;
    const response = buildHandshakeResponse41({ capabilities: caps, charset: 45, username: user, authResponse: scrambleNativePassword(password, greeting.scramble), database, authPluginName: 'mysql_native_password', maxPacketSize: 1 << 24 });
    this.send(frame(1, response));
    const reply = (await this.next()) as Buffer;
    if (reply[0] !== 0) throw new Error(`login failed: ${reply[0] === 0xff ? parseErr(reply).message : reply.toString('hex')}`);
  }

  async waitClosed(withinMs = 5000): Promise<void> {
    await eventually(() => this.closed, { within: withinMs, what: 'the server to close the connection' });
  }
}

export function frame(seq: number, payload: Buffer | number[]): Buffer {
  const p = Buffer.from(payload);
  const out = Buffer.alloc(4 + p.length);
  out.writeUIntLE(p.length, 0, 3);
  out[3] = seq;
  p.copy(out, 4);
  return out;
}
