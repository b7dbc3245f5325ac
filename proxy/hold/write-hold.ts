/**
 * The write hold: while the cluster has no primary (a failover or switchover is in progress) the
 * proxy parks each write here instead of failing it, and lets it go once a new primary is
 * published — so a failover that finishes within the hold window costs clients latency, not
 * errors. Modelled on VTGate's failover buffer: an explicit state machine with a limit on every
 * axis (number of waiters, time per waiter) and counters with a documented invariant.
 *
 *   idle ──begin()──▶ holding ──end()──▶ draining ──queue empty──▶ idle
 *                        ▲                   │
 *                        └─────begin()───────┘   (the new primary went away again)
 *
 * - idle: `wait()` resolves at once (the proxy may also skip the call when `state === 'idle'`).
 * - holding: `wait()` queues the caller; it is refused at once with HoldQueueFullError when
 *   `maxHeld` callers already wait (nothing is evicted: the earliest writes keep their place),
 *   and rejected with HoldTimeoutError once it has waited `timeoutMs`. Once the episode (time
 *   since idle → holding) passes `maxEpisodeMs`, nothing more is held: waiters are cut off and
 *   new writes refused at once, both with HoldEpisodeOverError, until a primary is back.
 * - draining: waiters are released in FIFO order, `drainBatch` per event-loop turn so the new
 *   primary does not take the whole backlog in one burst. A write that arrives now queues behind
 *   them (it never overtakes a write held earlier) — unless the queue is full, then it passes at
 *   once rather than fail while a primary exists; the hold is idle once the queue is empty.
 *   `begin()` here returns to holding and keeps the rest of the queue, in order, with its deadlines.
 *
 * Timeouts use ONE coarse shared timer (armed only while someone waits), not a timer per waiter:
 * a waiter fails between `timeoutMs` and `timeoutMs + tickMs` after it was queued. Tests inject
 * the clock (`now`) and a scheduler, and drive the timer with `tick()`.
 *
 * Stats invariant (after every public call returns):
 *   held = released + timedOut + cutOff + aborted + waiting
 * counting queue entries: a write that waits a second time (with its first deadline) counts twice.
 * `rejected` counts refusals (queue full, already aborted, its deadline already past, the episode
 * over); a refused write was never held.
 */

import { performance } from 'node:perf_hooks';
import { HoldAbortedError, HoldEpisodeOverError, HoldQueueFullError, HoldTimeoutError } from './hold-errors';

export { HoldAbortedError, HoldEpisodeOverError, HoldQueueFullError, HoldTimeoutError } from './hold-errors';

export type HoldState = 'idle' | 'holding' | 'draining';

export interface HoldStats {
  /** Writes ever queued. */
  held: number;
  /** Queued writes let go to run (in FIFO order). */
  released: number;
  /** Queued writes failed with HoldTimeoutError. */
  timedOut: number;
  /** Queued writes failed with HoldEpisodeOverError (the episode outlasted maxEpisodeMs). */
  cutOff: number;
  /** Queued writes whose caller went away (AbortSignal) before release or timeout. */
  aborted: number;
  /** Writes refused without being queued (queue full, or their signal had already fired). */
  rejected: number;
  /** Writes queued right now. */
  waiting: number;
}

export interface HoldTimer {
  cancel(): void;
}

/** What the hold needs from the event loop; tests pass a manual one. */
export interface HoldScheduler {
  /** Runs `run` every `ms` until cancelled. The hold keeps at most one armed at a time. */
  every(ms: number, run: () => void): HoldTimer;
  /** Runs `run` on a later turn of the event loop, after pending I/O. */
  soon(run: () => void): void;
}

