/**
 * The agent's handle on its own Dolt. Managed mode owns the `dolt sql-server` process: it starts
 * it in a role, restarts it on a role change (read-only is a start-up setting) and after a crash
 * with bounded backoff. External mode only connects; it cannot fence (stop writes), disable
 * read-only or switch replication, so such a node can be a replica that is watched but never
 * promoted or demoted by doltgate (documented in the README).
 *
 * Invariants (managed mode):
 * - Only the primary role takes client writes, and it runs only under a guarded keeper: it starts
 *   with the keeper deadline the lease allows (`vouch`), and a heartbeat passes on every newer
 *   deadline; when they stop (the agent frozen, the lease not renewed) the keeper kills Dolt.
 * - A writable public role is left by SIGKILL, never by a graceful stop: a graceful stop keeps
 *   serving the connections it has, so writes could land after the fence. Dolt is crash-safe for
 *   what it committed.
 * - The standby listens on a fresh private loopback port each time (server-config.ts), so its
 *   endpoint changes with the role: callers read `endpoint` when they connect.
 * - Cluster mode (server-config.ts, ClusterReplicationSettings): primary and replica run clustered,
 *   and a clustered start is always a cluster standby. The primary role is taken at run time with
 *   dolt_assume_cluster_role, and only after the keeper was armed with the lease's deadline; the
 *   keeper is disarmed only once Dolt reports the standby role again. A clustered primary is left
 *   by SIGKILL (fence) or by Dolt's graceful hand-over (handOverToStandby), never straight to replica.
 */

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/logger';
import { bindEphemeral } from '../../common/free-port';
import { fenceClockMs } from '../../common/fence-clock';
import type { DoltServerRole } from './server-config';
import { DoltSqlServer } from './sql-server';
import { withSession, type SqlEndpoint } from './sql-session';
import { assumeClusterRole, readClusterRole, transitionToStandby, type CaughtUp } from './cluster-role';

/** A primary is not started with less of the lease left than this: Dolt needs it to boot. */
export const MIN_VOUCHED_START_MS = 1_000;
/** How often the keeper hears the newest deadline; well inside any fence margin. */
const VOUCH_INTERVAL_MS = 100;

export class NotVouchedError extends Error {
  readonly code = 'NOT_VOUCHED';
  constructor(leftMs: number | null) {
    super(
      leftMs === null
        ? 'not starting Dolt writable: this agent holds no leader lease to guard it with'
        : `not starting Dolt writable: the leader lease allows ${Math.max(0, leftMs)} ms more, below the ${MIN_VOUCHED_START_MS} ms a start needs`,
    );
  }
}

/** The keeper deadline the agent's lease allows now (fence clock ms), or null without a lease. */
export type Vouch = () => number | null;

export class ExternalModeError extends Error {
  readonly code = 'EXTERNAL_MODE';
  constructor(what: string) {
    super(`cannot ${what}: this agent runs in external mode and does not control its dolt sql-server`);
  }
}

