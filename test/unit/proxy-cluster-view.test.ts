/**
 * What a new topology does to the proxy's connections (planTopologyChange, one row per change,
 * named after the answer), and the ClusterView bookkeeping built on it: primary generations,
 * the switchover drain, replica generations, the replica selector and the write hold.
 */

import { expect } from 'chai';
import type { Topology } from '../../proto';
import { WriteHold } from '../../proxy/hold/write-hold';
import { ReplicaSelector } from '../../proxy/routing/replica-selector';
import { ClusterView, planTopologyChange, type PrimaryAction } from '../../proxy/server/cluster-view';

function t(epoch: number, state: Topology['state'], primary: string | null, extra: Partial<Record<string, { port?: number; role?: Topology['nodes'][string]['role']; weight?: number }>> = {}): Topology {
  const nodes: Topology['nodes'] = {};
  for (const [i, name] of ['a', 'b', 'c'].entries()) {
    const e = extra[name] ?? {};
    nodes[name] = { sql: { host: '127.0.0.1', port: e.port ?? 3300 + i }, role: e.role ?? (name === primary ? 'primary' : 'replica'), ...(e.weight !== undefined ? { weight: e.weight } : {}) };
  }
  return { epoch, state, primary, nodes, reason: '', at: '' };
}

describe('planTopologyChange', () => {
  const rows: Array<{ name: string; previous: Topology | null; next: Topology; action: PrimaryAction; hold: 'begin' | 'end'; reason: RegExp }> = [
    { name: 'none: the first topology', previous: null, next: t(1, 'stable', 'a'), action: 'none', hold: 'end', reason: /primary a at epoch 1/ },
    { name: 'none + hold: the first topology has no primary', previous: null, next: t(1, 'failover', null), action: 'none', hold: 'begin', reason: /no primary at epoch 1 \(failover\); holding writes/ },
    { name: 'keep: same primary, a replica changed, new epoch', previous: t(1, 'stable', 'a'), next: t(2, 'stable', 'a', { c: { weight: 0 } }), action: 'keep', hold: 'end', reason: /primary a unchanged at epoch 2/ },
    { name: 'close + hold: a failover begins', previous: t(1, 'stable', 'a'), next: t(2, 'failover', null), action: 'close', hold: 'begin', reason: /failover at epoch 2: closing connections to a; holding writes/ },
    { name: 'none: the new primary after a failover (nothing left to close)', previous: t(2, 'failover', null), next: t(2, 'stable', 'b'), action: 'none', hold: 'end', reason: /primary b at epoch 2/ },
    { name: 'close: a new primary without a failover state in between', previous: t(1, 'stable', 'a'), next: t(2, 'stable', 'b'), action: 'close', hold: 'end', reason: /primary changed to b at epoch 2: closing connections to a/ },
    { name: 'close: the primary moved to another address', previous: t(1, 'stable', 'a'), next: t(1, 'stable', 'a', { a: { port: 4000 } }), action: 'close', hold: 'end', reason: /closing connections to a/ },
    { name: 'drain + hold: a switchover begins', previous: t(1, 'stable', 'a'), next: t(2, 'switchover', null), action: 'drain', hold: 'begin', reason: /switchover at epoch 2: open transactions on a may finish, new writes are held/ },
    { name: 'close: the switchover target is published (stragglers on the old primary go)', previous: t(2, 'switchover', null), next: t(2, 'stable', 'b'), action: 'close', hold: 'end', reason: /primary changed to b/ },
    { name: 'close + hold: a switchover turns into a failover', previous: t(2, 'switchover', null), next: t(3, 'failover', null), action: 'close', hold: 'begin', reason: /failover at epoch 3/ },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const plan = planTopologyChange(row.previous, row.next);
      expect(plan.primaryAction).to.equal(row.action);
      expect(plan.hold).to.equal(row.hold);
      expect(plan.reason).to.match(row.reason);
    });
  }
});

