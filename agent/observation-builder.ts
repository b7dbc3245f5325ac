/**
 * Turns one store snapshot plus this agent's own facts into the `Observation` that `decide`
 * reads. Pure: the loop supplies the clock and the remembered "leader vacant since".
 */

import type { HistoryRecord, OperationRecord } from '../proto';
import { isFailoverStep, type FailoverStep, type InProgress, type Observation, type PendingOp, type SelfObservation } from './ha';
import type { ClusterSnapshot, Versioned } from './store/cluster-store';

export interface OwnFacts {
  self: SelfObservation;
  leaseExpiresAt: number | null;
  leaderVacantSince: number | null;
}

export function pendingOpOf(ops: ReadonlyArray<Versioned<OperationRecord>>): PendingOp | null {
  const pending = ops.filter((op) => op.value.state === 'pending').sort((a, b) => Date.parse(a.value.requestedAt) - Date.parse(b.value.requestedAt));
  const oldest = pending[0]?.value;
  if (!oldest) return null;
  return { id: oldest.id, kind: oldest.kind, target: oldest.target, force: oldest.force, requestedAt: Date.parse(oldest.requestedAt) };
}

export function inProgressOf(record: HistoryRecord | null): InProgress | null {
  if (!record || record.kind === 'bootstrap' || record.outcome !== 'running') return null;
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
  if (snapshot === null) {
    return {
      self: own.self,
      etcd: { reachable: false, hasQuorum: false },
      leader: null,
      leaseExpiresAt: own.leaseExpiresAt,
      leaderVacantSince: null,
      topology: null,
      members: {},
      paused: false,
      lastFailoverAt: null,
      pendingOp: null,
      inProgress: null,
    };
  }
  const history = snapshot.latestHistory;
  return {
    self: own.self,
    // A snapshot is a linearizable range read: it only succeeds through a quorum.
    etcd: { reachable: true, hasQuorum: true },
    leader: snapshot.leader?.name ?? null,
    leaseExpiresAt: own.leaseExpiresAt,
    leaderVacantSince: snapshot.leader ? null : own.leaderVacantSince,
    topology: snapshot.topology?.value ?? null,
    members: snapshot.members,
    paused: snapshot.paused !== null,
    lastFailoverAt: history && history.kind !== 'bootstrap' ? Date.parse(history.startedAt) : null,
    pendingOp: pendingOpOf(snapshot.ops),
    inProgress: inProgressOf(history),
  };
}
