/**
 * Operator ops (`doltgate switchover`, `doltgate failover`) judged as pure functions: what a
 * pending op would do, or why it must be refused. `dryRunOp` is the whole judgement, so the
 * CLI's dry run and the agents agree by construction; `decide` only adds who acts on it.
 *
 * Rules, and why:
 * - Never without etcd quorum, even with --force: every step writes etcd, and a promotion that
 *   a minority partition cannot record is how two primaries happen.
 * - A switchover needs a stable cluster whose primary holds the leader key and is healthy: it is
 *   a hand-over, and someone must be there to hand over. Otherwise use failover.
 * - A failover while a healthy primary holds the key needs --force (that is what switchover is
 *   for). A failover may take over a stalled failover (leader key vacant); it never interrupts
 *   one whose executor is alive.
 * - A named target must have a live agent and must not be the outgoing primary. nofailover is
 *   absolute (--force does not override it: it is the node owner's statement, clear it there).
 *   Unhealthy, not-a-replica and lagging targets are refused unless --force.
 * - Paused: an op naming a target runs (pause stops automatic choices, and this is a person's
 *   choice); an op without a target is refused, because choosing for it would be automatic.
 * - Ops expire after HaConfig.opTimeoutMs unclaimed.
 * Anti-flap and the primary's reclaim grace do not apply: a person asked for it now.
 */

import type { HaConfig } from './config';
import {
  chooseCandidate,
  describeExclusions,
  describeHealth,
  memberHealthy,
} from './candidate';
import type { FailoverPlan } from './decision';
import { formatDuration } from '../../common/wording';
import { describeFlight, failoverInFlight, nextEpoch, type Observation, type PendingOp } from './observation';
import { describeSteps, failoverSteps, handOverSteps, remainingSteps, type FailoverStep } from './steps';

export interface OpExecution {
  outcome: 'execute';
  op: PendingOp;
  /** The node whose agent claims the op and runs plan.steps: the primary for a hand-over, else the candidate. */
  executor: string;
  plan: FailoverPlan;
  /** Every step of the whole op and the node that runs it, for `doltgate switchover --dry-run`. */
  outline: ReadonlyArray<{ node: string; step: FailoverStep }>;
  reason: string;
}

export interface OpRefusal {
  outcome: 'refuse';
  op: PendingOp;
  reason: string;
}

export type OpDryRun = OpExecution | OpRefusal;

