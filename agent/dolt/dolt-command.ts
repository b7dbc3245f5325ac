/**
 * Runs the `dolt` command line (init, clone, remote, config) for one node. Each node has its own
 * DOLT_ROOT_PATH so that its global config — where Dolt reads the read-replica settings from —
 * never leaks into another node's, or into the user's $HOME.
 */

import { execFile } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DoltEnvironment {
  /** Path of the dolt binary. */
  binary: string;
  /** DOLT_ROOT_PATH of this node: Dolt keeps `.dolt/config_global.json` under it. */
  rootPath: string;
}

export class DoltCommandError extends Error {
  readonly code = 'DOLT_COMMAND';
  constructor(readonly args: string[], readonly stderr: string, exitCode: number | string | null) {
    super(`dolt ${args.join(' ')} failed (exit ${exitCode}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }

  /** Dolt prints progress on stdout and the reason on stderr: the reason must end the message. */
  static fromOutput(args: string[], stdout: string, stderr: string, exitCode: number | string | null): DoltCommandError {
    return new DoltCommandError(args, `${stdout}${stdout.endsWith('\n') || stdout === '' ? '' : '\n'}${stderr}`, exitCode);
  }
}

export function doltProcessEnv(env: DoltEnvironment): NodeJS.ProcessEnv {
  // NO_COLOR keeps ANSI escapes out of output we parse; the root path isolates global config.
  return { ...process.env, DOLT_ROOT_PATH: env.rootPath, NO_COLOR: '1' };
}

export function runDolt(env: DoltEnvironment, args: string[], cwd: string, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(env.binary, args, { cwd, env: doltProcessEnv(env), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(DoltCommandError.fromOutput(args, stdout, stderr, (error as NodeJS.ErrnoException).code ?? null));
        return;
      }
      resolve(stdout);
    });
  });
}

/** Sets up the node's global identity once; Dolt refuses commits without user.name/email. */
export async function initDoltRoot(env: DoltEnvironment, cwd: string, identity = { name: 'doltgate', email: 'doltgate@localhost' }): Promise<void> {
  await setGlobalConfig(env, cwd, {
    'user.name': identity.name,
    'user.email': identity.email,
    // No phoning home: these machines have no internet, and a metrics push only adds latency.
    'metrics.disabled': 'true',
  });
}

/** The node's global config as Dolt keeps it; read only to skip `dolt config` calls that change nothing. */
function currentGlobalConfig(env: DoltEnvironment): Record<string, string> | null {
  try {
    return JSON.parse(readFileSync(join(env.rootPath, '.dolt', 'config_global.json'), 'utf8')) as Record<string, string>;
  } catch {
    return null;
  }
}

export async function setGlobalConfig(env: DoltEnvironment, cwd: string, entries: Record<string, string | null>): Promise<void> {
  const current = currentGlobalConfig(env);
  if (current !== null) {
    // A role change sits on the failover's critical path and each `dolt config` is a process
    // start (~70 ms), so the flat JSON file Dolt keeps under DOLT_ROOT_PATH is edited directly
    // (only while the server is stopped; test/integration/dolt-facts.test.ts pins that Dolt reads
    // replication settings from it). Written atomically.
    const next: Record<string, string> = { ...current };
    for (const [key, value] of Object.entries(entries)) {
      if (value === null) delete next[key];
      else next[key] = value;
    }
    const file = join(env.rootPath, '.dolt', 'config_global.json');
    writeFileSync(`${file}.tmp`, JSON.stringify(next));
    renameSync(`${file}.tmp`, file);
    return;
  }
  for (const [key, value] of Object.entries(entries)) {
    if (value === null) {
      await runDolt(env, ['config', '--global', '--unset', key], cwd).catch((error: DoltCommandError) => {
        // Unsetting a key that is not there is what we wanted anyway.
        if (!/not found|does not exist|no such|key/i.test(error.stderr)) throw error;
      });
    } else {
      await runDolt(env, ['config', '--global', '--add', key, value], cwd);
    }
  }
}
