/**
 * The backend connections of one client session and the choice of which one runs a command.
 *
 * Routing (`decide`): the session's facts go to the pure `routeOf` (proxy/routing/route-decision.ts,
 * where the rules and their order are written down).
 *
 * Connections: at most one to the primary and one per replica, taken from the pools when needed.
 * With multiplexing on (the default) a session gives every connection back after each statement
 * or transaction (`giveBackIdle`) unless it must keep it (`holdReason`): an open transaction,
 * autocommit off, a pin (temporary table, lock, user variable, ...), a prepared statement, or a
 * follow-up — the last answer left warnings or an insert id that SHOW WARNINGS or LAST_INSERT_ID()
 * may ask that very connection for, so it lingers `lingerMs` after its last use. With
 * multiplexing off a session keeps its connections for life. Before a connection runs a client
 * command it is brought up to
 * the session's state (`sync`: database, replayable SETs, multi-statement option). A primary
 * connection is usable only at the ClusterView's current primary generation (or, during a
 * switchover drain, inside the transaction it already has open); getting a new one waits in the
 * write hold while the cluster has no primary. A replica that cannot be reached is put in backoff
 * (by the pool's health callback) and the read moves to another replica or the primary.
 *
 * `ready*` are the synchronous hot path (an open, idle, synced connection, or null);
 * `acquire` is the slow path with I/O.
 */

import type { Classification, PinCause } from '../routing/classifier';
import { commitsWrite, defaultReadYourWritesMs, ReadYourWritesWindow } from '../routing/read-your-writes';
import { routeOf, type RouteFacts, type RouteKind } from '../routing/route-decision';
import { hasFlag, ServerStatus } from '../protocol';
import type { BackendConnection, BackendLogin, BackendSink, BackendTarget } from './backend-connection';
import type { AcquireRequest, BackendPools } from './backend-pool';
import { poolLoginKey } from './pool-fit';
import type { ClusterView } from './cluster-view';
import { BackendBusyError, BackendReadOnlyError, BackendUnavailableError, NoTopologyError, QueryInterruptedError } from './errors';
import type { StatementRegistry } from './prepared-statements';
import type { SessionState } from './session-state';
import { holdsState, replayState } from './state-replay';

export type { RouteKind } from '../routing/route-decision';

export interface SessionIdentity {
  readonly state: SessionState;
  readonly statements: StatementRegistry;
  readonly sink: BackendSink;
  login: BackendLogin;
  clientCapabilities: number;
  charset: number;
}


export interface MultiplexOptions {
  /** Give connections back between statements (else: keep them for the session's life). */
  enabled: boolean;
  /** How long a connection whose answer left a follow-up stays with the session. */
  lingerMs: number;
}

/** Why a session keeps its backend connections between statements (the pinned metric's label). */
export type HoldReason = 'transaction' | 'autocommit-off' | 'prepared-statement' | 'multiplexing-off' | PinCause;

/** How many replicas a read tries before it falls back to the primary. */
const MAX_REPLICA_ATTEMPTS = 3;
/**
 * Rounds of acquirePrimary (connect, or wait in the hold) before it gives up; each wait is bounded
 * by the hold's deadline, so this only stops a primary that flaps between usable and not.
 */
const MAX_PRIMARY_ATTEMPTS = 20;

export class SessionBackends {
  primary: BackendConnection | null = null;
  readonly replicas = new Map<string, BackendConnection>();
  /** The connection that ran the last command (for statements that follow the previous one). */
  last: BackendConnection | null = null;
  /** AUTOCOMMIT from the last answer of the primary. */
  autocommit = true;
  /** Refilled for every statement (decide): one object per session, none per statement. */
  private readonly facts: RouteFacts = {
    inTransaction: false, autocommit: true, pinned: false, followsPrevious: false, previousUsable: false,
    classifiedPrimary: false, hintedReplica: false, readYourWritesOpen: false,
  };
  readonly ryw: ReadYourWritesWindow;
  /** poolLoginKey of the identity, and what it was made from. */
  private loginKeyCache = '';
  private loginKeyOf: BackendLogin | null = null;
  private loginKeyCharset = -1;

