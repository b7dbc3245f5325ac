/**
 * Keeps this agent's etcd lease alive on its own timer, so a long failover step in the HA loop
 * never starves the keepalive. The loop asks `current()` for the lease (granting a new one once
 * the old has surely expired) and `leftMs()` for the fencing deadline; the keeper beside Dolt
 * gets `keeperDeadline()`.
 *
 * Every time here is on the fence clock (common/fence-clock.ts), never the wall clock: a clock
 * step must not stretch a lease. A renewal counts from when it was SENT, so our estimate of the
 * lease's end is never later than etcd's.
 */

import { fenceClockMs } from '../common/fence-clock';
import type { Logger } from '../common/logger';
import type { AgentMetrics } from './agent-metrics';
import { LeaseExpiredError, type ClusterStore, type LeaseHandle } from './store/cluster-store';

export class LeaseKeeper {
  private lease: LeaseHandle | null = null;
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;
  /** Set when etcd told us the lease is gone: our deadline is then already behind us. */
  private expiredAt: number | null = null;

  constructor(
    private readonly store: ClusterStore,
    private readonly ttlMs: number,
    private readonly logger: Logger,
    private readonly metrics: AgentMetrics,
    private readonly now: () => number = fenceClockMs,
  ) {}

  start(): void {
    // Four renewals per TTL: one lost keepalive still leaves three chances before the fence margin.
    this.timer = setInterval(() => void this.renewOnce(), Math.max(100, Math.floor(this.ttlMs / 4)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** When our lease ends (fence clock) if no renewal succeeds from now on; null without a lease. */
  expiresAt(): number | null {
    if (this.lease) return this.lease.lastRenewSentAt + this.lease.ttlMs;
    return this.expiredAt;
  }

  /** The id of the lease this agent holds now (the one its keys must be bound to), or null. */
  currentId(): string | null {
    return this.lease?.id ?? null;
  }

  /** How long the lease lives without another renewal; negative once lapsed, null without a lease. */
  leftMs(): number | null {
    const expiry = this.expiresAt();
    return expiry === null ? null : expiry - this.now();
  }

  /**
   * Until when Dolt may take writes on this lease: its end minus the fence margin, so Dolt is
   * killed before etcd could hand the leader key to another node. Null without a live lease.
   */
  keeperDeadline(fenceMarginMs: number): number | null {
    return this.lease ? this.lease.lastRenewSentAt + this.lease.ttlMs - fenceMarginMs : null;
  }

  /** The live lease, granting a fresh one when there is none or the old one has expired. */
  async current(): Promise<LeaseHandle> {
    const expiry = this.expiresAt();
    if (this.lease && expiry !== null && expiry > this.now()) return this.lease;
    if (this.lease) this.logger.warn('lease expired; granting a new one', { lease: this.lease.id });
    this.lease = await this.store.grantLease(this.ttlMs);
    this.expiredAt = null;
    return this.lease;
  }

  async revoke(): Promise<void> {
    const lease = this.lease;
    this.lease = null;
    if (lease) await lease.revoke().catch(() => undefined);
  }

  private async renewOnce(): Promise<void> {
    if (!this.lease || this.renewing) return;
    this.renewing = true;
    const started = this.now();
    try {
      await this.lease.renew();
      this.metrics.leaseRenewSeconds.observe((this.now() - started) / 1000);
    } catch (error) {
      if (error instanceof LeaseExpiredError) {
        this.expiredAt = this.now();
        this.lease = null;
      }
      this.metrics.leaseRenewFailures.inc();
      this.logger.warn('lease renewal failed', { error: (error as Error).message });
    } finally {
      this.renewing = false;
    }
  }
}
