/**
 * What `decide` returns: one action for the loop to take now, named as a verb, always with a
 * `reason` sentence a person can read (logged, shown by `doltgate status`, asserted by tests).
 * `action` and a wait's `code` are closed sets and double as metric labels, so dashboards and
 * logs use the same words.
 *
 * Every action is idempotent: the loop may crash anywhere while carrying one out, and the next
 * cycle's decision continues from whatever state etcd and Dolt are left in.
 */

import type { FailoverKind, PendingOp } from './observation';
import type { FailoverStep } from './steps';

/**
 * A failover (or one agent's share of it) to carry out. The loop, for start-failover,
 * resume-failover and execute-op alike:
 * 1. makes sure this agent holds the leader key: create it if absent (txn on create revision 0),
 *    bound to its lease; if another node holds it, drop the decision and observe again;
 * 2. creates `history/<epoch>` if absent ({kind, candidate, fromPrimary, handOver, opId,
 *    takeoverFrom, startedAt, completed: []}) and claims `ops/<opId>` in the same txn
 *    (FailoverExecutor.begin, store.beginFailover): a claimed, refused or finished op never runs;
 * 3. runs `steps` in order, recording each as complete in the same etcd txn as any topology
 *    write the step makes (fence, reroute), so topology and history never disagree;
 * 4. if releaseLeaderAfter, deletes the leader key (only if its value is still this node).
 */
export interface FailoverPlan {
  kind: FailoverKind;
  /** The epoch this failover publishes; history is keyed by it. One epoch, one candidate. */
  epoch: number;
  /** The node that becomes primary. Not always this node: see releaseLeaderAfter. */
  candidate: string;
  fromPrimary: string | null;
  /** A planned hand-over: the outgoing primary fences, then releases the key to the candidate. */
  handOver: boolean;
  opId: string | null;
  /** The steps THIS agent runs now, in order; may be empty (only the release is left). */
  steps: readonly FailoverStep[];
  /** True for the outgoing primary's part of a hand-over. */
  releaseLeaderAfter: boolean;
  /** Set when this plan replaces a stalled attempt whose candidate is gone. */
  takeoverFrom: { candidate: string; epoch: number } | null;
}

export type WaitCode =
  /** etcd did not answer: nothing that needs etcd may happen. */
  | 'etcd-unreachable'
  /** The etcd member we reach is in a minority: no promotion. */
  | 'no-quorum'
  /** Maintenance mode: no automatic failover. */
  | 'paused'
  /** Within minFailoverIntervalMs of the last failover. */
  | 'anti-flap'
  /** Another node is the chosen candidate. */
  | 'not-candidate'
  /** Nobody may be promoted. */
  | 'no-eligible-candidate'
  /** This node's own Dolt fails its checks. */
  | 'self-unhealthy'
  /** The leader key lapsed but the primary is alive; it gets reclaimGraceMs to take it back. */
  | 'primary-may-reclaim'
  /** The old primary missed its reclaim grace and a replica is failing over instead. */
  | 'grace-expired'
  /** A failover is being run by a live executor. */
  | 'failover-in-progress'
  /** A stalled failover's candidate is alive and will resume it. */
  | 'candidate-resuming'
  /** An operator op is pending and another node executes it. */
  | 'op-pending'
  /** The leader key is held by a node the topology does not name (a failover is starting). */
  | 'leader-elsewhere'
  /** No topology yet and another node bootstraps. */
  | 'awaiting-bootstrap';

export const waitCodes: readonly WaitCode[] = [
  'etcd-unreachable', 'no-quorum', 'paused', 'anti-flap', 'not-candidate', 'no-eligible-candidate', 'self-unhealthy',
  'primary-may-reclaim', 'grace-expired', 'failover-in-progress', 'candidate-resuming', 'op-pending', 'leader-elsewhere', 'awaiting-bootstrap',
];

/** Primary in good order: keep the lease keepalive running and serve. Nothing else to do. */
export interface RenewLease {
  action: 'renew-lease';
  reason: string;
}

/**
 * Stop the local Dolt taking writes now (kill it or restart it read-only: it must be done
 * within fenceMarginMs), record role 'fenced' if this node believed it was primary, and when
 * releaseLeader is set delete the leader key (if its value is still this node).
 */
export interface FenceSelf {
  action: 'fence-self';
  releaseLeader: boolean;
  reason: string;
}

/** Delete the leader key (if still ours): this node holds it but must not use it. Dolt is not writable. */
export interface ReleaseLeader {
  action: 'release-leader';
  reason: string;
}

/**
 * Bootstrap: create the leader key (create-if-absent), then the topology
 * {epoch, state: failover, primary: null, nodes from the member records} if absent, with a
 * history record of a bootstrap to this node whose fence is done. The next cycle resumes it like
 * any failover (disable-read-only ... reroute), so proxies hold writes until this node's Dolt
 * takes them.
 */
export interface AcquireLeader {
  action: 'acquire-leader';
  mode: 'bootstrap';
  epoch: number;
  reason: string;
}

/**
 * Automatic failover: this node is the chosen candidate and the primary's leader key is gone. Also
 * a primary's recovery in place (candidate === fromPrimary === this node): it reclaims a vacant
 * key, or holds the key while its Dolt does not take writes. That too moves to a new epoch, so
 * proxies hold writes while its Dolt restarts and recovers instead of sending them in.
 */
export interface StartFailover extends FailoverPlan {
  action: 'start-failover';
  reason: string;
}

/** Continue a half-done failover (this node's share), or take over a stalled one (takeoverFrom). */
export interface ResumeFailover extends FailoverPlan {
  action: 'resume-failover';
  /** As recorded in history before this decision; empty for a takeover. */
  completedSteps: readonly FailoverStep[];
  reason: string;
}

/** Claim the operator op and run this node's share of it. */
export interface ExecuteOp extends FailoverPlan {
  action: 'execute-op';
  op: PendingOp;
  reason: string;
}

/** Mark the op refused with `reason` (CAS on its mod revision, so one refusal wins). */
export interface RefuseOp {
  action: 'refuse-op';
  op: PendingOp;
  reason: string;
}

/**
 * This node was primary at an older epoch: restart Dolt as a read replica of the remote after
 * pushing every local commit the remote lacks as a branch `doltgate/orphaned/<orphanEpoch>/<branch>-<hash>`
 * (nothing acknowledged is dropped silently), then record role replica and `epoch`.
 */
export interface RejoinAsReplica {
  action: 'rejoin-as-replica';
  /** The primary the topology names; null while the failover that replaced this node runs. */
  primary: string | null;
  epoch: number;
  /** The epoch this node was primary at: names its orphan branches. */
  orphanEpoch: number;
  reason: string;
}

/** Replica in good order: keep replicating from the remote; record `epoch` if it is newer. */
export interface Follow {
  action: 'follow';
  primary: string;
  epoch: number;
  reason: string;
}

/** Do nothing this cycle, for the reason given. */
export interface Wait {
  action: 'wait';
  code: WaitCode;
  reason: string;
}

export type Decision =
  | RenewLease
  | FenceSelf
  | ReleaseLeader
  | AcquireLeader
  | StartFailover
  | ResumeFailover
  | ExecuteOp
  | RefuseOp
  | RejoinAsReplica
  | Follow
  | Wait;

export type Action = Decision['action'];

export const actions: readonly Action[] = [
  'renew-lease', 'fence-self', 'release-leader', 'acquire-leader', 'start-failover',
  'resume-failover', 'execute-op', 'refuse-op', 'rejoin-as-replica', 'follow', 'wait',
];
