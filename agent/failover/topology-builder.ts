/**
 * Builds the topology values a failover publishes from the member records: every live member is a
 * node, with its advertised SQL address; the primary is the candidate (or nobody while fencing).
 * Pure.
 */

import type { ClusterState, MemberRecord, NodeRole, Topology, TopologyNode } from '../../proto';

export function topologyNodes(members: Readonly<Record<string, MemberRecord>>, previous: Topology | null, primary: string | null, outgoing: string | null): Record<string, TopologyNode> {
  const nodes: Record<string, TopologyNode> = {};
  // Keep nodes the previous topology knew even if their agent is gone right now: proxies then
  // still know where they are, and mark them down themselves when they fail.
  for (const [name, node] of Object.entries(previous?.nodes ?? {})) {
    nodes[name] = { ...node, role: name === outgoing ? 'down' : node.role === 'primary' ? 'replica' : node.role };
  }
  for (const [name, member] of Object.entries(members)) {
    let role: NodeRole = member.health.healthy ? 'replica' : 'down';
    if (name === outgoing) role = 'down';
    nodes[name] = { sql: member.sql, role, weight: previous?.nodes[name]?.weight };
    if (nodes[name].weight === undefined) delete nodes[name].weight;
  }
  if (primary !== null && nodes[primary]) nodes[primary] = { ...nodes[primary], role: 'primary' };
  return nodes;
}

export function buildTopology(args: {
  epoch: number;
  state: ClusterState;
  primary: string | null;
  outgoing: string | null;
  members: Readonly<Record<string, MemberRecord>>;
  previous: Topology | null;
  reason: string;
  now: number;
  /** The cluster's replication mode: cluster mode says so, for the proxies. Default remote. */
  replication?: 'remote' | 'cluster';
}): Topology {
  return {
    ...(args.replication === 'cluster' ? { replication: 'cluster' as const } : {}),
    epoch: args.epoch,
    state: args.state,
    primary: args.state === 'stable' ? args.primary : null,
    nodes: topologyNodes(args.members, args.previous, args.state === 'stable' ? args.primary : null, args.outgoing),
    reason: args.reason,
    at: new Date(args.now).toISOString(),
  };
}
