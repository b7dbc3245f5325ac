/**
 * Issue 11, through the proxy of a real cluster (etcd, agents, Dolt): a database created at run
 * time by a client is replicated like one the deployment made — on the remote, on every replica
 * without a restart, in the catalog and the status — and every acknowledged row in it survives
 * kill -9 of the primary's Dolt and then a switchover.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { memoryIo } from '../../cli/cli-io';
import * as switchoverCli from '../../cli/switchover';
import type { LocalCluster } from '../../sandbox/local-cluster';
import { registerCleanup } from '../bed/cleanup';
import { repoRoot } from '../bed/dolt-binary';
import { eventually } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';

const ER_DUP_ENTRY = 1062;

function statusJson(cluster: LocalCluster): Promise<{ primary: string; nodes: Array<{ name: string; databases: Array<{ name: string; hasRemote: boolean }> }> }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(repoRoot, 'dist', 'bin', 'doltgate.js'), 'status', '--json', '--etcd', cluster.etcd.endpoints[0], '--cluster', cluster.cluster], { timeout: 20_000, env: { ...process.env, ...cluster.cliEnv() } }, (error, stdout) => {
      if (error) reject(error);
      else resolve(JSON.parse(stdout));
    });
  });
}

/** Every name the database catalog holds, tombstones too. */
async function catalogEntries(cluster: LocalCluster): Promise<string[]> {
  return Object.keys((await cluster.snapshot()).databases?.value.databases ?? {});
}

async function idsOn(cluster: LocalCluster, node: string): Promise<number[]> {
  const rows = await queryNode<{ id: number }>(cluster, node, 'SELECT id FROM t ORDER BY id', [], 'orders');
  return rows.map((row) => row.id);
}

