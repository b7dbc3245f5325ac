/**
 * When a failover starts, who continues a half-done one, and when it is taken over: the rules
 * decide() applies once the leader key is vacant (or held by this node for that purpose).
 * Every agent runs them on the same snapshot, so they name the same candidate; every branch
 * that does not promote this node says why, naming the node that will act.
 *
 * Invariants: anti-flap and the reclaim grace gate only the START of a failover, never its
 * continuation (a cluster mid-failover has no primary); pause gates starting and taking over,
 * not an executor finishing its own steps; one epoch names one candidate, so a takeover always
 * moves to a new epoch.
 */

import type { Topology } from '../../proto';
import {
  chooseCandidate,
  describeCandidate,
  describeExclusions,
  describeHealth,
  memberHealthy,
  standingOf,
  type CandidateChoice,
  type RankedCandidate,
} from './candidate';
import { holdOrRelease, opPendingText, planOf, wait, type Context } from './context';
import type { Decision, WaitCode } from './decision';
import { formatDuration } from '../../common/wording';
import { describeFlight, nextEpoch, type InFlight, type Observation } from './observation';
import type { OpExecution } from './ops';
import { failoverSteps, remainingSteps, resumeSteps } from './steps';

/**
 * A failover is in flight and this node does not hold the leader key. While someone holds it,
 * wait. Once it is vacant (the executor died, or a hand-over released it) the record's candidate
 * resumes if it is alive and healthy — even if it no longer ranks first, since it is part-way
 * through — and only otherwise is the failover taken over.
 */
export function followDuringFailover(ctx: Context, flight: InFlight, blocking: OpExecution | null): Decision {
  const { obs, config, self } = ctx;
  const flightText = describeFlight(flight);
  if (obs.leader !== null) {
    if (obs.leader === flight.executor) return wait('failover-in-progress', `${flightText} is in progress, run by ${obs.leader}`);
    return wait('failover-in-progress', `${flightText} is in progress; ${obs.leader} holds the leader key to take it over`);
  }
  // The leader key is vacant: the executor died or handed over. Its candidate, if fit, goes on.
  if (blocking !== null) return wait('op-pending', opPendingText(blocking));
  const record = flight.record;
  const candidate = record === null ? undefined : obs.members[record.candidate];
  if (record !== null && candidate !== undefined && memberHealthy(candidate, config)) {
    if (record.candidate !== self) {
      return wait('candidate-resuming', `${flightText} stalled with the leader key vacant; waiting for its candidate ${record.candidate} to resume it`);
    }
    if (!ctx.selfHealthy) {
      return wait('self-unhealthy', `this node is the candidate of ${flightText} but its own Dolt is unhealthy (${describeHealth(obs.self.health)}): not resuming`);
    }
    return {
      ...planOf(record, resumeSteps(remainingSteps(record.completedSteps), obs.self.writable), false),
      action: 'resume-failover',
      completedSteps: record.completedSteps,
      reason: `resume ${flightText}: this node is its candidate and the leader key is vacant`,
    };
  }
  return takeOver(ctx, flight, false, null);
}

/**
 * A failover whose candidate is gone (or unfit) is taken over by the chosen candidate at a new
 * epoch, from the first step: the fence is republished at the new epoch so the abandoned
 * candidate's half-promotion is older than the takeover, and one epoch never names two
 * candidates. Not blocked by anti-flap (the cluster has no primary); blocked by pause.
 */
export function takeOver(ctx: Context, flight: InFlight, holding: boolean, blocking: OpExecution | null): Decision {
  const { obs, config, self } = ctx;
  const hold = holdOrRelease(holding);
  const flightText = describeFlight(flight);
  if (blocking !== null) return hold('op-pending', opPendingText(blocking));
  if (obs.paused) {
    return hold('paused', `cluster is paused: ${flightText} stalled and is not taken over automatically (run doltgate failover --to <node>)`);
  }
  const record = flight.record;
  const outgoing = record?.fromPrimary ?? null;
  const why = record === null ? 'no executor holds the leader key' : whyStalled(ctx, record.candidate);
  const choice = chooseCandidate(obs.members, obs.topology, config, { outgoing, outgoingWhy: 'failed' });
  const chosen = choice.chosen;
  if (chosen === null) {
    return hold('no-eligible-candidate', `${flightText} stalled (${why}) and no node can take it over: ${describeExclusions(choice.excluded)}`);
  }
  if (chosen.name !== self) {
    return hold(
      'not-candidate',
      `${flightText} stalled (${why}); node ${chosen.name} is the chosen candidate (${describeCandidate(chosen)}) to take it over; ${standingOf(choice, self)}`,
    );
  }
  if (!ctx.selfHealthy) {
    return hold('self-unhealthy', `this node is the chosen candidate to take over ${flightText} but its own Dolt is unhealthy (${describeHealth(obs.self.health)})`);
  }
  const epoch = nextEpoch(obs);
  return {
    action: 'resume-failover',
    kind: 'failover',
    epoch,
    candidate: self,
    fromPrimary: outgoing,
    handOver: false,
    opId: null,
    steps: [...failoverSteps],
    releaseLeaderAfter: false,
    takeoverFrom: record === null ? null : { candidate: record.candidate, epoch: record.epoch },
    completedSteps: [],
    reason: `${flightText} stalled (${why}): this node, the chosen candidate (${describeCandidate(chosen)}), takes it over at epoch ${epoch}`,
  };
}

