/**
 * Cuts one process off from some loopback ports, the way a network partition would: packets are
 * dropped silently (requests hang until their timeouts, as on a real partition), nothing is reset.
 * New connections: the process moves into a cgroup of its own and an iptables rule drops its
 * packets to those ports (`-m cgroup --path`, cgroup v2). Connections it already has: a socket
 * keeps the cgroup it was created in, so each of the process's open connections to those ports
 * (found through /proc) gets a rule on its local port, both directions. Everything else on the
 * host, its own children included, keeps talking. Used to partition a primary's agent from etcd
 * while its Dolt and the rest run on.
 *
 * Every rule and cgroup made here is undone by `heal()`, and `healAll()` undoes whatever is left
 * (the suite calls it on exit and on failure). Rules carry a comment naming this process, so a
 * person can tell them apart from anything else on the machine.
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const cgroupRoot = '/sys/fs/cgroup/unified';

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

export class PartitionUnavailableError extends Error {
  readonly code = 'PARTITION_UNAVAILABLE';
}

export interface Partition {
  pid: number;
  ports: number[];
  heal(): Promise<void>;
}

const open = new Set<Partition>();
let counter = 0;

/** Whether this machine can partition by cgroup (iptables present, cgroup v2 writable). */
export async function partitionsSupported(): Promise<string | null> {
  if (!existsSync(cgroupRoot)) return `no cgroup v2 hierarchy at ${cgroupRoot}`;
  try {
    await run('iptables', ['-w', '-S', 'OUTPUT']);
  } catch (error) {
    return (error as Error).message;
  }
  return null;
}

export async function partition(pid: number, ports: number[]): Promise<Partition> {
  const unsupported = await partitionsSupported();
  if (unsupported !== null) throw new PartitionUnavailableError(`cannot partition: ${unsupported}`);
  const name = `doltgate-fault-${process.pid}-${++counter}`;
  const dir = join(cgroupRoot, name);
  await mkdir(dir);
  const comment = ['-m', 'comment', '--comment', name, '-j', 'DROP'];
  const rules: string[][] = [];
  for (const port of ports) rules.push(['OUTPUT', '-o', 'lo', '-p', 'tcp', '--dport', String(port), '-m', 'cgroup', '--path', name, ...comment]);
  for (const socket of await openConnections(pid, ports)) {
    rules.push(['OUTPUT', '-o', 'lo', '-p', 'tcp', '--sport', String(socket.local), '--dport', String(socket.remote), ...comment]);
    rules.push(['OUTPUT', '-o', 'lo', '-p', 'tcp', '--sport', String(socket.remote), '--dport', String(socket.local), ...comment]);
  }
  const added: string[][] = [];
  const heal = async (): Promise<void> => {
    if (!open.delete(handle)) return;
    for (const rule of added) await run('iptables', ['-w', '-D', ...rule]).catch(() => undefined);
    // Everything in the cgroup (the process, and any child it started meanwhile) goes back to
    // the root cgroup, so the directory can go.
    for (let attempt = 0; attempt < 50; attempt++) {
      const procs = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
      if (procs.length === 0) break;
      for (const member of procs) await writeFile(join(cgroupRoot, 'cgroup.procs'), `${member}\n`).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await rmdir(dir).catch(() => undefined);
  };
  const handle: Partition = { pid, ports, heal };
  open.add(handle);
  try {
    for (const rule of rules) {
      await run('iptables', ['-w', '-A', ...rule]);
      added.push(rule);
    }
    await writeFile(join(dir, 'cgroup.procs'), `${pid}\n`);
  } catch (error) {
    await heal();
    throw error;
  }
  return handle;
}

/** The process's TCP connections to any of `ports` on loopback, as (local port, remote port). */
async function openConnections(pid: number, ports: number[]): Promise<Array<{ local: number; remote: number }>> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match) inodes.add(match[1]);
  }
  const found: Array<{ local: number; remote: number }> = [];
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9])) continue;
      const local = parseInt(fields[1].split(':')[1], 16);
      const remote = parseInt(fields[2].split(':')[1], 16);
      if (ports.includes(remote)) found.push({ local, remote });
    }
  }
  return found;
}

export async function healAll(): Promise<void> {
  for (const p of [...open]) await p.heal();
}
