/**
 * Cluster mode (dolt.replication: cluster, issue 15) with real etcd, real Dolt and real agent
 * processes: the agents pick the first primary among standbys at epoch 0 and databases made on it
 * reach the others by Dolt's replication; a kill -9 of the primary's Dolt is failed over by a
 * promotion at run time at the next epoch, with every replicated row; the old primary comes back
 * without cluster: (so it keeps what it alone held), saves that as an orphan branch on the new
 * primary, and rejoins as a cluster standby at the new epoch. No two nodes take writes.
 */

import { expect } from 'chai';
import mysql from 'mysql2/promise';
import type { LocalCluster, LocalProxy } from '../../sandbox/local-cluster';
import { eventually } from '../bed/eventually';
import { registerCleanup } from '../bed/cleanup';
import * as switchoverCli from '../../cli/switchover';
import { memoryIo } from '../../cli/cli-io';
import { queryNode, startLocalCluster } from '../bed/local-cluster';

const fast = { ha: { min_failover_interval_ms: 1000 } };

async function roleOf(cluster: LocalCluster, node: string): Promise<string> {
  const rows = await queryNode<{ role: string; epoch: number }>(cluster, node, 'SELECT @@GLOBAL.dolt_cluster_role AS role, @@GLOBAL.dolt_cluster_role_epoch AS epoch', [], 'mysql');
  return `${rows[0].role}@${rows[0].epoch}`;
}

/** Nodes whose Dolt would take a write now: a cluster primary, or a server without cluster: and read_only off. */
async function writableNodes(cluster: LocalCluster): Promise<string[]> {
  const writable: string[] = [];
  for (const agent of cluster.agents) {
    try {
      const rows = await queryNode<{ ro: number; role: string | null }>(cluster, agent.name, 'SELECT @@read_only AS ro, @@GLOBAL.dolt_cluster_role AS role', [], 'mysql');
      const role = rows[0].role ?? '';
      if (role === 'primary' || (role === '' && Number(rows[0].ro) === 0)) writable.push(agent.name);
    } catch {
      // down, or a server without cluster: that has no such variable: read_only decides
      const rows = await queryNode<{ ro: number }>(cluster, agent.name, 'SELECT @@read_only AS ro', [], 'mysql').catch(() => [] as Array<{ ro: number }>);
      if (rows.length > 0 && Number(rows[0].ro) === 0 && (await takesNoClusterRole(cluster, agent.name))) writable.push(agent.name);
    }
  }
  return writable;
}

async function takesNoClusterRole(cluster: LocalCluster, node: string): Promise<boolean> {
  return queryNode(cluster, node, 'SELECT @@GLOBAL.dolt_cluster_role', [], 'mysql').then(
    () => false,
    () => true,
  );
}

async function ids(cluster: LocalCluster, node: string, asOf = ''): Promise<number[]> {
  const rows = await queryNode<{ id: number }>(cluster, node, `SELECT id FROM t${asOf} ORDER BY id`);
  return rows.map((row) => row.id);
}

