/**
 * Turns one store snapshot plus this agent's own facts into the `Observation` that `decide`
 * reads. Pure: the loop supplies the clock, the lease time left and the remembered "leader
 * vacant since".
 *
 * When etcd did not answer (snapshot null), the observation is built from the last snapshot that
 * was read, marked unreachable: a primary that cannot reach etcd must go on knowing it holds the
 * key, and serve on its lease until the fence margin, instead of fencing at the first failed
 * read (its key cannot move before its lease lapses, and only it deletes it).
 */

import type { HistoryRecord, OperationRecord } from '../proto';
import { isFailoverStep, type FailoverStep, type InProgress, type Observation, type PendingOp, type SelfObservation } from './ha';
import type { ClusterSnapshot, Versioned } from './store/cluster-store';
import type { EtcdUnavailability } from './store/etcd-quorum';

export interface OwnFacts {
  self: SelfObservation;
  leaseLeftMs: number | null;
  leaderVacantSince: number | null;
  /** The newest snapshot that was read; used when this cycle's read failed. */
  lastKnown: ClusterSnapshot | null;
  /** Why this cycle's read failed (store.explainUnavailable); default 'unreachable'. */
  etcdUnavailable?: EtcdUnavailability;
}

export function pendingOpOf(ops: ReadonlyArray<Versioned<OperationRecord>>): PendingOp | null {
  const pending = ops.filter((op) => op.value.state === 'pending').sort((a, b) => Date.parse(a.value.requestedAt) - Date.parse(b.value.requestedAt));
  const oldest = pending[0]?.value;
  if (!oldest) return null;
  return { id: oldest.id, kind: oldest.kind, target: oldest.target, force: oldest.force, requestedAt: Date.parse(oldest.requestedAt) };
}

export function inProgressOf(record: HistoryRecord | null): InProgress | null {
  if (!record || record.outcome !== 'running') return null;
  const completed = record.steps.filter((step) => step.state === 'done').map((step) => step.name).filter(isFailoverStep) as FailoverStep[];
  return {
    kind: record.kind,
    epoch: record.epoch,
    candidate: record.candidate,
    fromPrimary: record.fromPrimary,
    handOver: record.handOver ?? false,
    opId: record.opId ?? null,
    completedSteps: completed,
    startedAt: Date.parse(record.startedAt),
  };
}

export function buildObservation(snapshot: ClusterSnapshot | null, own: OwnFacts): Observation {
  const read = snapshot ?? own.lastKnown;
  // A member answered but could not read through a majority: reachable, without quorum.
  const unread = { reachable: own.etcdUnavailable === 'no-quorum', hasQuorum: false };
  if (read === null) {
    return {
      self: own.self,
      etcd: unread,
      leader: null,
      leaseLeftMs: own.leaseLeftMs,
      leaderVacantSince: null,
      topology: null,
      members: {},
      paused: false,
      lastFailoverAt: null,
      pendingOp: null,
      inProgress: null,
    };
  }
  const history = read.latestHistory;
  return {
    self: own.self,
    // A snapshot is a linearizable range read: it only succeeds through a quorum.
    etcd: snapshot === null ? unread : { reachable: true, hasQuorum: true },
    leader: read.leader?.name ?? null,
    leaseLeftMs: own.leaseLeftMs,
    leaderVacantSince: read.leader ? null : own.leaderVacantSince,
    topology: read.topology?.value ?? null,
    members: read.members,
    paused: read.paused !== null,
    lastFailoverAt: read.latestFailover ? Date.parse(read.latestFailover.startedAt) : null,
    pendingOp: pendingOpOf(read.ops),
    inProgress: inProgressOf(history),
  };
}