  constructor(
    private readonly id: SessionIdentity,
    private readonly view: ClusterView,
    private readonly pools: BackendPools,
    /** null: the default for how the cluster replicates (read-your-writes.ts). */
    readYourWritesMs: number | null,
    private readonly now: () => number,
    private readonly mux: MultiplexOptions = { enabled: false, lingerMs: 0 },
  ) {
    this.ryw = new ReadYourWritesWindow(readYourWritesMs ?? (() => defaultReadYourWritesMs(view.clusterReplication)));
  }

  private loginKey(): string {
    const id = this.id;
    if (id.login !== this.loginKeyOf || id.charset !== this.loginKeyCharset) {
      this.loginKeyCache = poolLoginKey(id.login, id.clientCapabilities, id.charset);
      this.loginKeyOf = id.login;
      this.loginKeyCharset = id.charset;
    }
    return this.loginKeyCache;
  }

  /** Why the session must keep its connections now, or null when it may give them back. */
  holdReason(): HoldReason | null {
    if (!this.mux.enabled) return 'multiplexing-off';
    if (this.inTransaction) return 'transaction';
    if (!this.autocommit) return 'autocommit-off';
    const pins = this.id.state.pins;
    if (pins.size > 0) return pins.values().next().value as PinCause;
    if (this.id.statements.size > 0) return 'prepared-statement';
    return null;
  }

  /** Does the session hold any backend connection right now? */
  get holdsConnections(): boolean {
    return this.primary !== null || this.replicas.size > 0;
  }

  /**
   * Multiplexing: every idle connection goes back to the pools unless the session must keep it
   * (`holdReason`) or it lingers for a follow-up (its last answer, within `lingerMs`, left
   * warnings or an insert id). Called after each command and from the session's timer.
   */
  giveBackIdle(now: number = this.now()): void {
    if (!this.holdsConnections || this.holdReason() !== null) return;
    const p = this.primary;
    if (p !== null) this.giveBackOne(p, now);
    // Deleting the entry being visited is safe in a Map iteration: no copy on the hot path.
    for (const r of this.replicas.values()) this.giveBackOne(r, now);
  }

  private giveBackOne(conn: BackendConnection, now: number): void {
    if (!conn.isIdle || conn.isClosed) return;
    if (conn.tracker.leavesFollowUp && now - conn.lastDoneAt < this.mux.lingerMs) return;
    const stateKey = this.synced(conn) ? this.id.state.fingerprint : null;
    this.forget(conn);
    if (this.usableGeneration(conn)) this.pools.giveBack(conn, stateKey);
    else this.pools.release(conn, false);
  }

  /** A connection from the pools becomes this session's: its state is the session's as far as the pool matched it. */
  private adopt(conn: BackendConnection): void {
    const s = this.id.state;
    conn.sink = this.id.sink;
    conn.stateOwner = s;
    conn.stateGeneration = s.generation;
    // Same state key: it holds every statement already; else it is clean ('' after a fresh login
    // or a reset) and sync replays everything.
    conn.appliedSeq = conn.stateKey === s.fingerprint ? s.lastSeq : 0;
  }

  /**
   * A connection another session gave back was opened for another role, or at a generation the
   * topology has retired. A fresh one (generation -1) is not stale: its caller sets both.
   */
  private stalePooled(conn: BackendConnection, role: 'primary' | 'replica'): boolean {
    return conn.generation !== -1 && (conn.role !== role || !this.usableGeneration(conn));
  }

  /** Hot path: an exactly matching idle pooled connection to `target`, made the session's; null if none. */
  private takeReady(target: BackendTarget | null | undefined, role: 'primary' | 'replica'): BackendConnection | null {
    if (target === null || target === undefined || !this.mux.enabled) return null;
    const s = this.id.state;
    const conn = this.pools.takeReady(target, this.loginKey(), s.database, s.fingerprint, s.multiStatements);
    if (conn === null) return null;
    if (this.stalePooled(conn, role)) {
      this.pools.release(conn, false);
      return null;
    }
    this.adopt(conn);
    if (role === 'primary') this.primary = conn;
    else this.replicas.set(target.name, conn);
    return conn;
  }

  get inTransaction(): boolean {
    return this.primary !== null && this.primary.inTransaction;
  }

