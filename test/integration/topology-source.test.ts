/**
 * EtcdTopologySource against a real etcd: the first read, the watch, the epoch rule (an older
 * epoch written later never replaces a newer one), malformed values and deletes ignored, and
 * etcd going away (last topology kept, etcdReachable false) and coming back — including etcd
 * being down when the source starts. Waits are `eventually(...)`, never sleeps; each test uses
 * its own cluster name so the tests sharing one etcd do not see each other's keys.
 */

import { expect } from 'chai';
import type { Etcd3 } from 'etcd3';
import { startTestEtcd, etcdClient } from '../bed/etcd';
import { vouchFor } from '../bed/topology-evidence';
import { registerCleanup } from '../bed/cleanup';
import { eventually } from '../bed/eventually';
import { createLogger } from '../../common/logger';
import { clusterKeys, encodeTopology, type Topology } from '../../proto';
import { EtcdTopologySource } from '../../proxy/cluster/etcd-topology-source';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';

function topology(epoch: number, state: Topology['state'], primary: string | null): Topology {
  return {
    epoch,
    state,
    primary,
    nodes: {
      n1: { sql: { host: '127.0.0.1', port: 3301 }, role: primary === 'n1' ? 'primary' : 'replica' },
      n2: { sql: { host: '127.0.0.1', port: 3302 }, role: primary === 'n2' ? 'primary' : 'replica' },
    },
    reason: `epoch ${epoch} ${state}`,
    at: new Date().toISOString(),
  };
}

interface Harness {
  source: EtcdTopologySource;
  logs: Array<{ level: string; msg: string }>;
  /** `previous→next` epochs and states, one entry per onChange call. */
  changes: string[];
  put(value: Topology | string): Promise<void>;
  remove(): Promise<void>;
}

let clusterCounter = 0;

async function harness(etcd: EtcdCluster, client: Etcd3, options: { start?: boolean; callTimeoutMs?: number } = {}): Promise<Harness> {
  const cluster = `topo-${process.pid}-${++clusterCounter}`;
  const key = clusterKeys(cluster).topology;
  const logs: Harness['logs'] = [];
  const logger = createLogger('test', {}, (line) => logs.push(JSON.parse(line) as { level: string; msg: string }), 'debug');
  const source = new EtcdTopologySource({ endpoints: etcd.endpoints, cluster, logger, callTimeoutMs: options.callTimeoutMs ?? 1000, maxRetryMs: 500 });
  registerCleanup(() => source.stop());
  const changes: string[] = [];
  source.onChange((next, previous) => changes.push(`${previous ? `${previous.epoch}/${previous.state}` : 'none'}→${next.epoch}/${next.state}`));
  const put = async (value: Topology | string): Promise<void> => {
    if (typeof value !== 'string') await vouchFor(client, cluster, value);
    await client.put(key).value(typeof value === 'string' ? value : encodeTopology(value));
  };
  const remove = async (): Promise<void> => {
    await client.delete().key(key);
  };
  if (options.start ?? true) await source.start();
  return { source, logs, changes, put, remove };
}

function epochOf(h: Harness): number | null {
  return h.source.current().topology?.epoch ?? null;
}

