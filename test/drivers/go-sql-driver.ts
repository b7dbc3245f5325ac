/**
 * go-sql-driver/mysql's own test suite (the module zip from the Go module proxy holds its
 * *_test.go files), run against one MySQL endpoint. It reads its target from MYSQL_TEST_* and
 * needs the database `gotest`.
 *
 * Read before running (no test may reach beyond 127.0.0.1): only connector_test.go dials another
 * address (1.1.1.1:1234 in TestConnectorReturnsTimeout), so that test is always skipped; every
 * other dial uses MYSQL_TEST_ADDR.
 */

import { execFile } from 'node:child_process';
import { cp, mkdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { goTestVerdicts, type SuiteRun, type TestOutcome } from './suite-results';

export const goSqlDriverSuite = 'go-sql-driver/mysql@v1.9.3';
const modulePath = 'github.com/go-sql-driver/mysql';
const version = 'v1.9.3';
/** Tests that reach beyond 127.0.0.1, by reading their source. */
const neverRun = ['TestConnectorReturnsTimeout'];

export interface MysqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof (error as { code?: unknown }).code !== 'number') return reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stderr}`));
      resolve({ code: error ? Number((error as { code?: number }).code) : 0, stdout, stderr });
    });
  });
}

/** Go's caches live beside the Dolt build cache, so a second run needs no network. */
function goEnv(): NodeJS.ProcessEnv {
  const cache = join(homedir(), '.cache', 'doltgate', 'go');
  return { ...process.env, GOPATH: join(cache, 'path'), GOMODCACHE: join(cache, 'mod'), GOCACHE: join(cache, 'build'), GOFLAGS: '-modcacherw', GOTOOLCHAIN: 'local' };
}

/** Downloads the module (once) and copies it to a writable `workDir`; returns the suite's dir. */
export async function prepareGoSqlDriver(workDir: string): Promise<string> {
  const env = goEnv();
  const downloaded = await run('go', ['mod', 'download', '-json', `${modulePath}@${version}`], { env, timeoutMs: 300_000 });
  if (downloaded.code !== 0) throw new Error(`go mod download ${modulePath}@${version} failed: ${downloaded.stdout}${downloaded.stderr}`);
  const source = (JSON.parse(downloaded.stdout) as { Dir: string }).Dir;
  await stat(join(source, 'driver_test.go'));
  const dir = join(workDir, 'go-sql-driver');
  await mkdir(dir, { recursive: true });
  await cp(source, dir, { recursive: true });
  // Its one dependency, fetched now so the timed runs do not.
  const deps = await run('go', ['mod', 'download'], { cwd: dir, env, timeoutMs: 300_000 });
  if (deps.code !== 0) throw new Error(`go mod download in ${dir} failed: ${deps.stderr}`);
  const built = await run('go', ['test', '-count=1', '-run', '^$', '.'], { cwd: dir, env, timeoutMs: 600_000 });
  if (built.code !== 0) throw new Error(`building the go-sql-driver tests failed: ${built.stdout}${built.stderr}`);
  return dir;
}

/**
 * One run of the suite against `target`; the outcome per test. A parallel test that fails with
 * t.Fatal inside the suite's own goroutines panics the whole test binary under Go 1.2x, leaving
 * every paused test without a verdict; so the tests left unfinished are run again on their own,
 * round after round (each round gives at least the crashing test its verdict), up to `rounds`.
 */
export async function runGoSqlDriver(dir: string, target: MysqlTarget, options: { only?: readonly string[]; timeoutMs?: number; rounds?: number } = {}): Promise<{ results: SuiteRun; log: string }> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const rounds = options.rounds ?? 8;
  const env = {
    ...goEnv(),
    MYSQL_TEST_USER: target.user,
    MYSQL_TEST_PASS: target.password,
    MYSQL_TEST_PROT: 'tcp',
    MYSQL_TEST_ADDR: `${target.host}:${target.port}`,
    MYSQL_TEST_DBNAME: 'gotest',
  };
  const results = new Map<string, TestOutcome>();
  let log = '';
  let only: readonly string[] | null = options.only ?? null;
  for (let round = 1; round <= rounds; round++) {
    const select = only === null ? [] : ['-run', `^(${only.join('|')})$`];
    const ran = await run('go', ['test', '-json', '-count=1', '-p', '1', '-timeout', `${Math.floor(timeoutMs / 1000) - 10}s`, ...select, '-skip', `^(${neverRun.join('|')})$`, '.'], { cwd: dir, env, timeoutMs });
    log += ran.stdout + ran.stderr;
    const verdicts = goTestVerdicts(ran.stdout);
    for (const [test, outcome] of verdicts.results) results.set(test, outcome);
    if (verdicts.unfinished.length === 0 || (only !== null && verdicts.unfinished.length >= only.length)) {
      for (const test of verdicts.unfinished) results.set(test, 'fail');
      break;
    }
    only = verdicts.unfinished;
    if (round === rounds) for (const test of only) results.set(test, 'fail');
  }
  return { results, log };
}

/** What `test` (and its subtests) printed in a `go test -json` log, for a failure message. */
export function goTestOutput(log: string, test: string, maxChars = 3000): string {
  let text = '';
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const event = JSON.parse(line) as { Action?: string; Test?: string; Output?: string };
      if (event.Action === 'output' && event.Output !== undefined && (event.Test === test || event.Test?.startsWith(`${test}/`))) text += event.Output;
    } catch {
      // a line go test did not write as JSON (a build message): not part of any test's output
    }
  }
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/** What the run printed outside any test (a panic, a timeout, the package verdict): its last `maxChars`. */
export function goRunOutput(log: string, maxChars = 4000): string {
  let text = '';
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) {
      if (line !== '') text += `${line}\n`;
      continue;
    }
    try {
      const event = JSON.parse(line) as { Action?: string; Test?: string; Output?: string };
      if (event.Action === 'output' && event.Test === undefined && event.Output !== undefined) text += event.Output;
    } catch {
      text += `${line}\n`;
    }
  }
  return text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
}