  /** Where a statement of this classification should run at `now` (route-decision.ts). */
  decide(c: Classification, now: number = this.now()): RouteKind {
    const f = this.facts;
    f.inTransaction = this.inTransaction;
    f.autocommit = this.autocommit;
    f.pinned = this.id.state.pinned;
    f.followsPrevious = c.followsPrevious;
    // Only asked when it can matter: usable() walks the session's connections.
    f.previousUsable = c.followsPrevious && this.last !== null && this.usable(this.last);
    f.classifiedPrimary = c.route === 'primary';
    f.hintedReplica = c.hint === 'replica';
    f.readYourWritesOpen = this.ryw.mustReadPrimary(now);
    return routeOf(f);
  }

  /** Picks the replica for a read; undefined when none is available (read from the primary). */
  pickReplica(now: number = this.now()): string | undefined {
    return this.view.selector.pick(now);
  }

  /** Hot path: the primary connection if it can run a command right now without any I/O. */
  readyPrimary(): BackendConnection | null {
    let p = this.primary;
    if (p === null) {
      if (this.view.hold.state !== 'idle') return null;
      p = this.takeReady(this.view.primary, 'primary');
      if (p === null) return null;
    }
    if (!p.isIdle || p.isClosed) return null;
    if (!this.view.primaryUsable(p.generation, p.inTransaction)) return null;
    if (this.view.hold.state !== 'idle' && !p.inTransaction) return null;
    return this.synced(p) ? p : null;
  }

  readyReplica(name: string): BackendConnection | null {
    const r = this.replicas.get(name) ?? this.takeReady(this.view.replica(name), 'replica');
    if (r === null || !r.isIdle || r.isClosed) return null;
    if (!this.view.replicaUsable(name, r.generation)) return null;
    return this.synced(r) ? r : null;
  }

  /** Is `conn` still one of ours and pointed where it should be? */
  usable(conn: BackendConnection): boolean {
    if (conn.isClosed) return false;
    if (conn === this.primary) return this.view.primaryUsable(conn.generation, conn.inTransaction);
    for (const [name, r] of this.replicas) if (r === conn) return this.view.replicaUsable(name, r.generation);
    return false;
  }

  isPrimary(conn: BackendConnection): boolean {
    return conn === this.primary;
  }

  /**
   * A synced primary connection: waits in the write hold while the cluster has no usable primary,
   * opens a connection at the current generation, replays state. Throws HoldTimeoutError & co., a
   * BackendUnavailableError (hold disabled), or a StateReplayError.
   *
   * A primary that cannot be reached or is read-only is not an error for the write: the session
   * tells the ClusterView (which begins the hold) and waits, then tries again once the hold lets
   * it go (a new topology, or the prober found the primary writable). Every wait of one write
   * shares the deadline it got first, so the hold's time limit bounds the whole attempt.
   */
  async acquirePrimary(signal: AbortSignal): Promise<BackendConnection> {
    const hold = this.view.hold;
    const deadline = hold.deadlineFromNow();
    let mayWait = true;
    for (let attempt = 0; attempt < MAX_PRIMARY_ATTEMPTS; attempt++) {
      const p = this.primary;
      if (p !== null && (p.isClosed || !this.view.primaryUsable(p.generation, p.inTransaction))) {
        // Retired by a topology change; the session has already told the client what was lost.
        this.drop(p);
        continue;
      }
      if (p !== null && p.inTransaction) {
        // An open transaction finishes where it started, hold or not (switchover drain).
        await this.sync(p);
        return p;
      }
      if (mayWait && hold.state !== 'idle') {
        // Waiting again after a release would put this write behind later ones while the hold
        // drains: it waits again only after a new failure (mayWait is set back below).
        await hold.wait(signal, deadline);
        mayWait = false;
        continue;
      }
      if (p !== null) {
        await this.sync(p);
        return p;
      }
      const target = this.view.primary;
      if (target === null) {
        throw new NoTopologyError(this.view.topology === null ? 'the proxy has not received a topology' : `topology epoch ${this.view.topology.epoch} has no primary`);
      }
      const generation = this.view.primaryGeneration;
      let conn: BackendConnection;
      try {
        conn = await this.pools.acquire(this.request(target, signal, true));
      } catch (error) {
        const kind = error instanceof BackendReadOnlyError ? 'read-only' : error instanceof BackendUnavailableError ? 'unreachable' : null;
        if (kind === null || signal.aborted) throw error;
        const detail = kind === 'read-only' ? 'is read-only' : `cannot be reached (${(error as Error).message.replace(/^doltgate: /, '')})`;
        // False when the topology moved on meanwhile: the loop then goes by the new topology.
        const held = this.view.suspectPrimary(generation, kind, detail, this.id.login);
        if (!held && this.view.primaryGeneration === generation && hold.state === 'idle') throw error;
        mayWait = true;
        continue;
      }
      if (signal.aborted) {
        this.pools.release(conn, false);
        throw QueryInterruptedError.beforeSending();
      }
      if (generation !== this.view.primaryGeneration || this.stalePooled(conn, 'primary')) {
        // The topology moved while we connected (or the pooled connection is from before it):
        // this connection may point at a retired primary.
        this.pools.release(conn, false);
        continue;
      }
      conn.role = 'primary';
      this.adopt(conn);
      conn.generation = generation;
      this.primary = conn;
      await this.sync(conn);
      return conn;
    }
    throw new NoTopologyError('the primary kept changing or failing while connecting');
  }

