/**
 * A scripted MySQL server on 127.0.0.1, to stand where Dolt stands when a test must control
 * exactly what a backend does — answer, fail, hang, or drop the connection after a given
 * statement — which a real Dolt cannot be made to do on cue. It speaks just enough of the
 * protocol for the proxy's backend side: the greeting (mysql_native_password, the capabilities
 * the proxy requires), any login accepted, then COM_QUERY answered by `script` (OK, ERR, a text
 * result set, 'close' or 'hang'), COM_PING / COM_INIT_DB / COM_RESET_CONNECTION / COM_SET_OPTION
 * answered OK, COM_QUIT closing. Transactions are tracked from the SQL (BEGIN / START
 * TRANSACTION / COMMIT / ROLLBACK) for the status flags, as the proxy reads them from there.
 * `KILL QUERY <id>` ends that connection's hanging statement with ERR 1317, as Dolt does.
 * `{ askFile }` answers with a LOCAL INFILE request naming any file, as a hostile server could.
 *
 * Every statement is logged with the connection id it arrived on, so a test can say which
 * backend ran what. Not for data: nothing is stored.
 */

import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import { buildHandshakeV10, Capability, Command, errFrame, frame as frameOf, okFrame, parseHandshakeResponse41, ServerStatus, textResultSetFrames } from '../../proxy/protocol';

export type FakeReply =
  | { ok: { affectedRows?: number } }
  | { err: { errno: number; sqlState: string; message: string } }
  | { rows: { columns: string[]; values: Array<Array<string | null>> } }
  /** Drop the connection without answering (a crash after the statement arrived). */
  | 'close'
  /** Never answer (until KILL QUERY or the connection goes). */
  | 'hang'
  /** Ask for this file (LOCAL INFILE request), take it up to its empty packet, answer OK (rows = lines); `closeAfter` bytes of it: drop the connection instead. */
  | { askFile: string; closeAfter?: number; closeAtEnd?: boolean };

/** The answer to one statement; undefined: the default (see `defaultReply`). */
export type FakeScript = (sql: string, conn: FakeConnection) => FakeReply | undefined;

export interface FakeConnection {
  readonly id: number;
  readonly inTransaction: boolean;
}

const CAPABILITIES =
  (Capability.CLIENT_LONG_PASSWORD |
    Capability.CLIENT_FOUND_ROWS |
    Capability.CLIENT_LONG_FLAG |
    Capability.CLIENT_CONNECT_WITH_DB |
    Capability.CLIENT_PROTOCOL_41 |
    Capability.CLIENT_TRANSACTIONS |
    Capability.CLIENT_SECURE_CONNECTION |
    Capability.CLIENT_MULTI_STATEMENTS |
    Capability.CLIENT_MULTI_RESULTS |
    Capability.CLIENT_PS_MULTI_RESULTS |
    Capability.CLIENT_PLUGIN_AUTH |
    Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
    Capability.CLIENT_SESSION_TRACK |
    Capability.CLIENT_DEPRECATE_EOF |
    Capability.CLIENT_QUERY_ATTRIBUTES) >>>
  0;

class Conn implements FakeConnection {
  inTransaction = false;
  capabilities = 0;
  loggedIn = false;
  buffered = Buffer.alloc(0);
  /** The sequence id to answer a hanging statement with, or -1. */
  hanging = -1;
  /** A file being received after a LOCAL INFILE request. */
  upload: { bytes: Buffer[]; closeAfter: number; closeAtEnd: boolean } | null = null;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
  ) {}

  status(): number {
    return ServerStatus.SERVER_STATUS_AUTOCOMMIT | (this.inTransaction ? ServerStatus.SERVER_STATUS_IN_TRANS : 0);
  }
}

export class FakeMysqlServer {
  private readonly server = net.createServer((socket) => this.accept(socket));
  private readonly conns = new Map<number, Conn>();
  private nextId = 100;
  /** Every statement, with the connection it came on. */
  readonly log: Array<{ conn: number; sql: string }> = [];
  /** Every file received after a LOCAL INFILE request, whole. */
  readonly files: Buffer[] = [];
  /** `SELECT @@global.read_only` answers this (the proxy checks a primary with it). */
  readOnly = false;
  port = 0;

  constructor(public script: FakeScript = () => undefined) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Every connection cut at once, as a crashed server's are. */
  dropAll(): void {
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
  }

  /** Statements seen, without the proxy's own (read-only probes, commit-message arming, KILL). */
  statements(): string[] {
    return this.log.map((e) => e.sql).filter((sql) => !/^(SELECT @@global\.read_only|SET SESSION dolt_transaction_commit_message|SELECT 1$|KILL QUERY)/i.test(sql));
  }

