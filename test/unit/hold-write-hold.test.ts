/**
 * The write hold's state machine, table-driven with an injected clock and a manual scheduler:
 * each row is a script of steps, the state expected after each step, the order in which waiters
 * settled, and the final counters. After EVERY step the runner checks the stats invariant
 * (held = released + timedOut + cutOff + aborted + waiting) and that exactly one shared timer is armed
 * while anyone waits and none otherwise.
 */

import { expect } from 'chai';
import {
  HoldQueueFullError,
  HoldTimeoutError,
  WriteHold,
  WriteHoldConfigError,
  type HoldScheduler,
  type HoldState,
  type HoldStats,
  type HoldTimer,
  type WriteHoldOptions,
} from '../../proxy/hold/write-hold';

class ManualScheduler implements HoldScheduler {
  armed = 0;
  private turns: Array<() => void> = [];

  every(_ms: number, _run: () => void): HoldTimer {
    this.armed++;
    let cancelled = false;
    return {
      cancel: () => {
        if (!cancelled) this.armed--;
        cancelled = true;
      },
    };
  }

  soon(run: () => void): void {
    this.turns.push(run);
  }

  /** One event-loop turn: runs what was scheduled before it started. */
  turn(): void {
    const due = this.turns;
    this.turns = [];
    for (const run of due) run();
  }
}

type Step =
  | ['begin', string]
  | ['end']
  | ['wait', string]
  | ['waitAbortable', string]
  | ['waitAborted', string]
  | ['abort', string]
  | ['advance', number]
  | ['tick']
  | ['turn'];

interface Row {
  name: string;
  options?: Partial<WriteHoldOptions>;
  steps: Step[];
  /** State after each step. */
  states: HoldState[];
  /** `id:ok` or `id:<error code>`, in the order the waiters settled. */
  settled: string[];
  stats: HoldStats;
}

const zero: HoldStats = { held: 0, released: 0, timedOut: 0, cutOff: 0, aborted: 0, rejected: 0, waiting: 0 };

