/**
 * Chooses which replica serves the next read. Pure state, no I/O and no clock of its own: every
 * method that needs the time takes `now` (milliseconds, from the caller's monotonic clock).
 *
 * Strategies:
 * - 'round-robin': smooth weighted round robin. Each pick adds every available replica's weight
 *   to its running score, picks the highest score (first listed wins a tie) and subtracts the total
 *   weight from the winner. Over any run of picks whose length is a multiple of the total weight,
 *   with the same replicas available throughout, each replica is picked exactly weight times, and
 *   picks of one replica are spread out rather than bunched (weights 1:2 give B A B B A B ...).
 * - 'least-outstanding': the replica with the fewest queries in flight per unit of weight
 *   (outstanding / weight, compared by cross-multiplying so no float rounding decides); replicas
 *   tied on that ratio are chosen between by the smooth weighted round robin above, so idle
 *   replicas still share load by weight.
 *
 * A replica with weight 0 is never picked (drained); one marked down is skipped until its
 * `downUntil` has passed, after which it is tried again. `markFailed` marks it down for an
 * exponentially growing delay (`nextRetryDelayMs`), `markUp` forgets its failures. `pick`
 * returns undefined when no replica is available: the caller reads from the primary.
 *
 * Invariants: `outstanding >= 0` (an unmatched `end` is ignored, not counted below zero); the
 * running scores of the replicas taking part in a round sum to 0 after each pick.
 */

export type SelectionStrategy = 'round-robin' | 'least-outstanding';

export interface ReplicaWeight {
  readonly name: string;
  /** Relative share of reads; 0 takes the replica out of rotation. Integers keep the arithmetic exact. */
  readonly weight: number;
}

export interface BackoffPolicy {
  /** Delay after the first failure. */
  readonly initialMs: number;
  /** Upper bound of any delay. */
  readonly maxMs: number;
  /** Growth per further consecutive failure. */
  readonly multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 250, maxMs: 30_000, multiplier: 2 });

/**
 * How long to keep a backend out after `failures` consecutive failures: 0 for none, then
 * initialMs, initialMs * multiplier, ... capped at maxMs. Pure; add jitter at the call site if
 * many proxies retry the same backend.
 */
export function nextRetryDelayMs(failures: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  if (!(failures >= 1)) return 0;
  const delay = policy.initialMs * Math.pow(policy.multiplier, Math.floor(failures) - 1);
  return Math.min(policy.maxMs, delay); // an overflow to Infinity is capped as well
}

export class ReplicaConfigError extends Error {
  readonly code = 'REPLICA_CONFIG';
  constructor(detail: string) {
    super(`replica list is invalid: ${detail}`);
  }
}

export interface ReplicaStatus {
  readonly name: string;
  readonly weight: number;
  readonly available: boolean;
  /** When a down replica will be tried again; undefined when it is up. */
  readonly downUntilMs: number | undefined;
  readonly failures: number;
  readonly outstanding: number;
}

interface Entry {
  readonly name: string;
  weight: number;
  /** Running score of the smooth weighted round robin. */
  current: number;
  outstanding: number;
  downUntil: number | undefined;
  failures: number;
}

export class ReplicaSelector {
  private entries: Entry[] = [];
  private readonly byName = new Map<string, Entry>();
  private readonly tied: Entry[] = [];

  constructor(
    readonly strategy: SelectionStrategy,
    private readonly backoff: BackoffPolicy = DEFAULT_BACKOFF,
  ) {}

