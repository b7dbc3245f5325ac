/**
 * PyMySQL's own test suite. Its releases since 1.0 ship no tests on PyPI; 0.9.2's source
 * distribution still has them (pymysql/tests, with the MySQLdb-derived thirdparty ones), so that
 * is what runs: the driver and its tests from the same sdist, on this machine's Python 3. They
 * import unittest2, an old backport of unittest; a one-line module of our own stands in for it.
 * Targets come from pymysql/tests/databases.json: databases test1 and test2.
 *
 * Read before running (no test may reach beyond 127.0.0.1): every connection uses the
 * databases.json entries, except test_issues' issue 33 test, which dials localhost:1237 and
 * expects a refusal.
 */

import { execFile } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { MysqlTarget } from './go-sql-driver';
import type { SuiteRun, TestOutcome } from './suite-results';

export const pymysqlSuite = 'PyMySQL@0.9.2';
const version = '0.9.2';

function run(command: string, args: string[], options: { cwd?: string; timeoutMs: number }): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, timeout: options.timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }, (error, stdout, stderr) => {
      if (error && typeof (error as { code?: unknown }).code !== 'number') return reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
      resolve({ code: error ? Number((error as { code?: number }).code) : 0, output: stdout + stderr });
    });
  });
}

/** Downloads the sdist (once, into ~/.cache/doltgate/py) and unpacks it in `workDir`; returns the suite's dir. */
export async function preparePyMySQL(workDir: string): Promise<string> {
  const cache = join(homedir(), '.cache', 'doltgate', 'py');
  await mkdir(cache, { recursive: true });
  const fetched = await run('python3', ['-m', 'pip', 'download', '--no-binary', ':all:', '--no-deps', '--disable-pip-version-check', `PyMySQL==${version}`, '-d', cache], { timeoutMs: 300_000 });
  const sdist = (await readdir(cache)).find((name) => name.toLowerCase() === `pymysql-${version}.tar.gz`);
  if (sdist === undefined) throw new Error(`pip did not fetch PyMySQL ${version}: ${fetched.output}`);
  const unpacked = await run('tar', ['xzf', join(cache, sdist), '-C', workDir], { timeoutMs: 60_000 });
  if (unpacked.code !== 0) throw new Error(`unpacking ${sdist} failed: ${unpacked.output}`);
  const dir = join(workDir, `PyMySQL-${version}`);
  await writeFile(join(dir, 'unittest2.py'), '# doltgate: the suite imports unittest2; the standard library has it all.\nfrom unittest import *  # noqa\n');
  return dir;
}

/** One run of the suite against `target` (which has databases test1 and test2). */
export async function runPyMySQL(dir: string, target: MysqlTarget, options: { only?: readonly string[]; timeoutMs?: number } = {}): Promise<{ results: SuiteRun; log: string }> {
  const entry = (db: string, extra: Record<string, unknown>) => ({ host: target.host, port: target.port, user: target.user, passwd: target.password, db, ...extra });
  await writeFile(join(dir, 'pymysql', 'tests', 'databases.json'), JSON.stringify([entry('test1', { use_unicode: true, local_infile: true }), entry('test2', {})]));
  // The package's __init__ imports every test module: loading it runs each test once (discover would
  // find them again through those imports, two or three times over).
  const tests = ['-v', ...(options.only ?? ['pymysql.tests'])];
  const ran = await run('python3', ['-m', 'unittest', ...tests], { cwd: dir, timeoutMs: options.timeoutMs ?? 600_000 });
  return { results: parseUnittestVerbose(ran.output), log: ran.output };
}

/**
 * `python -m unittest -v` output → outcome per test id (module.Class.method). A test with a
 * docstring prints its id on one line and "<docstring> ... <result>" on the next.
 */
export function parseUnittestVerbose(output: string): Map<string, TestOutcome> {
  const results = new Map<string, TestOutcome>();
  let pending: string | null = null;
  for (const line of output.split('\n')) {
    const header = /^\S+ \(([\w.]+)\)(?: \.\.\. (.*))?$/.exec(line);
    if (header !== null) {
      if (header[2] === undefined) pending = header[1];
      else {
        results.set(header[1], outcomeOf(header[2]));
        pending = null;
      }
      continue;
    }
    const verdict = / \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure|unexpected success)$/.exec(line);
    if (verdict !== null && pending !== null) {
      results.set(pending, outcomeOf(verdict[1]));
      pending = null;
    }
  }
  return results;
}

function outcomeOf(text: string): TestOutcome {
  if (text === 'ok' || text === 'expected failure') return 'pass';
  if (text.startsWith('skipped')) return 'skip';
  return 'fail';
}
