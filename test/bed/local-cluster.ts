/** A whole doltgate cluster (etcd, Dolt nodes run by real agent processes) for a test. */

import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { LocalCluster, type LocalClusterOptions } from '../../sandbox/local-cluster';
import { registerCleanup, tempDir } from './cleanup';
import { doltBinary, repoRoot } from './dolt-binary';

export async function startLocalCluster(options: Partial<LocalClusterOptions> = {}): Promise<LocalCluster> {
  const dir = await tempDir('cluster');
  const cluster = await LocalCluster.create({
    dir,
    doltBinary: doltBinary(),
    doltgateEntry: join(repoRoot, 'dist', 'bin', 'doltgate.js'),
    ...options,
  });
  registerCleanup(() => cluster.stop());
  return cluster;
}

/** A query on a fresh connection straight to a node's Dolt. */
export async function queryNode<T = Record<string, unknown>>(cluster: LocalCluster, node: string, sql: string, params: unknown[] = [], database = 'app'): Promise<T[]> {
  const connection = await mysql.createConnection({ host: '127.0.0.1', port: cluster.agent(node).sqlPort, user: 'root', password: '', database, connectTimeout: 2000 });
  try {
    const [rows] = await connection.query({ sql, timeout: 5000 }, params);
    return rows as T[];
  } finally {
    connection.destroy();
  }
}
