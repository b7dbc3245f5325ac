/**
 * What the proxy's multiplexing (proxy/server/backend-pool.ts) rests on, against a real
 * `dolt sql-server`: which state a backend connection carries from one client session to the
 * next, and what COM_RESET_CONNECTION clears.
 *
 * - A connection given to another session without a reset keeps its session variables, its
 *   database and LAST_INSERT_ID: so the pool hands a connection only to a session whose replayable
 *   state is the same (state key), and a session lingers on its connection after an insert that
 *   set LAST_INSERT_ID.
 * - A COM_STMT_PREPARE without an execute leaves the connection's next statement in the snapshot
 *   taken at prepare time (issue 16's stale read), even once the statement is closed; such a
 *   connection never goes to another session unreset.
 * - COM_RESET_CONNECTION puts session variables back to the global values, clears user variables
 *   and LAST_INSERT_ID, and keeps the database: after it the connection holds no replayable state.
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { TestDoltCluster } from '../bed/dolt-cluster';

type Row = RowDataPacket & Record<string, unknown>;

/** COM_RESET_CONNECTION through mysql2's callback connection. */
function resetConnection(connection: mysql.Connection): Promise<void> {
  const inner = (connection as unknown as { connection: { reset(cb: (error: Error | null) => void): void } }).connection;
  return new Promise((resolve, reject) => inner.reset((error) => (error === null || error === undefined ? resolve() : reject(error))));
}

async function scalar(connection: mysql.Connection, sql: string): Promise<unknown> {
  const [rows] = await connection.query<Row[]>(sql);
  return Object.values(rows[0])[0];
}

describe('Dolt facts for multiplexing (real dolt sql-server)', function () {
  this.timeout(60_000);
  let cluster: TestDoltCluster;
  let a: mysql.Connection;
  let b: mysql.Connection;

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1, databases: ['mux'] });
    const setup = await cluster.connect(cluster.primary);
    await setup.query('CREATE TABLE mux.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    setup.destroy();
  });
  after(async () => cluster?.stop());

  beforeEach(async () => {
    a = await cluster.connect(cluster.primary);
    b = await cluster.connect(cluster.primary);
  });
  afterEach(() => {
    a.destroy();
    b.destroy();
  });

  it('session variables, the database and LAST_INSERT_ID stay on the connection across statements', async () => {
    await a.query("SET SESSION sql_mode = 'ANSI_QUOTES'");
    await a.query('INSERT INTO mux.t (v) VALUES (1)');
    const id = Number(await scalar(a, 'SELECT LAST_INSERT_ID()'));
    expect(id).to.be.greaterThan(0);
    await a.query('SELECT COUNT(*) FROM mux.t');
    expect(Number(await scalar(a, 'SELECT LAST_INSERT_ID()')), 'LAST_INSERT_ID after another statement').to.equal(id);
    expect(await scalar(a, 'SELECT @@session.sql_mode')).to.equal('ANSI_QUOTES');
  });

  it('COM_RESET_CONNECTION clears user variables and LAST_INSERT_ID; session variables and the database: as recorded here', async () => {
    await a.query('USE mux');
    await a.query("SET SESSION sql_mode = 'ANSI_QUOTES'");
    await a.query('SET @u = 7');
    await a.query('INSERT INTO t (v) VALUES (2)');
    await resetConnection(a);
    expect(await scalar(a, 'SELECT @u'), 'user variable').to.equal(null);
    expect(Number(await scalar(a, 'SELECT LAST_INSERT_ID()')), 'LAST_INSERT_ID').to.equal(0);
    expect(await scalar(a, 'SELECT DATABASE()'), 'the database is kept').to.equal('mux');
    const mode = await scalar(a, 'SELECT @@session.sql_mode');
    const global = await scalar(b, 'SELECT @@global.sql_mode');
    expect(mode, 'session sql_mode is back to the global one').to.equal(global);
  });

  it('a prepare without an execute leaves the next statement in the snapshot of prepare time, even after COM_STMT_CLOSE; a prepare that was executed does not', async () => {
    const count = async (c: mysql.Connection): Promise<number> => Number(await scalar(c, 'SELECT COUNT(*) FROM mux.t'));
    const before = await count(b);
    // Distinct SQL texts: mysql2 caches a prepared statement by its text.
    const statement = await a.prepare('SELECT COUNT(*) AS n FROM mux.t');
    await b.query('INSERT INTO mux.t (v) VALUES (3)');
    expect(await count(a), 'plain read after a prepare-only: stale').to.equal(before);
    expect(await count(a), 'the read after that').to.equal(before + 1);
    await statement.close();

    const executed = await a.prepare('SELECT COUNT(*) AS executed FROM mux.t');
    await executed.execute([]);
    await b.query('INSERT INTO mux.t (v) VALUES (4)');
    expect(await count(a), 'plain read after prepare + execute').to.equal(before + 2);
    await executed.close();

    const closed = await a.prepare('SELECT COUNT(*) AS closed FROM mux.t');
    await closed.close();
    await b.query('INSERT INTO mux.t (v) VALUES (5)');
    expect(await count(a), 'plain read after prepare + close, no execute: still stale').to.equal(before + 2);
    expect(await count(a)).to.equal(before + 3);

    await a.prepare('SELECT COUNT(*) AS reset FROM mux.t');
    await b.query('INSERT INTO mux.t (v) VALUES (6)');
    await resetConnection(a);
    expect(await count(a), 'plain read after prepare-only + COM_RESET_CONNECTION').to.equal(before + 4);

    // Only the first statement is stale: a SELECT 1 in front of the read ends the snapshot
    // (what the proxy sends before a session's own query on such a connection).
    await a.prepare('SELECT COUNT(*) AS one FROM mux.t');
    await b.query('INSERT INTO mux.t (v) VALUES (7)');
    await a.query('SELECT 1');
    expect(await count(a), 'plain read after prepare-only + SELECT 1').to.equal(before + 5);
  });
});
