/**
 * A write the proxy is still setting up — its outcome token being armed on the primary
 * connection, a round trip before the client's statement is sent — when the topology retires
 * that primary. The statement was never sent, so it must not fail: it starts over, waits in the
 * write hold and runs on the new primary (design.md safety 5). CI saw the opposite under a
 * switchover: "doltgate: cannot reach n1: connection closed" for a write that never reached n1.
 *
 * The old primary's Dolt is frozen (SIGSTOP) so the arming round trip is surely in flight when the
 * new topology lands. Real etcd (topology written by the test, as an agent would), real Dolt.
 */

import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { clusterKeys, decodeProxyPresence, encodeTopology, type Topology } from '../../proto';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster, type TestDoltNode } from '../bed/dolt-cluster';
import { etcdClient, startTestEtcd } from '../bed/etcd';
import { eventually } from '../bed/eventually';
import { vouchFor } from '../bed/topology-evidence';

type Row = RowDataPacket & { id: number };

const USER = { name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' };

describe('a write being set up when the topology retires its primary (real etcd, real Dolt)', function () {
  this.timeout(120_000);

  for (const state of ['switchover', 'failover'] as const) {
    it(`${state}: the write starts over in the hold and runs once on the new primary; the client sees no error`, async () => {
      const [cluster, etcd] = await Promise.all([TestDoltCluster.start({ nodes: 2 }), startTestEtcd(1)]);
      const client = etcdClient(etcd);
      await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
      const [n1, n2] = cluster.nodes;
      // A read on the replica pulls the table, so n2 has it when it is made primary by hand (the
      // agent's recover step would fetch it).
      await eventually(async () => (await cluster.query(n2, 'SELECT COUNT(*) AS n FROM t')).length === 1, { within: 10_000, what: 'n2 to have table t' });
      const topology = (epoch: number, s: Topology['state'], primary: TestDoltNode | null, roles: Record<string, Topology['nodes'][string]['role']>): Topology => ({
        epoch,
        state: s,
        primary: primary?.name ?? null,
        nodes: Object.fromEntries(cluster.nodes.map((n) => [n.name, { sql: { host: '127.0.0.1', port: n.port }, role: roles[n.name] ?? 'replica' }])),
        reason: `test: ${s}`,
        at: new Date().toISOString(),
      });
      const publish = async (t: Topology): Promise<void> => {
        await vouchFor(client, 'retire', t);
        await client.put(clusterKeys('retire').topology).value(encodeTopology(t));
      };
      await publish(topology(1, 'stable', n1, { [n1.name]: 'primary' }));
      const proxy: RunningProxy = await startProxy(
        parseProxyConfig({ listen: { port: 0 }, users: [USER], cluster: 'retire', etcd: { endpoints: etcd.endpoints }, hold: { timeout_ms: 30_000 } }),
        silentLogger,
      );
      registerCleanup(() => proxy.stop());
      const writer = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret', database: 'db' });
      registerCleanup(() => writer.destroy());
      await writer.query('INSERT INTO t VALUES (1)');

      n1.server.signal('SIGSTOP');
      registerCleanup(() => n1.server.signal('SIGCONT'));
      // SIGSTOP is delivered asynchronously: until Dolt is really stopped it may still answer the
      // token's SET, and the write would be sent, not set up.
      await eventually(() => readFileSync(`/proc/${n1.server.pid as number}/stat`, 'utf8').split(') ')[1]?.startsWith('T') === true, { within: 5_000, what: 'dolt to be stopped' });
      const write = writer.query('INSERT INTO t VALUES (2)').then(() => null, (error: Error) => error);
      await eventually(() => proxy.server.describeSessions().some((s) => s.mode === 'setup'), { within: 20_000, what: 'the write to be in setup (arming its token on the frozen primary)' });

      if (state === 'switchover') {
        await publish(topology(2, 'switchover', null, { [n1.name]: 'primary' }));
        await eventually(() => proxy.server.view.topology?.state === 'switchover', { within: 5_000, what: 'the proxy to apply the switchover' });
        // The agent of the old primary would wait on this: a session still holds a connection there.
        await eventually(async () => {
          const records = Object.values(await client.getAll().prefix(clusterKeys('retire').proxiesPrefix).strings()).map((raw) => decodeProxyPresence(raw));
          return records.length === 1 && records[0].epoch === 2 && records[0].draining === 1;
        }, { within: 5_000, what: 'the presence record to say one session is draining' });
        n1.server.signal('SIGCONT');
        // Armed, found retired, started over: now it waits in the hold, and nothing holds n1.
        await eventually(() => proxy.server.hold.stats.waiting === 1, { within: 10_000, what: 'the write to wait in the hold' });
      } else {
        await publish(topology(2, 'failover', null, { [n1.name]: 'down' }));
        await eventually(() => proxy.server.hold.stats.waiting === 1, { within: 10_000, what: 'the write to wait in the hold' });
        n1.server.signal('SIGCONT');
      }
      await n2.server.restartAs('primary');
      await publish(topology(2, 'stable', n2, { [n1.name]: 'fenced', [n2.name]: 'primary' }));
      expect(await write, 'the client saw no error').to.equal(null);

      const onNew = await cluster.query<Row>(n2, 'SELECT id FROM t WHERE id = 2');
      const onOld = await cluster.query<Row>(n1, 'SELECT id FROM t WHERE id = 2');
      expect(onNew.map((r) => r.id), 'the write on the new primary').to.deep.equal([2]);
      expect(onOld.map((r) => r.id), 'and never on the old one').to.deep.equal([]);
    });
  }
});
