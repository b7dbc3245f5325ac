/**
 * Password proofs of the two auth plugins the proxy speaks, from both ends: scrambling a
 * password as a client (to log in to Dolt) and verifying a client's proof as a server against a
 * stored hash. The proxy never stores or logs plain passwords; a proxy user is kept as
 *
 *   mysql_native_password:  SHA1(SHA1(pw))        (MySQL's '*' + 40 hex, see parseNativePasswordHash)
 *   caching_sha2_password:  SHA256(SHA256(pw))
 *
 * and an empty password as an empty hash. Both proofs are "hash XOR mask" where the mask
 * depends on the scramble and the stored hash, so the server recovers the inner hash by
 * unmasking and checks that hashing it gives the stored value. A side effect the proxy can use:
 * the recovered SHA1(pw) / SHA256(pw) is enough to answer a backend's scramble for the same
 * user without knowing the password (`recover*` + `scramble*FromStage1`).
 *
 * Unlike MySQL, which keeps a salted SHA256-crypt for caching_sha2 full authentication, the
 * proxy checks the cleartext of full authentication against the same unsalted double hash; the
 * store holding those hashes must be protected like a password file. Comparisons are constant
 * time. Only node:crypto is used.
 */

import { Buffer } from 'node:buffer';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { SCRAMBLE_LENGTH } from './constants';

/** caching_sha2_password status bytes, sent as AuthMoreData (and the client's key request). */
export const enum CachingSha2Status {
  /** Client to server: send me your RSA public key (full auth without TLS). */
  REQUEST_PUBLIC_KEY = 0x02,
  /** Server to client: the scramble matched the cache; an OK packet follows. */
  FAST_AUTH_SUCCESS = 0x03,
  /** Server to client: send the password (cleartext over TLS, RSA-encrypted otherwise). */
  PERFORM_FULL_AUTHENTICATION = 0x04,
}

const EMPTY = Buffer.alloc(0);

function sha1(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
}

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

function passwordBytes(password: string | Uint8Array): Uint8Array {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}

/**
 * The 20 scramble bytes MySQL clients accept: printable ASCII without '$', no NUL (the
 * handshake ends part 2 with a NUL, and some clients stop there).
 */
export function generateScramble(): Buffer {
  const out = randomBytes(SCRAMBLE_LENGTH);
  for (let i = 0; i < out.length; i++) {
    let b = (out[i] % 94) + 33; // 33..126
    if (b === 0x24) b = 0x25;
    out[i] = b;
  }
  return out;
}

// ---- mysql_native_password --------------------------------------------------------------------

/** Stored form: SHA1(SHA1(password)); empty for the empty password. */
export function nativePasswordHash(password: string | Uint8Array): Buffer {
  const pw = passwordBytes(password);
  return pw.length === 0 ? EMPTY : sha1(sha1(pw));
}

/** Reads MySQL's textual form ('*' + 40 hex digits, as in mysql.user) into the stored hash. */
export function parseNativePasswordHash(text: string): Buffer {
  if (text === '') return EMPTY;
  const hex = text.startsWith('*') ? text.slice(1) : text;
  if (!/^[0-9a-fA-F]{40}$/.test(hex)) throw new RangeError('native password hash must be * and 40 hex digits');
  return Buffer.from(hex, 'hex');
}

/** MySQL's textual form of a stored native hash. */
export function formatNativePasswordHash(hash: Uint8Array): string {
  return hash.length === 0 ? '' : '*' + Buffer.from(hash).toString('hex').toUpperCase();
}

/** Client proof: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); empty for the empty password. */
export function scrambleNativePassword(password: string | Uint8Array, scramble: Uint8Array): Buffer {
  const pw = passwordBytes(password);
  if (pw.length === 0) return EMPTY;
  return scrambleNativeFromStage1(sha1(pw), scramble);
}

/** The client proof from SHA1(pw) alone (see the file doc). */
export function scrambleNativeFromStage1(stage1: Uint8Array, scramble: Uint8Array): Buffer {
  return xor(stage1, sha1(scramble.subarray(0, SCRAMBLE_LENGTH), sha1(stage1)));
}

