/**
 * The CLI's side of the control API: find the agents (member records in etcd, or `--agent`),
 * call them one after another until one answers, and turn every failure into a CliError with
 * the exit code a script can act on.
 *
 * Why "one after another": any agent answers any request (the state is in etcd), so an agent
 * that is down, partitioned from etcd (UNAVAILABLE) or too slow (DEADLINE_EXCEEDED) is no reason
 * to give up. Retrying a changing call on another agent is safe: Switchover and Failover carry a
 * client-chosen op id (a retry returns the op already written), Pause and Resume set a state.
 * Any other answer — a refusal, an unknown node, a missing token — is the cluster's answer and
 * is final: another agent would say the same.
 *
 * Error mapping (gRPC status / doltgate-code → exit code): unknown-node → 5; FAILED_PRECONDITION
 * → 3; INVALID_ARGUMENT, UNAUTHENTICATED → 2; every agent UNAVAILABLE or timing out, or etcd
 * unreachable during discovery → 4; anything else → 1.
 */

import { etcd3Options, type EtcdAccess } from '../common/etcd-access';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { withTimeout } from '../common/with-timeout';
import { clusterKeys, decodeMember } from '../proto';
import { controlErrorCodeKey, loadControlService, type ControlClient, type OperationEvent, type WatchOperationRequest } from '../proto/control-types';
import type { ConnectionArgs, TlsOptions } from './cli-args';
import { CliError, ExitCode } from './cli-io';

export interface AgentAddress {
  /** The member name, or the address itself for `--agent`. */
  name: string;
  address: string;
}

/** `alice@build-host`: recorded in ops and in the pause key, so etcd says who asked. */
export function requesterName(): string {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry (some containers): the host still says something.
  }
  return `${user}@${os.hostname()}`;
}

function reasonOf(error: unknown): string {
  return plainReason(error instanceof Error ? error.message : String(error));
}

/**
 * A transport error as a person reads it: grpc-js's `14 UNAVAILABLE: No connection established.
 * Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: ` becomes
 * `connection refused (ECONNREFUSED 127.0.0.1:2379)`, wherever it sits in the text (an agent's
 * own etcd error quotes one), and a leading status prefix goes. The rest of the text stays.
 */
export function plainReason(text: string): string {
  return text
    .replace(/(?:\d+ [A-Z_]+: )?(?:No connection established\. Last error: )?(?:Error: )?connect (E[A-Z]+) (\S+?)\.?(?:\s+Resolution note:\s*|\s|$)/g, (_, code: string, address: string) => {
      const what = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ETIMEDOUT' ? 'connection timed out' : 'cannot connect';
      return `${what} (${code} ${address}) `;
    })
    .replace(/^\d+ [A-Z_]+: /, '')
    .replace(/\s*Resolution note:\s*$/, '')
    .trim();
}

/** Member records with a gRPC address, in name order, read from etcd under the cluster's prefix. */
export async function discoverAgents(access: EtcdAccess, cluster: string, timeoutMs: number): Promise<AgentAddress[]> {
  const endpoints = access.endpoints;
  const keys = clusterKeys(cluster);
  let client: Etcd3;
  try {
    client = new Etcd3(etcd3Options(access, { dialTimeout: timeoutMs }));
  } catch (error) {
    throw new CliError(ExitCode.usage, `etcd TLS: ${(error as Error).message}`);
  }
  let values: Record<string, string>;
  try {
    values = await withTimeout(client.getAll().prefix(keys.membersPrefix).strings(), timeoutMs, 'reading the member records');
  } catch (error) {
    throw new CliError(ExitCode.unreachable, `cannot reach etcd at ${endpoints.join(', ')}: ${reasonOf(error)}`);
  } finally {
    client.close();
  }
  const members: Array<{ name: string; grpc: string | null }> = [];
  for (const raw of Object.values(values)) {
    try {
      const record = decodeMember(raw);
      members.push({ name: record.name, grpc: record.grpc ?? null });
    } catch {
      // A malformed record names no agent we could call; the others may.
    }
  }
  members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (members.length === 0) {
    throw new CliError(ExitCode.unreachable, `no agent of cluster ${cluster} is alive: etcd at ${endpoints.join(', ')} has no member records under ${keys.membersPrefix}`);
  }
  const agents = members.filter((m): m is { name: string; grpc: string } => m.grpc !== null && m.grpc !== '').map((m) => ({ name: m.name, address: m.grpc }));
  if (agents.length === 0) {
    throw new CliError(ExitCode.unreachable, `no agent of cluster ${cluster} serves the control API (members ${members.map((m) => m.name).join(', ')} publish no grpc address)`);
  }
  return agents;
}

