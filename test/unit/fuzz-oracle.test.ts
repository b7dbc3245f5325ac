/**
 * The fuzzer's own logic (bench/fuzz/): its mutations are reproducible from the seed, and its
 * bypass oracle tells a real login from a forged one — else a fuzz run proving "0 bypasses"
 * would prove nothing.
 */

import { expect } from 'chai';
import { Buffer } from 'node:buffer';
import { prng } from '../../common/prng';
import { generateScramble } from '../../proxy/protocol';
import { isGenuineLogin } from '../../bench/fuzz/fuzz-run';
import { mutate } from '../../bench/fuzz/mutator';
import { commandSeeds, handshakeSeeds, validProofs } from '../../bench/fuzz/seed-corpus';

describe('fuzzer', () => {
  it('mutations are a function of the seed, and change the input', () => {
    const seeds = commandSeeds();
    const run = (seed: number) => {
      const rand = prng(seed);
      return [...Array(200)].map((_, i) => mutate(rand, seeds[i % seeds.length], seeds).toString('hex'));
    };
    expect(run(42)).to.deep.equal(run(42));
    expect(run(42)).to.not.deep.equal(run(43));
    const changed = run(42).filter((hex, i) => hex !== seeds[i % seeds.length].toString('hex')).length;
    expect(changed).to.be.at.least(190);
  });

  it('the bypass oracle: every genuine handshake shape passes; another user, a wrong proof or a mangled packet does not', () => {
    const scramble = generateScramble();
    const proofs = validProofs('pw', scramble);
    for (const shape of handshakeSeeds('fuzz', 'pw', scramble, 'db')) expect(isGenuineLogin(shape, 'fuzz', proofs)).to.equal(true);
    const [genuine] = handshakeSeeds('fuzz', 'pw', scramble, 'db');
    expect(isGenuineLogin(handshakeSeeds('other', 'pw', scramble, 'db')[0], 'fuzz', proofs)).to.equal(false);
    expect(isGenuineLogin(handshakeSeeds('fuzz', 'wrong', scramble, 'db')[0], 'fuzz', proofs)).to.equal(false);
    const flipped = Buffer.from(genuine);
    flipped[40] ^= 1; // inside the proof (after 32 fixed bytes, "fuzz\0", the length byte)
    expect(isGenuineLogin(flipped, 'fuzz', proofs)).to.equal(false);
    expect(isGenuineLogin(genuine.subarray(0, 10), 'fuzz', proofs)).to.equal(false);
  });
});
