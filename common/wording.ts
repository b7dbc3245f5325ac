/**
 * Wording helpers for decision reasons and CLI output. Reasons are logged, shown by `doltgate status` and
 * asserted by tests, so the same quantity is always written the same way: durations as
 * `850 ms`, `1.2 s`, `12 s`; counts with their noun agreeing (`1 failed check`, `3 failed checks`).
 */

/** Milliseconds as a person reads them: `850 ms`, `1.2 s` below ten seconds, `12 s` above. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(ms)} ms`;
  if (abs < 10_000) return `${(ms / 1_000).toFixed(1)} s`;
  return `${Math.round(ms / 1_000)} s`;
}

/** `1 commit`, `3 commits`. */
export function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** `1st`, `2nd`, `3rd`, `11th`. */
export function ordinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  switch (n % 10) {
    case 1:
      return `${n}st`;
    case 2:
      return `${n}nd`;
    case 3:
      return `${n}rd`;
    default:
      return `${n}th`;
  }
}
