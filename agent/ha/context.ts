/**
 * The shared vocabulary of the decision rules (decide.ts, failover-rules.ts): the derived facts
 * every rule reads (`Context`) and the small builders every rule answers with, so one fact is
 * computed once and one kind of answer is always worded the same way.
 */

import type { HaConfig } from './config';
import type { FenceSelf, ReleaseLeader, ResumeFailover, Wait, WaitCode } from './decision';
import type { EtcdStatus, InProgress, Observation } from './observation';
import type { OpExecution } from './ops';

export interface Context {
  obs: Observation;
  config: HaConfig;
  now: number;
  self: string;
  /** Healthy by its own latest check and below the failure threshold. */
  selfHealthy: boolean;
  /** At or over the failure threshold: a leader in this state gives up. */
  selfFailing: boolean;
}

export function contextOf(obs: Observation, config: HaConfig, now: number): Context {
  const health = obs.self.health;
  return {
    obs,
    config,
    now,
    self: obs.self.name,
    selfHealthy: health.healthy && health.consecutiveFailures < config.failureThreshold,
    selfFailing: health.consecutiveFailures >= config.failureThreshold,
  };
}

/** The plan fields of a recorded failover, with this agent's share of the steps. */
export function planOf(record: InProgress, steps: ResumeFailover['steps'], releaseLeaderAfter: boolean) {
  return {
    kind: record.kind,
    epoch: record.epoch,
    candidate: record.candidate,
    fromPrimary: record.fromPrimary,
    handOver: record.handOver,
    opId: record.opId,
    steps,
    releaseLeaderAfter,
    takeoverFrom: null,
  };
}

export function fenceSelf(releaseLeader: boolean, reason: string): FenceSelf {
  return { action: 'fence-self', releaseLeader, reason };
}

export function wait(code: WaitCode, reason: string): Wait {
  return { action: 'wait', code, reason };
}

/**
 * A node that holds the leader key but may not use it releases it (so the right node can take
 * it); a node that does not hold it just waits. Same rule, same reason text.
 */
export function holdOrRelease(holding: boolean): (code: WaitCode, reason: string) => Wait | ReleaseLeader {
  return holding
    ? (_code, reason) => ({ action: 'release-leader', reason: `${reason}; release the leader key` })
    : wait;
}

export function etcdProblem(etcd: EtcdStatus): { code: WaitCode; text: string } | null {
  if (!etcd.reachable) return { code: 'etcd-unreachable', text: 'etcd is unreachable' };
  if (!etcd.hasQuorum) return { code: 'no-quorum', text: 'etcd has no quorum' };
  return null;
}

export function opPendingText(run: OpExecution): string {
  return `operator ${run.op.kind} ${run.op.id} is pending and ${run.executor} executes it: no automatic failover meanwhile`;
}
