import { Buffer } from 'node:buffer';

/** Below this many bytes a plain loop beats Buffer#copy, whose argument checks cost more than the bytes. */
const LOOP_LIMIT = 128;

/**
 * A copy of `src[start, end)` in a Buffer of its own. For the frames the proxy must copy out of a
 * reused read buffer before handing them to a socket write: mostly commands and short responses.
 */
export function copyRange(src: Buffer, start: number, end: number): Buffer {
  const n = end - start;
  const out = Buffer.allocUnsafe(n);
  if (n <= LOOP_LIMIT) {
    for (let i = 0; i < n; i++) out[i] = src[start + i];
  } else {
    out.set(new Uint8Array(src.buffer, src.byteOffset + start, n));
  }
  return out;
}
