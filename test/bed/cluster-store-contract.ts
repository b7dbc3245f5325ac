/**
 * The ClusterStore contract, one suite for every implementation (EtcdClusterStore against a real
 * etcd in test/integration/cluster-store.test.ts, MemoryClusterStore in
 * test/unit/memory-cluster-store.test.ts): the leader lock (create if absent, delete only if
 * ours, gone when the lease ends), renewals, topology and catalog compare-and-swap, history in
 * epoch order, pause, pruning, and beginFailover's one transaction.
 *
 * `open(cluster)` gives a client of that cluster: two calls with one name are two agents of one
 * cluster. Call inside a `describe`.
 */

import { expect } from 'chai';
import { CompareFailedError, type ClusterStore } from '../../agent/store/cluster-store';
import type { HistoryRecord, MemberRecord, OperationRecord, Topology } from '../../proto';
import { eventually } from './eventually';

export function member(name: string): MemberRecord {
  return {
    name,
    sql: { host: '127.0.0.1', port: 3306 },
    grpc: null,
    role: 'replica',
    epoch: 1,
    health: { healthy: true, consecutiveFailures: 0, lastCheckAt: new Date().toISOString(), sqlLatencyMs: 1, lastError: null, hostReachable: true },
    heads: { db: { main: 'abc' } },
    remoteHeads: { db: { main: 'abc' } },
    commitsNotOnRemote: 0,
    commitsBehindRemote: 0,
    priority: 100,
    nofailover: false,
    backup: null,
    updatedAt: new Date().toISOString(),
  };
}

function topology(epoch: number, primary: string): Topology {
  return { epoch, state: 'stable', primary, nodes: { [primary]: { sql: { host: '127.0.0.1', port: 3306 }, role: 'primary' } }, reason: 'test', at: new Date().toISOString() };
}

