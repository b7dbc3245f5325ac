/**
 * `npm run bench:outcome`: what outcome tokens cost a write. NOT a test — it prints numbers and
 * ratios and never fails on them.
 *
 * One real Dolt primary (dolt_transaction_commit on, pushing to a file remote, as the agent runs
 * it) and two proxies in this process in front of it: `outcome_tokens: true` (the default: one
 * SET round trip before each statement that can commit) and `false`. Writers run autocommit
 * INSERTs, then 3-statement transactions, through each proxy in turn, rounds interleaved so drift
 * spreads over both. Prints writes/s, p50/p95 latency, and the on/off ratios.
 *
 * Environment: BENCH_SECONDS (per run, default 8), BENCH_ROUNDS (default 3), BENCH_WRITERS
 * (default 4). Every process it starts it stops by PID (the test bed's cleanup), also on failure.
 */

import mysql from 'mysql2/promise';
import { hashProxyPassword, parseProxyConfig } from '../proxy/config';
import { silentLogger } from '../common/logger';
import { startProxy, type RunningProxy } from '../proxy/proxy-main';
import { TestDoltCluster } from '../test/bed/dolt-cluster';
import { registerCleanup, runCleanups } from '../test/bed/cleanup';
import { envInt } from './bench-env';

type Shape = 'autocommit' | 'transaction';

interface Run {
  writes: number;
  latenciesMs: number[];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function drive(port: number, shape: Shape, writers: number, seconds: number, base: number): Promise<Run> {
  const deadline = Date.now() + seconds * 1000;
  const latencies: number[] = [];
  let next = base;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'secret', database: 'bench' });
      try {
        // Bounded in time (deadline) and in count (at most one million per writer).
        for (let n = 0; n < 1_000_000 && Date.now() < deadline; n++) {
          const id = next++;
          const started = performance.now();
          if (shape === 'autocommit') {
            await c.query('INSERT INTO t VALUES (?, ?)', [id, 'x']);
          } else {
            await c.query('BEGIN');
            await c.query('INSERT INTO t VALUES (?, ?)', [id, 'y']);
            await c.query('UPDATE t SET v = ? WHERE id = ?', ['z', id]);
            await c.query('COMMIT');
          }
          latencies.push(performance.now() - started);
        }
      } finally {
        c.destroy();
      }
    }),
  );
  return { writes: latencies.length, latenciesMs: latencies };
}

async function main(): Promise<void> {
  const seconds = envInt('BENCH_SECONDS', 8, 1);
  const rounds = envInt('BENCH_ROUNDS', 3, 1);
  const writers = envInt('BENCH_WRITERS', 4, 1);
  const say = (line: string): void => console.log(line);
  say(`bench:outcome — ${rounds} rounds × ${seconds} s, ${writers} writers, one Dolt primary`);
  const cluster = await TestDoltCluster.start({ nodes: 1, databases: ['bench'] });
  await cluster.query(cluster.primary, 'CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(8))');
  const user = { name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' };
  const proxies: Record<'on' | 'off', RunningProxy> = {
    on: await startProxy(parseProxyConfig({ listen: { port: 0 }, users: [user], outcome_tokens: true, static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } } }), silentLogger),
    off: await startProxy(parseProxyConfig({ listen: { port: 0 }, users: [user], outcome_tokens: false, static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } } }), silentLogger),
  };
  for (const proxy of Object.values(proxies)) registerCleanup(() => proxy.stop());
  const results = new Map<string, Run>();
  let base = 1;
  for (const shape of ['autocommit', 'transaction'] as const) {
    for (let round = 0; round < rounds; round++) {
      const order: Array<'on' | 'off'> = round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      for (const leg of order) {
        const run = await drive(proxies[leg].server.address.port, shape, writers, seconds, base);
        base += 10_000_000;
        const key = `${shape}/${leg}`;
        const total = results.get(key) ?? { writes: 0, latenciesMs: [] };
        total.writes += run.writes;
        total.latenciesMs.push(...run.latenciesMs);
        results.set(key, total);
        say(`  round ${round + 1} ${shape.padEnd(11)} tokens ${leg.padEnd(3)} ${(run.writes / seconds).toFixed(1).padStart(7)} writes/s`);
      }
    }
  }
  say('');
  say('shape        tokens   writes/s   p50 ms   p95 ms');
  for (const shape of ['autocommit', 'transaction'] as const) {
    const row = (leg: 'on' | 'off'): { rate: number; p50: number; p95: number } => {
      const r = results.get(`${shape}/${leg}`) as Run;
      const sorted = [...r.latenciesMs].sort((a, b) => a - b);
      return { rate: r.writes / (seconds * rounds), p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
    };
    const on = row('on');
    const off = row('off');
    for (const [leg, r] of [['off', off], ['on', on]] as const) say(`${shape.padEnd(12)} ${leg.padEnd(6)} ${r.rate.toFixed(1).padStart(10)} ${r.p50.toFixed(2).padStart(8)} ${r.p95.toFixed(2).padStart(8)}`);
    say(`${''.padEnd(12)} on/off ${(on.rate / off.rate).toFixed(2).padStart(9)}x ${(on.p50 / off.p50).toFixed(2).padStart(7)}x ${(on.p95 / off.p95).toFixed(2).padStart(7)}x`);
  }
}

main()
  .catch((error: Error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => runCleanups());
