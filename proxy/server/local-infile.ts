/**
 * LOAD DATA LOCAL INFILE through the proxy: the client's file is relayed to Dolt only when all of
 * these hold, and refused (3948) otherwise:
 *
 *  - the proxy user has `allow_local_infile` (proxy.yaml; off by default: a proxy must never let
 *    a server read a client's files unasked);
 *  - the client itself enabled local files (CLIENT_LOCAL_FILES in its handshake response; the
 *    greeting offers it only when some user is allowed);
 *  - the LOAD DATA LOCAL is a statement of its own (not one of a multi-statement query), naming
 *    its file with a plain string literal;
 *  - Dolt's LOCAL INFILE request names exactly that file. Dolt asks for a file even from a client
 *    that did not enable local files (test/integration/dolt-local-infile-facts.test.ts), so the
 *    check is the proxy's: a request for any other file — a compromised or confused server
 *    asking for ~/.ssh/id_rsa — closes the backend connection and the client is never asked.
 *
 * Dolt also needs local_infile = 1 (agent config `dolt.local_infile`), or it refuses with 1105.
 */

import { Buffer } from 'node:buffer';
import { SqlLexer, Tok } from '../routing/sql-lexer';
import { LocalInfileRefusedError, OutcomeUnknownError } from './errors';

const lexer = new SqlLexer();

/**
 * The file a single-statement `LOAD DATA [LOW_PRIORITY|CONCURRENT] LOCAL INFILE '<file>' …`
 * names, or why it cannot be relayed. The caller has already found it is a LOAD DATA LOCAL.
 */
export function localInfileTarget(sql: Buffer, noBackslashEscapes: boolean): { file: string } | { refusal: string } {
  lexer.reset(sql, noBackslashEscapes);
  try {
    // LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] LOCAL INFILE 'file'
    if (lexer.next() !== Tok.Word || !lexer.is('load')) return { refusal: 'expected LOAD at the start of the statement' };
    let t = lexer.next();
    if (t !== Tok.Word || !(lexer.is('data') || lexer.is('xml'))) return { refusal: 'expected LOAD DATA or LOAD XML' };
    t = lexer.next();
    if (t === Tok.Word && (lexer.is('low_priority') || lexer.is('concurrent'))) t = lexer.next();
    if (t !== Tok.Word || !lexer.is('local')) return { refusal: 'expected LOCAL' };
    if (lexer.next() !== Tok.Word || !lexer.is('infile')) return { refusal: 'expected INFILE after LOCAL' };
    if (lexer.next() !== Tok.String) return { refusal: 'name the file with a string literal' };
    const raw = lexer.text();
    // Dolt names the file as its SQL parser read the literal; with escapes that is not the text.
    if (raw.includes('\\') && !noBackslashEscapes) return { refusal: 'name the file without backslashes' };
    return { file: lexer.unquoted() };
  } finally {
    lexer.release();
  }
}

/** Whether a LOCAL INFILE request packet (0xFB, then the file name) names exactly `expected`. */
export function requestNamesFile(payload: Buffer, expected: string): boolean {
  if (payload.length < 1 || payload[0] !== 0xfb) return false;
  return payload.subarray(1).toString('utf8') === expected && Buffer.byteLength(expected) === payload.length - 1;
}

/**
 * Why a response the proxy cannot forward ends the command — a LOCAL INFILE request it may not
 * relay (`expected` null: the session may not; else another file than the statement named), or
 * an authentication exchange — the client is never asked for anything.
 */
export function unforwardableStep(localInfileRequest: boolean, expected: string | null, backend: string): Error {
  if (!localInfileRequest) return new OutcomeUnknownError(backend, 'the backend started an authentication exchange');
  return new LocalInfileRefusedError(expected === null ? undefined : `${backend} asked for a file the statement did not name; the connection was closed and no file was read`);
}
