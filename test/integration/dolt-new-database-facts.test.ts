/**
 * Learning tests: what Dolt does with databases, branches and writes that appear at run time —
 * the facts doltgate's database catalog rests on (agent/catalog/). Pinned against real
 * `dolt sql-server` processes with a file:// remote per database.
 */

import { expect } from 'chai';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { remoteBranchHead } from '../bed/remote-inspect';
import { remoteUrl } from '../../sandbox/dolt-node-setup';
import { queryAsRoot } from '../../sandbox/root-query';

type Row = RowDataPacket & Record<string, unknown>;

async function databasesOn(cluster: TestDoltCluster, node = cluster.primary): Promise<string[]> {
  const rows = await cluster.query<Row>(node, 'SHOW DATABASES');
  return rows.map((row) => String(Object.values(row)[0]));
}

async function failure(run: () => Promise<unknown>): Promise<Error & { errno?: number }> {
  try {
    await run();
  } catch (error) {
    return error as Error & { errno?: number };
  }
  throw new Error('expected the statement to fail, and it succeeded');
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

describe('Dolt facts: databases created at run time (real dolt sql-server)', function () {
  this.timeout(180_000);

  describe('without dolt_replication_remote_url_template', () => {
    let cluster: TestDoltCluster;
    before(async () => {
      cluster = await TestDoltCluster.start({ nodes: 2 });
    });
    after(async () => cluster?.stop());

    it('CREATE DATABASE on the primary is acknowledged, but the database gets no remote and a replica never sees it', async () => {
      await queryAsRoot(cluster.primary.port, 'CREATE DATABASE orders');
      await queryAsRoot(cluster.primary.port, 'CREATE TABLE t (id INT PRIMARY KEY)', [], { database: 'orders' });
      await queryAsRoot(cluster.primary.port, 'INSERT INTO t VALUES (1)', [], { database: 'orders' });
      const remotes = await queryAsRoot<Row>(cluster.primary.port, 'SELECT name FROM dolt_remotes', [], { database: 'orders' });
      expect(remotes).to.deep.equal([]);
      expect(await exists(join(cluster.remoteDir, 'orders'))).to.equal(false);
      const missing = await failure(() => queryAsRoot(cluster.nodes[1].port, 'SELECT * FROM orders.t'));
      expect(missing.errno).to.equal(1049);
    });

    it('CALL dolt_clone in a writable server adds a database cloned from a URL, with that URL as its origin', async () => {
      const primary = cluster.primary;
      await queryAsRoot(primary.port, "CALL dolt_clone(?, 'db_copy')", [remoteUrl(cluster.remoteDir, 'db')]);
      const remotes = await queryAsRoot<Row>(primary.port, 'SELECT name, url FROM dolt_remotes', [], { database: 'db_copy' });
      expect(remotes.map((row) => row.name)).to.deep.equal(['origin']);
      expect(String(remotes[0].url)).to.contain(join(cluster.remoteDir, 'db'));
      expect(await databasesOn(cluster)).to.include('db_copy');
    });
  });

  describe('with dolt_replication_remote_url_template on every node', () => {
    let cluster: TestDoltCluster;
    before(async () => {
      cluster = await TestDoltCluster.start({ nodes: 3, remoteUrlTemplate: true });
    });
    after(async () => cluster?.stop());

    it('CREATE DATABASE on the primary creates the remote from the template and pushes; every commit reaches it', async () => {
      await queryAsRoot(cluster.primary.port, 'CREATE DATABASE orders');
      expect(await exists(join(cluster.remoteDir, 'orders'))).to.equal(true);
      await queryAsRoot(cluster.primary.port, 'CREATE TABLE t (id INT PRIMARY KEY)', [], { database: 'orders' });
      await queryAsRoot(cluster.primary.port, 'INSERT INTO t VALUES (1)', [], { database: 'orders' });
      const head = await queryAsRoot<Row>(cluster.primary.port, "SELECT dolt_hashof('main') AS h", [], { database: 'orders' });
      expect(await remoteBranchHead(cluster.primary.layout.env, cluster.remoteDir, 'orders')).to.equal(String(head[0].h));
    });

    it('a replica does not list a new database until a query names it; then it clones it and pulls it at every transaction', async () => {
      const replica = cluster.nodes[1];
      expect(await databasesOn(cluster, replica)).to.not.include('orders');
      const rows = await queryAsRoot<Row>(replica.port, 'SELECT id FROM orders.t');
      expect(rows.map((row) => row.id)).to.deep.equal([1]);
      expect(await databasesOn(cluster, replica)).to.include('orders');
      await queryAsRoot(cluster.primary.port, 'INSERT INTO t VALUES (2)', [], { database: 'orders' });
      const later = await queryAsRoot<Row>(replica.port, 'SELECT id FROM orders.t ORDER BY id');
      expect(later.map((row) => row.id)).to.deep.equal([1, 2]);
    });

    it('a replica refuses DROP DATABASE (read only), and DROP DATABASE on the primary leaves the remote and the replicas\' copies', async () => {
      const replica = cluster.nodes[1];
      const refused = await failure(() => queryAsRoot(replica.port, 'DROP DATABASE orders'));
      expect(refused.message).to.match(/read only/i);
      await queryAsRoot(cluster.primary.port, 'DROP DATABASE orders');
      expect(await databasesOn(cluster)).to.not.include('orders');
      expect(await exists(join(cluster.remoteDir, 'orders'))).to.equal(true);
      expect(await databasesOn(cluster, replica)).to.include('orders');
      const still = await queryAsRoot<Row>(replica.port, 'SELECT COUNT(*) AS n FROM orders.t');
      expect(Number(still[0].n)).to.equal(2);
    });

    it('a branch the primary deletes is deleted on the remote and on a replica at its next read; the replica keeps a stale origin/<branch>', async () => {
      const replica = cluster.nodes[2];
      const names = async (node: typeof replica, table: string): Promise<string[]> => (await cluster.query<Row>(node, `SELECT name FROM ${table}`)).map((row) => String(row.name));
      await cluster.query(cluster.primary, "CALL dolt_branch('feature')");
      expect(await names(replica, 'dolt_branches')).to.include('feature');
      await cluster.query(cluster.primary, "CALL dolt_branch('-D', 'feature')");
      const onRemote = await remoteBranchHead(cluster.primary.layout.env, cluster.remoteDir, 'db', 'feature').then(() => true, () => false);
      expect(onRemote, 'the delete was pushed').to.equal(false);
      expect(await names(replica, 'dolt_branches')).to.not.include('feature');
      expect(await names(replica, 'dolt_remote_branches')).to.include('remotes/origin/feature');
    });

    it('a user created on the primary is not replicated: a replica never has it (users live per node)', async () => {
      await queryAsRoot(cluster.primary.port, "CREATE USER 'per_node'@'%' IDENTIFIED BY 'x'");
      await cluster.query(cluster.primary, 'CREATE TABLE after_user (id INT PRIMARY KEY)');
      const replica = cluster.nodes[1];
      expect((await cluster.query<Row>(replica, 'SHOW TABLES')).map((row) => Object.values(row)[0]), 'the replica pulled the commit after the user').to.include('after_user');
      const onPrimary = await queryAsRoot<Row>(cluster.primary.port, "SELECT User FROM mysql.user WHERE User = 'per_node'");
      const onReplica = await queryAsRoot<Row>(replica.port, "SELECT User FROM mysql.user WHERE User = 'per_node'");
      expect(onPrimary.map((row) => row.User)).to.deep.equal(['per_node']);
      expect(onReplica).to.deep.equal([]);
      await queryAsRoot(cluster.primary.port, "DROP USER 'per_node'@'%'");
    });

    it('a node that missed a branch delete keeps the branch through a plain dolt_fetch; dolt_fetch --prune drops only the stale origin/<branch>', async () => {
      const idle = cluster.nodes[1];
      const names = async (table: string): Promise<string[]> => (await cluster.query<Row>(idle, `SELECT name FROM ${table}`)).map((row) => String(row.name));
      await cluster.query(cluster.primary, "CALL dolt_branch('gone')");
      expect(await names('dolt_branches')).to.include('gone');
      await idle.server.stop();
      await cluster.query(cluster.primary, "CALL dolt_branch('-D', 'gone')");
      await idle.server.configure('standby');
      await idle.server.start();
      try {
        await cluster.query(idle, "CALL dolt_fetch('origin')");
        expect(await names('dolt_branches')).to.include('gone');
        expect(await names('dolt_remote_branches')).to.include('remotes/origin/gone');
        await cluster.query(idle, "CALL dolt_fetch('--prune', 'origin')");
        expect(await names('dolt_branches')).to.include('gone');
        expect(await names('dolt_remote_branches')).to.not.include('remotes/origin/gone');
      } finally {
        await idle.server.restartAs('replica');
      }
    });
  });

  describe('writes from a session with no default database (dolt_transaction_commit on)', () => {
    let cluster: TestDoltCluster;
    before(async () => {
      cluster = await TestDoltCluster.start({ nodes: 1, databases: ['app', 'other'] });
    });
    after(async () => cluster?.stop());

    it('a qualified write with no database selected fails with 1105 "cannot dolt_commit with no database selected", and the session then fails every statement until ROLLBACK', async () => {
      const session = await mysql.createConnection({ host: '127.0.0.1', port: cluster.primary.port, user: 'root', password: '' });
      try {
        const refused = await failure(() => session.query('CREATE TABLE app.w (id INT PRIMARY KEY)'));
        expect(refused.errno).to.equal(1105);
        expect(refused.message).to.match(/cannot dolt_commit with no database selected/);
        const wedged = await failure(() => session.query('SELECT 1'));
        expect(wedged.message, 'even SELECT 1 fails').to.match(/cannot dolt_commit with no database selected/);
        expect(await queryAsRoot(cluster.primary.port, 'SHOW TABLES', [], { database: 'app' }), 'other sessions see nothing').to.deep.equal([]);
        await session.query('ROLLBACK');
        const [rows] = await session.query<Row[]>('SELECT 1 AS one');
        expect(rows.map((row) => row.one)).to.deep.equal([1]);
      } finally {
        session.destroy();
      }
    });

    it('the same write succeeds and is committed once the session selects the database it writes', async () => {
      const before = await queryAsRoot<Row>(cluster.primary.port, "SELECT dolt_hashof('main') AS h", [], { database: 'app' });
      await queryAsRoot(cluster.primary.port, 'CREATE TABLE app.w (id INT PRIMARY KEY)', [], { database: 'app' });
      const after = await queryAsRoot<Row>(cluster.primary.port, "SELECT dolt_hashof('main') AS h", [], { database: 'app' });
      expect(after[0].h).to.not.equal(before[0].h);
    });

    it('a write to another database than the selected one fails (1105 "no changes to dolt_commit on database <selected>") and leaves nothing behind', async () => {
      const before = await queryAsRoot<Row>(cluster.primary.port, "SELECT dolt_hashof('main') AS h", [], { database: 'app' });
      const session = await cluster.connect(cluster.primary, 'other');
      const refused = await failure(() => session.query('INSERT INTO app.w VALUES (1)'));
      expect(refused.errno).to.equal(1105);
      expect(refused.message).to.match(/no changes to dolt_commit on database other/);
      const wedged = await failure(() => session.query('SELECT 1'));
      expect(wedged.message, 'this session is stuck too').to.match(/no changes to dolt_commit on database other/);
      session.destroy();
      const after = await queryAsRoot<Row>(cluster.primary.port, "SELECT dolt_hashof('main') AS h", [], { database: 'app' });
      expect(after[0].h).to.equal(before[0].h);
      expect(await queryAsRoot(cluster.primary.port, 'SELECT * FROM w', [], { database: 'app' })).to.deep.equal([]);
    });

    it('a transaction that writes two databases fails at COMMIT ("Cannot commit changes on more than one branch / database")', async () => {
      await queryAsRoot(cluster.primary.port, 'CREATE TABLE o (id INT PRIMARY KEY)', [], { database: 'other' });
      const connection = await cluster.connect(cluster.primary, 'other');
      await connection.query('BEGIN');
      await connection.query('INSERT INTO other.o VALUES (1)');
      await connection.query('INSERT INTO app.w VALUES (2)');
      const refused = await failure(() => connection.query('COMMIT'));
      expect(refused.message).to.match(/more than one branch \/ database/);
      connection.destroy();
    });
  });
});