export function dryRunOp(obs: Observation, op: PendingOp, config: HaConfig, now: number): OpDryRun {
  const refuse = (why: string): OpRefusal => ({ outcome: 'refuse', op, reason: `${op.kind} ${op.id} refused: ${why}` });
  const age = now - op.requestedAt;
  if (age > config.opTimeoutMs) {
    return refuse(`requested ${formatDuration(age)} ago; ops expire after ${formatDuration(config.opTimeoutMs)}`);
  }
  if (!obs.etcd.reachable) return refuse('etcd is unreachable');
  if (!obs.etcd.hasQuorum) return refuse('etcd has no quorum: no promotion, even with --force');
  const topology = obs.topology;
  if (topology === null) return refuse('the cluster has no topology yet (not bootstrapped)');
  const forced = op.force ? ' (forced: health, role and lag checks skipped)' : '';

  const flight = failoverInFlight(obs);
  if (flight !== null) {
    const flightText = describeFlight(flight);
    if (op.kind === 'switchover') return refuse(`${flightText} is in progress: a switchover needs a stable cluster`);
    if (obs.leader !== null) return refuse(`${flightText} is in progress, run by ${obs.leader}`);
    const record = flight.record;
    const outgoing = record?.fromPrimary ?? null;
    const pick = pickCandidate(obs, op, config, outgoing, 'failed');
    if (typeof pick !== 'string') return refuse(pick.refusal);
    if (record !== null && record.candidate === pick) {
      const plan: FailoverPlan = {
        kind: record.kind, epoch: record.epoch, candidate: pick, fromPrimary: record.fromPrimary, handOver: record.handOver,
        opId: op.id, steps: remainingSteps(record.completedSteps), releaseLeaderAfter: false, takeoverFrom: null,
      };
      return execute(op, pick, plan, `${op.kind} ${op.id}: ${pick} resumes the stalled ${flightText}${forced}`);
    }
    const plan: FailoverPlan = {
      kind: 'failover', epoch: nextEpoch(obs), candidate: pick, fromPrimary: outgoing, handOver: false, opId: op.id,
      steps: [...failoverSteps], releaseLeaderAfter: false,
      takeoverFrom: record === null ? null : { candidate: record.candidate, epoch: record.epoch },
    };
    return execute(op, pick, plan, `${op.kind} ${op.id}: ${pick} takes over the stalled ${flightText} at epoch ${plan.epoch}${forced}`);
  }

  const primary = topology.primary;
  if (primary === null) return refuse('the topology is stable but names no primary'); // parseTopology forbids it
  if (obs.leader !== null && obs.leader !== primary) {
    return refuse(`${obs.leader} holds the leader key and is taking over from ${primary}`);
  }
  const epoch = nextEpoch(obs);

  if (obs.leader === null) {
    if (op.kind === 'switchover') {
      return refuse(`primary ${primary} does not hold the leader key (it failed, or is reclaiming it): use failover`);
    }
    const pick = pickCandidate(obs, op, config, primary, 'failed');
    if (typeof pick !== 'string') return refuse(pick.refusal);
    const plan: FailoverPlan = {
      kind: 'failover', epoch, candidate: pick, fromPrimary: primary, handOver: false, opId: op.id,
      steps: [...failoverSteps], releaseLeaderAfter: false, takeoverFrom: null,
    };
    return execute(op, pick, plan, `failover ${op.id} from ${primary} to ${pick} at epoch ${epoch}: ${pick} runs ${describeSteps(plan.steps)}${forced}`);
  }

  // The primary holds the leader key: it fences and hands the key over.
  const primaryRecord = obs.members[primary];
  const primaryHealthy = primaryRecord !== undefined && memberHealthy(primaryRecord, config);
  if (op.kind === 'switchover' && !primaryHealthy) {
    const state = primaryRecord === undefined ? 'has no live member record' : `is unhealthy (${describeHealth(primaryRecord.health)})`;
    return refuse(`a switchover needs a healthy primary and ${primary} ${state}: use failover`);
  }
  if (op.kind === 'failover' && primaryHealthy && !op.force) {
    return refuse(`primary ${primary} is healthy and holds the leader key: use switchover, or --force to fail over anyway`);
  }
  const pick = pickCandidate(obs, op, config, primary, op.kind === 'switchover' ? 'current' : 'failed');
  if (typeof pick !== 'string') return refuse(pick.refusal);
  const plan: FailoverPlan = {
    kind: op.kind, epoch, candidate: pick, fromPrimary: primary, handOver: true, opId: op.id,
    steps: handOverSteps, releaseLeaderAfter: true, takeoverFrom: null,
  };
  const fenceText = op.kind === 'switchover' ? 'fences (drains, pushes its heads, restarts read-only)' : 'fences';
  return execute(
    op,
    primary,
    plan,
    `${op.kind} ${op.id} from ${primary} to ${pick} at epoch ${epoch}: ${primary} ${fenceText} and hands over the leader key; ` +
      `${pick} runs ${describeSteps(remainingSteps(handOverSteps))}${forced}`,
  );
}

/**
 * The one agent that writes a refusal, so refusals are not written by every agent at once:
 * the named target if it has a live agent, else the leader-key holder, else the live member
 * first by name. Null with no live members (then nobody can refuse, and the op expires on
 * the first agent to come back).
 */
export function opArbiter(obs: Observation, op: PendingOp): string | null {
  if (op.target !== null && op.target in obs.members) return op.target;
  if (obs.leader !== null && obs.leader in obs.members) return obs.leader;
  const names = Object.keys(obs.members).sort();
  return names[0] ?? null;
}

function execute(op: PendingOp, executor: string, plan: FailoverPlan, reason: string): OpExecution {
  const outline: Array<{ node: string; step: FailoverStep }> = plan.steps.map((step) => ({ node: executor, step }));
  if (plan.releaseLeaderAfter) {
    for (const step of remainingSteps(plan.steps)) outline.push({ node: plan.candidate, step });
  }
  return { outcome: 'execute', op, executor, plan, outline, reason };
}

/** The node to promote (the target, checked; or the top-ranked), or why there is none. */
function pickCandidate(
  obs: Observation,
  op: PendingOp,
  config: HaConfig,
  outgoing: string | null,
  outgoingWhy: 'failed' | 'current',
): string | { refusal: string } {
  const choice = chooseCandidate(obs.members, obs.topology, config, { outgoing, outgoingWhy, ignoreLag: op.force });
  if (op.target !== null) {
    const target = op.target;
    if (!(target in obs.members)) return { refusal: `target ${target} has no live agent (no member record)` };
    const exclusion = choice.excluded.find((e) => e.name === target);
    if (exclusion === undefined) return target;
    if (exclusion.code === 'outgoing-primary') return { refusal: `target ${exclusion.reason}` };
    if (exclusion.code === 'nofailover') {
      return { refusal: `target ${target} has nofailover (--force does not override it; clear it in that node's agent config)` };
    }
    if (op.force) return target;
    return { refusal: `target ${exclusion.reason}; use --force to promote it anyway` };
  }
  if (obs.paused) return { refusal: `the cluster is paused: name a target (--to <node>) for an operator ${op.kind}` };
  if (choice.chosen === null) {
    return { refusal: `no eligible candidate: ${describeExclusions(choice.excluded)}` };
  }
  return choice.chosen.name;
}
