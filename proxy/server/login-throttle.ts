/**
 * Failed logins slow down whoever keeps failing, the way MySQL's connection_control plugin does
 * (failed_connections_threshold, then a delay growing by a step per further failure, capped):
 * without it one address tried 2,946 wrong passwords a second.
 *
 * Two counts, each of consecutive failures: per client address and user name (a password being
 * guessed), and per address over all names (names being sprayed, with its own, higher,
 * threshold). A login attempt's verdict — success or failure alike — is held back by the larger
 * of the two delays before the client hears it: holding only failures would let a guesser read
 * "no answer yet" as "wrong" and hang up. Keys are per address, so a guesser elsewhere never slows
 * a legitimate client down. A success clears its address-and-user count; the address count only
 * ages out (`forgetAfterMs` after its last failure), so one valid account cannot launder a spray.
 * At most `maxTracked` keys are kept; past that the one failed longest ago is forgotten.
 */

export interface LoginThrottleOptions {
  /** Consecutive failures of one user from one address before its attempts are delayed. */
  userThreshold: number;
  /** Consecutive failures from one address (any user) before its attempts are delayed. */
  addressThreshold: number;
  /** The delay at the threshold, and what each further failure adds. */
  stepMs: number;
  maxDelayMs: number;
  forgetAfterMs: number;
  maxTracked: number;
}

interface Failures {
  count: number;
  lastAt: number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(private readonly options: LoginThrottleOptions) {}

  get tracked(): number {
    return this.failures.size;
  }

  /** How long to hold the verdict of an attempt by `user` from `address` (ms; 0 = none). */
  delayFor(address: string, user: string, now: number): number {
    const o = this.options;
    return Math.max(this.delayOf(userKey(address, user), o.userThreshold, now), this.delayOf(addressKey(address), o.addressThreshold, now));
  }

  recordFailure(address: string, user: string, now: number): void {
    this.bump(userKey(address, user), now);
    this.bump(addressKey(address), now);
  }

  recordSuccess(address: string, user: string): void {
    this.failures.delete(userKey(address, user));
  }

  private delayOf(key: string, threshold: number, now: number): number {
    const f = this.current(key, now);
    if (f === undefined || f.count < threshold) return 0;
    return Math.min(this.options.maxDelayMs, (f.count - threshold + 1) * this.options.stepMs);
  }

  private bump(key: string, now: number): void {
    const f = this.current(key, now);
    // Re-inserted so the map's order is the order of last failure: the first key is the stalest.
    this.failures.delete(key);
    this.failures.set(key, { count: (f?.count ?? 0) + 1, lastAt: now });
    if (this.failures.size > this.options.maxTracked) {
      const stalest = this.failures.keys().next().value as string;
      this.failures.delete(stalest);
    }
  }

  private current(key: string, now: number): Failures | undefined {
    const f = this.failures.get(key);
    if (f !== undefined && now - f.lastAt >= this.options.forgetAfterMs) {
      this.failures.delete(key);
      return undefined;
    }
    return f;
  }
}

// NUL cannot occur in a user name read from a handshake (it ends the name), so keys cannot collide.
const userKey = (address: string, user: string): string => `${address}\0${user}`;
const addressKey = (address: string): string => address;

/**
 * A token bucket: at most `ratePerSecond` takes a second on average, `burst` at once. Bounds CPU
 * work a client can demand before it has proven anything (RSA decryption of a password).
 */
export class RateBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Takes one token if there is one. */
  tryTake(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.ratePerSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
