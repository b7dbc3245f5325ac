/**
 * Byte-level mutations for the protocol fuzzer, in the manner of AFL's havoc stage: flip bits,
 * set bytes to the values parsers trip on (0x00, 0xFF, length-encoded-integer markers 0xFB-0xFE,
 * sign boundaries), overwrite 16/32-bit words with boundary values, insert, delete, duplicate or
 * truncate runs, and splice in a piece of another seed. Pure and driven by the caller's PRNG, so
 * a run is reproducible from its seed.
 */

import { Buffer } from 'node:buffer';

type Rand = () => number;

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x20, 0x27, 0x5c, 0x3b, 0x2f, 0x2a, 0x23, 0x2d];
const INTERESTING_WORDS = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000, 0xffffffff];

const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)];
const int = (rand: Rand, n: number): number => Math.floor(rand() * n);

/** One to `maxRounds` stacked mutations of `input`; `corpus` feeds splices. Never returns `input` itself. */
export function mutate(rand: Rand, input: Buffer, corpus: readonly Buffer[], maxRounds = 4): Buffer {
  let b: Buffer = Buffer.from(input);
  const rounds = 1 + int(rand, maxRounds);
  for (let r = 0; r < rounds; r++) b = mutateOnce(rand, b, corpus);
  return b;
}

function mutateOnce(rand: Rand, b: Buffer, corpus: readonly Buffer[]): Buffer {
  if (b.length === 0) return Buffer.from([pick(rand, INTERESTING_BYTES)]);
  const at = int(rand, b.length);
  switch (int(rand, 10)) {
    case 0: {
      b[at] ^= 1 << int(rand, 8);
      return b;
    }
    case 1: {
      b[at] = pick(rand, INTERESTING_BYTES);
      return b;
    }
    case 2: {
      b[at] = int(rand, 256);
      return b;
    }
    case 3: {
      const width = pick(rand, [2, 3, 4]);
      if (at + width > b.length) return b;
      const value = pick(rand, INTERESTING_WORDS) % 2 ** (8 * width);
      b.writeUIntLE(value, at, width);
      return b;
    }
    case 4: {
      const insert = Buffer.alloc(1 + int(rand, 8), pick(rand, INTERESTING_BYTES));
      return Buffer.concat([b.subarray(0, at), insert, b.subarray(at)]);
    }
    case 5: {
      const n = 1 + int(rand, Math.min(16, b.length - at));
      return Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
    }
    case 6: {
      const n = 1 + int(rand, Math.min(32, b.length - at));
      return Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
    }
    case 7:
      return b.subarray(0, at);
    case 8: {
      const other = pick(rand, corpus);
      if (other.length === 0) return b;
      const from = int(rand, other.length);
      const piece = other.subarray(from, from + 1 + int(rand, 64));
      return Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);
    }
    default: {
      // A long run: lengths near a boundary are where parsers over- or under-read.
      const n = pick(rand, [250, 251, 252, 255, 256, 65535, 65536]);
      return Buffer.concat([b.subarray(0, at), Buffer.alloc(n, pick(rand, INTERESTING_BYTES)), b.subarray(at)]);
    }
  }
}
