/** A process's resident memory, from /proc/<pid>/status (Linux only). */

import { readFileSync } from 'node:fs';

/** VmRSS of `pid` in KiB; 0 when the kernel does not report it. */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]);
}
