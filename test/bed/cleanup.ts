/**
 * Teardown that runs even when a test fails: everything the test bed starts registers a cleanup
 * here, the mocha root hook runs them after each suite file, and an exit handler SIGKILLs (by PID)
 * any child still alive if mocha exits early.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killLiveChildrenSync } from '../../common/child-process';

type Cleanup = () => Promise<void> | void;

const cleanups: Cleanup[] = [];

export function registerCleanup(cleanup: Cleanup): void {
  cleanups.push(cleanup);
}

/** Runs registered cleanups newest first; one failing does not stop the others. */
export async function runCleanups(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
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
