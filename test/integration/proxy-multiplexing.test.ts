/**
 * Multiplexing through the proxy against a real Dolt node (static topology, one node): with a
 * budget of one backend connection every session shares it, so each test proves what passes from
 * one session to the next and what does not — session variables, LAST_INSERT_ID(), the stale
 * snapshot of a prepare — and what pins a session to its connection (a user variable, a
 * transaction, a prepared statement), which makes the others wait and then get 1040.
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';

type Row = RowDataPacket & Record<string, unknown>;
const ER_CON_COUNT_ERROR = 1040;

describe('proxy multiplexing (real Dolt, a budget of one backend connection)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let proxy: RunningProxy;

  const open = async (): Promise<mysql.Connection> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret', database: 'db' });
    registerCleanup(() => c.destroy());
    return c;
  };
  const scalar = async (c: mysql.Connection, sql: string): Promise<unknown> => {
    const [rows] = await c.query<Row[]>(sql);
    return Object.values(rows[0])[0];
  };
  const doltConnections = async (): Promise<number> => {
    const [row] = await cluster.query<Row>(cluster.primary, 'SELECT COUNT(*) AS n FROM information_schema.processlist');
    // Minus the connection that asks.
    return Number(row.n) - 1;
  };

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1 });
    await cluster.query(cluster.primary, 'CREATE TABLE seq (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    const config = parseProxyConfig(
      {
        listen: { host: '127.0.0.1', port: 0 },
        users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' }],
        static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } },
        pool: { max_connections_per_node: 1, queue_timeout_ms: 600, linger_ms: 300 },
      },
      { baseDir: process.cwd() },
    );
    proxy = await startProxy(config, silentLogger);
  });
  after(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  it('twenty sessions, one after another and interleaved, run on one backend connection', async () => {
    const sessions = await Promise.all([...Array(20)].map(() => open()));
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(sessions.map((s, i) => scalar(s, `SELECT ${i} + ${round}`)));
      expect(answers.map(Number)).to.deep.equal(sessions.map((_, i) => i + round));
    }
    expect(await doltConnections(), "the proxy's connections on Dolt").to.equal(1);
    sessions.forEach((s) => s.destroy());
  });

  it("a session's SET goes with it and never to the next session on the same connection", async () => {
    const a = await open();
    const b = await open();
    await a.query("SET SESSION sql_mode = 'ANSI_QUOTES'");
    const global = await scalar(b, 'SELECT @@global.sql_mode');
    expect(await scalar(b, 'SELECT @@session.sql_mode'), "b after a's SET").to.equal(global);
    expect(await scalar(a, 'SELECT @@session.sql_mode'), 'a, back on the shared connection').to.equal('ANSI_QUOTES');
    expect(await scalar(b, 'SELECT @@session.sql_mode'), 'b again').to.equal(global);
    expect(await doltConnections()).to.equal(1);
  });

  it('LAST_INSERT_ID() right after an insert is the session’s own; the next session never sees it', async () => {
    const a = await open();
    const b = await open();
    const [result] = await a.query<mysql.ResultSetHeader>('INSERT INTO seq (v) VALUES (1)');
    expect(result.insertId).to.be.greaterThan(0);
    // b asks first: the connection lingers with a (its answer carried an insert id), so b waits.
    const bAsks = scalar(b, 'SELECT LAST_INSERT_ID()');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(Number(await scalar(a, 'SELECT LAST_INSERT_ID()')), 'a follows up').to.equal(result.insertId);
    // Then the connection goes to b — reset first, since it held a's insert id.
    expect(Number(await bAsks), 'b on the connection a used').to.equal(0);
  });

  it('a user variable pins its session: another session waits and gets 1040; once the session ends the connection is free again', async () => {
    const a = await open();
    const b = await open();
    await a.query('SET @mine = 42');
    const refused = await b.query('SELECT 1').then(() => null, (error: Error & { errno?: number }) => error);
    expect(refused?.errno, refused?.message).to.equal(ER_CON_COUNT_ERROR);
    expect(Number(await scalar(a, 'SELECT @mine')), 'a keeps its variable').to.equal(42);
    a.destroy();
    expect(Number(await scalar(b, 'SELECT @mine IS NULL')), 'b on a reset connection').to.equal(1);
  });

  it('a transaction holds the connection until it ends; the statement waiting for it is served after COMMIT', async () => {
    const a = await open();
    const b = await open();
    await a.query('BEGIN');
    await a.query('INSERT INTO seq (v) VALUES (2)');
    const waiting = scalar(b, 'SELECT COUNT(*) FROM seq WHERE v = 2');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await a.query('COMMIT');
    expect(Number(await waiting), 'b sees the committed row').to.equal(1);
  });

  it('a prepared statement keeps its connection while open; after close the next session reads fresh data, not the snapshot of the prepare', async () => {
    const a = await open();
    const b = await open();
    const statement = await a.prepare('SELECT COUNT(*) AS n FROM seq');
    const refused = await b.query('SELECT 1').then(() => null, (error: Error & { errno?: number }) => error);
    expect(refused?.errno, 'b while a holds a prepared statement').to.equal(ER_CON_COUNT_ERROR);
    await statement.close();
    // The prepare was never executed: Dolt would run the connection's next statement in its
    // snapshot. Write from outside the proxy, then read through it from b.
    const before = Number(await scalar(b, 'SELECT COUNT(*) FROM seq'));
    const stale = await a.prepare('SELECT COUNT(*) AS m FROM seq');
    await stale.close();
    await cluster.query(cluster.primary, 'INSERT INTO seq (v) VALUES (3)');
    expect(Number(await scalar(b, 'SELECT COUNT(*) FROM seq')), 'b after a prepare-only on the shared connection').to.equal(before + 1);
  });

  it("a session's own read after a bare prepare (no execute) reads fresh data, not the prepare's snapshot", async () => {
    const a = await open();
    const before = Number(await scalar(a, 'SELECT COUNT(*) FROM seq'));
    const bare = await a.prepare('SELECT COUNT(*) AS bare FROM seq');
    await cluster.query(cluster.primary, 'INSERT INTO seq (v) VALUES (8)');
    expect(Number(await scalar(a, 'SELECT COUNT(*) FROM seq')), 'a on its own prepare-only connection').to.equal(before + 1);
    await bare.close();
  });
});
