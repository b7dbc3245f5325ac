/**
 * A topology is believed only as far as the rest of etcd vouches for it (topology-vetting.ts).
 */

import { expect } from 'chai';
import type { Topology } from '../../proto';
import { vetTopology, type TopologyEvidence } from '../../proxy/cluster/topology-vetting';

const at = (port: number) => ({ host: '127.0.0.1', port });
const topology = (epoch: number, primary: string | null, nodes: Record<string, number>): Topology => ({
  epoch,
  state: primary === null ? 'failover' : 'stable',
  primary,
  nodes: Object.fromEntries(Object.entries(nodes).map(([n, port]) => [n, { sql: at(port), role: n === primary ? 'primary' : 'replica' }])),
  reason: 'test',
  at: '2026-12-03T00:00:00Z',
});
const evidence = (members: Record<string, [number, number]>, latestHistoryEpoch: number | null): TopologyEvidence => ({
  members: Object.fromEntries(Object.entries(members).map(([n, [port, epoch]]) => [n, { sql: at(port), epoch }])),
  latestHistoryEpoch,
});

describe('vetTopology', () => {
  const rows: Array<{ name: string; candidate: Topology; applied: number | null; evidence: TopologyEvidence; expected: string }> = [
    { name: 'the next epoch, primary and replicas all members: accepted whole', candidate: topology(4, 'n2', { n1: 3301, n2: 3302 }), applied: 3, evidence: evidence({ n1: [3301, 3], n2: [3302, 3] }, 4), expected: 'accept' },
    { name: 'a jump past the history the agents wrote beside it (one forged write): refused', candidate: topology(2 ** 53 - 1, 'n2', { n1: 3301, n2: 3302 }), applied: 3, evidence: evidence({ n1: [3301, 3], n2: [3302, 3] }, 3), expected: 'refuse: epoch 9007199254740991 is above 4' },
    { name: 'several failovers missed while away: history vouches for the epoch', candidate: topology(9, 'n1', { n1: 3301 }), applied: 3, evidence: evidence({ n1: [3301, 8] }, 9), expected: 'accept' },
    { name: 'the first topology a proxy sees, at the bootstrap epoch', candidate: topology(1, 'n1', { n1: 3301, n2: 3302 }), applied: null, evidence: evidence({ n1: [3301, 0], n2: [3302, 0] }, 1), expected: 'accept' },
    { name: 'a node moved to another address than its agent advertises: refused', candidate: topology(4, 'n1', { n1: 3301, n2: 6666 }), applied: 3, evidence: evidence({ n1: [3301, 3], n2: [3302, 3] }, 4), expected: 'refuse: node n2 is named at 127.0.0.1:6666, but its agent advertises 127.0.0.1:3302' },
    { name: 'a primary no agent vouches for: refused', candidate: topology(4, 'fake', { n1: 3301, fake: 6666 }), applied: 3, evidence: evidence({ n1: [3301, 3] }, 4), expected: 'refuse: primary fake has no member record' },
    { name: 'a replica without a member record: accepted, that node left out', candidate: topology(4, 'n1', { n1: 3301, n2: 3302, gone: 3303 }), applied: 3, evidence: evidence({ n1: [3301, 3], n2: [3302, 3] }, 4), expected: 'accept without gone' },
    { name: 'a failover state (no primary) with members: accepted', candidate: topology(5, null, { n1: 3301 }), applied: 4, evidence: evidence({ n1: [3301, 4] }, 5), expected: 'accept' },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const v = vetTopology(row.candidate, row.applied, row.evidence);
      const got = v.accept ? `accept${v.unvouched.length > 0 ? ` without ${v.unvouched.join(',')}` : ''}` : `refuse: ${v.reason}`;
      expect(got.startsWith(row.expected), got).to.equal(true);
      if (v.accept) expect(Object.keys(v.topology.nodes).filter((n) => v.unvouched.includes(n))).to.deep.equal([]);
    });
  }
});
