/**
 * One client connection, from greeting to close: the connection phase (client-handshake.ts), then
 * the command loop, which forwards raw frames between the client and the backend connection a
 * command was routed to (session-backends.ts), and answers locally what needs no backend.
 *
 * Hot path: one PacketReader on the client socket. A command's first frame is classified (command
 * byte; for COM_QUERY the SQL's keywords) and, when a synced idle connection is ready, written to
 * the backend at once from the reader's view — no copy, no promise. Only when a connection must be
 * opened, state replayed, a statement re-prepared or a write held is the async path taken;
 * meanwhile nothing else is read from the client. Response frames come back through
 * `onBackendFrame` with the tracker's verdict; the run of frames forwarded from one backend chunk
 * is written raw to the client in one write, at the end of the chunk or of the response
 * (`flushResponse`); flow-control.ts pauses whichever side is too fast. Frames of packets over 16 MiB
 * pass one by one. Frames handed to socket.write must outlive the call (the socket keeps a
 * reference until the kernel has the bytes): a frame inside the chunk the reader borrowed does;
 * one the reader assembled in its own, reused buffer is copied first (`stableFrame`).
 *
 * Commands: COM_QUERY, COM_STMT_* (ids remapped, see statement-commands.ts), COM_INIT_DB and
 * COM_FIELD_LIST are forwarded; COM_PING, COM_QUIT, COM_RESET_CONNECTION, COM_CHANGE_USER
 * (re-auth against the proxy users; Dolt does not implement it), COM_SET_OPTION and
 * COM_STATISTICS (Dolt does not implement it either; the proxy reports its own figures) are
 * answered here. KILL [QUERY|CONNECTION] and COM_PROCESS_KILL take the proxy's connection ids and
 * are carried out by the proxy — forwarded, they would kill whichever Dolt connection has that
 * number. LOAD DATA LOCAL INFILE is refused (CLIENT_LOCAL_FILES is never granted); any other
 * command gets ER_UNKNOWN_COM_ERROR and the connection stays usable.
 *
 * Failures: a malformed stream (bad sequence id, oversize or truncated packet) gets an ERR and
 * the connection is closed — only this one. A backend connection lost mid-command gets an ERR
 * that says what is known: "transaction rolled back" inside a transaction, "outcome unknown"
 * for a write, "retry" for a read; a transaction lost while the client was idle is reported on
 * its next command (a ROLLBACK is simply answered OK). The client connection stays usable.
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import type { ProxyUser } from '../config';
import {
  Capability,
  Command,
  comStmtCloseFrame,
  comStmtPrepareFrame,
  copyRange,
  eofFrame,
  frame as frameOf,
  hasFlag,
  okFrame,
  PacketReader,
  type PacketView,
  parseChangeUser,
  ResponseStep,
  ServerStatus,
} from '../protocol';
import { classifyQuery, type Classification } from '../routing/classifier';
import type { BackendConnection, BackendLogin, BackendSink } from './backend-connection';
import { acceptClient } from './client-handshake';
import {
  BackendErrorReply,
  describeForClient,
  errFrameForError,
  HandshakeTimeoutError,
  IdleTimeoutError,
  KillDeniedError,
  NoSuchThreadError,
  QueryInterruptedError,
  LocalInfileRefusedError,
  MalformedCommandError,
  OutcomeUnknownError,
  QueryTimeoutError,
  ReadInterruptedError,
  SessionStateLostError,
  ShuttingDownError,
  TransactionLostError,
  UnknownCommandError,
} from './errors';
import { ChangeUserExchange } from './change-user';
import { commandLabel, isLocalInfile, jobFields, lostCommandErrors, mayWrite, parseKill, READ_CLASSIFICATION as READ, statementFrame, type Inflight, type Job, type JobFields } from './command-job';
import type { PacketChannel } from './packet-channel';
import { placementOn, placeStatement, StatementRegistry, writeStatementId, type PreparedStatement, type StatementPlacement } from './prepared-statements';
import { planStatementCommand } from './statement-commands';
import { FlowControl } from './flow-control';
import { SessionBackends } from './session-backends';
import { ResponseBatch } from './response-batch';
import { SessionState } from './session-state';
import { moveToSharedReads, ReadRelay } from './shared-reads';
import type { SessionContext } from './session-context';

const enum Mode {
  Handshake,
  /** Waiting for the client's next command. */
  Idle,
  /** Async work before forwarding (connect, replay, hold); nothing is read from the client. */
  Setup,
  /** Forwarding the continuation frames of a command over 16 MiB. */
  Sending,
  /** Command sent; waiting for the end of the backend's response. */
  Awaiting,
  /** Skipping the rest of a multi-frame command that was refused; the ERR goes out after it. */
  Discarding,
  /** COM_CHANGE_USER exchange: packets go to the authenticator. */
  Auth,
  Closed,
}

const NO_FIELDS: JobFields = jobFields({});

/** Client bytes buffered while a command runs before the client socket is paused. */
const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

