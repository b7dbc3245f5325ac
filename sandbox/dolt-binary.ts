/**
 * Which `dolt` the sandbox runs: DOLTGATE_DOLT, else the one scripts/bootstrap.sh built and
 * recorded in .doltgate-dolt-path at the repository root, else `dolt` on PATH.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root, from dist/sandbox/ or sandbox/ alike. */
export function repositoryRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = join(dir, '..');
  }
  return join(__dirname, '..', '..');
}

/** DOLTGATE_DOLT, else the path the bootstrap recorded; null when neither is there. */
export function configuredDoltBinary(): string | null {
  if (process.env.DOLTGATE_DOLT) return process.env.DOLTGATE_DOLT;
  const recorded = join(repositoryRoot(), '.doltgate-dolt-path');
  return existsSync(recorded) ? readFileSync(recorded, 'utf8').trim() : null;
}

export function resolveDoltBinary(): string {
  return configuredDoltBinary() ?? 'dolt';
}
