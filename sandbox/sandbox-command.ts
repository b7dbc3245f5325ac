/**
 * `doltgate sandbox up [--detach] [--dir DIR] [--replication remote|cluster]` and `doltgate sandbox
 * down [--dir DIR]`: a local cluster on 127.0.0.1 (etcd, a file:// remote or Dolt's cluster
 * replication, three Dolt nodes with their agents, one proxy).
 * `up` prints how to connect and writes DIR/state.json:
 *   {"cluster", "etcd": [urls], "proxy": {"host", "port", "user", "password", "metrics", "pid"},
 *    "nodes": [{"name", "sqlPort", "user", "password", "grpc", "metrics", "agentPid"}], ...}
 * In the foreground Ctrl-C stops everything it started; with --detach it returns once the
 * cluster is ready and `down` stops it, by the PIDs in state.json.
 */

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { writePrivateFile } from '../common/private-file';
import { join, resolve } from 'node:path';
import { isProcessAlive } from '../common/child-process';
import { resolveDoltBinary, repositoryRoot } from './dolt-binary';
import { LocalCluster, type LocalProxy } from './local-cluster';

export const sandboxUser = { name: 'app', password: 'sandbox' };

interface SandboxArgs {
  action: 'up' | 'down' | 'help';
  dir: string;
  detach: boolean;
  replication: 'remote' | 'cluster';
}

const usage = `usage: doltgate sandbox up [--detach] [--dir DIR] [--replication remote|cluster]
       doltgate sandbox down [--dir DIR]

Starts a local doltgate cluster on 127.0.0.1: etcd, three Dolt nodes each run by its agent, and a
proxy. --replication remote (the default) replicates through a file:// Dolt remote; cluster uses
Dolt's own direct-to-standby replication. DIR defaults to ./.doltgate-sandbox; DIR/state.json says
where everything is. In the foreground, Ctrl-C stops it; with --detach, \`doltgate sandbox down\` does.`;

export class SandboxUsageError extends Error {
  readonly code = 'SANDBOX_USAGE';
}

export function parseSandboxArgs(args: string[], cwd = process.cwd()): SandboxArgs {
  let action: SandboxArgs['action'] | undefined;
  let dir = join(cwd, '.doltgate-sandbox');
  let detach = false;
  let replication: SandboxArgs['replication'] | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--help' || arg === '-h') return { action: 'help', dir, detach, replication: replication ?? 'remote' };
    else if (arg === '--detach') detach = true;
    else if (arg === '--replication') {
      const value = args[++i];
      if (value !== 'remote' && value !== 'cluster') throw new SandboxUsageError('--replication needs remote or cluster');
      replication = value;
    }
    else if (arg === '--dir') {
      const value = args[++i];
      if (!value) throw new SandboxUsageError('--dir needs a directory');
      dir = resolve(cwd, value);
    } else if ((arg === 'up' || arg === 'down') && action === undefined) action = arg;
    else throw new SandboxUsageError(`unexpected argument '${arg}'`);
  }
  if (!action) throw new SandboxUsageError('say up or down');
  if (action === 'down' && detach) throw new SandboxUsageError('--detach goes with up');
  if (action === 'down' && replication !== undefined) throw new SandboxUsageError('--replication goes with up');
  return { action, dir, detach, replication: replication ?? 'remote' };
}

