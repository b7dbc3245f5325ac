/**
 * Files that hold secrets (passwords, tokens) are written readable by their owner only — also
 * when the file already existed with a wider mode, which `writeFile`'s `mode` alone would keep.
 */

import { chmod, writeFile } from 'node:fs/promises';

export const PRIVATE_FILE_MODE = 0o600;

export async function writePrivateFile(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: PRIVATE_FILE_MODE });
  await chmod(path, PRIVATE_FILE_MODE);
}
