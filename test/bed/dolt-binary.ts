/**
 * Where the tests find the real `dolt`: DOLTGATE_DOLT, else what scripts/bootstrap.sh recorded.
 * Unlike the sandbox, tests never fall back to a `dolt` on PATH: it could be any version.
 */

import { configuredDoltBinary, repositoryRoot } from '../../sandbox/dolt-binary';

export const repoRoot = repositoryRoot();

export function doltBinary(): string {
  const binary = configuredDoltBinary();
  if (binary === null) throw new Error('no dolt binary: run `bash scripts/bootstrap.sh` first (it records the path in .doltgate-dolt-path)');
  return binary;
}
