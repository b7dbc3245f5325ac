/**
 * The proxy's backend connections to each node, under a budget: at most `maxConnectionsPerNode`
 * connections to one node (open, connecting or being reset, whoever holds them), shared by every
 * session of this proxy. The budget is what keeps ordinary load from filling Dolt's
 * max_connections, where Dolt holds new handshakes — the agent's own work included
 * (test/integration/dolt-capacity-facts.test.ts). A session that finds the budget used up waits
 * in a bounded FIFO queue, up to `queueTimeoutMs`, and then gets BackendBusyError (1040): load is
 * never a reason to suspect a node, so none of this reports to `onHealth`.
 *
 * Idle connections wait here between sessions (multiplexing, see session-backends.ts) and carry
 * what the last session left on them: the database, the COM_SET_OPTION switch and `stateKey`, the
 * fingerprint of the replayable SETs it ran ('' none, null unknown). A connection goes to a
 * session only where that is the same state or can be made so:
 *  - exact: same state key, database and option — no I/O (`takeReady`, the hot path);
 *  - replay: no state, or the same, and a database the session can select (COM_INIT_DB);
 *  - reset: another session's state: COM_RESET_CONNECTION first (Dolt then resets session
 *    variables, user variables, LAST_INSERT_ID and prepared statements and keeps the database —
 *    test/integration/dolt-multiplexing-facts.test.ts), then replay.
 * A session without a database never gets a connection that has one (Dolt cannot unselect it):
 * when the budget is full, an idle connection nobody can use is closed to make room.
 *
 * Two ways back: `giveBack` (a multiplexed session between statements: state known, no reset) and
 * `release` (a session ends or resets with state it cannot describe: COM_RESET_CONNECTION, and
 * only a clean OK keeps the connection — pgcat's rule). Idle connections older than `idleTimeoutMs`
 * are closed by `sweep`; `retireNode` drops a node's idle connections when the topology moves it.
 */

import type { ConnectionOptions } from 'node:tls';
import { COM_RESET_CONNECTION_FRAME } from '../protocol';
import { BackendConnection, type BackendConnectOptions, type BackendLogin, type BackendTarget } from './backend-connection';
import { Fit, fitOf, poolLoginKey, verifyWritable } from './pool-fit';
import { BackendBusyError, BackendProtocolError, QueryInterruptedError } from './errors';

export interface BackendPoolOptions {
  /** Budget: connections to one node, whoever holds them; probes may pass it by one. */
  maxConnectionsPerNode: number;
  /** Longest a session waits for a connection when the budget is used up. */
  queueTimeoutMs: number;
  /** Sessions that may wait for one node at once; more get BackendBusyError at once. */
  maxQueued: number;
  maxIdlePerBackend: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  maxPacketSize: number;
  tls: ConnectionOptions | null;
  onHealth: (target: BackendTarget, up: boolean, error?: Error) => void;
  /** A statement found the node's budget used up (it waits, or is refused). */
  onBudgetExhausted?: (node: string) => void;
  /** A wait in the queue ended: how long, and whether it got a connection. */
  onQueueWait?: (node: string, ms: number, outcome: 'served' | 'timeout' | 'full' | 'aborted') => void;
  now?: () => number;
  /** Opens a connection (tests give a fake). */
  connect?: (options: BackendConnectOptions) => Promise<BackendConnection>;
}

export interface AcquireRequest {
  target: BackendTarget;
  login: BackendLogin;
  clientCapabilities: number;
  charset: number;
  database: string | null;
  /** The session's replayable state (SessionState.fingerprint). */
  stateKey: string;
  /** The session's COM_SET_OPTION switch (null: as negotiated). */
  multiStatements: boolean | null;
  /**
   * For the primary: a new connection must find Dolt writable (`@@global.read_only` 0), else it
   * is closed and BackendReadOnlyError thrown. Dolt's read-only mode is fixed at start-up, so a
   * connection checked once stays writable for its life.
   */
  verifyWritable?: boolean;
  /** Open a new connection even if an idle one is pooled, past the budget (probes). */
  fresh?: boolean;
  /** Ends a wait in the queue (client gone, KILL QUERY). */
  signal?: AbortSignal;
}