describe('cluster mode (real etcd, Dolt and agent processes)', function () {
  this.timeout(180_000);
  let cluster: LocalCluster;
  let first: string;
  let proxy: LocalProxy;

  before(async () => {
    cluster = await startLocalCluster({ replication: 'cluster', agentOverrides: fast });
    first = await cluster.waitForStablePrimary(30_000);
    proxy = await cluster.startProxy({ name: 'app', password: 'app-pw' });
  });

  async function throughProxy<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    const connection = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'app-pw', database: 'app' });
    try {
      const [rows] = await connection.query(sql);
      return Array.isArray(rows) ? (rows as T[]) : [];
    } finally {
      await connection.end();
    }
  }

  it('bootstraps: one primary at epoch 1 chosen by the agents, the others its standbys, databases replicated to all', async () => {
    const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
    expect(await roleOf(cluster, first)).to.equal(`primary@${epoch}`);
    for (const agent of cluster.agents.filter((a) => a.name !== first)) {
      await eventually(async () => (await roleOf(cluster, agent.name)) === `standby@${epoch}`, { within: 15_000, what: `${agent.name} a standby at epoch ${epoch}` });
    }
    await queryNode(cluster, first, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await queryNode(cluster, first, 'INSERT INTO t VALUES (1), (2), (3)');
    for (const agent of cluster.agents) {
      await eventually(async () => (await ids(cluster, agent.name).catch(() => [])).length === 3, { within: 15_000, what: `rows on ${agent.name}` });
    }
    expect(await writableNodes(cluster)).to.deep.equal([first]);
  });

  it('a session reads its own write at once through the proxy, though Dolt replicates asynchronously (the read-your-writes window cluster mode opens)', async () => {
    const connection = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'app-pw', database: 'app' });
    try {
      for (let i = 0; i < 20; i++) {
        await connection.query('CREATE TABLE IF NOT EXISTS rw (id INT PRIMARY KEY)');
        await connection.query('INSERT INTO rw VALUES (?)', [i]);
        const [rows] = await connection.query('SELECT COUNT(*) AS n FROM rw');
        expect(Number((rows as Array<{ n: number }>)[0].n), `read ${i} after its write`).to.equal(i + 1);
      }
    } finally {
      await connection.end();
    }
  });

  it('a user created through the proxy is created on the primary and replicated (remote mode refuses it: users would stay on one node)', async () => {
    await eventually(async () => (await throughProxy('SELECT 1')).length === 1, { within: 20_000, what: 'the proxy routes to the cluster' });
    await throughProxy("CREATE USER 'reporter'@'%' IDENTIFIED BY 'reporter-pw'");
    await throughProxy("GRANT SELECT ON app.* TO 'reporter'@'%'");
    for (const agent of cluster.agents) {
      await eventually(async () => (await queryNode(cluster, agent.name, "SELECT user FROM mysql.user WHERE user = 'reporter'", [], 'mysql')).length === 1, { within: 15_000, what: `user reporter on ${agent.name}` });
    }
  });

  it('kill -9 of the primary Dolt: a standby assumes the primary role at the next epoch with every replicated row; the old primary saves its own commit as an orphan branch there and rejoins as a standby', async () => {
    const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
    const standbys = cluster.agents.filter((a) => a.name !== first);
    // A commit only the primary holds: its standbys frozen, so replication cannot reach them.
    const frozen = (await Promise.all(standbys.map((a) => cluster.doltPid(a.name)))) as number[];
    expect(frozen.every((pid) => typeof pid === 'number')).to.equal(true);
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    try {
      await queryNode(cluster, first, 'INSERT INTO t VALUES (99)');
      const orphanHead = String((await queryNode<{ hash: string }>(cluster, first, "SELECT hash FROM dolt_branches WHERE name = 'main'"))[0].hash);
      // Its agent frozen too, so that it cannot restart Dolt and reclaim in place (which would keep
      // row 99 on main, also correct): the standbys take over once its lease runs out.
      const oldAgent = cluster.agent(first).process;
      oldAgent.signal('SIGSTOP');
      process.kill((await cluster.doltPid(first)) as number, 'SIGKILL');
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
      let next: string;
      try {
        next = await cluster.waitForStablePrimary(30_000, first, epoch);
      } finally {
        oldAgent.signal('SIGCONT');
      }
      const nextEpoch = (await cluster.snapshot()).topology?.value.epoch as number;
      expect(await roleOf(cluster, next)).to.equal(`primary@${nextEpoch}`);
      expect(await ids(cluster, next)).to.deep.equal([1, 2, 3]);
      await throughProxy('INSERT INTO t VALUES (4)');
      // The user made through the proxy before the failover logs in to the new primary.
      const reporter = await mysql.createConnection({ host: '127.0.0.1', port: cluster.agent(next).sqlPort, user: 'reporter', password: 'reporter-pw', database: 'app' });
      try {
        const [rows] = await reporter.query('SELECT COUNT(*) AS n FROM t');
        expect(Number((rows as Array<{ n: number }>)[0].n)).to.equal(4);
      } finally {
        await reporter.end();
      }
      const history = (await cluster.snapshot()).latestHistory;
      expect(history?.steps.find((step) => step.name === 'enable-push-on-write')?.detail).to.match(/assumed the cluster primary role at epoch/);

      // The old primary: orphan saved on the new primary, then a standby at the new epoch.
      const orphan = `doltgate/orphaned/${epoch}/main-${orphanHead}`;
      await eventually(async () => (await queryNode(cluster, next, 'SELECT name FROM dolt_branches WHERE name = ?', [orphan])).length === 1, { within: 60_000, what: `orphan branch ${orphan} on ${next}` });
      expect(await ids(cluster, next, ` AS OF '${orphan}'`)).to.deep.equal([1, 2, 3, 99]);
      await eventually(async () => (await roleOf(cluster, first).catch(() => '')) === `standby@${nextEpoch}`, { within: 60_000, what: `${first} a standby at epoch ${nextEpoch}` });
      await eventually(async () => (await ids(cluster, first).catch(() => [])).join(',') === '1,2,3,4', { within: 30_000, what: `${first} follows ${next}` });
      expect((await cluster.snapshot()).latestHistory?.orphanedBranches.some((entry) => entry.includes(orphan))).to.equal(true);
      expect(await writableNodes(cluster)).to.deep.equal([next]);
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // already gone
        }
      }
    }
  });

  it('a switchover under continuous writes through the proxy (Dolt\'s graceful hand-over): zero client errors, no lost rows, the old primary a standby at the new epoch', async () => {
    const primary = await cluster.waitForStablePrimary(30_000);
    const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
    await queryNode(cluster, primary, 'CREATE TABLE w (id INT PRIMARY KEY)');
    const writer = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'app-pw', database: 'app' });
    registerCleanup(() => writer.destroy());
    const acknowledged: number[] = [];
    const errors: string[] = [];
    let stop = false;
    const writing = (async () => {
      // Bounded: at most 5000 writes or until told to stop.
      for (let id = 1; id <= 5000 && !stop; id++) {
        try {
          await writer.query('INSERT INTO w VALUES (?)', [id]);
          acknowledged.push(id);
        } catch (error) {
          errors.push((error as Error).message);
        }
      }
    })();
    // Reads too, autocommit, so they go to the standbys; the target's role change kills their
    // connections there, which the proxy must hide.
    const reader = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'app-pw', database: 'app' });
    registerCleanup(() => reader.destroy());
    let reads = 0;
    const readErrors: string[] = [];
    const reading = (async () => {
      for (let i = 0; i < 20_000 && !stop; i++) {
        try {
          await reader.query('SELECT COUNT(*) FROM t');
          reads++;
        } catch (error) {
          readErrors.push((error as Error).message);
        }
      }
    })();
    await eventually(() => acknowledged.length >= 20, { within: 10_000, what: 'writes flowing' });
    const target = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    const io = memoryIo();
    const code = await switchoverCli.runCli(['--to', target, '--etcd', cluster.etcd.endpoints[0], '--cluster', cluster.cluster], io, cluster.cliEnv());
    expect(code, io.text()).to.equal(0);
    const before = acknowledged.length;
    await eventually(() => acknowledged.length >= before + 20, { within: 15_000, what: 'writes flowing on the new primary' });
    stop = true;
    await writing;
    await reading;
    expect(errors, 'client errors during the switchover').to.deep.equal([]);
    expect(readErrors, 'read errors during the switchover').to.deep.equal([]);
    expect(reads).to.be.greaterThan(0);
    const next = (await cluster.snapshot()).topology?.value;
    expect(next?.primary).to.equal(target);
    expect(await roleOf(cluster, target)).to.equal(`primary@${next?.epoch}`);
    const history = (await cluster.snapshot()).latestHistory;
    expect(history?.steps.find((step) => step.name === 'fence')?.detail).to.match(/handed over with dolt_cluster_transition_to_standby/);
    const rows = await queryNode<{ id: number }>(cluster, target, 'SELECT id FROM w ORDER BY id');
    const stored = new Set(rows.map((row) => row.id));
    expect(acknowledged.filter((id) => !stored.has(id)), 'acknowledged rows missing on the new primary').to.deep.equal([]);
    expect(next?.epoch).to.be.greaterThan(epoch);
    await eventually(async () => (await roleOf(cluster, primary).catch(() => '')) === `standby@${next?.epoch}`, { within: 30_000, what: `${primary} a standby at epoch ${next?.epoch}` });
    expect(await writableNodes(cluster)).to.deep.equal([target]);
  });
});
