/**
 * The backend budget and multiplexing pool (proxy/server/backend-pool.ts) with fake connections:
 * the fit rule row by row, the budget, the FIFO queue and its 1040s, and the two ways back.
 */

import { expect } from 'chai';
import { BackendPools, type AcquireRequest, type BackendPoolOptions } from '../../proxy/server/backend-pool';
import { Fit, fitOf, poolLoginKey } from '../../proxy/server/pool-fit';
import type { BackendConnection, BackendConnectOptions, BackendLogin, BackendTarget } from '../../proxy/server/backend-connection';
import { BackendBusyError, QueryInterruptedError } from '../../proxy/server/errors';
import { ErrorCode } from '../../proxy/protocol';

class FakeConnection {
  isClosed = false;
  isIdle = true;
  database: string | null;
  stateKey: string | null = '';
  multiStatements: boolean | null = null;
  preparedOnly = false;
  stateOwner: object | null = null;
  stateGeneration = 0;
  appliedSeq = 0;
  sink: unknown = null;
  onDestroy: (() => void) | null = null;
  resets = 0;
  readonly tracker = { holdsInsertId: false, forgetInsertId: () => (this.tracker.holdsInsertId = false) };
  constructor(readonly target: BackendTarget, database: string | null) {
    this.database = database;
  }
  get reusable(): boolean {
    return !this.isClosed && this.isIdle;
  }
  destroy(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const f = this.onDestroy;
    this.onDestroy = null;
    f?.();
  }
  runCommand(): Promise<{ errno: number }> {
    this.resets++;
    return Promise.resolve({ errno: 0 });
  }
}

const n1: BackendTarget = { name: 'n1', host: '127.0.0.1', port: 1 };
const login: BackendLogin = { user: 'app', password: '' };

function setup(overrides: Partial<BackendPoolOptions> = {}) {
  const opened: FakeConnection[] = [];
  const waits: string[] = [];
  let exhausted = 0;
  const pools = new BackendPools({
    maxConnectionsPerNode: 2,
    queueTimeoutMs: 50,
    maxQueued: 2,
    maxIdlePerBackend: 10,
    idleTimeoutMs: 60_000,
    connectTimeoutMs: 1000,
    maxPacketSize: 1 << 20,
    tls: null,
    onHealth: () => undefined,
    onBudgetExhausted: () => exhausted++,
    onQueueWait: (_node, _ms, outcome) => waits.push(outcome),
    connect: (o: BackendConnectOptions) => {
      const c = new FakeConnection(o.target, o.database);
      opened.push(c);
      return Promise.resolve(c as unknown as BackendConnection);
    },
    ...overrides,
  });
  const request = (over: Partial<AcquireRequest> = {}): AcquireRequest => ({ target: n1, login, clientCapabilities: 0, charset: 45, database: 'app', stateKey: '', multiStatements: null, ...over });
  return { pools, opened, waits, request, exhausted: () => exhausted };
}

const fake = (c: BackendConnection): FakeConnection => c as unknown as FakeConnection;

describe('backend pool: which idle connection may serve which session (fitOf)', () => {
  const rows: Array<[string, { database: string | null; stateKey: string | null; multiStatements: boolean | null }, string | null, string, boolean | null, Fit]> = [
    ['same everything', { database: 'app', stateKey: 'S', multiStatements: null }, 'app', 'S', null, Fit.Exact],
    ['clean, same db, session has SETs', { database: 'app', stateKey: '', multiStatements: null }, 'app', 'S', null, Fit.Replay],
    ['same state, other db', { database: 'other', stateKey: 'S', multiStatements: null }, 'app', 'S', null, Fit.Replay],
    ['another session state', { database: 'app', stateKey: 'T', multiStatements: null }, 'app', 'S', null, Fit.Reset],
    ['unknown state', { database: 'app', stateKey: null, multiStatements: null }, 'app', '', null, Fit.Reset],
    ['session without db, connection with one', { database: 'app', stateKey: '', multiStatements: null }, null, '', null, Fit.Unusable],
    ['both without db', { database: null, stateKey: '', multiStatements: null }, null, '', null, Fit.Exact],
    ['session with db, connection without', { database: null, stateKey: '', multiStatements: null }, 'app', '', null, Fit.Replay],
    ['option switched on the connection, session as negotiated', { database: 'app', stateKey: '', multiStatements: true }, 'app', '', null, Fit.Unusable],
    ['option to switch', { database: 'app', stateKey: '', multiStatements: null }, 'app', '', false, Fit.Replay],
  ];
  for (const [name, conn, database, stateKey, multi, expected] of rows) {
    it(`${name} → ${Fit[expected]}`, () => expect(fitOf(conn, database, stateKey, multi)).to.equal(expected));
  }
});

