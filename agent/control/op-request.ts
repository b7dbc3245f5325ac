/**
 * Judging a Switchover or Failover request, as a pure function of one store snapshot: the answer
 * is a dry-run reply, an `ops/<id>` record to write (state pending), the op a retry already
 * wrote, or a ControlError saying why not. The HA rules themselves are `dryRunOp` — the very
 * function the executing agent's `decide` applies — so the API never accepts what an agent
 * would then refuse for a reason visible in the same snapshot.
 *
 * What this file adds to dryRunOp, and why:
 * - An unknown target (not in the topology, no member record) is INVALID_ARGUMENT, not a
 *   refusal: it is a typo, and the CLI gives it its own exit code. A known node whose agent is
 *   gone stays a refusal (dryRunOp: "has no live agent").
 * - One operator op at a time: a request while another op is pending (and not yet expired) or
 *   has just started running (younger than the op timeout, executor alive) is refused. The agents execute only the oldest pending op,
 *   so a second one would sit waiting, then fire against a cluster its requester never saw.
 * - Idempotency: a client-chosen op id that already names the same op returns that op, so a
 *   CLI retrying through another agent after a lost answer never writes the op twice.
 */

import { isValidNodeName, type OperationKind, type OperationRecord } from '../../proto';
import { opIdPattern, type OperationReply } from '../../proto/control-types';
import { dryRunOp, formatDuration, type HaConfig, type PendingOp } from '../ha';
import { buildObservation } from '../observation-builder';
import type { ClusterSnapshot } from '../store/cluster-store';
import { ControlError } from './control-error';

export interface OpRequest {
  kind: OperationKind;
  target: string | null;
  force: boolean;
  dryRun: boolean;
  /** Null: `defaultDrainTimeoutMs`. Failovers do not drain; theirs is recorded as 0. */
  drainTimeoutMs: number | null;
  requestedBy: string;
  /** Client-chosen idempotency key, or null to have one made. */
  opId: string | null;
}

export interface JudgeContext {
  cluster: string;
  agentName: string;
  config: HaConfig;
  /** Wall-clock ms; the same clock `requestedAt` is written with. */
  now: number;
  newOpId: (kind: OperationKind) => string;
}

export type Judgement =
  | { outcome: 'dry-run'; reply: OperationReply }
  | { outcome: 'write'; op: OperationRecord; reply: OperationReply }
  | { outcome: 'existing'; reply: OperationReply };

export const defaultDrainTimeoutMs = 10_000;
export const maxDrainTimeoutMs = 600_000;

/** Names of the nodes a request may target: the topology's and those with a live agent. */
export function knownNodes(snapshot: ClusterSnapshot): string[] {
  return [...new Set([...Object.keys(snapshot.topology?.value.nodes ?? {}), ...Object.keys(snapshot.members)])].sort();
}

/**
 * Why an op already in etcd blocks a new request, or null. Pending ops block until they expire
 * (opTimeoutMs); running ones while younger than that and their executor is alive.
 */
export function blockingOperation(snapshot: ClusterSnapshot, config: HaConfig, now: number): string | null {
  for (const { value: op } of snapshot.ops) {
    if (op.state === 'pending' && now - Date.parse(op.requestedAt) <= config.opTimeoutMs) {
      return `${describeOp(op)} is pending (requested by ${op.requestedBy} at ${op.requestedAt}); wait for it to run or expire`;
    }
    // A running op blocks only while it is young and its executor lives. Past that, an op left
    // 'running' (its executor crashed, or its record was never closed) must not lock operators
    // out forever; dryRunOp still refuses anything that would cut into a failover in flight.
    const age = now - Date.parse(op.requestedAt);
    if (op.state === 'running' && age <= config.opTimeoutMs && (op.executor === null || op.executor in snapshot.members)) {
      return `${describeOp(op)} is running${op.executor === null ? '' : ` on ${op.executor}`}; wait for it to finish`;
    }
  }
  return null;
}

function describeOp(op: OperationRecord): string {
  return `${op.kind} ${op.id}${op.target === null ? '' : ` to ${op.target}`}`;
}

