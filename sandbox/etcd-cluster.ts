/**
 * A local etcd of one or three members on 127.0.0.1 for the sandbox and the tests. Each member is
 * a real `etcd` process (Debian's etcd-server) with its own data dir, stopped by PID.
 */

import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import type { EtcdAccess } from '../common/etcd-access';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as http from 'node:http';
import { ManagedChild } from '../common/child-process';
import { freePort } from '../common/free-port';

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: ManagedChild;
}

export class EtcdNotReadyError extends Error {
  readonly code = 'ETCD_NOT_READY';
  constructor(url: string, withinMs: number, logFile: string) {
    super(`etcd at ${url} did not report healthy within ${withinMs} ms; see ${logFile}`);
  }
}

export interface EtcdClusterOptions {
  dir: string;
  members?: 1 | 3;
  binary?: string;
  /** Client ports to use instead of free ones (the sandbox keeps its ports across restarts). */
  clientPorts?: number[];
  /** Members run in their own process group and outlive us (sandbox --detach). */
  detached?: boolean;
  /**
   * Turn on etcd's authentication once the cluster is up: a `root` user (role root) with a fresh
   * random password, which every client must then present (`access`).
   */
  auth?: boolean;
  /** etcd's --auth-token-ttl: how long an unused token stays valid (etcd's default 300 s). */
  authTokenTtlSeconds?: number;
}

export class EtcdCluster {
  /** The credentials clients need once auth is on; null while etcd is open. */
  auth: { user: string; password: string } | null = null;

  private constructor(readonly members: EtcdMember[]) {}

  get endpoints(): string[] {
    return this.members.map((member) => member.clientUrl);
  }

  /** What a client needs to reach this etcd (common/etcd-access.ts). */
  get access(): EtcdAccess {
    return { endpoints: this.endpoints, tls: null, auth: this.auth };
  }

  /** Adds the root user and role, then turns authentication on. */
  private async enableAuth(): Promise<void> {
    const password = randomBytes(18).toString('base64url');
    const client = new Etcd3({ hosts: this.endpoints });
    try {
      await client.role('root').create();
      await client.user('root').create(password);
      await client.user('root').addRole('root');
      await client.auth.authEnable();
    } finally {
      client.close();
    }
    this.auth = { user: 'root', password };
  }

  static async start(options: EtcdClusterOptions): Promise<EtcdCluster> {
    const count = options.members ?? 1;
    const token = `doltgate-${process.pid}-${Date.now()}`;
    const specs: Array<{ name: string; clientPort: number; peerPort: number }> = [];
    for (let i = 0; i < count; i++) {
      specs.push({ name: `etcd${i + 1}`, clientPort: options.clientPorts?.[i] ?? (await freePort()), peerPort: await freePort() });
    }
    const initialCluster = specs.map((spec) => `${spec.name}=http://127.0.0.1:${spec.peerPort}`).join(',');
    const members: EtcdMember[] = [];
    for (const spec of specs) {
      const dataDir = join(options.dir, spec.name);
      await mkdir(dataDir, { recursive: true });
      const clientUrl = `http://127.0.0.1:${spec.clientPort}`;
      const peerUrl = `http://127.0.0.1:${spec.peerPort}`;
      const child = new ManagedChild({
        command: options.binary ?? 'etcd',
        args: [
          '--name', spec.name,
          '--data-dir', dataDir,
          '--listen-client-urls', clientUrl,
          '--advertise-client-urls', clientUrl,
          '--listen-peer-urls', peerUrl,
          '--initial-advertise-peer-urls', peerUrl,
          '--initial-cluster', initialCluster,
          '--initial-cluster-state', 'new',
          '--initial-cluster-token', token,
          // Tight timings: failover tests measure seconds, and everything is on loopback.
          '--heartbeat-interval', '50',
          '--election-timeout', '500',
          ...(options.authTokenTtlSeconds !== undefined ? ['--auth-token-ttl', String(options.authTokenTtlSeconds)] : []),
        ],
        logFile: join(options.dir, `${spec.name}.log`),
        detached: options.detached,
      });
      members.push({ name: spec.name, clientUrl, peerUrl, dataDir, process: child });
    }
    const cluster = new EtcdCluster(members);
    try {
      for (const member of members) await member.process.start();
      for (const member of members) await cluster.waitHealthy(member, 30_000);
      if (options.auth === true) await cluster.enableAuth();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  async waitHealthy(member: EtcdMember, withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs;
    while (Date.now() < deadline) {
      if (!member.process.running) break;
      if (await isHealthy(member.clientUrl)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new EtcdNotReadyError(member.clientUrl, withinMs, member.process.spec.logFile);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((member) => member.process.stop(5000)));
  }
}

/** etcd's /health answers {"health":"true"} only when the member sees a leader. */
export function isHealthy(clientUrl: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const request = http.get(`${clientUrl}/health`, { timeout: timeoutMs }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(response.statusCode === 200 && /"health"\s*:\s*"true"/.test(body)));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}
