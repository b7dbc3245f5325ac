/**
 * Issue 12, through a real cluster (etcd, agents, Dolt): ordinary load never fails the cluster
 * over. 1100 application sessions each run statements on the primary and stay open; the proxy
 * multiplexes them over its per-node budget, so Dolt never fills up, the agents' health checks
 * never fail and the topology never changes. A proxy whose budget is used up by open
 * transactions makes the next statement wait, then answers 1040 — and serves it once a
 * transaction ends.
 */

import { expect } from 'chai';
import mysql from 'mysql2/promise';
import type { LocalCluster, LocalProxy } from '../../sandbox/local-cluster';
import { registerCleanup } from '../bed/cleanup';
import { queryNode, startLocalCluster } from '../bed/local-cluster';
import { scrapeSum } from '../bed/metrics-scrape';

const SESSIONS = 1100;
const ER_CON_COUNT_ERROR = 1040;

async function healthFailures(cluster: LocalCluster): Promise<number> {
  let sum = 0;
  for (const agent of cluster.agents) sum += await scrapeSum(agent.metricsPort, 'doltgate_agent_health_check_failures_total');
  return sum;
}

/** Runs `work` over `items` with at most `width` at a time. */
async function inWaves<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(work));
}

describe('connection budget and multiplexing (real processes)', function () {
  this.timeout(300_000);
  let cluster: LocalCluster;
  let primary: string;

  before(async () => {
    cluster = await startLocalCluster();
    primary = await cluster.waitForStablePrimary(60_000);
    await queryNode(cluster, primary, 'CREATE TABLE IF NOT EXISTS budget (session INT, round INT, PRIMARY KEY (session, round))');
  });
  after(async () => cluster?.stop());

  it(`${SESSIONS} open sessions running writes on the primary: 0 topology changes, 0 health-check failures, every statement served or refused with 1040 after a bounded wait (and then not run), backend connections within the budget`, async () => {
    const budget = 200;
    const proxy = await cluster.startProxy({ name: 'app', password: 'pw' }, { max_client_connections: SESSIONS + 100, pool: { max_connections_per_node: budget } });
    const before = await cluster.snapshot();
    const failuresBefore = await healthFailures(cluster);
    const sessions: mysql.Connection[] = [];
    registerCleanup(() => sessions.forEach((s) => s.destroy()));
    const ids = [...Array(SESSIONS).keys()];
    await inWaves(ids, 100, async (id) => {
      sessions[id] = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw', database: 'app', connectTimeout: 20_000 });
    });
    let peakDolt = 0;
    let peakProxy = 0;
    const sample = async (): Promise<void> => {
      const [row] = await queryNode<{ n: number }>(cluster, primary, 'SELECT COUNT(*) AS n FROM information_schema.processlist');
      peakDolt = Math.max(peakDolt, Number(row.n));
      peakProxy = Math.max(peakProxy, await scrapeSum(proxy.metricsPort, 'doltgate_proxy_backend_connections', { backend: primary }));
    };
    const failures: string[] = [];
    const refused = new Set<number>();
    const round = async (what: string, run: (id: number) => Promise<unknown>): Promise<void> => {
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          await sample();
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();
      const started = Date.now();
      const refusedBefore = refused.size;
      // Every session at once: the statements queue for the budget.
      await Promise.all(
        ids.map((id) =>
          run(id).catch((error: Error & { errno?: number }) => {
            if (error.errno === ER_CON_COUNT_ERROR && what === 'inserts') refused.add(id);
            else failures.push(`${what} ${id}: ${error.message}`);
          }),
        ),
      );
      console.log(`      ${SESSIONS} ${what} at once: ${Date.now() - started} ms, ${refused.size - refusedBefore} refused (1040) after the bounded wait`);
      sampling = false;
      await sampler;
    };
    // Writes: Dolt commits (and pushes) them one by one, ~100/s here, so the last in the queue
    // outwait queue_timeout_ms: they get 1040 and did not run.
    await round('inserts', (id) => sessions[id].query('INSERT INTO budget VALUES (?, 1)', [id]));
    // Locking reads run on the primary too, and fast: every one is served.
    await round('locking reads', (id) => sessions[id].query('SELECT * FROM budget WHERE session = ? FOR UPDATE', [id]));
    expect(failures, 'statements that failed (other than inserts refused with 1040)').to.deep.equal([]);
    const rows = await queryNode<{ session: number }>(cluster, primary, 'SELECT session FROM budget WHERE round = 1');
    const stored = new Set(rows.map((r) => r.session));
    for (const id of refused) expect(stored.has(id), `insert ${id} was refused (1040), so it must not have run`).to.equal(false);
    expect(stored.size, 'every insert that was not refused is stored').to.equal(SESSIONS - refused.size);
    console.log(`      peak backend connections to the primary: proxy ${peakProxy} (budget ${budget}), Dolt processlist ${peakDolt}`);
    expect(peakProxy, "the proxy's connections to the primary (peak of samples)").to.be.at.most(budget).and.above(0);
    // The agent's kept health connection, the sampler's own and a few more of the agent's.
    expect(peakDolt, "Dolt's processlist (peak of samples)").to.be.at.most(budget + 10);
    const after = await cluster.snapshot();
    expect(after.topology?.modRevision, 'the topology was never republished').to.equal(before.topology?.modRevision);
    expect(after.topology?.value.primary).to.equal(primary);
    expect(await healthFailures(cluster) - failuresBefore, 'agent health-check failures during the load').to.equal(0);
    expect(await scrapeSum(proxy.metricsPort, 'doltgate_proxy_sessions_pinned'), 'sessions holding connections between statements').to.equal(0);
    sessions.forEach((s) => s.destroy());
  });

  it('a budget used up by open transactions: the next statement waits, gets 1040 after queue_timeout_ms, and is served once a transaction ends; the metrics say why', async () => {
    const proxy: LocalProxy = await cluster.startProxy({ name: 'app', password: 'pw' }, { pool: { max_connections_per_node: 3, queue_timeout_ms: 400 } });
    const connect = () => mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw', database: 'app' });
    const open: mysql.Connection[] = [];
    registerCleanup(() => open.forEach((s) => s.destroy()));
    for (let i = 0; i < 3; i++) {
      const s = await connect();
      open.push(s);
      await s.query('BEGIN');
      await s.query('INSERT INTO budget VALUES (?, 100)', [10_000 + i]);
    }
    expect(await scrapeSum(proxy.metricsPort, 'doltgate_proxy_sessions_pinned', { reason: 'transaction' })).to.equal(3);
    expect(await scrapeSum(proxy.metricsPort, 'doltgate_proxy_backend_connections', { backend: primary, state: 'in_use' })).to.equal(3);
    const late = await connect();
    open.push(late);
    const started = Date.now();
    const refused = await late.query('INSERT INTO budget VALUES (20000, 100)').then(() => null, (error: Error & { errno?: number }) => error);
    expect(refused?.errno, refused?.message).to.equal(ER_CON_COUNT_ERROR);
    expect(refused?.message).to.match(/doltgate: no backend connection to .* free/);
    expect(Date.now() - started).to.be.at.least(350);
    expect(await scrapeSum(proxy.metricsPort, 'doltgate_proxy_backend_budget_exhausted_total', { backend: primary })).to.be.at.least(1);
    expect(await scrapeSum(proxy.metricsPort, 'doltgate_proxy_backend_queue_wait_seconds_count', { outcome: 'timeout' })).to.equal(1);
    // The refused statement never ran; the same one now waits and is served when a transaction commits.
    const waiting = late.query('INSERT INTO budget VALUES (20000, 100)');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await open[0].query('COMMIT');
    await waiting;
    const [row] = await queryNode<{ n: number }>(cluster, primary, 'SELECT COUNT(*) AS n FROM budget WHERE session = 20000');
    expect(Number(row.n)).to.equal(1);
    for (const s of open.slice(1, 3)) await s.query('ROLLBACK');
  });
});