export const eventLoopScheduler: HoldScheduler = {
  every(ms, run) {
    const timer = setInterval(run, ms);
    // The hold must never be the reason a process stays alive.
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
  soon(run) {
    setImmediate(run);
  },
};

export interface WriteHoldOptions {
  /** Most writes queued at once; 0 refuses every write while holding. */
  maxHeld: number;
  /** Longest a single write waits before it fails with HoldTimeoutError. */
  timeoutMs: number;
  /** Longest one episode without a primary is held through; default 3 × timeoutMs. */
  maxEpisodeMs?: number;
  /** Monotonic milliseconds; default `performance.now()` (wall-clock jumps must not expire writes). */
  now?: () => number;
  /** Resolution of the shared timeout timer; default timeoutMs / 20, within 10..250 ms. */
  tickMs?: number;
  /** Waiters released per event-loop turn while draining; default 256. */
  drainBatch?: number;
  scheduler?: HoldScheduler;
}

export class WriteHoldConfigError extends Error {
  readonly code = 'HOLD_CONFIG';
  constructor(detail: string) {
    super(`invalid write hold settings: ${detail}`);
    this.name = 'WriteHoldConfigError';
  }
}

/** A queued write; the queue is an intrusive doubly linked list so an abort unlinks in O(1). */
interface Waiter {
  readonly enqueuedAt: number;
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  prev: Waiter | null;
  next: Waiter | null;
}

type Outcome = 'released' | 'timedOut' | 'cutOff' | 'aborted';

const passThrough: Promise<void> = Promise.resolve();

export class WriteHold {
  private readonly maxHeld: number;
  private readonly timeoutMs: number;
  private readonly maxEpisodeMs: number;
  private readonly tickMs: number;
  private readonly drainBatch: number;
  private readonly now: () => number;
  private readonly scheduler: HoldScheduler;

  private current: HoldState = 'idle';
  private reason = '';
  private since: number | null = null;
  private head: Waiter | null = null;
  private tail: Waiter | null = null;
  private waiting = 0;
  private timer: HoldTimer | null = null;
  private drainScheduled = false;
  private readonly counts = { held: 0, released: 0, timedOut: 0, cutOff: 0, aborted: 0, rejected: 0 };

  constructor(options: WriteHoldOptions) {
    if (!Number.isInteger(options.maxHeld) || options.maxHeld < 0) throw new WriteHoldConfigError(`maxHeld must be a non-negative integer, got ${options.maxHeld}`);
    if (!(options.timeoutMs > 0)) throw new WriteHoldConfigError(`timeoutMs must be positive, got ${options.timeoutMs}`);
    this.maxHeld = options.maxHeld;
    this.timeoutMs = options.timeoutMs;
    this.maxEpisodeMs = options.maxEpisodeMs ?? 3 * options.timeoutMs;
    if (!(this.maxEpisodeMs >= this.timeoutMs)) throw new WriteHoldConfigError(`maxEpisodeMs must be at least timeoutMs (${this.timeoutMs}), got ${this.maxEpisodeMs}`);
    this.tickMs = options.tickMs ?? Math.min(250, Math.max(10, Math.round(options.timeoutMs / 20)));
    if (!(this.tickMs > 0)) throw new WriteHoldConfigError(`tickMs must be positive, got ${this.tickMs}`);
    this.drainBatch = options.drainBatch ?? 256;
    if (!Number.isInteger(this.drainBatch) || this.drainBatch < 1) throw new WriteHoldConfigError(`drainBatch must be a positive integer, got ${this.drainBatch}`);
    this.now = options.now ?? (() => performance.now());
    this.scheduler = options.scheduler ?? eventLoopScheduler;
  }

  get state(): HoldState {
    return this.current;
  }

  /** A fresh copy; see the invariant in the file comment. */
  get stats(): HoldStats {
    return { ...this.counts, waiting: this.waiting };
  }

  /** For /healthz and `doltgate status`: what the hold is doing and why. */
  describe(): { state: HoldState; reason: string | null; holdingForMs: number | null; stats: HoldStats } {
    return {
      state: this.current,
      reason: this.current === 'idle' ? null : this.reason,
      holdingForMs: this.since === null ? null : Math.round(this.now() - this.since),
      stats: this.stats,
    };
  }

  /** Starts holding writes. Idempotent while holding (the first reason stays); from draining it
   * stops the drain and keeps the remaining waiters queued in order. */
  begin(reason: string): void {
    if (this.current === 'holding') return;
    if (this.current === 'idle') this.since = this.now();
    this.reason = reason;
    this.current = 'holding';
  }

  /** A primary is back: release the queue in FIFO order. A no-op unless holding. */
  end(): void {
    if (this.current !== 'holding') return;
    if (this.head === null) {
      this.becomeIdle();
      return;
    }
    this.current = 'draining';
    this.drainStep();
  }

  /** The deadline a write arriving now gets: pass it to every `wait` of that write. */
  deadlineFromNow(): number {
    return this.now() + this.timeoutMs;
  }

  /**
   * Resolves when the write may run; rejects with HoldQueueFullError, HoldTimeoutError or
   * HoldAbortedError when it must not (it was never executed). `signal` is the client's
   * connection: when it fires the waiter leaves the queue and counts as aborted, not timed out.
   *
   * `deadline` (from `deadlineFromNow`) is for a write that waits again after a release (its
   * primary failed once more): it keeps the budget and the place in line it got on arrival, so
   * waiting twice never extends its time in the hold nor puts it behind later writes. The queue
   * stays in deadline order, which is arrival order.
   */
  wait(signal?: AbortSignal, deadline?: number): Promise<void> {
    if (this.current === 'idle') return passThrough;
    if (signal?.aborted) {
      this.counts.rejected++;
      return Promise.reject(new HoldAbortedError(0));
    }
    if (this.waiting >= this.maxHeld) {
      // The primary is back: a write must not fail only because the backlog is still draining.
      if (this.current === 'draining') return passThrough;
      this.counts.rejected++;
      return Promise.reject(new HoldQueueFullError(this.maxHeld, this.reason));
    }
    const now = this.now();
    if (this.episodeOver(now)) {
      this.counts.rejected++;
      return Promise.reject(new HoldEpisodeOverError(this.episodeMs(now), this.reason));
    }
    if (deadline !== undefined && deadline <= now) {
      this.counts.rejected++;
      return Promise.reject(new HoldTimeoutError(Math.round(now - (deadline - this.timeoutMs)), this.reason));
    }
    return new Promise<void>((resolve, reject) => {
      const enqueuedAt = deadline === undefined ? now : deadline - this.timeoutMs;
      const waiter: Waiter = { enqueuedAt, deadline: enqueuedAt + this.timeoutMs, resolve, reject, signal, onAbort: undefined, prev: null, next: null };
      if (signal) {
        waiter.onAbort = () => this.settle(waiter, 'aborted', new HoldAbortedError(Math.round(this.now() - enqueuedAt)));
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.insertInDeadlineOrder(waiter);
      this.waiting++;
      this.counts.held++;
      if (this.timer === null) this.timer = this.scheduler.every(this.tickMs, () => this.tick());
    });
  }

  /**
   * Fails every waiter whose deadline has passed. The shared timer calls this; tests call it after
   * advancing their clock. Deadlines rise along the queue (one timeout, a monotonic clock), so
   * the sweep stops at the first waiter still in time.
   */
  tick(): void {
    const at = this.now();
    if (this.episodeOver(at)) {
      while (this.head !== null) this.settle(this.head, 'cutOff', new HoldEpisodeOverError(this.episodeMs(at), this.reason));
      return;
    }
    while (this.head !== null && this.head.deadline <= at) {
      const waiter = this.head;
      this.settle(waiter, 'timedOut', new HoldTimeoutError(Math.round(at - waiter.enqueuedAt), this.reason));
    }
  }

  /** Holding (not draining: a primary is back then) for longer than maxEpisodeMs. */
  private episodeOver(at: number): boolean {
    return this.current === 'holding' && this.since !== null && at - this.since >= this.maxEpisodeMs;
  }

  private episodeMs(at: number): number {
    return this.since === null ? 0 : Math.round(at - this.since);
  }

  /** Links `waiter` in after the last waiter whose deadline is not later (usually the tail: O(1)). */
  private insertInDeadlineOrder(waiter: Waiter): void {
    let after = this.tail;
    while (after !== null && after.deadline > waiter.deadline) after = after.prev;
    waiter.prev = after;
    waiter.next = after === null ? this.head : after.next;
    if (waiter.next !== null) waiter.next.prev = waiter;
    else this.tail = waiter;
    if (after !== null) after.next = waiter;
    else this.head = waiter;
  }

  /** Releases one batch; schedules the next on a later turn, or ends in idle. */
  private drainStep(): void {
    if (this.current !== 'draining') return;
    for (let n = 0; n < this.drainBatch && this.head !== null; n++) this.settle(this.head, 'released');
    // settle() turned the hold idle if that emptied the queue.
    if (this.current !== 'draining' || this.drainScheduled) return;
    this.drainScheduled = true;
    this.scheduler.soon(() => {
      this.drainScheduled = false;
      this.drainStep();
    });
  }

  private becomeIdle(): void {
    this.current = 'idle';
    this.reason = '';
    this.since = null;
  }

  /** Takes a waiter out of the queue and completes it exactly once. */
  private settle(waiter: Waiter, outcome: Outcome, error?: Error): void {
    if (waiter.prev) waiter.prev.next = waiter.next;
    else this.head = waiter.next;
    if (waiter.next) waiter.next.prev = waiter.prev;
    else this.tail = waiter.prev;
    waiter.prev = waiter.next = null;
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
    waiter.signal = waiter.onAbort = undefined;
    this.waiting--;
    this.counts[outcome]++;
    if (this.waiting === 0) {
      if (this.timer !== null) this.timer.cancel();
      this.timer = null;
      // Draining ends when the queue is empty, however the last waiter left it.
      if (this.current === 'draining') this.becomeIdle();
    }
    if (error) waiter.reject(error);
    else waiter.resolve();
  }
}