/**
 * Server side: SHA1(pw) recovered from a client's proof, or null if the proof does not match
 * `storedHash`. For the empty password (empty hash, empty proof) there is nothing to recover
 * and the result is an empty Buffer.
 */
export function recoverNativePasswordStage1(
  token: Uint8Array,
  scramble: Uint8Array,
  storedHash: Uint8Array,
): Buffer | null {
  if (storedHash.length === 0) return token.length === 0 ? EMPTY : null;
  if (token.length !== 20 || storedHash.length !== 20) return null;
  const stage1 = xor(token, sha1(scramble.subarray(0, SCRAMBLE_LENGTH), storedHash));
  return timingSafeEqual(sha1(stage1), storedHash) ? stage1 : null;
}

export function verifyNativePassword(token: Uint8Array, scramble: Uint8Array, storedHash: Uint8Array): boolean {
  return recoverNativePasswordStage1(token, scramble, storedHash) !== null;
}

// ---- caching_sha2_password --------------------------------------------------------------------

/** Stored form: SHA256(SHA256(password)); empty for the empty password. */
export function cachingSha2PasswordHash(password: string | Uint8Array): Buffer {
  const pw = passwordBytes(password);
  return pw.length === 0 ? EMPTY : sha256(sha256(pw));
}

/** Client proof: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + scramble); empty for empty. */
export function scrambleCachingSha2Password(password: string | Uint8Array, scramble: Uint8Array): Buffer {
  const pw = passwordBytes(password);
  if (pw.length === 0) return EMPTY;
  return scrambleCachingSha2FromStage1(sha256(pw), scramble);
}

/** The client proof from SHA256(pw) alone. */
export function scrambleCachingSha2FromStage1(stage1: Uint8Array, scramble: Uint8Array): Buffer {
  return xor(stage1, sha256(sha256(stage1), scramble.subarray(0, SCRAMBLE_LENGTH)));
}

/**
 * Server fast path: SHA256(pw) recovered from the client's proof (unmask with
 * SHA256(stored + scramble), then SHA256 of it must equal the stored hash), or null.
 */
export function recoverCachingSha2Stage1(
  token: Uint8Array,
  scramble: Uint8Array,
  storedHash: Uint8Array,
): Buffer | null {
  if (storedHash.length === 0) return token.length === 0 ? EMPTY : null;
  if (token.length !== 32 || storedHash.length !== 32) return null;
  const stage1 = xor(token, sha256(storedHash, scramble.subarray(0, SCRAMBLE_LENGTH)));
  return timingSafeEqual(sha256(stage1), storedHash) ? stage1 : null;
}

export function verifyCachingSha2Password(token: Uint8Array, scramble: Uint8Array, storedHash: Uint8Array): boolean {
  return recoverCachingSha2Stage1(token, scramble, storedHash) !== null;
}

/**
 * Full authentication over TLS: the client sent its password in clear, NUL-terminated.
 * Returns SHA256(pw) on a match (so the proxy can scramble for a backend), else null.
 */
export function verifyCachingSha2Cleartext(payload: Uint8Array, storedHash: Uint8Array): Buffer | null {
  const end = payload.length > 0 && payload[payload.length - 1] === 0 ? payload.length - 1 : payload.length;
  const pw = payload.subarray(0, end);
  if (pw.length === 0) return storedHash.length === 0 ? EMPTY : null;
  if (storedHash.length !== 32) return null;
  const stage1 = sha256(pw);
  return timingSafeEqual(sha256(stage1), storedHash) ? stage1 : null;
}

/** The cleartext password message a client sends for full authentication over TLS. */
export function cleartextPasswordPayload(password: string | Uint8Array): Buffer {
  const pw = passwordBytes(password);
  const out = Buffer.allocUnsafe(pw.length + 1);
  out.set(pw, 0);
  out[pw.length] = 0;
  return out;
}
