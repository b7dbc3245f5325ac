/**
 * The HA decision: `decide(observation, config, now)` returns the one thing this agent should
 * do now, with a reason. It is a pure function — no I/O, no clock, no state between calls — so
 * every agent can run it every cycle on a fresh snapshot, and a half-done action is simply
 * decided again next cycle.
 *
 * The order of the rules is the safety argument:
 * 1. A node takes writes only while its agent holds the leader key with a lease that will not
 *    lapse within fenceMarginMs. Anything else that is writable fences first, whatever else
 *    is going on. A leader whose Dolt failed failureThreshold checks fences and releases.
 * 2. Nothing that writes etcd is decided without etcd reachable and in quorum. A primary whose
 *    etcd is unreachable keeps serving on its lease until the margin (nobody else can take the
 *    key before the lease lapses), then rule 1 fences it.
 * 3. The leader key is the only mutex: a node starts, resumes or takes over a failover only
 *    through holding it, and every agent computes the same candidate, so one campaigns.
 * 4. Operator ops come before automatic failover; finishing a failover in flight comes before
 *    starting one; a returning old primary rejoins before anything else it might do.
 * 5. A primary never takes itself back at its old epoch: one that finds the key vacant, or holds
 *    it while its Dolt takes no writes, recovers in place through a failover to itself at a new
 *    epoch, so proxies hold writes until its Dolt is ready (and its recovery keeps its own
 *    commits the remote lacks).
 *
 * This file dispatches by role (leader-key holder or not) and holds the per-role rules; the
 * rules for starting, continuing and taking over a failover are in failover-rules.ts, and the
 * judgement of operator ops in ops.ts.
 */

import type { Topology } from '../../proto';
import { chooseCandidate, describeCandidate, describeExclusions, describeHealth, memberHealthy } from './candidate';
import type { HaConfig } from './config';
import { contextOf, etcdProblem, fenceSelf, opPendingText, planOf, wait, type Context } from './context';
import type { Decision, ResumeFailover, StartFailover } from './decision';
import { automaticFailover, failoverVerdict, followDuringFailover, takeOver, vacancy } from './failover-rules';
import { countOf, formatDuration } from '../../common/wording';
import { describeFlight, failoverInFlight, nextEpoch, type InFlight, type InProgress, type Observation } from './observation';
import { dryRunOp, opArbiter, type OpExecution } from './ops';
import { describeSteps, failoverSteps, remainingSteps, resumeSteps } from './steps';

export function decide(obs: Observation, config: HaConfig, now: number): Decision {
  const ctx = contextOf(obs, config, now);
  if (obs.leader === ctx.self) return decideAsLeader(ctx);
  if (obs.self.writable) {
    const holder = obs.leader === null ? 'the leader key is vacant' : `${obs.leader} holds the leader key`;
    return fenceSelf(false, `this node's Dolt is writable but ${holder}: only the leader-lease holder may take writes`);
  }
  return decideAsFollower(ctx);
}

// ---------------------------------------------------------------------------------------------
// This agent holds the leader key.

