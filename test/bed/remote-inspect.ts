/**
 * Reads a file:// remote's branch heads without any sql-server: clones it into a scratch dir with
 * the dolt CLI. Tests use it as the independent witness of "what is on the remote".
 */

import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { runDolt, type DoltEnvironment } from '../../agent/dolt/dolt-command';
import { remoteUrl } from '../../sandbox/dolt-node-setup';

export async function remoteBranchHead(env: DoltEnvironment, remoteDir: string, database: string, branch = 'main'): Promise<string> {
  const scratch = await mkdtemp(join(remoteDir, '..', 'inspect-'));
  try {
    await cloneWithRetry(env, remoteUrl(remoteDir, database), scratch);
    const out = await runDolt(env, ['sql', '-r', 'csv', '-q', `SELECT dolt_hashof('origin/${branch}') AS h`], join(scratch, 'copy'));
    return out.trim().split('\n')[1].trim();
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * A clone that overlaps a node's push into the same file remote has failed once in CI (exit 1
 * after "0 of 0 chunks complete"); the witness tries again rather than report a remote that a
 * second look reads fine. Three failures in a row are a broken remote, and fail the test.
 */
async function cloneWithRetry(env: DoltEnvironment, url: string, scratch: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await runDolt(env, ['clone', url, 'copy'], scratch);
      return;
    } catch (error) {
      if (attempt === 3) throw error;
      process.stderr.write(`remote-inspect: clone attempt ${attempt} failed, trying again: ${(error as Error).message}\n`);
      await rm(join(scratch, 'copy'), { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
}
