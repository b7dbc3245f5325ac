/**
 * The test bed itself: real etcd (one and three members) and the fault-injection helpers on real
 * Dolt nodes do what the other integration tests rely on.
 */

import { expect } from 'chai';
import { startTestEtcd, etcdClient } from '../bed/etcd';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { eventually } from '../bed/eventually';
import { isHealthy } from '../../sandbox/etcd-cluster';
import { isProcessAlive } from '../../common/child-process';

describe('test bed', function () {
  this.timeout(120_000);

  it('starts a one-member etcd that stores and returns a key', async () => {
    const etcd = await startTestEtcd(1);
    const client = etcdClient(etcd);
    await client.put('/doltgate/bed/probe').value('hello');
    expect(await client.get('/doltgate/bed/probe').string()).to.equal('hello');
    await etcd.stop();
    expect(await isHealthy(etcd.endpoints[0])).to.equal(false);
  });

  it('a three-member etcd keeps writing with one member lost and refuses writes without quorum', async () => {
    const etcd = await startTestEtcd(3);
    const [first, second, third] = etcd.members;
    await third.process.stop();
    const client = etcdClient(etcd);
    await eventually(async () => {
      await client.put('/doltgate/bed/quorum').value('two of three');
      return true;
    }, { within: 10_000, what: 'a write with two of three members' });
    await second.process.stop();
    const lonely = etcdClient({ endpoints: [first.clientUrl], access: { endpoints: [first.clientUrl], tls: null, auth: null } } as typeof etcd);
    let refused = false;
    try {
      await Promise.race([
        lonely.put('/doltgate/bed/quorum').value('one of three'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), 3000)),
      ]);
    } catch {
      refused = true;
    }
    expect(refused, 'a single member of three must not accept a write').to.equal(true);
  });

  it('kills, stops, continues and restarts a Dolt node by PID', async () => {
    const cluster = await TestDoltCluster.start({ nodes: 1 });
    const node = cluster.primary;
    const firstPid = node.server.pid as number;
    expect(isProcessAlive(firstPid)).to.equal(true);

    node.server.signal('SIGSTOP');
    let answered = true;
    try {
      await node.server.ping(1000);
    } catch {
      answered = false;
    }
    expect(answered, 'a SIGSTOPped server must not answer').to.equal(false);
    node.server.signal('SIGCONT');
    await node.server.waitReady(10_000);

    const exit = await node.server.kill9();
    expect(exit?.signal).to.equal('SIGKILL');
    expect(isProcessAlive(firstPid)).to.equal(false);

    await node.server.start();
    expect(node.server.pid).to.not.equal(firstPid);
    const rows = await cluster.query<{ one: number }>(node, 'SELECT 1 AS one');
    expect(rows[0].one).to.equal(1);
    await cluster.stop();
    expect(node.server.running).to.equal(false);
  });
});