/** Per-node figures for the metrics. */
export interface NodeConnectionStats {
  node: string;
  /** Every connection counted against the budget. */
  open: number;
  idle: number;
  connecting: number;
  /** Held by sessions (open minus idle and connecting). */
  inUse: number;
  queued: number;
  budget: number;
}

/** utf8mb4_general_ci: any charset serves a probe that reads one integer. */
const PROBE_CHARSET = 45;

interface IdleEntry {
  conn: BackendConnection;
  since: number;
}

interface Waiter {
  wake: () => void;
}

class NodeConnections {
  open = 0;
  connecting = 0;
  idleTotal = 0;
  readonly idle = new Map<string, IdleEntry[]>();
  readonly waiters: Waiter[] = [];
}

export class BackendPools {
  private readonly nodes = new Map<string, NodeConnections>();
  private readonly loginKeyOf = new WeakMap<BackendConnection, string>();
  private readonly nodeOf = new WeakMap<BackendConnection, NodeConnections>();
  private closed = false;
  private readonly now: () => number;
  private readonly open: (options: BackendConnectOptions) => Promise<BackendConnection>;

  constructor(private readonly options: BackendPoolOptions) {
    this.now = options.now ?? Date.now;
    this.open = options.connect ?? ((o) => BackendConnection.connect(o));
  }