export class ClientSession implements BackendSink {
  readonly connectionId: number;
  private socket: Socket;
  private mode: Mode = Mode.Handshake;
  private channel: PacketChannel | null = null;
  private readonly handshakeDeadline: number;
  private lastActivity: number;
  private readonly reader: PacketReader;
  private user: ProxyUser | null = null;
  private capabilities = 0;
  private scramble: Buffer = Buffer.alloc(0);
  isTls = false;
  private readonly state = new SessionState(null);
  private readonly statements = new StatementRegistry();
  private backends!: SessionBackends;
  private readonly identity: { state: SessionState; statements: StatementRegistry; sink: BackendSink; login: BackendLogin; clientCapabilities: number; charset: number };
  private inflight: Inflight | null = null;
  /** An ERR owed to the client for something that happened while it was idle. */
  private pendingError: Error | null = null;
  /** What the discarded command gets once its last frame has arrived. */
  private discardError: Error | null = null;
  /** Why the proxy is closing the primary connection (topology change). */
  private primaryCloseCause: string | null = null;
  private lastStatus = ServerStatus.SERVER_STATUS_AUTOCOMMIT;
  private pumping = false;
  private readonly flow: FlowControl;
  /** Cancels the async part of the command being set up (client gone, or KILL QUERY). */
  private setupAbort: AbortController | null = null;
  /** The COM_CHANGE_USER exchange in progress (Mode.Auth). */
  private auth: ChangeUserExchange | null = null;
  private closeReason = '';
  /** The client chunk last pushed into the reader (see stableFrame); null for shared reads. */
  private lastChunk: Buffer | null = null;
  /** Set when the logged-in socket reads through the shared buffer (shared-reads.ts). */
  private relay: ReadRelay | null = null;
  /**
   * The clock as of the latest event that can start a command: client bytes arriving, or the
   * previous response ending (pipelined commands). One clock read serves routing and timing.
   */
  private commandAt = 0;
  /** Response frames forwarded but not yet written to the client. */
  private readonly out: ResponseBatch;

  private readonly onClientData = (chunk: Buffer, bytes: number = chunk.length): void => {
    const now = this.ctx.now();
    this.lastActivity = now;
    this.commandAt = now;
    this.lastChunk = this.relay === null ? chunk : null;
    this.reader.push(chunk, bytes);
    if (this.mode !== Mode.Idle && this.mode !== Mode.Sending && this.mode !== Mode.Discarding && this.mode !== Mode.Auth) {
      this.flow.bufferFull(this.reader.bufferedBytes);
    } else {
      this.pump();
    }
    // A shared read buffer is overwritten by the next read: keep what is not consumed yet.
    if (this.relay !== null) this.reader.keepUnread();
  };
  /** COM_STMT_PREPARE's classifier, made once per session rather than once per command. */
  private readonly classifyDefault = (sql: string): Classification => classifyQuery(sql, this.ctx.classifierOptions(false));
  private readonly classifyNoBackslashEscapes = (sql: string): Classification => classifyQuery(sql, this.ctx.classifierOptions(true));
  private readonly onClientGone = (): void => this.close('client closed the connection');
  private readonly onClientError = (error: Error): void => this.close(`client socket error: ${error.message}`);

  constructor(
    socket: Socket,
    connectionId: number,
    private readonly ctx: SessionContext,
  ) {
    this.socket = socket;
    this.connectionId = connectionId;
    const now = ctx.now();
    this.handshakeDeadline = now + ctx.config.handshakeTimeoutMs;
    this.lastActivity = now;
    this.reader = new PacketReader({ maxPacketSize: ctx.config.maxAllowedPacket });
    this.flow = new FlowControl(socket, CLIENT_HIGH_WATER);
    this.out = new ResponseBatch(socket, this.flow);
    this.identity = { state: this.state, statements: this.statements, sink: this, login: { user: '', password: '' }, clientCapabilities: 0, charset: 0 };
    socket.on('error', this.onClientError);
    socket.on('close', this.onClientGone);
    socket.setNoDelay(true);
  }

  get closed(): boolean {
    return this.mode === Mode.Closed;
  }

  /** A method, not a getter: TypeScript must not narrow it across awaits. */
  private isClosed(): boolean {
    return this.mode === Mode.Closed;
  }

  get userName(): string | null {
    return this.user?.name ?? null;
  }

  /** Runs the connection phase; the command loop starts when it succeeds. */
  start(): void {
    const settings = this.ctx.handshakeSettings(this.connectionId);
    acceptClient(this.socket, settings, (channel) => (this.channel = channel)).then(
      (login) => {
        this.channel = null;
        if (this.mode === Mode.Closed) return;
        this.user = login.user;
        this.capabilities = login.capabilities;
        this.scramble = login.scramble;
        this.isTls = login.tls;
        if (login.socket !== this.socket) {
          this.socket.off('error', this.onClientError);
          this.socket.off('close', this.onClientGone);
          this.socket = login.socket;
          this.socket.on('error', this.onClientError);
          this.socket.on('close', this.onClientGone);
        }
        this.state.reset(login.database);
        this.identity.login = this.ctx.loginFor(login.user);
        this.identity.clientCapabilities = login.capabilities;
        this.identity.charset = login.charset;
        this.backends = new SessionBackends(this.identity, this.ctx.view, this.ctx.pools, this.ctx.config.routing.readYourWritesMs, this.ctx.now);
        this.mode = Mode.Idle;
        this.lastActivity = this.ctx.now();
        if (!login.tls) this.moveToSharedReads();
        if (this.relay === null) this.socket.on('data', this.onClientData);
        this.flow.attach(this.socket);
        this.out.useSocket(this.socket);
        this.socket.resume();
        this.ctx.logger.debug('client logged in', { connection: this.connectionId, user: login.user.name, tls: login.tls });
        if (login.leftover.length > 0) this.onClientData(Buffer.from(login.leftover));
      },
      (error: Error) => {
        this.channel = null;
        if (this.mode === Mode.Closed) return;
        const kind = (error as { code?: string }).code === 'CHANNEL_CLOSED' ? 'CLIENT_LEFT' : describeForClient(error).kind;
        this.ctx.metrics.connectionsRejected.inc({ reason: kind.toLowerCase() });
        const level = kind === 'CLIENT_LEFT' ? 'debug' : 'info';
        this.ctx.logger[level]('client handshake failed', { connection: this.connectionId, error: error.message, kind });
        this.close(`handshake failed: ${error.message}`, true);
      },
    );
  }

