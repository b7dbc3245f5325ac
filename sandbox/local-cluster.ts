/**
 * A whole doltgate cluster on 127.0.0.1, built from real processes: etcd, a file:// remote, N
 * Dolt nodes each run by its own `doltgate agent` process (managed mode), and optionally a proxy.
 * `doltgate sandbox` and the integration tests both use it. Every process is ours and is stopped
 * by PID; `describe()` is what the sandbox writes to state.json.
 */

import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { writePrivateFile } from '../common/private-file';
import * as net from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ManagedChild } from '../common/child-process';
import { EtcdClusterStore } from '../agent/store/etcd-cluster-store';
import type { ClusterSnapshot } from '../agent/store/cluster-store';
import { EtcdCluster } from './etcd-cluster';
import { cloneNode, initEmptyNode, initFirstNode, nodeLayout, remoteUrlTemplate } from './dolt-node-setup';
import { queryAsRoot } from './root-query';
import { freePort } from '../common/free-port';
import { hashProxyPassword } from '../proxy/config';

export interface LocalClusterOptions {
  dir: string;
  cluster?: string;
  nodes?: number;
  databases?: string[];
  doltBinary: string;
  /** The compiled CLI entry (dist/bin/doltgate.js). */
  doltgateEntry: string;
  etcdMembers?: 1 | 3;
  /** Overrides for every agent.yaml (e.g. faster HA timings in tests). */
  agentOverrides?: Record<string, unknown>;
  /** Agents detach into their own process group (sandbox --detach). */
  detached?: boolean;
  /** The agents' control API token; default: a fresh random one. */
  controlToken?: string;
  /** Run etcd with authentication on (a root user every client logs in as); default true, as the sandbox runs it. */
  etcdAuth?: boolean;
  /**
   * How the nodes replicate (agent config dolt.replication): remote (default; a file:// remote
   * under dir) or cluster (Dolt's direct-to-standby replication; the databases are created on the
   * first primary and replicate from there).
   */
  replication?: 'remote' | 'cluster';
}

export interface LocalAgent {
  name: string;
  configPath: string;
  sqlPort: number;
  grpcPort: number;
  metricsPort: number;
  /** Cluster mode: the node's cluster remotesapi port (0 in remote mode). */
  remotesapiPort: number;
  nodeDir: string;
  process: ManagedChild;
}

export interface LocalProxy {
  port: number;
  metricsPort: number;
  configPath: string;
  process: ManagedChild;
}

export class LocalCluster {
  readonly proxies: LocalProxy[] = [];
  /**
   * The agents' control API token (grpc_token): changing calls need it (`doltgate --token`, or
   * DOLTGATE_TOKEN), as they would in production. Made fresh for each cluster.
   */
  get controlToken(): string {
    return this.token;
  }

  private readonly token: string;

  private constructor(
    readonly options: Required<Omit<LocalClusterOptions, 'agentOverrides' | 'detached' | 'controlToken' | 'etcdAuth'>> & Pick<LocalClusterOptions, 'agentOverrides' | 'detached' | 'controlToken' | 'etcdAuth'>,
    readonly etcd: EtcdCluster,
    readonly agents: LocalAgent[],
    readonly remoteDir: string,
  ) {
    this.token = options.controlToken ?? randomBytes(24).toString('hex');
  }

  get cluster(): string {
    return this.options.cluster;
  }

