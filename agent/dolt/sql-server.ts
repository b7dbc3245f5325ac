/**
 * One `dolt sql-server` process in a given role, owned by its caller: writes the role's YAML and
 * global replication settings, starts the server, waits until it answers SQL, stops it by PID.
 * The agent uses it in managed mode, where Dolt runs under the keeper (agent/keeper/); the
 * sandbox's and the test bed's plain nodes run it directly.
 *
 * Invariants: the role is only changed while the server is stopped (read-only is a start-up
 * setting in Dolt), so `restartAs(role)` is stop → configure → start. Under a keeper, `kill9`
 * and `stop` resolve only after Dolt itself has exited (the keeper exits after its child), so the
 * port is free for the next start.
 */

import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as net from 'node:net';
import mysql from 'mysql2/promise';
import { ManagedChild, type ExitInfo } from '../../common/child-process';
import { formatKeeperArgs, formatKeeperLine, formatKeeperMessage, KEEPER_KILL_SIGNAL } from '../keeper/keeper-protocol';
import { doltProcessEnv, setGlobalConfig, type DoltEnvironment } from './dolt-command';
import { clusterRoleGlobals, listenerOf, renderServerConfigYaml, replicationGlobalsForRole, runsClustered, type DoltServerRole, type DoltServerSettings } from './server-config';

export class DoltNotReadyError extends Error {
  readonly code = 'DOLT_NOT_READY';
  constructor(address: string, withinMs: number, lastError: string, logFile: string) {
    super(`dolt sql-server at ${address} did not answer SELECT 1 within ${withinMs} ms (last error: ${lastError}); see ${logFile}`);
  }
}

export interface DoltSqlServerOptions {
  env: DoltEnvironment;
  /**
   * Kill the server when its parent dies (Linux parent-death signal through util-linux's
   * setpriv, which then execs dolt, so the PID stays dolt's). The agent sets it: a Dolt that
   * outlives its agent could keep taking writes with nobody to fence it.
   */
  dieWithParent?: boolean;
  /**
   * Run Dolt under the keeper (agent/keeper/keeper-main.ts, this compiled entry): guarded starts
   * are killed when the deadlines given to `vouchUntil` stop coming. Implies dieWithParent.
   */
  keeperEntry?: string;
  /** Directory for the YAML and the log; the databases live in settings.dataDir. */
  nodeDir: string;
  settings: DoltServerSettings;
  user?: string;
  password?: string;
}

export class DoltSqlServer {
  private child: ManagedChild | undefined;
  private settings: DoltServerSettings;

  constructor(private readonly options: DoltSqlServerOptions) {
    this.settings = { ...options.settings };
  }

  get role(): DoltServerRole {
    return this.settings.role;
  }

  /** Where the server listens in its current role (the standby's private port, else the public one). */
  get host(): string {
    return listenerOf(this.settings).host;
  }

  get port(): number {
    return listenerOf(this.settings).port;
  }

  /** Sets the standby's private listener port; takes effect at the next configure. */
  usePrivatePort(port: number | null): void {
    this.settings = { ...this.settings, privatePort: port };
  }

  /** Cluster mode: the epoch the next clustered start writes with the standby role (server-config.ts). */
  useClusterEpoch(epoch: number): void {
    if (!this.settings.cluster) throw new Error('useClusterEpoch is for cluster mode; this server replicates through a remote');
    this.settings = { ...this.settings, cluster: { ...this.settings.cluster, epoch } };
  }

  get clusterEpoch(): number | null {
    return this.settings.cluster?.epoch ?? null;
  }

  /** Whether `role` runs clustered on this server (cluster mode's primary and replica). */
  runsClustered(role: DoltServerRole): boolean {
    return runsClustered(this.settings, role);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child?.running ?? false;
  }

  get logFile(): string {
    return join(this.options.nodeDir, 'sql-server.log');
  }

  /** Where the databases live, one directory each. */
  get dataDir(): string {
    return this.settings.dataDir;
  }

  get configFile(): string {
    return join(this.options.nodeDir, 'sql-server.yaml');
  }

  async configure(role: DoltServerRole): Promise<void> {
    if (this.running) throw new Error(`cannot change the role of the running dolt sql-server on port ${this.port}: stop it first`);
    this.settings = { ...this.settings, role };
    await mkdir(this.options.nodeDir, { recursive: true });
    if (this.settings.secureFilePriv != null) await mkdir(this.settings.secureFilePriv, { recursive: true, mode: 0o700 });
    await writeFile(this.configFile, renderServerConfigYaml(this.settings));
    await setGlobalConfig(this.options.env, this.options.nodeDir, {
      ...replicationGlobalsForRole(role, this.settings.remoteName, this.settings.remoteUrlTemplate ?? null, this.settings.cluster != null),
      ...clusterRoleGlobals(this.settings, role),
    });
  }

