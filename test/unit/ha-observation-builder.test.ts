/**
 * buildObservation (agent/observation-builder.ts): what decide sees from a snapshot, and from the
 * last snapshot when etcd does not answer; and which history records count as a failover in
 * flight and for anti-flap.
 */

import { expect } from 'chai';
import { decide } from '../../agent/ha/decide';
import { buildObservation, inProgressOf } from '../../agent/observation-builder';
import type { ClusterSnapshot } from '../../agent/store/cluster-store';
import type { HistoryRecord } from '../../proto';
import { config, member, snapshotOf, T0, topology } from './ha-fixtures.test';

function snapshot(extra: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  return snapshotOf({
    revision: '10',
    leader: { name: 'a', lease: '77' },
    topology: { value: topology(7, 'a', ['a', 'b', 'c']), modRevision: '5' },
    members: { a: member('a', { role: 'primary' }), b: member('b'), c: member('c') },
    ...extra,
  });
}

const self = { name: 'a', health: { healthy: true, consecutiveFailures: 0, lastError: null }, role: 'primary' as const, epoch: 7, writable: true };

function history(extra: Partial<HistoryRecord>): HistoryRecord {
  return {
    epoch: 8, kind: 'failover', reason: 'test', fromPrimary: 'a', candidate: 'b', handOver: false, opId: null, takeoverFrom: null,
    startedAt: new Date(T0 - 5_000).toISOString(), endedAt: null, outcome: 'running', steps: [], orphanedBranches: [],
    ...extra,
  };
}

describe('observation builder', () => {
  it('etcd unreachable: the last snapshot stands, marked unreachable, so a primary keeps knowing it leads', () => {
    const obs = buildObservation(null, { self, leaseLeftMs: 6_000, leaderVacantSince: null, lastKnown: snapshot() });
    expect(obs.etcd).to.deep.equal({ reachable: false, hasQuorum: false });
    expect(obs.leader).to.equal('a');
    expect(obs.topology?.primary).to.equal('a');
    // Before, the leader read as null here and the primary fenced at the first failed read.
    const decision = decide(obs, config, T0);
    expect(decision.action, decision.reason).to.equal('renew-lease');
    expect(decision.reason).to.match(/^etcd is unreachable: keep serving on the lease/);
  });

  it('etcd without quorum (a member answers, reporting no leader): the primary keeps serving, the wait says no-quorum', () => {
    const obs = buildObservation(null, { self, leaseLeftMs: 6_000, leaderVacantSince: null, lastKnown: snapshot(), etcdUnavailable: 'no-quorum' });
    expect(obs.etcd).to.deep.equal({ reachable: true, hasQuorum: false });
    const decision = decide(obs, config, T0);
    expect(decision.action, decision.reason).to.equal('renew-lease');
    expect(decision.reason).to.match(/^etcd has no quorum: keep serving on the lease/);
    const follower = decide(buildObservation(null, { self: { ...self, name: 'b', writable: false, role: 'replica' }, leaseLeftMs: null, leaderVacantSince: null, lastKnown: snapshot(), etcdUnavailable: 'no-quorum' }), config, T0);
    expect(follower).to.deep.include({ action: 'wait', code: 'no-quorum' });
  });

  it('etcd unreachable and nothing ever read: no leader, no topology', () => {
    const obs = buildObservation(null, { self: { ...self, writable: false }, leaseLeftMs: null, leaderVacantSince: null, lastKnown: null });
    expect(obs).to.deep.include({ leader: null, topology: null, etcd: { reachable: false, hasQuorum: false } });
  });

  it('a fresh snapshot wins over the last one', () => {
    const obs = buildObservation(snapshot({ leader: null }), { self, leaseLeftMs: 6_000, leaderVacantSince: T0 - 1_000, lastKnown: snapshot() });
    expect(obs.leader).to.equal(null);
    expect(obs.leaderVacantSince).to.equal(T0 - 1_000);
    expect(obs.etcd.reachable).to.equal(true);
  });

  it('anti-flap counts the newest failover that moved the primary, not a recovery in place or a bootstrap', () => {
    const moved = history({ epoch: 8, startedAt: new Date(T0 - 20_000).toISOString(), outcome: 'succeeded' });
    const inPlace = history({ epoch: 9, candidate: 'b', fromPrimary: 'b', startedAt: new Date(T0 - 2_000).toISOString(), outcome: 'succeeded' });
    const obs = buildObservation(snapshot({ latestHistory: inPlace, latestFailover: moved }), { self, leaseLeftMs: 6_000, leaderVacantSince: null, lastKnown: null });
    expect(obs.lastFailoverAt).to.equal(T0 - 20_000);
  });

  it('a running bootstrap is a failover in flight (it resumes like one); a finished record is not', () => {
    expect(inProgressOf(history({ kind: 'bootstrap', fromPrimary: null, candidate: 'a', steps: [{ name: 'fence', state: 'done', startedAt: '', endedAt: '', durationMs: 0, executor: 'a', detail: '' }] })))
      .to.deep.include({ kind: 'bootstrap', candidate: 'a', completedSteps: ['fence'] });
    expect(inProgressOf(history({ outcome: 'succeeded' }))).to.equal(null);
  });
});
