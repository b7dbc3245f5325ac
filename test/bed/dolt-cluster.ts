/**
 * A real Dolt cluster for integration tests: a file:// remote per database and N `dolt sql-server`
 * nodes on free loopback ports. Node 0 starts as primary (writable, push-on-write,
 * dolt_transaction_commit); the others as read-only replicas pulling all heads.
 * Every process is stopped by PID and every directory removed at cleanup, also on failure.
 */

import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { DoltSqlServer } from '../../agent/dolt/sql-server';
import type { DoltServerRole } from '../../agent/dolt/server-config';
import { cloneNode, initFirstNode, nodeLayout, remoteUrlTemplate, type NodeLayout } from '../../sandbox/dolt-node-setup';
import { freePort } from '../../common/free-port';
import { registerCleanup, tempDir } from './cleanup';
import { doltBinary } from './dolt-binary';
import { queryAsRoot } from '../../sandbox/root-query';

export interface TestDoltNode {
  name: string;
  layout: NodeLayout;
  server: DoltSqlServer;
  port: number;
}

export interface DoltClusterOptions {
  nodes?: number;
  databases?: string[];
  /** Roles at start; default: node 0 primary, the rest replicas. */
  roles?: DoltServerRole[];
  /** Give every node Dolt's remote URL template for this cluster's remote dir (databases created at run time). */
  remoteUrlTemplate?: boolean;
  /** Dolt's listener.max_connections on every node (Dolt's default otherwise). */
  /** Start Dolt with local_infile = 1 (LOAD DATA LOCAL accepted). */
  localInfile?: boolean;
  maxConnections?: number;
  /** Lay out the nodes but start none. */
  startServers?: boolean;
  /** Give every node a secure_file_priv directory (`<node dir>/files`), as the agent does. */
  secureFiles?: boolean;
}

export class TestDoltCluster {
  private constructor(
    readonly dir: string,
    readonly remoteDir: string,
    readonly databases: string[],
    readonly nodes: TestDoltNode[],
  ) {}

  static async start(options: DoltClusterOptions = {}): Promise<TestDoltCluster> {
    const count = options.nodes ?? 3;
    const databases = options.databases ?? ['db'];
    const dir = await tempDir('dolt');
    const remoteDir = join(dir, 'remote');
    const binary = doltBinary();
    const nodes: TestDoltNode[] = [];
    const cluster = new TestDoltCluster(dir, remoteDir, databases, nodes);
    registerCleanup(() => cluster.stop());
    for (let i = 0; i < count; i++) {
      const name = `n${i + 1}`;
      const layout = nodeLayout(dir, name, binary);
      if (i === 0) await initFirstNode(layout, remoteDir, databases);
      else await cloneNode(layout, remoteDir, databases);
      const port = await freePort();
      const role = options.roles?.[i] ?? (i === 0 ? 'primary' : 'replica');
      const server = new DoltSqlServer({
        env: layout.env,
        nodeDir: layout.nodeDir,
        settings: { dataDir: layout.dataDir, host: '127.0.0.1', port, role, remoteName: 'origin', remoteUrlTemplate: options.remoteUrlTemplate ? remoteUrlTemplate(remoteDir) : null, maxConnections: options.maxConnections, secureFilePriv: options.secureFiles ? join(layout.nodeDir, 'files') : null, localInfile: options.localInfile ?? false },
      });
      await server.configure(role);
      nodes.push({ name, layout, server, port });
    }
    if (options.startServers ?? true) await Promise.all(nodes.map((node) => node.server.start()));
    return cluster;
  }

  get primary(): TestDoltNode {
    return this.nodes[0];
  }

  node(name: string): TestDoltNode {
    const found = this.nodes.find((node) => node.name === name);
    if (!found) throw new Error(`no node ${name}`);
    return found;
  }

  /** A mysql2 connection straight to a node, closed at cleanup if the test forgets. */
  async connect(node: TestDoltNode, database: string | undefined = this.databases[0]): Promise<mysql.Connection> {
    const connection = await mysql.createConnection({ host: '127.0.0.1', port: node.port, user: 'root', password: '', database, multipleStatements: true });
    registerCleanup(() => connection.destroy());
    return connection;
  }

  /** One query on a fresh connection; returns the rows. */
  query<T = Record<string, unknown>>(node: TestDoltNode, sql: string, params: unknown[] = [], database?: string): Promise<T[]> {
    return queryAsRoot<T>(node.port, sql, params, { database: database ?? this.databases[0] });
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.server.stop(5000)));
  }
}
