/**
 * What the proxy does with each command a logged-in client sends: the command byte (and for
 * COM_QUERY the plan of query-plan.ts, for COM_STMT_* that of statement-commands.ts) decides
 * between answering here, refusing, forwarding (command-forwarder.ts), killing, changing user or
 * resolving an outcome token. client-session.ts reads the frames; this file decides and answers;
 * every command ends through the lifecycle's one exit (command-lifecycle.ts).
 *
 * Answered here: COM_PING, COM_QUIT, COM_RESET_CONNECTION, COM_CHANGE_USER (re-auth against the
 * proxy users; Dolt does not implement it), COM_SET_OPTION and COM_STATISTICS (Dolt does not
 * implement it either; the proxy reports its own figures), KILL [QUERY|CONNECTION] and
 * COM_PROCESS_KILL (the proxy's connection ids, kill-command.ts), `SELECT doltgate_outcome(…)`.
 * Forwarded: COM_QUERY, COM_STMT_* (ids remapped), COM_INIT_DB, COM_FIELD_LIST. LOAD DATA LOCAL
 * INFILE is refused unless the user may relay files (local-infile.ts); any other command gets
 * ER_UNKNOWN_COM_ERROR and the connection stays usable.
 *
 * What a lost backend connection cost the client while it was idle is owed (`life.owed`) and
 * answers its next command that gets a response (a ROLLBACK is then simply answered OK).
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import type { ProxyUser } from '../config';
import {
  Capability,
  Command,
  comStmtCloseFrame,
  eofFrame,
  expectsResponse,
  frame as frameOf,
  hasFlag,
  okFrame,
  type PacketReader,
  type PacketView,
  parseChangeUser,
  ServerStatus,
  textResultSetFrames,
} from '../protocol';
import { classifyQuery, type Classification } from '../routing/classifier';
import { ChangeUserExchange } from './change-user';
import { CommandEvent, type CommandLifecycle } from './command-lifecycle';
import type { CommandForwarder } from './command-forwarder';
import { jobFields, READ_CLASSIFICATION as READ } from './command-job';
import { BackendErrorReply, describeForClient, errFrameForError, MalformedCommandError, OutcomeTokenError, TransactionLostError, UnknownCommandError } from './errors';
import { KILL_NEEDS_LITERAL_ID, planKill, type KillableSession, type KillRequest } from './kill-command';
import { heldVerdict } from './login-verdict';
import { resolveOutcome } from './outcome-resolver';
import { parseOutcomeToken } from './outcome-token';
import type { StatementRegistry } from './prepared-statements';
import { planQuery } from './query-plan';
import type { SessionContext } from './session-context';
import type { SessionState } from './session-state';
import { planStatementCommand } from './statement-commands';

/** A session as KILL sees it: who owns it, and the two ways to stop it. */
export interface DispatchSession extends KillableSession {
  interruptQuery(): void;
  close(reason: string, flush?: boolean): void;
}

/** What the dispatcher needs of the client-socket side (client-session.ts). */
export interface ClientLink<S extends DispatchSession> {
  /** The session itself, as KILL names sessions. */
  readonly session: S;
  readonly connectionId: number;
  readonly clientAddress: string;
  readonly isTls: boolean;
  /** The logged-in socket (it stays this one from login on). */
  readonly socket: Socket;
  readonly reader: PacketReader;
  /** Read the client frames waiting (the change-user exchange wants its next packet). */
  pump(): void;
  /** The client broke the protocol: ERR (best effort) and close. */
  fatal(error: unknown, seq?: number): void;
}

export interface DispatchLogin {
  user: ProxyUser;
  capabilities: number;
  scramble: Buffer;
}