function channelCredentials(tls: TlsOptions | null): grpc.ChannelCredentials {
  if (tls === null) return grpc.credentials.createInsecure();
  const read = (file: string | null, what: string): Buffer | null => {
    if (file === null) return null;
    try {
      return readFileSync(file);
    } catch (error) {
      throw new CliError(ExitCode.usage, `cannot read the ${what} ${file}: ${reasonOf(error)}`);
    }
  };
  return grpc.credentials.createSsl(read(tls.ca, 'CA certificate (--tls-ca)'), read(tls.key, 'client key (--tls-key)'), read(tls.cert, 'client certificate (--tls-cert)'));
}

/**
 * Retrying elsewhere can help: the agent is down, cut off from etcd, stopping, or too slow for
 * our deadline. A DEADLINE_EXCEEDED the agent itself chose (op-unclaimed) is an answer instead.
 */
function worthAnotherAgent(error: grpc.ServiceError): boolean {
  if (error.code === grpc.status.UNAVAILABLE) return true;
  return error.code === grpc.status.DEADLINE_EXCEEDED && error.metadata?.get(controlErrorCodeKey)[0] === undefined;
}

/** The cluster's final answer to a call, as a CliError with its exit code. */
export function cliErrorOf(error: grpc.ServiceError): CliError {
  const code = error.metadata?.get(controlErrorCodeKey)[0];
  const message = error.details || error.message;
  if (code === 'unknown-node') return new CliError(ExitCode.unknownNode, message);
  switch (error.code) {
    case grpc.status.FAILED_PRECONDITION:
      // The agents' refusals mostly say so already ("switchover X refused: ..."): not twice.
      return new CliError(ExitCode.refused, /\brefused: /.test(message) ? message : `refused: ${message}`);
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.UNAUTHENTICATED:
      return new CliError(ExitCode.usage, message);
    case grpc.status.UNAVAILABLE:
      return new CliError(ExitCode.unreachable, message);
    default:
      return new CliError(ExitCode.failed, message);
  }
}

const watchRetryPauseMs = 500;

/** `b (10.0.0.2:7000)`, or just the address for an agent named by --agent. */
function agentLabel(agent: AgentAddress): string {
  return agent.name === agent.address ? agent.address : `${agent.name} (${agent.address})`;
}

type UnaryMethod = 'getStatus' | 'switchover' | 'failover' | 'pause' | 'resume' | 'listHistory' | 'listAudit' | 'findCommit';

/** Connections to a cluster's agents, tried in order; closes every channel in `close()`. */
export class ControlConnection {
  private readonly clients = new Map<string, ControlClient>();
  private readonly credentials: grpc.ChannelCredentials;
  /** Index of the agent that answered last: later calls start there. */
  private preferred = 0;

  private constructor(readonly agents: readonly AgentAddress[], private readonly args: ConnectionArgs) {
    this.credentials = channelCredentials(args.tls);
  }

  /** Agents named with --agent, or found in etcd. */
  static async open(args: ConnectionArgs): Promise<ControlConnection> {
    const agents = args.agents.length > 0 ? args.agents.map((address) => ({ name: address, address })) : await discoverAgents({ endpoints: args.etcd, ...args.etcdAccess }, args.cluster, args.timeoutMs);
    return new ControlConnection(agents, args);
  }

  private client(agent: AgentAddress): ControlClient {
    let client = this.clients.get(agent.address);
    if (client === undefined) {
      const { Client } = loadControlService();
      client = new Client(agent.address, this.credentials);
      this.clients.set(agent.address, client);
    }
    return client;
  }