describe('backend pool: budget, queue and hand-over', () => {
  it('opens at most the budget per node; the next request waits and gets the connection given back', async () => {
    const { pools, opened, request, waits } = setup();
    const a = await pools.acquire(request());
    const b = await pools.acquire(request());
    expect(opened).to.have.length(2);
    const waiting = pools.acquire(request());
    await Promise.resolve();
    expect(pools.stats()[0]).to.include({ open: 2, inUse: 2, queued: 1 });
    pools.giveBack(a, '');
    expect(await waiting).to.equal(a);
    expect(opened, 'no third connection').to.have.length(2);
    expect(waits).to.deep.equal(['served']);
    pools.giveBack(b, '');
    expect(pools.stats()[0]).to.include({ open: 2, idle: 1, inUse: 1 });
  });

  it('a wait past queue_timeout_ms ends in 1040 and nothing was opened; a full queue refuses at once', async () => {
    const { pools, request, waits, exhausted } = setup({ maxQueued: 1 });
    await pools.acquire(request());
    await pools.acquire(request());
    const first = pools.acquire(request()).then(() => null, (e: Error) => e);
    const second = await pools.acquire(request()).then(() => null, (e: Error) => e);
    expect(second).to.be.instanceOf(BackendBusyError);
    expect((second as BackendBusyError).errno).to.equal(ErrorCode.ER_CON_COUNT_ERROR);
    expect((second as Error).message).to.match(/already wait/);
    const timedOut = await first;
    expect(timedOut).to.be.instanceOf(BackendBusyError);
    expect((timedOut as Error).message).to.match(/stayed in use for 50 ms/);
    expect(waits).to.deep.equal(['full', 'timeout']);
    expect(exhausted()).to.equal(2);
  });

  it('wouldQueue says when a node has neither room nor an idle connection (a read then tries another replica)', async () => {
    const { pools, request } = setup();
    expect(pools.wouldQueue('n1'), 'never used').to.equal(false);
    const a = await pools.acquire(request());
    expect(pools.wouldQueue('n1'), 'one of two open').to.equal(false);
    await pools.acquire(request());
    expect(pools.wouldQueue('n1'), 'both in use').to.equal(true);
    pools.giveBack(a, '');
    expect(pools.wouldQueue('n1'), 'one idle').to.equal(false);
    expect(pools.wouldQueue('n2'), 'another node').to.equal(false);
  });

  it('waiters are served first come, first served; a newcomer does not jump the queue', async () => {
    const { pools, request } = setup({ queueTimeoutMs: 1000, maxQueued: 10 });
    const a = await pools.acquire(request());
    await pools.acquire(request());
    const order: string[] = [];
    const w1 = pools.acquire(request()).then((c) => (order.push('w1'), c));
    const w2 = pools.acquire(request()).then((c) => (order.push('w2'), c));
    await Promise.resolve();
    pools.giveBack(a, '');
    expect(pools.takeReady(n1, poolLoginKey(login, 0, 45), 'app', '', null), 'the hot path leaves it to the queue').to.equal(null);
    const got = await w1;
    pools.giveBack(got, '');
    await w2;
    expect(order).to.deep.equal(['w1', 'w2']);
  });

  it('KILL QUERY (the abort signal) ends a wait with 1317', async () => {
    const { pools, request, waits } = setup({ queueTimeoutMs: 5000 });
    await pools.acquire(request());
    await pools.acquire(request());
    const abort = new AbortController();
    const waiting = pools.acquire(request({ signal: abort.signal })).then(() => null, (e: Error) => e);
    abort.abort();
    expect(await waiting).to.be.instanceOf(QueryInterruptedError);
    expect(waits).to.deep.equal(['aborted']);
    expect(pools.stats()[0].queued).to.equal(0);
  });

  it('a closed connection frees its slot for a waiter', async () => {
    const { pools, opened, request } = setup({ queueTimeoutMs: 1000 });
    const a = await pools.acquire(request());
    await pools.acquire(request());
    const waiting = pools.acquire(request());
    await Promise.resolve();
    a.destroy(null);
    const c = await waiting;
    expect(opened).to.have.length(3);
    expect(c).to.equal(opened[2] as unknown as BackendConnection);
  });

  it('with the budget full of idle connections nobody can use, the oldest is closed to make room', async () => {
    const { pools, opened, request } = setup();
    const a = await pools.acquire(request({ database: 'app' }));
    const b = await pools.acquire(request({ database: 'app' }));
    pools.giveBack(a, '');
    pools.giveBack(b, '');
    // A session without a database cannot use a connection that has one.
    const c = await pools.acquire(request({ database: null }));
    expect(fake(a).isClosed, 'the oldest idle').to.equal(true);
    expect(fake(b).isClosed).to.equal(false);
    expect(c).to.equal(opened[2] as unknown as BackendConnection);
    expect(pools.stats()[0]).to.include({ open: 2 });
  });
});