  private accept(socket: net.Socket): void {
    const conn = new Conn(this.nextId++, socket);
    this.conns.set(conn.id, conn);
    socket.on('error', () => undefined);
    socket.on('close', () => this.conns.delete(conn.id));
    const scramble = Buffer.alloc(20, 0x41);
    socket.write(
      frameOf(0, buildHandshakeV10({ serverVersion: '8.0.33-fake', connectionId: conn.id, scramble, capabilities: CAPABILITIES, charset: 255, statusFlags: ServerStatus.SERVER_STATUS_AUTOCOMMIT, authPluginName: 'mysql_native_password' })),
    );
    socket.on('data', (chunk: Buffer) => {
      conn.buffered = Buffer.concat([conn.buffered, chunk]);
      for (;;) {
        if (conn.buffered.length < 4) return;
        const length = conn.buffered.readUIntLE(0, 3);
        if (conn.buffered.length < 4 + length) return;
        const seq = conn.buffered[3] as number;
        const payload = conn.buffered.subarray(4, 4 + length);
        conn.buffered = conn.buffered.subarray(4 + length);
        this.onPacket(conn, seq, Buffer.from(payload));
        if (socket.destroyed) return;
      }
    });
  }

  private onPacket(conn: Conn, seq: number, payload: Buffer): void {
    const socket = conn.socket;
    if (!conn.loggedIn) {
      conn.capabilities = parseHandshakeResponse41(payload).capabilities & CAPABILITIES;
      conn.loggedIn = true;
      socket.write(okFrame(seq + 1, { statusFlags: conn.status() }, conn.capabilities));
      return;
    }
    if (conn.upload !== null) {
      const upload = conn.upload;
      if (payload.length > 0) {
        upload.bytes.push(payload);
        if (Buffer.concat(upload.bytes).length >= upload.closeAfter) socket.destroy();
        return;
      }
      conn.upload = null;
      if (upload.closeAtEnd) {
        socket.destroy();
        return;
      }
      const lines = Buffer.concat(upload.bytes).toString('utf8').split('\n').filter((l) => l !== '').length;
      this.files.push(Buffer.concat(upload.bytes));
      socket.write(okFrame(seq + 1, { affectedRows: lines, statusFlags: conn.status() }, conn.capabilities));
      return;
    }
    const command = payload[0];
    switch (command) {
      case Command.COM_QUIT:
        socket.end();
        return;
      case Command.COM_QUERY:
        this.onQuery(conn, seq, payload.subarray(1).toString('utf8'));
        return;
      case Command.COM_RESET_CONNECTION:
        conn.inTransaction = false;
        socket.write(okFrame(seq + 1, { statusFlags: conn.status() }, conn.capabilities));
        return;
      case Command.COM_PING:
      case Command.COM_INIT_DB:
      case Command.COM_SET_OPTION:
        socket.write(okFrame(seq + 1, { statusFlags: conn.status() }, conn.capabilities));
        return;
      default:
        socket.write(errFrame(seq + 1, 1047, '08S01', `fake server: command ${command} not supported`));
    }
  }

  private onQuery(conn: Conn, seq: number, sql: string): void {
    this.log.push({ conn: conn.id, sql });
    const kill = /^KILL QUERY (\d+)$/i.exec(sql);
    if (kill !== null) {
      const target = this.conns.get(Number(kill[1]));
      if (target !== undefined && target.hanging >= 0) {
        target.socket.write(errFrame(target.hanging, 1317, '70100', 'Query execution was interrupted'));
        target.hanging = -1;
      }
      conn.socket.write(okFrame(seq + 1, { statusFlags: conn.status() }, conn.capabilities));
      return;
    }
    const reply = this.script(sql, conn) ?? this.defaultReply(sql);
    if (reply === 'close') {
      conn.socket.destroy();
      return;
    }
    if (reply === 'hang') {
      conn.hanging = seq + 1;
      return;
    }
    if ('askFile' in reply) {
      conn.upload = { bytes: [], closeAfter: reply.closeAfter ?? Infinity, closeAtEnd: reply.closeAtEnd ?? false };
      conn.socket.write(frameOf(seq + 1, Buffer.concat([Buffer.from([0xfb]), Buffer.from(reply.askFile, 'utf8')])));
      return;
    }
    if ('err' in reply) {
      conn.socket.write(errFrame(seq + 1, reply.err.errno, reply.err.sqlState, reply.err.message));
      return;
    }
    // The transaction state follows the statement that ran (the proxy reads it from the status).
    if (/^\s*(BEGIN|START\s+TRANSACTION)/i.test(sql)) conn.inTransaction = true;
    else if (/^\s*(COMMIT|ROLLBACK)/i.test(sql)) conn.inTransaction = false;
    if ('ok' in reply) {
      conn.socket.write(okFrame(seq + 1, { affectedRows: reply.ok.affectedRows ?? 0, statusFlags: conn.status() }, conn.capabilities));
      return;
    }
    for (const f of textResultSetFrames(seq + 1, reply.rows.columns, reply.rows.values, conn.status(), conn.capabilities)) conn.socket.write(f);
  }

  /** `SELECT @@global.read_only` per `readOnly`; `SELECT <n>` answers n; other SELECTs one row; the rest OK. */
  private defaultReply(sql: string): FakeReply {
    if (/^SELECT @@global\.read_only$/i.test(sql)) return { rows: { columns: ['@@global.read_only'], values: [[this.readOnly ? '1' : '0']] } };
    const number = /^SELECT (\d+)/i.exec(sql);
    if (number !== null) return { rows: { columns: ['v'], values: [[number[1] as string]] } };
    if (/^\s*SELECT/i.test(sql)) return { rows: { columns: ['v'], values: [['1']] } };
    return { ok: { affectedRows: /^\s*(INSERT|UPDATE|DELETE)/i.test(sql) ? 1 : 0 } };
  }
}
