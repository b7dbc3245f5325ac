/**
 * Password proofs: expected values are computed here straight from the plugin formulas with
 * node:crypto (not through the module), plus MySQL's well-known PASSWORD('password') hash.
 */

import { createHash } from 'node:crypto';

import { expect } from 'chai';

import {
  CachingSha2Status,
  cachingSha2PasswordHash,
  cleartextPasswordPayload,
  formatNativePasswordHash,
  generateScramble,
  nativePasswordHash,
  parseNativePasswordHash,
  recoverCachingSha2Stage1,
  recoverNativePasswordStage1,
  scrambleCachingSha2FromStage1,
  scrambleCachingSha2Password,
  scrambleNativeFromStage1,
  scrambleNativePassword,
  verifyCachingSha2Cleartext,
  verifyCachingSha2Password,
  verifyNativePassword,
} from '../../proxy/protocol/auth';

const sha1 = (...parts: Buffer[]): Buffer => parts.reduce((h, p) => h.update(p), createHash('sha1')).digest();
const sha256 = (...parts: Buffer[]): Buffer => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest();
const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((x, i) => x ^ b[i]));

const SCRAMBLE = Buffer.from('0123456789abcdefghij', 'latin1');
const OTHER_SCRAMBLE = Buffer.from('ABCDEFGHIJ0123456789', 'latin1');
const PW = Buffer.from('s3cret-pässword', 'utf8');

/** mysql_native_password client proof, from the formula. */
function expectedNative(pw: Buffer, scramble: Buffer): Buffer {
  return xor(sha1(pw), sha1(scramble, sha1(sha1(pw))));
}

/** caching_sha2_password client proof, from the formula. */
function expectedSha2(pw: Buffer, scramble: Buffer): Buffer {
  return xor(sha256(pw), sha256(sha256(sha256(pw)), scramble));
}

