/**
 * For tests that publish a topology into etcd by hand, without agents: the member records and
 * history record the agents would have written beside it, so that the proxy's vetting
 * (proxy/cluster/topology-vetting.ts) accepts it. Every node gets a healthy member at the address
 * the topology names, at the epoch before; the history record carries the topology's epoch.
 */

import type { Etcd3 } from 'etcd3';
import { clusterKeys, encodeMember, type MemberRecord, type Topology } from '../../proto';

export function vouchingMember(name: string, sql: { host: string; port: number }, epoch: number): MemberRecord {
  const now = new Date().toISOString();
  return {
    name, sql, grpc: null, role: 'replica', epoch,
    health: { healthy: true, consecutiveFailures: 0, lastCheckAt: now, sqlLatencyMs: 1, lastError: null, hostReachable: true },
    heads: {}, remoteHeads: {}, commitsNotOnRemote: 0, commitsBehindRemote: 0, priority: 100, nofailover: false, backup: null, updatedAt: now,
  };
}

/** Writes the members and history record `topology` needs to be believed (not the topology itself). */
export async function vouchFor(client: Etcd3, cluster: string, topology: Topology): Promise<void> {
  const keys = clusterKeys(cluster);
  for (const [name, node] of Object.entries(topology.nodes)) {
    await client.put(keys.member(name)).value(encodeMember(vouchingMember(name, node.sql, Math.max(0, topology.epoch - 1))));
  }
  const at = new Date().toISOString();
  await client.put(keys.history(topology.epoch)).value(JSON.stringify({
    epoch: topology.epoch, kind: 'failover', reason: 'written by a test', fromPrimary: null, candidate: topology.primary ?? '', handOver: false,
    opId: null, takeoverFrom: null, startedAt: at, endedAt: at, outcome: 'succeeded', steps: [], orphanedBranches: [],
  }));
}