  /**
   * A synced connection to replica `name`, or null when it cannot be had (the caller tries
   * another replica or the primary). Connect failures put the replica in backoff via the pool.
   */
  async acquireReplica(name: string, signal?: AbortSignal): Promise<BackendConnection | null> {
    const existing = this.replicas.get(name);
    if (existing !== undefined) {
      if (!existing.isClosed && this.view.replicaUsable(name, existing.generation)) {
        try {
          await this.sync(existing);
          return existing;
        } catch {
          this.drop(existing);
          return null;
        }
      }
      this.drop(existing);
    }
    const node = this.view.replica(name);
    if (node === undefined) return null;
    let conn: BackendConnection;
    try {
      conn = await this.pools.acquire(this.request(node, signal, false));
    } catch (error) {
      // A full budget is not the replica's fault (no backoff), and a read that waited the whole
      // queue timeout does not wait again elsewhere; KILL QUERY ends it too.
      if (error instanceof BackendBusyError || error instanceof QueryInterruptedError) throw error;
      return null;
    }
    if (!this.view.replicaUsable(name, node.generation) || this.stalePooled(conn, 'replica')) {
      this.pools.release(conn, false);
      return null;
    }
    conn.role = 'replica';
    this.adopt(conn);
    conn.generation = node.generation;
    this.replicas.set(name, conn);
    try {
      await this.sync(conn);
    } catch {
      // A replica that cannot take the session's state (a database not replicated yet) is skipped.
      this.drop(conn);
      return null;
    }
    return conn;
  }

  /**
   * A read whose replica's budget is used up goes to another replica that has room rather than
   * queueing behind it; only when every replica tried is full does it wait for its first choice.
   * Never the primary: its budget is for writes.
   */
  private replicaWithRoom(firstChoice: string | undefined): string | undefined {
    if (firstChoice === undefined || this.replicas.has(firstChoice) || !this.pools.wouldQueue(firstChoice)) return firstChoice;
    for (let i = 1; i < MAX_REPLICA_ATTEMPTS; i++) {
      const other = this.pickReplica();
      if (other === undefined) break;
      if (other !== firstChoice && (this.replicas.has(other) || !this.pools.wouldQueue(other))) return other;
    }
    return firstChoice;
  }

  private request(target: BackendTarget, signal: AbortSignal | undefined, primary: boolean): AcquireRequest {
    const s = this.id.state;
    return { target, login: this.id.login, clientCapabilities: this.id.clientCapabilities, charset: this.id.charset, database: s.database, stateKey: s.fingerprint, multiStatements: s.multiStatements, verifyWritable: primary, signal };
  }

