/**
 * The smallest MySQL client that can log in and run text queries, for benchmarks that open tens
 * of thousands of connections from one process (a driver's per-connection state would measure the
 * driver). mysql_native_password only; one command at a time; responses are read with the proxy's
 * own ResponseTracker and thrown away except for the ERR number.
 */

import { connect as netConnect, type Socket } from 'node:net';
import { Buffer } from 'node:buffer';
import {
  buildHandshakeResponse41,
  Capability,
  Command,
  PacketReader,
  parseErr,
  parseHandshakeV10,
  ResponseStep,
  ResponseTracker,
  scrambleNativePassword,
} from '../proxy/protocol';

const CAPABILITIES = (Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH | Capability.CLIENT_CONNECT_WITH_DB | Capability.CLIENT_DEPRECATE_EOF | Capability.CLIENT_MULTI_RESULTS | Capability.CLIENT_TRANSACTIONS) >>> 0;

export interface ThinLogin {
  host: string;
  port: number;
  /** Bind the client end to this port (the ephemeral range holds ~28k); 0: any. */
  localPort: number;
  user: string;
  password: string;
  database: string;
  timeoutMs: number;
}

export class ThinClient {
  private readonly reader = new PacketReader({ checkSequence: false, maxPacketSize: 1 << 26 });
  private readonly tracker = new ResponseTracker(CAPABILITIES);
  private phase: 'greeting' | 'login' | 'idle' | 'query' = 'greeting';
  private settle: ((errno: number) => void) | null = null;
  private fail: ((error: Error) => void) | null = null;
  private login: ThinLogin | null = null;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.fail?.(new Error('connection closed'));
    });
    socket.on('error', () => undefined);
  }

  /** Connects and logs in; rejects on any failure within `timeoutMs`. */
  static open(login: ThinLogin): Promise<ThinClient> {
    const socket = netConnect({ host: login.host, port: login.port, ...(login.localPort > 0 ? { localAddress: '127.0.0.1', localPort: login.localPort } : {}) });
    socket.setNoDelay(true);
    const client = new ThinClient(socket);
    client.login = login;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no login within ${login.timeoutMs} ms`));
      }, login.timeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      client.fail = (error) => {
        clearTimeout(timer);
        reject(error);
      };
      client.settle = (errno) => {
        clearTimeout(timer);
        client.fail = null;
        client.settle = null;
        if (errno === 0) resolve(client);
        else reject(new Error(`login refused with ${errno}`));
      };
    });
  }

  /** Runs one text query; resolves with its ERR number (0: success). */
  query(sql: string): Promise<number> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    if (this.phase !== 'idle') return Promise.reject(new Error('a query is already running'));
    const body = Buffer.from(sql, 'utf8');
    const packet = Buffer.allocUnsafe(5 + body.length);
    packet.writeUIntLE(body.length + 1, 0, 3);
    packet[3] = 0;
    packet[4] = Command.COM_QUERY;
    body.copy(packet, 5);
    this.phase = 'query';
    this.tracker.begin(Command.COM_QUERY);
    this.reader.resetSequence(1);
    return new Promise((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
      this.socket.write(packet);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    for (;;) {
      const view = this.reader.nextPacketViewUntilNextRead();
      if (view === null) return;
      if (this.phase === 'greeting') {
        const login = this.login as ThinLogin;
        const greeting = parseHandshakeV10(Buffer.from(view.payload));
        const response = buildHandshakeResponse41({ capabilities: CAPABILITIES, charset: 45, username: login.user, authResponse: scrambleNativePassword(login.password, greeting.scramble), database: login.database, authPluginName: 'mysql_native_password', maxPacketSize: 1 << 24 });
        const out = Buffer.allocUnsafe(4 + response.length);
        out.writeUIntLE(response.length, 0, 3);
        out[3] = 1;
        response.copy(out, 4);
        this.phase = 'login';
        this.login = null;
        this.socket.write(out);
        continue;
      }
      if (this.phase === 'login') {
        const first = view.firstByte;
        this.phase = 'idle';
        const done = this.settle;
        this.settle = null;
        done?.(first === 0 ? 0 : first === 0xff ? parseErr(Buffer.from(view.payload)).errno : -1);
        continue;
      }
      if (this.phase !== 'query') continue;
      const step = this.tracker.feed(view);
      if (step === ResponseStep.More) continue;
      this.phase = 'idle';
      const done = this.settle;
      this.settle = null;
      this.fail = null;
      done?.(this.tracker.errno);
    }
  }
}
