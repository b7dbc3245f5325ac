/**
 * Idle backend connections kept for reuse, per backend node, login and forwarded capabilities
 * (a connection negotiated with CLIENT_DEPRECATE_EOF cannot serve a client without it).
 *
 * A session keeps the backend connections it opened for as long as it lives (session pooling:
 * session state, prepared statements and transactions stay where they were made). When the
 * session ends or resets, each connection comes back here and is reused only if it is provably
 * clean: idle, no partial packet, no protocol error, and a COM_RESET_CONNECTION (which in Dolt
 * rolls back, drops temporary tables, user variables, prepared statements and locks, and keeps
 * the database — measured) answered OK. Anything else is destroyed (pgcat's rule: a connection in
 * an unknown state is never reused). Connections idle longer than `idleTimeoutMs` are closed by
 * `sweep`, called from the server's coarse timer; `retireNode` drops a node's idle connections
 * when the topology moves it.
 *
 * Connect failures and successes are reported to `onHealth`, which feeds the replica selector's
 * backoff and the backend_up metric.
 */

import type { ConnectionOptions } from 'node:tls';
import { COM_RESET_CONNECTION_FRAME } from '../protocol';
import { BackendConnection, FORWARDED_CAPABILITIES, type BackendLogin, type BackendTarget } from './backend-connection';
import { BackendProtocolError, BackendReadOnlyError } from './errors';

export interface BackendPoolOptions {
  maxIdlePerBackend: number;
  idleTimeoutMs: number;
  connectTimeoutMs: number;
  maxPacketSize: number;
  tls: ConnectionOptions | null;
  onHealth: (target: BackendTarget, up: boolean, error?: Error) => void;
}

export interface AcquireRequest {
  target: BackendTarget;
  login: BackendLogin;
  clientCapabilities: number;
  charset: number;
  database: string | null;
  /**
   * For the primary: a new connection must find Dolt writable (`@@global.read_only` 0), else it
   * is closed and BackendReadOnlyError thrown. Dolt's read-only mode is fixed at start-up, so a
   * connection checked once stays writable for its life.
   */
  verifyWritable?: boolean;
  /** Open a new connection even if an idle one is pooled (probes). */
  fresh?: boolean;
}

/** utf8mb4_general_ci: any charset serves a probe that reads one integer. */
const PROBE_CHARSET = 45;

/** Throws BackendReadOnlyError (closing `conn`) when its Dolt does not take writes. */
export async function verifyWritable(conn: BackendConnection): Promise<void> {
  let readOnly: string | null;
  try {
    readOnly = await conn.queryScalar('SELECT @@global.read_only');
  } catch (error) {
    conn.destroy(null);
    throw error;
  }
  if (readOnly !== '0') {
    conn.destroy(null);
    throw new BackendReadOnlyError(conn.name);
  }
}

const loginIds = new WeakMap<BackendLogin, number>();
let nextLoginId = 1;

function loginId(login: BackendLogin): number {
  let id = loginIds.get(login);
  if (id === undefined) {
    id = nextLoginId++;
    loginIds.set(login, id);
  }
  return id;
}

interface IdleEntry {
  conn: BackendConnection;
  since: number;
}

export class BackendPools {
  private readonly idle = new Map<string, IdleEntry[]>();
  private readonly poolKeyOf = new WeakMap<BackendConnection, string>();
  private closed = false;

  constructor(private readonly options: BackendPoolOptions) {}

