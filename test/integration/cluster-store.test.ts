/**
 * ClusterStore against a real etcd: the contract every store passes (test/bed/cluster-store-
 * contract.ts), and what only etcd can show: malformed values written by someone else, etcd
 * coming back, one of three members gone, and a clear StoreUnavailableError when etcd is gone.
 */

import { expect } from 'chai';
import { EtcdClusterStore } from '../../agent/store/etcd-cluster-store';
import { StoreUnavailableError, type ClusterStore } from '../../agent/store/cluster-store';
import { clusterStoreContract, member } from '../bed/cluster-store-contract';
import { etcdClient, startTestEtcd } from '../bed/etcd';
import { MalformedValueLog } from '../../agent/store/malformed-values';
import { silentLogger } from '../../common/logger';
import { clusterKeys } from '../../proto';
import { registerCleanup } from '../bed/cleanup';
import { eventually } from '../bed/eventually';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';

describe('ClusterStore contract (real etcd)', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let cluster = 0;
  const stores: ClusterStore[] = [];

  function store(name?: string): EtcdClusterStore {
    const created = new EtcdClusterStore({ endpoints: etcd.endpoints, cluster: name ?? `c${cluster}` });
    stores.push(created);
    registerCleanup(() => created.close());
    return created;
  }

  before(async () => {
    etcd = await startTestEtcd(1);
  });
  beforeEach(() => {
    cluster++;
  });

  it('a value it cannot decode is skipped and reported once per revision, by kind; the rest of the snapshot stands', async () => {
    const name = `c${cluster}`;
    const malformed = new MalformedValueLog(clusterKeys(name).prefix, silentLogger);
    const reporting = new EtcdClusterStore({ endpoints: etcd.endpoints, cluster: name, malformed });
    registerCleanup(() => reporting.close());
    const raw = etcdClient(etcd);
    await raw.put(clusterKeys(name).member('good')).value(JSON.stringify(member('good')));
    await raw.put(clusterKeys(name).member('bad')).value('{"name": "bad", "sql": ');
    await raw.put(clusterKeys(name).history(3)).value('not json');
    const first = await reporting.snapshot();
    await reporting.snapshot();
    expect(Object.keys(first.members)).to.deep.equal(['good']);
    expect(first.latestHistory).to.equal(null);
    expect([...malformed.counts()].sort()).to.deep.equal([['history', 1], ['members', 1]]);
    await raw.put(clusterKeys(name).member('bad')).value('still not a member');
    await reporting.snapshot();
    expect(malformed.counts().get('members'), 'a new revision of the bad value is a new report').to.equal(2);
  });

  clusterStoreContract((name) => store(name));


  it('is usable again within about a second of etcd coming back (no long circuit breaker)', async () => {
    const own = await startTestEtcd(1);
    const back = new EtcdClusterStore({ endpoints: own.endpoints, cluster: 'back', callTimeoutMs: 500 });
    registerCleanup(() => back.close());
    await back.snapshot();
    const member = own.members[0];
    await member.process.stop();
    // Enough failed calls to open any circuit breaker on the way to etcd.
    for (let i = 0; i < 5; i++) await back.snapshot().catch(() => undefined);
    await member.process.start();
    await own.waitHealthy(member, 15_000);
    const answering = Date.now();
    await eventually(async () => (await back.snapshot()) !== null, { within: 15_000, interval: 50, what: 'the store to reach etcd again' });
    expect(Date.now() - answering, 'ms from etcd answering to the store answering').to.be.lessThan(2500);
  });

  it('renews a lease every time with one of three etcd members stopped (a failed keepalive moves to another member)', async () => {
    const three = await startTestEtcd(3);
    const store = new EtcdClusterStore({ endpoints: three.endpoints, cluster: 'renew', callTimeoutMs: 1500 });
    registerCleanup(() => store.close());
    const lease = await store.grantLease(10_000);
    await three.members[0].process.stop();
    const failures: string[] = [];
    // Each keepalive attempt picks a member at random: 60 renewals at 1 try each would fail ~20
    // times, at 4 tries ~half the time once; at the store's 10, once in ~1,000 runs.
    for (let i = 0; i < 60; i++) await lease.renew().catch((error: Error) => failures.push(error.message));
    expect(failures, 'renewals that failed').to.deep.equal([]);
  });

  it('fails with StoreUnavailableError, within its call timeout, when etcd is gone', async () => {
    const lonely = new EtcdClusterStore({ endpoints: ['http://127.0.0.1:1'], cluster: 'gone', callTimeoutMs: 500 });
    registerCleanup(() => lonely.close());
    const started = Date.now();
    let caught: unknown;
    try {
      await lonely.snapshot();
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(StoreUnavailableError);
    expect((caught as Error).message).to.match(/etcd unavailable while trying to read the cluster state/);
    expect(Date.now() - started).to.be.lessThan(5000);
  });
});
