/**
 * A read whose replica has no free backend connection goes to another replica with room instead
 * of queueing (SessionBackends.replicaWithRoom), against real Dolt nodes with a budget of one
 * connection per node.
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { eventually } from '../bed/eventually';

type Row = RowDataPacket & Record<string, unknown>;

describe('proxy reads at a full replica budget (real Dolt, one connection per node)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let proxy: RunningProxy;

  const open = async (): Promise<mysql.Connection> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret' });
    registerCleanup(() => c.destroy());
    return c;
  };

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 3 });
    const config = parseProxyConfig(
      {
        listen: { host: '127.0.0.1', port: 0 },
        users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' }],
        static_topology: { primary: 'n1', nodes: Object.fromEntries(cluster.nodes.map((n) => [n.name, { host: '127.0.0.1', port: n.port }])) },
        pool: { max_connections_per_node: 1, queue_timeout_ms: 20_000 },
      },
      { baseDir: process.cwd() },
    );
    proxy = await startProxy(config, silentLogger);
  });
  after(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  it('while one replica is busy, every read goes to the other one and none waits for it', async () => {
    const slow = await open();
    const fast = await open();
    let slowDone = false;
    const slowRead = slow.query<Row[]>('SELECT SLEEP(3) AS s, @@port AS port').then(([rows]) => {
      slowDone = true;
      return Number(rows[0].port);
    });
    const replicas = cluster.nodes.filter((n) => n.name !== 'n1');
    const sleepingOn = async (): Promise<number | undefined> => {
      for (const n of replicas) {
        const [row] = await cluster.query<Row>(n, "SELECT COUNT(*) AS c FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP%'");
        if (Number(row.c) > 0) return n.port;
      }
      return undefined;
    };
    const busy = await eventually(sleepingOn, { within: 10_000, what: 'the slow read running on a replica' });
    const ports: number[] = [];
    for (let i = 0; i < 6; i++) {
      const [rows] = await fast.query<Row[]>('SELECT @@port AS port');
      ports.push(Number(rows[0].port));
    }
    expect(slowDone, 'the reads finished while the slow read still held its replica').to.equal(false);
    const other = replicas.find((n) => n.port !== busy)?.port;
    expect(ports).to.deep.equal(Array(6).fill(other));
    expect(await slowRead).to.equal(busy);
  });
});