function decideAsLeader(ctx: Context): Decision {
  const { obs, config, self } = ctx;
  if (ctx.selfFailing) {
    const error = obs.self.health.lastError ? `; last error: ${obs.self.health.lastError}` : '';
    return fenceSelf(
      true,
      `this node's Dolt failed ${countOf(obs.self.health.consecutiveFailures, 'consecutive health check')} ` +
        `(threshold ${config.failureThreshold}${error}): fence it and release the leader key`,
    );
  }
  if (obs.leaseLeftMs === null) {
    return fenceSelf(false, 'this node holds the leader key but knows no lease deadline: fence until a renewal succeeds');
  }
  const left = obs.leaseLeftMs;
  if (left <= config.fenceMarginMs) {
    return fenceSelf(
      false,
      left > 0
        ? `the leader lease ends in ${formatDuration(left)} without a renewal (fence margin ${formatDuration(config.fenceMarginMs)}): fence before it lapses`
        : `the leader lease lapsed ${formatDuration(-left)} ago without a renewal: fence`,
    );
  }
  const spare = formatDuration(left - config.fenceMarginMs);
  const topology = obs.topology;
  const etcd = etcdProblem(obs.etcd);
  if (etcd !== null) {
    const serving = topology !== null && topology.state === 'stable' && topology.primary === self && obs.self.writable && failoverInFlight(obs) === null;
    if (serving) {
      return { action: 'renew-lease', reason: `${etcd.text}: keep serving on the lease (${spare} before fencing) and retry the renewal` };
    }
    return wait(etcd.code, `${etcd.text}: this node holds the leader key but changes nothing until etcd answers (${spare} before fencing)`);
  }
  if (topology === null) {
    const epoch = nextEpoch(obs);
    return {
      action: 'acquire-leader',
      mode: 'bootstrap',
      epoch,
      reason: `this node holds the leader key but no topology exists yet: finish bootstrapping epoch ${epoch}`,
    };
  }

  const op = decideOp(ctx);
  if (op.decision !== null) return op.decision;
  const flight = failoverInFlight(obs);
  if (flight !== null) {
    if (flight.record !== null && flight.executor === self) return resumeOwn(ctx, flight, flight.record);
    return takeOver(ctx, flight, true, op.blocking);
  }
  if (topology.primary === self) {
    if (obs.self.writable) {
      const failures = obs.self.health.consecutiveFailures;
      const note = failures > 0 ? `; ${countOf(failures, 'failed health check')} (fences at ${config.failureThreshold})` : '';
      return { action: 'renew-lease', reason: `primary at epoch ${topology.epoch}; lease valid for ${spare} before fencing${note}` };
    }
    if (!obs.self.health.healthy) {
      return wait(
        'self-unhealthy',
        `this node holds the leader key at epoch ${topology.epoch} but its Dolt is unhealthy (${describeHealth(obs.self.health)}): ` +
          `not unfencing; it releases the key at ${config.failureThreshold} failed checks`,
      );
    }
    return recoverInPlace(ctx, `this node holds the leader lease and is primary at epoch ${topology.epoch} but its Dolt does not take writes`);
  }
  // Holding the key without being primary: this agent took it to start a failover.
  return automaticFailover(ctx, topology, true, op.blocking);
}

/** This node runs the next step of the failover in flight: as its candidate, or as the outgoing primary of a hand-over. */
function resumeOwn(ctx: Context, flight: InFlight, record: InProgress): ResumeFailover {
  const self = ctx.self;
  if (record.handOver && record.fromPrimary === self && record.candidate !== self) {
    const fenced = record.completedSteps.includes('fence');
    return {
      ...planOf(record, fenced ? [] : ['fence'], true),
      action: 'resume-failover',
      completedSteps: record.completedSteps,
      reason: fenced
        ? `hand-over to ${record.candidate} at epoch ${record.epoch}: fence is done; release the leader key so ${record.candidate} can take over`
        : `hand-over to ${record.candidate} at epoch ${record.epoch}: run fence (drain, push heads, restart read-only), then release the leader key`,
    };
  }
  return {
    ...planOf(record, resumeSteps(remainingSteps(record.completedSteps), ctx.obs.self.writable), false),
    action: 'resume-failover',
    completedSteps: record.completedSteps,
    reason: `resume ${describeFlight(flight)}: this node is its candidate`,
  };
}

// ---------------------------------------------------------------------------------------------
// This agent does not hold the leader key (and its Dolt is not writable).

