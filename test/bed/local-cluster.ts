/** A whole doltgate cluster (etcd, Dolt nodes run by real agent processes) for a test. */

import { join } from 'node:path';
import { LocalCluster, type LocalClusterOptions } from '../../sandbox/local-cluster';
import { registerCleanup, registerFailureReport, tempDir } from './cleanup';
import { logTails } from './log-tails';
import { doltBinary, repoRoot } from './dolt-binary';
import { queryAsRoot } from '../../sandbox/root-query';

export async function startLocalCluster(options: Partial<LocalClusterOptions> = {}): Promise<LocalCluster> {
  const dir = await tempDir('cluster');
  const cluster = await LocalCluster.create({
    dir,
    doltBinary: doltBinary(),
    doltgateEntry: join(repoRoot, 'dist', 'bin', 'doltgate.js'),
    ...options,
  });
  registerCleanup(() => cluster.stop());
  // A cluster a suite's `after` already stopped belongs to an earlier test: not this failure's evidence.
  registerFailureReport(() => (cluster.agents.some((agent) => agent.process?.running) ? logTails(dir) : ''));
  return cluster;
}

/** A query on a fresh connection straight to a node's Dolt. */
export function queryNode<T = Record<string, unknown>>(cluster: LocalCluster, node: string, sql: string, params: unknown[] = [], database = 'app'): Promise<T[]> {
  return queryAsRoot<T>(cluster.agent(node).sqlPort, sql, params, { database, connectTimeoutMs: 2000, queryTimeoutMs: 5000 });
}