  /**
   * Replaces the replica list (in the given order, which breaks ties). Replicas that stay keep
   * their outstanding count, failures and down state; new ones start up and idle; removed ones
   * are forgotten (a late `end` for them is ignored).
   */
  setReplicas(replicas: readonly ReplicaWeight[]): void {
    const seen = new Set<string>();
    for (const r of replicas) {
      if (typeof r.name !== 'string' || r.name === '') throw new ReplicaConfigError('a replica has an empty name');
      if (seen.has(r.name)) throw new ReplicaConfigError(`replica ${r.name} is listed twice`);
      if (!(Number.isFinite(r.weight) && r.weight >= 0)) throw new ReplicaConfigError(`replica ${r.name} has weight ${r.weight}; weights are finite numbers >= 0`);
      seen.add(r.name);
    }
    const next: Entry[] = [];
    for (const r of replicas) {
      const old = this.byName.get(r.name);
      if (old !== undefined) {
        if (old.weight !== r.weight) old.current = 0;
        old.weight = r.weight;
        next.push(old);
      } else {
        next.push({ name: r.name, weight: r.weight, current: 0, outstanding: 0, downUntil: undefined, failures: 0 });
      }
    }
    this.entries = next;
    this.byName.clear();
    for (const e of next) this.byName.set(e.name, e);
  }

  /** Keeps `name` out of rotation until `untilMs`. */
  markDown(name: string, untilMs: number): void {
    const e = this.byName.get(name);
    if (e !== undefined) e.downUntil = untilMs;
  }

  /**
   * Records one more consecutive failure and keeps `name` out for the backoff delay it earns.
   * Returns the time it will be tried again, or undefined for an unknown name.
   */
  markFailed(name: string, now: number): number | undefined {
    const e = this.byName.get(name);
    if (e === undefined) return undefined;
    e.failures++;
    e.downUntil = now + nextRetryDelayMs(e.failures, this.backoff);
    return e.downUntil;
  }

  /** The replica works again: back in rotation, failures forgotten, starting from a fair score. */
  markUp(name: string): void {
    const e = this.byName.get(name);
    if (e === undefined) return;
    e.downUntil = undefined;
    e.failures = 0;
    e.current = 0;
  }

  isAvailable(name: string, now: number): boolean {
    const e = this.byName.get(name);
    return e !== undefined && available(e, now);
  }

  /** The replica for the next read, or undefined when none is available (use the primary). */
  pick(now: number): string | undefined {
    const entries = this.entries;
    if (this.strategy === 'round-robin') {
      let total = 0;
      let best: Entry | undefined;
      for (const e of entries) {
        if (!available(e, now)) continue;
        e.current += e.weight;
        total += e.weight;
        if (best === undefined || e.current > best.current) best = e;
      }
      if (best === undefined) return undefined;
      best.current -= total;
      return best.name;
    }
    // least-outstanding: collect the replicas with the lowest outstanding / weight ...
    const tied = this.tied;
    tied.length = 0;
    for (const e of entries) {
      if (!available(e, now)) continue;
      if (tied.length === 0) {
        tied.push(e);
        continue;
      }
      const lead = tied[0];
      const diff = e.outstanding * lead.weight - lead.outstanding * e.weight;
      if (diff < 0) {
        tied.length = 0;
        tied.push(e);
      } else if (diff === 0) {
        tied.push(e);
      }
    }
    if (tied.length === 0) return undefined;
    // ... and let the smooth weighted round robin choose among them.
    let total = 0;
    let best = tied[0];
    for (const e of tied) {
      e.current += e.weight;
      total += e.weight;
      if (e.current > best.current) best = e;
    }
    best.current -= total;
    tied.length = 0;
    return best.name;
  }

  /** A query was sent to `name`. Pair every `begin` with exactly one `end`. */
  begin(name: string): void {
    const e = this.byName.get(name);
    if (e !== undefined) e.outstanding++;
  }

  /** A query sent to `name` finished (answered, failed or abandoned). */
  end(name: string): void {
    const e = this.byName.get(name);
    if (e !== undefined && e.outstanding > 0) e.outstanding--;
  }

  outstanding(name: string): number {
    return this.byName.get(name)?.outstanding ?? 0;
  }

  /** For /metrics and `doltgate status`. */
  status(now: number): ReplicaStatus[] {
    return this.entries.map((e) => ({
      name: e.name,
      weight: e.weight,
      available: available(e, now),
      downUntilMs: e.downUntil !== undefined && now < e.downUntil ? e.downUntil : undefined,
      failures: e.failures,
      outstanding: e.outstanding,
    }));
  }
}

function available(e: Entry, now: number): boolean {
  return e.weight > 0 && (e.downUntil === undefined || now >= e.downUntil);
}
