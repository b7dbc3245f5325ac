/**
 * The agent's Dolt operations against real servers: measuring the not-on-remote gap, recovering a
 * stale standby, saving an old primary's orphaned commits, and preferring a newer backup.
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
    const outcomes = await on(standby, (session) => recoverNewestCommits(session, { primaryRemote: 'origin', epoch: 2 }));
    expect(outcomes.find((outcome) => outcome.branch === 'main')?.action).to.equal('fast-forwarded');
    const rows = await cluster.query<{ v: string }>(standby, 'SELECT v FROM t WHERE id = 3');
    expect(rows.map((row) => row.v)).to.deep.equal(['while the standby was down']);
    const again = await on(standby, (session) => recoverNewestCommits(session, { primaryRemote: 'origin', epoch: 2 }));
    expect(again.find((outcome) => outcome.branch === 'main')?.action, 'recovery is idempotent').to.equal('up-to-date');
    // dolt#9725: a promoted node must not hand out ids its stale in-memory counter remembers. The
    // server started at id 2; the rows recovered at run time must move its counter on.
    await cluster.query(standby, 'INSERT INTO seq (v) VALUES (5)');
    expect(await cluster.query(standby, 'SELECT id, v FROM seq ORDER BY id')).to.deep.equal([1, 2, 3, 4, 5].map((n) => ({ id: n, v: n })));
  });

  it("saves an old primary's commits the remote lacks on doltgate/orphaned/<epoch>/<branch>, pushes them, then resets", async () => {
    const oldPrimary = cluster.primary;
    await withRemoteBroken(cluster, async () => {
      await cluster.query(oldPrimary, "INSERT INTO t VALUES (4, 'orphan')");
    });
    // The new primary moves on: the old one has diverged.
    const newPrimary = cluster.nodes[1];
    await on(newPrimary, (session) => session.query("SET PERSIST dolt_replicate_to_remote = 'origin'"));
    await cluster.query(newPrimary, "INSERT INTO t VALUES (5, 'after failover')");
    const outcomes = await on(oldPrimary, (session) => recoverNewestCommits(session, { primaryRemote: 'origin', epoch: 7 }));
    const main = outcomes.find((outcome) => outcome.branch === 'main');
    expect(main?.action).to.equal('reset-after-saving-orphans');
    expect(main?.orphanBranch).to.equal(orphanBranchName(7, 'main'));
    const rows = await cluster.query<{ id: number }>(oldPrimary, 'SELECT id FROM t ORDER BY id');
    expect(rows.map((row) => row.id)).to.deep.equal([1, 2, 3, 5]);
    const orphanHead = await remoteBranchHead(oldPrimary.layout.env, cluster.remoteDir, 'db', 'doltgate/orphaned/7/main');
    const saved = await cluster.query<{ v: string }>(oldPrimary, `SELECT v FROM t AS OF '${orphanHead}' WHERE id = 4`);
    expect(saved.map((row) => row.v)).to.deep.equal(['orphan']);
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
      return recoverNewestCommits(session, { primaryRemote: 'origin', backupRemote: 'doltgate-backup', epoch: 8 });
    });
    const main = outcomes.find((outcome) => outcome.branch === 'main');
    expect(main?.source).to.equal('doltgate-backup');
    const rows = await cluster.query<{ v: string }>(standby, 'SELECT v FROM t WHERE id = 6');
    expect(rows.map((row) => row.v)).to.deep.equal(['only in the backup']);
  });
});
