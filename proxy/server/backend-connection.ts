/**
 * One connection from the proxy to one Dolt server: the client side of the MySQL handshake
 * (HandshakeResponse41 with the user's mapped backend credentials, mysql_native_password or
 * caching_sha2_password, optional TLS), then a byte pipe whose response frames are handed, one
 * reader view at a time, to whoever owns the connection right now (its `sink`).
 *
 * Hot path: one PacketReader per connection; each socket chunk is pushed and drained frame by
 * frame; the ResponseTracker is fed here, so the connection always knows whether it is idle and
 * what the last status flags were, whoever the sink is; the sink gets the view and the step and
 * forwards the raw frame. No closure or promise per packet. `beginBatch`/`endBatch` bracket each
 * chunk so the sink can write what it forwarded from the chunk once, not once per frame.
 *
 * Capabilities: the connection asks the backend for the packet-shaping capabilities the client
 * negotiated (CLIENT_DEPRECATE_EOF above all) and only for those, plus what its own login needs.
 * If the backend lacks one of them, packets could not be forwarded untouched, so the login fails
 * with a clear error instead of corrupting a stream later.
 *
 * Internal commands (`runCommand`): session replay (COM_INIT_DB, SET ...), lazy COM_STMT_PREPARE
 * and pool resets run through the same tracker with an internal sink that swallows the response
 * and resolves with its outcome. A connection whose stream leaves a known state — protocol error,
 * socket error, an internal command that failed at the protocol level — is destroyed, never
 * reused (pgcat's rule); `reusable` says whether it is clean right now.
 */

import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import * as tls from 'node:tls';
import {
  AuthPlugin,
  buildHandshakeResponse41,
  buildSslRequest,
  CachingSha2Status,
  Capability,
  Command,
  hasFlag,
  PacketReader,
  type PacketView,
  parseAuthSwitchRequest,
  parseErr,
  parseHandshakeV10,
  ResponseHeader,
  ResponseStep,
  ResponseTracker,
  scrambleCachingSha2Password,
  scrambleNativePassword,
  ServerStatus,
  cleartextPasswordPayload,
  comQueryFrame,
  PayloadCursor,
} from '../protocol';
import { BackendProtocolError, BackendUnavailableError } from './errors';
import { PacketChannel } from './packet-channel';
import { ReadRelay } from './shared-reads';

/** Capabilities that change the bytes or meaning of forwarded packets: both sides must agree. */
export const FORWARDED_CAPABILITIES: number =
  (Capability.CLIENT_LONG_PASSWORD |
    Capability.CLIENT_FOUND_ROWS |
    Capability.CLIENT_LONG_FLAG |
    Capability.CLIENT_NO_SCHEMA |
    Capability.CLIENT_ODBC |
    Capability.CLIENT_IGNORE_SPACE |
    Capability.CLIENT_INTERACTIVE |
    Capability.CLIENT_TRANSACTIONS |
    Capability.CLIENT_MULTI_STATEMENTS |
    Capability.CLIENT_MULTI_RESULTS |
    Capability.CLIENT_PS_MULTI_RESULTS |
    Capability.CLIENT_SESSION_TRACK |
    Capability.CLIENT_DEPRECATE_EOF |
    Capability.CLIENT_QUERY_ATTRIBUTES) >>>
  0;

/** Of those, the ones whose absence on the backend would corrupt forwarding. */
export const REQUIRED_ON_BACKEND: number =
  (Capability.CLIENT_MULTI_STATEMENTS |
    Capability.CLIENT_MULTI_RESULTS |
    Capability.CLIENT_PS_MULTI_RESULTS |
    Capability.CLIENT_SESSION_TRACK |
    Capability.CLIENT_DEPRECATE_EOF |
    Capability.CLIENT_QUERY_ATTRIBUTES) >>>
  0;