describe('ClusterView', () => {
  function view(): ClusterView {
    return new ClusterView(new ReplicaSelector('round-robin'), new WriteHold({ maxHeld: 10, timeoutMs: 1000, now: () => 0, scheduler: { every: () => ({ cancel: () => undefined }), soon: (run) => run() } }));
  }

  it('a failover retires the primary generation and holds writes until a primary is published', () => {
    const v = view();
    v.apply(t(1, 'stable', 'a'), null);
    const g = v.primaryGeneration;
    expect(v.primary).to.deep.equal({ name: 'a', host: '127.0.0.1', port: 3300 });
    expect(v.hold.state).to.equal('idle');
    v.apply(t(2, 'failover', null), null);
    expect(v.primary).to.equal(null);
    expect(v.hold.state).to.equal('holding');
    expect(v.primaryUsable(g, false)).to.equal(false);
    expect(v.primaryUsable(g, true)).to.equal(false);
    expect(v.lastChange).to.equal('primary changed by failover (epoch 2)');
    v.apply(t(2, 'stable', 'b', { a: { role: 'fenced' } }), null);
    expect(v.primary?.name).to.equal('b');
    expect(v.hold.state).to.equal('idle');
    expect(v.primaryUsable(v.primaryGeneration, false)).to.equal(true);
    expect(v.selector.status(0).map((r) => r.name)).to.deep.equal(['c']);
  });

  it('a switchover lets connections with an open transaction finish, until the next change', () => {
    const v = view();
    v.apply(t(1, 'stable', 'a'), null);
    const g = v.primaryGeneration;
    v.apply(t(2, 'switchover', null), null);
    expect(v.primaryUsable(g, true)).to.equal(true);
    expect(v.primaryUsable(g, false)).to.equal(false);
    v.apply(t(2, 'stable', 'b'), null);
    expect(v.primaryUsable(g, true)).to.equal(false);
  });

  it('keeps connections when only replicas change, and bumps a replica generation when its address moves', () => {
    const v = view();
    v.apply(t(1, 'stable', 'a'), null);
    const g = v.primaryGeneration;
    const b = v.replica('b')?.generation as number;
    const c = v.replica('c')?.generation as number;
    v.apply(t(2, 'stable', 'a', { b: { port: 5000 }, c: { weight: 3 } }), null);
    expect(v.primaryUsable(g, false)).to.equal(true);
    expect(v.replicaUsable('b', b)).to.equal(false);
    expect(v.replicaUsable('c', c)).to.equal(true);
    expect(v.selector.status(0).map((r) => [r.name, r.weight])).to.deep.equal([['b', 1], ['c', 3]]);
    v.apply(t(3, 'stable', 'a', { c: { role: 'down' } }), null);
    expect(v.replica('c')).to.equal(undefined);
  });

  describe('suspicion: writes held from the moment a session sees the primary fail', () => {
    const login = { user: 'app', password: '' };

    it('an unreachable primary holds writes; the prober clearing it releases them', () => {
      const v = view();
      v.apply(t(1, 'stable', 'a'), null);
      const g = v.primaryGeneration;
      expect(v.suspectPrimary(g, 'unreachable', 'cannot be reached (ECONNREFUSED)', login)).to.equal(true);
      expect(v.hold.state).to.equal('holding');
      expect(v.hold.describe().reason).to.equal('primary a cannot be reached (ECONNREFUSED)');
      expect(v.suspicion).to.deep.include({ generation: g, kind: 'unreachable', login });
      v.clearSuspicion(g);
      expect(v.suspicion).to.equal(null);
      expect(v.hold.state).to.equal('idle');
    });

    it('a failure seen at a retired generation holds nothing (the topology moved on already)', () => {
      const v = view();
      v.apply(t(1, 'stable', 'a'), null);
      const old = v.primaryGeneration;
      v.apply(t(2, 'stable', 'b'), null);
      expect(v.suspectPrimary(old, 'unreachable', 'x', login)).to.equal(false);
      expect(v.hold.state).to.equal('idle');
    });

    it('without a primary there is nothing to suspect; the topology hold already holds', () => {
      const v = view();
      v.apply(t(1, 'stable', 'a'), null);
      v.apply(t(2, 'failover', null), null);
      expect(v.suspectPrimary(v.primaryGeneration, 'read-only', 'is read-only', login)).to.equal(false);
      expect(v.hold.state).to.equal('holding');
    });

    it('a same-primary topology change keeps the suspicion and the hold; a new primary drops both', () => {
      const v = view();
      v.apply(t(1, 'stable', 'a'), null);
      v.suspectPrimary(v.primaryGeneration, 'read-only', 'is read-only', login);
      v.apply(t(1, 'stable', 'a', { c: { weight: 2 } }), null);
      expect(v.suspicion?.kind).to.equal('read-only');
      expect(v.hold.state).to.equal('holding');
      v.apply(t(2, 'failover', null), null);
      expect(v.suspicion).to.equal(null);
      expect(v.hold.state).to.equal('holding');
      v.apply(t(2, 'stable', 'b'), null);
      expect(v.hold.state).to.equal('idle');
    });

    it('the leader key gone (or another node\'s) holds writes; the prober cannot clear it; the key back releases', () => {
      const v = view();
      v.apply(t(1, 'stable', 'a'), null);
      v.leaderChanged('a');
      expect(v.hold.state).to.equal('idle');
      v.leaderChanged(null);
      expect(v.suspicion).to.deep.include({ kind: 'lease-lost', reason: 'the leader key is vacant although epoch 1 names a' });
      expect(v.hold.state).to.equal('holding');
      v.clearSuspicion(v.primaryGeneration);
      expect(v.hold.state, 'a writable answer from a leaseless primary means nothing').to.equal('holding');
      v.leaderChanged('a');
      expect(v.suspicion).to.equal(null);
      expect(v.hold.state).to.equal('idle');
    });

    it('a leader key never seen naming the primary holds nothing (a topology written without agents)', () => {
      const v = view();
      v.leaderChanged(null);
      v.apply(t(1, 'stable', 'a'), null);
      v.leaderChanged('b');
      expect(v.suspicion).to.equal(null);
      expect(v.hold.state).to.equal('idle');
    });

    it('the key moving from the primary to another node holds writes until the new topology', () => {
      const v = view();
      v.apply(t(1, 'stable', 'a'), null);
      v.leaderChanged('a');
      v.leaderChanged('b');
      expect(v.suspicion?.reason).to.equal('b holds the leader key although epoch 1 names a');
      expect(v.hold.state).to.equal('holding');
      v.apply(t(2, 'failover', null), null);
      v.apply(t(2, 'stable', 'b'), null);
      expect(v.suspicion).to.equal(null);
      expect(v.hold.state).to.equal('idle');
    });

    it('tells its listener when a suspicion begins and ends', () => {
      const v = view();
      const heard: Array<string | null> = [];
      v.onSuspicion = (s) => heard.push(s === null ? null : s.kind);
      v.apply(t(1, 'stable', 'a'), null);
      v.suspectPrimary(v.primaryGeneration, 'unreachable', 'x', login);
      v.suspectPrimary(v.primaryGeneration, 'read-only', 'y', login);
      v.clearSuspicion(v.primaryGeneration);
      expect(heard).to.deep.equal(['unreachable', null]);
    });
  });
});