describe('backend pool: the ways back', () => {
  it('giveBack keeps the state as it is: an exact match comes out of takeReady with no I/O', async () => {
    const { pools, request } = setup();
    const a = await pools.acquire(request({ stateKey: 'SET NAMES utf8mb4' }));
    pools.giveBack(a, 'SET NAMES utf8mb4');
    expect(fake(a).resets).to.equal(0);
    const key = poolLoginKey(login, 0, 45);
    expect(pools.takeReady(n1, key, 'app', '', null), 'another state').to.equal(null);
    expect(pools.takeReady(n1, key, 'app', 'SET NAMES utf8mb4', null)).to.equal(a);
  });

  it('a connection with unknown state, a prepare-only snapshot or an insert id is reset before it is pooled', async () => {
    const { pools, request } = setup();
    for (const mark of ['unknown', 'prepared-only', 'insert-id'] as const) {
      const c = await pools.acquire(request({ stateKey: `fresh-${mark}` }));
      if (mark === 'prepared-only') fake(c).preparedOnly = true;
      if (mark === 'insert-id') fake(c).tracker.holdsInsertId = true;
      pools.giveBack(c, mark === 'unknown' ? null : 'S');
      await new Promise((resolve) => setImmediate(resolve));
      expect(fake(c).resets, mark).to.equal(1);
      expect(fake(c).stateKey, mark).to.equal('');
      expect(fake(c).preparedOnly || fake(c).tracker.holdsInsertId, mark).to.equal(false);
      // Leave room in the budget of 2 for the next case.
      c.destroy(null);
    }
  });

  it('a request with another session state gets an idle connection reset, not a new one', async () => {
    const { pools, opened, request } = setup();
    const a = await pools.acquire(request({ stateKey: 'T' }));
    await pools.acquire(request());
    pools.giveBack(a, 'T');
    const got = await pools.acquire(request({ stateKey: 'S' }));
    expect(got).to.equal(a);
    expect(fake(a).resets).to.equal(1);
    expect(opened).to.have.length(2);
  });

  it('retireNode and sweep close idle connections and free their budget', async () => {
    const { pools, request } = setup({ idleTimeoutMs: 1000 });
    const a = await pools.acquire(request());
    const b = await pools.acquire(request());
    pools.giveBack(a, '');
    pools.retireNode('n1');
    expect(fake(a).isClosed).to.equal(true);
    pools.giveBack(b, '');
    pools.sweep(Date.now() + 2000);
    expect(fake(b).isClosed).to.equal(true);
    expect(pools.stats()[0]).to.include({ open: 0, idle: 0 });
  });
});