/** What the proxy's own login needs, when the backend offers it. */
const LOGIN_CAPABILITIES: number =
  (Capability.CLIENT_PROTOCOL_41 |
    Capability.CLIENT_SECURE_CONNECTION |
    Capability.CLIENT_PLUGIN_AUTH |
    Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
    Capability.CLIENT_CONNECT_ATTRS) >>>
  0;

export interface BackendTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface BackendLogin {
  user: string;
  password: string;
}

export interface BackendConnectOptions {
  target: BackendTarget;
  login: BackendLogin;
  /** The client's negotiated capabilities; the forwarded part is requested from the backend. */
  clientCapabilities: number;
  charset: number;
  database: string | null;
  connectTimeoutMs: number;
  maxPacketSize: number;
  tls: tls.ConnectionOptions | null;
  connectAttributes?: ReadonlyMap<string, string>;
}

/** Whoever owns the connection right now. */
export interface BackendSink {
  beginBatch(conn: BackendConnection): void;
  /**
   * One response frame, or a run of whole row packets (`frameCount` > 1, step More), and the
   * tracker's verdict on it; the view dies when this returns.
   */
  onBackendFrame(conn: BackendConnection, view: PacketView, step: ResponseStep): void;
  endBatch(conn: BackendConnection): void;
  /** The connection is gone (error null: closed by the proxy on purpose). Called once. */
  onBackendClose(conn: BackendConnection, error: Error | null): void;
}

export interface CommandOutcome {
  errno: number;
  sqlState: string;
  message: string;
  statementId: number;
  paramCount: number;
  columnCount: number;
  statusFlags: number;
  /** `queryScalar` only: the first column of the first row as text; null for NULL or no row. */
  firstValue: string | null;
}

let nextConnectionSerial = 1;

export class BackendConnection {
  readonly serial = nextConnectionSerial++;
  readonly reader: PacketReader;
  readonly tracker: ResponseTracker;
  sink: BackendSink | null = null;
  /** Default schema the backend session has (what the proxy last set or logged in with). */
  database: string | null;
  /** Whose session state was replayed here, in which generation, up to which statement seq. */
  stateOwner: object | null = null;
  stateGeneration = 0;
  appliedSeq = 0;
  /** COM_SET_OPTION state of the backend session (null: as negotiated). */
  multiStatements: boolean | null = null;
  /**
   * The replayable session state this connection holds while it waits in the pool for another
   * session (SessionState.fingerprint): '' none (fresh, or reset), null unknown (never handed to
   * another session without a reset). Written when a session gives the connection back.
   */
  stateKey: string | null = '';
  /**
   * A COM_STMT_PREPARE ran here with no statement after it: in Dolt the next statement then runs
   * in the snapshot of prepare time (test/integration/dolt-multiplexing-facts.test.ts), so such a
   * connection is reset before another session gets it.
   */
  preparedOnly = false;
  /** When the last client command on it ended (the session's clock); for lingering. */
  lastDoneAt = 0;
  /** Called once when the connection closes (the pool's budget counts it until then). */
  onDestroy: (() => void) | null = null;
  /**
   * Set by the owning session: the role and the topology generation (primary generation, or the
   * replica node's) the connection was opened for; -1 before. A field, not a side table: it is
   * read on every command.
   */
  generation = -1;
  role: 'primary' | 'replica' = 'replica';
  /**
   * The connection's dolt_transaction_commit_message as the proxy last set it ('' = Dolt's
   * default): outcome-token.ts keeps a stale token from naming another statement's commit.
   */
  commitMessage = '';
  private closed = false;
  private internal: InternalCommand | null = null;
  /** The socket chunk last pushed into the reader: views into it stay valid (see isBorrowedChunk). */
  private lastChunk: Buffer | null = null;
  /** Set when chunks come from the shared onread buffer (shared-reads.ts) and die after onData. */
  private readonly relay: ReadRelay | null;