export function clusterStoreContract(open: (cluster: string) => ClusterStore): void {
  let cluster = 0;
  const store = (name?: string): ClusterStore => open(name ?? `contract-${cluster}`);
  beforeEach(() => {
    cluster++;
  });

  it('creates the leader key only if absent, and only the holder can release it', async () => {
    const a = store();
    const b = store();
    const leaseA = await a.grantLease(5000);
    const leaseB = await b.grantLease(5000);
    expect(await a.acquireLeader('a', leaseA)).to.equal(true);
    expect(await a.acquireLeader('a', leaseA), 'a retry by the holder still holds').to.equal(true);
    expect(await b.acquireLeader('b', leaseB)).to.equal(false);
    await b.releaseLeader('b');
    expect((await b.snapshot()).leader?.name, 'a release by a non-holder changes nothing').to.equal('a');
    await a.releaseLeader('a');
    expect((await b.snapshot()).leader).to.equal(null);
    expect(await b.acquireLeader('b', leaseB)).to.equal(true);
  });

  it('the leader key and member record vanish when their lease is not renewed', async () => {
    const a = store();
    const lease = await a.grantLease(2000);
    await a.putMember(member('a'), lease);
    expect(await a.acquireLeader('a', lease)).to.equal(true);
    const snapshot = await a.snapshot();
    expect(snapshot.leader?.name).to.equal('a');
    expect(Object.keys(snapshot.members)).to.deep.equal(['a']);
    await eventually(async () => {
      const later = await a.snapshot();
      return later.leader === null && Object.keys(later.members).length === 0;
    }, { within: 6000, what: 'lease expiry' });
  });

  it('renewing keeps the lease alive past its TTL and records when the renewal was sent', async () => {
    const a = store();
    const lease = await a.grantLease(2000);
    await a.acquireLeader('a', lease);
    const firstSent = lease.lastRenewSentAt;
    for (let i = 0; i < 6; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await lease.renew();
    }
    expect(lease.lastRenewSentAt).to.be.greaterThan(firstSent);
    expect((await a.snapshot()).leader?.name).to.equal('a');
  });

  it('publishes the database catalog by compare-and-swap, outside any lease, only under the topology it was read with', async () => {
    const a = store();
    const b = store();
    expect((await a.snapshot()).databases).to.equal(null);
    const topologyRevision = await a.casTopology(topology(1, 'a'), null);
    const entry = { addedAt: '2026-12-02T00:00:00.000Z', addedBy: 'a', epoch: 1 };
    const first = await a.casDatabases({ databases: { app: entry } }, null, topologyRevision);
    const lost = await b.casDatabases({ databases: { other: entry } }, null, topologyRevision).then(() => null, (error: unknown) => error);
    expect(lost).to.be.instanceOf(CompareFailedError);
    const snapshot = await b.snapshot();
    expect(snapshot.databases?.value).to.deep.equal({ databases: { app: entry } });
    expect(snapshot.databases?.modRevision).to.equal(first);
    const second = await b.casDatabases({ databases: { app: entry, orders: { ...entry, addedBy: 'b' } } }, first, topologyRevision);
    const stale = await a.casDatabases({ databases: {} }, first, topologyRevision).then(() => null, (error: unknown) => error);
    expect(stale, 'a writer holding an old catalog revision must lose').to.be.instanceOf(CompareFailedError);
    await b.casTopology(topology(2, 'b'), topologyRevision);
    const deposed = await a.casDatabases({ databases: {} }, second, topologyRevision).then(() => null, (error: unknown) => error);
    expect(deposed, 'a writer that read an older topology (a failover since) must lose').to.be.instanceOf(CompareFailedError);
    expect(Object.keys((await a.snapshot()).databases?.value.databases ?? {})).to.deep.equal(['app', 'orders']);
  });

  it('publishes the topology by compare-and-swap on its mod revision', async () => {
    const a = store();
    const b = store();
    const first = await a.casTopology(topology(1, 'a'), null);
    let lost: unknown;
    try {
      await b.casTopology(topology(1, 'b'), null);
    } catch (error) {
      lost = error;
    }
    expect(lost).to.be.instanceOf(CompareFailedError);
    const snapshot = await b.snapshot();
    expect(snapshot.topology?.value.primary).to.equal('a');
    expect(snapshot.topology?.modRevision).to.equal(first);
    await b.casTopology(topology(2, 'b'), snapshot.topology?.modRevision ?? null);
    let stale: unknown;
    try {
      await a.casTopology(topology(2, 'a'), first);
    } catch (error) {
      stale = error;
    }
    expect(stale, 'a writer holding an old revision must lose').to.be.instanceOf(CompareFailedError);
    expect((await a.snapshot()).topology?.value).to.include({ epoch: 2, primary: 'b' });
  });

  it('keeps clusters apart, records history in epoch order and toggles pause', async () => {
    const a = store('alpha');
    const other = store('alpha-2');
    await a.setPaused({ by: 'test', at: new Date().toISOString(), reason: 'maintenance' });
    expect((await other.snapshot()).paused).to.equal(null);
    expect((await a.snapshot()).paused?.reason).to.equal('maintenance');
    await a.setPaused(null);
    expect((await a.snapshot()).paused).to.equal(null);
    for (const epoch of [2, 10, 9]) {
      await a.putHistory({ epoch, kind: 'failover', reason: `e${epoch}`, fromPrimary: 'x', candidate: 'y', handOver: false, opId: null, takeoverFrom: null, startedAt: '', endedAt: null, outcome: 'succeeded', steps: [], orphanedBranches: [] });
    }
    expect((await a.listHistory(10)).map((record) => record.epoch)).to.deep.equal([10, 9, 2]);
    expect((await a.snapshot()).latestHistory?.epoch).to.equal(10);
  });

  it('prune deletes the named operations and the history below an epoch, nothing else', async () => {
    const a = store();
    const op = (id: string): OperationRecord => ({ id, kind: 'switchover', target: 'n2', force: false, drainTimeoutMs: 1000, requestedAt: new Date().toISOString(), requestedBy: 'test', state: 'succeeded', executor: 'n2', epoch: 2, steps: [], reason: 'test' });
    for (const id of ['old-1', 'old-2', 'keep-1']) await a.putOperation(op(id), null);
    for (const epoch of [1, 2, 3, 9, 10, 11]) {
      await a.putHistory({ epoch, kind: 'failover', reason: `e${epoch}`, fromPrimary: 'x', candidate: 'y', handOver: false, opId: null, takeoverFrom: null, startedAt: '', endedAt: null, outcome: 'succeeded', steps: [], orphanedBranches: [] });
    }
    await a.prune(['old-1', 'old-2', 'never-existed'], 10);
    const after = await a.snapshot();
    expect(after.ops.map((o) => o.value.id)).to.deep.equal(['keep-1']);
    expect((await a.listHistory(100)).map((record) => record.epoch)).to.deep.equal([11, 10]);
    expect(after.latestHistory?.epoch).to.equal(11);
    await a.prune([], null);
    expect((await a.listHistory(100)).length, 'an empty plan deletes nothing').to.equal(2);
  });

  it("beginFailover creates an epoch's history and claims its op in one transaction: both or neither", async () => {
    const a = store();
    const history = (epoch: number, candidate: string): HistoryRecord => ({ epoch, kind: 'switchover', reason: 'test', fromPrimary: 'n1', candidate, handOver: true, opId: 'op-1', takeoverFrom: null, startedAt: '', endedAt: null, outcome: 'running', steps: [], orphanedBranches: [] });
    const pending: OperationRecord = { id: 'op-1', kind: 'switchover', target: 'n2', force: false, drainTimeoutMs: 1000, requestedAt: new Date().toISOString(), requestedBy: 'test', state: 'pending', executor: null, epoch: null, steps: [], reason: 'requested' };
    const readAt = await a.putOperation(pending, null);
    const claimed = { op: { ...pending, state: 'running' as const, executor: 'n1' }, modRevision: readAt };

    // The op changed since it was read (another agent refused it): nothing is written.
    const refusedAt = await a.putOperation({ ...pending, state: 'refused', reason: 'refused by n3' }, readAt);
    expect(await a.beginFailover(history(5, 'n2'), claimed)).to.equal(false);
    let snapshot = await a.snapshot();
    expect(snapshot.latestHistory, 'no history without the claim').to.equal(null);
    expect(snapshot.ops[0].value.state).to.equal('refused');

    // Read fresh, the claim and the history land together.
    const fresh = { op: { ...pending, state: 'running' as const, executor: 'n1' }, modRevision: refusedAt };
    expect(await a.beginFailover(history(5, 'n2'), fresh)).to.equal(true);
    snapshot = await a.snapshot();
    expect(snapshot.latestHistory?.epoch).to.equal(5);
    expect(snapshot.ops[0].value).to.include({ state: 'running', executor: 'n1' });

    // One epoch's history is created once, with or without an op.
    expect(await a.beginFailover(history(5, 'n3'), null)).to.equal(false);
    expect((await a.snapshot()).latestHistory?.candidate).to.equal('n2');
    expect(await a.beginFailover(history(6, 'n3'), null)).to.equal(true);
    // A claim alone (a resumed history) compares only the op.
    const now = (await a.snapshot()).ops[0];
    expect(await a.beginFailover(null, { op: { ...now.value, executor: 'n2' }, modRevision: now.modRevision })).to.equal(true);
    expect(await a.beginFailover(null, { op: { ...now.value, executor: 'n3' }, modRevision: now.modRevision }), 'a stale revision').to.equal(false);
    expect((await a.snapshot()).ops[0].value.executor).to.equal('n2');
  });
}
