/**
 * Whether a topology value is one the agents could have written, checked against the rest of
 * etcd before the proxy routes by it (finding 3 of the hostile-input issue: one unauthenticated
 * write pointed a proxy at a fake Dolt, and an epoch of 2^53-1 then pinned it there). Pure; the
 * evidence is read from etcd next to the value (etcd-topology-source.ts).
 *
 * Rules, from what the agents do:
 * 1. The epoch rises by the agents' rule (agent/ha/observation.ts nextEpoch): one above the
 *    highest epoch in sight — the applied topology, any member record, the newest history record
 *    (written in the same transaction as the topology it explains). Anything higher is refused.
 * 2. A stable topology's primary is a live member (its agent holds the leader lease, so its member
 *    record exists) at the address its member record advertises.
 * 3. A node whose member record advertises another address than the topology names is refused
 *    with the whole value: someone rewrote where that node is.
 * 4. A node without a member record (its agent is gone, which the agents allow: topology-builder.ts
 *    keeps them) is kept out of routing: nothing vouches for its address.
 * A refused value leaves the last good topology in place. This narrows what one forged write can
 * do; etcd authentication (etcd.user / TLS) is what keeps the writes out.
 */

import type { SqlAddress, Topology } from '../../proto';

export interface TopologyEvidence {
  /** Live member records by name: what each agent advertises and the epoch it has acted on. */
  members: Readonly<Record<string, { sql: SqlAddress; epoch: number }>>;
  /** Epoch of the newest history record, or null when there is none. */
  latestHistoryEpoch: number | null;
}

export type Vetting = { accept: true; topology: Topology; unvouched: string[] } | { accept: false; reason: string };

const sameAddress = (a: SqlAddress, b: SqlAddress): boolean => a.host === b.host && a.port === b.port;

export function vetTopology(candidate: Topology, appliedEpoch: number | null, evidence: TopologyEvidence): Vetting {
  let highest = Math.max(appliedEpoch ?? 0, evidence.latestHistoryEpoch ?? 0);
  for (const m of Object.values(evidence.members)) highest = Math.max(highest, m.epoch);
  if (candidate.epoch > highest + 1) {
    return { accept: false, reason: `epoch ${candidate.epoch} is above ${highest + 1}, the most the agents publish (one above the highest epoch in the topology, the member records and the history)` };
  }
  for (const [name, node] of Object.entries(candidate.nodes)) {
    const member = evidence.members[name];
    if (member !== undefined && !sameAddress(member.sql, node.sql)) {
      return { accept: false, reason: `node ${name} is named at ${node.sql.host}:${node.sql.port}, but its agent advertises ${member.sql.host}:${member.sql.port}` };
    }
  }
  if (candidate.state === 'stable' && candidate.primary !== null && evidence.members[candidate.primary] === undefined) {
    return { accept: false, reason: `primary ${candidate.primary} has no member record: no live agent vouches for it` };
  }
  const unvouched = Object.keys(candidate.nodes).filter((name) => evidence.members[name] === undefined);
  if (unvouched.length === 0) return { accept: true, topology: candidate, unvouched };
  const nodes = { ...candidate.nodes };
  for (const name of unvouched) delete nodes[name];
  return { accept: true, topology: { ...candidate, nodes }, unvouched };
}