function replyOf(op: OperationRecord, agentName: string): OperationReply {
  return { opId: op.id, dryRun: false, executor: op.executor ?? '', candidate: op.target ?? '', epoch: op.epoch ?? 0, outline: [], reason: op.reason, answeredBy: agentName };
}

export function judgeOpRequest(snapshot: ClusterSnapshot, request: OpRequest, context: JudgeContext): Judgement {
  const { kind, target } = request;
  if (kind === 'switchover' && target === null) throw new ControlError('bad-request', 'a switchover needs a target node');
  if (request.opId !== null && !opIdPattern.test(request.opId)) {
    throw new ControlError('bad-request', `op id ${JSON.stringify(request.opId)} is invalid: use 1-80 characters of A-Z, a-z, 0-9, '.', '-', '_'`);
  }
  const drainTimeoutMs = kind === 'failover' ? 0 : (request.drainTimeoutMs ?? defaultDrainTimeoutMs);
  if (drainTimeoutMs > maxDrainTimeoutMs) {
    throw new ControlError('bad-request', `drain timeout ${formatDuration(drainTimeoutMs)} is above the limit of ${formatDuration(maxDrainTimeoutMs)}`);
  }

  if (request.opId !== null && !request.dryRun) {
    const existing = snapshot.ops.find((op) => op.value.id === request.opId)?.value;
    if (existing !== undefined) {
      if (existing.kind === kind && existing.target === target) return { outcome: 'existing', reply: replyOf(existing, context.agentName) };
      throw new ControlError('bad-request', `op id ${request.opId} already names a different op (${describeOp(existing)})`);
    }
  }

  if (target !== null) {
    const nodes = knownNodes(snapshot);
    if (!isValidNodeName(target) || !nodes.includes(target)) {
      const listed = nodes.length === 0 ? 'has no nodes yet' : `has nodes ${nodes.join(', ')}`;
      throw new ControlError('unknown-node', `unknown node ${JSON.stringify(target)}: cluster ${context.cluster} ${listed}`);
    }
  }

  const label = request.dryRun ? '(dry run)' : (request.opId ?? context.newOpId(kind));
  const blocking = blockingOperation(snapshot, context.config, context.now);
  if (blocking !== null) throw new ControlError('op-in-progress', `${kind} ${label} refused: ${blocking}`);

  const pending: PendingOp = { id: label, kind, target, force: request.force, requestedAt: context.now };
  const self = snapshot.members[context.agentName];
  // The answering agent need not be a Dolt node's agent at all: dryRunOp reads self only for
  // the epoch floor, and 0 adds nothing to what the members and topology already show.
  const observation = buildObservation(snapshot, {
    self: {
      name: context.agentName,
      health: { healthy: true, consecutiveFailures: 0, lastError: null },
      role: self?.role ?? 'replica',
      epoch: 0,
      writable: false,
    },
    leaseLeftMs: null,
    leaderVacantSince: null,
    lastKnown: null,
  });
  const run = dryRunOp(observation, pending, context.config, context.now);
  if (run.outcome === 'refuse') throw new ControlError('refused', run.reason);

  const reply: OperationReply = {
    opId: request.dryRun ? '' : label,
    dryRun: request.dryRun,
    executor: run.executor,
    candidate: run.plan.candidate,
    epoch: run.plan.epoch,
    outline: run.outline.map(({ node, step }) => ({ node, step })),
    reason: run.reason,
    answeredBy: context.agentName,
  };
  if (request.dryRun) return { outcome: 'dry-run', reply };
  const op: OperationRecord = {
    id: label,
    kind,
    target,
    force: request.force,
    drainTimeoutMs,
    requestedAt: new Date(context.now).toISOString(),
    requestedBy: request.requestedBy === '' ? `unknown via ${context.agentName}` : `${request.requestedBy} via ${context.agentName}`,
    state: 'pending',
    executor: null,
    epoch: null,
    steps: [],
    reason: run.reason,
  };
  return { outcome: 'write', op, reply };
}