  /** Plain TCP: read through the shared buffer from now on, when the socket can be moved. */
  private moveToSharedReads(): void {
    const relay = new ReadRelay();
    const moved = moveToSharedReads(this.socket, relay);
    if (moved === null) return;
    this.socket = moved;
    this.relay = relay;
    relay.receiver = this.onClientData;
    moved.on('error', this.onClientError);
    moved.on('close', this.onClientGone);
  }

  // ---- timers (called from the server's coarse timer) ------------------------------------------

  tick(now: number): void {
    if (this.mode === Mode.Handshake) {
      if (now >= this.handshakeDeadline) {
        const ch = this.channel;
        this.ctx.metrics.connectionsRejected.inc({ reason: 'handshake_timeout' });
        if (ch !== null) {
          try {
            ch.writeFrame((seq) => errFrameForError(seq, new HandshakeTimeoutError(this.ctx.config.handshakeTimeoutMs)));
          } catch {
            // gone already
          }
        }
        this.close('handshake timeout', true);
      }
      return;
    }
    const f = this.inflight;
    const queryTimeout = this.ctx.config.queryTimeoutMs;
    if (f !== null && queryTimeout > 0 && now - f.startedAt > queryTimeout) {
      f.failure = new QueryTimeoutError(queryTimeout, f.conn.name, f.job.mayWrite);
      f.conn.destroy(f.failure);
      return;
    }
    const idleTimeout = this.ctx.config.idleTimeoutMs;
    if (this.mode === Mode.Idle && idleTimeout > 0 && now - this.lastActivity > idleTimeout) {
      this.socket.write(errFrameForError(0, new IdleTimeoutError(idleTimeout)));
      this.close('idle timeout', true);
    }
  }

  // ---- topology ------------------------------------------------------------------------------

  /**
   * The primary's connections were retired. `close` (failover, a new primary): the connection
   * goes now, even mid-command (that client gets the matching error). `drain` (switchover): the
   * old primary still works, so a command in flight finishes and an open transaction may go on
   * until it ends; only an idle connection without a transaction goes now.
   */
  onPrimaryRetired(cause: string, action: 'close' | 'drain'): void {
    if (this.mode === Mode.Handshake || this.mode === Mode.Closed) return;
    const p = this.backends.primary;
    if (p === null || !this.backends.primaryRetired()) return;
    if (action === 'drain' && this.inflight?.conn === p) return;
    this.primaryCloseCause = cause;
    p.destroy(null);
  }

  /** Replica connections whose node moved or left the read set are dropped when idle. */
  onReplicasChanged(): void {
    if (this.mode === Mode.Handshake || this.mode === Mode.Closed) return;
    for (const conn of [...this.backends.replicas.values()]) {
      if (conn !== this.inflight?.conn && !this.backends.usable(conn)) this.backends.drop(conn);
    }
  }