export interface LocalDolt {
  readonly mode: 'managed' | 'external';
  /** Where to reach the server now (the standby's private listener while it runs as standby). */
  readonly endpoint: SqlEndpoint;
  /** The role the server runs in now; null when not running (managed) or unknown (external). */
  readonly runningRole: DoltServerRole | null;
  readonly pid: number | undefined;
  /**
   * Makes sure the server runs in `role`, restarting it if it runs in another role. `epoch`
   * matters in cluster mode only: the primary's is the epoch it assumes the role at; the replica's
   * the standby epoch written before a clustered start (default: the last one).
   */
  ensureRole(role: DoltServerRole, epoch?: number): Promise<void>;
  /**
   * Cluster mode, the outgoing primary of a hand-over: Dolt's graceful step-down to standby at
   * `epoch` once `minCaughtUp` standbys (0: all) hold every database; afterwards the server runs
   * as a replica. Absent in remote mode (the hand-over pushes to the remote and fences instead).
   */
  handOverToStandby?(epoch: number, minCaughtUp: number, timeoutMs: number): Promise<CaughtUp[]>;
  /**
   * Stop writes now: a fast stop, then (unless restart is false) start read-only without
   * replication. A hand-over passes false: the rejoin that follows starts it anyway, and the
   * restart would only lengthen the clients' write pause.
   */
  fence(options?: { restart?: boolean }): Promise<void>;
  /** After a crash: restart in the last role if the backoff allows; true if restarted. */
  restartIfCrashed(now: number): Promise<boolean>;
  /**
   * A read-only server (replica, fenced) restarted without these databases: read-only Dolt
   * refuses DROP DATABASE. Writable roles drop through SQL instead.
   */
  removeDatabases(names: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

export class ManagedLocalDolt implements LocalDolt {
  readonly mode = 'managed' as const;
  private role: DoltServerRole | null = null;
  private crashes = 0;
  private nextRestartAt = 0;
  private vouching: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: DoltSqlServer,
    private readonly credentials: Pick<SqlEndpoint, 'user' | 'password'>,
    private readonly logger: Logger,
    private readonly vouch: Vouch,
    private readonly maxBackoffMs = 30_000,
    /** Cluster mode: dolt_cluster_ack_writes_timeout_secs, set on each promotion; 0 leaves it off. */
    private readonly ackWritesTimeoutSecs = 0,
  ) {}

  get endpoint(): SqlEndpoint {
    return { host: this.server.host, port: this.server.port, ...this.credentials };
  }

  get runningRole(): DoltServerRole | null {
    return this.server.running ? this.role : null;
  }

  get pid(): number | undefined {
    return this.server.running ? this.server.pid : undefined;
  }

  async ensureRole(role: DoltServerRole, epoch?: number): Promise<void> {
    if (this.server.runsClustered(role)) return this.ensureClusteredRole(role as 'primary' | 'replica', epoch);
    if (this.server.running && this.role === role) return;
    const started = Date.now();
    // Only a standby is stopped gracefully: it is private and idle. Every other role is left by
    // SIGKILL (see the invariants), which on a failover's critical path also saves time.
    if (this.role === 'standby') await this.server.stop(5_000);
    else await this.server.kill9();
    this.stopVouching();
    this.server.usePrivatePort(role === 'standby' ? await bindEphemeral() : null);
    await this.server.configure(role);
    this.role = role;
    if (role === 'primary') await this.startGuarded();
    else await this.server.start(30_000);
    this.crashes = 0;
    this.logger.info('dolt sql-server running', { role, pid: this.server.pid, port: this.server.port, tookMs: Date.now() - started });
  }

  /**
   * Cluster mode's primary and replica. A running replica is promoted in place; anything else is
   * (re)started clustered as a standby first, at `epoch - 1` when it is to be promoted to `epoch`
   * (Dolt needs a rising epoch), else at the replica's epoch.
   */
  private async ensureClusteredRole(role: 'primary' | 'replica', epoch: number | undefined): Promise<void> {
    const running = this.server.running ? this.role : null;
    if (running === role) return;
    const started = Date.now();
    if (role === 'primary' && epoch === undefined) throw new Error('promoting a cluster node needs the epoch it becomes primary at');
    if (role === 'primary' && running === 'replica') {
      await this.promoteInPlace(epoch as number);
      this.logger.info('dolt sql-server assumed the cluster primary role', { epoch, pid: this.server.pid, tookMs: Date.now() - started });
      return;
    }
    if (role === 'replica' && running === 'primary') {
      throw new Error('a cluster primary leaves its role by fence or hand-over, never straight to replica: the standbys may lack its newest commits');
    }
    if (this.role === 'standby') await this.server.stop(5_000);
    else await this.server.kill9();
    this.stopVouching();
    this.server.usePrivatePort(null);
    this.server.useClusterEpoch(role === 'primary' ? (epoch as number) - 1 : (epoch ?? this.server.clusterEpoch ?? 0));
    await this.server.configure('replica');
    this.role = 'replica';
    await this.server.start(30_000);
    this.crashes = 0;
    if (role === 'primary') await this.promoteInPlace(epoch as number);
    this.logger.info('dolt sql-server running clustered', { role, epoch: role === 'primary' ? epoch : this.server.clusterEpoch, pid: this.server.pid, port: this.server.port, tookMs: Date.now() - started });
  }

  /**
   * Arms the keeper, then assumes the primary role. Invariant: Dolt never takes writes unguarded,
   * so the guard comes first; after a failed CALL the guard is dropped only if Dolt says it is
   * still a standby (a role it cannot read is treated as primary: the fence will kill it).
   */
  private async promoteInPlace(epoch: number): Promise<void> {
    const until = this.vouch();
    const left = until === null ? null : until - fenceClockMs();
    if (until === null || left === null || left < MIN_VOUCHED_START_MS) throw new NotVouchedError(left);
    if (!this.server.guard(until)) throw new Error('not promoting Dolt: no keeper to guard it with');
    this.startVouching();
    try {
      await assumeClusterRole(this.endpoint, 'primary', epoch, 10_000);
    } catch (error) {
      const now = await withSession(this.endpoint, 5_000, readClusterRole).catch(() => null);
      if (now?.role === 'standby') {
        this.stopVouching();
        this.server.unguard();
      } else {
        this.role = 'primary';
      }
      throw error;
    }
    this.role = 'primary';
    this.server.useClusterEpoch(epoch);
    if (this.ackWritesTimeoutSecs > 0) {
      // Read by the primary's commits (dolt-cluster-mode-facts pins SET GLOBAL); best effort: the
      // durability knob off for a moment must not undo a promotion.
      await withSession(this.endpoint, 5_000, (session) => session.query('SET @@GLOBAL.dolt_cluster_ack_writes_timeout_secs = ?', [this.ackWritesTimeoutSecs])).catch((error: Error) =>
        this.logger.warn('could not set dolt_cluster_ack_writes_timeout_secs on the new primary', { error: error.message }),
      );
    }
  }

  async handOverToStandby(epoch: number, minCaughtUp: number, timeoutMs: number): Promise<CaughtUp[]> {
    if (!this.server.running || this.role !== 'primary' || !this.server.runsClustered('primary')) {
      throw new Error(`a graceful hand-over is for a running cluster primary; this server runs as ${this.runningRole ?? 'nothing'}`);
    }
    const caughtUp = await transitionToStandby(this.endpoint, epoch, minCaughtUp, timeoutMs);
    const now = await withSession(this.endpoint, 5_000, readClusterRole);
    if (now.role !== 'standby') throw new Error(`dolt_cluster_transition_to_standby returned, but Dolt reports ${now.role}@${now.epoch}`);
    this.stopVouching();
    this.server.unguard();
    this.role = 'replica';
    this.server.useClusterEpoch(epoch);
    this.logger.info('dolt sql-server handed over: a cluster standby now', { epoch, caughtUp });
    return caughtUp;
  }

  private startVouching(): void {
    this.stopVouching();
    this.vouching = setInterval(() => {
      const next = this.vouch();
      if (next !== null) this.server.vouchUntil(next);
    }, VOUCH_INTERVAL_MS);
    this.vouching.unref();
  }

  private async startGuarded(): Promise<void> {
    const until = this.vouch();
    const left = until === null ? null : until - fenceClockMs();
    if (until === null || left === null || left < MIN_VOUCHED_START_MS) throw new NotVouchedError(left);
    this.startVouching();
    try {
      await this.server.start(30_000, until);
    } catch (error) {
      this.stopVouching();
      await this.server.kill9();
      throw error;
    }
  }

  private stopVouching(): void {
    clearInterval(this.vouching);
    this.vouching = undefined;
  }

  async fence(options: { restart?: boolean } = {}): Promise<void> {
    await this.server.kill9();
    this.stopVouching();
    this.server.usePrivatePort(null);
    await this.server.configure('fenced');
    this.role = 'fenced';
    if (options.restart === false) {
      this.logger.info('dolt sql-server killed to fence this node', { pid: this.server.pid });
      return;
    }
    this.logger.warn('dolt sql-server killed to fence this node; restarting read-only', { pid: this.server.pid });
    await this.server.start(30_000);
  }

  async restartIfCrashed(now: number): Promise<boolean> {
    if (this.server.running || this.role === null) return false;
    if (now < this.nextRestartAt) return false;
    this.crashes++;
    const backoff = Math.min(this.maxBackoffMs, 500 * 2 ** Math.min(this.crashes - 1, 10));
    this.nextRestartAt = now + backoff;
    this.stopVouching();
    // A writable server comes back read-only: whether it may take writes again is decide's call.
    const role: DoltServerRole = this.role === 'primary' || this.role === 'standby' ? 'fenced' : this.role;
    this.logger.warn('dolt sql-server is not running; restarting it', { role, attempt: this.crashes, nextBackoffMs: backoff });
    try {
      if (role !== this.role) {
        this.server.usePrivatePort(null);
        await this.server.configure(role);
        this.role = role;
      }
      await this.server.start(30_000);
      return true;
    } catch (error) {
      this.logger.error('restarting dolt sql-server failed', { error: (error as Error).message });
      return false;
    }
  }

  async removeDatabases(names: readonly string[]): Promise<void> {
    if (this.role !== 'replica' && this.role !== 'fenced') throw new Error(`removing databases by restart is for read-only roles; this server runs as ${this.role ?? 'nothing'}`);
    for (const name of names) {
      // Names come from etcd: only a plain directory name under the data dir is ever removed.
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\\')) throw new Error(`refusing to remove database ${JSON.stringify(name)}: not a plain name`);
    }
    await this.server.stop(5_000);
    for (const name of names) await rm(join(this.server.dataDir, name), { recursive: true, force: true });
    await this.server.start(30_000);
    this.logger.info('dolt sql-server restarted without dropped databases', { databases: names, role: this.role, pid: this.server.pid });
  }

  async stop(): Promise<void> {
    this.stopVouching();
    // A primary is not drained gracefully here either: the lease is about to be revoked.
    if (this.role === 'primary') await this.server.kill9();
    else await this.server.stop(10_000);
  }
}

export class ExternalLocalDolt implements LocalDolt {
  readonly mode = 'external' as const;
  readonly runningRole = null;
  readonly pid = undefined;

  constructor(readonly endpoint: SqlEndpoint) {}

  async ensureRole(role: DoltServerRole, _epoch?: number): Promise<void> {
    throw new ExternalModeError(`run dolt as ${role}`);
  }

  async fence(): Promise<void> {
    throw new ExternalModeError('fence (stop writes)');
  }

  async restartIfCrashed(): Promise<boolean> {
    return false;
  }

  async removeDatabases(): Promise<void> {
    throw new ExternalModeError('remove dropped databases');
  }

  async stop(): Promise<void> {
    // Not ours to stop.
  }
}
