/**
 * MemoryClusterStore passes the ClusterStore contract the etcd store passes
 * (test/bed/cluster-store-contract.ts), and fails as etcd does while "etcd" is down.
 */

import { expect } from 'chai';
import { StoreUnavailableError } from '../../agent/store/cluster-store';
import { MemoryClusterStore, MemoryEtcd } from '../../agent/store/memory-cluster-store';
import { clusterStoreContract, member } from '../bed/cluster-store-contract';

describe('ClusterStore contract (MemoryClusterStore)', function () {
  // The lease cases wait out real TTLs (seconds), as against etcd.
  this.timeout(20_000);
  const etcd = new MemoryEtcd();
  clusterStoreContract((name) => new MemoryClusterStore(etcd, name));

  it('every call fails with StoreUnavailableError while etcd is down, and works again after', async () => {
    const down = new MemoryEtcd();
    const store = new MemoryClusterStore(down, 'outage');
    const lease = await store.grantLease(5000);
    down.unavailable = true;
    for (const call of [() => store.snapshot(), () => store.putMember(member('a'), lease), () => store.acquireLeader('a', lease), () => lease.renew()]) {
      expect(await call().then(() => null, (error: unknown) => error)).to.be.instanceOf(StoreUnavailableError);
    }
    down.unavailable = false;
    expect(await store.acquireLeader('a', lease)).to.equal(true);
  });

  it('a lease lapses on the injected clock, with every key bound to it', async () => {
    let now = 1_000;
    const clocked = new MemoryEtcd(() => now);
    const store = new MemoryClusterStore(clocked, 'clock');
    const lease = await store.grantLease(3000);
    await store.putMember(member('a'), lease);
    await store.acquireLeader('a', lease);
    now += 2_999;
    expect((await store.snapshot()).leader?.name).to.equal('a');
    await lease.renew();
    now += 2_999;
    expect(Object.keys((await store.snapshot()).members)).to.deep.equal(['a']);
    now += 2;
    const after = await store.snapshot();
    expect(after.leader).to.equal(null);
    expect(after.members).to.deep.equal({});
    expect(await lease.renew().then(() => null, (error: Error) => error.name + ': ' + error.message)).to.match(/has expired/);
  });
});
