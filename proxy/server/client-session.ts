/**
 * One client connection, from greeting to close — the client-socket side of a session: the
 * connection phase (client-handshake.ts), then the command loop, which reads the client's frames
 * and hands each command to its CommandDispatch (command-dispatch.ts: answer here, refuse, or
 * forward through the CommandForwarder, command-forwarder.ts). Which frames are read when is the
 * command's phase (command-lifecycle.ts), the one state both sides share.
 *
 * Hot path: one PacketReader on the client socket (read through the shared buffer once a plain-TCP
 * session has logged in: shared-reads.ts). A command's first frame is classified (command byte;
 * for COM_QUERY the SQL's keywords) and forwarded from the reader's view. While a command runs the
 * loop reads nothing else; frames that arrive meanwhile wait in the reader, and flow-control.ts
 * pauses the socket if they pile up. Frames handed to socket.write must outlive the call (the
 * socket keeps a reference until the kernel has the bytes): a frame inside a chunk from a 'data'
 * event does; one in the reader's own buffer or the shared read buffer is copied first
 * (`stableFrame`).
 *
 * Failures: a malformed stream (bad sequence id, oversize or truncated packet) gets an ERR and
 * the connection is closed — only this one. An impossible phase move (a bug) closes it too.
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { copyRange, PacketReader, type PacketView } from '../protocol';
import { acceptClient } from './client-handshake';
import { CommandDispatch } from './command-dispatch';
import { CommandForwarder, type ForwardingHost } from './command-forwarder';
import { CommandEvent, CommandLifecycle, EVENT_NAMES, Phase, PHASE_NAMES } from './command-lifecycle';
import { describeForClient, errFrameForError, HandshakeEvictedError, HandshakeTimeoutError, IdleTimeoutError, ShuttingDownError } from './errors';
import { FlowControl } from './flow-control';
import { clientAddressOf } from './handshake-slots';
import { ChannelClosedError, type PacketChannel } from './packet-channel';
import { StatementRegistry } from './prepared-statements';
import type { SessionContext } from './session-context';
import { SessionState } from './session-state';
import { moveToSharedReads, ReadRelay } from './shared-reads';

/** Client bytes buffered while a command runs before the client socket is paused. */
const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