const rows: Row[] = [
  {
    name: 'idle passes a write through at once and counts nothing',
    steps: [['wait', 'a']],
    states: ['idle'],
    settled: ['a:ok'],
    stats: zero,
  },
  {
    name: 'holding queues writes and end() releases them in FIFO order',
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['wait', 'c'], ['end']],
    states: ['holding', 'holding', 'holding', 'holding', 'idle'],
    settled: ['a:ok', 'b:ok', 'c:ok'],
    stats: { ...zero, held: 3, released: 3 },
  },
  {
    name: 'draining releases one batch per turn, in FIFO order, then goes idle',
    options: { drainBatch: 1 },
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['wait', 'c'], ['end'], ['turn'], ['turn']],
    states: ['holding', 'holding', 'holding', 'holding', 'draining', 'draining', 'idle'],
    settled: ['a:ok', 'b:ok', 'c:ok'],
    stats: { ...zero, held: 3, released: 3 },
  },
  {
    name: 'a waiter times out timeoutMs after it was queued, not after begin()',
    steps: [['begin', 'failover'], ['advance', 300], ['wait', 'a'], ['advance', 500], ['wait', 'b'], ['advance', 499], ['tick'], ['advance', 1], ['tick'], ['advance', 499], ['tick'], ['advance', 1], ['tick']],
    states: ['holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding'],
    settled: ['a:HOLD_TIMEOUT', 'b:HOLD_TIMEOUT'],
    stats: { ...zero, held: 2, timedOut: 2 },
  },
  {
    name: 'one tick expires every overdue waiter and keeps the rest',
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['advance', 10], ['wait', 'c'], ['advance', 995], ['tick'], ['end']],
    states: ['holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'idle'],
    settled: ['a:HOLD_TIMEOUT', 'b:HOLD_TIMEOUT', 'c:ok'],
    stats: { ...zero, held: 3, timedOut: 2, released: 1 },
  },
  {
    name: 'a full queue refuses the newcomer and evicts nobody',
    options: { maxHeld: 2 },
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['wait', 'c'], ['end'], ['wait', 'd']],
    states: ['holding', 'holding', 'holding', 'holding', 'idle', 'idle'],
    settled: ['c:HOLD_QUEUE_FULL', 'a:ok', 'b:ok', 'd:ok'],
    stats: { ...zero, held: 2, released: 2, rejected: 1 },
  },
  {
    name: 'maxHeld 0 refuses every write while holding',
    options: { maxHeld: 0 },
    steps: [['begin', 'failover'], ['wait', 'a'], ['end'], ['wait', 'b']],
    states: ['holding', 'holding', 'idle', 'idle'],
    settled: ['a:HOLD_QUEUE_FULL', 'b:ok'],
    stats: { ...zero, rejected: 1 },
  },
  {
    name: 'an abort removes the waiter without counting a timeout',
    steps: [['begin', 'failover'], ['waitAbortable', 'a'], ['wait', 'b'], ['abort', 'a'], ['advance', 1000], ['tick']],
    states: ['holding', 'holding', 'holding', 'holding', 'holding', 'holding'],
    settled: ['a:HOLD_ABORTED', 'b:HOLD_TIMEOUT'],
    stats: { ...zero, held: 2, aborted: 1, timedOut: 1 },
  },
  {
    name: 'an abort in the middle keeps the others in FIFO order',
    steps: [['begin', 'failover'], ['wait', 'a'], ['waitAbortable', 'b'], ['wait', 'c'], ['abort', 'b'], ['end']],
    states: ['holding', 'holding', 'holding', 'holding', 'holding', 'idle'],
    settled: ['b:HOLD_ABORTED', 'a:ok', 'c:ok'],
    stats: { ...zero, held: 3, aborted: 1, released: 2 },
  },
  {
    name: 'a signal that already fired is refused, never held',
    steps: [['begin', 'failover'], ['waitAborted', 'a'], ['end']],
    states: ['holding', 'holding', 'idle'],
    settled: ['a:HOLD_ABORTED'],
    stats: { ...zero, rejected: 1 },
  },
  {
    name: 'an abort after release changes nothing',
    steps: [['begin', 'failover'], ['waitAbortable', 'a'], ['end'], ['abort', 'a']],
    states: ['holding', 'holding', 'idle', 'idle'],
    settled: ['a:ok'],
    stats: { ...zero, held: 1, released: 1 },
  },
  {
    name: 'begin twice is one hold',
    steps: [['begin', 'failover'], ['wait', 'a'], ['begin', 'switchover'], ['wait', 'b'], ['end']],
    states: ['holding', 'holding', 'holding', 'holding', 'idle'],
    settled: ['a:ok', 'b:ok'],
    stats: { ...zero, held: 2, released: 2 },
  },
  {
    name: 'end while idle, and end of an empty hold, go straight to idle',
    steps: [['end'], ['begin', 'failover'], ['end'], ['end'], ['wait', 'a']],
    states: ['idle', 'holding', 'idle', 'idle', 'idle'],
    settled: ['a:ok'],
    stats: zero,
  },
  {
    name: 'begin while draining holds the rest again, in order, behind nobody',
    options: { drainBatch: 1 },
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['wait', 'c'], ['end'], ['begin', 'failover again'], ['wait', 'd'], ['turn'], ['end'], ['turn'], ['turn']],
    states: ['holding', 'holding', 'holding', 'holding', 'draining', 'holding', 'holding', 'holding', 'draining', 'draining', 'idle'],
    settled: ['a:ok', 'b:ok', 'c:ok', 'd:ok'],
    stats: { ...zero, held: 4, released: 4 },
  },
  {
    name: 'a write that arrives while draining queues behind the held ones',
    options: { drainBatch: 1 },
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['end'], ['wait', 'c'], ['turn'], ['turn']],
    states: ['holding', 'holding', 'holding', 'draining', 'draining', 'draining', 'idle'],
    settled: ['a:ok', 'b:ok', 'c:ok'],
    stats: { ...zero, held: 3, released: 3 },
  },
  {
    name: 'while draining, a write that finds the queue full passes at once instead of failing',
    options: { maxHeld: 2, drainBatch: 1 },
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['end'], ['wait', 'c'], ['wait', 'd'], ['turn'], ['turn']],
    states: ['holding', 'holding', 'holding', 'draining', 'draining', 'draining', 'draining', 'idle'],
    settled: ['a:ok', 'd:ok', 'b:ok', 'c:ok'],
    stats: { ...zero, held: 3, released: 3 },
  },
  {
    name: 'waiters can still time out while draining',
    options: { drainBatch: 1 },
    steps: [['begin', 'failover'], ['wait', 'a'], ['wait', 'b'], ['advance', 1000], ['end'], ['tick'], ['turn']],
    states: ['holding', 'holding', 'holding', 'holding', 'draining', 'idle', 'idle'],
    settled: ['a:ok', 'b:HOLD_TIMEOUT'],
    stats: { ...zero, held: 2, released: 1, timedOut: 1 },
  },
  {
    name: 'past the episode bound waiters are cut off and new writes refused at once, until a primary is back',
    options: { maxEpisodeMs: 2500 },
    steps: [['begin', 'failover'], ['advance', 2000], ['wait', 'a'], ['advance', 600], ['tick'], ['wait', 'b'], ['end'], ['wait', 'c']],
    states: ['holding', 'holding', 'holding', 'holding', 'holding', 'holding', 'idle', 'idle'],
    settled: ['a:HOLD_EPISODE_OVER', 'b:HOLD_EPISODE_OVER', 'c:ok'],
    stats: { ...zero, held: 1, cutOff: 1, rejected: 1 },
  },
  {
    name: 'the episode bound counts from the start of each episode, not from the first one',
    options: { maxEpisodeMs: 2500 },
    steps: [['begin', 'failover'], ['advance', 2000], ['wait', 'a'], ['end'], ['begin', 'again'], ['advance', 2000], ['wait', 'b'], ['tick'], ['end']],
    states: ['holding', 'holding', 'holding', 'idle', 'holding', 'holding', 'holding', 'holding', 'idle'],
    settled: ['a:ok', 'b:ok'],
    stats: { ...zero, held: 2, released: 2 },
  },
];

function flushMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function checkInvariants(hold: WriteHold, scheduler: ManualScheduler, where: string): void {
  const s = hold.stats;
  expect(s.held, `held = released + timedOut + cutOff + aborted + waiting ${where}`).to.equal(s.released + s.timedOut + s.cutOff + s.aborted + s.waiting);
  expect(scheduler.armed, `one shared timer while anyone waits, none otherwise ${where}`).to.equal(s.waiting > 0 ? 1 : 0);
  if (hold.state === 'idle') expect(s.waiting, `idle means nobody waits ${where}`).to.equal(0);
}

describe('write hold state machine', () => {
  for (const row of rows) {
    it(row.name, async () => {
      let clock = 0;
      const scheduler = new ManualScheduler();
      const hold = new WriteHold({ maxHeld: 10, timeoutMs: 1000, now: () => clock, scheduler, ...row.options });
      const settled: string[] = [];
      const controllers = new Map<string, AbortController>();
      const track = (id: string, promise: Promise<void>): void => {
        promise.then(
          () => settled.push(`${id}:ok`),
          (error: { code?: string }) => settled.push(`${id}:${error.code}`),
        );
      };
      expect(row.states, 'one expected state per step').to.have.length(row.steps.length);
      for (const [index, step] of row.steps.entries()) {
        switch (step[0]) {
          case 'begin':
            hold.begin(step[1]);
            break;
          case 'end':
            hold.end();
            break;
          case 'wait':
            track(step[1], hold.wait());
            break;
          case 'waitAbortable': {
            const controller = new AbortController();
            controllers.set(step[1], controller);
            track(step[1], hold.wait(controller.signal));
            break;
          }
          case 'waitAborted': {
            const controller = new AbortController();
            controller.abort();
            track(step[1], hold.wait(controller.signal));
            break;
          }
          case 'abort':
            controllers.get(step[1])?.abort();
            break;
          case 'advance':
            clock += step[1];
            break;
          case 'tick':
            hold.tick();
            break;
          case 'turn':
            scheduler.turn();
            break;
        }
        await flushMicrotasks();
        const where = `after step ${index} (${step.join(' ')})`;
        expect(hold.state, `state ${where}`).to.equal(row.states[index]);
        checkInvariants(hold, scheduler, where);
      }
      expect(settled).to.deep.equal(row.settled);
      expect(hold.stats).to.deep.equal(row.stats);
    });
  }
});

describe('write hold: a write that waits again keeps its first deadline and place', () => {
  it('re-queued with its deadline, it goes before later writes and times out on its first budget', async () => {
    let clock = 0;
    const hold = new WriteHold({ maxHeld: 10, timeoutMs: 1_000, now: () => clock, scheduler: new ManualScheduler() });
    hold.begin('primary a cannot be reached');
    const firstDeadline = hold.deadlineFromNow();
    clock = 300;
    const later = hold.wait();
    clock = 400;
    const order: string[] = [];
    const again = hold.wait(undefined, firstDeadline).then(() => order.push('first'), (e: Error) => order.push(`first: ${e.message}`));
    void later.then(() => order.push('later'));
    clock = 1_000;
    hold.tick();
    await again;
    expect(order[0]).to.match(/^first: doltgate held this write for 1000 ms/);
    hold.end();
    await later;
    expect(order).to.have.length(2);
    expect(order[1]).to.equal('later');
    expect(hold.stats).to.include({ held: 2, timedOut: 1, released: 1, waiting: 0 });
  });

  it('released in arrival order when re-queued behind a later write', async () => {
    let clock = 0;
    const hold = new WriteHold({ maxHeld: 10, timeoutMs: 1_000, now: () => clock, scheduler: new ManualScheduler() });
    hold.begin('x');
    const early = hold.deadlineFromNow();
    clock = 50;
    const order: string[] = [];
    const b = hold.wait().then(() => order.push('b'));
    const a = hold.wait(undefined, early).then(() => order.push('a'));
    hold.end();
    await Promise.all([a, b]);
    expect(order).to.deep.equal(['a', 'b']);
  });

  it('a deadline already past is refused at once, never queued', async () => {
    let clock = 0;
    const hold = new WriteHold({ maxHeld: 10, timeoutMs: 1_000, now: () => clock, scheduler: new ManualScheduler() });
    hold.begin('x');
    const deadline = hold.deadlineFromNow();
    clock = 1_500;
    const error = await hold.wait(undefined, deadline).then(() => null, (e: unknown) => e);
    expect(error).to.be.instanceOf(HoldTimeoutError);
    expect(hold.stats).to.include({ held: 0, rejected: 1, waiting: 0 });
  });
});