function readState(dir: string): Record<string, unknown> | null {
  const file = join(dir, 'state.json');
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** Every PID a state.json names, proxy and agents first (they stop Dolt), etcd last. */
export function statePids(state: Record<string, unknown>): number[] {
  const pids: number[] = [];
  const proxy = state.proxy as { pid?: number } | undefined;
  if (proxy?.pid) pids.push(proxy.pid);
  for (const node of (state.nodes as Array<{ agentPid?: number }> | undefined) ?? []) if (node.agentPid) pids.push(node.agentPid);
  for (const pid of (state.etcdPids as number[] | undefined) ?? []) if (pid) pids.push(pid);
  return pids;
}

async function stopPids(pids: number[], graceMs: number, say: (line: string) => void): Promise<void> {
  for (const pid of pids) {
    if (!isProcessAlive(pid)) continue;
    say(`stopping pid ${pid}`);
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isProcessAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}

export async function sandboxDown(dir: string, say: (line: string) => void): Promise<number> {
  const state = readState(dir);
  if (!state) {
    say(`no sandbox state in ${dir} (nothing to stop)`);
    return 0;
  }
  await stopPids(statePids(state), 20_000, say);
  await rm(join(dir, 'state.json'), { force: true });
  say(`sandbox in ${dir} stopped`);
  return 0;
}

export async function sandboxUp(args: SandboxArgs, say: (line: string) => void): Promise<{ state: Record<string, unknown>; stop(): Promise<void> }> {
  const previous = readState(args.dir);
  if (previous && statePids(previous).some(isProcessAlive)) {
    throw new SandboxUsageError(`a sandbox is already running from ${args.dir}; run \`doltgate sandbox down --dir ${args.dir}\` first`);
  }
  // A sandbox is disposable: a stale directory from an earlier run is replaced.
  await rm(args.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  await mkdir(args.dir, { recursive: true });
  const entry = join(repositoryRoot(), 'dist', 'bin', 'doltgate.js');
  const started = Date.now();
  const cluster = await LocalCluster.create(
    { dir: args.dir, doltBinary: resolveDoltBinary(), doltgateEntry: entry, detached: args.detach, etcdAuth: true, replication: args.replication },
    (line) => say(`${((Date.now() - started) / 1000).toFixed(1)}s ${line}`),
  );
  let proxy: LocalProxy | undefined;
  try {
    say(`${((Date.now() - started) / 1000).toFixed(1)}s starting the proxy`);
    proxy = await cluster.startProxy(sandboxUser);
    const description = cluster.describe();
    const state = {
      ...description,
      proxy: { host: '127.0.0.1', port: proxy.port, user: sandboxUser.name, password: sandboxUser.password, metrics: `http://127.0.0.1:${proxy.metricsPort}/metrics`, pid: proxy.process.pid },
      dir: args.dir,
    };
    await writePrivateFile(join(args.dir, 'state.json'), JSON.stringify(state, null, 2) + '\n');
    const stopAll = async (): Promise<void> => {
      await cluster.stop();
      await rm(join(args.dir, 'state.json'), { force: true });
    };
    return { state, stop: stopAll };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

export function connectionHelp(state: Record<string, unknown>): string {
  const proxy = state.proxy as { port: number; user: string; password: string; metrics: string };
  const nodes = state.nodes as Array<{ name: string; sqlPort: number; grpc: string; metrics: string }>;
  const etcd = (state.etcd as string[]).join(',');
  return [
    '',
    `doltgate sandbox is ready (${state.replication === 'cluster' ? "Dolt's cluster replication" : 'replication through a file:// remote'}).`,
    `  connect:  mysql -h 127.0.0.1 -P ${proxy.port} -u ${proxy.user} -p${proxy.password} app`,
    `  status:   npx doltgate status --etcd ${etcd} --cluster ${state.cluster as string}`,
    `  control:  etcd has authentication on, and changing calls (switchover, failover, pause,`,
    `            resume) need the agents' token:`,
    ...(state.etcdUser ? [`            export DOLTGATE_ETCD_USER=${state.etcdUser as string} DOLTGATE_ETCD_PASSWORD=${state.etcdPassword as string}`] : []),
    `            export DOLTGATE_TOKEN=${state.controlToken as string}`,
    `            npx doltgate switchover --to n2 --etcd ${etcd} --cluster ${state.cluster as string}`,
    `  metrics:  proxy ${proxy.metrics}`,
    ...nodes.map((node) => `            ${node.name} ${node.metrics}  (dolt on 127.0.0.1:${node.sqlPort}, gRPC ${node.grpc})`),
    `  state:    ${join(state.dir as string, 'state.json')}`,
    '',
  ].join('\n');
}

export async function sandboxCommand(argv: string[]): Promise<number> {
  let args: SandboxArgs;
  try {
    args = parseSandboxArgs(argv);
  } catch (error) {
    process.stderr.write(`doltgate sandbox: ${(error as Error).message}\n${usage}\n`);
    return 2;
  }
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  if (args.action === 'help') {
    say(usage);
    return 0;
  }
  if (args.action === 'down') return sandboxDown(args.dir, say);
  let running: Awaited<ReturnType<typeof sandboxUp>>;
  try {
    running = await sandboxUp(args, say);
  } catch (error) {
    process.stderr.write(`doltgate sandbox: ${(error as Error).message}\n`);
    return error instanceof SandboxUsageError ? 2 : 1;
  }
  say(connectionHelp(running.state));
  if (args.detach) {
    say(`detached; stop it with: npx doltgate sandbox down --dir ${args.dir}`);
    return 0;
  }
  say('running in the foreground; press Ctrl-C to stop everything');
  await new Promise<void>((resolvePromise) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolvePromise();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  say('stopping the sandbox');
  await running.stop();
  say('stopped');
  return 0;
}
