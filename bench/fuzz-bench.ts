/**
 * `npm run bench:fuzz`: the protocol fuzzer (bench/fuzz/) against a real proxy — `doltgate proxy`
 * in its own process, so a crash is an exit, not a lost test run — in front of one real Dolt node.
 * Workers mutate handshake responses (before login) and commands (after a real login) until
 * FUZZ_INPUTS inputs (default 10,000,000) are spent or FUZZ_MINUTES (default 90) have passed, and
 * print progress every 10 s, then the totals: inputs, answers, crashes, hangs, wrong answers and
 * login bypasses, with the first failures as replayable hex, and the proxy's RSS before and after.
 *
 * FUZZ_SEED (default 20261203) makes a run reproducible; FUZZ_CONNECTIONS (default 8) workers,
 * FUZZ_PRE_LOGIN_PERCENT (default 25) of them before login. Exit 1 when anything failed.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ManagedChild } from '../common/child-process';
import { freePort } from '../common/free-port';
import { hashProxyPassword } from '../proxy/config';
import { registerCleanup, runCleanups, tempDir } from '../test/bed/cleanup';
import { TestDoltCluster } from '../test/bed/dolt-cluster';
import { envInt } from './bench-env';
import { rssKiB } from './proc-rss';
import { runFuzz, type FuzzReport } from './fuzz/fuzz-run';
import { waitForPort } from './wait-for-port';

const say = (line: string): void => {
  process.stdout.write(line + '\n');
};

function line(r: FuzzReport): string {
  const rate = r.inputs / Math.max(1, r.elapsedMs / 1000);
  return `${(r.elapsedMs / 1000).toFixed(0).padStart(6)} s  ${r.inputs.toLocaleString('en-US').padStart(12)} inputs (${rate.toFixed(0)}/s; ${r.preLogin.toLocaleString('en-US')} before login, ${r.postLogin.toLocaleString('en-US')} after)  answers: ${r.ok.toLocaleString('en-US')} ok, ${r.errors.toLocaleString('en-US')} err, ${r.closedByProxy.toLocaleString('en-US')} closed; ${r.canaries.toLocaleString('en-US')} canaries  failures: ${r.crashes} crash, ${r.hangs} hang, ${r.wrongAnswers} wrong, ${r.bypasses} bypass`;
}

async function main(): Promise<number> {
  const inputs = envInt('FUZZ_INPUTS', 10_000_000, 1);
  const minutes = envInt('FUZZ_MINUTES', 90, 1);
  const seed = envInt('FUZZ_SEED', 20261203, 0);
  const connections = envInt('FUZZ_CONNECTIONS', 8, 1);
  const prePercent = envInt('FUZZ_PRE_LOGIN_PERCENT', 25, 0);
  say(`bench:fuzz — seed ${seed}, up to ${inputs.toLocaleString('en-US')} inputs or ${minutes} min, ${connections} workers (${prePercent}% before login)`);

  const dir = await tempDir('fuzz-bench');
  const cluster = await TestDoltCluster.start({ nodes: 1, databases: ['fuzzdb'] });
  registerCleanup(() => cluster.stop());
  await cluster.query(cluster.primary, 'CREATE TABLE fuzz (id INT PRIMARY KEY, v TEXT)');
  await cluster.query(cluster.primary, "INSERT INTO fuzz VALUES (1, 'one'), (2, 'two')");

  const port = await freePort();
  const password = 'fuzz-password';
  const config = join(dir, 'proxy.yaml');
  await writeFile(
    config,
    stringify({
      listen: { host: '127.0.0.1', port },
      handshake_timeout_ms: 2000,
      query_timeout_ms: 5000,
      users: [{ name: 'fuzz', ...hashProxyPassword(password), backend_user: 'root', backend_password: '' }],
      static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } },
      // The fuzzer's own wrong passwords must not slow it down; throttling has its own test.
      login: { failed_user_threshold: 1_000_000, failed_address_threshold: 1_000_000, max_handshaking_per_address: 2048 },
    }),
  );
  const proxy = new ManagedChild({ command: process.execPath, args: [join(__dirname, '..', 'bin', 'doltgate.js'), 'proxy', '--config', config], logFile: join(dir, 'proxy.log') });
  registerCleanup(() => proxy.stop(5000).then(() => undefined));
  await proxy.start();
  await waitForPort(port, proxy, 15_000);
  const rssBefore = rssKiB(proxy.pid as number);

  const report = await runFuzz({
    host: '127.0.0.1',
    port,
    user: 'fuzz',
    password,
    database: 'fuzzdb',
    seed,
    inputs,
    connections,
    preLoginShare: prePercent / 100,
    answerTimeoutMs: 10_000,
    deadline: performance.now() + minutes * 60_000,
    interrupted: () => interrupted,
    // The proxy stopped by our own cleanup is not a crash.
    alive: () => proxy.running || interrupted,
    onProgress: (r) => say(line(r)),
    onFailure: (f) => say(`  FAILURE ${f}`),
  });
  const rssAfter = proxy.running ? rssKiB(proxy.pid as number) : 0;
  say(line(report));
  say(`proxy RSS: ${(rssBefore / 1024).toFixed(0)} MiB before, ${(rssAfter / 1024).toFixed(0)} MiB after; still running: ${proxy.running}`);
  for (const f of report.failures) say(`  ${f}`);
  if (interrupted) {
    say(`RESULT: interrupted after ${report.inputs.toLocaleString('en-US')} inputs (${report.crashes + report.hangs + report.wrongAnswers + report.bypasses} failures so far); no verdict`);
    return 130;
  }
  const failed = report.crashes + report.hangs + report.wrongAnswers + report.bypasses > 0 || !proxy.running;
  say(failed ? 'RESULT: failures found (see above; replay with the same FUZZ_SEED)' : `RESULT: ${report.inputs.toLocaleString('en-US')} inputs, 0 crashes, 0 hangs, 0 wrong answers, 0 bypasses`);
  return failed ? 1 : 0;
}

/** Set by Ctrl-C or a kill: the workers finish their inputs in flight, then the run reports. */
let interrupted = false;

// Ctrl-C or a kill ends the run (a second one ends it at once); either way the proxy and Dolt it
// started are stopped, as at a normal end.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      void runCleanups().finally(() => process.exit(130));
      return;
    }
    interrupted = true;
    say(`bench:fuzz: ${signal}, finishing the inputs in flight (again to stop at once)`);
  });
}

main().then(
  async (code) => {
    await runCleanups();
    process.exit(code);
  },
  async (error: unknown) => {
    process.stderr.write(`bench:fuzz failed: ${(error as Error).stack ?? String(error)}\n`);
    await runCleanups();
    process.exit(2);
  },
);
