/**
 * One `dolt sql-server` process in a given role, owned by its caller: writes the role's YAML and
 * global replication settings, starts the server, waits until it answers SQL, stops it by PID.
 * The agent uses it in managed mode; the sandbox and the test bed use it to run nodes.
 *
 * Invariant: the role is only changed while the server is stopped (read-only is a start-up
 * setting in Dolt), so `restartAs(role)` is stop → configure → start.
 */

import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as net from 'node:net';
import mysql from 'mysql2/promise';
import { ManagedChild, type ExitInfo } from '../../common/child-process';
import { doltProcessEnv, setGlobalConfig, type DoltEnvironment } from './dolt-command';
import { renderServerConfigYaml, replicationGlobalsForRole, type DoltServerRole, type DoltServerSettings } from './server-config';

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

  get host(): string {
    return this.settings.host;
  }

  get port(): number {
    return this.settings.port;
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

  get configFile(): string {
    return join(this.options.nodeDir, 'sql-server.yaml');
  }

  async configure(role: DoltServerRole): Promise<void> {
    if (this.running) throw new Error(`cannot change the role of the running dolt sql-server on port ${this.port}: stop it first`);
    this.settings = { ...this.settings, role };
    await mkdir(this.options.nodeDir, { recursive: true });
    await writeFile(this.configFile, renderServerConfigYaml(this.settings));
    await setGlobalConfig(this.options.env, this.options.nodeDir, replicationGlobalsForRole(role, this.settings.remoteName));
  }

  /** Starts the server with the current configuration and waits until it answers SQL. */
  async start(readyWithinMs = 30_000): Promise<void> {
    const doltArgs = ['sql-server', '--config', this.configFile];
    const viaSetpriv = this.options.dieWithParent === true;
    this.child = new ManagedChild({
      command: viaSetpriv ? 'setpriv' : this.options.env.binary,
      args: viaSetpriv ? ['--pdeathsig', 'KILL', '--', this.options.env.binary, ...doltArgs] : doltArgs,
      cwd: this.options.nodeDir,
      env: doltProcessEnv(this.options.env),
      logFile: this.logFile,
    });
    await this.child.start();
    await this.waitReady(readyWithinMs);
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

  async kill9(): Promise<ExitInfo | undefined> {
    return this.child?.kill9();
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
