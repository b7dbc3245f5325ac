/**
 * The agent's handle on its own Dolt. Managed mode owns the `dolt sql-server` process: it starts
 * it in a role, restarts it on a role change (read-only is a start-up setting) and after a crash
 * with bounded backoff. External mode only connects; it cannot fence (stop writes), disable
 * read-only or switch replication, so such a node can be a replica that is watched but never
 * promoted or demoted by doltgate (documented in the README).
 */

import type { Logger } from '../../common/logger';
import type { DoltServerRole } from './server-config';
import { DoltSqlServer } from './sql-server';
import type { SqlEndpoint } from './sql-session';

export class ExternalModeError extends Error {
  readonly code = 'EXTERNAL_MODE';
  constructor(what: string) {
    super(`cannot ${what}: this agent runs in external mode and does not control its dolt sql-server`);
  }
}

export interface LocalDolt {
  readonly mode: 'managed' | 'external';
  readonly endpoint: SqlEndpoint;
  /** The role the server runs in now; null when not running (managed) or unknown (external). */
  readonly runningRole: DoltServerRole | null;
  readonly pid: number | undefined;
  /** Makes sure the server runs in `role`, restarting it if it runs in another role. */
  ensureRole(role: DoltServerRole): Promise<void>;
  /**
   * Stop writes now: a fast stop, then (unless restart is false) start read-only without
   * replication. A hand-over passes false: the rejoin that follows starts it anyway, and the
   * restart would only lengthen the clients' write pause.
   */
  fence(options?: { restart?: boolean }): Promise<void>;
  /**
   * Records that the running server now has `role`'s replication settings, changed at run time
   * through SQL (push-on-write via SET PERSIST), so no restart was needed.
   */
  adoptRole(role: DoltServerRole): void;
  /** After a crash: restart in the last role if the backoff allows; true if restarted. */
  restartIfCrashed(now: number): Promise<boolean>;
  stop(): Promise<void>;
}

export class ManagedLocalDolt implements LocalDolt {
  readonly mode = 'managed' as const;
  private role: DoltServerRole | null = null;
  private crashes = 0;
  private nextRestartAt = 0;

  constructor(private readonly server: DoltSqlServer, readonly endpoint: SqlEndpoint, private readonly logger: Logger, private readonly maxBackoffMs = 30_000) {}

  get runningRole(): DoltServerRole | null {
    return this.server.running ? this.role : null;
  }

  get pid(): number | undefined {
    return this.server.running ? this.server.pid : undefined;
  }

  async ensureRole(role: DoltServerRole): Promise<void> {
    if (this.server.running && this.role === role) return;
    const started = Date.now();
    // Leaving a read-only role, nothing is in flight that a graceful stop would protect (Dolt is
    // crash-safe for what it committed), and on a failover's critical path every 100 ms counts.
    if (this.role === 'replica' || this.role === 'fenced') await this.server.kill9();
    else await this.server.stop(5_000);
    await this.server.configure(role);
    this.role = role;
    await this.server.start(30_000);
    this.crashes = 0;
    this.logger.info('dolt sql-server running', { role, pid: this.server.pid, tookMs: Date.now() - started });
  }

  adoptRole(role: DoltServerRole): void {
    this.role = role;
  }

  async fence(options: { restart?: boolean } = {}): Promise<void> {
    // A short grace: fencing races the lease, and a SIGKILLed Dolt loses nothing committed.
    await this.server.stop(1_000);
    await this.server.configure('fenced');
    this.role = 'fenced';
    if (options.restart === false) {
      this.logger.info('dolt sql-server stopped to fence this node', { pid: this.server.pid });
      return;
    }
    this.logger.warn('dolt sql-server stopped to fence this node; restarting read-only', { pid: this.server.pid });
    await this.server.start(30_000);
  }

  async restartIfCrashed(now: number): Promise<boolean> {
    if (this.server.running || this.role === null) return false;
    if (now < this.nextRestartAt) return false;
    this.crashes++;
    const backoff = Math.min(this.maxBackoffMs, 500 * 2 ** Math.min(this.crashes - 1, 10));
    this.nextRestartAt = now + backoff;
    // A writable server comes back read-only: whether it may take writes again is decide's call.
    const role: DoltServerRole = this.role === 'primary' || this.role === 'standby' ? 'fenced' : this.role;
    this.logger.warn('dolt sql-server is not running; restarting it', { role, attempt: this.crashes, nextBackoffMs: backoff });
    try {
      if (role !== this.role) {
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

  async stop(): Promise<void> {
    await this.server.stop(10_000);
  }
}

export class ExternalLocalDolt implements LocalDolt {
  readonly mode = 'external' as const;
  readonly runningRole = null;
  readonly pid = undefined;

  constructor(readonly endpoint: SqlEndpoint) {}

  async ensureRole(role: DoltServerRole): Promise<void> {
    throw new ExternalModeError(`run dolt as ${role}`);
  }

  async fence(): Promise<void> {
    throw new ExternalModeError('fence (stop writes)');
  }

  adoptRole(): void {
    // Nothing to track: the role of an external server is not ours.
  }

  async restartIfCrashed(): Promise<boolean> {
    return false;
  }

  async stop(): Promise<void> {
    // Not ours to stop.
  }
}