export class CommandDispatch<S extends DispatchSession> {
  /** The proxy user now (COM_CHANGE_USER changes it). */
  user: ProxyUser;
  private readonly capabilities: number;
  private readonly scramble: Buffer;
  /** LOAD DATA LOCAL may relay this client's file (local-infile.ts): its user may, and it enabled local files. */
  private relaysFiles: boolean;
  /** The COM_CHANGE_USER exchange in progress (phase auth). */
  auth: ChangeUserExchange | null = null;
  /** COM_STMT_PREPARE's classifier, made once per session rather than once per command. */
  private readonly classifyDefault = (sql: string): Classification => classifyQuery(sql, this.ctx.classifierOptions(false));
  private readonly classifyNoBackslashEscapes = (sql: string): Classification => classifyQuery(sql, this.ctx.classifierOptions(true));

  constructor(
    private readonly link: ClientLink<S>,
    private readonly ctx: SessionContext<S>,
    private readonly life: CommandLifecycle,
    private readonly fwd: CommandForwarder,
    private readonly state: SessionState,
    private readonly statements: StatementRegistry,
    login: DispatchLogin,
  ) {
    this.user = login.user;
    this.capabilities = login.capabilities;
    this.scramble = login.scramble;
    this.relaysFiles = login.user.allowLocalInfile && hasFlag(login.capabilities, Capability.CLIENT_LOCAL_FILES);
  }