  private readonly onData = (chunk: Buffer, bytes: number = chunk.length): void => {
    const sink = this.sink;
    const reader = this.reader;
    this.lastChunk = this.relay !== null ? null : chunk;
    reader.push(chunk, bytes);
    if (sink !== null) sink.beginBatch(this);
    try {
      const tracker = this.tracker;
      let view: PacketView | null;
      while (!this.closed) {
        let step: ResponseStep;
        // Rows need no decoding: a run of them goes to the sink as one view (see inRows).
        if (tracker.inRows && (view = reader.nextRunViewUntilNextRead(ResponseHeader.EOF)) !== null) {
          step = ResponseStep.More;
        } else {
          if ((view = reader.nextFrameViewUntilNextRead()) === null) break;
          step = tracker.feed(view);
        }
        const current = this.sink;
        if (current === null) {
          // Nobody asked: an unsolicited ERR (shutdown, timeout) or garbage. Either way, gone.
          this.destroy(new BackendProtocolError(this.name, step === ResponseStep.UnsolicitedError ? `closed the connection (error ${this.tracker.errno})` : 'sent data while idle'));
          break;
        }
        current.onBackendFrame(this, view, step);
      }
    } catch (error) {
      this.destroy(error as Error);
    }
    if (sink !== null) sink.endBatch(this);
    if (this.relay !== null) reader.keepUnread();
  };