describe('protocol/auth', () => {
  describe('mysql_native_password', () => {
    it("stores SHA1(SHA1(pw)); PASSWORD('password') is MySQL's *2470C0C0...", () => {
      expect(formatNativePasswordHash(nativePasswordHash('password'))).to.equal('*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
      expect(nativePasswordHash(PW).equals(sha1(sha1(PW)))).to.equal(true);
      expect(parseNativePasswordHash('*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19').equals(nativePasswordHash('password'))).to.equal(true);
      expect(() => parseNativePasswordHash('*2470')).to.throw(RangeError);
    });

    it('scrambles like the formula, from the password or from SHA1(pw)', () => {
      const want = expectedNative(PW, SCRAMBLE);
      expect(scrambleNativePassword(PW, SCRAMBLE).equals(want)).to.equal(true);
      expect(scrambleNativePassword(PW.toString('utf8'), SCRAMBLE).equals(want)).to.equal(true);
      expect(scrambleNativeFromStage1(sha1(PW), SCRAMBLE).equals(want)).to.equal(true);
      expect(scrambleNativePassword('', SCRAMBLE).length).to.equal(0);
    });

    const stored = sha1(sha1(PW));
    const table: Array<[string, Buffer, Buffer, Buffer, boolean]> = [
      ['right password', expectedNative(PW, SCRAMBLE), SCRAMBLE, stored, true],
      ['wrong password', expectedNative(Buffer.from('guess'), SCRAMBLE), SCRAMBLE, stored, false],
      ['proof for another scramble (replay)', expectedNative(PW, OTHER_SCRAMBLE), SCRAMBLE, stored, false],
      ['empty proof for a password', Buffer.alloc(0), SCRAMBLE, stored, false],
      ['truncated proof', expectedNative(PW, SCRAMBLE).subarray(0, 19), SCRAMBLE, stored, false],
      ['empty proof, empty password', Buffer.alloc(0), SCRAMBLE, Buffer.alloc(0), true],
      ['any proof, empty password', expectedNative(PW, SCRAMBLE), SCRAMBLE, Buffer.alloc(0), false],
    ];
    for (const [name, token, scramble, hash, ok] of table) {
      it(`verifies from the stored hash: ${name} -> ${ok ? 'accept' : 'reject'}`, () => {
        expect(verifyNativePassword(token, scramble, hash)).to.equal(ok);
      });
    }

    it('recovers SHA1(pw) from a good proof, enough to answer a backend scramble', () => {
      const stage1 = recoverNativePasswordStage1(expectedNative(PW, SCRAMBLE), SCRAMBLE, stored);
      expect(stage1?.equals(sha1(PW))).to.equal(true);
      expect(scrambleNativeFromStage1(stage1 as Buffer, OTHER_SCRAMBLE).equals(expectedNative(PW, OTHER_SCRAMBLE))).to.equal(true);
    });
  });

  describe('caching_sha2_password', () => {
    const stored = sha256(sha256(PW));

    it('stores SHA256(SHA256(pw)) and scrambles like the formula', () => {
      expect(cachingSha2PasswordHash(PW).equals(stored)).to.equal(true);
      expect(scrambleCachingSha2Password(PW, SCRAMBLE).equals(expectedSha2(PW, SCRAMBLE))).to.equal(true);
      expect(scrambleCachingSha2FromStage1(sha256(PW), SCRAMBLE).equals(expectedSha2(PW, SCRAMBLE))).to.equal(true);
      expect(scrambleCachingSha2Password('', SCRAMBLE).length).to.equal(0);
    });

    it("matches fixed vectors for 'password' and the test scramble (computed once with node:crypto)", () => {
      expect(cachingSha2PasswordHash('password').toString('hex')).to.equal(
        '73641c99f7719f57d8f4beb11a303afcd190243a51ced8782ca6d3dbe014d146',
      );
      const token = scrambleCachingSha2Password('password', SCRAMBLE);
      expect(token.toString('hex')).to.equal('20f074817578f967c4f3f5e882e7babcc397d12e3d5894a1e304cf2eaebdc850');
      expect(verifyCachingSha2Password(token, SCRAMBLE, cachingSha2PasswordHash('password'))).to.equal(true);
      expect(scrambleNativePassword('password', SCRAMBLE).toString('hex')).to.equal('a41b086992be108194f80bdc922a1af85d38a142');
    });

    const table: Array<[string, Buffer, Buffer, Buffer, boolean]> = [
      ['right password', expectedSha2(PW, SCRAMBLE), SCRAMBLE, stored, true],
      ['wrong password', expectedSha2(Buffer.from('guess'), SCRAMBLE), SCRAMBLE, stored, false],
      ['proof for another scramble (replay)', expectedSha2(PW, OTHER_SCRAMBLE), SCRAMBLE, stored, false],
      ['native-length proof', expectedNative(PW, SCRAMBLE), SCRAMBLE, stored, false],
      ['empty proof, empty password', Buffer.alloc(0), SCRAMBLE, Buffer.alloc(0), true],
    ];
    for (const [name, token, scramble, hash, ok] of table) {
      it(`fast path from the stored hash: ${name} -> ${ok ? 'accept' : 'reject'}`, () => {
        expect(verifyCachingSha2Password(token, scramble, hash)).to.equal(ok);
      });
    }

    it('fast path recovers SHA256(pw)', () => {
      expect(recoverCachingSha2Stage1(expectedSha2(PW, SCRAMBLE), SCRAMBLE, stored)?.equals(sha256(PW))).to.equal(true);
    });

    it('full authentication checks the NUL-terminated cleartext by hashing it', () => {
      expect(cleartextPasswordPayload(PW).equals(Buffer.concat([PW, Buffer.from([0])]))).to.equal(true);
      expect(verifyCachingSha2Cleartext(Buffer.concat([PW, Buffer.from([0])]), stored)?.equals(sha256(PW))).to.equal(true);
      expect(verifyCachingSha2Cleartext(PW, stored)?.equals(sha256(PW))).to.equal(true); // NUL missing: tolerated
      expect(verifyCachingSha2Cleartext(Buffer.from('guess\0'), stored)).to.equal(null);
      expect(verifyCachingSha2Cleartext(Buffer.from('\0'), Buffer.alloc(0))?.length).to.equal(0);
      expect(verifyCachingSha2Cleartext(Buffer.from('\0'), stored)).to.equal(null);
    });

    it('exports the protocol status bytes', () => {
      expect([
        CachingSha2Status.REQUEST_PUBLIC_KEY,
        CachingSha2Status.FAST_AUTH_SUCCESS,
        CachingSha2Status.PERFORM_FULL_AUTHENTICATION,
      ]).to.deep.equal([0x02, 0x03, 0x04]);
    });
  });

  it('generates 20-byte scrambles without NUL or $, different each time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const s = generateScramble();
      expect(s.length).to.equal(20);
      expect(s.includes(0)).to.equal(false);
      expect(s.includes(0x24)).to.equal(false);
      seen.add(s.toString('hex'));
    }
    expect(seen.size).to.equal(200);
  });
});
