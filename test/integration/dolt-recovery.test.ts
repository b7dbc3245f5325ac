/**
 * The agent's Dolt operations against real servers: measuring the not-on-remote gap, recovering a
 * stale standby, keeping a promoted node's commits the remote lacks, saving an old primary's
 * orphaned commits under names that never collide, refusing to reset a branch that moved, and
 * preferring a newer backup.
 */

import { expect } from 'chai';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestDoltCluster, type TestDoltNode } from '../bed/dolt-cluster';
import { remoteBranchHead } from '../bed/remote-inspect';
import { withSession, type SqlSession } from '../../agent/dolt/sql-session';
import { inspectData } from '../../agent/dolt/inspector';
import { ensureRemoteOnAllDatabases, orphanBranchName, pushAllBranches, recoverNewestCommits } from '../../agent/dolt/recovery';
import { setGlobalConfig } from '../../agent/dolt/dolt-command';
import { cloneDatabases, missingDatabases, NoRemoteTemplateError } from '../../agent/dolt/database-sync';
import { listDatabases } from '../../agent/dolt/sql-session';
import { remoteUrlTemplate } from '../../sandbox/dolt-node-setup';
import { queryAsRoot } from '../../sandbox/root-query';

function on<T>(node: TestDoltNode, run: (session: SqlSession) => Promise<T>): Promise<T> {
  return withSession({ host: '127.0.0.1', port: node.port, user: 'root', password: '' }, 10_000, run, 'db');
}

/** A writable server without push-on-write: a standby right after "disable read-only". */
async function makeWritableStandby(node: TestDoltNode): Promise<void> {
  await node.server.stop();
  await node.server.configure('primary');
  await setGlobalConfig(node.layout.env, node.layout.nodeDir, { 'sqlserver.global.dolt_replicate_to_remote': null });
  await node.server.start();
}

async function headOf(node: TestDoltNode, branch: string): Promise<string> {
  const rows = await on(node, (session) => session.query('SELECT hash FROM dolt_branches WHERE name = ?', [branch]));
  return String(rows[0]?.hash);
}

async function withRemoteBroken(cluster: TestDoltCluster, run: () => Promise<void>): Promise<void> {
  const remoteDb = join(cluster.remoteDir, 'db');
  await rename(remoteDb, `${remoteDb}.aside`);
  await writeFile(remoteDb, 'not a dolt remote');
  try {
    await run();
  } finally {
    await rm(remoteDb, { force: true });
    await rename(`${remoteDb}.aside`, remoteDb);
  }
}

