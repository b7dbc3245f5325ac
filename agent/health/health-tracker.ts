/**
 * Turns a stream of check results into "healthy or not": N consecutive failures make a node
 * unhealthy, one success makes it healthy again. Pure; the clock comes from the caller.
 */

import type { MemberHealth } from '../../proto';

export interface CheckResult {
  ok: boolean;
  latencyMs: number | null;
  error: string | null;
  at: number;
}

export class HealthTracker {
  private consecutiveFailures = 0;
  private last: CheckResult | null = null;
  private hostReachable = true;

  constructor(private readonly failureThreshold: number) {
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) throw new Error(`failureThreshold must be a positive integer, got ${failureThreshold}`);
  }

  record(result: CheckResult): void {
    this.last = result;
    this.consecutiveFailures = result.ok ? 0 : this.consecutiveFailures + 1;
  }

  /**
   * The server's process is gone: unhealthy at once. The threshold is there so one slow answer
   * does not fail a node over; an exited process will not answer at all.
   */
  recordExited(result: CheckResult): void {
    this.last = { ...result, ok: false };
    this.consecutiveFailures = Math.max(this.failureThreshold, this.consecutiveFailures + 1);
  }

  recordHost(reachable: boolean): void {
    this.hostReachable = reachable;
  }

  get healthy(): boolean {
    return this.last !== null && this.consecutiveFailures < this.failureThreshold;
  }

  snapshot(): MemberHealth {
    return {
      healthy: this.healthy,
      consecutiveFailures: this.consecutiveFailures,
      lastCheckAt: this.last ? new Date(this.last.at).toISOString() : new Date(0).toISOString(),
      sqlLatencyMs: this.last?.latencyMs ?? null,
      lastError: this.last?.error ?? null,
      hostReachable: this.hostReachable,
    };
  }
}
