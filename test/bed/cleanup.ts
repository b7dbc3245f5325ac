/**
 * Teardown that runs even when a test fails: everything the test bed starts registers a cleanup
 * here. What a test registers is run when that test ends (root afterEach hook), so a cluster
 * started inside one test never idles on through the rest of the run; what a `before` hook
 * registers is run at the end of the whole run (root afterAll), after the suite's own `after`;
 * and an exit handler SIGKILLs (by PID) any child still alive if mocha exits early.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killLiveChildrenSync } from '../../common/child-process';

type Cleanup = () => Promise<void> | void;

const cleanups: Cleanup[] = [];

/** What a failed test prints before its cleanups run: the tails of the logs of what it started. */
type FailureReport = () => Promise<string> | string;

/** Each report with the cleanup-stack depth it was registered at, so it is scoped like a cleanup. */
const reports: Array<{ depth: number; report: FailureReport }> = [];

/**
 * `report` runs if the test that registered it (or, from a `before` hook, any later test of the
 * run) fails, before anything is stopped: CI keeps no temp dirs, so a failure must carry the
 * evidence of what went wrong in its own output.
 */
export function registerFailureReport(report: FailureReport): void {
  reports.push({ depth: cleanups.length, report });
}

/** The reports that apply to the failed running test, joined; '' when there are none. */
export async function failureReports(): Promise<string> {
  const parts: string[] = [];
  for (const { report } of reports) {
    try {
      parts.push(await report());
    } catch (error) {
      parts.push(`(a failure report failed: ${(error as Error).message})`);
    }
  }
  return parts.filter((part) => part !== '').join('\n');
}

export function registerCleanup(cleanup: Cleanup): void {
  cleanups.push(cleanup);
}

/** Where the running test's own cleanups begin in the stack; null outside a test. */
let testScope: number | null = null;

/** A test starts: what it registers from now on is stopped when it ends (leaveTest). */
export function enterTest(): void {
  testScope = cleanups.length;
}

/**
 * A test ended: runs the cleanups it registered, newest first. What `before` hooks registered
 * stays for the suite's later tests (and is run by the suite's `after`, or at the end).
 */
export async function leaveTest(): Promise<void> {
  const from = testScope ?? cleanups.length;
  testScope = null;
  await runCleanups(from);
}

/** Runs registered cleanups (from index `from` on) newest first; one failing does not stop the others. */
export async function runCleanups(from = 0): Promise<void> {
  const errors: unknown[] = [];
  while (reports.length > 0 && reports[reports.length - 1].depth >= from) reports.pop();
  while (cleanups.length > from) {
    const cleanup = cleanups.pop() as Cleanup;
    try {
      await cleanup();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) {
    const messages = errors.map((error) => (error instanceof Error ? error.message : String(error)));
    throw new AggregateError(errors, `${errors.length} cleanup(s) failed: ${messages.join('; ')}`);
  }
}

/** A fresh temp dir, removed at cleanup unless DOLTGATE_KEEP_TEST_DIRS is set (for debugging). */
export async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `doltgate-${label}-`));
  registerCleanup(async () => {
    // Retries: a process stopped a moment ago may still be flushing a file into the dir.
    if (!process.env.DOLTGATE_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  });
  return dir;
}

process.once('exit', killLiveChildrenSync);
