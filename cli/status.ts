/**
 * `doltgate status`: the cluster as etcd shows it — epoch, state, primary, leader-key holder,
 * pause, every node's role and health, the recent operator ops — plus the answering agent's last
 * HA decision and its reason. Read-only; needs no token.
 *
 * `--json` prints one object (every key always present; absent values are null):
 * {
 *   "cluster": string, "epoch": number,
 *   "state": "stable" | "failover" | "switchover" | "none",
 *   "primary": string | null, "leader": string | null,
 *   "paused": boolean, "pause": { "by": string, "at": string, "reason": string } | null,
 *   "lastDecision": { "agent": string, "action": string, "waitCode": string | null, "reason": string } | null,
 *                   (waitCode: for action "wait", a stable code such as "paused" or "anti-flap")
 *   "answeredBy": string, "topologyReason": string, "replication": "remote" | "cluster",
 *   "nodes": [{ "name": string, "sql": "host:port", "role": "primary" | "replica" | "fenced" | "down",
 *               "live": boolean, "healthy": boolean, "consecutiveFailures": number,
 *               "lastError": string | null, "commitsNotOnRemote": number,
 *               "commitsBehindRemote": number, "priority": number, "nofailover": boolean,
 *               "grpc": "host:port" | null, "epoch": number,
 *               "databases": [{ "name": string, "commitsNotOnRemote": number, "hasRemote": boolean }] }],
 *   "operations": [OperationJson]   (newest first; see operation-progress.ts),
 *   "proxies": [{ "id": string, "epoch": number, "state": string, "draining": number, "at": string }]
 *               (live proxies, from their presence records)
 * }
 */

import type { ClusterStatus, GetStatusRequest, NodeStatus } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, parseOptions, type ConnectionArgs, type Env } from './cli-args';
import { ExitCode, processIo, runCommand, type CliIo } from './cli-io';
import { withConnection } from './control-client';
import { formatTable, formatTime, none, nullable, orNone } from './format-table';
import { operationJson, type OperationJson } from './operation-progress';

export interface StatusArgs {
  connection: ConnectionArgs;
}

const specs = connectionOptions;
const usage = 'doltgate status [--etcd URL | --config agent.yaml | --agent HOST:PORT] [--cluster NAME] [--json]';
const description = 'Show the cluster: epoch, state, primary, leader, pause, nodes and their health, the proxies, recent operations.';

/** The parsed arguments, or 'help' for --help. */
export function parseStatusArgs(argv: readonly string[], env: Env): StatusArgs | 'help' {
  const values = parseOptions(argv, specs);
  if (values.help === true) return 'help';
  return { connection: connectionArgs(values, env) };
}

export interface NodeJson {
  name: string;
  sql: string;
  role: string;
  live: boolean;
  healthy: boolean;
  consecutiveFailures: number;
  lastError: string | null;
  commitsNotOnRemote: number;
  commitsBehindRemote: number;
  priority: number;
  nofailover: boolean;
  grpc: string | null;
  epoch: number;
  databases: Array<{ name: string; commitsNotOnRemote: number; hasRemote: boolean }>;
}

export interface StatusJson {
  cluster: string;
  epoch: number;
  state: string;
  primary: string | null;
  leader: string | null;
  paused: boolean;
  pause: { by: string; at: string; reason: string } | null;
  lastDecision: { agent: string; action: string; waitCode: string | null; reason: string } | null;
  answeredBy: string;
  topologyReason: string;
  /** remote or cluster (Dolt's cluster replication). */
  replication: string;
  nodes: NodeJson[];
  operations: OperationJson[];
  proxies: Array<{ id: string; epoch: number; state: string; draining: number; at: string }>;
}

function nodeJson(node: NodeStatus): NodeJson {
  return {
    name: node.name,
    sql: node.sqlAddress,
    role: node.role,
    live: node.live,
    healthy: node.healthy,
    consecutiveFailures: node.consecutiveFailures,
    lastError: nullable(node.lastError),
    commitsNotOnRemote: node.commitsNotOnRemote,
    commitsBehindRemote: node.commitsBehindRemote,
    priority: node.priority,
    nofailover: node.nofailover,
    grpc: nullable(node.grpcAddress),
    epoch: node.epoch,
    databases: (node.databases ?? []).map((db) => ({ name: db.name, commitsNotOnRemote: Number(db.commitsNotOnRemote), hasRemote: db.hasRemote })),
  };
}

export function statusJson(status: ClusterStatus): StatusJson {
  const pause = status.pause?.paused ? { by: status.pause.by, at: status.pause.at, reason: status.pause.reason } : null;
  return {
    cluster: status.cluster,
    epoch: status.epoch,
    state: status.state,
    primary: nullable(status.primary),
    leader: nullable(status.leader),
    paused: pause !== null,
    pause,
    lastDecision: status.lastDecision === null ? null : { agent: status.answeredBy, action: status.lastDecision.action, waitCode: status.lastDecision.waitCode === '' ? null : status.lastDecision.waitCode, reason: status.lastDecision.reason },
    answeredBy: status.answeredBy,
    topologyReason: status.topologyReason,
    replication: replicationOf(status),
    nodes: status.nodes.map(nodeJson),
    operations: status.operations.map(operationJson),
    proxies: (status.proxies ?? []).map((proxy) => ({ id: proxy.id, epoch: proxy.epoch, state: proxy.state, draining: proxy.draining, at: proxy.at })),
  };
}

function healthText(node: NodeStatus): string {
  if (!node.live) return 'no agent';
  return node.healthy ? 'healthy' : 'unhealthy';
}

function replicationOf(status: ClusterStatus): string {
  return status.replication === 'cluster' ? 'cluster' : 'remote';
}

