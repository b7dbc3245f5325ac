/**
 * mysql2's own test suite. Its npm releases from 1.0.0-rc.10 on ship no tests (and no newer
 * release has them: the suite lives only in its git repository); 1.0.0-rc.9's tarball still has
 * test/unit and test/integration, one file per test, each a Node program whose exit code is its
 * verdict (the suite's runner, urun, runs them one by one the same way). So that is what runs:
 * the driver and its tests from the same tarball, on this machine's Node, each file with a time
 * limit. The tarball and its dependencies come from the npm registry, once, into
 * ~/.cache/doltgate/node-mysql2-suite.
 *
 * Read before running (no test may reach beyond 127.0.0.1): every connection takes
 * test/common.js's config, from MYSQL_HOST / MYSQL_PORT / MYSQL_USER / MYSQL_PASSWORD (set to the
 * target; MYSQL_PASSWORD is read only when CI is set, so CI is set too); 'localhost' appears only
 * inside GRANT statements. Compression (MYSQL_USE_COMPRESSION) is not asked for.
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import type { MysqlTarget } from './go-sql-driver';
import type { SuiteRun, TestOutcome } from './suite-results';

export const mysql2Suite = 'mysql2@1.0.0-rc.9';
const version = '1.0.0-rc.9';
/** The database the suite's config names (test/common.js). */
export const mysql2Database = 'test';

function run(command: string, args: string[], options: { cwd?: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env }, (error, stdout, stderr) => {
      if (error && typeof (error as { code?: unknown }).code !== 'number' && !(error as { killed?: boolean }).killed) return reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
      resolve({ code: error ? Number((error as { code?: number }).code ?? 124) : 0, output: stdout + stderr });
    });
  });
}

/** The unpacked package with its dependencies installed (fetched once); returns its dir. */
export async function prepareMysql2(): Promise<string> {
  const cache = join(homedir(), '.cache', 'doltgate', 'node-mysql2-suite');
  const dir = join(cache, 'package');
  if (existsSync(join(dir, 'node_modules', '.doltgate-installed'))) return dir;
  await mkdir(cache, { recursive: true });
  const packed = await run('npm', ['pack', `mysql2@${version}`, '--silent', '--pack-destination', cache], { timeoutMs: 300_000 });
  const tarball = (await readdir(cache)).find((name) => name === `mysql2-${version}.tgz`);
  if (tarball === undefined) throw new Error(`npm pack did not fetch mysql2 ${version}: ${packed.output}`);
  const unpacked = await run('tar', ['xzf', join(cache, tarball), '-C', cache], { timeoutMs: 60_000 });
  if (unpacked.code !== 0) throw new Error(`unpacking ${tarball} failed: ${unpacked.output}`);
  // Its dependencies and the test helpers (assert-diff, portfinder, progress; urun/utest are
  // installed too, unused), no install scripts.
  const installed = await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', '--omit=optional'], { cwd: dir, timeoutMs: 600_000 });
  if (installed.code !== 0) throw new Error(`installing mysql2 ${version}'s dependencies failed: ${installed.output.slice(-3000)}`);
  await writeFile(join(dir, 'node_modules', '.doltgate-installed'), `${version}\n`);
  return dir;
}

async function testFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/^test-.*\.js$/.test(entry.name)) found.push(relative(dir, path));
    }
  };
  await walk(join(dir, 'test'));
  return found.sort();
}

/** One run of the suite against `target` (which has a database `test`): outcome per test file. */
export async function runMysql2(dir: string, target: MysqlTarget, options: { only?: readonly string[]; perTestMs?: number } = {}): Promise<{ results: SuiteRun; log: string }> {
  const env = { ...process.env, CI: '1', MYSQL_HOST: target.host, MYSQL_PORT: String(target.port), MYSQL_USER: target.user, MYSQL_PASSWORD: target.password, MYSQL_DATABASE: mysql2Database, NODE_NO_WARNINGS: '1' };
  delete (env as Record<string, string | undefined>).MYSQL_USE_COMPRESSION;
  const results = new Map<string, TestOutcome>();
  const log: string[] = [];
  for (const file of options.only ?? (await testFiles(dir))) {
    const ran = await run(process.execPath, [file], { cwd: dir, timeoutMs: options.perTestMs ?? 30_000, env });
    const outcome: TestOutcome = ran.code === 0 ? 'pass' : 'fail';
    results.set(file, outcome);
    log.push(`=== ${file}: ${outcome}${ran.code === 0 ? '' : ` (exit ${ran.code})`}\n${ran.code === 0 ? '' : ran.output.slice(-2000)}`);
  }
  return { results, log: log.join('\n') };
}
