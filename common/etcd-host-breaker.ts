/**
 * The per-host circuit breaker our etcd clients use instead of etcd3's default, which stays open
 * for 5 s after three failed calls: after an etcd outage an agent would keep failing for seconds
 * once etcd answers again — seconds taken from its leader lease — and a proxy would route by a
 * stale topology that long. One second still spares a dead host a storm of calls.
 */

import { circuitBreaker, ConsecutiveBreaker, handleWhen, type IPolicy } from 'cockatiel';
import { isRecoverableError } from 'etcd3';

export const HOST_BREAKER_HALF_OPEN_MS = 1000;
/** Consecutive failed calls that open a member's breaker. */
const ETCD_HOST_BREAKER_FAILURES = 3;

/** For `new Etcd3({ faultHandling: { host: etcdHostBreaker } })`. */
export function etcdHostBreaker(): IPolicy {
  return circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: HOST_BREAKER_HALF_OPEN_MS, breaker: new ConsecutiveBreaker(ETCD_HOST_BREAKER_FAILURES) });
}
