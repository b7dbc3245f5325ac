/**
 * What Dolt's privileges do and do not stop, measured on the real binary with a user holding
 * data rights only (APP_USER_PRIVILEGES, as the deploy files grant the application). The proxy's
 * server-state guard exists because of the second list.
 *
 * Dolt refuses such a user: CREATE USER, KILL, the remote-touching procedures (dolt_remote,
 * dolt_backup, dolt_push, dolt_gc, dolt_clone), LOAD DATA INFILE; with secure_file_priv set (the
 * agent sets it from its YAML at start-up) any file outside that directory.
 * Dolt lets the same user: GRANT SUPER to itself, change another user's password, REVOKE the
 * agent user's rights, and SET GLOBAL / PERSIST anything (replication off, read_only).
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { APP_USER_PRIVILEGES } from '../bed/app-user-checks';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';

describe('Dolt privilege facts (real dolt sql-server)', function () {
  this.timeout(60_000);
  let cluster: TestDoltCluster;
  let admin: mysql.Connection;

  const as = async (user: string, password: string): Promise<mysql.Connection> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: cluster.primary.port, user, password, database: 'db' });
    registerCleanup(() => c.destroy());
    return c;
  };
  const outcome = (c: mysql.Connection, sql: string): Promise<string> => c.query(sql).then(() => 'ok', (e: Error) => `refused: ${e.message}`);

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1, secureFiles: true });
    admin = await cluster.connect(cluster.primary);
    await admin.query('CREATE TABLE t (id INT PRIMARY KEY, v TEXT)');
    await admin.query("CREATE USER 'doltgate'@'localhost' IDENTIFIED BY 'agent-pw'");
    await admin.query("GRANT ALL ON *.* TO 'doltgate'@'localhost' WITH GRANT OPTION");
  });
  after(() => cluster?.stop());

  beforeEach(async () => {
    await admin.query("DROP USER IF EXISTS 'app'@'%'");
    await admin.query("CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'");
    await admin.query(`GRANT ${APP_USER_PRIVILEGES} ON *.* TO 'app'@'%'`);
    await admin.query("ALTER USER 'doltgate'@'localhost' IDENTIFIED BY 'agent-pw'");
    await admin.query("GRANT ALL ON *.* TO 'doltgate'@'localhost' WITH GRANT OPTION");
    await admin.query('SET GLOBAL read_only = 0');
  });

  it('a data-rights user may read, write, change schema and branch', async () => {
    const app = await as('app', 'app-pw');
    for (const sql of ["INSERT INTO t VALUES (1, 'a')", 'SELECT * FROM t', 'CREATE TABLE u (a INT PRIMARY KEY)', 'DROP TABLE u', "CALL dolt_branch('app-branch')", "CALL dolt_branch('-d', 'app-branch')"]) {
      expect(await outcome(app, sql), sql).to.equal('ok');
    }
  });

  it('Dolt refuses it CREATE USER, KILL, remote-touching procedures and file access outside secure_file_priv', async () => {
    const app = await as('app', 'app-pw');
    const victim = await as('app', 'app-pw');
    const [[{ id }]] = await victim.query<RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
    const [[{ dir }]] = await admin.query<RowDataPacket[]>('SELECT @@secure_file_priv AS dir');
    expect(String(dir)).to.match(/\/files$/);
    for (const sql of [
      "CREATE USER 'evil'@'%'", `KILL ${id}`, "CALL dolt_remote('add', 'evil', 'file:///tmp/evil')", "CALL dolt_backup('add', 'b', 'file:///tmp/b')",
      "CALL dolt_push('origin', 'main')", 'CALL dolt_gc()', "LOAD DATA INFILE '/etc/hostname' INTO TABLE t", "SELECT 1 INTO OUTFILE '/tmp/doltgate-outfile-test.txt'",
    ]) {
      expect(await outcome(app, sql), sql).to.match(/^refused: /);
    }
    const [[file]] = await app.query<RowDataPacket[]>("SELECT LOAD_FILE('/etc/hostname') AS f");
    expect(file.f, 'LOAD_FILE outside secure_file_priv').to.equal(null);
  });

  it('Dolt lets it GRANT itself SUPER, change the agent user\'s password, and SET PERSIST replication off', async () => {
    const app = await as('app', 'app-pw');
    expect(await outcome(app, "GRANT SUPER ON *.* TO 'app'@'%'")).to.equal('ok');
    expect(await outcome(app, "ALTER USER 'doltgate'@'localhost' IDENTIFIED BY 'stolen'")).to.equal('ok');
    const locked = await mysql.createConnection({ host: '127.0.0.1', port: cluster.primary.port, user: 'doltgate', password: 'agent-pw' }).then((c) => (c.destroy(), 'in'), () => 'locked out');
    expect(locked).to.equal('locked out');
    expect(await outcome(app, "SET PERSIST dolt_replicate_to_remote = ''")).to.equal('ok');
    expect(await outcome(app, 'SET GLOBAL read_only = 1')).to.equal('ok');
    await admin.query("SET PERSIST dolt_replicate_to_remote = 'origin'");
  });
});
