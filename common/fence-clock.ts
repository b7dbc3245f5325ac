/**
 * The clock that lease and fence deadlines are measured on: Linux's CLOCK_BOOTTIME, read from
 * /proc/uptime. It is monotonic (a wall-clock step cannot stretch or shorten a lease), it keeps
 * counting while the host is suspended (CLOCK_MONOTONIC stops, so a primary resumed after a
 * suspend would believe its lease still young), and it is one clock for every process on the
 * host, so the agent can hand the keeper beside Dolt an absolute deadline: a message delayed by a
 * frozen agent then carries a deadline already past, never a fresh one.
 *
 * Resolution 10 ms, which is far below every margin it serves. Where /proc/uptime cannot be read
 * (not Linux) it falls back to process.hrtime (CLOCK_MONOTONIC, also shared between processes).
 */

import { readFileSync } from 'node:fs';

let fromUptime = true;

/** Milliseconds on the host's boot clock. */
export function fenceClockMs(): number {
  if (fromUptime) {
    try {
      const text = readFileSync('/proc/uptime', 'latin1');
      const seconds = Number(text.slice(0, text.indexOf(' ')));
      if (Number.isFinite(seconds)) return Math.round(seconds * 1000);
    } catch {
      // fall through
    }
    fromUptime = false;
  }
  return Number(process.hrtime.bigint() / 1_000_000n);
}
