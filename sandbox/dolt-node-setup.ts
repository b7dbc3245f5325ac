/**
 * Lays out a local Dolt cluster on disk: a file:// remote per database (the "remote middleman"),
 * a first node that creates each database and pushes it, and further nodes that clone it.
 * Each node gets its own DOLT_ROOT_PATH so its global config (replication settings) is its own.
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { initDoltRoot, runDolt, type DoltEnvironment } from '../agent/dolt/dolt-command';

export interface NodeLayout {
  name: string;
  /** Holds sql-server.yaml, its log and the `home` DOLT_ROOT_PATH. */
  nodeDir: string;
  /** Each sub-directory is a database. */
  dataDir: string;
  env: DoltEnvironment;
}

export function remoteUrl(remoteDir: string, database: string): string {
  return `file://${join(remoteDir, database)}`;
}

/** Dolt's remote URL template for databases under `remoteDir` (see agent/dolt/server-config.ts). */
export function remoteUrlTemplate(remoteDir: string): string {
  return `file://${join(remoteDir, '{database}')}`;
}

export function nodeLayout(clusterDir: string, name: string, binary: string): NodeLayout {
  const nodeDir = join(clusterDir, name);
  return { name, nodeDir, dataDir: join(nodeDir, 'data'), env: { binary, rootPath: join(nodeDir, 'home') } };
}

async function prepareRoot(layout: NodeLayout): Promise<void> {
  await mkdir(layout.env.rootPath, { recursive: true });
  await mkdir(layout.dataDir, { recursive: true });
  await initDoltRoot(layout.env, layout.nodeDir);
}

/**
 * Cluster mode: an empty node with its own DOLT_ROOT_PATH. Databases are created on the first
 * primary once the agents have chosen one, and Dolt's cluster replication brings them to the rest.
 */
export async function initEmptyNode(layout: NodeLayout): Promise<void> {
  await prepareRoot(layout);
}

/** Creates every database on the first node and pushes it to its remote. */
export async function initFirstNode(layout: NodeLayout, remoteDir: string, databases: string[], remoteName = 'origin'): Promise<void> {
  await prepareRoot(layout);
  for (const database of databases) {
    const dbDir = join(layout.dataDir, database);
    await mkdir(dbDir, { recursive: true });
    await mkdir(join(remoteDir, database), { recursive: true });
    await runDolt(layout.env, ['init'], dbDir);
    await runDolt(layout.env, ['remote', 'add', remoteName, remoteUrl(remoteDir, database)], dbDir);
    await runDolt(layout.env, ['push', remoteName, 'main'], dbDir);
  }
}

/** Clones every database from the remote into a further node. */
export async function cloneNode(layout: NodeLayout, remoteDir: string, databases: string[], remoteName = 'origin'): Promise<void> {
  await prepareRoot(layout);
  for (const database of databases) {
    await runDolt(layout.env, ['clone', '--remote', remoteName, remoteUrl(remoteDir, database), database], layout.dataDir);
  }
}
