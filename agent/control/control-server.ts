/**
 * The agent's gRPC control server (`doltgate.v1.Control`). Any agent answers any request: the
 * cluster's state is in etcd, not in the agent, so this server only reads a snapshot, judges
 * (op-request.ts, which defers to the pure `dryRunOp`), and writes through the ClusterStore —
 * `ops/<id>` for switchovers and failovers, `pause` for maintenance mode. It never runs a
 * failover step itself; the agents' HA loops pick the op up from etcd.
 *
 * Contract:
 * - Changing calls (Switchover and Failover unless dry_run, Pause, Resume) need metadata
 *   `authorization: Bearer <token>` when a token is configured; UNAUTHENTICATED otherwise.
 *   Reads (GetStatus, ListHistory, WatchOperation, dry runs) are open to whoever can connect,
 *   which TLS with client certificates (`requireClientCert`) restricts.
 * - Failures carry a gRPC status and a `doltgate-code` (control-error.ts): INVALID_ARGUMENT for
 *   an unknown node, FAILED_PRECONDITION with the reason for a refusal, UNAVAILABLE when this
 *   agent cannot reach etcd (the client should try another agent).
 * - `stop()` ends open WatchOperation streams and resolves once the port is closed.
 */

import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/logger';
import {
  loadControlService,
  makeOpId,
  type ClusterStatus,
  type FailoverRequest,
  type GetStatusRequest,
  type FindCommitReply,
  type FindCommitRequest,
  type ListHistoryReply,
  type ListHistoryRequest,
  type ListAuditReply,
  type ListAuditRequest,
  type OperationEvent,
  type OperationReply,
  type PauseReply,
  type PauseRequest,
  type ResumeRequest,
  type SwitchoverRequest,
  type WatchOperationRequest,
} from '../../proto/control-types';
import type { HaConfig } from '../ha';
import { CompareFailedError, type ClusterStore } from '../store/cluster-store';
import { asControlError, ControlError } from './control-error';
import { auditMessage, clusterStatus, historyMessage, pauseState } from './control-messages';
import { callerIdentity, ControlAudit } from './control-audit';
import type { AuditCall } from '../../proto';
import { notAnOutcomeToken, parseOutcomeToken } from '../../proto/outcome';
import { judgeOpRequest, type OpRequest } from './op-request';
import { watchOperation } from './operation-watch';

export interface ControlServerTls {
  /** PEM text, or the path of a PEM file. */
  cert: string;
  key: string;
  /** CA that client certificates must chain to (mTLS). */
  ca?: string;
  /** Refuse clients without a certificate signed by `ca`. */
  requireClientCert?: boolean;
}

export interface ControlServerOptions {
  host: string;
  /** 0 picks a free port; the returned `port` says which. */
  port: number;
  store: ClusterStore;
  agentName: string;
  haConfig: HaConfig;
  /** Searches this agent's own Dolt for an outcome token's commit (FindCommit); absent: not offered. */
  findCommit?: (token: string) => Promise<{ found: false } | { found: true; database: string; hash: string; liveBranches: string[] }>;
  /** What this agent's HA loop last decided, for GetStatus. */
  localStatus: () => { lastDecision: { action: string; reason: string; waitCode: string | null } | null };
  tls?: ControlServerTls;
  token?: string;
  /**
   * Start even with neither `token` nor client certificates (`tls.requireClientCert`): every
   * changing call is then open to anyone who can connect. Refused without it.
   */
  insecureNoAuth?: boolean;
  /** Audit records kept in etcd (default 1000). */
  auditKeep?: number;
  logger: Logger;
  /** How often WatchOperation re-reads the op (default 250 ms). */
  watchPollMs?: number;
  /** Wall clock in ms (tests inject one). */
  now?: () => number;
}

export interface ControlServer {
  port: number;
  stop(): Promise<void>;
}

