/**
 * A proxy's presence record (proto/proxy-presence.ts, proxy/cluster/proxy-presence-publisher.ts)
 * against a real etcd: written bound to a lease, kept alive, rewritten with the newest state, back
 * on a fresh lease after etcd was away long enough for the old one to lapse, gone when the proxy
 * stops. The outgoing primary of a switchover waits on these records.
 */

import { expect } from 'chai';
import { silentLogger } from '../../common/logger';
import { clusterKeys, decodeProxyPresence, type ProxyPresence } from '../../proto';
import { ProxyPresencePublisher } from '../../proxy/cluster/proxy-presence-publisher';
import { registerCleanup } from '../bed/cleanup';
import { etcdClient, startTestEtcd } from '../bed/etcd';
import { eventually, sleep } from '../bed/eventually';

describe('proxy presence record (real etcd)', function () {
  this.timeout(90_000);

  it('stays while the proxy lives, says its newest state, comes back on a new lease after etcd was away, and goes when it stops', async () => {
    const etcd = await startTestEtcd(1);
    const client = etcdClient(etcd);
    const key = (id: string) => clusterKeys('presence').proxy(id);
    const publisher = new ProxyPresencePublisher({ access: etcd.access, cluster: 'presence', logger: silentLogger, ttlSeconds: 2, callTimeoutMs: 1000 });
    registerCleanup(() => publisher.stop());
    const read = async (): Promise<{ record: ProxyPresence; lease: string } | null> => {
      const response = await client.get(key(publisher.id)).exec();
      const kv = response.kvs[0];
      return kv === undefined ? null : { record: decodeProxyPresence(kv.value), lease: String(kv.lease) };
    };

    publisher.publish({ epoch: 3, state: 'stable', draining: 0 });
    await eventually(async () => (await read())?.record.epoch === 3, { within: 5_000, what: 'the first record' });
    const first = (await read()) as { record: ProxyPresence; lease: string };
    expect(first.record).to.include({ id: publisher.id, epoch: 3, state: 'stable', draining: 0 });
    expect(first.lease, 'bound to a lease').to.not.equal('0');
    // Kept alive past three TTLs.
    await sleep(6_500);
    expect((await read())?.lease, 'the same lease, renewed').to.equal(first.lease);

    publisher.publish({ epoch: 4, state: 'switchover', draining: 2 });
    publisher.publish({ epoch: 4, state: 'switchover', draining: 1 });
    await eventually(async () => (await read())?.record.draining === 1, { within: 5_000, what: 'the newest state' });

    await etcd.stop();
    publisher.publish({ epoch: 4, state: 'switchover', draining: 0 });
    // Long enough for renewals to fail, so the publisher gives the lease up.
    await sleep(3_000);
    for (const member of etcd.members) await member.process.start();
    for (const member of etcd.members) await etcd.waitHealthy(member, 30_000);
    await eventually(async () => {
      const now = await read();
      return now !== null && now.lease !== first.lease && now.record.draining === 0;
    }, { within: 20_000, what: 'the record on a new lease, with the state published while etcd was away' });
    // And it stays: the old lease lapsing does not take it.
    await sleep(4_500);
    expect((await read())?.record).to.include({ epoch: 4, state: 'switchover', draining: 0 });

    await publisher.stop();
    expect(await read(), 'revoked on stop').to.equal(null);
  });
});
