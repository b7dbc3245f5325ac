/**
 * Store records to control API messages, as pure functions: a snapshot becomes the
 * `ClusterStatus` that `doltgate status` prints, operation and history records become their
 * messages. The API shows what etcd says (topology, members, pause, ops, history) and nothing
 * this agent merely believes, except `lastDecision`, which is labelled as the answering agent's.
 *
 * Null in a store record becomes an absent `optional` field (see proto/control-types.ts).
 */

import type { AuditRecord, HistoryRecord, HistoryStep, MemberRecord, OperationRecord, OperationStep, ProxyPresence, SqlAddress } from '../../proto';
import type { AuditRecordMessage, ClusterStatus, DatabaseStatus, Decision, HistoryRecordMessage, NodeStatus, Operation, PauseState, Step } from '../../proto/control-types';
import { memberHealthy, type HaConfig } from '../ha';
import type { ClusterSnapshot } from '../store/cluster-store';

/** How many ops `GetStatus` lists: enough to see the current one and what came just before. */
export const statusOperationLimit = 10;

export function addressText(address: SqlAddress): string {
  return `${address.host}:${address.port}`;
}

function present<T>(value: T | null | undefined): T | undefined {
  return value === null ? undefined : value;
}

export function pauseState(paused: ClusterSnapshot['paused']): PauseState {
  return paused === null ? { paused: false, by: '', at: '', reason: '' } : { paused: true, by: paused.by, at: paused.at, reason: paused.reason };
}

function databaseStatuses(member: MemberRecord | undefined): DatabaseStatus[] {
  if (member === undefined) return [];
  const withoutRemote = new Set(member.databasesWithoutRemote ?? []);
  const counts = member.notOnRemoteByDatabase ?? {};
  return Object.keys(member.heads ?? {}).sort().map((name) => ({ name, commitsNotOnRemote: counts[name] ?? 0, hasRemote: !withoutRemote.has(name) }));
}

/** Every node the topology lists or that has a live member record, in name order. */
export function nodeStatuses(snapshot: ClusterSnapshot, config: HaConfig): NodeStatus[] {
  const topologyNodes = snapshot.topology?.value.nodes ?? {};
  const names = [...new Set([...Object.keys(topologyNodes), ...Object.keys(snapshot.members)])].sort();
  return names.map((name) => {
    const node = topologyNodes[name];
    const member: MemberRecord | undefined = snapshot.members[name];
    const sql = node?.sql ?? member?.sql;
    return {
      name,
      sqlAddress: sql ? addressText(sql) : '',
      role: node?.role ?? member?.role ?? 'down',
      live: member !== undefined,
      // The same health rule the HA decision applies, so status never calls "healthy" a node
      // that failover would exclude as unhealthy.
      healthy: member !== undefined && memberHealthy(member, config),
      consecutiveFailures: member?.health.consecutiveFailures ?? 0,
      lastError: present(member?.health.lastError),
      commitsNotOnRemote: member?.commitsNotOnRemote ?? 0,
      commitsBehindRemote: member?.commitsBehindRemote ?? 0,
      priority: member?.priority ?? 0,
      nofailover: member?.nofailover ?? false,
      grpcAddress: present(member?.grpc),
      epoch: member?.epoch ?? 0,
      databases: databaseStatuses(member),
    };
  });
}

function durationBetween(startedAt: string, endedAt: string | null): number | undefined {
  if (endedAt === null) return undefined;
  const ms = Date.parse(endedAt) - Date.parse(startedAt);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

export function operationStepMessage(step: OperationStep, executor: string | null): Step {
  return {
    name: step.name,
    state: step.state,
    startedAt: step.startedAt,
    endedAt: present(step.endedAt),
    durationMs: durationBetween(step.startedAt, step.endedAt),
    executor: present(step.executor ?? executor),
    detail: step.detail,
  };
}

export function operationMessage(op: OperationRecord): Operation {
  return {
    id: op.id,
    kind: op.kind,
    target: present(op.target),
    force: op.force,
    drainTimeoutMs: op.drainTimeoutMs,
    requestedAt: op.requestedAt,
    requestedBy: op.requestedBy,
    state: op.state,
    executor: present(op.executor),
    epoch: present(op.epoch),
    steps: op.steps.map((step) => operationStepMessage(step, op.executor)),
    reason: op.reason,
  };
}

function historyStepMessage(step: HistoryStep): Step {
  return {
    name: step.name,
    state: step.state,
    startedAt: step.startedAt,
    endedAt: present(step.endedAt),
    durationMs: present(step.durationMs) ?? durationBetween(step.startedAt, step.endedAt),
    executor: step.executor,
    detail: step.detail,
  };
}

export function historyMessage(record: HistoryRecord): HistoryRecordMessage {
  return {
    epoch: record.epoch,
    kind: record.kind,
    reason: record.reason,
    fromPrimary: present(record.fromPrimary),
    candidate: record.candidate,
    handOver: record.handOver ?? false,
    opId: present(record.opId),
    takeoverFrom: record.takeoverFrom ?? null,
    startedAt: record.startedAt,
    endedAt: present(record.endedAt),
    outcome: record.outcome,
    steps: record.steps.map(historyStepMessage),
    orphanedBranches: record.orphanedBranches ?? [],
  };
}

export function auditMessage(record: AuditRecord): AuditRecordMessage {
  return {
    at: record.at,
    agent: record.agent,
    call: record.call,
    identity: record.identity,
    peer: record.peer,
    requestedBy: record.requestedBy,
    outcome: record.outcome,
    detail: record.detail,
    opId: present(record.opId),
  };
}

/** Newest first by request time; the id breaks ties so the order is the same on every agent. */
export function newestOperations(ops: ClusterSnapshot['ops'], limit: number): OperationRecord[] {
  return ops
    .map((op) => op.value)
    .sort((a, b) => Date.parse(b.requestedAt) - Date.parse(a.requestedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .slice(0, limit);
}

export function clusterStatus(snapshot: ClusterSnapshot, context: { cluster: string; agentName: string; config: HaConfig; lastDecision: Decision | null; proxies?: readonly ProxyPresence[] }): ClusterStatus {
  const topology = snapshot.topology?.value ?? null;
  return {
    cluster: context.cluster,
    epoch: topology?.epoch ?? 0,
    state: topology?.state ?? 'none',
    primary: present(topology?.primary),
    leader: snapshot.leader?.name,
    pause: pauseState(snapshot.paused),
    lastDecision: context.lastDecision,
    answeredBy: context.agentName,
    nodes: nodeStatuses(snapshot, context.config),
    operations: newestOperations(snapshot.ops, statusOperationLimit).map(operationMessage),
    topologyReason: topology?.reason ?? '',
    replication: topology?.replication ?? 'remote',
    proxies: (context.proxies ?? []).map((proxy) => ({ id: proxy.id, epoch: proxy.epoch, state: proxy.state, draining: proxy.draining, at: proxy.at })),
  };
}