  onCommand(view: PacketView): void {
    if (view.payloadLength === 0) {
      this.refuse(view, new MalformedCommandError('empty command packet'));
      return;
    }
    const command = view.firstByte;
    // An owed ERR goes out only as the answer to a command that gets one: COM_STMT_SEND_LONG_DATA
    // and COM_STMT_CLOSE are never answered, and an ERR to them would put the client one
    // response behind for good (found by bench:fuzz); the execute that follows hears it instead.
    const answered = expectsResponse(command);
    if (this.life.owed !== null && answered && command !== Command.COM_PING && command !== Command.COM_RESET_CONNECTION && command !== Command.COM_CHANGE_USER) {
      this.deliverOwed(view, command);
      return;
    }
    // A primary connection retired under an idle session: say what was lost before going on.
    if (answered && this.fwd.dropRetiredPinnedPrimary()) {
      this.deliverOwed(view, command);
      return;
    }
    switch (command) {
      case Command.COM_QUIT:
        this.link.session.close('client sent COM_QUIT');
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
    const plan = planQuery(sql, c, noBackslashEscapes, this.state, this.relaysFiles, this.ctx.view.clusterReplication);
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
        this.fwd.forward(this.fwd.job(Command.COM_QUERY, view, c, plan.mayWrite, jobFields({ effects: c, selectDatabase: plan.selectDatabase, localInfile: plan.localInfile })));
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
    if (!this.life.move(CommandEvent.SetUp)) return;
    const seq = view.lastSequenceId + 1;
    const clusterView = this.ctx.view;
    const node = (name: string) => (clusterView.primary?.name === name ? clusterView.primary : clusterView.replica(name));
    resolveOutcome(token, { pools: this.ctx.pools, login: this.fwd.identity.login, primary: clusterView.primary, node, ranOn: parsed.node }).then(
      (answer) => {
        this.ctx.metrics.outcomeQueries.inc({ verdict: answer.verdict });
        if (this.life.isClosed()) return;
        for (const f of textResultSetFrames(seq, ['outcome', 'detail'], [[answer.verdict, answer.detail]], this.statusFlags(), this.capabilities)) this.link.socket.write(f);
        this.life.end();
      },
      (error: Error) => {
        if (this.life.isClosed()) return;
        this.link.socket.write(errFrameForError(seq, error));
        this.life.end();
      },
    );
  }

  /** KILL [QUERY|CONNECTION] and COM_PROCESS_KILL, planned by kill-command.ts. */
  private onKill(view: PacketView, request: KillRequest): void {
    const plan = planKill<S>(this.link.session, request, (n) => this.ctx.findSession(n));
    switch (plan.action) {
      case 'refuse':
        this.refuse(view, plan.error);
        return;
      case 'close-self':
        this.link.session.close('killed itself');
        return;
      case 'interrupt':
        plan.target.interruptQuery();
        break;
      case 'close':
        plan.target.close(`killed by connection ${this.link.connectionId}`);
        break;
      case 'ok':
        break;
    }
    this.reply(okFrame(view.lastSequenceId + 1, { statusFlags: this.statusFlags() }, this.capabilities));
  }

  /** COM_STMT_*: planned by statement-commands.ts, carried out here. */
  private onStatementCommand(view: PacketView): void {
    const noBackslashEscapes = hasFlag(this.fwd.lastStatus, ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES);
    const plan = planStatementCommand(view, this.statements, noBackslashEscapes ? this.classifyNoBackslashEscapes : this.classifyDefault, this.ctx.config.maxAllowedPacket, this.ctx.view.clusterReplication);
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
        if (view.endsPacket) this.life.end();
        else this.life.discardRest(null);
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
   * A frame of a command being skipped; its last one gets the command's ERR, if it has one. The
   * last of a file upload's is the empty packet that ends the file.
   */
  discardFrame(view: PacketView): void {
    if (this.life.discardsUpload ? !(view.payloadLength === 0 && view.startsPacket) : !view.endsPacket) return;
    const error = this.life.takeDiscardReply();
    if (error !== null) this.link.socket.write(errFrameForError(view.lastSequenceId + 1, error));
    this.life.end();
  }

  private deliverOwed(view: PacketView, command: number): void {
    const error = this.life.takeOwed() as Error;
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
      this.link.fatal(error, (view.lastSequenceId + 1) & 0xff);
      return;
    }
    if (!this.life.move(CommandEvent.ChangeUser)) return;
    const socket = this.link.socket;
    const exchange = new ChangeUserExchange(socket, view.lastSequenceId + 1, this.link.isTls, (seq) => {
      this.link.reader.resetSequence(seq);
      this.link.pump();
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
    heldVerdict(this.ctx.loginGate(this.link.clientAddress), cu.username, authentication).then(
      (user) => {
        this.auth = null;
        if (this.life.isClosed()) return;
        this.user = user;
        this.relaysFiles = user.allowLocalInfile && hasFlag(this.capabilities, Capability.CLIENT_LOCAL_FILES);
        this.fwd.identity.login = this.ctx.loginFor(user);
        if (cu.charset !== null) this.fwd.identity.charset = cu.charset & 0xff;
        this.resetSession(cu.database === '' ? null : cu.database);
        socket.write(okFrame(exchange.seq, { statusFlags: this.statusFlags() }, this.capabilities));
        this.ctx.logger.debug('client changed user', { connection: this.link.connectionId, user: user.name });
        this.fwd.commandAt = this.ctx.now();
        this.life.end();
      },
      (error: Error) => {
        this.auth = null;
        if (this.life.isClosed()) return;
        this.countError(error);
        // MySQL closes the connection after a failed COM_CHANGE_USER.
        socket.write(errFrameForError(exchange.seq, error));
        this.link.session.close(`COM_CHANGE_USER failed: ${error.message}`, true);
      },
    );
  }

  /** COM_RESET_CONNECTION / COM_CHANGE_USER: drop every backend connection and all session state. */
  private resetSession(database: string | null): void {
    this.fwd.reset();
    this.state.reset(database);
    this.statements.clear();
    this.life.owed = null;
  }

  // ---- answers ---------------------------------------------------------------------------------

  statusFlags(): number {
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
    this.life.discardRest(error);
  }

  /** The proxy's own answer to a one-frame command, which ends it. */
  private reply(frame: Buffer): void {
    this.link.socket.write(frame);
    this.life.end();
  }

  countError(error: unknown): void {
    this.ctx.metrics.errors.inc({ kind: describeForClient(error).kind.toLowerCase() });
  }
}

/** COM_FIELD_LIST's table name ends in a NUL inside the packet (the field wildcard follows it). */
function hasNulTerminatedName(view: PacketView): boolean {
  const nul = view.payloadBuffer.indexOf(0, view.payloadStart + 1);
  return nul >= 0 && nul < view.payloadStart + view.payloadLength;
}