function decideAsFollower(ctx: Context): Decision {
  const { obs, self } = ctx;
  const etcd = etcdProblem(obs.etcd);
  if (etcd !== null) return wait(etcd.code, `${etcd.text}: no promotion`);
  const topology = obs.topology;
  if (topology === null) return bootstrap(ctx);
  const flight = failoverInFlight(obs);
  const wasPrimary = obs.self.role === 'primary' || obs.self.role === 'fenced';
  if (wasPrimary && topology.primary !== self && flight?.record?.candidate !== self) return rejoin(ctx, topology);

  const op = decideOp(ctx);
  if (op.decision !== null) return op.decision;
  if (flight !== null) return followDuringFailover(ctx, flight, op.blocking);

  const primary = topology.primary ?? '';
  if (primary === self) {
    if (obs.leader !== null) {
      return wait(
        'leader-elsewhere',
        `${obs.leader} holds the leader key although the topology names this node primary at epoch ${topology.epoch}: a failover from this node is starting`,
      );
    }
    if (op.blocking !== null) return wait('op-pending', opPendingText(op.blocking));
    return reclaim(ctx, topology);
  }
  if (obs.leader === primary) return follow(ctx, topology, primary);
  if (obs.leader !== null) {
    return wait('leader-elsewhere', `${obs.leader} holds the leader key and is taking over from primary ${primary}`);
  }
  return automaticFailover(ctx, topology, false, op.blocking);
}

/** The topology still names this node primary and nobody holds the key: take it back. */
function reclaim(ctx: Context, topology: Topology): Decision {
  const { obs, self } = ctx;
  if (!ctx.selfHealthy) {
    return wait(
      'self-unhealthy',
      `the topology names this node primary at epoch ${topology.epoch} but its Dolt is unhealthy (${describeHealth(obs.self.health)}): ` +
        'not reclaiming the leader key; replicas will fail over',
    );
  }
  // Within the grace the replicas wait for this node. After it, this node steps aside if (and
  // only if) a replica would fail over now, so one snapshot never has two campaigners; when
  // none would (paused, anti-flap, nobody eligible) it still reclaims rather than leave the
  // cluster without a primary.
  if (vacancy(obs, ctx.now) >= ctx.config.reclaimGraceMs) {
    const verdict = failoverVerdict(ctx, topology);
    if ('chosen' in verdict) {
      return wait(
        'grace-expired',
        `the leader key stayed vacant past the reclaim grace (${formatDuration(ctx.config.reclaimGraceMs)}) and ` +
          `${verdict.chosen.name} is the chosen candidate: leave the failover to it`,
      );
    }
  }
  const unpushed = obs.members[self]?.commitsNotOnRemote ?? 0;
  const note = unpushed > 0 ? `; it holds ${countOf(unpushed, 'commit')} the remote lacks, which recovery keeps` : '';
  return recoverInPlace(ctx, `the leader key is vacant and the topology still names this node primary at epoch ${topology.epoch}: reclaim it${note}`);
}

/**
 * The primary takes itself back through a failover to itself at a new epoch: the fence makes
 * every proxy hold writes and drop its connections, so nothing is sent to this node while its
 * Dolt restarts and recovers, and it takes writes again only at the new epoch (safety 1 and 5).
 * Reclaiming at the old epoch would leave proxies routing to a node that is not ready.
 */
function recoverInPlace(ctx: Context, why: string): StartFailover {
  const epoch = nextEpoch(ctx.obs);
  return {
    action: 'start-failover',
    kind: 'failover',
    epoch,
    candidate: ctx.self,
    fromPrimary: ctx.self,
    handOver: false,
    opId: null,
    steps: [...failoverSteps],
    releaseLeaderAfter: false,
    takeoverFrom: null,
    reason: `${why}: recover in place at epoch ${epoch} (${describeSteps(failoverSteps)})`,
  };
}

function follow(ctx: Context, topology: Topology, primary: string): Decision {
  const { obs, config } = ctx;
  if (!ctx.selfHealthy) {
    return wait('self-unhealthy', `replica of ${primary} at epoch ${topology.epoch}, but this node's Dolt is unhealthy (${describeHealth(obs.self.health)})`);
  }
  const notes: string[] = [];
  if (obs.self.epoch < topology.epoch) notes.push(`this node had acted on epoch ${obs.self.epoch}`);
  const primaryRecord = obs.members[primary];
  if (primaryRecord !== undefined && !memberHealthy(primaryRecord, config)) {
    notes.push(`${primary} reports ${describeHealth(primaryRecord.health)}; its agent fences it at ${config.failureThreshold}`);
  }
  return {
    action: 'follow',
    primary,
    epoch: topology.epoch,
    reason: `following primary ${primary} at epoch ${topology.epoch}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`,
  };
}

