/**
 * Issue 16: the drivers' own test suites, each run straight to the primary's Dolt and then through
 * the proxy in front of the whole cluster (primary and two replicas, reads spread over them), with
 * the same user and password both ways. Fails on any test that fails only through the proxy and is
 * not on the explained list (test/drivers/known-differences.ts). `npm run test:drivers` runs just
 * this file.
 */

import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalCluster } from '../../sandbox/local-cluster';
import { tempDir } from '../bed/cleanup';
import { queryNode, startLocalCluster } from '../bed/local-cluster';
import { goRunOutput, goSqlDriverSuite, goTestOutput, prepareGoSqlDriver, runGoSqlDriver, type MysqlTarget } from '../drivers/go-sql-driver';
import { knownDifferences } from '../drivers/known-differences';
import { preparePyMySQL, pymysqlSuite, runPyMySQL } from '../drivers/pymysql';
import { compareRuns, type Counts, type SuiteComparison } from '../drivers/suite-results';

const counts = (c: Counts): string => `${c.pass} passed / ${c.fail} failed / ${c.skip} skipped`;

function describeComparison(suite: string, comparison: SuiteComparison): string {
  const lines = [`${suite}: direct ${counts(comparison.direct)}; through the proxy ${counts(comparison.proxy)}`];
  for (const { test, why } of comparison.explained) lines.push(`  known difference ${test}: ${why}`);
  for (const test of comparison.betterThroughProxy) lines.push(`  fails only direct: ${test}`);
  for (const test of comparison.stale) lines.push(`  listed as a difference but no longer differs: ${test} (remove it from known-differences.ts)`);
  for (const test of comparison.unexplained) lines.push(`  FAILS ONLY THROUGH THE PROXY: ${test}`);
  return lines.join('\n');
}

describe("drivers' own test suites, direct to Dolt and through the proxy (real processes)", function () {
  this.timeout(1_800_000);
  let cluster: LocalCluster;
  let direct: MysqlTarget;
  let proxied: MysqlTarget;

  before(async () => {
    cluster = await startLocalCluster();
    const primary = await cluster.waitForStablePrimary(30_000);
    const proxy = await cluster.startProxy({ name: 'root', password: '' });
    for (const db of ['gotest', 'test1', 'test2']) await queryNode(cluster, primary, `CREATE DATABASE IF NOT EXISTS ${db}`);
    direct = { host: '127.0.0.1', port: cluster.agent(primary).sqlPort, user: 'root', password: '' };
    proxied = { host: '127.0.0.1', port: proxy.port, user: 'root', password: '' };
  });
  after(async () => cluster?.stop());

  it(`${goSqlDriverSuite}: no test fails only through the proxy beyond the explained list`, async () => {
    const work = await tempDir('drivers');
    const dir = await prepareGoSqlDriver(work);
    const straight = await runGoSqlDriver(dir, direct);
    const through = await runGoSqlDriver(dir, proxied);
    // Whole logs, for DOLTGATE_KEEP_TEST_DIRS=1.
    await writeFile(join(work, 'go-sql-driver-direct.jsonl'), straight.log);
    await writeFile(join(work, 'go-sql-driver-proxy.jsonl'), through.log);
    let comparison = compareRuns(goSqlDriverSuite, straight.results, through.results, knownDifferences);
    let flaky: string[] = [];
    if (comparison.unexplained.length > 0) {
      // Some of the suite's tests are flaky against Dolt itself: a proxy-only failure must repeat
      // through the proxy, and pass straight to Dolt again, to count.
      const again = { direct: await runGoSqlDriver(dir, direct, { only: comparison.unexplained }), proxy: await runGoSqlDriver(dir, proxied, { only: comparison.unexplained }) };
      flaky = comparison.unexplained.filter((test) => again.proxy.results.get(test) !== 'fail' || again.direct.results.get(test) !== 'pass');
      comparison = { ...comparison, unexplained: comparison.unexplained.filter((test) => !flaky.includes(test)) };
      through.log += again.proxy.log;
    }
    if (flaky.length > 0) process.stdout.write(`  differed once, not when run again (flaky against Dolt too): ${flaky.join(', ')}\n`);
    process.stdout.write(`${describeComparison(goSqlDriverSuite, comparison)}\n`);
    // What each run printed outside any test: a panic that ended it early shows here.
    for (const [name, ran] of [['direct', straight], ['through the proxy', through]] as const) process.stdout.write(`--- the ${name} run, outside any test:\n${goRunOutput(ran.log, 1500)}\n`);
    // The suite ran for real: most of its tests pass straight to Dolt.
    expect(comparison.direct.pass, straight.log.slice(-3000)).to.be.greaterThan(100);
    const evidence = [...comparison.unexplained.map((test) => `--- ${test} through the proxy:\n${goTestOutput(through.log, test)}`), `--- the run through the proxy, outside any test:\n${goRunOutput(through.log)}`].join('\n');
    expect(comparison.unexplained, evidence).to.deep.equal([]);
    expect(comparison.stale, 'listed differences that no longer differ').to.deep.equal([]);
  });

  it(`${pymysqlSuite}: no test fails only through the proxy beyond the explained list`, async () => {
    const dir = await preparePyMySQL(await tempDir('drivers'));
    const straight = await runPyMySQL(dir, direct);
    const through = await runPyMySQL(dir, proxied);
    let comparison = compareRuns(pymysqlSuite, straight.results, through.results, knownDifferences);
    if (comparison.unexplained.length > 0) {
      const again = { direct: await runPyMySQL(dir, direct, { only: comparison.unexplained }), proxy: await runPyMySQL(dir, proxied, { only: comparison.unexplained }) };
      const flaky = comparison.unexplained.filter((test) => again.proxy.results.get(test) !== 'fail' || again.direct.results.get(test) !== 'pass');
      if (flaky.length > 0) process.stdout.write(`  differed once, not when run again (flaky against Dolt too): ${flaky.join(', ')}\n`);
      comparison = { ...comparison, unexplained: comparison.unexplained.filter((test) => !flaky.includes(test)) };
    }
    process.stdout.write(`${describeComparison(pymysqlSuite, comparison)}\n`);
    expect(comparison.direct.pass, straight.log.slice(-3000)).to.be.greaterThan(100);
    expect(comparison.unexplained, through.log.slice(-6000)).to.deep.equal([]);
    expect(comparison.stale, 'listed differences that no longer differ').to.deep.equal([]);
  });
});
