/** Where the tests find the real `dolt`: DOLTGATE_DOLT, else what scripts/bootstrap.sh recorded. */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = join(__dirname, '..', '..', '..');

export function doltBinary(): string {
  const fromEnv = process.env.DOLTGATE_DOLT;
  if (fromEnv) return fromEnv;
  const recorded = join(repoRoot, '.doltgate-dolt-path');
  if (existsSync(recorded)) return readFileSync(recorded, 'utf8').trim();
  throw new Error('no dolt binary: run `bash scripts/bootstrap.sh` first (it records the path in .doltgate-dolt-path)');
}
