/**
 * The routing truth: the value of `/doltgate/<cluster>/topology`. Proxies send writes only to
 * `primary` at the newest epoch they have seen and never to a node of an older epoch; only an agent
 * running a failover or switchover writes it, by compare-and-swap on the key's mod revision.
 *
 * Invariants: `epoch` only rises; `state === 'stable'` implies a non-null `primary` that is a key
 * of `nodes`; while `state` is 'failover' or 'switchover', `primary` is null and proxies hold writes.
 */

export type ClusterState = 'stable' | 'failover' | 'switchover';
export type NodeRole = 'primary' | 'replica' | 'fenced' | 'down';

export interface SqlAddress {
  host: string;
  port: number;
}

export interface TopologyNode {
  sql: SqlAddress;
  role: NodeRole;
  /** Relative share of replica reads; 0 takes the node out of read rotation. Default 1. */
  weight?: number;
}

export interface Topology {
  epoch: number;
  state: ClusterState;
  primary: string | null;
  nodes: Record<string, TopologyNode>;
  /** A sentence a person can read: why the topology is what it is. */
  reason: string;
  /** ISO-8601 time of the write. */
  at: string;
  /**
   * How the nodes replicate; absent means remote (topologies written before this field). In
   * `cluster` mode Dolt replicates users and grants too, so proxies forward account statements.
   */
  replication?: 'cluster';
}

export class TopologyFormatError extends Error {
  readonly code = 'TOPOLOGY_FORMAT';
  constructor(detail: string) {
    super(`topology value is malformed: ${detail}`);
  }
}

const states: readonly ClusterState[] = ['stable', 'failover', 'switchover'];
const roles: readonly NodeRole[] = ['primary', 'replica', 'fenced', 'down'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseSqlAddress(value: unknown, where: string): SqlAddress {
  if (!isRecord(value)) throw new TopologyFormatError(`${where}.sql must be an object`);
  const { host, port } = value;
  if (typeof host !== 'string' || host.length === 0) throw new TopologyFormatError(`${where}.sql.host must be a non-empty string`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TopologyFormatError(`${where}.sql.port must be an integer 1-65535`);
  }
  return { host, port };
}

/** Validates a decoded topology value; throws TopologyFormatError naming the first bad field. */
export function parseTopology(value: unknown): Topology {
  if (!isRecord(value)) throw new TopologyFormatError('not an object');
  const { epoch, state, primary, nodes, reason, at, replication } = value;
  if (replication !== undefined && replication !== 'cluster') throw new TopologyFormatError('replication must be cluster or absent (remote)');
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) throw new TopologyFormatError('epoch must be a non-negative integer');
  if (typeof state !== 'string' || !states.includes(state as ClusterState)) throw new TopologyFormatError(`state must be one of ${states.join(', ')}`);
  if (primary !== null && typeof primary !== 'string') throw new TopologyFormatError('primary must be a string or null');
  if (!isRecord(nodes)) throw new TopologyFormatError('nodes must be an object');
  const parsedNodes: Record<string, TopologyNode> = {};
  for (const [name, node] of Object.entries(nodes)) {
    const where = `nodes.${name}`;
    if (!isRecord(node)) throw new TopologyFormatError(`${where} must be an object`);
    if (typeof node.role !== 'string' || !roles.includes(node.role as NodeRole)) throw new TopologyFormatError(`${where}.role must be one of ${roles.join(', ')}`);
    const parsed: TopologyNode = { sql: parseSqlAddress(node.sql, where), role: node.role as NodeRole };
    if (node.weight !== undefined) {
      if (typeof node.weight !== 'number' || node.weight < 0) throw new TopologyFormatError(`${where}.weight must be a non-negative number`);
      parsed.weight = node.weight;
    }
    parsedNodes[name] = parsed;
  }
  if (state === 'stable') {
    if (primary === null) throw new TopologyFormatError('a stable topology needs a primary');
    if (!(primary in parsedNodes)) throw new TopologyFormatError(`primary ${primary} is not among the nodes`);
  }
  return {
    epoch,
    state: state as ClusterState,
    primary: primary as string | null,
    nodes: parsedNodes,
    reason: typeof reason === 'string' ? reason : '',
    at: typeof at === 'string' ? at : '',
    ...(replication === 'cluster' ? { replication: 'cluster' as const } : {}),
  };
}

export function decodeTopology(raw: string | Buffer): Topology {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString());
  } catch (error) {
    throw new TopologyFormatError(`not JSON (${(error as Error).message})`);
  }
  return parseTopology(value);
}

export function encodeTopology(topology: Topology): string {
  return JSON.stringify(topology);
}

/** Names of the nodes that serve reads at this topology: replicas with a non-zero weight. */
export function replicaNames(topology: Topology): string[] {
  return Object.entries(topology.nodes)
    .filter(([name, node]) => name !== topology.primary && node.role === 'replica' && (node.weight ?? 1) > 0)
    .map(([name]) => name)
    .sort();
}