export const defaultHistoryLimit = 10;
export const defaultAuditLimit = 20;
export const maxHistoryLimit = 1000;
/** How long a watch rides out etcd being unreachable before telling the client. */
const watchUnavailableAfterMs = 10_000;
/** After the HA loop's own op timeout: time for an agent to write the expiry refusal. */
const unclaimedGraceMs = 5_000;
const stopGraceMs = 2_000;

/** PEM text as is; anything else is a file path to read. */
function pem(value: string): Buffer {
  return value.includes('-----BEGIN') ? Buffer.from(value) : readFileSync(value);
}

export function serverCredentials(tls: ControlServerTls | undefined): grpc.ServerCredentials {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  if (tls.requireClientCert && tls.ca === undefined) throw new Error('control server tls.requireClientCert needs tls.ca to check client certificates against');
  return grpc.ServerCredentials.createSsl(tls.ca === undefined ? null : pem(tls.ca), [{ cert_chain: pem(tls.cert), private_key: pem(tls.key) }], tls.requireClientCert ?? false);
}

/** Constant-time check of `authorization: Bearer <token>`; throws UNAUTHENTICATED. */
function authorize(metadata: grpc.Metadata, token: string | undefined, what: string): void {
  if (token === undefined || token === '') return;
  const header = metadata.get('authorization')[0];
  const presented = typeof header === 'string' && header.startsWith('Bearer ') ? Buffer.from(header.slice('Bearer '.length)) : Buffer.alloc(0);
  const expected = Buffer.from(token);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new ControlError('unauthenticated', `${what} needs the agents' token (metadata authorization: Bearer <token>; doltgate --token): ${presented.length === 0 ? 'none was given' : 'the one given is wrong'}`);
  }
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  const service = loadControlService();
  const log = opts.logger.child('control');
  const now = opts.now ?? Date.now;
  const server = new grpc.Server();
  let stopping = false;

  function unary<Req, Res>(name: string, handle: Unary<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      handle(call).then(
        (reply) => callback(null, reply),
        (error: unknown) => {
          const failure = asControlError(error);
          const fields = { call: name, peer: call.getPeer(), code: failure.code, error: failure.message };
          if (failure.code === 'internal') log.error('control call failed', fields);
          else log.info('control call answered with an error', fields);
          callback(failure.toServiceError());
        },
      );
    };
  }

  const audit = new ControlAudit(opts.store, opts.agentName, opts.auditKeep ?? 1000, log, now);
  const hasToken = opts.token !== undefined && opts.token !== '';

  /**
   * A changing call: authenticated first, then carried out, and recorded in the audit whatever
   * came of it (act says what to record of a success).
   */
  async function changing<Res>(
    call: grpc.ServerUnaryCall<unknown, Res>,
    what: AuditCall,
    requestedBy: string,
    act: () => Promise<{ reply: Res; detail: string; opId: string | null }>,
  ): Promise<Res> {
    const base = { call: what, peer: call.getPeer(), requestedBy };
    try {
      authorize(call.metadata, opts.token, what);
    } catch (error) {
      await audit.record({ ...base, identity: (error as Error).message.replace(/^.*: /, 'rejected: '), outcome: 'unauthenticated', detail: '', opId: null });
      throw error;
    }
    const identity = callerIdentity(call, hasToken);
    try {
      const done = await act();
      await audit.record({ ...base, identity, outcome: 'accepted', detail: done.detail, opId: done.opId });
      return done.reply;
    } catch (error) {
      const failure = asControlError(error);
      const refused = failure.code === 'refused' || failure.code === 'op-in-progress' || failure.code === 'unknown-node' || failure.code === 'bad-request';
      await audit.record({ ...base, identity, outcome: refused ? 'refused' : 'failed', detail: failure.message, opId: null });
      throw error;
    }
  }

  async function requestOp(call: grpc.ServerUnaryCall<unknown, OperationReply>, request: OpRequest): Promise<OperationReply> {
    if (request.dryRun) return judgeAndWrite(call, request);
    return changing(call, request.kind, request.requestedBy, async () => {
      const reply = await judgeAndWrite(call, request);
      return { reply, opId: reply.opId, detail: `${request.kind}${request.force ? ' --force' : ''} to ${reply.candidate || request.target || 'the best replica'}: ${reply.reason}` };
    });
  }

  async function judgeAndWrite(call: grpc.ServerUnaryCall<unknown, OperationReply>, request: OpRequest): Promise<OperationReply> {
    const context = { cluster: opts.store.cluster, agentName: opts.agentName, config: opts.haConfig, now: now(), newOpId: (kind: OpRequest['kind']) => makeOpId(kind, now()) };
    let judgement = judgeOpRequest(await opts.store.snapshot(), request, context);
    if (judgement.outcome === 'write') {
      try {
        await opts.store.putOperation(judgement.op, null);
      } catch (error) {
        if (!(error instanceof CompareFailedError)) throw error;
        // The id was written between our read and our write: a retry of the same request
        // racing itself. Judge again; the second judgement finds the op and returns it.
        judgement = judgeOpRequest(await opts.store.snapshot(), request, context);
        if (judgement.outcome === 'write') throw new ControlError('internal', `op ${judgement.op.id} could not be written: ${error.message}`);
      }
    }
    log.info(request.dryRun ? 'op dry run' : judgement.outcome === 'existing' ? 'op request repeated' : 'op requested', {
      kind: request.kind, target: request.target, force: request.force, opId: judgement.reply.opId, requestedBy: request.requestedBy, peer: call.getPeer(), reason: judgement.reply.reason,
    });
    return judgement.reply;
  }

  const handlers: grpc.UntypedServiceImplementation = {
    GetStatus: unary<GetStatusRequest, ClusterStatus>('GetStatus', async () => {
      const snapshot = await opts.store.snapshot();
      const { lastDecision } = opts.localStatus();
      // Best effort: the cluster's status does not fail for want of the proxies' records.
      const proxies = await opts.store.listProxies().catch(() => []);
      return clusterStatus(snapshot, {
        proxies,
        cluster: opts.store.cluster,
        agentName: opts.agentName,
        config: opts.haConfig,
        lastDecision: lastDecision === null ? null : { action: lastDecision.action, reason: lastDecision.reason, waitCode: lastDecision.waitCode ?? '' },
      });
    }),

    Switchover: unary<SwitchoverRequest, OperationReply>('Switchover', (call) => {
      const r = call.request;
      return requestOp(call, {
        kind: 'switchover', target: r.target === '' ? null : r.target, force: false, dryRun: r.dryRun,
        drainTimeoutMs: r.drainTimeoutMs ?? null, requestedBy: r.requestedBy, opId: r.opId ?? null,
      });
    }),

    Failover: unary<FailoverRequest, OperationReply>('Failover', (call) => {
      const r = call.request;
      return requestOp(call, {
        kind: 'failover', target: r.target === undefined || r.target === '' ? null : r.target, force: r.force, dryRun: r.dryRun,
        drainTimeoutMs: null, requestedBy: r.requestedBy, opId: r.opId ?? null,
      });
    }),

    Pause: unary<PauseRequest, PauseReply>('Pause', (call) =>
      changing(call, 'pause', call.request.requestedBy, async () => {
        const by = `${call.request.requestedBy || 'unknown'} via ${opts.agentName}`;
        const paused = { by, at: new Date(now()).toISOString(), reason: call.request.reason || 'no reason given' };
        await opts.store.setPaused(paused);
        log.info('cluster paused', { by, reason: paused.reason, peer: call.getPeer() });
        return { reply: { pause: pauseState(paused), answeredBy: opts.agentName }, detail: paused.reason, opId: null };
      }),
    ),

    Resume: unary<ResumeRequest, PauseReply>('Resume', (call) =>
      changing(call, 'resume', call.request.requestedBy, async () => {
        await opts.store.setPaused(null);
        log.info('cluster resumed', { by: call.request.requestedBy, peer: call.getPeer() });
        return { reply: { pause: pauseState(null), answeredBy: opts.agentName }, detail: '', opId: null };
      }),
    ),

    ListAudit: unary<ListAuditRequest, ListAuditReply>('ListAudit', async (call) => {
      const limit = call.request.limit === 0 ? defaultAuditLimit : call.request.limit;
      if (limit > maxHistoryLimit) throw new ControlError('bad-request', `audit limit ${limit} is above the maximum of ${maxHistoryLimit}`);
      const records = await opts.store.listAudit(limit);
      return { records: records.map(auditMessage) };
    }),

    FindCommit: unary<FindCommitRequest, FindCommitReply>('FindCommit', async (call) => {
      const token = call.request.token;
      if (parseOutcomeToken(token) === null) throw new ControlError('bad-request', notAnOutcomeToken(token));
      if (opts.findCommit === undefined) throw new ControlError('dolt-unavailable', `agent ${opts.agentName} cannot search its Dolt`);
      const finding = await opts.findCommit(token).catch((error: Error) => {
        throw new ControlError('dolt-unavailable', `agent ${opts.agentName} could not search its Dolt: ${error.message}`);
      });
      return finding.found
        ? { node: opts.agentName, found: true, database: finding.database, hash: finding.hash, liveBranches: finding.liveBranches }
        : { node: opts.agentName, found: false, database: '', hash: '', liveBranches: [] };
    }),

    ListHistory: unary<ListHistoryRequest, ListHistoryReply>('ListHistory', async (call) => {
      const limit = call.request.limit === 0 ? defaultHistoryLimit : call.request.limit;
      if (limit > maxHistoryLimit) throw new ControlError('bad-request', `history limit ${limit} is above the maximum of ${maxHistoryLimit}`);
      const records = await opts.store.listHistory(limit);
      return { records: records.map(historyMessage) };
    }),

    WatchOperation: (call: grpc.ServerWritableStream<WatchOperationRequest, OperationEvent>) => {
      const opId = call.request.opId;
      const fail = (error: unknown): void => {
        const failure = asControlError(error);
        log.info('op watch ended with an error', { opId, code: failure.code, error: failure.message });
        call.emit('error', failure.toServiceError());
      };
      if (opId === '') {
        fail(new ControlError('bad-request', 'WatchOperation needs an op id'));
        return;
      }
      watchOperation({
        store: opts.store,
        opId,
        pollMs: opts.watchPollMs ?? 250,
        unclaimedAfterMs: opts.haConfig.opTimeoutMs + unclaimedGraceMs,
        unavailableAfterMs: watchUnavailableAfterMs,
        emit: (event) => call.write(event),
        cancelled: () => call.cancelled || stopping,
        now,
      }).then(() => {
        if (call.cancelled) return;
        // Stopping mid-watch is not the op's end: UNAVAILABLE sends the CLI to another agent.
        if (stopping) fail(new ControlError('agent-stopping', `agent ${opts.agentName} is stopping; watch op ${opId} through another agent`));
        else call.end();
      }, fail);
    },
  };

  if (!hasToken && opts.tls?.requireClientCert !== true) {
    if (opts.insecureNoAuth !== true) throw new Error('the control API needs a token or client certificates (tls.requireClientCert); insecureNoAuth runs it open');
    log.warn('control API open: no token and no client certificates (grpc_insecure_no_auth); anyone who can connect may switch over, fail over or pause');
  }
  server.addService(service.definition, handlers);
  if (opts.token !== undefined && opts.token !== '' && opts.tls === undefined) {
    log.warn('control API token configured without TLS: the token crosses the network in clear text');
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host}:${opts.port}`, serverCredentials(opts.tls), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  log.info('control API listening', { host: opts.host, port, tls: opts.tls !== undefined, mtls: opts.tls?.requireClientCert ?? false, token: opts.token !== undefined && opts.token !== '' });

  return {
    port,
    async stop(): Promise<void> {
      stopping = true;
      await new Promise<void>((resolve) => {
        // Watches notice `stopping` within one poll; force whatever is still open after the grace.
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, stopGraceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
