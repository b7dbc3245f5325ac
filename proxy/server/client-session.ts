/**
 * One client connection, from greeting to close: the connection phase (client-handshake.ts), then
 * the command loop, which reads the client's commands, answers locally what needs no backend, and
 * hands the rest to its CommandForwarder (command-forwarder.ts), the backend side of the session.
 *
 * Hot path: one PacketReader on the client socket (read through the shared buffer once a plain-TCP
 * session has logged in: shared-reads.ts). A command's first frame is classified (command byte;
 * for COM_QUERY the SQL's keywords) and forwarded from the reader's view. While a command runs the
 * loop reads nothing else (`mode`); frames that arrive meanwhile wait in the reader, and
 * flow-control.ts pauses the socket if they pile up. Frames handed to socket.write must outlive
 * the call (the socket keeps a reference until the kernel has the bytes): a frame inside a chunk
 * from a 'data' event does; one in the reader's own buffer or the shared read buffer is copied
 * first (`stableFrame`).
 *
 * Commands: COM_QUERY, COM_STMT_* (ids remapped, see statement-commands.ts), COM_INIT_DB and
 * COM_FIELD_LIST are forwarded; COM_PING, COM_QUIT, COM_RESET_CONNECTION, COM_CHANGE_USER
 * (re-auth against the proxy users; Dolt does not implement it), COM_SET_OPTION and
 * COM_STATISTICS (Dolt does not implement it either; the proxy reports its own figures) are
 * answered here. KILL [QUERY|CONNECTION] and COM_PROCESS_KILL take the proxy's connection ids and
 * are carried out by the proxy (kill-command.ts). LOAD DATA LOCAL INFILE is refused
 * (CLIENT_LOCAL_FILES is never granted); any other command gets ER_UNKNOWN_COM_ERROR and the
 * connection stays usable.
 *
 * Failures: a malformed stream (bad sequence id, oversize or truncated packet) gets an ERR and
 * the connection is closed — only this one. What a lost backend connection cost the client (the
 * forwarder decides) is answered at once, or, for a loss while the client was idle, on its next
 * command (a ROLLBACK is then simply answered OK). The client connection stays usable.
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import type { ProxyUser } from '../config';
import {
  Capability,
  Command,
  comStmtCloseFrame,
  copyRange,
  eofFrame,
  expectsResponse,
  frame as frameOf,
  hasFlag,
  okFrame,
  PacketReader,
  type PacketView,
  parseChangeUser,
  ServerStatus,
  textResultSetFrames,
} from '../protocol';
import { classifyQuery, type Classification } from '../routing/classifier';
import { ChangeUserExchange } from './change-user';
import { acceptClient } from './client-handshake';
import { CommandForwarder, type ForwardingHost } from './command-forwarder';
import { jobFields, READ_CLASSIFICATION as READ } from './command-job';
import {
  BackendErrorReply,
  describeForClient,
  errFrameForError,
  HandshakeEvictedError,
  HandshakeTimeoutError,
  IdleTimeoutError,
  MalformedCommandError,
  OutcomeTokenError,
  ShuttingDownError,
  TransactionLostError,
  UnknownCommandError,
} from './errors';
import { FlowControl } from './flow-control';
import { clientAddressOf } from './handshake-slots';
import { heldVerdict } from './login-verdict';
import { ChannelClosedError, type PacketChannel } from './packet-channel';
import { StatementRegistry } from './prepared-statements';
import type { SessionContext } from './session-context';
import { SessionState } from './session-state';
import { moveToSharedReads, ReadRelay } from './shared-reads';
import { KILL_NEEDS_LITERAL_ID, planKill, type KillRequest } from './kill-command';
import { planStatementCommand } from './statement-commands';
import { parseOutcomeToken } from './outcome-token';
import { resolveOutcome } from './outcome-resolver';
import { planQuery } from './query-plan';

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

/** Mode by its number, for describe(): logs and tests read names. */
const modeNames = ['handshake', 'idle', 'setup', 'sending', 'awaiting', 'discarding', 'auth', 'closed'];

/** Client bytes buffered while a command runs before the client socket is paused. */
const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

