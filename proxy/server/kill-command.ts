/**
 * KILL through the proxy. The ids a client sees (greeting, `doltgate` errors) are the proxy's
 * connection ids, so `KILL [QUERY|CONNECTION] id` and COM_PROCESS_KILL are carried out by the
 * proxy: forwarded, they would kill whichever Dolt connection happens to have that number — maybe
 * another client's, through one of the proxy's own backend connections.
 *
 * `parseKill` recognises the statement, also as one part of a multi-statement or as the text of a
 * PREPARE (both refused: the proxy runs a KILL only as a statement of its own). `planKill` applies
 * MySQL's rule for a user without the PROCESS privilege (only sessions of the same user may be
 * killed) and says what the session does.
 */

import { Buffer } from 'node:buffer';
import type { Classification } from '../routing/classifier';
import { SqlLexer, Tok } from '../routing/sql-lexer';
import { BackendErrorReply, KillDeniedError, NoSuchThreadError } from './errors';

export const KILL_NEEDS_LITERAL_ID = 'doltgate: KILL takes a literal connection id through the proxy';
export const KILL_NOT_PREPARED = "doltgate: KILL cannot be prepared through the proxy (run by Dolt, its id would name one of Dolt's connections); send it as a plain statement";
export const KILL_NOT_ALONE = "doltgate: send KILL as a statement of its own through the proxy; inside a multi-statement it would reach Dolt, whose connection ids are not the proxy's";

/** A KILL the proxy carries out, or one it refuses with `refusal`. */
export type KillRequest = { query: boolean; id: number } | { refusal: string };

const lexer = new SqlLexer();
/** For the text of a PREPARE, read while `lexer` is inside the outer statement. */
const innerLexer = new SqlLexer();

function startsWithKill(text: string, noBackslashEscapes: boolean): boolean {
  innerLexer.reset(Buffer.from(text), noBackslashEscapes);
  try {
    return innerLexer.next() === Tok.Word && innerLexer.keyword === 'kill';
  } finally {
    innerLexer.release();
  }
}

/** After PREPARE: `name FROM 'KILL ...'` (a statement text held in a variable cannot be seen). */
function preparesKill(noBackslashEscapes: boolean): boolean {
  const name = lexer.next();
  if (name !== Tok.Word && name !== Tok.QuotedIdent) return false;
  if (lexer.next() !== Tok.Word || !lexer.is('from')) return false;
  return lexer.next() === Tok.String && startsWithKill(lexer.unquoted(), noBackslashEscapes);
}

/** A statement of `sql` that starts with KILL, or one that prepares a KILL from a literal. */
function findKill(sql: Buffer, noBackslashEscapes: boolean): 'kill' | 'prepared-kill' | null {
  lexer.reset(sql, noBackslashEscapes);
  try {
    let atStart = true;
    for (let t = lexer.next(); t !== Tok.End; t = lexer.next()) {
      if (atStart && lexer.keyword === 'kill') return 'kill';
      if (atStart && lexer.keyword === 'prepare' && preparesKill(noBackslashEscapes)) return 'prepared-kill';
      atStart = lexer.type === Tok.Semicolon;
    }
    return null;
  } finally {
    lexer.release();
  }
}

/**
 * The single statement `KILL [QUERY|CONNECTION] <digits> [;]`, read by the lexer so that comments
 * of every kind (`#`, `-- `, `/* *\/`) and any length are seen as Dolt would see them; null
 * when the statement does not start with KILL.
 */
function lexKill(sql: Buffer, noBackslashEscapes: boolean): KillRequest | null {
  lexer.reset(sql, noBackslashEscapes);
  try {
    if (lexer.next() !== Tok.Word || lexer.keyword !== 'kill') return null;
    let t = lexer.next();
    let query = false;
    if (t === Tok.Word && (lexer.is('query') || lexer.is('connection'))) {
      query = lexer.is('query');
      t = lexer.next();
    }
    if (t !== Tok.Word) return { refusal: KILL_NEEDS_LITERAL_ID };
    const id = lexer.text();
    if (!/^\d+$/.test(id)) return { refusal: KILL_NEEDS_LITERAL_ID };
    t = lexer.next();
    if (t === Tok.Semicolon) t = lexer.next();
    if (t !== Tok.End) return { refusal: KILL_NEEDS_LITERAL_ID };
    return { query, id: Number(id) };
  } finally {
    lexer.release();
  }
}

/** The KILL in `sql` (classified as `c`), or null when it is other SQL. */
export function parseKill(c: Classification, sql: Buffer, noBackslashEscapes = false): KillRequest | null {
  if (c.kind === 'multi') {
    if (!c.parts.some((part) => part.kind === 'admin' || part.kind === 'prepare')) return null;
    const found = findKill(sql, noBackslashEscapes);
    return found === null ? null : { refusal: found === 'kill' ? KILL_NOT_ALONE : KILL_NOT_PREPARED };
  }
  if (c.kind === 'prepare') return findKill(sql, noBackslashEscapes) === 'prepared-kill' ? { refusal: KILL_NOT_PREPARED } : null;
  if (c.kind !== 'admin') return null;
  return lexKill(sql, noBackslashEscapes);
}

export interface KillableSession {
  readonly userName: string | null;
}

/**
 * - refuse: answer with `error`;
 * - ok: nothing to do but answer OK (KILL QUERY of the asking session: its only command is this one);
 * - close-self: KILL CONNECTION of the asking session;
 * - interrupt / close: cut the target's command, or close the target; then answer OK.
 */
export type KillPlan<S> = { action: 'refuse'; error: Error } | { action: 'ok' } | { action: 'close-self' } | { action: 'interrupt' | 'close'; target: S };

export function planKill<S extends KillableSession>(requester: S, request: KillRequest, findSession: (id: number) => S | undefined): KillPlan<S> {
  if ('refusal' in request) return { action: 'refuse', error: new BackendErrorReply(1064, '42000', request.refusal) };
  const target = findSession(request.id);
  if (target === undefined) return { action: 'refuse', error: new NoSuchThreadError(request.id) };
  if (target.userName !== requester.userName) return { action: 'refuse', error: new KillDeniedError(request.id) };
  if (target === requester) return request.query ? { action: 'ok' } : { action: 'close-self' };
  return { action: request.query ? 'interrupt' : 'close', target };
}
