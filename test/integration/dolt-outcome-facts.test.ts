/**
 * What a commit's outcome token (issue 14) rests on, against a real `dolt sql-server` run as the
 * agent runs a primary (dolt_transaction_commit on, so every SQL COMMIT is a Dolt commit):
 *
 * - `dolt_transaction_commit_message`, a session variable, becomes the message of the Dolt
 *   commit the next SQL COMMIT (or autocommit write) makes; it stays set, so every later commit
 *   of that session gets it too unless it is set again.
 * - A COMMIT that changed nothing makes no Dolt commit.
 * - `dolt_commits` lists commits of every branch, so a commit found there by its message is found
 *   also after it was moved to an orphan branch and `main` was reset past it; the branches that
 *   still reach a commit are those where DOLT_MERGE_BASE(commit, branch) is the commit.
 * - The data and the commit land together: after a SIGKILL of Dolt right after the COMMIT was
 *   sent, the row is there exactly when a commit with the message is.
 */

import { expect } from 'chai';
import type { RowDataPacket } from 'mysql2/promise';
import { TestDoltCluster } from '../bed/dolt-cluster';

type Row = RowDataPacket & Record<string, unknown>;

describe('Dolt facts for commit outcome tokens (real dolt sql-server)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1, databases: ['app'] });
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
  });
  after(async () => cluster?.stop());

  const commitsWith = async (message: string): Promise<number> =>
    Number((await cluster.query<{ n: number }>(cluster.primary, 'SELECT COUNT(*) AS n FROM dolt_commits WHERE message = ?', [message]))[0].n);

  it('the session variable names the Dolt commit of the next COMMIT and of autocommit writes, and stays set', async () => {
    const c = await cluster.connect(cluster.primary);
    await c.query("SET SESSION dolt_transaction_commit_message = 'doltgate-outcome:aaa'");
    await c.query("INSERT INTO t VALUES (1, 'auto')");
    expect(await commitsWith('doltgate-outcome:aaa')).to.equal(1);
    await c.query('BEGIN');
    await c.query("INSERT INTO t VALUES (2, 'tx')");
    // Set inside the transaction, before its COMMIT: that is where the proxy sets it.
    await c.query("SET SESSION dolt_transaction_commit_message = 'doltgate-outcome:bbb'");
    await c.query('COMMIT');
    expect(await commitsWith('doltgate-outcome:bbb')).to.equal(1);
    await c.query("INSERT INTO t VALUES (3, 'again')");
    expect(await commitsWith('doltgate-outcome:bbb'), 'still set: the next commit carries it too').to.equal(2);
    const [head] = await c.query<Row[]>("SELECT message FROM dolt_log LIMIT 1");
    expect(head[0].message).to.equal('doltgate-outcome:bbb');
    c.destroy();
  });

  it('a COMMIT that changed nothing makes no Dolt commit', async () => {
    const c = await cluster.connect(cluster.primary);
    await c.query("SET SESSION dolt_transaction_commit_message = 'doltgate-outcome:empty'");
    await c.query('BEGIN');
    await c.query('SELECT * FROM t');
    await c.query('COMMIT');
    await c.query('UPDATE t SET v = v WHERE id = 1');
    expect(await commitsWith('doltgate-outcome:empty')).to.equal(0);
    c.destroy();
  });

  it('dolt_commits finds a commit that only an orphan branch still holds', async () => {
    const c = await cluster.connect(cluster.primary);
    await c.query("SET SESSION dolt_transaction_commit_message = 'doltgate-outcome:orphan'");
    await c.query("INSERT INTO t VALUES (10, 'orphan')");
    const [rows] = await c.query<Row[]>("SELECT commit_hash FROM dolt_log WHERE message = 'doltgate-outcome:orphan'");
    const hash = String(rows[0].commit_hash);
    await c.query("CALL dolt_branch('doltgate/orphaned/test', ?)", [hash]);
    await c.query('SET SESSION dolt_transaction_commit = 0');
    await c.query("CALL dolt_reset('--hard', 'HEAD~1')");
    const [onMain] = await c.query<Row[]>("SELECT COUNT(*) AS n FROM dolt_log WHERE message = 'doltgate-outcome:orphan'");
    expect(Number(onMain[0].n), 'main was reset past it').to.equal(0);
    const [found] = await c.query<Row[]>("SELECT commit_hash FROM dolt_commits WHERE message = 'doltgate-outcome:orphan'");
    expect(found.map((r) => r.commit_hash)).to.deep.equal([hash]);
    const [holders] = await c.query<Row[]>('SELECT name FROM dolt_branches WHERE hash = ?', [hash]);
    expect(holders.map((r) => r.name)).to.deep.equal(['doltgate/orphaned/test']);
    // Which branches still reach it: DOLT_MERGE_BASE(commit, branch) is the commit exactly then.
    const [reach] = await c.query<Row[]>('SELECT name FROM dolt_branches WHERE DOLT_MERGE_BASE(?, name) = ? ORDER BY name', [hash, hash]);
    expect(reach.map((r) => r.name)).to.deep.equal(['doltgate/orphaned/test']);
    const [older] = await c.query<Row[]>("SELECT commit_hash FROM dolt_log WHERE message = 'doltgate-outcome:aaa'");
    const [reachOlder] = await c.query<Row[]>('SELECT name FROM dolt_branches WHERE DOLT_MERGE_BASE(?, name) = ? ORDER BY name', [older[0].commit_hash, older[0].commit_hash]);
    expect(reachOlder.map((r) => r.name), 'an older commit is reached by both').to.deep.equal(['doltgate/orphaned/test', 'main']);
    c.destroy();
  });

  it('after a SIGKILL right after COMMIT was sent, the row is there exactly when the commit with its message is', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 4; round++) {
      const c = await cluster.connect(cluster.primary);
      const id = 100 + round;
      const message = `doltgate-outcome:kill-${round}`;
      await c.query('BEGIN');
      for (let i = 0; i < 50; i++) await c.query('INSERT INTO t VALUES (?, ?)', [id * 1000 + i, 'bulk']);
      await c.query('INSERT INTO t VALUES (?, ?)', [id, 'killed']);
      await c.query('SET SESSION dolt_transaction_commit_message = ?', [message]);
      const committing = c.query('COMMIT').then(() => 'answered', () => 'lost');
      // Later each round: before, during and after the commit itself.
      await new Promise((resolve) => setTimeout(resolve, round * 3));
      await cluster.primary.server.kill9();
      const answer = await committing;
      c.destroy();
      await cluster.primary.server.start();
      const rows = await cluster.query<{ n: number }>(cluster.primary, 'SELECT COUNT(*) AS n FROM t WHERE id = ?', [id]);
      const present = Number(rows[0].n) === 1;
      const committed = (await commitsWith(message)) === 1;
      expect(present, `round ${round}: row present ⇔ commit with the message exists`).to.equal(committed);
      if (answer === 'answered') expect(committed, `round ${round}: an answered COMMIT is committed`).to.equal(true);
      outcomes.push(`${answer}/${committed ? 'committed' : 'not committed'}`);
    }
    // Which outcomes happen depends on timing; what must hold is the equivalence above.
    expect(outcomes).to.have.length(4);
  });
});
