/** The last lines of a test's log files, for the report a failed test prints (cleanup.ts). */

import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

const longestLine = 600;

/** Every `*.log` file under `dir` (two levels deep), but etcd's, which says little about a failure. */
async function logFilesUnder(dir: string, depth = 2): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && depth > 0 && entry.name !== 'etcd') found.push(...(await logFilesUnder(path, depth - 1)));
    else if (entry.isFile() && entry.name.endsWith('.log')) found.push(path);
  }
  return found.sort();
}

/** The last `lines` lines of each log under `dir`, each file headed by its path under `dir`. */
export async function logTails(dir: string, lines = 40): Promise<string> {
  const parts: string[] = [];
  for (const file of await logFilesUnder(dir)) {
    const size = (await stat(file)).size;
    const text = await readFile(file, 'utf8');
    const tail = text.split('\n').filter((line) => line !== '').slice(-lines).map((line) => (line.length > longestLine ? `${line.slice(0, longestLine)}…` : line));
    parts.push(`== ${relative(dir, file)} (${size} bytes, last ${tail.length} lines)\n${tail.join('\n')}`);
  }
  return parts.join('\n');
}
