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
import { mysql2Database, mysql2Suite, prepareMysql2, runMysql2 } from '../drivers/mysql2';
import { preparePyMySQL, pymysqlSuite, runPyMySQL } from '../drivers/pymysql';
import { compareRuns, type Counts, type SuiteComparison, type SuiteRun } from '../drivers/suite-results';

const counts = (c: Counts): string => `${c.pass} passed / ${c.fail} failed / ${c.skip} skipped`;

function describeComparison(suite: string, comparison: SuiteComparison): string {
  const lines = [`${suite}: direct ${counts(comparison.direct)}; through the proxy ${counts(comparison.proxy)}`];
  for (const { test, why } of comparison.explained) lines.push(`  known difference ${test}: ${why}`);
  for (const test of comparison.betterThroughProxy) lines.push(`  fails only direct: ${test}`);
  for (const test of comparison.stale) lines.push(`  listed as a difference but no longer differs: ${test} (remove it from known-differences.ts)`);
  for (const test of comparison.unexplained) lines.push(`  FAILS ONLY THROUGH THE PROXY: ${test}`);
  return lines.join('\n');
}

type Rerun = (target: MysqlTarget, only: readonly string[]) => Promise<{ results: SuiteRun; log: string }>;

/**
 * Some of the suites' tests are flaky against Dolt itself: a proxy-only failure counts only when
 * it fails through the proxy again and passes straight to Dolt again, run on its own.
 */
async function confirmByRerun(comparison: SuiteComparison, rerun: Rerun, direct: MysqlTarget, proxied: MysqlTarget): Promise<{ comparison: SuiteComparison; log: string }> {
  if (comparison.unexplained.length === 0) return { comparison, log: '' };
  const again = { direct: await rerun(direct, comparison.unexplained), proxy: await rerun(proxied, comparison.unexplained) };
  const flaky = comparison.unexplained.filter((test) => again.proxy.results.get(test) !== 'fail' || again.direct.results.get(test) !== 'pass');
  if (flaky.length > 0) process.stdout.write(`  differed once, not when run again (flaky against Dolt too): ${flaky.join(', ')}\n`);
  return { comparison: { ...comparison, unexplained: comparison.unexplained.filter((test) => !flaky.includes(test)) }, log: again.proxy.log };
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
    for (const db of ['gotest', 'test1', 'test2', mysql2Database]) await queryNode(cluster, primary, `CREATE DATABASE IF NOT EXISTS ${db}`);
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
    const confirmed = await confirmByRerun(compareRuns(goSqlDriverSuite, straight.results, through.results, knownDifferences), (target, only) => runGoSqlDriver(dir, target, { only }), direct, proxied);
    const comparison = confirmed.comparison;
    through.log += confirmed.log;
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
    const { comparison } = await confirmByRerun(compareRuns(pymysqlSuite, straight.results, through.results, knownDifferences), (target, only) => runPyMySQL(dir, target, { only }), direct, proxied);
    process.stdout.write(`${describeComparison(pymysqlSuite, comparison)}\n`);
    expect(comparison.direct.pass, straight.log.slice(-3000)).to.be.greaterThan(100);
    expect(comparison.unexplained, through.log.slice(-6000)).to.deep.equal([]);
    expect(comparison.stale, 'listed differences that no longer differ').to.deep.equal([]);
  });

  it(`${mysql2Suite}: no test fails only through the proxy beyond the explained list`, async () => {
    const dir = await prepareMysql2();
    const straight = await runMysql2(dir, direct);
    const through = await runMysql2(dir, proxied);
    const { comparison } = await confirmByRerun(compareRuns(mysql2Suite, straight.results, through.results, knownDifferences), (target, only) => runMysql2(dir, target, { only }), direct, proxied);
    process.stdout.write(`${describeComparison(mysql2Suite, comparison)}\n`);
    // The suite ran for real: most of its test files pass straight to Dolt.
    expect(comparison.direct.pass, straight.log.slice(-3000)).to.be.greaterThan(40);
    const failures = comparison.unexplained.map((test) => through.log.slice(through.log.indexOf(`=== ${test}:`), through.log.indexOf(`=== ${test}:`) + 2000)).join('\n');
    expect(comparison.unexplained, failures).to.deep.equal([]);
    expect(comparison.stale, 'listed differences that no longer differ').to.deep.equal([]);
  });
});
