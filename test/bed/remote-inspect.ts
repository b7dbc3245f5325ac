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
    await runDolt(env, ['clone', remoteUrl(remoteDir, database), 'copy'], scratch);
    const out = await runDolt(env, ['sql', '-r', 'csv', '-q', `SELECT dolt_hashof('origin/${branch}') AS h`], join(scratch, 'copy'));
    return out.trim().split('\n')[1].trim();
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