  /**
   * Starts the server with the current configuration and waits until it answers SQL. `guardUntil`
   * (fence clock ms; keeper only) makes the keeper kill Dolt at that time unless `vouchUntil`
   * moves it; without it a keeper runs unguarded.
   */
  async start(readyWithinMs = 30_000, guardUntil: number | null = null): Promise<void> {
    const doltArgs = ['sql-server', '--config', this.configFile];
    const keeper = this.options.keeperEntry;
    if (guardUntil !== null && keeper === undefined) throw new Error('a guarded start needs the keeper (keeperEntry)');
    const viaSetpriv = this.options.dieWithParent === true;
    let command = this.options.env.binary;
    let args = doltArgs;
    if (keeper !== undefined) {
      // The keeper itself dies with the agent, and Dolt with the keeper.
      command = 'setpriv';
      args = ['--pdeathsig', 'KILL', '--', process.execPath, keeper, ...formatKeeperArgs({ guarded: guardUntil !== null, until: guardUntil }), '--', this.options.env.binary, ...doltArgs];
    } else if (viaSetpriv) {
      command = 'setpriv';
      args = ['--pdeathsig', 'KILL', '--', this.options.env.binary, ...doltArgs];
    }
    this.child = new ManagedChild({ command, args, cwd: this.options.nodeDir, env: doltProcessEnv(this.options.env), logFile: this.logFile, stdinPipe: keeper !== undefined });
    await this.child.start();
    await this.waitReady(readyWithinMs);
  }

  /** Tells the keeper Dolt may take writes until `until` (fence clock ms); false without a keeper. */
  vouchUntil(until: number): boolean {
    return this.options.keeperEntry !== undefined && (this.child?.write(formatKeeperLine(until)) ?? false);
  }

  /**
   * Arms the keeper of a running server with `until` as its deadline (cluster mode: before Dolt is
   * made writable at run time); false without a keeper or a running server.
   */
  guard(until: number): boolean {
    return this.options.keeperEntry !== undefined && (this.child?.write(formatKeeperMessage({ kind: 'guard', until })) ?? false);
  }

  /** Disarms the keeper: only once Dolt refuses writes again. */
  unguard(): boolean {
    return this.options.keeperEntry !== undefined && (this.child?.write(formatKeeperMessage({ kind: 'unguard' })) ?? false);
  }

  async restartAs(role: DoltServerRole, readyWithinMs = 30_000): Promise<void> {
    await this.stop();
    await this.configure(role);
    await this.start(readyWithinMs);
  }

  async waitReady(withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs;
    let lastError = 'not tried';
    while (Date.now() < deadline) {
      if (this.child && !this.child.running) {
        lastError = `process exited (${JSON.stringify(this.child.lastExit)})`;
        break;
      }
      try {
        await this.ping(Math.max(500, Math.min(2000, deadline - Date.now())));
        return;
      } catch (error) {
        lastError = (error as Error).message;
      }
      // Short: a restart sits on the failover's critical path.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new DoltNotReadyError(`${this.host}:${this.port}`, withinMs, lastError, this.logFile);
  }

  /** Connects and runs SELECT 1 with a timeout. */
  async ping(timeoutMs: number): Promise<void> {
    await waitForTcp(this.host, this.port, timeoutMs);
    const connection = await mysql.createConnection({
      host: this.host,
      port: this.port,
      user: this.options.user ?? 'root',
      password: this.options.password ?? '',
      connectTimeout: timeoutMs,
    });
    try {
      await connection.query({ sql: 'SELECT 1', timeout: timeoutMs });
    } finally {
      connection.destroy();
    }
  }

  async stop(graceMs = 10_000): Promise<ExitInfo | undefined> {
    return this.child?.stop(graceMs);
  }

  /** SIGKILL for Dolt now: through the keeper (which exits after Dolt), or directly. */
  async kill9(): Promise<ExitInfo | undefined> {
    const child = this.child;
    if (!child?.running) return child?.lastExit;
    if (this.options.keeperEntry === undefined) return child.kill9();
    child.signal('SIGCONT');
    child.signal(KEEPER_KILL_SIGNAL);
    // A keeper that cannot answer is killed too; the kernel then kills Dolt (parent-death signal).
    const timer = setTimeout(() => child.signal('SIGKILL'), 2_000);
    try {
      return await child.waitForExit();
    } finally {
      clearTimeout(timer);
    }
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.signal(signal);
  }

  waitForExit(): Promise<ExitInfo | undefined> {
    return this.child?.waitForExit() ?? Promise.resolve(undefined);
  }
}

function waitForTcp(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TCP connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.end();
      resolve();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
