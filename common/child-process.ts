/**
 * One long-running child process that we own: started with its output in a log file, stopped by
 * its PID (never by name), signalled for fault injection. Used by the agent to supervise
 * `dolt sql-server`, and by the sandbox and the test bed for etcd, agents and proxies.
 *
 * Invariant: `stop()` resolves only after the process has exited (SIGTERM, then SIGKILL after the
 * grace period), so a caller that awaited it may reuse the port and data directory.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export interface ChildSpec {
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here. */
  logFile: string;
  /** Start in its own process group so a signal to us does not reach it (sandbox --detach). */
  detached?: boolean;
  /** Give the child a pipe on stdin for `write` (the keeper's heartbeat); default: no stdin. */
  stdinPipe?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ChildStartError extends Error {
  readonly code = 'CHILD_START';
  constructor(command: string, cause: string) {
    super(`could not start ${command}: ${cause}`);
  }
}

/** Whether a process with this PID exists (signal 0 probes without signalling). */
export function isProcessAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const liveChildren = new Set<ManagedChild>();

/** PIDs of every child started in this process that has not exited yet. */
export function liveChildPids(): number[] {
  return [...liveChildren].map((child) => child.pid).filter((pid): pid is number => pid !== undefined);
}

/**
 * Last resort for a process that is exiting: SIGKILL every child it still owns, by PID. Only for
 * owners whose children must not outlive them (tests, the sandbox in the foreground).
 */
export function killLiveChildrenSync(): void {
  for (const pid of liveChildPids()) {
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

export class ManagedChild {
  private child: ChildProcess | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private exitInfo: ExitInfo | undefined;

  constructor(readonly spec: ChildSpec) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  get lastExit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Spawns the process; resolves once it has a PID, rejects if it could not be spawned. */
  async start(): Promise<number> {
    if (this.running) throw new ChildStartError(this.spec.command, `already running as pid ${this.pid}`);
    const fd = openSync(this.spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.spec.command, this.spec.args, {
        cwd: this.spec.cwd,
        env: this.spec.env ?? process.env,
        stdio: [this.spec.stdinPipe ? 'pipe' : 'ignore', fd, fd],
        detached: this.spec.detached ?? false,
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.exitInfo = undefined;
    // A child that died leaves a broken pipe: writes to it are best effort, never a crash.
    child.stdin?.on('error', () => undefined);
    liveChildren.add(this);
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        liveChildren.delete(this);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (error) => {
        liveChildren.delete(this);
        reject(new ChildStartError(this.spec.command, error.message));
      });
    });
    if (this.spec.detached) child.unref();
    return child.pid as number;
  }

  /** Resolves when the current process exits (immediately if it is not running). */
  async waitForExit(): Promise<ExitInfo | undefined> {
    if (!this.exited) return undefined;
    return this.exited;
  }

  /** Writes to the child's stdin pipe (stdinPipe); false when there is none or it is gone. */
  write(text: string): boolean {
    const stdin = this.child?.stdin;
    if (!stdin || !this.running || stdin.destroyed) return false;
    stdin.write(text);
    return true;
  }

  /** Closes our end of the child's stdin pipe (what the child sees when we die). */
  closeStdin(): void {
    this.child?.stdin?.end();
  }

  signal(signal: NodeJS.Signals): void {
    if (this.child?.pid !== undefined && this.running) process.kill(this.child.pid, signal);
  }

  /** SIGTERM, then SIGKILL once `graceMs` passes; a stopped (SIGSTOP) process is continued first. */
  async stop(graceMs = 5000): Promise<ExitInfo | undefined> {
    if (!this.running) return this.exitInfo;
    this.signal('SIGTERM');
    this.signal('SIGCONT');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.waitForExit();
    } finally {
      clearTimeout(timer);
    }
  }

  async kill9(): Promise<ExitInfo | undefined> {
    if (!this.running) return this.exitInfo;
    this.signal('SIGKILL');
    return this.waitForExit();
  }
}