  private key(r: AcquireRequest): string {
    const t = r.target;
    return `${t.name}\u0000${t.host}:${t.port}\u0000${loginId(r.login)}\u0000${(r.clientCapabilities & FORWARDED_CAPABILITIES) >>> 0}\u0000${r.charset}`;
  }

  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  /** An idle clean connection (same database preferred), or a new one. */
  async acquire(r: AcquireRequest): Promise<BackendConnection> {
    const key = this.key(r);
    const list = r.fresh === true ? undefined : this.idle.get(key);
    if (list !== undefined && list.length > 0) {
      // Newest first (warm); a connection whose database is another can be moved with COM_INIT_DB,
      // but one with a database cannot serve a session that has none.
      let pick = -1;
      for (let i = list.length - 1; i >= 0; i--) {
        const db = list[i].conn.database;
        if (db === r.database) {
          pick = i;
          break;
        }
        if (pick < 0 && r.database !== null) pick = i;
      }
      if (pick >= 0) {
        const [entry] = list.splice(pick, 1);
        if (!entry.conn.isClosed) return entry.conn;
      }
    }
    let conn: BackendConnection;
    try {
      conn = await BackendConnection.connect({
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
      // A server that answered the login with an ERR is up (a wrong database or password is
      // not a health problem), unless the ERR says it is full or going away.
      const errno = error instanceof BackendProtocolError ? error.serverErrno : 0;
      const alive = errno !== 0 && errno !== 1040 && errno !== 1203 && errno !== 1053;
      this.options.onHealth(r.target, alive, alive ? undefined : (error as Error));
      throw error;
    }
    this.options.onHealth(r.target, true);
    if (r.verifyWritable === true) await verifyWritable(conn);
    this.poolKeyOf.set(conn, key);
    conn.socket.once('close', () => this.forget(key, conn));
    return conn;
  }

  /**
   * A fresh connection to `target` that must find Dolt writable, closed right after: the prober's
   * question "does the suspect primary take writes again?". Never pooled; reports health.
   */
  async probeWritable(target: BackendTarget, login: BackendLogin): Promise<void> {
    const conn = await this.acquire({ target, login, clientCapabilities: 0, charset: PROBE_CHARSET, database: null, verifyWritable: true, fresh: true });
    conn.destroy(null);
  }

  /**
   * Takes a connection back from a session. It is reset and kept if clean and wanted (`keep`
   * false: its node was retired, or the caller knows better), else destroyed.
   */
  release(conn: BackendConnection, keep = true): void {
    const key = this.poolKeyOf.get(conn);
    conn.sink = null;
    if (!keep || this.closed || key === undefined || !conn.reusable || this.options.maxIdlePerBackend === 0) {
      conn.destroy(null);
      return;
    }
    const list = this.idle.get(key) ?? [];
    if (list.length >= this.options.maxIdlePerBackend) {
      conn.destroy(null);
      return;
    }
    conn.runCommand(COM_RESET_CONNECTION_FRAME).then(
      (outcome) => {
        if (outcome.errno !== 0 || !conn.reusable || this.closed) {
          conn.destroy(null);
          return;
        }
        conn.sink = null;
        conn.stateOwner = null;
        conn.stateGeneration = 0;
        conn.appliedSeq = 0;
        conn.multiStatements = null;
        const current = this.idle.get(key) ?? [];
        if (current.length >= this.options.maxIdlePerBackend) {
          conn.destroy(null);
          return;
        }
        current.push({ conn, since: Date.now() });
        this.idle.set(key, current);
      },
      () => conn.destroy(null),
    );
  }

  /** Closes idle connections to `name` (its address or role changed, or it is no longer a primary). */
  retireNode(name: string): void {
    for (const [key, list] of this.idle) {
      if (!key.startsWith(`${name}\u0000`)) continue;
      for (const e of list) e.conn.destroy(null);
      this.idle.delete(key);
    }
  }

  /** Closes connections idle longer than idleTimeoutMs. */
  sweep(now: number): void {
    const limit = now - this.options.idleTimeoutMs;
    for (const [key, list] of this.idle) {
      const keep = list.filter((e) => {
        if (e.since > limit && !e.conn.isClosed) return true;
        e.conn.destroy(null);
        return false;
      });
      if (keep.length === 0) this.idle.delete(key);
      else this.idle.set(key, keep);
    }
  }

  closeAll(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const e of list) e.conn.destroy(null);
    this.idle.clear();
  }

  private forget(key: string, conn: BackendConnection): void {
    const list = this.idle.get(key);
    if (list === undefined) return;
    const i = list.findIndex((e) => e.conn === conn);
    if (i >= 0) list.splice(i, 1);
  }
}