  /** How long opening a backend connection may take (also bounds a side connection's one statement). */
  get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs;
  }

  get budget(): number {
    return this.options.maxConnectionsPerNode;
  }

  get idleCount(): number {
    let n = 0;
    for (const node of this.nodes.values()) n += node.idleTotal;
    return n;
  }

  stats(): NodeConnectionStats[] {
    const out: NodeConnectionStats[] = [];
    for (const [name, n] of this.nodes) {
      out.push({ node: name, open: n.open, idle: n.idleTotal, connecting: n.connecting, inUse: Math.max(0, n.open - n.idleTotal - n.connecting), queued: n.waiters.length, budget: this.options.maxConnectionsPerNode });
    }
    return out;
  }

  private node(name: string): NodeConnections {
    let n = this.nodes.get(name);
    if (n === undefined) {
      n = new NodeConnections();
      this.nodes.set(name, n);
    }
    return n;
  }

  /** Would a statement for node `name` have to queue now (budget used up, nothing idle)? */
  wouldQueue(name: string): boolean {
    const n = this.nodes.get(name);
    if (n === undefined) return false;
    return n.waiters.length > 0 || (n.open >= this.options.maxConnectionsPerNode && n.idleTotal === 0);
  }

  /**
   * Hot path: an idle connection to `target` that already holds exactly this state, taken out of
   * the pool; null when there is none. No I/O, no allocation but the pop.
   */
  takeReady(target: BackendTarget, loginKey: string, database: string | null, stateKey: string, multiStatements: boolean | null): BackendConnection | null {
    const n = this.nodes.get(target.name);
    // With sessions queued, a connection that comes free is theirs (acquire serves them in order).
    if (n === undefined || n.idleTotal === 0 || n.waiters.length > 0) return null;
    const list = n.idle.get(loginKey);
    if (list === undefined) return null;
    for (let i = list.length - 1; i >= 0; i--) {
      const conn = list[i].conn;
      if (conn.database !== database || conn.stateKey !== stateKey || conn.multiStatements !== multiStatements) continue;
      if (conn.target.host !== target.host || conn.target.port !== target.port) continue;
      this.removeIdleAt(n, list, i);
      return conn;
    }
    return null;
  }

  /**
   * A connection for `r`: a fitting idle one (reset first if it holds another session's state),
   * else a new one within the budget, else — after closing an idle connection nobody can use —
   * a wait in the queue. The caller brings it to its session's state (SessionBackends.sync).
   */
  async acquire(r: AcquireRequest): Promise<BackendConnection> {
    const node = this.node(r.target.name);
    const loginKey = poolLoginKey(r.login, r.clientCapabilities, r.charset);
    let waitStarted = -1;
    for (;;) {
      if (this.closed) throw new BackendBusyError(r.target.name, 'the proxy is shutting down');
      // First come, first served: with others waiting, a newcomer queues behind them.
      if (waitStarted < 0 && r.fresh !== true && node.waiters.length > 0 && node.open >= this.options.maxConnectionsPerNode) {
        waitStarted = this.now();
        await this.wait(node, r, waitStarted, false);
        continue;
      }
      if (r.fresh !== true) {
        const conn = await this.takeFitting(node, loginKey, r);
        if (conn !== null) {
          if (waitStarted >= 0) this.options.onQueueWait?.(r.target.name, this.now() - waitStarted, 'served');
          return conn;
        }
      }
      if (r.fresh === true || node.open < this.options.maxConnectionsPerNode) {
        if (waitStarted >= 0) this.options.onQueueWait?.(r.target.name, this.now() - waitStarted, 'served');
        return this.connect(node, loginKey, r);
      }
      if (this.closeUnusableIdle(node)) continue;
      // Woken but beaten to the connection: back to the head of the queue, not its tail.
      const again = waitStarted >= 0;
      if (!again) waitStarted = this.now();
      await this.wait(node, r, waitStarted, again);
    }
  }

  /** The best idle connection for `r` (exact, then replay, then reset), ready for the caller; null if none. */
  private async takeFitting(node: NodeConnections, loginKey: string, r: AcquireRequest): Promise<BackendConnection | null> {
    for (;;) {
      const list = node.idle.get(loginKey);
      if (list === undefined || list.length === 0) return null;
      let best = -1;
      let bestFit: Fit = Fit.Unusable;
      // Newest first: the warmest connection, and the one a session just gave back.
      for (let i = list.length - 1; i >= 0; i--) {
        const c = list[i].conn;
        if (c.target.host !== r.target.host || c.target.port !== r.target.port) continue;
        const fit = fitOf(c, r.database, r.stateKey, r.multiStatements);
        if (fit === Fit.Unusable || (best >= 0 && fit >= bestFit)) continue;
        best = i;
        bestFit = fit;
        if (fit === Fit.Exact) break;
      }
      if (best < 0) return null;
      const conn = list[best].conn;
      this.removeIdleAt(node, list, best);
      if (conn.isClosed) continue;
      if (bestFit !== Fit.Reset) return conn;
      if (await this.reset(conn)) return conn;
    }
  }

  /** COM_RESET_CONNECTION; true when the connection is clean after it (else it is closed). */
  private async reset(conn: BackendConnection): Promise<boolean> {
    try {
      const outcome = await conn.runCommand(COM_RESET_CONNECTION_FRAME);
      if (outcome.errno !== 0 || !conn.reusable || this.closed) {
        conn.destroy(null);
        return false;
      }
    } catch {
      conn.destroy(null);
      return false;
    }
    conn.stateKey = '';
    // Session variables are back at their global values.
    conn.commitMessage = '';
    conn.preparedOnly = false;
    conn.tracker.forgetInsertId();
    conn.stateOwner = null;
    conn.stateGeneration = 0;
    conn.appliedSeq = 0;
    return true;
  }

  private async connect(node: NodeConnections, loginKey: string, r: AcquireRequest): Promise<BackendConnection> {
    node.open++;
    node.connecting++;
    let conn: BackendConnection;
    try {
      conn = await this.open({
        target: r.target,
        login: r.login,
        clientCapabilities: r.clientCapabilities,
        charset: r.charset,
        database: r.database,
        connectTimeoutMs: this.options.connectTimeoutMs,
        maxPacketSize: this.options.maxPacketSize,
        tls: this.options.tls,
      });
    } catch (error) {
      node.connecting--;
      node.open--;
      this.wakeOne(node);
      // A server that answered the login with an ERR is up (a wrong database or password is
      // not a health problem), unless the ERR says it is full or going away.
      const errno = error instanceof BackendProtocolError ? error.serverErrno : 0;
      const alive = errno !== 0 && errno !== 1040 && errno !== 1203 && errno !== 1053;
      this.options.onHealth(r.target, alive, alive ? undefined : (error as Error));
      throw error;
    }
    node.connecting--;
    this.loginKeyOf.set(conn, loginKey);
    this.nodeOf.set(conn, node);
    conn.onDestroy = () => this.onClosed(node, conn);
    this.options.onHealth(r.target, true);
    if (r.verifyWritable === true) await verifyWritable(conn);
    return conn;
  }

  /** Budget full: close the oldest idle connection (its session state is nobody's); true if one was. */
  private closeUnusableIdle(node: NodeConnections): boolean {
    let oldest: IdleEntry | null = null;
    for (const list of node.idle.values()) {
      const first = list[0];
      if (first !== undefined && (oldest === null || first.since < oldest.since)) oldest = first;
    }
    if (oldest === null) return false;
    oldest.conn.destroy(null);
    return true;
  }

  private wait(node: NodeConnections, r: AcquireRequest, startedAt: number, atFront: boolean): Promise<void> {
    const name = r.target.name;
    if (!atFront) this.options.onBudgetExhausted?.(name);
    if (!atFront && node.waiters.length >= this.options.maxQueued) {
      this.options.onQueueWait?.(name, this.now() - startedAt, 'full');
      return Promise.reject(new BackendBusyError(name, `${node.waiters.length} statements already wait for one of the ${this.options.maxConnectionsPerNode} connections this proxy may open to it`));
    }
    const remaining = startedAt + this.options.queueTimeoutMs - this.now();
    if (remaining <= 0) {
      this.options.onQueueWait?.(name, this.now() - startedAt, 'timeout');
      return Promise.reject(this.timeoutError(name));
    }
    return new Promise<void>((resolve, reject) => {
      const signal = r.signal;
      const waiter: Waiter = { wake: () => settle(null) };
      const onAbort = (): void => settle(QueryInterruptedError.beforeSending(), 'aborted');
      const timer = setTimeout(() => settle(this.timeoutError(name), 'timeout'), remaining);
      const settle = (error: Error | null, outcome?: 'timeout' | 'aborted'): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const at = node.waiters.indexOf(waiter);
        if (at >= 0) node.waiters.splice(at, 1);
        if (error === null) {
          resolve();
          return;
        }
        if (outcome !== undefined) this.options.onQueueWait?.(name, this.now() - startedAt, outcome);
        reject(error);
      };
      if (signal?.aborted === true) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (atFront) node.waiters.unshift(waiter);
      else node.waiters.push(waiter);
    });
  }

  private timeoutError(name: string): BackendBusyError {
    return new BackendBusyError(name, `all ${this.options.maxConnectionsPerNode} connections this proxy may open to it stayed in use for ${this.options.queueTimeoutMs} ms (pool.queue_timeout_ms)`);
  }

  /** A connection came free or a slot opened: the longest waiter tries again. */
  private wakeOne(node: NodeConnections): void {
    const first = node.waiters[0];
    if (first !== undefined) first.wake();
  }

  private onClosed(node: NodeConnections, conn: BackendConnection): void {
    node.open--;
    this.removeIdle(conn);
    this.wakeOne(node);
  }

  /**
   * A multiplexed session hands back a connection between statements: no reset, its state
   * (`stateKey`, database, option switch) stays on it for the next session with the same. A
   * connection whose state is unknown, whose next statement would run in a stale snapshot
   * (`preparedOnly`), or whose LAST_INSERT_ID() would tell the next session this one's insert id,
   * takes the reset path instead.
   */
  giveBack(conn: BackendConnection, stateKey: string | null): void {
    conn.sink = null;
    conn.stateOwner = null;
    if (stateKey === null || conn.preparedOnly || conn.tracker.holdsInsertId) {
      this.release(conn, true);
      return;
    }
    conn.stateKey = stateKey;
    this.putIdle(conn);
  }

  /**
   * Takes a connection back from a session that ends or resets. It is reset and kept if clean and
   * wanted (`keep` false: its node was retired, or the caller knows better), else destroyed.
   */
  release(conn: BackendConnection, keep = true): void {
    conn.sink = null;
    conn.stateOwner = null;
    if (!keep || this.closed || !this.loginKeyOf.has(conn) || !conn.reusable || this.options.maxIdlePerBackend === 0) {
      conn.destroy(null);
      return;
    }
    this.reset(conn).then(
      (clean) => {
        if (!clean) return;
        conn.multiStatements = null;
        this.putIdle(conn);
      },
      () => conn.destroy(null),
    );
  }

  private putIdle(conn: BackendConnection): void {
    const node = this.nodeOf.get(conn);
    const key = this.loginKeyOf.get(conn);
    if (node === undefined || key === undefined || this.closed || !conn.reusable || conn.isClosed) {
      conn.destroy(null);
      return;
    }
    const list = node.idle.get(key) ?? [];
    if (list.length >= this.options.maxIdlePerBackend) {
      conn.destroy(null);
      return;
    }
    list.push({ conn, since: this.now() });
    node.idle.set(key, list);
    node.idleTotal++;
    this.wakeOne(node);
  }

  /**
   * A fresh connection to `target` that must find Dolt writable, closed right after: the prober's
   * question "does the suspect primary take writes again?". Never pooled; reports health.
   */
  async probeWritable(target: BackendTarget, login: BackendLogin): Promise<void> {
    const conn = await this.acquire({ target, login, clientCapabilities: 0, charset: PROBE_CHARSET, database: null, stateKey: '', multiStatements: null, verifyWritable: true, fresh: true });
    conn.destroy(null);
  }

  /**
   * A new connection of the proxy's own to `target`, past the budget and never pooled: for
   * questions that must not queue behind the load they are about (KILL QUERY, an outcome
   * token's search). The caller destroys it.
   */
  openSide(target: BackendTarget, login: BackendLogin): Promise<BackendConnection> {
    return this.acquire({ target, login, clientCapabilities: 0, charset: PROBE_CHARSET, database: null, stateKey: '', multiStatements: null, fresh: true });
  }

  /** Closes idle connections to `name` (its address or role changed, or it is no longer a primary). */
  retireNode(name: string): void {
    const node = this.nodes.get(name);
    if (node === undefined) return;
    for (const list of [...node.idle.values()]) for (const e of [...list]) e.conn.destroy(null);
  }

  /** Closes connections idle longer than idleTimeoutMs. */
  sweep(now: number = this.now()): void {
    const limit = now - this.options.idleTimeoutMs;
    for (const node of this.nodes.values()) {
      for (const list of [...node.idle.values()]) {
        for (const e of [...list]) if (e.since <= limit || e.conn.isClosed) e.conn.destroy(null);
      }
    }
  }

  closeAll(): void {
    this.closed = true;
    for (const node of this.nodes.values()) {
      for (const list of [...node.idle.values()]) for (const e of [...list]) e.conn.destroy(null);
      for (const w of [...node.waiters]) w.wake();
    }
  }

  private removeIdleAt(node: NodeConnections, list: IdleEntry[], i: number): void {
    if (i === list.length - 1) list.pop();
    else list.splice(i, 1);
    node.idleTotal--;
  }

  private removeIdle(conn: BackendConnection): void {
    const node = this.nodeOf.get(conn);
    const key = this.loginKeyOf.get(conn);
    if (node === undefined || key === undefined) return;
    const list = node.idle.get(key);
    if (list === undefined) return;
    const i = list.findIndex((e) => e.conn === conn);
    if (i >= 0) this.removeIdleAt(node, list, i);
  }
}