export class ClientSession {
  readonly connectionId: number;
  private socket: Socket;
  private channel: PacketChannel | null = null;
  private readonly handshakeDeadline: number;
  /** The client's IP address, as logins are counted and throttled by it. */
  readonly clientAddress: string;
  private lastActivity: number;
  private readonly reader: PacketReader;
  isTls = false;
  private readonly state: SessionState;
  private readonly statements: StatementRegistry;
  /** The command's phase, its in-flight record and its one exit (command-lifecycle.ts). */
  private readonly life: CommandLifecycle;
  /** The backend side, from login on. */
  private fwd!: CommandForwarder;
  /** What each command becomes, from login on. */
  private dispatch!: CommandDispatch<ClientSession>;
  private pumping = false;
  private readonly flow: FlowControl;
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
    if (this.life.readsClient()) this.pump();
    else this.flow.bufferFull(this.reader.bufferedBytes);
    // A shared read buffer is overwritten by the next read: keep what is not consumed yet.
    if (this.relay !== null) this.reader.keepUnread();
  };
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
    this.life = new CommandLifecycle(ctx.view.selector, {
      resetClientSequence: (seq) => this.reader.resetSequence(seq),
      pump: () => this.pump(),
      bug: (phase, event) => this.phaseBug(phase, event),
    });
    socket.on('error', this.onClientError);
    socket.on('close', this.onClientGone);
    socket.setNoDelay(true);
  }

  get closed(): boolean {
    return this.life.isClosed();
  }

  get userName(): string | null {
    return this.life.phase === Phase.Handshake ? null : (this.dispatch?.user.name ?? null);
  }

  /** Runs the connection phase; the command loop starts when it succeeds. */
  start(): void {
    const settings = this.ctx.handshakeSettings(this);
    acceptClient(this.socket, settings, (channel) => (this.channel = channel)).then(
      (login) => {
        this.channel = null;
        if (this.life.isClosed()) return;
        this.isTls = login.tls;
        if (login.socket !== this.socket) {
          this.socket.off('error', this.onClientError);
          this.socket.off('close', this.onClientGone);
          this.socket = login.socket;
          this.socket.on('error', this.onClientError);
          this.socket.on('close', this.onClientGone);
        }
        this.state.reset(login.database);
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
        const socket = this.socket;
        this.dispatch = new CommandDispatch<ClientSession>(
          { session: this, connectionId: this.connectionId, clientAddress: this.clientAddress, isTls: login.tls, socket, reader: this.reader, pump: () => this.pump(), fatal: (error, seq) => this.fatal(error, seq) },
          this.ctx,
          this.life,
          this.fwd,
          this.state,
          this.statements,
          login,
        );
        if (!this.life.move(CommandEvent.LoggedIn)) return;
        if (this.relay === null) this.socket.on('data', this.onClientData);
        this.flow.attach(this.socket);
        this.socket.resume();
        this.ctx.logger.debug('client logged in', { connection: this.connectionId, user: login.user.name, tls: login.tls });
        if (login.leftover.length > 0) this.onClientData(Buffer.from(login.leftover));
      },
      (error: Error) => {
        this.channel = null;
        if (this.life.isClosed()) return;
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
    return this.life.phase === Phase.Handshake ? (this.channel?.waitingSince ?? null) : null;
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
    const phase = this.life.phase;
    if (phase === Phase.Handshake) {
      if (now >= this.handshakeDeadline) this.endHandshake('handshake_timeout', new HandshakeTimeoutError(this.ctx.config.handshakeTimeoutMs));
      return;
    }
    if (phase === Phase.Closed || this.fwd.enforceQueryTimeout(now, this.ctx.config.queryTimeoutMs)) return;
    if (phase !== Phase.Idle) return;
    const idleTimeout = this.ctx.config.idleTimeoutMs;
    if (idleTimeout > 0 && now - this.lastActivity > idleTimeout) {
      this.socket.write(errFrameForError(0, new IdleTimeoutError(idleTimeout)));
      this.close('idle timeout', true);
      return;
    }
    this.fwd.giveBackIdle(now);
  }

  // ---- topology ------------------------------------------------------------------------------

  private loggedIn(): boolean {
    const phase = this.life.phase;
    return phase !== Phase.Handshake && phase !== Phase.Closed;
  }

  /** Still on a primary the topology retired: its transaction or command in flight is finishing there. */
  holdsRetiredPrimary(): boolean {
    return this.loggedIn() && this.fwd.backends.holdsRetiredPrimary();
  }

  /** The primary's connections were retired (see CommandForwarder.onPrimaryRetired). */
  onPrimaryRetired(cause: string, action: 'close' | 'drain'): void {
    if (this.loggedIn()) this.fwd.onPrimaryRetired(cause, action);
  }

  /** Replica connections whose node moved or left the read set are dropped when idle. */
  onReplicasChanged(): void {
    if (this.loggedIn()) this.fwd.onReplicasChanged();
  }

  /** KILL QUERY from another session: cut the command in flight or being set up, if any. */
  interruptQuery(): void {
    if (this.loggedIn()) this.fwd.interrupt();
  }

  // ---- command loop --------------------------------------------------------------------------

  /** Reads the frames waiting, as the phase wants them: commands, a command's rest, an auth reply. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const phase = this.life.phase;
        if (phase === Phase.Auth) {
          const auth = this.dispatch.auth;
          if (auth === null || !auth.waiting) break;
          const v = this.reader.nextPacketViewUntilNextRead();
          if (v === null) break;
          auth.deliver(Buffer.from(v.payload), v.lastSequenceId);
          continue;
        }
        if (!this.life.readsClient()) break;
        const view = this.reader.nextFrameViewUntilNextRead();
        if (view === null) break;
        if (phase === Phase.Sending) this.fwd.continueCommand(view);
        else if (phase === Phase.Uploading) this.fwd.continueUpload(view);
        else if (phase === Phase.Discarding) this.dispatch.discardFrame(view);
        else {
          this.lastActivity = this.fwd.commandAt;
          this.dispatch.onCommand(view);
        }
      }
    } catch (error) {
      // The client broke framing (bad sequence id, oversize packet): tell it and hang up.
      this.fatal(error);
    } finally {
      this.pumping = false;
    }
    // Auth reads one packet at a time, on the authenticator's request: the buffer stays paused.
    if (this.life.readsClient() && this.life.phase !== Phase.Auth) this.flow.bufferRead();
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

  /** The session as its CommandForwarder sees it. */
  private forwardingHost(): ForwardingHost {
    return {
      ctx: this.ctx,
      flow: this.flow,
      life: this.life,
      stableFrame: (view) => this.stableFrame(view),
      countError: (error) => this.dispatch.countError(error),
    };
  }

  /** A move command-lifecycle.ts does not allow: this session's state is unknown, so it ends. */
  private phaseBug(phase: Phase, event: CommandEvent): void {
    const from = PHASE_NAMES[phase] as string;
    const on = EVENT_NAMES[event] as string;
    this.ctx.metrics.commandPhaseBugs.inc({ phase: from, event: on });
    this.ctx.logger.error('BUG: impossible command phase move; closing the session', { connection: this.connectionId, phase: from, event: on });
    this.close(`BUG: ${on} in phase ${from}`);
  }

  /** The client broke the protocol: ERR (best effort) and close. */
  private fatal(error: unknown, seq = this.reader.nextSequenceId): void {
    this.ctx.metrics.errors.inc({ kind: describeForClient(error).kind.toLowerCase() });
    this.ctx.logger.info('closing client connection after a protocol error', { connection: this.connectionId, error: error instanceof Error ? error.message : String(error) });
    if (!this.socket.destroyed) this.socket.write(errFrameForError(seq, error));
    this.close('protocol error', true);
  }

  /** Closes the client connection and gives back or destroys every backend connection. */
  close(reason: string, flush = false): void {
    if (this.life.isClosed()) return;
    const wasLoggedIn = this.life.phase !== Phase.Handshake;
    this.life.move(CommandEvent.Close);
    this.closeReason = reason;
    this.flow.stop();
    if (wasLoggedIn && this.dispatch !== undefined) {
      this.dispatch.auth?.abandon();
      this.dispatch.auth = null;
    }
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
    if (this.life.phase === Phase.Idle) this.socket.write(errFrameForError(0, new ShuttingDownError()));
    this.close('proxy shutting down', true);
  }

  /** Why this session keeps backend connections between statements now, or null (multiplexed, or not logged in). */
  holdReason(): string | null {
    return this.loggedIn() ? this.fwd.backends.holdReason() : null;
  }

  describe(): Record<string, unknown> {
    return { connection: this.connectionId, user: this.userName, mode: PHASE_NAMES[this.life.phase], reason: this.closeReason, tls: this.isTls, sharedReads: this.relay !== null };
  }
}
