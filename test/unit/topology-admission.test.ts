/**
 * admitTopology: which topology value may replace the applied one. Rows are named after the
 * verdict; each asserts the kind, whether it applies, and the sentence the proxy logs.
 * Also: the static source (validated, frozen, never changes) and the listener set.
 */

import { expect } from 'chai';
import { admitTopology, sameTopology, StaticTopologySource, type AdmissionKind, type AppliedTopology } from '../../proxy/cluster/topology-source';
import { TopologyListeners } from '../../proxy/cluster/topology-listeners';
import { TopologyFormatError, type Topology } from '../../proto';
import { createLogger } from '../../common/logger';

function topology(epoch: number, state: Topology['state'], primary: string | null, extra: Partial<Topology> = {}): Topology {
  return {
    epoch,
    state,
    primary,
    nodes: {
      n1: { sql: { host: '127.0.0.1', port: 3301 }, role: primary === 'n1' ? 'primary' : 'replica' },
      n2: { sql: { host: '127.0.0.1', port: 3302 }, role: primary === 'n2' ? 'primary' : 'replica' },
    },
    reason: 'test',
    at: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

function applied(t: Topology, modRevision: number): AppliedTopology {
  return { topology: t, modRevision: BigInt(modRevision) };
}

interface Row {
  name: AdmissionKind;
  title: string;
  applied: AppliedTopology | null;
  candidate: Topology;
  modRevision: number;
  apply: boolean;
  advanceRevision: boolean;
  reason: string;
}

const stable5 = topology(5, 'stable', 'n1');
const failover6 = topology(6, 'failover', null);
const stable6 = topology(6, 'stable', 'n2');

const rows: Row[] = [
  {
    name: 'first',
    title: 'the first value is applied',
    applied: null,
    candidate: stable5,
    modRevision: 10,
    apply: true,
    advanceRevision: true,
    reason: 'applied topology epoch 5 (stable, primary n1)',
  },
  {
    name: 'newer-epoch',
    title: 'a newer epoch is applied',
    applied: applied(stable5, 10),
    candidate: failover6,
    modRevision: 11,
    apply: true,
    advanceRevision: true,
    reason: 'applied topology epoch 6 (failover, no primary), replacing epoch 5 (stable, primary n1)',
  },
  {
    name: 'newer-epoch',
    title: 'a newer epoch is applied even at a lower mod revision (etcd restored or replaced)',
    applied: applied(stable5, 10),
    candidate: stable6,
    modRevision: 3,
    apply: true,
    advanceRevision: true,
    reason: 'applied topology epoch 6 (stable, primary n2), replacing epoch 5 (stable, primary n1)',
  },
  {
    name: 'same-epoch-change',
    title: 'failover → stable at the same epoch is applied',
    applied: applied(failover6, 11),
    candidate: stable6,
    modRevision: 12,
    apply: true,
    advanceRevision: true,
    reason: "applied topology epoch 6 (stable, primary n2), replacing the same epoch's earlier value (failover, no primary)",
  },
  {
    name: 'older-epoch',
    title: 'an older epoch written later is ignored',
    applied: applied(stable6, 12),
    candidate: topology(5, 'stable', 'n1'),
    modRevision: 13,
    apply: false,
    advanceRevision: false,
    reason: 'ignored topology epoch 5 (stable, primary n1): epoch 6 is already applied and the epoch only rises',
  },
  {
    name: 'replay',
    title: 'a same-epoch value at an older revision (a re-read racing the watch) is ignored',
    applied: applied(stable6, 12),
    candidate: failover6,
    modRevision: 11,
    apply: false,
    advanceRevision: false,
    reason: 'ignored topology epoch 6 at mod revision 11: revision 12 is already applied',
  },
  {
    name: 'replay',
    title: 'the applied revision seen again is ignored',
    applied: applied(stable6, 12),
    candidate: stable6,
    modRevision: 12,
    apply: false,
    advanceRevision: false,
    reason: 'ignored topology epoch 6 at mod revision 12: revision 12 is already applied',
  },
  {
    name: 'unchanged',
    title: 'the same content rewritten at a newer revision only moves the revision',
    applied: applied(stable6, 12),
    candidate: { ...stable6, at: '2026-02-02T00:00:00.000Z' },
    modRevision: 20,
    apply: false,
    advanceRevision: true,
    reason: 'topology epoch 6 rewritten without changes at mod revision 20',
  },
];

describe('topology admission', () => {
  for (const row of rows) {
    it(`${row.name}: ${row.title}`, () => {
      const verdict = admitTopology(row.applied, row.candidate, BigInt(row.modRevision));
      expect(verdict).to.deep.equal({ kind: row.name, apply: row.apply, advanceRevision: row.advanceRevision, reason: row.reason });
    });
  }

  const differences: Array<[string, Partial<Topology>]> = [
    ['primary', { primary: 'n2' }],
    ['state', { state: 'switchover', primary: null }],
    ['reason', { reason: 'another' }],
    ['node address', { nodes: { ...stable5.nodes, n2: { sql: { host: '127.0.0.1', port: 4000 }, role: 'replica' } } }],
    ['node role', { nodes: { ...stable5.nodes, n2: { sql: { host: '127.0.0.1', port: 3302 }, role: 'down' } } }],
    ['node weight', { nodes: { ...stable5.nodes, n2: { sql: { host: '127.0.0.1', port: 3302 }, role: 'replica', weight: 0 } } }],
    ['node set', { nodes: { n1: stable5.nodes.n1 } }],
  ];
  for (const [what, change] of differences) {
    it(`sameTopology tells a different ${what} apart`, () => {
      expect(sameTopology(stable5, { ...stable5, ...change })).to.equal(false);
    });
  }

  it('sameTopology ignores the write time and an explicit default weight', () => {
    const withWeight = { ...stable5, at: 'later', nodes: { ...stable5.nodes, n2: { ...stable5.nodes.n2, weight: 1 } } };
    expect(sameTopology(stable5, withWeight)).to.equal(true);
  });
});

describe('static topology source', () => {
  it('serves its topology, frozen, as static and reachable', async () => {
    const source = new StaticTopologySource(stable5);
    await source.start();
    const view = source.current();
    expect(view).to.include({ source: 'static', etcdReachable: true });
    expect(view.topology).to.deep.equal(stable5);
    expect(view.lastUpdateAt).to.be.a('number');
    expect(Object.isFrozen(view.topology)).to.equal(true);
    expect(Object.isFrozen(view.topology?.nodes.n1.sql)).to.equal(true);
    const unsubscribe = source.onChange(() => expect.fail('a static topology never changes'));
    unsubscribe();
    await source.stop();
  });

  it("does not freeze or share the caller's object", () => {
    const mine = topology(1, 'stable', 'n1');
    new StaticTopologySource(mine);
    expect(Object.isFrozen(mine)).to.equal(false);
  });

  it('refuses an invalid topology with the field it found wrong', () => {
    const bad = { ...stable5, primary: 'n9' };
    expect(() => new StaticTopologySource(bad)).to.throw(TopologyFormatError, 'primary n9 is not among the nodes');
  });
});

describe('topology listeners', () => {
  it('tells every listener in order, survives a throwing one, and unsubscribes', () => {
    const lines: string[] = [];
    const logger = createLogger('test', {}, (line) => lines.push(line), 'debug');
    const listeners = new TopologyListeners();
    const heard: string[] = [];
    const offA = listeners.add((next, previous) => heard.push(`a:${previous?.epoch ?? '-'}→${next.epoch}`));
    listeners.add(() => {
      throw new Error('boom');
    });
    listeners.add((next) => heard.push(`c:${next.epoch}`));
    listeners.notify(stable5, null, logger);
    offA();
    listeners.notify(stable6, stable5, logger);
    expect(heard).to.deep.equal(['a:-→5', 'c:5', 'c:6']);
    expect(lines.filter((line) => line.includes('a topology listener threw'))).to.have.length(2);
    expect(listeners.size).to.equal(2);
  });
});
