/**
 * Builders for the HA tests: a compact `Scenario` (who is who, what etcd shows) expands into a
 * full `Observation`. The file name ends in `.test.ts` only because HA test code lives in
 * test/unit/ha-*.test.ts; its own tests check that the builders produce values the proto
 * parsers accept, so the decide tests never run on shapes etcd could not hold.
 *
 * Defaults: now = T0; a three-node cluster a (primary), b, c at epoch 7; everyone healthy,
 * priority 100, nothing behind; etcd fine; self's lease ends 10 s from now.
 */

import { expect } from 'chai';
import { decodeMember, encodeMember, parseTopology, type ClusterState, type MemberRecord, type NodeRole, type Topology } from '../../proto';
import { haConfig, type HaConfig } from '../../agent/ha/config';
import type { InProgress, Observation, PendingOp } from '../../agent/ha/observation';
import type { FailoverStep } from '../../agent/ha/steps';
import type { ClusterSnapshot } from '../../agent/store/cluster-store';

export const T0 = 1_700_000_000_000;

/** Test config: the defaults except a small lag limit, so lag cases need small numbers. */
export const config: HaConfig = haConfig({ maxCommitsBehind: 100 });

export interface NodeSpec {
  role?: NodeRole;
  priority?: number;
  healthy?: boolean;
  failures?: number;
  lastError?: string | null;
  behind?: number;
  notOnRemote?: number;
  nofailover?: boolean;
  epoch?: number;
  /** False: no live lease, so no member record (the agent is gone). */
  live?: boolean;
  /** Cluster mode, a primary's record: the standbys it saw behind. */
  standbysBehind?: string[];
}

export interface Scenario {
  self: string;
  nodes: Record<string, NodeSpec>;
  topology?: { epoch: number; primary: string | null; state?: ClusterState } | null;
  leader?: string | null;
  /** Self's lease end relative to now; null for no lease. */
  leaseLeftMs?: number | null;
  /** How long the leader key has been vacant (only used when leader is null). */
  vacantForMs?: number;
  etcd?: { reachable: boolean; hasQuorum: boolean };
  paused?: boolean;
  lastFailoverAgoMs?: number | null;
  op?: Partial<PendingOp> & { kind: PendingOp['kind'] } | null;
  inProgress?: (Partial<InProgress> & { candidate: string; epoch: number; completedSteps: FailoverStep[] }) | null;
  /** Overrides of self's own view; default derived from its node spec. */
  selfView?: Partial<{ role: NodeRole; epoch: number; writable: boolean; healthy: boolean; failures: number; lastError: string | null }>;
  now?: number;
}

/** A snapshot with nothing paused, pending or recorded beyond the fields given. */
export function snapshotOf(fields: Pick<ClusterSnapshot, 'revision' | 'leader' | 'topology' | 'members'> & Partial<ClusterSnapshot>): ClusterSnapshot {
  return { paused: null, ops: [], latestHistory: null, latestFailover: null, databases: null, ...fields };
}

export function member(name: string, spec: NodeSpec = {}, now = T0): MemberRecord {
  const failures = spec.failures ?? (spec.healthy === false ? 3 : 0);
  return {
    name,
    sql: { host: '127.0.0.1', port: 3300 + name.charCodeAt(0) },
    grpc: null,
    role: spec.role ?? 'replica',
    epoch: spec.epoch ?? 7,
    health: {
      healthy: spec.healthy ?? true,
      consecutiveFailures: failures,
      lastCheckAt: new Date(now).toISOString(),
      sqlLatencyMs: 1,
      lastError: spec.lastError ?? null,
      hostReachable: true,
    },
    heads: {},
    remoteHeads: {},
    commitsNotOnRemote: spec.notOnRemote ?? 0,
    commitsBehindRemote: spec.behind ?? 0,
    ...(spec.standbysBehind ? { standbysBehind: spec.standbysBehind } : {}),
    priority: spec.priority ?? 100,
    nofailover: spec.nofailover ?? false,
    backup: null,
    updatedAt: new Date(now).toISOString(),
  };
}

