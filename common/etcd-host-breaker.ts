/**
 * The per-host circuit breaker our etcd clients use instead of etcd3's default, which stays open
 * for 5 s after three failed calls: after an etcd outage an agent would keep failing for seconds
 * once etcd answers again — seconds taken from its leader lease — and a proxy would route by a
 * stale topology that long. One second still spares a dead host a storm of calls.
 *
 * It never makes a call wait. cockatiel's breaker, once half-open, makes every call wait for the
 * one trial call; etcd3 retries a call whose auth token etcd no longer knows (every token, after
 * an etcd restart with authentication on) from inside that trial, so the retry waited for the
 * trial and the trial for the retry, forever: every agent cut off from a healthy etcd
 * (test/integration/etcd-auth.test.ts). Here, past the open second, calls simply go through; the
 * first success closes the breaker, a recoverable failure opens it again.
 */

import { BrokenCircuitError, noop, type IDefaultPolicyContext, type IPolicy } from 'cockatiel';
import { isRecoverableError } from 'etcd3';

export const HOST_BREAKER_HALF_OPEN_MS = 1000;
/** Consecutive failed calls that open a member's breaker. */
const ETCD_HOST_BREAKER_FAILURES = 3;

class NonBlockingBreaker implements IPolicy {
  declare readonly _altReturn: never;
  readonly onSuccess = noop.onSuccess;
  readonly onFailure = noop.onFailure;
  private failures = 0;
  private openUntil = 0;

  async execute<T>(fn: (context: IDefaultPolicyContext) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> {
    if (Date.now() < this.openUntil) throw new BrokenCircuitError();
    try {
      const result = await fn({ signal: signal ?? new AbortController().signal });
      this.failures = 0;
      return result;
    } catch (error) {
      if (isRecoverableError(error as Error) && ++this.failures >= ETCD_HOST_BREAKER_FAILURES) {
        this.failures = 0;
        this.openUntil = Date.now() + HOST_BREAKER_HALF_OPEN_MS;
      }
      throw error;
    }
  }
}

/** For `new Etcd3({ faultHandling: { host: etcdHostBreaker } })`. */
export function etcdHostBreaker(): IPolicy {
  return new NonBlockingBreaker();
}
