/**
 * What tools do through the proxy of a real cluster, in the ways issue 11 found broken: writes
 * from a session with no default database (mysql2 and the mysql CLI), account statements, and
 * sysbench's oltp_read_write against a database the proxy created, with reads on the replicas.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import mysql from 'mysql2/promise';
import { prepareSysbench, runSysbench } from '../../bench/sysbench';
import type { LocalCluster, LocalProxy } from '../../sandbox/local-cluster';
import { registerCleanup } from '../bed/cleanup';
import { eventually } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';
import { scrapeSum } from '../bed/metrics-scrape';

function mysqlCli(proxy: LocalProxy, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('mysql', ['-h', '127.0.0.1', '-P', String(proxy.port), '-u', 'app', '-ppw', '--batch', ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function replicaQueries(proxy: LocalProxy): Promise<number> {
  return scrapeSum(proxy.metricsPort, 'doltgate_proxy_queries_total', { route: 'replica' });
}

describe('tools through the proxy (real processes)', function () {
  this.timeout(300_000);
  let cluster: LocalCluster;
  let proxy: LocalProxy;
  let primary: string;

  before(async () => {
    cluster = await startLocalCluster();
    primary = await cluster.waitForStablePrimary(30_000);
    proxy = await cluster.startProxy({ name: 'app', password: 'pw' });
  });

  const connect = (database?: string) => mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw', database });

  it('mysql2 with no default database: qualified writes work (the proxy selects their database on its backend connection)', async () => {
    const bare = await connect();
    registerCleanup(() => bare.destroy());
    await bare.query('CREATE TABLE app.w (id INT PRIMARY KEY)');
    await bare.query('INSERT INTO app.w VALUES (1)');
    await bare.query('BEGIN');
    await bare.query('INSERT INTO app.w VALUES (2)');
    await bare.query('UPDATE app.w SET id = 3 WHERE id = 2');
    await bare.query('COMMIT');
    // Another database in the same session, created by it, then back: each write gets its own.
    await bare.query('CREATE DATABASE side');
    await bare.query('CREATE TABLE side.x (id INT PRIMARY KEY)');
    await bare.query('INSERT INTO side.x VALUES (7)');
    await bare.query('INSERT INTO app.w VALUES (5)');
    await bare.query('DELETE FROM app.w WHERE id = 5');
    bare.destroy();
    const side = await queryNode<{ id: number }>(cluster, primary, 'SELECT id FROM x', [], 'side');
    expect(side.map((row) => row.id)).to.deep.equal([7]);
    const rows = await queryNode<{ id: number }>(cluster, primary, 'SELECT id FROM w ORDER BY id');
    expect(rows.map((row) => row.id)).to.deep.equal([1, 3]);
  });

  it('a write whose database the proxy cannot tell gets 1046 saying to select one, writes nothing, and the session goes on', async () => {
    const bare = await connect();
    registerCleanup(() => bare.destroy());
    const refused = await bare.query('DELETE w FROM app.w WHERE id = 1').then(() => null, (error: Error & { errno?: number; sqlState?: string }) => error);
    expect(refused?.errno).to.equal(1046);
    expect(refused?.sqlState).to.equal('3D000');
    expect(refused?.message).to.match(/No database selected \(doltgate: .*USE app first\. Nothing was written\.\)/);
    const [after] = await bare.query('SELECT COUNT(*) AS n FROM app.w');
    expect((after as Array<{ n: number }>)[0].n, 'the next statement works; nothing was deleted').to.equal(2);
    bare.destroy();
  });

  it('the mysql CLI with no database: a qualified write works; one to another database than the current gets the clear error', async () => {
    const ok = await mysqlCli(proxy, ['-e', 'INSERT INTO app.w VALUES (4)']);
    expect(ok.code, ok.stderr).to.equal(0);
    const admin = await connect();
    await admin.query('CREATE DATABASE other');
    admin.destroy();
    const refused = await mysqlCli(proxy, ['-D', 'other', '-e', 'INSERT INTO app.w VALUES (5)']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/ERROR 1105 \(HY000\).*doltgate: this statement writes another database than the session's current one/);
    const count = await mysqlCli(proxy, ['-D', 'app', '-e', 'SELECT COUNT(*) AS n FROM w']);
    expect(count.stdout.trim().split('\n')).to.deep.equal(['n', '3']);
  });

  it('CREATE USER and GRANT are refused with 1227 saying how users are managed; nothing reaches Dolt', async () => {
    const client = await connect('app');
    registerCleanup(() => client.destroy());
    for (const sql of ["CREATE USER 'mallory'@'%' IDENTIFIED BY 'x'", "GRANT ALL ON *.* TO 'app'@'%'", "SELECT 1; DROP USER 'app'@'%'"]) {
      const refused = await client.query(sql).then(() => null, (error: Error & { errno?: number }) => error);
      expect(refused?.errno, sql).to.equal(1227);
      expect(refused?.message, sql).to.match(/users per node.*OPERATIONS\.md/);
    }
    const refusedPrepared = await client.prepare("CREATE USER 'eve'@'%'").then(() => null, (error: Error & { errno?: number }) => error);
    expect(refusedPrepared?.errno).to.equal(1227);
    client.destroy();
    const users = await queryNode<{ User: string }>(cluster, primary, "SELECT User FROM mysql.user WHERE User IN ('mallory', 'eve')");
    expect(users).to.deep.equal([]);
  });

  it('sysbench oltp_read_write prepare and run against a database the proxy created: no errors, reads spread over the replicas', async () => {
    const admin = await connect();
    await admin.query('CREATE DATABASE sbtest');
    admin.destroy();
    const target = { host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw', database: 'sbtest' };
    await prepareSysbench(target, { tables: 2, tableSize: 500 });
    const before = await replicaQueries(proxy);
    // One thread: with two, Dolt itself answers some conflicting transactions with 1213, which
    // sysbench counts as ignored errors and retries; any other error aborts the run.
    const result = await runSysbench(target, { test: 'oltp_read_write', threads: 1, seconds: 8, tables: 2, tableSize: 500 });
    expect(result.errors, 'sysbench ignored errors').to.equal(0);
    expect(result.reconnects).to.equal(0);
    expect(result.tps).to.be.greaterThan(0);
    expect(await replicaQueries(proxy) - before, 'queries served by replicas').to.be.greaterThan(0);
    // The database reached every replica through the catalog, with sysbench's tables.
    await eventually(async () => {
      for (const agent of cluster.agents) {
        const rows = await queryNode<{ n: number }>(cluster, agent.name, 'SELECT COUNT(*) AS n FROM sbtest1', [], 'sbtest');
        expect(Number(rows[0].n), `sbtest1 on ${agent.name}`).to.be.greaterThan(0);
      }
      return true;
    }, { within: 30_000, what: 'sbtest on every node' });
  });
});