export function topology(epoch: number, primary: string | null, names: string[], state: ClusterState = 'stable', now = T0): Topology {
  const nodes: Topology['nodes'] = {};
  for (const name of names) {
    nodes[name] = { sql: { host: '127.0.0.1', port: 3300 + name.charCodeAt(0) }, role: name === primary ? 'primary' : 'replica' };
  }
  return { epoch, state, primary, nodes, reason: 'test', at: new Date(now).toISOString() };
}

/** a primary, b and c replicas, epoch 7, seen from `self`. */
export function cluster(self: string, extra: Partial<Scenario> = {}): Scenario {
  return {
    self,
    nodes: { a: { role: 'primary' }, b: {}, c: {} },
    topology: { epoch: 7, primary: 'a' },
    leader: 'a',
    ...extra,
  };
}

export function observe(s: Scenario): Observation {
  const now = s.now ?? T0;
  const members: Record<string, MemberRecord> = {};
  for (const [name, spec] of Object.entries(s.nodes)) if (spec.live !== false) members[name] = member(name, spec, now);
  const own = s.nodes[s.self] ?? {};
  const topo = s.topology === undefined || s.topology === null
    ? null
    : topology(s.topology.epoch, s.topology.primary, Object.keys(s.nodes), s.topology.state ?? 'stable', now);
  const leader = s.leader === undefined ? null : s.leader;
  const role = s.selfView?.role ?? own.role ?? 'replica';
  const leaseLeft = s.leaseLeftMs === undefined ? 10_000 : s.leaseLeftMs;
  const ip = s.inProgress;
  return {
    self: {
      name: s.self,
      health: {
        healthy: s.selfView?.healthy ?? own.healthy ?? true,
        consecutiveFailures: s.selfView?.failures ?? own.failures ?? ((s.selfView?.healthy ?? own.healthy) === false ? 3 : 0),
        lastError: s.selfView?.lastError ?? own.lastError ?? null,
      },
      role,
      epoch: s.selfView?.epoch ?? own.epoch ?? 7,
      writable: s.selfView?.writable ?? (role === 'primary' && leader === s.self && topo?.primary === s.self),
    },
    etcd: s.etcd ?? { reachable: true, hasQuorum: true },
    leader,
    leaseLeftMs: leaseLeft,
    leaderVacantSince: leader === null ? now - (s.vacantForMs ?? 60_000) : null,
    topology: topo,
    members,
    paused: s.paused ?? false,
    lastFailoverAt: s.lastFailoverAgoMs === undefined || s.lastFailoverAgoMs === null ? null : now - s.lastFailoverAgoMs,
    pendingOp: s.op
      ? { id: 'op-1', target: null, force: false, requestedAt: now - 1_000, ...s.op }
      : null,
    inProgress: ip
      ? { kind: 'failover', fromPrimary: 'a', handOver: false, opId: null, startedAt: now - 5_000, ...ip }
      : null,
  };
}

describe('ha fixtures', () => {
  it('members survive the proto codec', () => {
    const record = member('b', { healthy: false, behind: 4, nofailover: true });
    expect(decodeMember(encodeMember(record))).to.deep.equal(record);
  });

  it('a topology says cluster replication, or nothing (remote); any other value is refused', () => {
    const base = topology(7, 'a', ['a', 'b', 'c']);
    expect(parseTopology({ ...base, replication: 'cluster' }).replication).to.equal('cluster');
    expect('replication' in parseTopology(base)).to.equal(false);
    expect(() => parseTopology({ ...base, replication: 'remote' })).to.throw(/replication must be cluster or absent/);
    expect(() => parseTopology({ ...base, replication: 1 })).to.throw(/replication must be cluster or absent/);
  });

  it('topologies pass parseTopology, stable and mid-failover', () => {
    expect(() => parseTopology(topology(7, 'a', ['a', 'b', 'c']))).not.to.throw();
    expect(() => parseTopology(topology(8, null, ['a', 'b', 'c'], 'failover'))).not.to.throw();
  });

  it('observe derives self, lease and members from a scenario', () => {
    const obs = observe(cluster('a', { nodes: { a: { role: 'primary' }, b: { live: false }, c: {} } }));
    expect(obs.self).to.deep.include({ name: 'a', role: 'primary', epoch: 7, writable: true });
    expect(obs.leaseLeftMs).to.equal(10_000);
    expect(Object.keys(obs.members)).to.deep.equal(['a', 'c']);
    expect(obs.leaderVacantSince).to.equal(null);
  });
});
