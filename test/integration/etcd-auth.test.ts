/**
 * etcd with authentication on (finding 3 of the hostile-input issue): an anonymous client is
 * refused, and a restart of etcd — which invalidates every token it handed out — costs the
 * agent's store and the proxy's topology source only the time etcd was down: they log in again.
 * (Before common/etcd-host-breaker.ts stopped making calls wait on a half-open breaker, etcd3's
 * retry of a call whose token had gone waited for that very call: the fault suite's etcd restart
 * left every agent cut off from a healthy etcd.)
 */

import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import { EtcdClusterStore } from '../../agent/store/etcd-cluster-store';
import { silentLogger } from '../../common/logger';
import { withTimeout } from '../../common/with-timeout';
import { clusterKeys, encodeTopology, type Topology } from '../../proto';
import { EtcdTopologySource } from '../../proxy/cluster/etcd-topology-source';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';
import { registerCleanup } from '../bed/cleanup';
import { etcdClient, startTestEtcd } from '../bed/etcd';
import { eventually } from '../bed/eventually';
import { vouchFor } from '../bed/topology-evidence';

describe('etcd with authentication on (real etcd)', function () {
  this.timeout(90_000);
  let etcd: EtcdCluster;

  before(async () => {
    etcd = await startTestEtcd(1, { auth: true });
  });

  it('an anonymous client is refused; the root user reads and writes', async () => {
    const anonymous = new Etcd3({ hosts: etcd.endpoints, dialTimeout: 2000 });
    const refused = await withTimeout(anonymous.put('/x').value('1').exec(), 3000, 'anonymous put').then(() => 'written', (e: Error) => e.message);
    anonymous.close();
    expect(refused).to.match(/user name is empty|invalid auth/);
    const client = etcdClient(etcd);
    await client.put('/x').value('1');
    expect(await client.get('/x').string()).to.equal('1');
  });

  it('after an etcd restart (every token invalid) the store and the topology source log in again', async () => {
    const store = new EtcdClusterStore({ endpoints: etcd.endpoints, auth: etcd.auth, cluster: 'auth', callTimeoutMs: 1500 });
    registerCleanup(() => store.close());
    await store.snapshot();
    const client = etcdClient(etcd);
    const topology = (epoch: number): Topology => ({ epoch, state: 'stable', primary: 'n1', nodes: { n1: { sql: { host: '127.0.0.1', port: 3301 }, role: 'primary' } }, reason: `epoch ${epoch}`, at: new Date().toISOString() });
    await vouchFor(client, 'auth', topology(1));
    await client.put(clusterKeys('auth').topology).value(encodeTopology(topology(1)));
    const source = new EtcdTopologySource({ endpoints: etcd.endpoints, auth: etcd.auth, cluster: 'auth', logger: silentLogger, callTimeoutMs: 1000, maxRetryMs: 500 });
    registerCleanup(() => source.stop());
    await source.start();
    await eventually(() => source.current().topology?.epoch === 1, { within: 10_000, what: 'epoch 1' });

    const member = etcd.members[0];
    await member.process.stop(5000);
    // While etcd is down, both keep trying (and their login attempts must not hang).
    const down = await store.snapshot().then(() => 'answered', () => 'unavailable');
    expect(down).to.equal('unavailable');
    await member.process.start();
    await etcd.waitHealthy(member, 30_000);

    let lastError = '';
    const answers = (): Promise<boolean> => store.snapshot().then(() => true, (e: Error) => ((lastError = e.message), false));
    await eventually(answers, { within: 15_000, what: 'the store to log in again' }).catch((e: Error) => {
      throw new Error(`${e.message}; last error: ${lastError}`);
    });
    const after = etcdClient(etcd);
    await vouchFor(after, 'auth', topology(2));
    await after.put(clusterKeys('auth').topology).value(encodeTopology(topology(2)));
    await eventually(() => source.current().topology?.epoch === 2, { within: 15_000, what: 'the topology source to follow epoch 2 after the restart' });
  });
});

describe('etcd with authentication on and tokens gone after 1 s idle (real etcd, --auth-token-ttl 1)', function () {
  this.timeout(120_000);
  let etcd: EtcdCluster;

  before(async () => {
    etcd = await startTestEtcd(1, { auth: true, authTokenTtlSeconds: 1 });
  });

  const topology = (epoch: number): Topology => ({ epoch, state: 'stable', primary: 'n1', nodes: { n1: { sql: { host: '127.0.0.1', port: 3301 }, role: 'primary' } }, reason: `epoch ${epoch}`, at: new Date().toISOString() });
  const restartEtcd = async (): Promise<void> => {
    const member = etcd.members[0];
    await member.process.stop(5000);
    await member.process.start();
    await etcd.waitHealthy(member, 30_000);
  };

  it('after each of three etcd restarts, the agent\'s decision-key watch hears the next change and the topology source follows it', async () => {
    const store = new EtcdClusterStore({ endpoints: etcd.endpoints, auth: etcd.auth, cluster: 'ttl', callTimeoutMs: 1500 });
    registerCleanup(() => store.close());
    let changes = 0;
    const unwatch = await store.watchDecisionKeys(() => changes++);
    registerCleanup(unwatch);
    const source = new EtcdTopologySource({ endpoints: etcd.endpoints, auth: etcd.auth, cluster: 'ttl', logger: silentLogger, callTimeoutMs: 1000, maxRetryMs: 500 });
    registerCleanup(() => source.stop());
    const publish = async (epoch: number): Promise<void> => {
      const client = etcdClient(etcd);
      await vouchFor(client, 'ttl', topology(epoch));
      await client.put(clusterKeys('ttl').topology).value(encodeTopology(topology(epoch)));
      client.close();
    };
    await publish(1);
    await source.start();
    await eventually(() => source.current().topology?.epoch === 1, { within: 10_000, what: 'epoch 1' });
    for (let epoch = 2; epoch <= 4; epoch++) {
      // Idle past the token's life, then a restart: the streams come back with a token etcd
      // no longer knows, and a watch re-created on them is cancelled.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      await restartEtcd();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const before = changes;
      await publish(epoch);
      await eventually(() => changes > before, { within: 15_000, what: `the decision-key watch to hear epoch ${epoch}'s topology` });
      await eventually(() => source.current().topology?.epoch === epoch && source.current().etcdReachable, { within: 15_000, what: `the topology source to follow epoch ${epoch}, watch attached` });
    }
  });
});