  private metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    if (this.args.token !== null) metadata.set('authorization', `Bearer ${this.args.token}`);
    return metadata;
  }

  /** Agents starting from the preferred one, each once. */
  private order(): number[] {
    return this.agents.map((_, i) => (this.preferred + i) % this.agents.length);
  }

  /** One unary call on one agent; rejects with its grpc.ServiceError. */
  private callOn<Req, Res>(agent: AgentAddress, method: UnaryMethod, request: Req): Promise<Res> {
    const client = this.client(agent) as unknown as Record<UnaryMethod, (r: Req, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: Res) => void) => void>;
    return new Promise<Res>((resolve, reject) => {
      client[method].call(client, request, this.metadata(), { deadline: Date.now() + this.args.timeoutMs }, (error, value) => (error ? reject(error) : resolve(value as Res)));
    });
  }

  async call<Req, Res>(method: UnaryMethod, request: Req): Promise<Res> {
    const failures: string[] = [];
    for (const index of this.order()) {
      const agent = this.agents[index];
      try {
        const reply = await this.callOn<Req, Res>(agent, method, request);
        this.preferred = index;
        return reply;
      } catch (error) {
        const serviceError = error as grpc.ServiceError;
        if (!worthAnotherAgent(serviceError)) throw cliErrorOf(serviceError);
        failures.push(`${agentLabel(agent)}: ${plainReason(serviceError.details || serviceError.message)}`);
      }
    }
    throw new CliError(ExitCode.unreachable, `no agent answered: ${failures.join('; ')}`);
  }

  /** The same call on every agent at once: each one's reply, or why it gave none. */
  async callEach<Req, Res>(method: UnaryMethod, request: Req): Promise<Array<{ agent: string; reply: Res } | { agent: string; error: string }>> {
    return Promise.all(
      this.agents.map(async (agent) => {
        try {
          const reply = await this.callOn<Req, Res>(agent, method, request);
          return { agent: agentLabel(agent), reply };
        } catch (error) {
          const serviceError = error as grpc.ServiceError;
          return { agent: agentLabel(agent), error: plainReason(serviceError.details || serviceError.message) };
        }
      }),
    );
  }

  /**
   * Streams an op's events to `onEvent` until the final one; resumes through the next agent when
   * the current one goes away (events repeat then: the receiver drops what it has seen).
   * Resolves with the final event.
   */
  async watch(opId: string, onEvent: (event: OperationEvent) => void): Promise<OperationEvent> {
    const failures: string[] = [];
    // Two rounds: an agent that was restarting during the first may answer in the second.
    for (let round = 0; round < 2; round++) {
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, watchRetryPauseMs));
      for (const index of this.order()) {
        const agent = this.agents[index];
        const outcome = await this.watchOne(agent, { opId }, onEvent);
        if (outcome.final) {
          this.preferred = index;
          return outcome.final;
        }
        if (outcome.error !== undefined && !worthAnotherAgent(outcome.error)) throw cliErrorOf(outcome.error);
        failures.push(`${agentLabel(agent)}: ${outcome.error ? plainReason(outcome.error.details || outcome.error.message) : 'the stream ended before the op did'}`);
      }
    }
    throw new CliError(ExitCode.unreachable, `lost every agent while watching op ${opId} (it may still be running; 'doltgate status' shows it): ${failures.join('; ')}`);
  }

  private watchOne(agent: AgentAddress, request: WatchOperationRequest, onEvent: (event: OperationEvent) => void): Promise<{ final?: OperationEvent; error?: grpc.ServiceError }> {
    return new Promise((resolve) => {
      const stream = this.client(agent).watchOperation(request, this.metadata());
      let final: OperationEvent | undefined;
      stream.on('data', (event: OperationEvent) => {
        onEvent(event);
        if (event.final) final = event;
      });
      stream.on('error', (error: grpc.ServiceError) => resolve(final ? { final } : { error }));
      stream.on('end', () => resolve(final ? { final } : {}));
    });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** Opens a connection, runs `use`, and closes the channels whatever happens. */
export async function withConnection<T>(args: ConnectionArgs, use: (connection: ControlConnection) => Promise<T>): Promise<T> {
  const connection = await ControlConnection.open(args);
  try {
    return await use(connection);
  } finally {
    connection.close();
  }
}