describe('agent Dolt operations (real dolt sql-server)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 3 });
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))');
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (1, 'one')");
    await cluster.query(cluster.primary, 'CREATE TABLE seq (id INT AUTO_INCREMENT PRIMARY KEY, v INT)');
    await cluster.query(cluster.primary, 'INSERT INTO seq (v) VALUES (1), (2)');
  });
  after(async () => cluster?.stop());

  it('measures commits not on the remote after a failed push, and pushing closes the gap', async () => {
    await withRemoteBroken(cluster, async () => {
      await cluster.query(cluster.primary, "INSERT INTO t VALUES (2, 'acknowledged, not pushed')");
    });
    const gap = await on(cluster.primary, (session) => inspectData(session, { remoteName: 'origin', fetch: true }));
    expect(gap.commitsNotOnRemote).to.equal(1);
    expect(gap.notOnRemote.db.main).to.equal(1);
    expect(await on(cluster.primary, (session) => pushAllBranches(session, 'origin'))).to.equal(1);
    const closed = await on(cluster.primary, (session) => inspectData(session, { remoteName: 'origin', fetch: true }));
    expect(closed.commitsNotOnRemote).to.equal(0);
    expect(closed.heads.db.main).to.equal(closed.remoteHeads.db.main);
  });

  it('recovers a stale standby to the remote head by fast-forward; AUTO_INCREMENT goes on after the recovered rows', async () => {
    const standby = cluster.nodes[1];
    expect(await cluster.query(standby, 'SELECT MAX(id) AS m FROM seq')).to.deep.equal([{ m: 2 }]);
    await standby.server.stop();
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (3, 'while the standby was down')");
    await cluster.query(cluster.primary, 'INSERT INTO seq (v) VALUES (3), (4)');
    await makeWritableStandby(standby);
    const outcomes = await on(standby, (session) => recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', epoch: 2 }));
    expect(outcomes.find((outcome) => outcome.branch === 'main')?.action).to.equal('fast-forwarded');
    const rows = await cluster.query<{ v: string }>(standby, 'SELECT v FROM t WHERE id = 3');
    expect(rows.map((row) => row.v)).to.deep.equal(['while the standby was down']);
    const again = await on(standby, (session) => recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', epoch: 2 }));
    expect(again.find((outcome) => outcome.branch === 'main')?.action, 'recovery is idempotent').to.equal('up-to-date');
    // dolt#9725: a promoted node must not hand out ids its stale in-memory counter remembers. The
    // server started at id 2; the rows recovered at run time must move its counter on.
    await cluster.query(standby, 'INSERT INTO seq (v) VALUES (5)');
    expect(await cluster.query(standby, 'SELECT id, v FROM seq ORDER BY id')).to.deep.equal([1, 2, 3, 4, 5].map((n) => ({ id: n, v: n })));
  });

  it("saves an old primary's diverged commits on doltgate/orphaned/<epoch>/<branch>-<hash>, pushes them, then resets", async () => {
    const oldPrimary = cluster.primary;
    await withRemoteBroken(cluster, async () => {
      await cluster.query(oldPrimary, "INSERT INTO t VALUES (4, 'orphan')");
    });
    const orphanedHash = await headOf(oldPrimary, 'main');
    // The new primary moves on: the old one has diverged.
    const newPrimary = cluster.nodes[1];
    await on(newPrimary, (session) => session.query("SET PERSIST dolt_replicate_to_remote = 'origin'"));
    await cluster.query(newPrimary, "INSERT INTO t VALUES (5, 'after failover')");
    const outcomes = await on(oldPrimary, (session) => recoverNewestCommits(session, { mode: 'rejoin', primaryRemote: 'origin', epoch: 7 }));
    const main = outcomes.find((outcome) => outcome.branch === 'main');
    expect(main?.action).to.equal('reset-after-saving-orphans');
    expect(main?.orphanBranch).to.equal(orphanBranchName(7, 'main', orphanedHash));
    const rows = await cluster.query<{ id: number }>(oldPrimary, 'SELECT id FROM t ORDER BY id');
    expect(rows.map((row) => row.id)).to.deep.equal([1, 2, 3, 5]);
    const orphanHead = await remoteBranchHead(oldPrimary.layout.env, cluster.remoteDir, 'db', orphanBranchName(7, 'main', orphanedHash));
    expect(orphanHead).to.equal(orphanedHash);
    const saved = await cluster.query<{ v: string }>(oldPrimary, `SELECT v FROM t AS OF '${orphanHead}' WHERE id = 4`);
    expect(saved.map((row) => row.v)).to.deep.equal(['orphan']);
  });

  it('promoting keeps commits the remote lacks on main (ahead is not diverged) and pushing them closes the gap', async () => {
    // The reclaim case: a primary whose pushes failed is promoted again. Its acknowledged commits
    // must stay on main; before, recovery saved them as an orphan and reset main to the remote.
    const node = cluster.nodes[1];
    await withRemoteBroken(cluster, async () => {
      await cluster.query(node, "INSERT INTO t VALUES (40, 'acknowledged while the remote was away')");
      await cluster.query(node, "INSERT INTO t VALUES (41, 'and another')");
    });
    const before = await headOf(node, 'main');
    const outcomes = await on(node, (session) => recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', epoch: 9 }));
    const main = outcomes.find((outcome) => outcome.branch === 'main');
    expect(main?.action).to.equal('kept-ahead');
    expect(main?.orphanBranch).to.equal(undefined);
    expect(await headOf(node, 'main')).to.equal(before);
    const ids = (await cluster.query<{ id: number }>(node, 'SELECT id FROM t WHERE id >= 40 ORDER BY id')).map((row) => row.id);
    expect(ids).to.deep.equal([40, 41]);
    expect(await on(node, (session) => pushAllBranches(session, 'origin'))).to.be.greaterThan(0);
    expect(await remoteBranchHead(node.layout.env, cluster.remoteDir, 'db')).to.equal(before);
  });

  it('rejoining saves commits that are only ahead of the remote too, then resets to the remote', async () => {
    const node = cluster.nodes[2];
    await makeWritableStandby(node);
    // Level with the remote first, so the commit below is only ahead, not diverged.
    await on(node, (session) => recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', epoch: 10 }));
    await cluster.query(node, "INSERT INTO t VALUES (50, 'ahead on a demoted node')");
    const ahead = await headOf(node, 'main');
    const outcomes = await on(node, (session) => recoverNewestCommits(session, { mode: 'rejoin', primaryRemote: 'origin', epoch: 10 }));
    const main = outcomes.find((outcome) => outcome.branch === 'main');
    expect(main?.action).to.equal('reset-after-saving-orphans');
    expect(main?.orphanBranch).to.equal(orphanBranchName(10, 'main', ahead));
    expect(await headOf(node, main?.orphanBranch as string)).to.equal(ahead);
    expect(await headOf(node, 'main')).to.equal(await remoteBranchHead(node.layout.env, cluster.remoteDir, 'db'));
  });

  it('two saves in one epoch get two branches: the second never reuses the first name (both commits survive)', async () => {
    const node = cluster.nodes[2];
    const saved: string[] = [];
    for (const id of [60, 61]) {
      await cluster.query(node, `INSERT INTO t VALUES (${id}, 'saved twice in epoch 11')`);
      const outcomes = await on(node, (session) => recoverNewestCommits(session, { mode: 'rejoin', primaryRemote: 'origin', epoch: 11 }));
      saved.push(outcomes.find((outcome) => outcome.branch === 'main')?.orphanBranch as string);
    }
    expect(saved[0]).to.not.equal(saved[1]);
    for (const [i, id] of [60, 61].entries()) {
      const rows = await cluster.query<{ id: number }>(node, `SELECT id FROM t AS OF '${saved[i]}' WHERE id = ${id}`);
      expect(rows.map((row) => row.id), `row ${id} on ${saved[i]}`).to.deep.equal([id]);
    }
  });

  it('refuses to move a branch that changed after it was judged (nothing is reset over a new commit)', async () => {
    const node = cluster.nodes[2];
    await cluster.query(node, "INSERT INTO t VALUES (70, 'diverged')");
    await cluster.query(cluster.nodes[1], "INSERT INTO t VALUES (71, 'the remote moves on')");
    // A write lands between the ancestry check and the reset: the race the private listener prevents.
    const error = await on(node, (session) => {
      let injected = false;
      const racing: SqlSession = {
        async query(sql, params) {
          const rows = await session.query(sql, params);
          if (!injected && sql.includes('dolt_merge_base')) {
            injected = true;
            await cluster.query(node, "INSERT INTO t VALUES (72, 'written during recovery')");
          }
          return rows;
        },
      };
      return recoverNewestCommits(racing, { mode: 'rejoin', primaryRemote: 'origin', epoch: 12, pushOrphans: false }).then(
        () => null,
        (caught: Error) => caught,
      );
    });
    expect((error as { code?: string } | null)?.code).to.equal('RECOVERY_RACE');
    const ids = (await cluster.query<{ id: number }>(node, 'SELECT id FROM t WHERE id >= 70 ORDER BY id')).map((row) => row.id);
    expect(ids, 'both local commits are still on main').to.deep.equal([70, 72]);
    // Run again, undisturbed: both are saved on one orphan branch and main follows the remote.
    const outcomes = await on(node, (session) => recoverNewestCommits(session, { mode: 'rejoin', primaryRemote: 'origin', epoch: 12 }));
    const main = outcomes.find((outcome) => outcome.branch === 'main');
    const orphan = main?.orphanBranch as string;
    const saved = (await cluster.query<{ id: number }>(node, `SELECT id FROM t AS OF '${orphan}' WHERE id >= 70 ORDER BY id`)).map((row) => row.id);
    expect(saved).to.deep.equal([70, 72]);
  });

  it('recovers from a backup when it holds newer commits than the remote', async () => {
    const primary = cluster.nodes[1];
    const backupTemplate = `file://${join(cluster.dir, 'backup')}/{database}`;
    await on(primary, (session) => session.query("CALL dolt_backup('add', 'bk', ?)", [backupTemplate.replace('{database}', 'db')]));
    await withRemoteBroken(cluster, async () => {
      await cluster.query(primary, "INSERT INTO t VALUES (6, 'only in the backup')");
    });
    await on(primary, (session) => session.query("CALL dolt_backup('sync', 'bk')"));
    const standby = cluster.nodes[2];
    await makeWritableStandby(standby);
    const outcomes = await on(standby, async (session) => {
      await ensureRemoteOnAllDatabases(session, 'doltgate-backup', backupTemplate);
      return recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', backupRemote: 'doltgate-backup', epoch: 8 });
    });
    const main = outcomes.find((outcome) => outcome.branch === 'main');
    expect(main?.source).to.equal('doltgate-backup');
    const rows = await cluster.query<{ v: string }>(standby, 'SELECT v FROM t WHERE id = 6');
    expect(rows.map((row) => row.v)).to.deep.equal(['only in the backup']);
  });
});

describe('recovery and branches deleted on the primary (real dolt sql-server)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let standby: TestDoltNode;
  const branches = async (node: TestDoltNode): Promise<string[]> => (await on(node, (session) => session.query('SELECT name FROM dolt_branches'))).map((row) => String(row.name));

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 2 });
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    standby = cluster.nodes[1];
    await makeWritableStandby(standby);
  });
  after(async () => cluster?.stop());

  for (const mode of ['promote', 'rejoin'] as const) {
    it(`${mode}: a branch the primary deleted while this node was away is deleted here too (a deleted branch stays deleted)`, async () => {
      const branch = `doomed-${mode}`;
      await cluster.query(cluster.primary, 'CALL dolt_branch(?)', [branch]);
      await on(standby, (session) => recoverNewestCommits(session, { mode, primaryRemote: 'origin', epoch: 20 }));
      expect(await branches(standby)).to.include(branch);
      await cluster.query(cluster.primary, "CALL dolt_branch('-D', ?)", [branch]);
      const outcomes = await on(standby, (session) => recoverNewestCommits(session, { mode, primaryRemote: 'origin', epoch: 21 }));
      expect(outcomes.find((outcome) => outcome.branch === branch)?.action).to.equal('deleted-upstream');
      expect(await branches(standby)).to.not.include(branch);
      expect(await on(standby, (session) => pushAllBranches(session, 'origin'))).to.equal(0);
      const onRemote = await remoteBranchHead(standby.layout.env, cluster.remoteDir, 'db', branch).then(() => true, () => false);
      expect(onRemote, 'the deleted branch is not pushed back').to.equal(false);
    });
  }

  it('promote: a branch deleted on the remote that holds a commit the remote never had is kept (nothing unpublished is dropped)', async () => {
    await cluster.query(cluster.primary, "CALL dolt_branch('worked-on')");
    await on(standby, (session) => recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', epoch: 22 }));
    const connection = await cluster.connect(standby);
    await connection.query("CALL dolt_checkout('worked-on')");
    await connection.query('INSERT INTO t VALUES (1)');
    connection.destroy();
    await cluster.query(cluster.primary, "CALL dolt_branch('-D', 'worked-on')");
    const outcomes = await on(standby, (session) => recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', epoch: 23 }));
    expect(outcomes.find((outcome) => outcome.branch === 'worked-on')?.action).to.equal('kept-local-only');
    expect(await branches(standby)).to.include('worked-on');
  });
});