function whyStalled(ctx: Context, candidate: string): string {
  const member = ctx.obs.members[candidate];
  if (member === undefined) return `${candidate} has no live agent`;
  if (!memberHealthy(member, ctx.config)) return `${candidate} is unhealthy`;
  return `${candidate} did not resume it`;
}

/**
 * The primary lost the leader key and no failover is in flight. Checks run from the cheapest to
 * explain to the most specific, so the reason names the first thing that stops promotion.
 */
export function automaticFailover(ctx: Context, topology: Topology, holding: boolean, blocking: OpExecution | null): Decision {
  const { obs, config, now, self } = ctx;
  const hold = holdOrRelease(holding);
  const primary = topology.primary ?? '';
  if (blocking !== null) return hold('op-pending', opPendingText(blocking));
  const primaryRecord = obs.members[primary];
  const primaryHealthy = primaryRecord !== undefined && memberHealthy(primaryRecord, config);
  if (!holding && !obs.paused && primaryHealthy) {
    const vacantFor = vacancy(obs, now);
    if (vacantFor < config.reclaimGraceMs) {
      return wait(
        'primary-may-reclaim',
        `the leader key is vacant but primary ${primary} is alive and healthy: giving it ${formatDuration(config.reclaimGraceMs - vacantFor)} more to reclaim it`,
      );
    }
  }
  const verdict = failoverVerdict(ctx, topology);
  if ('code' in verdict) return hold(verdict.code, verdict.reason);
  const { choice, chosen } = verdict;
  if (chosen.name !== self) {
    return hold('not-candidate', `node ${chosen.name} is the chosen candidate (${describeCandidate(chosen)}); ${standingOf(choice, self)}`);
  }
  if (!ctx.selfHealthy) {
    return hold(
      'self-unhealthy',
      `this node is the chosen candidate by the member records but its own Dolt is unhealthy (${describeHealth(obs.self.health)}): not campaigning`,
    );
  }
  const primaryState =
    primaryRecord === undefined
      ? `${primary} has no live agent`
      : primaryHealthy
        ? `${primary} is alive but did not reclaim it`
        : `${primary} is unhealthy`;
  const epoch = nextEpoch(obs);
  return {
    action: 'start-failover',
    kind: 'failover',
    epoch,
    candidate: self,
    fromPrimary: primary,
    handOver: false,
    opId: null,
    steps: [...failoverSteps],
    releaseLeaderAfter: false,
    takeoverFrom: null,
    reason: `primary ${primary} lost the leader key (${primaryState}); this node is the chosen candidate (${describeCandidate(chosen)}): fail over at epoch ${epoch}`,
  };
}

/**
 * Whether replicas would fail over from the topology primary right now (reclaim grace aside),
 * and to whom; or the first thing that stops them. Shared by the replicas and by the old primary
 * deciding whether it may still reclaim, so both read the snapshot the same way.
 */
export function failoverVerdict(
  ctx: Context,
  topology: Topology,
): { code: WaitCode; reason: string } | { choice: CandidateChoice; chosen: RankedCandidate } {
  const { obs, config, now } = ctx;
  const primary = topology.primary ?? '';
  if (obs.paused) {
    return { code: 'paused', reason: `cluster is paused: no automatic failover from ${primary} (resume, or run doltgate failover --to <node>)` };
  }
  // Anti-flap holds back a failover only while the primary's agent is alive, because that agent
  // can recover its node in place; a primary with no live agent has nobody to bring it back.
  const primaryAgentAlive = obs.members[primary] !== undefined;
  if (primaryAgentAlive && obs.lastFailoverAt !== null && now - obs.lastFailoverAt < config.minFailoverIntervalMs) {
    return {
      code: 'anti-flap',
      reason:
        `last failover ${formatDuration(now - obs.lastFailoverAt)} ago; minimum interval ${formatDuration(config.minFailoverIntervalMs)}; ` +
        `${primary}'s agent is alive and recovers it in place`,
    };
  }
  const choice = chooseCandidate(obs.members, topology, config, { outgoing: primary, outgoingWhy: 'failed' });
  if (choice.chosen === null) {
    return { code: 'no-eligible-candidate', reason: `no eligible candidate to replace ${primary}: ${describeExclusions(choice.excluded)}` };
  }
  return { choice, chosen: choice.chosen };
}

/** How long the leader key has been vacant; unknown counts as forever (the grace is an optimisation, not a safety rule). */
export function vacancy(obs: Observation, now: number): number {
  return obs.leaderVacantSince === null ? Number.POSITIVE_INFINITY : now - obs.leaderVacantSince;
}
