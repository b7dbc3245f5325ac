/**
 * One connection from the proxy to one Dolt server, once logged in (backend-login.ts does the
 * client side of the handshake): a byte pipe whose response frames are handed, one reader view
 * at a time, to whoever owns the connection right now (its `sink`).
 *
 * Hot path: one PacketReader per connection; each socket chunk is pushed and drained frame by
 * frame; the ResponseTracker is fed here, so the connection always knows whether it is idle and
 * what the last status flags were, whoever the sink is; the sink gets the view and the step and
 * forwards the raw frame. No closure or promise per packet. `beginBatch`/`endBatch` bracket each
 * chunk so the sink can write what it forwarded from the chunk once, not once per frame.
 *
 * Internal commands (`runCommand`): session replay (COM_INIT_DB, SET ...), lazy COM_STMT_PREPARE
 * and pool resets run through the same tracker with an internal sink that swallows the response
 * and resolves with its outcome. A connection whose stream leaves a known state — protocol error,
 * socket error, an internal command that failed at the protocol level — is destroyed, never
 * reused (pgcat's rule); `reusable` says whether it is clean right now.
 */

import { Buffer } from 'node:buffer';
import type * as net from 'node:net';
import {
  Capability,
  Command,
  hasFlag,
  PacketReader,
  type PacketView,
  parseErr,
  ResponseHeader,
  ResponseStep,
  ResponseTracker,
  ServerStatus,
  comQueryFrame,
  PayloadCursor,
} from '../protocol';
import { loginToBackend, type BackendConnectOptions, type BackendTarget } from './backend-login';
import { BackendProtocolError, BackendUnavailableError } from './errors';
import type { ReadRelay } from './shared-reads';

export { FORWARDED_CAPABILITIES, REQUIRED_ON_BACKEND, type BackendConnectOptions, type BackendLogin, type BackendTarget } from './backend-login';

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

  /** Logs in (backend-login.ts), then the connection takes over the socket. */
  static async connect(options: BackendConnectOptions): Promise<BackendConnection> {
    const l = await loginToBackend(options);
    return new BackendConnection(options.target, l.socket, l.capabilities, l.serverVersion, l.connectionId, l.isTls, options.database, l.statusFlags, l.leftover, l.relay);
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
