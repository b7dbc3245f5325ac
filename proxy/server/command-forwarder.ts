/**
 * The backend side of one client session: a command the session decided to forward becomes a
 * Job, goes to a backend connection (session-backends.ts picks and syncs it), and its response
 * comes back frame by frame through `onBackendFrame` (this is the connections' BackendSink) on
 * its way to the client (response-batch.ts); a connection lost on the way becomes the error that
 * says what is known. The session (client-session.ts, command-dispatch.ts) owns the client
 * socket and the commands the proxy answers itself; both sides move the command's one lifecycle
 * (command-lifecycle.ts), which owns the phase and the in-flight record.
 *
 * Hot path: when a synced idle connection is ready (ready-connection.ts), `forward` writes the
 * job's frame to it at once — no promise. Only when a connection must be opened, state replayed,
 * a statement re-prepared or a write held does `setup` run async; meanwhile the session reads
 * nothing more from the client.
 *
 * Losses: a backend connection lost mid-command gets an ERR that says what is known —
 * "transaction rolled back" inside a transaction, "outcome unknown" for a write, "retry" for a
 * read (command-job.ts lostCommandErrors); a transaction lost while the client was idle is owed
 * to the client and reported on its next command.
 */

import type { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { Command, isErrPacket, parseErr, ResponseStep, ServerStatus, type PacketView } from '../protocol';
import type { Classification } from '../routing/classifier';
import { commitPlan } from './outcome-token';
import { acquireFor, readyForCommand } from './command-setup';
import { requestNamesFile, unforwardableStep } from './local-infile';
import { readyConnection } from './ready-connection';
import { stopOnBackend } from './statement-stop';
import type { BackendConnection, BackendSink } from './backend-connection';
import { CommandEvent, Phase, type CommandLifecycle } from './command-lifecycle';
import { commandLabel, jobFields, lostCommandErrors, mayWrite, newJob, statementFrame, type Inflight, type Job, type JobFields } from './command-job';
import { LocalInfileRefusedError, NoTopologyError, QueryInterruptedError, QueryTimeoutError, SessionStateLostError, TransactionLostError, errFrameForError } from './errors';
import { doltErrorAdvice } from './dolt-error-advice';
import { HoldEpisodeOverError, HoldTimeoutError } from '../hold/hold-errors';
import type { FlowControl } from './flow-control';
import { placementOn, writeStatementId, type StatementPlacement } from './prepared-statements';
import { ResponseBatch } from './response-batch';
import { SessionBackends, type SessionIdentity } from './session-backends';
import type { SessionContext } from './session-context';

/** What the forwarder needs of its session. */
export interface ForwardingHost {
  readonly ctx: SessionContext;
  readonly flow: FlowControl;
  /** The command's phase and in-flight record, shared with the session (command-lifecycle.ts). */
  readonly life: CommandLifecycle;
  /** `view`'s frame in memory that outlives the client reader's next read. */
  stableFrame(view: PacketView): Buffer;
  countError(error: unknown): void;
}

const NO_FIELDS: JobFields = jobFields({});

/** How often one command's setup may start over because the topology retired its connection. */
const MAX_SETUP_ATTEMPTS = 4;

export class CommandForwarder implements BackendSink {
  readonly identity: SessionIdentity;
  readonly backends: SessionBackends;
  /** Status flags of the primary's last answer (NO_BACKSLASH_ESCAPES decides how SQL is read). */
  lastStatus = ServerStatus.SERVER_STATUS_AUTOCOMMIT;
  /**
   * The clock as of the latest event that can start a command: client bytes arriving (set by the
   * session), or the previous response ending (pipelined commands). One read serves routing and timing.
   */
  commandAt = 0;
  /** Response frames forwarded but not yet written to the client. */
  private readonly out: ResponseBatch;
  /** Why the proxy is closing the primary connection (topology change). */
  private primaryCloseCause: string | null = null;
  /** The primary connection broke, with a transaction open, while a command was being set up. */
  private setupLostTransaction: TransactionLostError | null = null;
  /** Cancels the async part of the command being set up (client gone, or KILL QUERY). */
  private setupAbort: AbortController | null = null;

  constructor(
    private readonly host: ForwardingHost,
    private readonly client: Socket,
    session: Omit<SessionIdentity, 'sink'>,
  ) {
    this.identity = { ...session, sink: this };
    this.out = new ResponseBatch(client, host.flow);
    const ctx = host.ctx;
    this.backends = new SessionBackends(this.identity, ctx.view, ctx.pools, ctx.config.routing.readYourWritesMs, ctx.now, ctx.config.pool.multiplexing);
  }

  // ---- commands --------------------------------------------------------------------------------

  job(command: number, view: PacketView, routing: Classification, mayWrite: boolean, fields: JobFields = NO_FIELDS): Job {
    const tokens = this.host.ctx.outcomeTokens;
    const plan = tokens === null || !tokens.enabled ? 'none' : commitPlan(routing, mayWrite, this.backends.inTransaction || !this.backends.autocommit, this.identity.state.setsCommitMessage);
    return newJob(command, this.backends.decide(routing, this.commandAt), mayWrite, plan, this.host.stableFrame(view), view.endsPacket, view.sequenceId, fields);
  }

  /** Sends the job now if a connection is ready, else goes async (connect, replay, hold). */
  forward(job: Job): void {
    const conn = readyConnection(job, this.backends, this.host.ctx.view.selector, this.commandAt);
    if (conn !== null) {
      this.send(conn, job, this.commandAt);
      return;
    }
    // job.frame is stable (see ForwardingHost.stableFrame): it may wait for the async path.
    if (!this.host.life.move(CommandEvent.SetUp)) return;
    const abort = new AbortController();
    this.setupAbort = abort;
    this.setup(job, abort.signal).catch((error: Error) => this.setupFailed(job, error));
  }

  /** A continuation frame of the command being sent (over 16 MiB). */
  continueCommand(view: PacketView): void {
    const life = this.host.life;
    const f = life.inflight;
    if (f === null) return;
    if (!f.conn.write(this.host.stableFrame(view))) this.host.flow.backendFull(f.conn);
    if (!view.endsPacket) return;
    f.job.seq = view.lastSequenceId;
    f.conn.reader.resetSequence((view.lastSequenceId + 1) & 0xff);
    if (f.expects) life.move(CommandEvent.Await);
    else life.end();
  }

  /** A frame of a LOAD DATA LOCAL's file (local-infile.ts); its empty packet ends it, the server's answer follows. */
  continueUpload(view: PacketView): void {
    const life = this.host.life;
    const f = life.inflight;
    if (f === null) return;
    if (!f.conn.write(this.host.stableFrame(view))) this.host.flow.backendFull(f.conn);
    if (view.payloadLength !== 0 || !view.startsPacket) return;
    f.lastForwardedSeq = view.lastSequenceId; // an ERR for a loss now follows the file's end
    f.conn.reader.resetSequence((view.lastSequenceId + 1) & 0xff);
    life.move(CommandEvent.Await);
  }

  private async setup(job: Job, signal: AbortSignal): Promise<void> {
    this.setupLostTransaction = null;
    for (let attempt = 1; ; attempt++) {
      let conn: BackendConnection | null = null;
      try {
        conn = await acquireFor(job, this.backends, signal);
        await readyForCommand(job, conn, this.host.ctx, () => this.host.life.isClosed());
      } catch (error) {
        if (conn === null || !this.retiredDuringSetup(job, conn)) throw error;
        if (attempt >= MAX_SETUP_ATTEMPTS) throw new NoTopologyError('the primary kept changing while this command was being set up; it was not executed');
        continue;
      }
      if (this.host.life.isClosed()) {
        // The client left while we connected: whatever was opened goes back (or away).
        this.backends.releaseAll();
        return;
      }
      // Its transaction went with the old primary connection: never run it on another in autocommit.
      if (this.setupLostTransaction !== null) throw this.setupLostTransaction;
      if (this.retiredDuringSetup(job, conn)) {
        if (attempt >= MAX_SETUP_ATTEMPTS) throw new NoTopologyError('the primary kept changing while this command was being set up; it was not executed');
        continue;
      }
      this.setupAbort = null;
      this.commandAt = this.host.ctx.now();
      // Frames that arrived meanwhile (the rest of a large command, or the next command) are
      // read by the move out of setup (command-lifecycle.ts).
      this.send(conn, job, this.commandAt);
      return;
    }
  }

  /**
   * The topology retired the primary connection while the setup was still talking to it (arming
   * the outcome token, selecting the database): the command itself was never sent, so it starts
   * over — and waits in the write hold — rather than failing (design.md safety 5: a write that
   * was never sent is never an error while the hold lasts). Not when its transaction went with
   * the connection: that is the client's to hear.
   */
  private retiredDuringSetup(job: Job, conn: BackendConnection): boolean {
    if (job.route !== 'primary' || job.fixedConn !== null || this.setupLostTransaction !== null) return false;
    if (!conn.isClosed && this.host.ctx.view.primaryUsable(conn.generation, conn.inTransaction)) return false;
    if (conn === this.backends.primary) this.backends.drop(conn);
    return true;
  }

  private setupFailed(job: Job, failure: Error): void {
    this.setupAbort = null;
    const lostTransaction = this.setupLostTransaction;
    this.setupLostTransaction = null;
    if (this.host.life.isClosed()) return;
    let error = failure;
    if (lostTransaction !== null) {
      // The command belonged to the transaction that ended with the connection, and was never
      // sent: it hears that now, once (not a second time on the next command).
      error = lostTransaction;
      this.host.life.owed = null;
    }
    this.host.countError(error);
    if (error instanceof HoldTimeoutError) this.host.ctx.metrics.holdTimeouts.inc();
    else if (error instanceof HoldEpisodeOverError) this.host.ctx.metrics.holdCutOffs.inc();
    // No response exists for long data; the execute that follows will report the failure.
    this.finishUnsent(job, job.command === Command.COM_STMT_SEND_LONG_DATA ? null : error);
  }

  /** Ends a job that did not reach a backend: reply now, or after skipping its remaining frames. */
  private finishUnsent(job: Job, error: Error | null): void {
    if (!job.endsPacket) {
      this.host.life.discardRest(error);
      return;
    }
    if (error !== null) this.client.write(errFrameForError(job.seq + 1, error));
    this.host.life.end();
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
        this.finishUnsent(job, built);
        return;
      }
      frame = built;
      if (job.command === Command.COM_STMT_EXECUTE) {
        if (job.layout !== null && (job.layout.bound || stmt.types !== null)) placement.typesSent = true;
        stmt.longDataConn = null;
        stmt.longDataBytes = 0;
        stmt.lastConn = conn;
      } else if (job.command === Command.COM_STMT_SEND_LONG_DATA) {
        stmt.longDataConn = conn;
      }
    }
    conn.sink = this;
    if (job.command === Command.COM_STMT_PREPARE) conn.preparedOnly = true;
    else if (job.command === Command.COM_QUERY || job.command === Command.COM_STMT_EXECUTE) conn.preparedOnly = false;
    const expects = conn.tracker.begin(job.command);
    if (job.endsPacket) conn.reader.resetSequence((job.seq + 1) & 0xff);
    const replica = job.route === 'replica' && job.replica !== undefined ? job.replica : job.route === 'previous' && conn.role === 'replica' ? conn.target.name : null;
    const selector = this.host.ctx.view.selector;
    if (replica !== null) selector.begin(replica);
    const life = this.host.life;
    life.begin({ job, conn, replica, startedAt, wasInTransaction: this.backends.inTransaction || !this.backends.autocommit, expects, lastForwardedSeq: -1, failure: null, stopping: null, killSettled: false });
    if (!conn.write(frame)) this.host.flow.backendFull(conn);
    if (!job.endsPacket) life.sendRest();
    else if (expects) life.move(CommandEvent.Await);
    else life.end();
  }

  // ---- responses (BackendSink) -----------------------------------------------------------------

  beginBatch(): void {}

  endBatch(): void {
    this.out.flush();
  }

  onBackendFrame(conn: BackendConnection, view: PacketView, step: ResponseStep): void {
    const life = this.host.life;
    const f = life.inflight;
    if (f === null || f.conn !== conn || life.isClosed()) {
      conn.destroy(new Error('backend sent data nobody asked for'));
      return;
    }
    if (life.phase === Phase.Uploading) {
      // An answer before the file's end would leave the client's remaining file packets to be
      // read as commands: the connection goes, the rest of the file is skipped (onBackendClose).
      f.failure = new LocalInfileRefusedError(`${conn.name} answered before the whole file was sent`);
      conn.destroy(f.failure);
      return;
    }
    if (f.job.prepare !== null && f.lastForwardedSeq < 0 && view.startsPacket && view.firstByte === 0) {
      writeStatementId(view.payloadBuffer, view.payloadStart, f.job.prepare.clientId);
    }
    if (f.stopping !== null && step === ResponseStep.Done && view.frameCount === 1 && isErrPacket(view.firstByte)) {
      // Dolt ended the statement the proxy asked it to stop: the client hears why, in its words.
      this.out.flush();
      this.host.countError(f.stopping);
      this.client.write(errFrameForError(view.sequenceId, f.stopping));
      f.lastForwardedSeq = view.lastSequenceId;
      this.responseDone(f);
      return;
    }
    if (step === ResponseStep.Done && f.lastForwardedSeq < 0 && view.frameCount === 1 && isErrPacket(view.firstByte)) {
      const err = parseErr(view.payload);
      const advice = doltErrorAdvice(err.errno, err.message);
      if (advice !== null) {
        this.out.flush();
        this.client.write(errFrameForError(view.sequenceId, advice));
        f.lastForwardedSeq = view.lastSequenceId;
        this.responseDone(f, true);
        return;
      }
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
    if (step === ResponseStep.LocalInfile && f.job.localInfile !== null && life.phase === Phase.Awaiting && view.startsPacket && view.endsPacket && requestNamesFile(view.payload, f.job.localInfile)) {
      // The server asks for the very file the statement named: the client sends it (local-infile.ts).
      this.out.add(conn, view);
      this.out.flush();
      f.lastForwardedSeq = view.lastSequenceId;
      life.upload((view.lastSequenceId + 1) & 0xff);
      return;
    }
    f.failure = unforwardableStep(step === ResponseStep.LocalInfile, f.job.localInfile, conn.name);
    conn.destroy(f.failure);
  }

  /** `wedged`: Dolt left the backend session failing every statement (dolt-error-advice.ts): close it. */
  private responseDone(f: Inflight, wedged = false): void {
    const conn = f.conn;
    const job = f.job;
    const ctx = this.host.ctx;
    // Detached first: a connection closed below is then no longer this command's loss.
    this.host.life.detach();
    const errno = conn.tracker.errno;
    const status = conn.tracker.statusFlags;
    if (conn === this.backends.primary || conn.role === 'primary') this.lastStatus = status;
    const now = ctx.now();
    this.commandAt = now;
    ctx.metrics.recordQuery(conn.role, commandLabel(job.command), (now - f.startedAt) / 1000);
    ctx.countQuestion();
    this.backends.noteDone(conn, job.effects, errno, now);
    if (errno === 0) {
      const state = this.identity.state;
      if (job.initDb !== null) {
        state.database = job.initDb;
        conn.database = job.initDb;
      }
      if (job.prepare !== null) {
        const t = conn.tracker;
        const c = job.prepare.classification;
        this.identity.statements.add({ clientId: job.prepare.clientId, sql: job.prepare.sql, classification: c, mayWrite: mayWrite(c), paramCount: t.paramCount, columnCount: t.columnCount }, conn, t.statementId);
      }
    }
    // A draining primary connection whose transaction just ended is retired now.
    if (conn === this.backends.primary && this.backends.primaryRetired()) {
      this.primaryCloseCause = ctx.view.lastChange;
      this.backends.drop(conn);
      this.primaryCloseCause = null;
    }
    // A KILL QUERY still on its way would stop whatever this connection runs next.
    if (wedged || (f.stopping !== null && !f.killSettled)) this.closeWedged(conn);
    this.backends.giveBackIdle(this.commandAt);
    this.host.life.end();
  }

  /**
   * After Dolt's failed commit the backend session fails every statement until a ROLLBACK (pinned
   * in test/integration/dolt-new-database-facts.test.ts), so the session gets a fresh connection
   * for its next command. What lived only on this one is reported, as for any lost connection.
   * Also used for a connection a KILL QUERY may still hit.
   */
  private closeWedged(conn: BackendConnection): void {
    const wasPrimary = conn === this.backends.primary;
    // With autocommit off the failed statement's implicit transaction is lost too.
    const inTransaction = conn.inTransaction || !this.backends.autocommit;
    this.backends.drop(conn);
    if (wasPrimary) this.loseIdle(inTransaction, 'Dolt refused the commit and doltgate replaced the backend connection');
  }

  onBackendClose(conn: BackendConnection, error: Error | null): void {
    const life = this.host.life;
    if (life.isClosed()) return;
    // What was forwarded before the loss goes out before the ERR about it.
    this.out.flush();
    const wasPrimary = conn === this.backends.primary;
    const inTransaction = conn.inTransaction;
    this.backends.forget(conn);
    this.host.flow.forget(conn);
    const cause = error === null ? this.primaryCloseCause ?? 'the proxy closed the connection' : `lost the connection to ${conn.name}: ${error.message}`;
    const f = life.inflight;
    if (f !== null && f.conn === conn && this.resendsRead(f)) return;
    if (f !== null && f.conn === conn) {
      life.detach();
      const onPrimary = wasPrimary || conn.role === 'primary';
      const lost = lostCommandErrors({ onPrimary, wasInTransaction: f.wasInTransaction, effects: f.job.effects, mayWrite: f.job.mayWrite, backend: conn.name, outcomeToken: f.job.outcomeToken }, cause);
      const reply = f.failure ?? lost.reply;
      this.host.countError(reply);
      // The transaction is gone with the connection; the next statement must not run in
      // autocommit as if nothing happened.
      if (lost.transactionLost || (f.failure !== null && onPrimary && f.wasInTransaction)) life.owed = new TransactionLostError(cause);
      const state = this.identity.state;
      if (wasPrimary && state.pinned) state.pins.clear();
      if (life.phase === Phase.Sending || life.phase === Phase.Uploading) {
        life.discardRest(reply);
        return;
      }
      const seq = f.lastForwardedSeq >= 0 ? f.lastForwardedSeq + 1 : f.job.seq + 1;
      if (!this.client.destroyed) this.client.write(errFrameForError(seq, reply));
      life.end();
      return;
    }
    if (wasPrimary && life.phase !== Phase.Setup) this.loseIdle(inTransaction, cause);
    else if (wasPrimary && inTransaction) {
      life.owed = new TransactionLostError(cause);
      // The command being set up belongs to that transaction: it must not run (setup), and hears this.
      this.setupLostTransaction = new TransactionLostError(cause);
    }
  }

  /**
   * A read whose connection was lost before any of its answer reached the client is sent again,
   * once, on a connection chosen afresh: Dolt kills every other connection of a node whose cluster
   * role changes, and a replica may restart, and neither is the client's to hear. Invariant: only
   * a statement that cannot have changed anything (a read outside any transaction, no session
   * effect, the whole command sent) is sent twice, and only when the client has seen none of the
   * first answer.
   */
  private resendsRead(f: Inflight): boolean {
    const job = f.job;
    if (job.resent || job.mayWrite || f.wasInTransaction || f.lastForwardedSeq >= 0 || f.failure !== null || f.stopping !== null) return false;
    if (!job.endsPacket || job.fixedConn !== null || job.localInfile !== null || job.prepare !== null) return false;
    if (job.command !== Command.COM_QUERY && job.command !== Command.COM_STMT_EXECUTE) return false;
    const c = job.effects;
    if (c !== null && (c.sessionState.length > 0 || c.startsTransaction || c.endsTransaction)) return false;
    const life = this.host.life;
    if (life.phase !== Phase.Awaiting) return false;
    life.detach();
    if (!life.move(CommandEvent.SetUp)) return true;
    job.resent = true;
    // Chosen again: the replica it went to may be the node whose role changed.
    job.replica = undefined;
    this.host.ctx.metrics.readsResent.inc();
    const abort = new AbortController();
    this.setupAbort = abort;
    this.setup(job, abort.signal).catch((error: Error) => this.setupFailed(job, error));
    return true;
  }

  /** The primary connection went away between commands: remember what the client lost. */
  private loseIdle(inTransaction: boolean, cause: string): void {
    const state = this.identity.state;
    if (inTransaction || !this.backends.autocommit) {
      if (inTransaction) this.host.life.owed = new TransactionLostError(cause);
      this.backends.autocommit = true;
    } else if (state.pinned) {
      this.host.life.owed = new SessionStateLostError(cause, [...state.pins]);
    }
    state.pins.clear();
  }

  /**
   * A pinned session's primary connection was retired while the session was idle: it goes now,
   * and the client is owed the news. True when that happened.
   */
  dropRetiredPinnedPrimary(): boolean {
    const p = this.backends.primary;
    if (!this.identity.state.pinned || p === null || p.inTransaction || !this.backends.primaryRetired()) return false;
    this.backends.forget(p);
    p.destroy(null);
    this.loseIdle(false, this.host.ctx.view.lastChange);
    return true;
  }

  // ---- topology, timers, interruption, end ------------------------------------------------------

  /**
   * The primary's connections were retired. `close` (failover, a new primary): the connection
   * goes now, even mid-command (that client gets the matching error). `drain` (switchover): the
   * old primary still works, so a command in flight finishes and an open transaction may go on
   * until it ends; only an idle connection without a transaction goes now.
   */
  onPrimaryRetired(cause: string, action: 'close' | 'drain'): void {
    const p = this.backends.primary;
    if (p === null || !this.backends.primaryRetired()) return;
    // A command in flight, or still being set up on it (its outcome token armed), finishes first.
    if (action === 'drain' && (this.host.life.inflight?.conn === p || this.setupAbort !== null)) return;
    this.primaryCloseCause = cause;
    p.destroy(null);
  }

  /** Replica connections whose node moved or left the read set are dropped when idle. */
  onReplicasChanged(): void {
    const running = this.host.life.inflight?.conn;
    for (const conn of [...this.backends.replicas.values()]) {
      if (conn !== running && !this.backends.usable(conn)) this.backends.drop(conn);
    }
  }

  /** Cuts the command in flight once it has run longer than `timeoutMs`; true when it did. */
  enforceQueryTimeout(now: number, timeoutMs: number): boolean {
    const f = this.host.life.inflight;
    if (f === null || timeoutMs <= 0 || now - f.startedAt <= timeoutMs) return false;
    if (f.stopping === null) stopOnBackend(f, (why) => new QueryTimeoutError(timeoutMs, f.conn.name, f.job.mayWrite, why), this.host.life, this.host.ctx.pools, this.identity.login);
    return true;
  }

  /** KILL QUERY: a command waiting in setup ends with 1317; one in flight is stopped on Dolt. */
  interrupt(): void {
    if (this.setupAbort !== null) {
      // Waiting in the write hold or connecting: nothing was sent yet.
      this.setupAbort.abort();
      return;
    }
    const f = this.host.life.inflight;
    if (f === null || f.stopping !== null) return;
    stopOnBackend(f, (why) => new QueryInterruptedError(f.job.mayWrite, f.conn.name, why), this.host.life, this.host.ctx.pools, this.identity.login);
  }

  /** The session is idle: connections that lingered for a follow-up, or were kept by a reason now gone, go back. */
  giveBackIdle(now: number): void {
    if (this.host.life.inflight === null && this.setupAbort === null) this.backends.giveBackIdle(now);
  }

  /** COM_RESET_CONNECTION / COM_CHANGE_USER: every backend connection goes back to the pools. */
  reset(): void {
    this.backends.releaseAll();
    this.lastStatus = ServerStatus.SERVER_STATUS_AUTOCOMMIT;
  }

  /** The session is closing: flush what was forwarded, cut what is in flight, give back the rest. */
  abandon(): void {
    this.out.flush();
    this.setupAbort?.abort();
    const f = this.host.life.detach();
    if (f !== null) {
      // Mid-command: the backend's state is unknown, so its connection cannot be reused.
      this.backends.forget(f.conn);
      f.conn.destroy(null);
    }
    this.backends.releaseAll();
  }
}