/**
 * One line per database: which nodes hold it and what the remote lacks. A database some live node
 * lacks, or that has no remote, is what a failover could lose, so it is spelled out. With Dolt's
 * cluster replication there is no remote: the primary's count is of standbys behind it.
 */
export function databaseLines(nodes: readonly NodeStatus[], replication = 'remote'): string[] {
  const live = nodes.filter((node) => node.live);
  const names = [...new Set(live.flatMap((node) => (node.databases ?? []).map((db) => db.name)))].sort();
  if (names.length === 0) return [];
  const lines = ['', 'databases:'];
  for (const name of names) {
    const holders = live.filter((node) => (node.databases ?? []).some((db) => db.name === name));
    const missing = live.filter((node) => !holders.includes(node)).map((node) => node.name);
    const noRemote = holders.filter((node) => node.databases.some((db) => db.name === name && !db.hasRemote)).map((node) => node.name);
    const notOnRemote = holders.reduce((sum, node) => sum + Number(node.databases.find((db) => db.name === name)?.commitsNotOnRemote ?? 0), 0);
    const notes: string[] = [];
    if (replication === 'cluster') {
      if (notOnRemote > 0) notes.push(`${notOnRemote} standby(s) behind the primary`);
    } else if (noRemote.length > 0) notes.push(`NO REMOTE on ${noRemote.join(', ')}: not replicated, lost if that node is (set dolt.remote_url_template)`);
    else if (notOnRemote > 0) notes.push(`${notOnRemote} commit(s) not on the remote yet`);
    if (missing.length > 0) notes.push(`not yet on ${missing.join(', ')}`);
    lines.push(`  ${name}: on ${holders.map((node) => node.name).join(', ')}${notes.length > 0 ? ` — ${notes.join('; ')}` : ''}`);
  }
  return lines;
}

/** The human form: a header block, the node table, last errors, then recent ops. */
export function formatStatus(status: ClusterStatus): string {
  const lines: string[] = [];
  lines.push(
    `cluster ${status.cluster}  epoch ${status.epoch}  state ${status.state}  primary ${orNone(status.primary)}  leader ${orNone(status.leader)}${replicationOf(status) === 'cluster' ? "  replication cluster (Dolt's)" : ''}`,
  );
  if (status.pause?.paused) lines.push(`PAUSED by ${status.pause.by} at ${formatTime(status.pause.at)}: ${status.pause.reason} (no automatic failover)`);
  else lines.push('paused: no (automatic failover on)');
  if (status.topologyReason !== '') lines.push(`topology: ${status.topologyReason}`);
  lines.push(
    status.lastDecision === null
      ? `decision of ${status.answeredBy}: none yet`
      : `decision of ${status.answeredBy}: ${status.lastDecision.action}${status.lastDecision.waitCode === '' ? '' : ` (${status.lastDecision.waitCode})`}: ${status.lastDecision.reason}`,
  );
  lines.push('');
  if (status.nodes.length === 0) {
    lines.push('no nodes: no topology and no live agents');
  } else {
    const rows = status.nodes.map((node) => [
      node.name,
      node.role,
      orNone(node.sqlAddress),
      healthText(node),
      node.live ? String(node.consecutiveFailures) : none,
      node.live ? String(node.commitsNotOnRemote) : none,
      node.live ? String(node.commitsBehindRemote) : none,
      node.live ? String(node.priority) : none,
      node.nofailover ? 'nofailover' : none,
      node.live ? String(node.epoch) : none,
      orNone(node.grpcAddress),
    ]);
    // Cluster replication: the primary counts the standbys behind it; nobody is behind a remote.
    const gapHeader = replicationOf(status) === 'cluster' ? 'STANDBYS-BEHIND' : 'NOT-ON-REMOTE';
    lines.push(formatTable(['NODE', 'ROLE', 'SQL', 'HEALTH', 'FAILS', gapHeader, 'BEHIND', 'PRIORITY', 'FLAGS', 'EPOCH', 'GRPC'], rows));
    const errors = status.nodes.filter((node) => node.lastError !== undefined && node.lastError !== '');
    for (const node of errors) lines.push(`${node.name}: last error: ${node.lastError}`);
    lines.push(...databaseLines(status.nodes, replicationOf(status)));
  }
  const proxies = status.proxies ?? [];
  lines.push('');
  if (proxies.length === 0) lines.push('proxies: none registered');
  else {
    const rows = proxies.map((proxy) => [proxy.id, String(proxy.epoch), proxy.state, String(proxy.draining), formatTime(proxy.at)]);
    lines.push(formatTable(['PROXY', 'EPOCH', 'STATE', 'DRAINING', 'SINCE'], rows));
  }
  if (status.operations.length > 0) {
    lines.push('');
    const rows = status.operations.map((op) => [
      op.id,
      op.kind,
      orNone(op.target),
      op.state,
      orNone(op.executor),
      orNone(op.epoch),
      `${formatTime(op.requestedAt)} by ${op.requestedBy}`,
    ]);
    lines.push(formatTable(['OPERATION', 'KIND', 'TARGET', 'STATE', 'EXECUTOR', 'EPOCH', 'REQUESTED'], rows));
  }
  return lines.join('\n');
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  let json = false;
  return runCommand('status', io, () => json, async () => {
    json = argv.includes('--json');
    const args = parseStatusArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    const status = await withConnection(args.connection, (connection) => connection.call<GetStatusRequest, ClusterStatus>('getStatus', {}));
    io.out(args.connection.json ? JSON.stringify(statusJson(status), null, 2) : formatStatus(status));
    return ExitCode.ok;
  });
}

export const command = { name: 'status', summary: 'show the cluster: topology, nodes, health, epoch, pause, recent ops', run: runCli };