  /** Slow path for a read: up to three replicas, then the primary. Returns the connection and whether it is a replica. */
  async acquireRead(firstChoice: string | undefined, signal: AbortSignal): Promise<{ conn: BackendConnection; replica: string | null }> {
    let name = this.replicaWithRoom(firstChoice);
    for (let i = 0; i < MAX_REPLICA_ATTEMPTS && name !== undefined; i++) {
      const conn = await this.acquireReplica(name, signal);
      if (conn !== null) return { conn, replica: name };
      name = this.pickReplica();
    }
    return { conn: await this.acquirePrimary(signal), replica: null };
  }

  /** Does `conn` already hold the session's state? */
  synced(conn: BackendConnection): boolean {
    return holdsState(conn, this.id.state);
  }

  /** Brings `conn` to the session's state with internal commands. */
  sync(conn: BackendConnection): Promise<void> {
    return replayState(conn, this.id.state);
  }

  /**
   * After a client command finished on `conn` with `errno` (0 = success): record its effects.
   * `effects` is the statement's classification (null for commands without SQL effects).
   */
  noteDone(conn: BackendConnection, effects: Classification | null, errno: number, now: number = this.now()): void {
    this.last = conn;
    conn.lastDoneAt = now;
    const status = conn.tracker.statusFlags;
    if (conn === this.primary) this.autocommit = hasFlag(status, ServerStatus.SERVER_STATUS_AUTOCOMMIT);
    if (effects === null) return;
    const s = this.id.state;
    const before = s.lastSeq;
    const dbBefore = s.database;
    s.applyClassification(effects, errno === 0);
    // The statements just recorded ran on this connection already.
    if (conn.stateOwner === s && conn.stateGeneration === s.generation && conn.appliedSeq === before) conn.appliedSeq = s.lastSeq;
    if (s.database !== dbBefore) conn.database = s.database;
    if (errno === 0 && commitsWrite(effects, hasFlag(status, ServerStatus.SERVER_STATUS_IN_TRANS))) this.ryw.noteCommit(now);
    if (effects.setsAutocommit !== undefined && errno === 0 && conn === this.primary) this.autocommit = effects.setsAutocommit;
  }

  /** Forget a connection the session no longer uses (closed or stale), destroying it. */
  drop(conn: BackendConnection): void {
    this.forget(conn);
    conn.destroy(null);
  }

  /** Remove every reference to `conn` (after it closed). */
  forget(conn: BackendConnection): void {
    if (this.primary === conn) this.primary = null;
    for (const [name, r] of this.replicas) if (r === conn) this.replicas.delete(name);
    if (this.last === conn) this.last = null;
    this.id.statements.forgetConnection(conn);
  }

  /** Every connection back to the pools (reset and reused when clean), e.g. on COM_RESET_CONNECTION. */
  releaseAll(): void {
    const all = [...this.replicas.values()];
    if (this.primary !== null) all.push(this.primary);
    // Without a reason to keep them, connections go back as they are (their state is known);
    // otherwise they are reset (or closed) first.
    const asTheyAre = this.mux.enabled && this.holdReason() === null;
    for (const conn of all) {
      const stateKey = asTheyAre && this.synced(conn) ? this.id.state.fingerprint : null;
      this.forget(conn);
      const keep = conn.isIdle && this.usableGeneration(conn);
      if (keep && stateKey !== null) this.pools.giveBack(conn, stateKey);
      else this.pools.release(conn, keep);
    }
    this.autocommit = true;
    this.ryw.reset();
  }

  private usableGeneration(conn: BackendConnection): boolean {
    const g = conn.generation;
    if (conn.role === 'primary') return g === this.view.primaryGeneration;
    return this.view.replicaUsable(conn.target.name, g);
  }

  /** Every connection, for iteration (topology changes, shutdown). */
  all(): BackendConnection[] {
    const out = [...this.replicas.values()];
    if (this.primary !== null) out.push(this.primary);
    return out;
  }

  /** Holds a primary connection of an older generation (it goes once its command or transaction ends). */
  holdsRetiredPrimary(): boolean {
    const p = this.primary;
    return p !== null && p.generation !== -1 && p.generation !== this.view.primaryGeneration;
  }

  /** The primary connection is retired if not usable at the current generation. */
  primaryRetired(): boolean {
    const p = this.primary;
    return p !== null && !this.view.primaryUsable(p.generation, p.inTransaction);
  }
}
