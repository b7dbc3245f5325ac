/**
 * Outcome tokens end to end (real etcd, three Dolt nodes with agents, a proxy): the primary's
 * Dolt is killed between a COMMIT and its answer; the client's 2013 carries a token, and once the
 * cluster has a primary again `SELECT doltgate_outcome('<token>')` through the proxy says
 * committed / set aside / not committed — and that is what the data says: the row is on the
 * primary exactly when the answer is "committed". The first round freezes Dolt before the proxy
 * has armed the COMMIT (it is never sent: the client hears "rolled back"); later rounds kill it
 * at different delays, so both sides of the race are exercised. A kill that lands while the
 * token is still being armed is round 0's case again (never sent, "rolled back", no row): rounds
 * go on until three COMMITs were lost after they were sent.
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { eventually } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';
import { registerCleanup } from '../bed/cleanup';
import type { LocalCluster, LocalProxy } from '../../sandbox/local-cluster';
import * as outcomeCli from '../../cli/outcome';
import { memoryIo } from '../../cli/cli-io';

type Row = RowDataPacket & Record<string, unknown>;

describe('outcome token: a COMMIT whose answer was lost can be resolved (real cluster)', function () {
  this.timeout(300_000);
  let cluster: LocalCluster;
  let proxy: LocalProxy;
  const connect = async (): Promise<mysql.Connection> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw', database: 'app', connectTimeout: 20_000 });
    registerCleanup(() => c.destroy());
    return c;
  };

  /** `doltgate outcome <token> --json` against the cluster's agents. */
  const askCli = async (token: string): Promise<{ code: number; verdict: string; detail: string }> => {
    const io = memoryIo();
    const code = await outcomeCli.runCli([token, '--json', '--etcd', cluster.etcd.endpoints.join(','), '--cluster', cluster.cluster], io, cluster.cliEnv());
    const parsed = JSON.parse(io.text()) as { verdict: string; detail: string };
    return { code, verdict: parsed.verdict, detail: parsed.detail };
  };

  before(async () => {
    cluster = await startLocalCluster();
    const primary = await cluster.waitForStablePrimary(60_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))');
    proxy = await cluster.startProxy({ name: 'app', password: 'pw' }, { hold: { timeout_ms: 30_000 } });
  });

  it('a token on every lost COMMIT, and its verdict matches the data', async () => {
    const verdicts: string[] = [];
    let tokenRounds = 0;
    for (let round = 0; round < 10 && tokenRounds < 3; round++) {
      const primary = await cluster.waitForStablePrimary(60_000);
      const before = (await cluster.snapshot()).topology?.value.epoch as number;
      const c = await connect();
      const id = 1000 + round;
      await c.query('BEGIN');
      for (let i = 0; i < 40; i++) await c.query('INSERT INTO t VALUES (?, ?)', [id * 100 + i, 'bulk']);
      await c.query('INSERT INTO t VALUES (?, ?)', [id, 'the row']);
      const pid = (await cluster.doltPid(primary)) as number;
      // Round 0 freezes Dolt first: the token's SET waits unread and dies with it. Later rounds
      // kill it later and later during the commit.
      if (round === 0) process.kill(pid, 'SIGSTOP');
      const committing = c.query('COMMIT').then(() => null, (error: { errno?: number; message: string }) => error);
      await new Promise((resolve) => setTimeout(resolve, round === 0 ? 200 : (round - 1) * 4));
      process.kill(pid, 'SIGKILL');
      const lost = await committing;
      c.destroy();
      // Ask once the cluster is stable at a newer epoch: failed over, or the old primary recovered
      // in place (the keeper restarts its Dolt).
      await eventually(async () => {
        const topology = (await cluster.snapshot()).topology?.value;
        return topology !== undefined && topology.epoch > before && topology.state === 'stable';
      }, { within: 60_000, what: `a stable topology past epoch ${before}` });
      if (lost === null) {
        verdicts.push('answered');
        continue;
      }
      if (round === 0 || lost.errno === 1213) {
        // Frozen (or killed) before the proxy armed the COMMIT's token: the COMMIT was never
        // sent, and the client hears that its transaction is gone, not "unknown".
        expect(lost.errno, lost.message).to.equal(1213);
        expect(lost.message).to.match(/transaction rolled back/);
        const after = await cluster.waitForStablePrimary(60_000);
        expect((await queryNode<{ n: number }>(cluster, after, 'SELECT COUNT(*) AS n FROM t WHERE id = ?', [id]))[0].n).to.equal(0);
        verdicts.push('rolled back');
        continue;
      }
      expect(lost.errno, lost.message).to.equal(2013);
      tokenRounds++;
      const token = /outcome token (\S+):/.exec(lost.message)?.[1];
      expect(token, lost.message).to.be.a('string');
      expect(token?.startsWith(`${primary}/`), 'the token names the node that ran it').to.equal(true);

      const now = await cluster.waitForStablePrimary(60_000);
      const asker = await connect();
      const answer: Row = await eventually(async () => {
        const [rows] = await asker.query<Row[]>(`SELECT doltgate_outcome('${token}')`);
        return rows[0].outcome === 'unknown' ? null : rows[0];
      }, { within: 60_000, what: `a verdict for ${token}` }) as Row;
      asker.destroy();
      const present = (await queryNode<{ n: number }>(cluster, now, 'SELECT COUNT(*) AS n FROM t WHERE id = ?', [id]))[0].n === 1;
      expect(answer.outcome, `${answer.outcome}: ${answer.detail}`).to.be.oneOf(['committed', 'set aside', 'not committed']);
      expect(present, `round ${round}: ${answer.outcome} (${answer.detail}) and the row is ${present ? '' : 'not '}on ${now}`).to.equal(answer.outcome === 'committed');
      // The CLI asks the agents and judges the same way.
      const viaCli = await askCli(token as string);
      expect(viaCli.verdict, viaCli.detail).to.equal(answer.outcome);
      expect(viaCli.code).to.equal(0);
      verdicts.push(String(answer.outcome));
    }
    expect(tokenRounds, `verdicts: ${verdicts.join(', ')}`).to.be.at.least(2);
    // eslint-disable-next-line no-console
    console.log(`      verdicts: ${verdicts.join(', ')}`);
  });

  it('answers a malformed token with 1210, and a token nobody issued with "not committed"', async () => {
    const c = await connect();
    const bad = await c.query("SELECT doltgate_outcome('nope')").then(() => null, (error: { errno?: number }) => error);
    expect(bad?.errno).to.equal(1210);
    const primary = await cluster.waitForStablePrimary(60_000);
    const [rows] = await c.query<Row[]>(`SELECT doltgate_outcome('${primary}/0000000000zz')`);
    expect(rows[0].outcome, String(rows[0].detail)).to.equal('not committed');
    c.destroy();
    expect((await askCli(`${primary}/0000000000zz`)).verdict).to.equal('not committed');
    const io = memoryIo();
    expect(await outcomeCli.runCli(['nope', '--etcd', cluster.etcd.endpoints.join(','), '--cluster', cluster.cluster], io, cluster.cliEnv()), 'a malformed token is a usage error').to.equal(2);
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).text();
    expect(metrics).to.match(/doltgate_proxy_outcome_tokens_total\{[^}]*\} [1-9]/);
    expect(metrics).to.match(/doltgate_proxy_outcome_queries_total\{verdict="not committed"[^}]*\} [1-9]/);
  });
});