  private constructor(
    readonly target: BackendTarget,
    readonly socket: net.Socket,
    readonly capabilities: number,
    readonly serverVersion: string,
    readonly connectionId: number,
    readonly isTls: boolean,
    database: string | null,
    statusFlags: number,
    leftover: Buffer,
    relay: ReadRelay | null,
  ) {
    this.database = database;
    // No limit on a response packet's size: responses are read and forwarded a frame (at most
    // 16 MiB) at a time, never assembled, so a packet's size costs the proxy nothing, and a limit
    // could only trip after its first frames had gone out, leaving the client mid-packet (a 70
    // MiB row used to hang it). The client's own max_allowed_packet is the limit that counts.
    this.reader = new PacketReader({ maxPacketSize: Number.MAX_SAFE_INTEGER });
    this.tracker = new ResponseTracker(capabilities, statusFlags);
    this.relay = relay;
    if (relay !== null) relay.receiver = this.onData;
    else socket.on('data', this.onData);
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => this.destroy(new Error('connection closed by the server')));
    if (leftover.length > 0) this.onData(Buffer.from(leftover));
  }

  get name(): string {
    return `${this.target.name} (${this.target.host}:${this.target.port})`;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get isIdle(): boolean {
    return this.tracker.isIdle && this.internal === null;
  }

  get inTransaction(): boolean {
    return hasFlag(this.tracker.statusFlags, ServerStatus.SERVER_STATUS_IN_TRANS);
  }

  /** Clean enough to hand to another session after a COM_RESET_CONNECTION. */
  get reusable(): boolean {
    return !this.closed && this.isIdle && this.reader.bufferedBytes === 0 && !this.reader.isMidPacket && this.reader.error === null;
  }

  static async connect(options: BackendConnectOptions): Promise<BackendConnection> {
    const { target } = options;
    const where = `${target.name} (${target.host}:${target.port})`;
    // Plain TCP reads through the shared buffer; under TLS, reads happen beneath the TLS socket.
    const relay = options.tls === null ? new ReadRelay() : null;
    const raw = net.connect(relay !== null ? relay.connectOptions(target.host, target.port) : { host: target.host, port: target.port });
    // Stays for the socket's life: under TLS the raw socket must never raise an unhandled error.
    raw.on('error', () => undefined);
    let socket: net.Socket = raw;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const timer = setTimeout(() => socket.destroy(new Error(`no handshake within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
    const channel = new PacketChannel(socket, 64 * 1024, 0);
    if (relay !== null) relay.receiver = (buffer, bytes) => channel.feed(buffer.subarray(0, bytes));
    try {
      const greeting = await channel.readPacket();
      if (greeting.length > 0 && greeting[0] === ResponseHeader.ERR) {
        const err = parseErr(greeting);
        throw new BackendProtocolError(where, `refused the connection: ${err.message}`, err.errno);
      }
      const hs = parseHandshakeV10(greeting);
      const wanted = options.clientCapabilities & FORWARDED_CAPABILITIES;
      const missing = wanted & REQUIRED_ON_BACKEND & ~hs.capabilities;
      if (missing !== 0) {
        throw new BackendProtocolError(where, `lacks capabilities 0x${(missing >>> 0).toString(16)} the client negotiated; packets could not be forwarded untouched`);
      }
      let capabilities = ((wanted | LOGIN_CAPABILITIES | (options.database !== null ? Capability.CLIENT_CONNECT_WITH_DB : 0)) & hs.capabilities) >>> 0;
      capabilities = (capabilities | Capability.CLIENT_PROTOCOL_41) >>> 0;
      const maxPacketSize = options.maxPacketSize;

      let isTls = false;
      if (options.tls !== null) {
        if (!hasFlag(hs.capabilities, Capability.CLIENT_SSL)) throw new BackendProtocolError(where, 'does not offer TLS but backend_tls is configured');
        capabilities = (capabilities | Capability.CLIENT_SSL) >>> 0;
        channel.writePacket(buildSslRequest(capabilities, maxPacketSize, options.charset));
        channel.detach();
        const secure = tls.connect({ ...options.tls, socket, servername: options.tls.servername ?? (net.isIP(target.host) === 0 ? target.host : undefined) });
        await new Promise<void>((resolve, reject) => {
          secure.once('secureConnect', () => resolve());
          secure.once('error', reject);
        });
        socket = secure;
        channel.attach(secure, Buffer.alloc(0));
        channel.isTls = true;
        isTls = true;
      }

      const password = options.login.password;
      let plugin = hs.authPluginName === '' ? AuthPlugin.MYSQL_NATIVE_PASSWORD : hs.authPluginName;
      let scramble = hs.scramble;
      channel.writePacket(
        buildHandshakeResponse41({
          capabilities,
          maxPacketSize,
          charset: options.charset,
          username: options.login.user,
          authResponse: tokenFor(plugin, password, scramble, where),
          database: options.database ?? '',
          authPluginName: plugin,
          connectAttributes: options.connectAttributes ?? new Map([['_client_name', 'doltgate']]),
        }),
      );
      for (;;) {
        const packet = await channel.readPacket();
        const first = packet.length > 0 ? packet[0] : -1;
        if (first === ResponseHeader.OK) break;
        if (first === ResponseHeader.ERR) {
          const err = parseErr(packet);
          throw new BackendProtocolError(where, `refused the login of user '${options.login.user}': ${err.message}`, err.errno);
        }
        if (first === ResponseHeader.EOF) {
          const sw = parseAuthSwitchRequest(packet);
          plugin = sw.pluginName;
          scramble = sw.pluginData;
          channel.writePacket(tokenFor(plugin, password, scramble, where));
          continue;
        }
        if (first === ResponseHeader.AUTH_MORE_DATA && plugin === AuthPlugin.CACHING_SHA2_PASSWORD) {
          const status = packet.length === 2 ? packet[1] : -1;
          if (status === CachingSha2Status.FAST_AUTH_SUCCESS) continue;
          if (status === CachingSha2Status.PERFORM_FULL_AUTHENTICATION) {
            // The password itself goes only to a server whose identity TLS verified: to anyone
            // else (an unverified certificate, or an RSA key the server hands over) it would be
            // handed in clear to whoever answers at that address.
            if (!isTls || options.tls?.rejectUnauthorized === false) {
              throw new BackendProtocolError(
                where,
                `asks for the password itself (caching_sha2_password full authentication), which doltgate sends only over TLS with a verified certificate; ${isTls ? 'set backend_tls.reject_unauthorized: true with the CA' : 'configure backend_tls'} or give user '${options.login.user}' mysql_native_password`,
              );
            }
            channel.writePacket(cleartextPasswordPayload(password));
            continue;
          }
        }
        throw new BackendProtocolError(where, `unexpected packet 0x${first.toString(16)} during login`);
      }
      clearTimeout(timer);
      const leftover = channel.detach();
      socket.setTimeout(0);
      return new BackendConnection(target, socket, capabilities, hs.serverVersion, hs.connectionId, isTls, options.database, hs.statusFlags, leftover, relay);
    } catch (error) {
      clearTimeout(timer);
      channel.detach();
      socket.on('error', () => undefined);
      socket.destroy();
      if (error instanceof BackendProtocolError) throw error;
      const e = error as NodeJS.ErrnoException;
      throw new BackendUnavailableError(where, e.code !== undefined ? `${e.code} ${e.message}` : e.message);
    }
  }

  /**
   * Is `buffer` the socket chunk the reader borrowed last? Views into it may be handed to
   * socket.write, which keeps a reference until the kernel took the bytes: Node never reuses a
   * chunk it emitted. Views into the reader's own buffer must be copied first, because the reader
   * reuses that buffer on the next push.
   */
  isBorrowedChunk(buffer: Buffer): boolean {
    return buffer === this.lastChunk;
  }

  /** Writes raw bytes (forwarded frames); false when the socket buffer is full. */
  write(bytes: Buffer): boolean {
    if (this.closed) return true;
    return this.socket.write(bytes);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /**
   * Runs a command of the proxy's own (single-frame, sequence 0) and resolves with its outcome; the
   * response is not forwarded anywhere. Rejects if the connection breaks (and it is destroyed).
   * The connection must be idle and have no other sink until it settles.
   */
  runCommand(commandFrame: Buffer, captureFirstValue = false): Promise<CommandOutcome> {
    if (this.closed) return Promise.reject(new BackendUnavailableError(this.name, 'connection already closed'));
    if (!this.isIdle) return Promise.reject(new Error(`runCommand on busy backend connection ${this.name}`));
    const command = commandFrame[4];
    return new Promise<CommandOutcome>((resolve, reject) => {
      const previous = this.sink;
      const job = new InternalCommand(this, previous, resolve, reject, captureFirstValue);
      this.internal = job;
      this.sink = job;
      this.reader.resetSequence(1);
      if (!this.tracker.begin(command)) {
        job.finish();
        this.write(commandFrame);
        return;
      }
      this.write(commandFrame);
    });
  }

  /**
   * A text query of the proxy's own whose answer is one value (e.g. `SELECT @@global.read_only`):
   * resolves with the first column of the first row; rejects on an ERR.
   */
  async queryScalar(sql: string): Promise<string | null> {
    const outcome = await this.runCommand(comQueryFrame(sql, this.capabilities), true);
    if (outcome.errno !== 0) throw new BackendProtocolError(this.name, `answered ${sql} with error ${outcome.errno}: ${outcome.message}`, outcome.errno);
    return outcome.firstValue;
  }

  /** @internal InternalCommand is done with the connection. */
  releaseInternal(previous: BackendSink | null): void {
    this.internal = null;
    this.sink = previous;
  }

  /** Closes the connection (politely with COM_QUIT when idle); tells the sink once. */
  destroy(error: Error | null = null): void {
    if (this.closed) return;
    this.closed = true;
    const sink = this.sink;
    const onDestroy = this.onDestroy;
    this.onDestroy = null;
    if (onDestroy !== null) onDestroy();
    this.socket.removeListener('data', this.onData);
    if (this.relay !== null) this.relay.stop();
    this.socket.on('error', () => undefined);
    if (error === null && this.tracker.isIdle && !this.socket.destroyed) {
      // Polite close: COM_QUIT, then the server hangs up; a server that does not is cut off.
      this.socket.end(Buffer.from([1, 0, 0, 0, Command.COM_QUIT]));
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
    if (sink !== null) sink.onBackendClose(this, error);
  }
}

function tokenFor(plugin: string, password: string, scramble: Buffer, where: string): Buffer {
  if (plugin === AuthPlugin.MYSQL_NATIVE_PASSWORD) return scrambleNativePassword(password, scramble);
  if (plugin === AuthPlugin.CACHING_SHA2_PASSWORD) return scrambleCachingSha2Password(password, scramble);
  throw new BackendProtocolError(where, `asks for auth plugin ${plugin}, which doltgate does not speak (use mysql_native_password or caching_sha2_password)`);
}

/** Sink that swallows one response and reports its outcome (and, if asked, its first value). */
class InternalCommand implements BackendSink {
  private outcome: CommandOutcome = { errno: 0, sqlState: '', message: '', statementId: 0, paramCount: 0, columnCount: 0, statusFlags: 0, firstValue: null };
  private settled = false;
  /** Packets of the response seen so far, and the index of the first row packet once known. */
  private packets = 0;
  private firstRowPacket = -1;

  constructor(
    private readonly conn: BackendConnection,
    private readonly previous: BackendSink | null,
    private readonly resolve: (outcome: CommandOutcome) => void,
    private readonly reject: (error: Error) => void,
    private readonly captureFirstValue = false,
  ) {}

  beginBatch(): void {}
  endBatch(): void {}

  onBackendFrame(conn: BackendConnection, view: PacketView, step: ResponseStep): void {
    if (view.startsPacket && view.firstByte === ResponseHeader.ERR && step === ResponseStep.Done) {
      const err = parseErr(Buffer.from(view.payload));
      this.outcome.errno = err.errno;
      this.outcome.sqlState = err.sqlState;
      this.outcome.message = err.message;
    }
    if (this.captureFirstValue && view.startsPacket) this.capture(view);
    if (step === ResponseStep.Done) {
      this.finish();
    } else if (step !== ResponseStep.More) {
      // LOCAL INFILE or an auth exchange in answer to our own command: the state is unknown.
      conn.destroy(new BackendProtocolError(conn.name, `unexpected response step ${step} to an internal command`));
    }
  }

  /**
   * A text result set is: column count, one definition per column, an EOF unless
   * CLIENT_DEPRECATE_EOF, then rows. A view is one packet or a run of whole row packets.
   */
  private capture(view: PacketView): void {
    const visit = (payload: Buffer): void => {
      this.packets++;
      if (this.packets === 1) {
        if (payload.length === 0 || payload[0] === ResponseHeader.OK || payload[0] === ResponseHeader.ERR) return;
        const columns = new PayloadCursor(payload).lenencInt();
        const eof = hasFlag(this.conn.capabilities, Capability.CLIENT_DEPRECATE_EOF) ? 0 : 1;
        this.firstRowPacket = 1 + columns + eof + 1;
        return;
      }
      if (this.packets !== this.firstRowPacket || payload.length === 0) return;
      if (payload[0] === ResponseHeader.EOF || payload[0] === ResponseHeader.ERR) return;
      const cursor = new PayloadCursor(payload);
      const length = cursor.lenencIntOrNull();
      this.outcome.firstValue = length === null ? null : cursor.bytes(length).toString('utf8');
    };
    if (view.frameCount === 1) {
      visit(view.payload);
      return;
    }
    for (let at = view.frameStart; at + 4 <= view.frameEnd; ) {
      const length = view.buffer[at] | (view.buffer[at + 1] << 8) | (view.buffer[at + 2] << 16);
      visit(view.buffer.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
  }

  finish(): void {
    if (this.settled) return;
    this.settled = true;
    const t = this.conn.tracker;
    this.outcome.statementId = t.statementId;
    this.outcome.paramCount = t.paramCount;
    this.outcome.columnCount = t.columnCount;
    this.outcome.statusFlags = t.statusFlags;
    this.conn.releaseInternal(this.previous);
    this.resolve(this.outcome);
  }

  onBackendClose(conn: BackendConnection, error: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    conn.releaseInternal(this.previous);
    this.reject(new BackendUnavailableError(conn.name, error?.message ?? 'connection closed'));
    // The owner must learn that its connection is gone too.
    this.previous?.onBackendClose(conn, error);
  }
}