function rejoin(ctx: Context, topology: Topology): Decision {
  const { obs, self } = ctx;
  const prefix = `doltgate/orphaned/${obs.self.epoch}/`;
  const unpushed = obs.members[self]?.commitsNotOnRemote ?? 0;
  const names = topology.primary ?? `no primary yet (${topology.state} in progress)`;
  const saving = unpushed > 0 ? `, saving ${countOf(unpushed, 'commit')} the remote lacks under ${prefix}` : '';
  return {
    action: 'rejoin-as-replica',
    primary: topology.primary,
    epoch: topology.epoch,
    orphanEpoch: obs.self.epoch,
    reason: `this node was primary at epoch ${obs.self.epoch}; topology epoch ${topology.epoch} names ${names}: rejoin as a replica${saving}`,
  };
}

/**
 * No topology yet. The configured initial primary bootstraps; without one, the top-ranked live
 * member does (the same ranking as failover, so all agents agree). Allowed while paused: there
 * is nothing to fail over yet.
 */
function bootstrap(ctx: Context): Decision {
  const { obs, config, self } = ctx;
  if (obs.leader !== null) return wait('awaiting-bootstrap', `${obs.leader} holds the leader key and is bootstrapping the cluster`);
  let chosenText: string;
  if (config.initialPrimary !== null) {
    if (config.initialPrimary !== self) {
      return wait('awaiting-bootstrap', `no topology yet: waiting for the initial primary ${config.initialPrimary} to bootstrap`);
    }
    chosenText = 'the configured initial primary';
  } else {
    const choice = chooseCandidate(obs.members, null, config, { outgoing: null });
    const chosen = choice.chosen;
    if (chosen === null) {
      return wait('no-eligible-candidate', `no topology yet and no member can bootstrap: ${describeExclusions(choice.excluded, 'no live member')}`);
    }
    if (chosen.name !== self) {
      return wait('awaiting-bootstrap', `no topology yet: ${chosen.name} is the chosen initial primary (${describeCandidate(chosen)})`);
    }
    chosenText = `the chosen initial primary (${describeCandidate(chosen)})`;
  }
  if (!ctx.selfHealthy) {
    return wait('self-unhealthy', `no topology yet; this node is ${chosenText} but its Dolt is unhealthy (${describeHealth(obs.self.health)})`);
  }
  const epoch = nextEpoch(obs);
  return { action: 'acquire-leader', mode: 'bootstrap', epoch, reason: `no topology yet: this node is ${chosenText}; bootstrap epoch ${epoch}` };
}

// ---------------------------------------------------------------------------------------------
// Operator ops.

interface OpOutcome {
  /** What this agent does about the op, or null when the op is not its business. */
  decision: Decision | null;
  /** An executable op that another agent runs: automatic failover must not compete with it. */
  blocking: OpExecution | null;
}

function decideOp(ctx: Context): OpOutcome {
  const { obs, config, now, self } = ctx;
  const op = obs.pendingOp;
  if (op === null) return { decision: null, blocking: null };
  const run = dryRunOp(obs, op, config, now);
  if (run.outcome === 'refuse') {
    return { decision: opArbiter(obs, op) === self ? { action: 'refuse-op', op, reason: run.reason } : null, blocking: null };
  }
  if (run.executor !== self) return { decision: null, blocking: run };
  // The member records said yes; this agent's fresher check of its own Dolt may say no.
  if (!run.plan.releaseLeaderAfter && !ctx.selfHealthy && !op.force) {
    return {
      decision: {
        action: 'refuse-op',
        op,
        reason: `${op.kind} ${op.id} refused: target ${self} fails its own health check (${describeHealth(obs.self.health)}); use --force to promote it anyway`,
      },
      blocking: null,
    };
  }
  // Resuming a stalled failover as its candidate: local steps again if this Dolt takes no writes.
  const steps = run.plan.candidate === self && !run.plan.releaseLeaderAfter ? resumeSteps(run.plan.steps, obs.self.writable) : run.plan.steps;
  return { decision: { ...run.plan, steps, action: 'execute-op', op, reason: run.reason }, blocking: null };
}