describe('write hold errors and settings', () => {
  it('a timed-out write says how long it was held, why, and that it did not run', async () => {
    let clock = 0;
    const hold = new WriteHold({ maxHeld: 1, timeoutMs: 10_000, now: () => clock, scheduler: new ManualScheduler() });
    hold.begin('failover in progress');
    hold.begin('a second reason is ignored');
    const waiting = hold.wait();
    clock = 10_000;
    hold.tick();
    const error = await waiting.then(() => null, (e: unknown) => e);
    expect(error).to.be.instanceOf(HoldTimeoutError);
    expect((error as HoldTimeoutError).code).to.equal('HOLD_TIMEOUT');
    expect((error as Error).message).to.equal(
      'doltgate held this write for 10000 ms while the cluster had no usable primary (failover in progress); it was not executed — retry it once the failover completes',
    );
  });

  it('a refused write names the limit and the reason', async () => {
    const hold = new WriteHold({ maxHeld: 1, timeoutMs: 1000, now: () => 0, scheduler: new ManualScheduler() });
    hold.begin('switchover to n2');
    void hold.wait().catch(() => undefined);
    const error = await hold.wait().then(() => null, (e: unknown) => e);
    expect(error).to.be.instanceOf(HoldQueueFullError);
    expect((error as HoldQueueFullError).code).to.equal('HOLD_QUEUE_FULL');
    expect((error as Error).message).to.contain('already holding 1 writes').and.contain('switchover to n2').and.contain('not executed');
    hold.end();
  });

  it('describe() reports the state, the reason and how long the hold has lasted', () => {
    let clock = 100;
    const hold = new WriteHold({ maxHeld: 1, timeoutMs: 1000, now: () => clock, scheduler: new ManualScheduler() });
    expect(hold.describe()).to.deep.equal({ state: 'idle', reason: null, holdingForMs: null, stats: zero });
    hold.begin('failover');
    clock = 350;
    expect(hold.describe()).to.include({ state: 'holding', reason: 'failover', holdingForMs: 250 });
    hold.end();
    expect(hold.describe().holdingForMs).to.equal(null);
  });

  const badSettings: Array<[string, WriteHoldOptions]> = [
    ['negative maxHeld', { maxHeld: -1, timeoutMs: 1000 }],
    ['fractional maxHeld', { maxHeld: 1.5, timeoutMs: 1000 }],
    ['zero timeout', { maxHeld: 1, timeoutMs: 0 }],
    ['zero drain batch', { maxHeld: 1, timeoutMs: 1000, drainBatch: 0 }],
  ];
  for (const [name, options] of badSettings) {
    it(`refuses ${name}`, () => {
      expect(() => new WriteHold(options)).to.throw(WriteHoldConfigError).with.property('code', 'HOLD_CONFIG');
    });
  }

  it('with the real event loop, the shared timer expires a waiter and then disarms', async () => {
    const hold = new WriteHold({ maxHeld: 5, timeoutMs: 30, tickMs: 10 });
    hold.begin('failover');
    const results = await Promise.allSettled([hold.wait(), hold.wait()]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { code: string }).code : 'ok'))).to.deep.equal(['HOLD_TIMEOUT', 'HOLD_TIMEOUT']);
    expect(hold.stats).to.include({ held: 2, timedOut: 2, waiting: 0 });
    hold.end();
    expect(hold.state).to.equal('idle');
  });

  it('with the real event loop, a drain spread over turns releases everyone in order', async () => {
    const hold = new WriteHold({ maxHeld: 100, timeoutMs: 5000, drainBatch: 7 });
    hold.begin('failover');
    const order: number[] = [];
    const all = Array.from({ length: 50 }, (_, i) => hold.wait().then(() => order.push(i)));
    hold.end();
    expect(hold.state).to.equal('draining');
    await Promise.all(all);
    expect(order).to.deep.equal(Array.from({ length: 50 }, (_, i) => i));
    expect(hold.state).to.equal('idle');
  });
});