export class ClientSession {
  readonly connectionId: number;
  private socket: Socket;
  private mode: Mode = Mode.Handshake;
  private channel: PacketChannel | null = null;
  private readonly handshakeDeadline: number;
  /** The client's IP address, as logins are counted and throttled by it. */
  readonly clientAddress: string;
  private lastActivity: number;
  private readonly reader: PacketReader;
  private user: ProxyUser | null = null;
  private capabilities = 0;
  private scramble: Buffer = Buffer.alloc(0);
  isTls = false;
  private readonly state: SessionState;
  private readonly statements: StatementRegistry;
  /** The backend side, from login on. */
  private fwd!: CommandForwarder;
  /** An ERR owed to the client for something that happened while it was idle. */
  private pendingError: Error | null = null;
  /** What the discarded command gets once its last frame has arrived. */
  private discardError: Error | null = null;
  private pumping = false;
  private readonly flow: FlowControl;
  /** The COM_CHANGE_USER exchange in progress (Mode.Auth). */
  private auth: ChangeUserExchange | null = null;
  private closeReason = '';
  /** The client chunk last pushed into the reader (see stableFrame); null for shared reads. */
  private lastChunk: Buffer | null = null;
  /** Set when the logged-in socket reads through the shared buffer (shared-reads.ts). */
  private relay: ReadRelay | null = null;