describe('recovery and databases created at run time (real dolt sql-server)', function () {
  this.timeout(120_000);

  it('a standby that never got a database the catalog lists clones it from the remote, and recovery then covers it', async () => {
    const cluster = await TestDoltCluster.start({ nodes: 2, remoteUrlTemplate: true });
    const [primary, standby] = cluster.nodes;
    await queryAsRoot(primary.port, 'CREATE DATABASE orders');
    await queryAsRoot(primary.port, 'CREATE TABLE t (id INT PRIMARY KEY)', [], { database: 'orders' });
    await queryAsRoot(primary.port, 'INSERT INTO t VALUES (1), (2)', [], { database: 'orders' });
    await makeWritableStandby(standby);
    const template = remoteUrlTemplate(cluster.remoteDir);
    const cloned = await on(standby, async (session) => cloneDatabases(session, missingDatabases(['db', 'orders'], await listDatabases(session)), template, 'origin'));
    expect(cloned).to.deep.equal(['orders']);
    const outcomes = await on(standby, (session) => recoverNewestCommits(session, { mode: 'promote', primaryRemote: 'origin', epoch: 30 }));
    expect(outcomes.filter((outcome) => outcome.database === 'orders').map((outcome) => outcome.action)).to.deep.equal(['up-to-date']);
    const rows = await queryAsRoot<{ id: number }>(standby.port, 'SELECT id FROM t ORDER BY id', [], { database: 'orders' });
    expect(rows.map((row) => row.id)).to.deep.equal([1, 2]);
    expect(await on(standby, async (session) => cloneDatabases(session, [], null, 'origin'))).to.deep.equal([]);
    const refused = await on(standby, (session) => cloneDatabases(session, ['other'], null, 'origin')).then(() => null, (error: Error) => error);
    expect(refused).to.be.instanceOf(NoRemoteTemplateError);
  });
});