  static async create(options: LocalClusterOptions, progress: (line: string) => void = () => undefined): Promise<LocalCluster> {
    const full = { cluster: 'sandbox', nodes: 3, databases: ['app'], etcdMembers: 1 as const, replication: 'remote' as const, ...options };
    const clustered = full.replication === 'cluster';
    await mkdir(full.dir, { recursive: true });
    progress(`starting etcd (${full.etcdMembers} member${full.etcdMembers > 1 ? 's' : ''})`);
    const etcd = await EtcdCluster.start({ dir: join(full.dir, 'etcd'), members: full.etcdMembers, detached: full.detached, auth: full.etcdAuth ?? true });
    const remoteDir = join(full.dir, 'remote');
    const agents: LocalAgent[] = [];
    const cluster = new LocalCluster(full, etcd, agents, remoteDir);
    try {
      for (let i = 0; i < full.nodes; i++) {
        const name = `n${i + 1}`;
        const layout = nodeLayout(full.dir, name, full.doltBinary);
        if (clustered) {
          progress(`preparing ${name} (cluster replication: databases come from the first primary)`);
          await initEmptyNode(layout);
        } else {
          progress(`${i === 0 ? 'creating' : 'cloning'} databases (${full.databases.join(', ')}) for ${name}`);
          if (i === 0) await initFirstNode(layout, remoteDir, full.databases);
          else await cloneNode(layout, remoteDir, full.databases);
        }
        agents.push({
          name,
          configPath: join(layout.nodeDir, 'agent.yaml'),
          sqlPort: await freePort(),
          grpcPort: await freePort(),
          metricsPort: await freePort(),
          remotesapiPort: clustered ? await freePort() : 0,
          nodeDir: layout.nodeDir,
          process: undefined as unknown as ManagedChild,
        });
      }
      // Every agent.yaml is written once all ports are known: in cluster mode each lists its peers.
      for (const agent of agents) {
        await writePrivateFile(agent.configPath, stringify(cluster.agentConfig(agent, join(agent.nodeDir, 'data'))));
        agent.process = new ManagedChild({
          command: process.execPath,
          args: [full.doltgateEntry, 'agent', '--config', agent.configPath],
          logFile: join(agent.nodeDir, 'agent.log'),
          detached: full.detached,
        });
      }
      progress('starting agents (each starts its dolt sql-server)');
      for (const agent of agents) await agent.process.start();
      progress('waiting for the agents to elect a primary');
      const primary = await cluster.waitForStablePrimary(60_000);
      if (clustered) {
        progress(`creating databases (${full.databases.join(', ')}) on ${primary}; cluster replication copies them to the standbys`);
        await cluster.createClusterDatabases(primary, full.databases);
      }
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Cluster mode: the databases, made on the first primary, until every standby holds them. */
  private async createClusterDatabases(primary: string, databases: string[]): Promise<void> {
    for (const database of databases) await queryAsRoot(this.agent(primary).sqlPort, `CREATE DATABASE IF NOT EXISTS \`${database}\``);
    const deadline = Date.now() + 30_000;
    for (const agent of this.agents) {
      for (;;) {
        const names = await queryAsRoot<Record<string, string>>(agent.sqlPort, 'SHOW DATABASES').then((rows) => rows.map((row) => Object.values(row)[0]), () => [] as string[]);
        if (databases.every((database) => names.includes(database))) break;
        if (Date.now() > deadline) throw new Error(`${agent.name} did not receive ${databases.join(', ')} by cluster replication within 30 s (it has ${names.join(', ') || 'none'})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  private agentConfig(agent: LocalAgent, dataDir: string): Record<string, unknown> {
    const replication =
      this.options.replication === 'cluster'
        ? {
            replication: 'cluster',
            cluster: {
              remotesapi: `127.0.0.1:${agent.remotesapiPort}`,
              peers: Object.fromEntries(this.agents.filter((peer) => peer !== agent).map((peer) => [peer.name, `http://127.0.0.1:${peer.remotesapiPort}`])),
            },
          }
        : { remote_url_template: remoteUrlTemplate(this.remoteDir) };
    const base: Record<string, unknown> = {
      name: agent.name,
      cluster: this.options.cluster,
      etcd: this.etcdSection(),
      dolt: {
        mode: 'managed',
        binary: this.options.doltBinary,
        node_dir: agent.nodeDir,
        data_dir: dataDir,
        host: '127.0.0.1',
        port: agent.sqlPort,
        user: 'root',
        password: '',
        remote: 'origin',
        ...replication,
      },
      priority: 100,
      check_interval_ms: 250,
      check_timeout_ms: 1000,
      inspect_interval_ms: 1000,
      grpc: `127.0.0.1:${agent.grpcPort}`,
      grpc_token: this.controlToken,
      metrics: `127.0.0.1:${agent.metricsPort}`,
      ha: { initial_primary: 'n1' },
    };
    return mergeDeep(base, this.options.agentOverrides ?? {});
  }

  /** The `etcd:` section of an agent.yaml or proxy.yaml for this cluster (those files are 0600). */
  etcdSection(): Record<string, unknown> {
    const auth = this.etcd.auth;
    return auth === null ? { endpoints: this.etcd.endpoints } : { endpoints: this.etcd.endpoints, user: auth.user, password: auth.password };
  }

  /** The environment the `doltgate` CLI needs for this cluster: the control token and etcd's credentials. */
  cliEnv(): Record<string, string> {
    const auth = this.etcd.auth;
    return { DOLTGATE_TOKEN: this.controlToken, ...(auth === null ? {} : { DOLTGATE_ETCD_USER: auth.user, DOLTGATE_ETCD_PASSWORD: auth.password }) };
  }

  store(): EtcdClusterStore {
    return new EtcdClusterStore({ endpoints: this.etcd.endpoints, auth: this.etcd.auth, cluster: this.options.cluster });
  }

  async snapshot(): Promise<ClusterSnapshot> {
    const store = this.store();
    try {
      return await store.snapshot();
    } finally {
      store.close();
    }
  }

  /**
   * Resolves with the primary's name once the topology is stable and its node is writable; with
   * `notPrimary`, another node than that one; with `afterEpoch`, at a newer epoch (any node).
   */
  async waitForStablePrimary(withinMs: number, notPrimary?: string, afterEpoch?: number): Promise<string> {
    const deadline = Date.now() + withinMs;
    let last = 'no topology yet';
    while (Date.now() < deadline) {
      try {
        const snapshot = await this.snapshot();
        const topology = snapshot.topology?.value;
        if (topology && topology.state === 'stable' && topology.primary && topology.primary !== notPrimary && (afterEpoch === undefined || topology.epoch > afterEpoch)) {
          const member = snapshot.members[topology.primary];
          if (member && member.role === 'primary') return topology.primary;
          last = `topology names ${topology.primary} at epoch ${topology.epoch}; its agent reports role ${member?.role ?? 'none'}`;
        } else if (topology) {
          last = `topology ${topology.state} at epoch ${topology.epoch}, primary ${topology.primary}`;
        }
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no stable primary${notPrimary ? ` other than ${notPrimary}` : ''} within ${withinMs} ms: ${last}`);
  }

  agent(name: string): LocalAgent {
    const found = this.agents.find((agent) => agent.name === name);
    if (!found) throw new Error(`no node ${name} in this cluster (nodes: ${this.agents.map((agent) => agent.name).join(', ')})`);
    return found;
  }

  /**
   * The PID of the dolt sql-server an agent runs: a descendant of the agent (through its keeper),
   * found by /proc, never by name. Right after a restart the old server may still be exiting:
   * zombies and dying processes are skipped, and of the live ones the newest is taken.
   */
  async doltPid(name: string): Promise<number | undefined> {
    const agentPid = this.agent(name).process.pid;
    if (agentPid === undefined) return undefined;
    return newestDescendant(agentPid, (cmdline) => cmdline.includes('sql-server') && !cmdline.some((arg) => arg.endsWith('keeper-main.js')));
  }

  /** The PID of the keeper between an agent and its Dolt (see agent/keeper/). */
  async keeperPid(name: string): Promise<number | undefined> {
    const agentPid = this.agent(name).process.pid;
    if (agentPid === undefined) return undefined;
    return newestDescendant(agentPid, (cmdline) => cmdline.some((arg) => arg.endsWith('keeper-main.js')));
  }

  describe(): Record<string, unknown> {
    return {
      cluster: this.options.cluster,
      replication: this.options.replication,
      etcd: this.etcd.endpoints,
      etcdPids: this.etcd.members.map((member) => member.process.pid),
      remote: this.options.replication === 'cluster' ? null : this.remoteDir,
      controlToken: this.controlToken,
      etcdUser: this.etcd.auth?.user ?? null,
      etcdPassword: this.etcd.auth?.password ?? null,
      nodes: this.agents.map((agent) => ({
        name: agent.name,
        sqlPort: agent.sqlPort,
        user: 'root',
        password: '',
        grpc: `127.0.0.1:${agent.grpcPort}`,
        metrics: `http://127.0.0.1:${agent.metricsPort}/metrics`,
        agentPid: agent.process.pid,
        config: agent.configPath,
      })),
    };
  }

  /**
   * Starts a `doltgate proxy` process following this cluster's topology in etcd, with one proxy
   * user mapped to Dolt's root; resolves once it listens.
   */
  async startProxy(user: { name: string; password: string }, overrides: Record<string, unknown> = {}): Promise<LocalProxy> {
    const port = await freePort();
    const metricsPort = await freePort();
    const index = this.proxies.length + 1;
    const config = mergeDeep(
      {
        listen: { host: '127.0.0.1', port },
        cluster: this.options.cluster,
        etcd: this.etcdSection(),
        users: [{ name: user.name, ...hashProxyPassword(user.password), backend_user: 'root', backend_password: '' }],
        hold: { timeout_ms: 10_000 },
        metrics: { host: '127.0.0.1', port: metricsPort },
      },
      overrides,
    );
    const configPath = join(this.options.dir, `proxy${index}.yaml`);
    await writePrivateFile(configPath, stringify(config));
    const logFile = join(this.options.dir, `proxy${index}.log`);
    const child = new ManagedChild({ command: process.execPath, args: [this.options.doltgateEntry, 'proxy', '--config', configPath], logFile, detached: this.options.detached });
    await child.start();
    const proxy: LocalProxy = { port, metricsPort, configPath, process: child };
    this.proxies.push(proxy);
    await waitForPort(port, 20_000, child, logFile);
    return proxy;
  }

  async stop(): Promise<void> {
    await Promise.all(this.proxies.map((proxy) => proxy.process.stop(10_000)));
    await Promise.all(this.agents.filter((agent) => agent.process).map((agent) => agent.process.stop(15_000)));
    await this.etcd.stop();
  }
}

/** The newest live descendant of `root` whose command line passes `match` (by /proc). */
export async function newestDescendant(root: number, match: (cmdline: string[]) => boolean): Promise<number | undefined> {
  let newest: { pid: number; started: number } | undefined;
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
    for (const child of children) {
      queue.push(child);
      const cmdline = (await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (!match(cmdline)) continue;
      const stat = await readFile(`/proc/${child}/stat`, 'utf8').catch(() => '');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X' || fields[0] === undefined || fields[0] === '') continue;
      const started = Number(fields[19]);
      if (!newest || started > newest.started) newest = { pid: child, started };
    }
  }
  return newest?.pid;
}

function mergeDeep(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    if (value && typeof value === 'object' && !Array.isArray(value) && current && typeof current === 'object' && !Array.isArray(current)) {
      out[key] = mergeDeep(current as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      out[key] = value;
    }
  }
  return out;
}

export function waitForPort(port: number, withinMs: number, child: ManagedChild, log: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  return new Promise((resolvePromise, reject) => {
    const attempt = (): void => {
      if (!child.running) return reject(new Error(`the process exited during start-up; see ${log}`));
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolvePromise();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listened on ${port} within ${withinMs} ms; see ${log}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}