  private readonly onClientData = (chunk: Buffer, bytes: number = chunk.length): void => {
    const now = this.ctx.now();
    this.lastActivity = now;
    this.fwd.commandAt = now;
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
    private readonly ctx: SessionContext<ClientSession>,
  ) {
    this.socket = socket;
    this.connectionId = connectionId;
    this.clientAddress = clientAddressOf(socket);
    const now = ctx.now();
    this.handshakeDeadline = now + ctx.config.handshakeTimeoutMs;
    this.lastActivity = now;
    this.reader = new PacketReader({ maxPacketSize: ctx.config.maxAllowedPacket });
    const limits = ctx.config.sessionLimits;
    this.state = new SessionState(null, undefined, limits.maxReplayBytes, ctx.memoryBudget);
    this.statements = new StatementRegistry(limits, ctx.memoryBudget);
    this.flow = new FlowControl(socket, CLIENT_HIGH_WATER);
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
    const settings = this.ctx.handshakeSettings(this);
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
        this.mode = Mode.Idle;
        this.lastActivity = this.ctx.now();
        if (!login.tls) this.moveToSharedReads();
        // Built on the socket as it stays from here on; nothing reads the client before this.
        this.fwd = new CommandForwarder(this.forwardingHost(), this.socket, {
          state: this.state,
          statements: this.statements,
          login: this.ctx.loginFor(login.user),
          clientCapabilities: login.capabilities,
          charset: login.charset,
        });
        if (this.relay === null) this.socket.on('data', this.onClientData);
        this.flow.attach(this.socket);
        this.socket.resume();
        this.ctx.logger.debug('client logged in', { connection: this.connectionId, user: login.user.name, tls: login.tls });
        if (login.leftover.length > 0) this.onClientData(Buffer.from(login.leftover));
      },
      (error: Error) => {
        this.channel = null;
        if (this.mode === Mode.Closed) return;
        const kind = error instanceof ChannelClosedError ? 'CLIENT_LEFT' : describeForClient(error).kind;
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

  /** While logging in: since when the proxy has waited for this client's next packet (null: not waiting). */
  handshakeWaitingSince(): number | null {
    return this.mode === Mode.Handshake ? (this.channel?.waitingSince ?? null) : null;
  }

  /** Closed to make room for a newer handshake (handshake-slots.ts). */
  evictHandshake(now: number): void {
    this.endHandshake('handshake_evicted', new HandshakeEvictedError(now - (this.handshakeWaitingSince() ?? now)));
  }

  private endHandshake(reason: string, error: Error): void {
    const ch = this.channel;
    this.ctx.metrics.connectionsRejected.inc({ reason });
    if (ch !== null) {
      try {
        ch.writeFrame((seq) => errFrameForError(seq, error));
      } catch {
        // gone already
      }
    }
    this.close(reason.replace('_', ' '), true);
  }

  // ---- timers (called from the server's coarse timer) ------------------------------------------

  tick(now: number): void {
    if (this.mode === Mode.Handshake) {
      if (now >= this.handshakeDeadline) this.endHandshake('handshake_timeout', new HandshakeTimeoutError(this.ctx.config.handshakeTimeoutMs));
      return;
    }
    if (this.mode === Mode.Closed || this.fwd.enforceQueryTimeout(now, this.ctx.config.queryTimeoutMs)) return;
    const idleTimeout = this.ctx.config.idleTimeoutMs;
    if (this.mode === Mode.Idle && idleTimeout > 0 && now - this.lastActivity > idleTimeout) {
      this.socket.write(errFrameForError(0, new IdleTimeoutError(idleTimeout)));
      this.close('idle timeout', true);
      return;
    }
    if (this.mode === Mode.Idle) this.fwd.giveBackIdle(now);
  }

  // ---- topology ------------------------------------------------------------------------------

  /** Still on a primary the topology retired: its transaction or command in flight is finishing there. */
  holdsRetiredPrimary(): boolean {
    return this.fwd.backends.holdsRetiredPrimary();
  }

  /** The primary's connections were retired (see CommandForwarder.onPrimaryRetired). */
  onPrimaryRetired(cause: string, action: 'close' | 'drain'): void {
    if (this.mode !== Mode.Handshake && this.mode !== Mode.Closed) this.fwd.onPrimaryRetired(cause, action);
  }

  /** Replica connections whose node moved or left the read set are dropped when idle. */
  onReplicasChanged(): void {
    if (this.mode !== Mode.Handshake && this.mode !== Mode.Closed) this.fwd.onReplicasChanged();
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
        if (mode === Mode.Sending) this.fwd.continueCommand(view);
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
    this.lastActivity = this.fwd.commandAt;
    if (view.payloadLength === 0) {
      this.refuse(view, new MalformedCommandError('empty command packet'));
      return;
    }
    const command = view.firstByte;
    // An owed ERR goes out only as the answer to a command that gets one: COM_STMT_SEND_LONG_DATA
    // and COM_STMT_CLOSE are never answered, and an ERR to them would put the client one
    // response behind for good (found by bench:fuzz); the execute that follows hears it instead.
    const answered = expectsResponse(command);
    if (this.pendingError !== null && answered && command !== Command.COM_PING && command !== Command.COM_RESET_CONNECTION && command !== Command.COM_CHANGE_USER) {
      this.deliverPendingError(view, command);
      return;
    }
    // A primary connection retired under an idle session: say what was lost before going on.
    if (answered && this.fwd.dropRetiredPinnedPrimary()) {
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
        this.fwd.forward(this.fwd.job(command, view, READ, false, jobFields({ initDb: view.payloadBuffer.toString('utf8', view.payloadStart + 1, view.payloadStart + view.payloadLength) })));
        return;
      case Command.COM_FIELD_LIST:
        if (!this.ensureWhole(view)) return;
        // Dolt drops the connection on a table name without its NUL (dolt-protocol-facts).
        if (!hasNulTerminatedName(view)) {
          this.refuse(view, new MalformedCommandError('COM_FIELD_LIST needs a NUL-terminated table name'));
          return;
        }
        this.fwd.forward(this.fwd.job(command, view, READ, false));
        return;
      case Command.COM_STATISTICS:
        // Dolt does not implement it; the proxy's own figures are what `mysqladmin status` wants.
        if (!this.ensureWhole(view)) return;
        this.reply(frameOf(view.lastSequenceId + 1, Buffer.from(this.ctx.statistics(), 'utf8')));
        return;
      case Command.COM_PROCESS_KILL:
        if (!this.ensureWhole(view)) return;
        this.onKill(view, view.payloadLength >= 5 ? { query: false, id: view.payloadBuffer.readUInt32LE(view.payloadStart + 1) } : { refusal: KILL_NEEDS_LITERAL_ID });
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
    const noBackslashEscapes = hasFlag(this.fwd.lastStatus, ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES);
    const c = classifyQuery(sql, this.ctx.classifierOptions(noBackslashEscapes));
    const plan = planQuery(sql, c, noBackslashEscapes, this.state);
    switch (plan.action) {
      case 'refuse':
        this.countError(plan.error);
        this.refuse(view, plan.error);
        return;
      case 'kill':
        this.onKill(view, plan.request);
        return;
      case 'outcome':
        this.onOutcomeQuery(view, plan.token);
        return;
      case 'forward':
        this.fwd.forward(this.fwd.job(Command.COM_QUERY, view, c, plan.mayWrite, jobFields({ effects: c, selectDatabase: plan.selectDatabase })));
        return;
    }
  }

  /** SELECT doltgate_outcome('<token>'): answered by the proxy from the nodes' commit graphs (outcome-resolver.ts). */
  private onOutcomeQuery(view: PacketView, token: string): void {
    if (!this.ensureWhole(view)) return;
    const parsed = parseOutcomeToken(token);
    if (parsed === null) {
      this.refuse(view, new OutcomeTokenError(token));
      return;
    }
    this.mode = Mode.Setup;
    const seq = view.lastSequenceId + 1;
    const view_ = this.ctx.view;
    resolveOutcome(token, { pools: this.ctx.pools, login: this.fwd.identity.login, primary: view_.primary, node: (name) => (view_.primary?.name === name ? view_.primary : view_.replica(name)), ranOn: parsed.node }).then(
      (answer) => {
        this.ctx.metrics.outcomeQueries.inc({ verdict: answer.verdict });
        if (this.isClosed()) return;
        for (const f of textResultSetFrames(seq, ['outcome', 'detail'], [[answer.verdict, answer.detail]], this.statusFlags(), this.capabilities)) this.socket.write(f);
        this.commandDone();
      },
      (error: Error) => {
        if (this.isClosed()) return;
        this.socket.write(errFrameForError(seq, error));
        this.commandDone();
      },
    );
  }

  /** KILL [QUERY|CONNECTION] and COM_PROCESS_KILL, planned by kill-command.ts. */
  private onKill(view: PacketView, request: KillRequest): void {
    const plan = planKill<ClientSession>(this, request, (n) => this.ctx.findSession(n));
    switch (plan.action) {
      case 'refuse':
        this.refuse(view, plan.error);
        return;
      case 'close-self':
        this.close('killed itself');
        return;
      case 'interrupt':
        plan.target.interruptQuery();
        break;
      case 'close':
        plan.target.close(`killed by connection ${this.connectionId}`);
        break;
      case 'ok':
        break;
    }
    this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
  }

  /** KILL QUERY from another session: cut the command in flight or being set up, if any. */
  interruptQuery(): void {
    if (this.mode !== Mode.Handshake && this.mode !== Mode.Closed) this.fwd.interrupt();
  }

  /** COM_STMT_*: planned by statement-commands.ts, carried out here. */
  private onStatementCommand(view: PacketView): void {
    const noBackslashEscapes = hasFlag(this.fwd.lastStatus, ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES);
    const plan = planStatementCommand(view, this.statements, noBackslashEscapes ? this.classifyNoBackslashEscapes : this.classifyDefault, this.ctx.config.maxAllowedPacket);
    switch (plan.action) {
      case 'route':
        this.fwd.forward(this.fwd.job(view.firstByte, view, plan.routing, plan.mayWrite, plan.job));
        return;
      case 'refuse':
        if (plan.closes !== undefined) for (const [conn, id] of plan.closes) conn.write(comStmtCloseFrame(id));
        this.refuse(view, plan.error);
        return;
      case 'ok':
        this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
        return;
      case 'none':
        // No response; a multi-frame remainder is skipped, then a new exchange starts.
        for (const [conn, id] of plan.closes) conn.write(comStmtCloseFrame(id));
        // A statement closed: perhaps the last thing that kept the connections.
        this.fwd.giveBackIdle(this.fwd.commandAt);
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
    const authentication = this.ctx.authenticator.authenticate(exchange, {
      username: cu.username,
      clientPlugin: pluginAuth ? (cu.authPluginName ?? 'mysql_native_password') : null,
      token: cu.authResponse,
      scramble: this.scramble,
      canSwitch: pluginAuth,
    });
    heldVerdict(this.ctx.loginGate(this.clientAddress), cu.username, authentication)
      .then(
        (user) => {
          this.auth = null;
          if (this.isClosed()) return;
          this.user = user;
          this.fwd.identity.login = this.ctx.loginFor(user);
          if (cu.charset !== null) this.fwd.identity.charset = cu.charset & 0xff;
          this.resetSession(cu.database === '' ? null : cu.database);
          this.socket.write(okFrame(exchange.seq, { statusFlags: this.statusFlags() }, this.capabilities));
          this.ctx.logger.debug('client changed user', { connection: this.connectionId, user: user.name });
          this.fwd.commandAt = this.ctx.now();
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
    this.fwd.reset();
    this.state.reset(database);
    this.statements.clear();
    this.pendingError = null;
  }

  // ---- small helpers -------------------------------------------------------------------------

  /** The session as its CommandForwarder sees it. */
  private forwardingHost(): ForwardingHost {
    return {
      ctx: this.ctx,
      flow: this.flow,
      isClosed: () => this.mode === Mode.Closed,
      isSending: () => this.mode === Mode.Sending,
      isSettingUp: () => this.mode === Mode.Setup,
      enter: (phase) => {
        this.mode = phase === 'setup' ? Mode.Setup : phase === 'sending' ? Mode.Sending : Mode.Awaiting;
      },
      commandDone: () => this.commandDone(),
      discardRest: (error) => {
        this.discardError = error;
        this.mode = Mode.Discarding;
        this.pump();
      },
      pump: () => this.pump(),
      owe: (error) => {
        this.pendingError = error;
      },
      forgiveOwed: () => {
        this.pendingError = null;
      },
      stableFrame: (view) => this.stableFrame(view),
      countError: (error) => this.countError(error),
    };
  }

  /** The command is over: the client's next packet starts a new exchange. */
  private commandDone(): void {
    if (this.mode === Mode.Closed) return;
    this.mode = Mode.Idle;
    this.reader.resetSequence(0);
    this.pump();
  }

  private statusFlags(): number {
    const backends = this.fwd.backends;
    let s = backends.autocommit ? ServerStatus.SERVER_STATUS_AUTOCOMMIT : 0;
    if (backends.inTransaction) s |= ServerStatus.SERVER_STATUS_IN_TRANS;
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
    const wasLoggedIn = this.mode !== Mode.Handshake;
    this.mode = Mode.Closed;
    this.closeReason = reason;
    this.flow.stop();
    this.auth?.abandon();
    this.auth = null;
    // Closed first: the backend connections it cuts must not answer the client any more.
    if (wasLoggedIn && this.fwd !== undefined) this.fwd.abandon();
    this.socket.off('data', this.onClientData);
    if (this.relay !== null) this.relay.stop();
    if (flush) this.socket.end();
    else this.socket.destroy();
    // Never wait long for a client that does not read its last ERR.
    if (flush) setTimeout(() => this.socket.destroy(), 1000).unref();
    this.state.release();
    this.statements.clear();
    this.ctx.sessionClosed(this);
  }

  /** Proxy shutdown. */
  shutdown(): void {
    if (this.mode === Mode.Idle) this.socket.write(errFrameForError(0, new ShuttingDownError()));
    this.close('proxy shutting down', true);
  }

  /** Why this session keeps backend connections between statements now, or null (multiplexed, or not logged in). */
  holdReason(): string | null {
    if (this.mode === Mode.Handshake || this.mode === Mode.Closed) return null;
    return this.fwd.backends.holdReason();
  }

  describe(): Record<string, unknown> {
    return { connection: this.connectionId, user: this.userName, mode: modeNames[this.mode], reason: this.closeReason, tls: this.isTls, sharedReads: this.relay !== null };
  }
}

/** COM_FIELD_LIST's table name ends in a NUL inside the packet (the field wildcard follows it). */
function hasNulTerminatedName(view: PacketView): boolean {
  const nul = view.payloadBuffer.indexOf(0, view.payloadStart + 1);
  return nul >= 0 && nul < view.payloadStart + view.payloadLength;
}
