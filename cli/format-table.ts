/**
 * Plain-text tables and the small value formats the CLI's human output shares. Tables are
 * left-aligned columns separated by two spaces, with trailing spaces trimmed, so output pastes
 * cleanly into tickets and `grep`/`awk` still work on it. No colours and no terminal-width
 * tricks: the same bytes on a TTY, in a pipe and in a log.
 *
 * Durations use the HA decision's wording (`850 ms`, `1.2 s`, `12 s`) so the CLI and the reasons
 * it prints never write the same quantity two ways.
 */

import { formatDuration } from '../common/wording';

export { formatDuration };

/** What an absent value prints as in a table cell. */
export const none = '-';

export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, indent = ''): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    indent +
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `2024-05-01 12:00:01Z` (UTC, seconds): sortable, and the same on every operator's machine. */
export function formatTime(iso: string | undefined | null): string {
  if (iso === undefined || iso === null || iso === '') return none;
  const ms = Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

/** `12:00:01` (UTC): the clock column of live progress lines. */
export function formatClock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function formatOptionalDuration(ms: number | undefined | null): string {
  return ms === undefined || ms === null ? none : formatDuration(ms);
}

export function orNone(value: string | number | undefined | null): string {
  return value === undefined || value === null || value === '' ? none : String(value);
}

/** JSON for scripts: absent optional fields become null, so every documented key is present. */
export function nullable<T>(value: T | undefined | null): T | null {
  return value === undefined ? null : value;
}
