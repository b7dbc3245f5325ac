/**
 * The control API (`doltgate.v1.Control`, proto/doltgate/v1/control.proto) in TypeScript: one
 * hand-written interface per message, and the loader that both the agents' server and the CLI
 * use, so both sides read the .proto with the same options.
 *
 * Loader options are part of the contract: field names are camelCase (keepCase false), 64-bit
 * integers are JS numbers (epochs, counts and milliseconds stay far below 2^53), and unset
 * fields decode to their defaults — except `optional` scalars, which decode as absent
 * (`undefined`), and message fields, which decode as null. The interfaces say exactly that:
 * `?:` for `optional`, `| null` for messages. Senders may leave either out.
 *
 * The .proto is read at run time from the repository tree (no code generation): this file runs
 * from dist/proto/ after the build, and the .proto stays at proto/doltgate/v1/ in the repository
 * root, so the loader climbs out of dist/ when it finds itself there.
 */

import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export interface GetStatusRequest {}

export interface Decision {
  action: string;
  reason: string;
  /** For action 'wait': the stable WaitCode (agent/ha/decision.ts); '' otherwise. */
  waitCode: string;
}

export interface PauseState {
  paused: boolean;
  by: string;
  at: string;
  reason: string;
}

export interface NodeStatus {
  name: string;
  sqlAddress: string;
  role: string;
  live: boolean;
  healthy: boolean;
  consecutiveFailures: number;
  lastError?: string;
  commitsNotOnRemote: number;
  commitsBehindRemote: number;
  priority: number;
  nofailover: boolean;
  grpcAddress?: string;
  epoch: number;
  databases: DatabaseStatus[];
}

export interface DatabaseStatus {
  name: string;
  commitsNotOnRemote: number;
  hasRemote: boolean;
}

export interface ClusterStatus {
  cluster: string;
  epoch: number;
  /** stable | failover | switchover | none (not bootstrapped). */
  state: string;
  primary?: string;
  leader?: string;
  pause: PauseState | null;
  lastDecision: Decision | null;
  answeredBy: string;
  nodes: NodeStatus[];
  operations: Operation[];
  topologyReason: string;
  /** remote | cluster; empty from agents older than this field (remote). */
  replication?: string;
  /** Live proxies' presence records; absent from an agent older than this field. */
  proxies?: ProxyStatus[];
}

export interface ProxyStatus {
  id: string;
  epoch: number;
  state: string;
  draining: number;
  at: string;
}

export interface Step {
  name: string;
  /** running | done | failed | skipped */
  state: string;
  startedAt: string;
  endedAt?: string;
  durationMs?: number;
  executor?: string;
  detail: string;
}

export interface Operation {
  id: string;
  kind: string;
  target?: string;
  force: boolean;
  drainTimeoutMs: number;
  requestedAt: string;
  requestedBy: string;
  /** pending | running | succeeded | failed | refused */
  state: string;
  executor?: string;
  epoch?: number;
  steps: Step[];
  reason: string;
}

export interface SwitchoverRequest {
  target: string;
  dryRun: boolean;
  drainTimeoutMs?: number;
  requestedBy: string;
  opId?: string;
}

export interface FailoverRequest {
  target?: string;
  force: boolean;
  dryRun: boolean;
  requestedBy: string;
  opId?: string;
}

export interface PlannedStep {
  node: string;
  step: string;
}

export interface OperationReply {
  opId: string;
  dryRun: boolean;
  executor: string;
  candidate: string;
  epoch: number;
  outline: PlannedStep[];
  reason: string;
  answeredBy: string;
}

export interface PauseRequest {
  reason: string;
  requestedBy: string;
}

export interface ResumeRequest {
  requestedBy: string;
}

export interface PauseReply {
  pause: PauseState | null;
  answeredBy: string;
}

export interface FindCommitRequest {
  token: string;
}

export interface FindCommitReply {
  node: string;
  found: boolean;
  database: string;
  hash: string;
  liveBranches: string[];
}

export interface ListHistoryRequest {
  limit: number;
}

export interface Takeover {
  candidate: string;
  epoch: number;
}