describe('etcd topology source', function () {
  this.timeout(60_000);

  describe('with etcd up', () => {
    let etcd: EtcdCluster;
    let client: Etcd3;

    before(async () => {
      etcd = await startTestEtcd(1);
      client = etcdClient(etcd);
    });

    it('reads the published topology at start', async () => {
      const h = await harness(etcd, client, { start: false });
      await h.put(topology(1, 'stable', 'n1'));
      await h.source.start();
      const view = h.source.current();
      expect(view).to.include({ source: 'etcd', etcdReachable: true });
      expect(view.topology).to.include({ epoch: 1, state: 'stable', primary: 'n1' });
      expect(view.lastUpdateAt).to.be.a('number');
      expect(h.changes).to.deep.equal(['none→1/stable']);
    });

    it('starts with no topology when none is published, and picks up the first one', async () => {
      const h = await harness(etcd, client);
      expect(h.source.current()).to.include({ topology: null, etcdReachable: true, lastUpdateAt: null });
      expect(h.logs.some((l) => l.msg.startsWith('no topology is published in etcd yet'))).to.equal(true);
      await h.put(topology(1, 'stable', 'n1'));
      await eventually(() => epochOf(h) === 1, { within: 5000, what: 'the first topology through the watch' });
    });

    it('the watch delivers a newer epoch, then the same epoch going stable, in order', async () => {
      const h = await harness(etcd, client, { start: false });
      await h.put(topology(1, 'stable', 'n1'));
      await h.source.start();
      await h.put(topology(2, 'failover', null));
      await h.put(topology(2, 'stable', 'n2'));
      await eventually(() => h.source.current().topology?.state === 'stable' && epochOf(h) === 2, { within: 5000, what: 'epoch 2 stable' });
      expect(h.changes).to.deep.equal(['none→1/stable', '1/stable→2/failover', '2/failover→2/stable']);
      expect(h.source.current().topology?.primary).to.equal('n2');
    });

    it('an older epoch written later is ignored and logged', async () => {
      const h = await harness(etcd, client);
      await h.put(topology(5, 'stable', 'n2'));
      await eventually(() => epochOf(h) === 5, { within: 5000, what: 'epoch 5' });
      await h.put(topology(4, 'stable', 'n1'));
      // A later write of a newer epoch proves the older one went past (watch events are in order).
      await h.put(topology(6, 'stable', 'n2'));
      await eventually(() => epochOf(h) === 6, { within: 5000, what: 'epoch 6' });
      expect(h.changes).to.deep.equal(['none→5/stable', '5/stable→6/stable']);
      const ignored = h.logs.find((l) => l.msg.startsWith('ignored topology epoch 4'));
      expect(ignored?.level).to.equal('warn');
      expect(ignored?.msg).to.equal('ignored topology epoch 4 (stable, primary n1): epoch 5 is already applied and the epoch only rises');
    });

    it('a malformed value and a deleted key are ignored; the last topology stays', async () => {
      const h = await harness(etcd, client);
      await h.put(topology(3, 'stable', 'n1'));
      await eventually(() => epochOf(h) === 3, { within: 5000, what: 'epoch 3' });
      await h.put('{not json');
      await h.put(JSON.stringify({ ...topology(4, 'stable', 'n1'), primary: 'n9' }));
      await h.remove();
      await h.put(topology(5, 'failover', null));
      await eventually(() => epochOf(h) === 5, { within: 5000, what: 'epoch 5' });
      expect(h.changes).to.deep.equal(['none→3/stable', '3/stable→5/failover']);
      const malformed = h.logs.filter((l) => l.msg.startsWith('ignored a malformed topology value'));
      expect(malformed, 'one log line per malformed write').to.have.length(2);
      expect(h.logs.some((l) => l.msg.startsWith('the topology key was deleted'))).to.equal(true);
      expect(h.source.current().etcdReachable).to.equal(true);
    });

    it('stop() ends the watch: later writes are not applied', async () => {
      const h = await harness(etcd, client);
      await h.put(topology(1, 'stable', 'n1'));
      await eventually(() => epochOf(h) === 1, { within: 5000, what: 'epoch 1' });
      await h.source.stop();
      expect(h.source.current().etcdReachable).to.equal(false);
      await h.put(topology(2, 'stable', 'n2'));
      // A second source proves the write landed; the stopped one must still say epoch 1.
      const witness = await harness(etcd, client, { start: false });
      await witness.source.start();
      expect(epochOf(h)).to.equal(1);
    });
  });

  describe('with etcd going away', () => {
    it('keeps the last topology and reports etcd unreachable while it is stopped, then catches up', async () => {
      const etcd = await startTestEtcd(1);
      const client = etcdClient(etcd);
      const h = await harness(etcd, client);
      await h.put(topology(1, 'stable', 'n1'));
      await eventually(() => epochOf(h) === 1 && h.source.current().etcdReachable, { within: 5000, what: 'epoch 1, reachable' });

      await etcd.stop();
      await eventually(() => h.source.current().etcdReachable === false, { within: 10_000, what: 'etcd reported unreachable' });
      expect(h.source.current().topology).to.include({ epoch: 1, primary: 'n1' });

      for (const member of etcd.members) await member.process.start();
      for (const member of etcd.members) await etcd.waitHealthy(member, 30_000);
      await h.put(topology(2, 'stable', 'n2'));
      await eventually(() => epochOf(h) === 2 && h.source.current().etcdReachable, { within: 20_000, what: 'epoch 2 after etcd came back' });
      expect(h.changes).to.deep.equal(['none→1/stable', '1/stable→2/stable']);
    });

    it('start() resolves promptly when etcd is down, then picks up the topology once etcd is back', async () => {
      const etcd = await startTestEtcd(1);
      const client = etcdClient(etcd);
      await client.put(clusterKeys('unused').topology).value('warm-up');
      await etcd.stop();
      const h = await harness(etcd, client, { start: false, callTimeoutMs: 1000 });
      const startedAt = Date.now();
      await h.source.start();
      expect(Date.now() - startedAt, 'start() is bounded by about one call timeout').to.be.below(3000);
      expect(h.source.current()).to.include({ topology: null, etcdReachable: false, lastUpdateAt: null });

      for (const member of etcd.members) await member.process.start();
      for (const member of etcd.members) await etcd.waitHealthy(member, 30_000);
      await h.put(topology(7, 'stable', 'n2'));
      await eventually(() => epochOf(h) === 7 && h.source.current().etcdReachable, { within: 20_000, what: 'the topology once etcd is back' });
      expect(h.changes).to.deep.equal(['none→7/stable']);
    });
  });
});
