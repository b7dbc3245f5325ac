/**
 * CPU time a process has used so far, from /proc/<pid>/stat (utime + stime, in clock ticks):
 * the benchmark samples it before and after a run to charge the pipe or the proxy per query.
 * Linux only; resolution is one clock tick (usually 10 ms), so runs should last seconds.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export class ProcCpuError extends Error {
  readonly code = 'PROC_CPU';
  constructor(pid: number, detail: string) {
    super(`cannot read the CPU time of pid ${pid}: ${detail}`);
  }
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU seconds of `pid` (its own threads, not its children). */
export function cpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    throw new ProcCpuError(pid, (error as Error).message);
  }
  // The command name (field 2) is in parentheses and may contain spaces: count fields after ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After ')' the fields start at field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new ProcCpuError(pid, `unexpected stat line: ${stat.slice(0, 120)}`);
  return (utime + stime) / clockTicks();
}