export interface HistoryRecordMessage {
  epoch: number;
  kind: string;
  reason: string;
  fromPrimary?: string;
  candidate: string;
  handOver: boolean;
  opId?: string;
  takeoverFrom: Takeover | null;
  startedAt: string;
  endedAt?: string;
  outcome: string;
  steps: Step[];
  orphanedBranches: string[];
}

export interface ListHistoryReply {
  records: HistoryRecordMessage[];
}

export interface ListAuditRequest {
  limit: number;
}

export interface AuditRecordMessage {
  at: string;
  agent: string;
  call: string;
  identity: string;
  peer: string;
  requestedBy: string;
  outcome: string;
  detail: string;
  opId?: string;
}

export interface ListAuditReply {
  records: AuditRecordMessage[];
}

export interface WatchOperationRequest {
  opId: string;
}

export interface OperationEvent {
  operation: Operation | null;
  step: Step | null;
  final: boolean;
}

/** Values of the `doltgate-code` trailing metadata key on errors (see control.proto). */
export type ControlErrorCode =
  | 'unknown-node'
  | 'bad-request'
  | 'refused'
  | 'op-in-progress'
  | 'etcd-unavailable'
  | 'agent-stopping'
  | 'unauthenticated'
  | 'op-not-found'
  | 'op-unclaimed'
  | 'dolt-unavailable'
  | 'internal';

export const controlErrorCodeKey = 'doltgate-code';

/** Op ids: safe in an etcd key and a shell argument. */
export const opIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$/;

/**
 * `switchover-lz3k9q1-4f2a`: kind, time (base-36 ms) and 16 random bits. The CLI makes the id
 * itself so that a retry through another agent names the same op (see SwitchoverRequest.op_id).
 */
export function makeOpId(kind: 'switchover' | 'failover', now: number, random: () => number = Math.random): string {
  const suffix = Math.floor(random() * 0x10000).toString(16).padStart(4, '0');
  return `${kind}-${now.toString(36)}-${suffix}`;
}

type Callback<T> = (error: grpc.ServiceError | null, response?: T) => void;

/** The client side as the loaded package builds it (camelCase method aliases). */
export interface ControlClient extends grpc.Client {
  getStatus(request: GetStatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<ClusterStatus>): grpc.ClientUnaryCall;
  switchover(request: SwitchoverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<OperationReply>): grpc.ClientUnaryCall;
  failover(request: FailoverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<OperationReply>): grpc.ClientUnaryCall;
  pause(request: PauseRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<PauseReply>): grpc.ClientUnaryCall;
  resume(request: ResumeRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<PauseReply>): grpc.ClientUnaryCall;
  listHistory(request: ListHistoryRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<ListHistoryReply>): grpc.ClientUnaryCall;
  listAudit(request: ListAuditRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<ListAuditReply>): grpc.ClientUnaryCall;
  findCommit(request: FindCommitRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<FindCommitReply>): grpc.ClientUnaryCall;
  watchOperation(request: WatchOperationRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<OperationEvent>;
}

export type ControlClientConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => ControlClient;

export interface ControlService {
  /** For grpc.Server#addService. */
  definition: grpc.ServiceDefinition;
  Client: ControlClientConstructor;
}

/** proto/doltgate/v1/control.proto in the repository root, whether running from dist/ or not. */
export function controlProtoPath(): string {
  const here = __dirname; // <root>/dist/proto after the build, <root>/proto in the source tree
  const parent = path.dirname(here);
  const root = path.basename(parent) === 'dist' ? path.dirname(parent) : parent;
  return path.join(root, 'proto', 'doltgate', 'v1', 'control.proto');
}

export const controlLoaderOptions: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: false,
};

let loaded: ControlService | null = null;

/** Loads the service once per process; throws with the path when the .proto is missing. */
export function loadControlService(): ControlService {
  if (loaded !== null) return loaded;
  const file = controlProtoPath();
  const definition = protoLoader.loadSync(file, controlLoaderOptions);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { doltgate: { v1: { Control: ControlClientConstructor & { service: grpc.ServiceDefinition } } } };
  const Control = pkg.doltgate.v1.Control;
  loaded = { definition: Control.service, Client: Control };
  return loaded;
}