describe('databases created at run time through the proxy (real processes)', function () {
  this.timeout(240_000);

  it('CREATE DATABASE through the proxy, rows with and without a default database: on every node and in the status, and every acknowledged row survives kill -9 of the primary and a switchover', async () => {
    const cluster = await startLocalCluster({ agentOverrides: { ha: { min_failover_interval_ms: 1000 } } });
    const first = await cluster.waitForStablePrimary(30_000);
    const proxy = await cluster.startProxy({ name: 'app', password: 'pw' });
    const connect = (database?: string) => mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw', database });

    // A tool that connects without a database and creates its own, as sysbench's users and
    // migration tools do.
    const admin = await connect();
    registerCleanup(() => admin.destroy());
    await admin.query('CREATE DATABASE orders');
    admin.destroy();
    const client = await connect('orders');
    registerCleanup(() => client.destroy());
    await client.query('CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
    const acknowledged: number[] = [];
    for (let id = 1; id <= 10; id++) {
      await client.query('INSERT INTO t VALUES (?, ?)', [id, 'auto']);
      acknowledged.push(id);
    }
    await client.query('BEGIN');
    await client.query("INSERT INTO t VALUES (11, 'tx'), (12, 'tx')");
    await client.query('COMMIT');
    acknowledged.push(11, 12);
    client.destroy();
    // And from a session with no database at all, by qualified name.
    const bare = await connect();
    registerCleanup(() => bare.destroy());
    for (let id = 13; id <= 17; id++) {
      await bare.query('INSERT INTO orders.t VALUES (?, ?)', [id, 'no default database']);
      acknowledged.push(id);
    }
    bare.destroy();

    const names = cluster.agents.map((agent) => agent.name);
    // No query names orders on a replica before this: the replicas' agents must fetch it
    // themselves, from the catalog the primary's agent keeps.
    await eventually(async () => {
      expect((await catalogEntries(cluster)).sort()).to.deep.equal(['app', 'orders']);
      const status = await statusJson(cluster);
      for (const node of status.nodes) expect(node.databases.find((db) => db.name === 'orders'), `orders in the status of ${node.name}`).to.deep.include({ hasRemote: true });
      return true;
    }, { within: 20_000, what: 'orders in the catalog and in every node\'s status' });
    await eventually(async () => {
      for (const name of names) expect(await idsOn(cluster, name), `rows of orders on ${name}`).to.deep.equal(acknowledged);
      return true;
    }, { within: 30_000, what: 'orders with every row on every node' });

    const doltPid = await cluster.doltPid(first);
    expect(doltPid, 'the primary runs a dolt sql-server').to.be.a('number');
    const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
    process.kill(doltPid as number, 'SIGKILL');
    // A replica, or the old primary recovering in place: a newer epoch either way.
    const second = await cluster.waitForStablePrimary(30_000, undefined, epoch);

    // An insert cut off by the failover may have landed: a duplicate key on retry means it did.
    const writeThroughProxy = async (id: number): Promise<void> => {
      await eventually(async () => {
        const again = await connect('orders');
        try {
          await again.query('INSERT INTO t VALUES (?, ?)', [id, 'after']);
        } catch (error) {
          if ((error as { errno?: number }).errno !== ER_DUP_ENTRY) throw error;
        } finally {
          again.destroy();
        }
        return true;
      }, { within: 30_000, what: `row ${id} written through the proxy` });
      acknowledged.push(id);
    };
    await writeThroughProxy(18);
    expect(await idsOn(cluster, second), 'every acknowledged row on the new primary').to.deep.equal(acknowledged);

    const third = names.find((name) => name !== first && name !== second) ?? (names.find((name) => name !== second) as string);
    const io = memoryIo();
    const code = await switchoverCli.runCli(['--to', third, '--etcd', cluster.etcd.endpoints[0], '--cluster', cluster.cluster], io, cluster.cliEnv());
    expect(code, io.text()).to.equal(0);
    await writeThroughProxy(19);
    expect(await idsOn(cluster, third), 'every acknowledged row after the switchover').to.deep.equal(acknowledged);
    await eventually(async () => {
      for (const name of names) expect(await idsOn(cluster, name), `rows of orders on ${name}`).to.deep.equal(acknowledged);
      return true;
    }, { within: 45_000, what: 'every node, the old primary rejoined too, with every row' });
  });

  it('DROP DATABASE and a branch delete through the proxy reach every replica, and stay so when the old primary, frozen through them, rejoins', async () => {
    const cluster = await startLocalCluster({ agentOverrides: { ha: { min_failover_interval_ms: 1000 } } });
    const first = await cluster.waitForStablePrimary(30_000);
    const proxy = await cluster.startProxy({ name: 'app', password: 'pw' });
    const client = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw' });
    registerCleanup(() => client.destroy());
    await client.query('CREATE DATABASE scratch');
    await client.query('USE app');
    await client.query("CALL dolt_branch('short_lived')");
    const names = cluster.agents.map((agent) => agent.name);
    // SHOW DATABASES only: naming scratch in a query would make a replica clone it.
    const databasesOn = async (node: string): Promise<string[]> => (await queryNode<Record<string, string>>(cluster, node, 'SHOW DATABASES')).map((row) => Object.values(row)[0]);
    await eventually(async () => {
      const status = await statusJson(cluster);
      for (const node of status.nodes) expect(node.databases.map((db) => db.name), `databases of ${node.name}`).to.include('scratch');
      return true;
    }, { within: 20_000, what: 'scratch on every node' });

    // Freeze the primary's agent: its keeper kills its Dolt when the heartbeats stop, a replica
    // takes over, and the frozen node keeps its copy of scratch through the drop.
    const frozen = cluster.agent(first).process.pid as number;
    process.kill(frozen, 'SIGSTOP');
    registerCleanup(() => {
      try {
        process.kill(frozen, 'SIGCONT');
      } catch {
        // already gone
      }
    });
    const second = await cluster.waitForStablePrimary(30_000, first);
    await eventually(async () => {
      await client.query('DROP DATABASE scratch');
      return true;
    }, { within: 20_000, what: 'DROP DATABASE through the proxy on the new primary' });
    await client.query("CALL dolt_branch('-D', 'short_lived')");
    process.kill(frozen, 'SIGCONT');

    await eventually(async () => {
      const catalog = (await cluster.snapshot()).databases?.value.databases ?? {};
      expect(catalog.scratch?.dropped, 'scratch is a tombstone in the catalog').to.include({ by: second });
      for (const name of names) expect(await databasesOn(name), `databases on ${name}`).to.not.include('scratch');
      const status = await statusJson(cluster);
      expect(status.nodes.find((node) => node.name === first)?.databases.map((db) => db.name), 'the old primary rejoined without scratch').to.deep.equal(['app']);
      for (const name of names) {
        const branches = (await queryNode<{ name: string }>(cluster, name, 'SELECT name FROM dolt_branches')).map((row) => row.name);
        expect(branches, `branches on ${name}`).to.not.include('short_lived');
      }
      return true;
    }, { within: 60_000, what: 'scratch and the deleted branch gone from every node, the rejoined old primary too' });
    const still = await databasesOn(second);
    expect(still).to.include('app');
  });

  it('a database created a moment before the primary host is lost is in the catalog at once, and the new primary clones it with every row', async () => {
    // Inspections once a minute: only the primary's per-cycle check for new databases can put it
    // in the catalog in time, and no replica clones it before the failover.
    const cluster = await startLocalCluster({ agentOverrides: { inspect_interval_ms: 60_000, ha: { min_failover_interval_ms: 1000 } } });
    const first = await cluster.waitForStablePrimary(30_000);
    await eventually(async () => (await catalogEntries(cluster)).includes('app'), { within: 20_000, what: 'app in the catalog' });
    const proxy = await cluster.startProxy({ name: 'app', password: 'pw' });
    const bare = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw' });
    registerCleanup(() => bare.destroy());
    await bare.query('CREATE DATABASE late');
    await bare.query('CREATE TABLE late.t (id INT PRIMARY KEY)');
    await bare.query('INSERT INTO late.t VALUES (1), (2), (3)');
    bare.destroy();
    await eventually(async () => (await catalogEntries(cluster)).includes('late'), { within: 10_000, what: 'late in the catalog' });
    const replicas = cluster.agents.map((agent) => agent.name).filter((name) => name !== first);
    for (const name of replicas) {
      const names = (await queryNode<Record<string, string>>(cluster, name, 'SHOW DATABASES')).map((row) => Object.values(row)[0]);
      expect(names, `${name} has not cloned late yet`).to.not.include('late');
    }

    await cluster.agent(first).process.kill9();
    const second = await cluster.waitForStablePrimary(30_000, first);
    const rows = await queryNode<{ id: number }>(cluster, second, 'SELECT id FROM t ORDER BY id', [], 'late');
    expect(rows.map((row) => row.id)).to.deep.equal([1, 2, 3]);
    const history = (await cluster.snapshot()).latestHistory;
    expect(history?.steps.find((step) => step.name === 'recover')?.detail).to.match(/cloned late from the remote/);
  });
});
