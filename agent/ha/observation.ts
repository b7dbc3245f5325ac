/**
 * What one agent knows at one instant: the input of `decide`. The loop rebuilds it every cycle
 * from etcd (leader, topology, members, pause, ops, newest history record) and from its own
 * Dolt; it is an immutable snapshot, never updated in place. This file also holds the pure
 * readers that several decisions share (the failover in flight, the next epoch).
 *
 * Times are milliseconds on this host's wall clock, the same clock the loop passes to decide as
 * `now` (they are compared with times other hosts wrote); the lease is the exception, given as a
 * duration measured on a monotonic clock. decide never reads a clock itself.
 *
 * When etcd does not answer, the loop passes the last snapshot it read, marked unreachable: a
 * leader keeps knowing it is the leader (nobody can take the key before its lease lapses), and
 * the lease duration decides when it must stop.
 */

import type { MemberHealth, MemberRecord, NodeRole, Topology } from '../../proto';
import { describeSteps, nextStep, type FailoverStep } from './steps';

export type OpKind = 'switchover' | 'failover';

/**
 * A failover is unplanned (the primary is gone or forced out); a switchover is a planned hand-over;
 * a bootstrap is the first primary's promotion, which runs the same steps.
 */
export type FailoverKind = OpKind | 'bootstrap';

/** An operator request from `ops/<id>` that no agent has claimed yet (status pending). */
export interface PendingOp {
  id: string;
  kind: OpKind;
  /** The node to promote; null lets the candidate ranking choose. */
  target: string | null;
  /** Skip the target's health, role and lag checks. Never skips etcd quorum or nofailover. */
  force: boolean;
  /** When the CLI wrote it (ms); ops older than HaConfig.opTimeoutMs are refused. */
  requestedAt: number;
}

/**
 * The newest `history/<epoch>` record when its steps are not all complete. The loop passes it
 * as is; `failoverInFlight` decides whether it is still current or was superseded.
 */
export interface InProgress {
  kind: FailoverKind;
  /** The epoch this failover publishes: the fence and the reroute both write it. */
  epoch: number;
  candidate: string;
  /** The primary being replaced; null when unknown (its record was lost). */
  fromPrimary: string | null;
  /**
   * A planned hand-over: the outgoing primary runs `fence` (drain, push, restart read-only)
   * while it still holds the leader key, then releases the key; the candidate takes the key and
   * runs the rest.
   */
  handOver: boolean;
  opId: string | null;
  completedSteps: readonly FailoverStep[];
  startedAt: number;
}

export interface SelfObservation {
  name: string;
  /** This agent's own latest checks of its Dolt: fresher than its member record in etcd. */
  health: Pick<MemberHealth, 'healthy' | 'consecutiveFailures' | 'lastError'>;
  /**
   * The role this agent believes its node has. It must survive agent restarts (persist it):
   * an old primary returning after a reboot has to know it was primary to save its orphans.
   */
  role: NodeRole;
  /** The newest topology epoch this agent has acted on (persisted with role). */
  epoch: number;
  /** Whether the local Dolt is running and accepts writes (started without read_only). */
  writable: boolean;
}

export interface EtcdStatus {
  /** The loop's last etcd read or lease keepalive succeeded. */
  reachable: boolean;
  /** The etcd member answering us is in the majority (a linearizable read succeeded). */
  hasQuorum: boolean;
}

export interface Observation {
  self: SelfObservation;
  etcd: EtcdStatus;
  /** Value of the `leader` key: the name holding it, or null when absent. */
  leader: string | null;
  /**
   * How long this agent's lease lives if no further renewal succeeds: the SEND time of the last
   * successful keepalive plus the TTL etcd granted, minus now, on the agent's monotonic fence
   * clock (common/fence-clock.ts; send time, so the estimate is never later than etcd's own).
   * Negative once lapsed; null when the agent has no lease. Read only when `leader` is self.
   */
  leaseLeftMs: number | null;
  /** When the loop first saw the leader key absent; null while it is present. */
  leaderVacantSince: number | null;
  topology: Topology | null;
  /** Member records with live leases, keyed by node name; includes this node's own record. */
  members: Readonly<Record<string, MemberRecord>>;
  paused: boolean;
  /**
   * startedAt of the newest failover or switchover that moved the primary to another node,
   * complete or not (not a bootstrap, not a recovery in place); null when there is none.
   */
  lastFailoverAt: number | null;
  /** The oldest pending op, or null. */
  pendingOp: PendingOp | null;
  /** The newest history record if unfinished, else null. */
  inProgress: InProgress | null;
}

/**
 * A failover that has started and not finished, as far as the snapshot shows. It exists when
 * the topology is mid-failover (state failover/switchover), or when an unfinished history record
 * is newer than the topology and its executor still holds (or nobody holds) the leader key.
 */
export interface InFlight {
  kind: FailoverKind;
  epoch: number;
  /** The current history record; null when the topology is mid-failover and no record explains it. */
  record: InProgress | null;
  /**
   * Who runs the next step: the outgoing primary while it holds the key during a hand-over,
   * otherwise the record's candidate (null without a record).
   */
  executor: string | null;
}

/**
 * The failover in flight, or null when the cluster is stable. A record is ignored when the
 * topology has moved past it (newer epoch, or stable at its epoch: the reroute happened), or when
 * its fence was never published and someone other than its executor now holds the leader key
 * (the old primary reclaimed it, or another node is starting over).
 */
export function failoverInFlight(obs: Observation): InFlight | null {
  const topology = obs.topology;
  if (topology === null) return null;
  let record = obs.inProgress !== null && nextStep(obs.inProgress.completedSteps) !== null ? obs.inProgress : null;
  if (record !== null) {
    const executor = executorOf(record, obs.leader);
    if (topology.epoch > record.epoch) record = null;
    else if (topology.epoch === record.epoch && topology.state === 'stable') record = null;
    else if (topology.state === 'stable' && obs.leader !== null && obs.leader !== executor) record = null;
  }
  if (record === null) {
    if (topology.state === 'stable') return null;
    return { kind: topology.state, epoch: topology.epoch, record: null, executor: null };
  }
  return { kind: record.kind, epoch: record.epoch, record, executor: executorOf(record, obs.leader) };
}

function executorOf(record: InProgress, leader: string | null): string {
  return record.handOver && record.fromPrimary !== null && leader === record.fromPrimary ? record.fromPrimary : record.candidate;
}

/** `switchover to c at epoch 8 (done: fence; next: disable-read-only)`. */
export function describeFlight(flight: InFlight): string {
  const record = flight.record;
  if (record === null) return `${flight.kind} at epoch ${flight.epoch} (no history record)`;
  return (
    `${record.kind} to ${record.candidate} at epoch ${record.epoch} ` +
    `(done: ${describeSteps(record.completedSteps)}; next: ${nextStep(record.completedSteps) ?? 'none'})`
  );
}

/**
 * The epoch a new failover or bootstrap publishes: one above every epoch in sight. Counting the
 * history record and the members keeps epochs rising even after an abandoned attempt or a lost
 * topology key, so an epoch never names two different candidates.
 */
export function nextEpoch(obs: Observation): number {
  let max = Math.max(obs.topology?.epoch ?? 0, obs.inProgress?.epoch ?? 0, obs.self.epoch);
  for (const member of Object.values(obs.members)) max = Math.max(max, member.epoch);
  return max + 1;
}