  // ---- command loop --------------------------------------------------------------------------

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const mode = this.mode;
        const auth = this.auth;
        if (mode !== Mode.Idle && mode !== Mode.Sending && mode !== Mode.Discarding && !(mode === Mode.Auth && auth !== null && auth.waiting)) break;
        if (mode === Mode.Auth) {
          const v = this.reader.nextPacketViewUntilNextRead();
          if (v === null) break;
          (auth as ChangeUserExchange).deliver(Buffer.from(v.payload), v.lastSequenceId);
          continue;
        }
        const view = this.reader.nextFrameViewUntilNextRead();
        if (view === null) break;
        if (mode === Mode.Sending) this.forwardContinuation(view);
        else if (mode === Mode.Discarding) this.discardFrame(view);
        else this.onCommand(view);
      }
    } catch (error) {
      // The client broke framing (bad sequence id, oversize packet): tell it and hang up.
      this.fatal(error);
    } finally {
      this.pumping = false;
    }
    if (this.mode === Mode.Idle || this.mode === Mode.Sending || this.mode === Mode.Discarding) this.flow.bufferRead();
  }

  private onCommand(view: PacketView): void {
    this.lastActivity = this.commandAt;
    if (view.payloadLength === 0) {
      this.refuse(view, new MalformedCommandError('empty command packet'));
      return;
    }
    const command = view.firstByte;
    if (this.pendingError !== null && command !== Command.COM_QUIT && command !== Command.COM_PING && command !== Command.COM_RESET_CONNECTION && command !== Command.COM_CHANGE_USER && command !== Command.COM_STMT_CLOSE) {
      this.deliverPendingError(view, command);
      return;
    }
    // A primary connection retired under an idle session: say what was lost before going on.
    if (this.state.pinned && this.backends.primary !== null && !this.backends.primary.inTransaction && this.backends.primaryRetired()) {
      this.lose(this.backends.primary, this.ctx.view.lastChange);
      this.deliverPendingError(view, command);
      return;
    }
    switch (command) {
      case Command.COM_QUIT:
        this.close('client sent COM_QUIT');
        return;
      case Command.COM_PING:
        if (!this.ensureWhole(view)) return;
        this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
        return;
      case Command.COM_QUERY:
        this.onQuery(view);
        return;
      case Command.COM_STMT_PREPARE:
      case Command.COM_STMT_EXECUTE:
      case Command.COM_STMT_SEND_LONG_DATA:
      case Command.COM_STMT_CLOSE:
      case Command.COM_STMT_RESET:
      case Command.COM_STMT_FETCH:
        this.onStatementCommand(view);
        return;
      case Command.COM_INIT_DB:
        if (!this.ensureWhole(view)) return;
        this.route(view, this.newJob(command, view, READ, false, jobFields({ initDb: view.payloadBuffer.toString('utf8', view.payloadStart + 1, view.payloadStart + view.payloadLength) })));
        return;
      case Command.COM_FIELD_LIST:
        this.route(view, this.newJob(command, view, READ, false));
        return;
      case Command.COM_STATISTICS:
        // Dolt does not implement it; the proxy's own figures are what `mysqladmin status` wants.
        if (!this.ensureWhole(view)) return;
        this.reply(frameOf(view.lastSequenceId + 1, Buffer.from(this.ctx.statistics(), 'utf8')));
        return;
      case Command.COM_PROCESS_KILL:
        if (!this.ensureWhole(view)) return;
        this.onKill(view, view.payloadLength >= 5 ? view.payloadBuffer.readUInt32LE(view.payloadStart + 1) : null, false);
        return;
      case Command.COM_CHANGE_USER:
        this.onChangeUser(view);
        return;
      case Command.COM_RESET_CONNECTION:
        if (!this.ensureWhole(view)) return;
        this.resetSession(this.state.database);
        this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
        return;
      case Command.COM_SET_OPTION:
        this.onSetOption(view);
        return;
      default:
        this.refuse(view, new UnknownCommandError(command));
    }
  }

  private onQuery(view: PacketView): void {
    const start = view.payloadStart + 1;
    const end = view.payloadStart + view.payloadLength;
    const sql = view.payloadBuffer.subarray(start, end);
    const c = classifyQuery(sql, this.ctx.classifierOptions(hasFlag(this.lastStatus, ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES)));
    if (isLocalInfile(c, sql)) {
      this.refuse(view, new LocalInfileRefusedError());
      return;
    }
    const kill = parseKill(c, sql);
    if (kill !== null) {
      this.onKill(view, kill === 'invalid' ? null : kill.id, kill !== 'invalid' && kill.query);
      return;
    }
    this.route(view, this.newJob(Command.COM_QUERY, view, c, mayWrite(c), jobFields({ effects: c })));
  }

  /**
   * KILL [QUERY|CONNECTION] with one of the proxy's connection ids (COM_PROCESS_KILL too): only a
   * session of the same proxy user may be killed, as MySQL allows without PROCESS. KILL QUERY
   * cuts the target's command by closing its backend connection.
   */
  private onKill(view: PacketView, id: number | null, queryOnly: boolean): void {
    if (id === null) {
      this.refuse(view, new BackendErrorReply(1064, '42000', 'doltgate: KILL takes a literal connection id through the proxy'));
      return;
    }
    const target = this.ctx.findSession(id);
    if (target === undefined) {
      this.refuse(view, new NoSuchThreadError(id));
      return;
    }
    if (target.userName !== this.userName) {
      this.refuse(view, new KillDeniedError(id));
      return;
    }
    if (target === this) {
      if (queryOnly) this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
      else this.close('killed itself');
      return;
    }
    if (queryOnly) target.interruptQuery();
    else target.close(`killed by connection ${this.connectionId}`);
    this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
  }

  /** KILL QUERY from another session: cut the command in flight, if any. */
  interruptQuery(): void {
    if (this.mode === Mode.Setup) {
      // Waiting in the write hold or connecting: nothing was sent; the wait ends with 1317.
      this.setupAbort?.abort();
      return;
    }
    const f = this.inflight;
    if (f === null || this.mode === Mode.Closed) return;
    f.failure = new QueryInterruptedError(f.job.mayWrite);
    f.conn.destroy(f.failure);
  }

  /** COM_STMT_*: planned by statement-commands.ts, carried out here. */
  private onStatementCommand(view: PacketView): void {
    const noBackslashEscapes = hasFlag(this.lastStatus, ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES);
    const plan = planStatementCommand(view, this.statements, noBackslashEscapes ? this.classifyNoBackslashEscapes : this.classifyDefault);
    switch (plan.action) {
      case 'route':
        this.route(view, this.newJob(view.firstByte, view, plan.routing, plan.mayWrite, plan.job));
        return;
      case 'refuse':
        this.refuse(view, plan.error);
        return;
      case 'ok':
        this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
        return;
      case 'none':
        // No response; a multi-frame remainder is skipped, then a new exchange starts.
        for (const [conn, id] of plan.closes) conn.write(comStmtCloseFrame(id));
        this.discardError = null;
        if (view.endsPacket) this.reader.resetSequence(0);
        else this.mode = Mode.Discarding;
    }
  }

  private onSetOption(view: PacketView): void {
    if (!this.ensureWhole(view)) return;
    if (view.payloadLength < 3) {
      this.refuse(view, new MalformedCommandError('COM_SET_OPTION shorter than 3 bytes'));
      return;
    }
    const option = view.payloadBuffer.readUInt16LE(view.payloadStart + 1);
    if (option > 1) {
      this.refuse(view, new BackendErrorReply(1047, '08S01', `Unknown COM_SET_OPTION option ${option}`));
      return;
    }
    this.state.multiStatements = option === 0;
    const seq = view.lastSequenceId + 1;
    this.reply(
      hasFlag(this.capabilities, Capability.CLIENT_DEPRECATE_EOF)
        ? okFrame(seq, { statusFlags: this.statusFlags() }, this.capabilities)
        : eofFrame(seq, 0, this.statusFlags()),
    );
  }

  private newJob(command: number, view: PacketView, routing: Classification, mayWrite: boolean, fields: JobFields = NO_FIELDS): Job {
    // Field by field rather than a spread: one object of one shape per command.
    return {
      command,
      route: this.backends.decide(routing, this.commandAt),
      replica: undefined,
      effects: fields.effects,
      mayWrite,
      prepare: fields.prepare,
      stmt: fields.stmt,
      layout: fields.layout,
      initDb: fields.initDb,
      fixedConn: fields.fixedConn,
      frame: this.stableFrame(view),
      endsPacket: view.endsPacket,
      seq: view.sequenceId,
    };
  }

  /** Sends the job now if a connection is ready, else goes async (connect, replay, hold). */
  private route(view: PacketView, job: Job): void {
    let conn: BackendConnection | null = null;
    if (job.fixedConn !== null) {
      conn = job.fixedConn.isIdle && !job.fixedConn.isClosed ? job.fixedConn : null;
    } else if (job.route === 'replica') {
      job.replica = this.backends.pickReplica(this.commandAt);
      if (job.replica === undefined) job.route = 'primary';
      else conn = this.backends.readyReplica(job.replica);
    } else if (job.route === 'previous') {
      const last = this.backends.last;
      conn = last !== null && last.isIdle && this.backends.synced(last) ? last : null;
      if (conn === null) job.route = 'primary';
    }
    if (job.route === 'primary' && job.fixedConn === null) conn = this.backends.readyPrimary();
    if (conn !== null && job.stmt !== null && !this.statementReadyOn(job, conn)) conn = null;
    if (conn !== null) {
      this.send(conn, job, this.commandAt);
      return;
    }
    // job.frame is stable (see stableFrame): it may wait for the async path without a copy.
    this.mode = Mode.Setup;
    const abort = new AbortController();
    this.setupAbort = abort;
    this.setup(job, abort.signal).catch((error: Error) => this.setupFailed(job, error));
  }

  /** Can this statement command go to `conn` without I/O (prepared there; types if needed)? */
  private statementReadyOn(job: Job, conn: BackendConnection): boolean {
    const stmt = job.stmt as PreparedStatement;
    const placement = placementOn(stmt, conn);
    if (placement === null) return false;
    if (job.command !== Command.COM_STMT_EXECUTE || job.layout === null) return true;
    return job.layout.bound || job.layout.boundFlagOffset < 0 || placement.typesSent || stmt.types === null;
  }

  private async setup(job: Job, signal: AbortSignal): Promise<void> {
    let conn: BackendConnection;
    if (job.fixedConn !== null) {
      conn = job.fixedConn;
      if (conn.isClosed) throw new ReadInterruptedError(conn.name, 'the connection holding this statement closed');
    } else if (job.route === 'replica') {
      const got = await this.backends.acquireRead(job.replica, signal);
      conn = got.conn;
      job.replica = got.replica ?? undefined;
      if (got.replica === null) job.route = 'primary';
    } else {
      job.route = 'primary';
      conn = await this.backends.acquirePrimary(signal);
    }
    if (!this.isClosed() && job.stmt !== null) await this.ensurePrepared(job.stmt, conn);
    if (this.isClosed()) {
      // The client left while we connected: whatever was opened goes back (or away).
      this.backends.releaseAll();
      return;
    }
    this.setupAbort = null;
    this.commandAt = this.ctx.now();
    this.send(conn, job, this.commandAt);
    // Frames that arrived meanwhile (the rest of a large command, or the next command) are waiting.
    this.pump();
  }

  private async ensurePrepared(stmt: PreparedStatement, conn: BackendConnection): Promise<void> {
    if (placementOn(stmt, conn) !== null) return;
    const o = await conn.runCommand(comStmtPrepareFrame(stmt.sql));
    if (o.errno !== 0) throw new BackendErrorReply(o.errno, o.sqlState, o.message);
    placeStatement(stmt, conn, o.statementId);
  }

  private setupFailed(job: Job, error: Error): void {
    this.setupAbort = null;
    if (this.mode === Mode.Closed) return;
    this.countError(error);
    if ((error as { code?: string }).code === 'HOLD_TIMEOUT') this.ctx.metrics.holdTimeouts.inc();
    if (job.command === Command.COM_STMT_SEND_LONG_DATA) {
      // No response exists for long data; the execute that follows will report the failure.
      this.finishDiscardable(job, null);
      return;
    }
    this.finishDiscardable(job, error);
  }

  /** Ends a job that did not reach a backend: reply now, or after skipping its remaining frames. */
  private finishDiscardable(job: Job, error: Error | null): void {
    if (job.endsPacket) {
      this.mode = Mode.Idle;
      this.reader.resetSequence(0);
      if (error !== null) this.socket.write(errFrameForError(job.seq + 1, error));
      this.pump();
    } else {
      this.discardError = error;
      this.mode = Mode.Discarding;
      this.pump();
    }
  }

  /** Writes the job's first frame to `conn` and starts tracking its response. */
  private send(conn: BackendConnection, job: Job, startedAt: number): void {
    let frame = job.frame;
    const stmt = job.stmt;
    if (stmt !== null) {
      // Routing made sure the statement is prepared on conn (statementReadyOn, ensurePrepared).
      const placement = placementOn(stmt, conn) as StatementPlacement;
      const built = statementFrame(job, stmt, placement);
      if (built instanceof Error) {
        this.finishDiscardable(job, built);
        return;
      }
      frame = built;
      if (job.command === Command.COM_STMT_EXECUTE) {
        if (job.layout !== null && (job.layout.bound || stmt.types !== null)) placement.typesSent = true;
        stmt.longDataConn = null;
        stmt.lastConn = conn;
      } else if (job.command === Command.COM_STMT_SEND_LONG_DATA) {
        stmt.longDataConn = conn;
      }
    }
    conn.sink = this;
    const expects = conn.tracker.begin(job.command);
    if (job.endsPacket) conn.reader.resetSequence((job.seq + 1) & 0xff);
    const replica = job.route === 'replica' && job.replica !== undefined ? job.replica : job.route === 'previous' && conn.role === 'replica' ? conn.target.name : null;
    if (replica !== null) this.ctx.view.selector.begin(replica);
    this.inflight = { job, conn, replica, startedAt, wasInTransaction: this.backends.inTransaction || !this.backends.autocommit, expects, lastForwardedSeq: -1, failure: null };
    if (!conn.write(frame)) this.flow.backendFull(conn);
    if (!job.endsPacket) {
      this.mode = Mode.Sending;
      return;
    }
    if (expects) {
      this.mode = Mode.Awaiting;
      return;
    }
    this.inflight = null;
    if (replica !== null) this.ctx.view.selector.end(replica);
    this.commandDone();
  }

  private forwardContinuation(view: PacketView): void {
    const f = this.inflight;
    if (f === null) return;
    if (!f.conn.write(this.stableFrame(view))) this.flow.backendFull(f.conn);
    if (!view.endsPacket) return;
    f.job.seq = view.lastSequenceId;
    f.conn.reader.resetSequence((view.lastSequenceId + 1) & 0xff);
    if (f.expects) {
      this.mode = Mode.Awaiting;
      return;
    }
    this.inflight = null;
    if (f.replica !== null) this.ctx.view.selector.end(f.replica);
    this.commandDone();
  }

  /**
   * `view.frame` safe to hand to socket.write, which may hold it after this call returns: frames
   * in the chunk the reader borrowed from a 'data' event stay valid; frames in the reader's own
   * buffer or in the shared read buffer are copied.
   */
  private stableFrame(view: PacketView): Buffer {
    const b = view.buffer;
    if (b !== this.lastChunk) return copyRange(b, view.frameStart, view.frameEnd);
    // A chunk holding just this frame (a command per chunk is the common case) is used as is.
    return view.frameStart === 0 && view.frameEnd === b.length ? b : view.frame;
  }

  private discardFrame(view: PacketView): void {
    if (!view.endsPacket) return;
    const error = this.discardError;
    this.discardError = null;
    this.mode = Mode.Idle;
    this.reader.resetSequence(0);
    if (error !== null) this.socket.write(errFrameForError(view.lastSequenceId + 1, error));
  }

  // ---- backend side (BackendSink) ------------------------------------------------------------

  beginBatch(): void {}

  endBatch(): void {
    this.out.flush();
  }

  onBackendFrame(conn: BackendConnection, view: PacketView, step: ResponseStep): void {
    const f = this.inflight;
    if (f === null || f.conn !== conn || this.mode === Mode.Closed) {
      conn.destroy(new Error('backend sent data nobody asked for'));
      return;
    }
    if (f.job.prepare !== null && f.lastForwardedSeq < 0 && view.startsPacket && view.firstByte === 0) {
      writeStatementId(view.payloadBuffer, view.payloadStart, f.job.prepare.clientId);
    }
    if (step === ResponseStep.More || step === ResponseStep.Done) {
      this.out.add(conn, view);
      f.lastForwardedSeq = view.lastSequenceId;
      if (step === ResponseStep.Done) {
        this.out.flush();
        this.responseDone(f);
      }
      return;
    }
    this.out.flush();
    // LOCAL INFILE (never granted) or an auth exchange: this stream cannot be forwarded.
    f.failure = step === ResponseStep.LocalInfile ? new LocalInfileRefusedError() : new OutcomeUnknownError(conn.name, 'the backend started an authentication exchange');
    conn.destroy(f.failure);
  }

  private responseDone(f: Inflight): void {
    const conn = f.conn;
    const job = f.job;
    this.inflight = null;
    if (f.replica !== null) this.ctx.view.selector.end(f.replica);
    const errno = conn.tracker.errno;
    const status = conn.tracker.statusFlags;
    if (conn === this.backends.primary || conn.role === 'primary') this.lastStatus = status;
    const now = this.ctx.now();
    this.commandAt = now;
    this.ctx.metrics.recordQuery(conn.role, commandLabel(job.command), (now - f.startedAt) / 1000);
    this.ctx.countQuestion();
    this.backends.noteDone(conn, job.effects, errno);
    if (errno === 0) {
      if (job.initDb !== null) {
        this.state.database = job.initDb;
        conn.database = job.initDb;
      }
      if (job.prepare !== null) {
        const t = conn.tracker;
        const c = job.prepare.classification;
        this.statements.add({ clientId: job.prepare.clientId, sql: job.prepare.sql, classification: c, mayWrite: mayWrite(c), paramCount: t.paramCount, columnCount: t.columnCount }, conn, t.statementId);
      }
    }
    // A draining primary connection whose transaction just ended is retired now.
    if (conn === this.backends.primary && this.backends.primaryRetired()) {
      this.primaryCloseCause = this.ctx.view.lastChange;
      this.backends.drop(conn);
      this.primaryCloseCause = null;
    }
    this.commandDone();
  }

  private commandDone(): void {
    if (this.mode === Mode.Closed) return;
    this.mode = Mode.Idle;
    this.reader.resetSequence(0);
    this.pump();
  }

  onBackendClose(conn: BackendConnection, error: Error | null): void {
    if (this.mode === Mode.Closed) return;
    // What was forwarded before the loss goes out before the ERR about it.
    this.out.flush();
    const wasPrimary = conn === this.backends.primary;
    const inTransaction = conn.inTransaction;
    this.backends.forget(conn);
    this.flow.forget(conn);
    const cause = error === null ? this.primaryCloseCause ?? 'the proxy closed the connection' : `lost the connection to ${conn.name}: ${error.message}`;
    const f = this.inflight;
    if (f !== null && f.conn === conn) {
      this.inflight = null;
      if (f.replica !== null) this.ctx.view.selector.end(f.replica);
      const lost = lostCommandErrors(
        { onPrimary: wasPrimary || conn.role === 'primary', wasInTransaction: f.wasInTransaction, effects: f.job.effects, mayWrite: f.job.mayWrite, backend: conn.name },
        cause,
      );
      const reply = f.failure ?? lost.reply;
      this.countError(reply);
      // The transaction is gone with the connection; the next statement must not run in
      // autocommit as if nothing happened.
      if (lost.transactionLost || (f.failure !== null && (wasPrimary || conn.role === 'primary') && f.wasInTransaction)) {
        this.pendingError = new TransactionLostError(cause);
      }
      if (wasPrimary && this.state.pinned) this.state.pins.clear();
      if (this.mode === Mode.Sending) {
        this.discardError = reply;
        this.mode = Mode.Discarding;
        this.pump();
        return;
      }
      const seq = f.lastForwardedSeq >= 0 ? f.lastForwardedSeq + 1 : f.job.seq + 1;
      if (!this.socket.destroyed) this.socket.write(errFrameForError(seq, reply));
      this.commandDone();
      return;
    }
    if (wasPrimary && this.mode !== Mode.Setup) this.loseIdle(inTransaction, cause);
    else if (wasPrimary && inTransaction) this.pendingError = new TransactionLostError(cause);
  }

  /** The primary connection went away between commands: remember what the client lost. */
  private loseIdle(inTransaction: boolean, cause: string): void {
    if (inTransaction || !this.backends.autocommit) {
      if (inTransaction) this.pendingError = new TransactionLostError(cause);
      this.backends.autocommit = true;
    } else if (this.state.pinned) {
      this.pendingError = new SessionStateLostError(cause, [...this.state.pins]);
    }
    this.state.pins.clear();
  }

  private lose(conn: BackendConnection, cause: string): void {
    const inTransaction = conn.inTransaction;
    this.backends.forget(conn);
    conn.destroy(null);
    this.loseIdle(inTransaction, cause);
  }

  private deliverPendingError(view: PacketView, command: number): void {
    const error = this.pendingError as Error;
    this.pendingError = null;
    if (command === Command.COM_QUERY && error instanceof TransactionLostError) {
      const sql = view.payloadBuffer.subarray(view.payloadStart + 1, view.payloadStart + view.payloadLength);
      const c = classifyQuery(sql, this.ctx.classifierOptions(false));
      if (c.kind === 'rollback' && view.endsPacket) {
        // The transaction is already rolled back; ROLLBACK has nothing left to do.
        this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
        return;
      }
    }
    this.countError(error);
    this.refuse(view, error);
  }

  // ---- COM_CHANGE_USER -------------------------------------------------------------------------

  private onChangeUser(view: PacketView): void {
    if (!this.ensureWhole(view)) return;
    let cu;
    try {
      cu = parseChangeUser(Buffer.from(view.payload), this.capabilities);
    } catch (error) {
      this.fatal(error, (view.lastSequenceId + 1) & 0xff);
      return;
    }
    this.mode = Mode.Auth;
    const exchange = new ChangeUserExchange(this.socket, view.lastSequenceId + 1, this.isTls, (seq) => {
      this.reader.resetSequence(seq);
      this.pump();
    });
    this.auth = exchange;
    const pluginAuth = hasFlag(this.capabilities, Capability.CLIENT_PLUGIN_AUTH);
    this.ctx.authenticator
      .authenticate(exchange, {
        username: cu.username,
        clientPlugin: pluginAuth ? (cu.authPluginName ?? 'mysql_native_password') : null,
        token: cu.authResponse,
        scramble: this.scramble,
        canSwitch: pluginAuth,
      })
      .then(
        (user) => {
          this.auth = null;
          if (this.isClosed()) return;
          this.user = user;
          this.identity.login = this.ctx.loginFor(user);
          if (cu.charset !== null) this.identity.charset = cu.charset & 0xff;
          this.resetSession(cu.database === '' ? null : cu.database);
          this.socket.write(okFrame(exchange.seq, { statusFlags: this.statusFlags() }, this.capabilities));
          this.ctx.logger.debug('client changed user', { connection: this.connectionId, user: user.name });
          this.commandAt = this.ctx.now();
          this.commandDone();
        },
        (error: Error) => {
          this.auth = null;
          if (this.isClosed()) return;
          this.countError(error);
          // MySQL closes the connection after a failed COM_CHANGE_USER.
          this.socket.write(errFrameForError(exchange.seq, error));
          this.close(`COM_CHANGE_USER failed: ${error.message}`, true);
        },
      );
  }

  /** COM_RESET_CONNECTION / COM_CHANGE_USER: drop every backend connection and all session state. */
  private resetSession(database: string | null): void {
    this.backends.releaseAll();
    this.state.reset(database);
    this.statements.clear();
    this.pendingError = null;
    this.lastStatus = ServerStatus.SERVER_STATUS_AUTOCOMMIT;
  }

  // ---- small helpers -------------------------------------------------------------------------

  private statusFlags(): number {
    let s = this.backends.autocommit ? ServerStatus.SERVER_STATUS_AUTOCOMMIT : 0;
    if (this.backends.inTransaction) s |= ServerStatus.SERVER_STATUS_IN_TRANS;
    return s;
  }

  /** A command the proxy answers itself must fit in one frame. */
  private ensureWhole(view: PacketView): boolean {
    if (view.endsPacket) return true;
    this.refuse(view, new MalformedCommandError('this command cannot be 16 MiB or longer'));
    return false;
  }

  /** Answers a command with an ERR (after skipping the rest of it, if it spans frames). */
  private refuse(view: PacketView, error: Error): void {
    if (view.endsPacket) {
      this.reply(errFrameForError(view.lastSequenceId + 1, error));
      return;
    }
    this.discardError = error;
    this.mode = Mode.Discarding;
  }

  private reply(frame: Buffer): void {
    this.socket.write(frame);
    this.reader.resetSequence(0);
  }

  private countError(error: unknown): void {
    this.ctx.metrics.errors.inc({ kind: describeForClient(error).kind.toLowerCase() });
  }

  /** The client broke the protocol: ERR (best effort) and close. */
  private fatal(error: unknown, seq = this.reader.nextSequenceId): void {
    this.countError(error);
    this.ctx.logger.info('closing client connection after a protocol error', { connection: this.connectionId, error: error instanceof Error ? error.message : String(error) });
    if (!this.socket.destroyed) this.socket.write(errFrameForError(seq, error));
    this.close('protocol error', true);
  }

  /** Closes the client connection and gives back or destroys every backend connection. */
  close(reason: string, flush = false): void {
    if (this.mode === Mode.Closed) return;
    this.out.flush();
    const wasLoggedIn = this.mode !== Mode.Handshake;
    this.mode = Mode.Closed;
    this.closeReason = reason;
    this.flow.stop();
    this.setupAbort?.abort();
    this.auth?.abandon();
    this.auth = null;
    if (wasLoggedIn && this.backends !== undefined) {
      const f = this.inflight;
      this.inflight = null;
      if (f !== null) {
        if (f.replica !== null) this.ctx.view.selector.end(f.replica);
        // Mid-command: the backend's state is unknown, so its connection cannot be reused.
        this.backends.forget(f.conn);
        f.conn.destroy(null);
      }
      this.backends.releaseAll();
    }
    this.socket.off('data', this.onClientData);
    if (this.relay !== null) this.relay.stop();
    if (flush) this.socket.end();
    else this.socket.destroy();
    // Never wait long for a client that does not read its last ERR.
    if (flush) setTimeout(() => this.socket.destroy(), 1000).unref();
    this.ctx.sessionClosed(this);
  }

  /** Proxy shutdown. */
  shutdown(): void {
    if (this.mode === Mode.Idle) this.socket.write(errFrameForError(0, new ShuttingDownError()));
    this.close('proxy shutting down', true);
  }

  describe(): Record<string, unknown> {
    return { connection: this.connectionId, user: this.userName, mode: this.mode, reason: this.closeReason, tls: this.isTls, sharedReads: this.relay !== null };
  }
}
