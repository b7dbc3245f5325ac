/**
 * Statements that would change what the doltgate agents own on a Dolt server — server-wide
 * variables and SQL users — or that would run SQL the proxy cannot read. Dolt does not check
 * privileges on these (pinned in test/integration/dolt-privilege-facts.test.ts: a user with data
 * rights only may GRANT itself SUPER, change the agent user's password, and SET PERSIST
 * replication off), so the proxy refuses them for every client, whatever its grants:
 *
 * - SET GLOBAL / PERSIST / PERSIST_ONLY and `SET @@global.x` (the classifier's 'global-set');
 * - account statements (CREATE/ALTER/DROP/RENAME USER, GRANT, REVOKE, SET PASSWORD), refused
 *   apart in client-session.ts with their own message (users are per node);
 * - `PREPARE name FROM @variable`: the text is invisible to the proxy. PREPARE from a literal is
 *   read like any statement, so a literal holding one of the above is refused too;
 * - CREATE PROCEDURE / FUNCTION / TRIGGER / EVENT whose body holds any of the above, a KILL or a
 *   PREPARE: the body runs inside Dolt, where the proxy never sees it.
 *
 * A word match in a routine body may refuse an innocent body (a column named `kill`); the error
 * says what to quote or move, and nothing ran.
 */

import { Buffer } from 'node:buffer';
import type { Classification } from '../routing/classifier';
import { SqlLexer, Tok } from '../routing/sql-lexer';

const lexer = new SqlLexer();
const innerLexer = new SqlLexer();

export const GLOBAL_SET_REFUSED =
  'doltgate: SET GLOBAL / SET PERSIST is refused through the proxy: server-wide settings belong to the doltgate agents (replication, read-only, connection limits), and Dolt lets any user change them; set them on the nodes as an administrator';
export const PREPARE_FROM_VARIABLE_REFUSED =
  'doltgate: PREPARE ... FROM a user variable is refused through the proxy: it cannot read the statement it would run; PREPARE from a string literal, or use the binary protocol (COM_STMT_PREPARE)';
export const PREPARED_ADMIN_REFUSED =
  'doltgate: PREPARE of an account statement, a global SET or a KILL is refused through the proxy; users and server settings are managed on the nodes';
export const ROUTINE_BODY_REFUSED =
  'doltgate: a procedure, function, trigger or event whose body holds an account statement (GRANT, REVOKE, CREATE/ALTER/DROP/RENAME USER, SET PASSWORD), a global SET, KILL or PREPARE is refused through the proxy: it would run inside Dolt where the proxy cannot see it (quote an identifier spelled like one of those words)';

function isGlobalSet(c: Classification): boolean {
  return c.statementReason === 'global-set' || c.parts.some((p) => p.statementReason === 'global-set');
}

/** Why `sql` (classified as `c`) is refused here, or null. */
export function serverStateRefusal(c: Classification, sql: Buffer, noBackslashEscapes: boolean): string | null {
  if (isGlobalSet(c)) return GLOBAL_SET_REFUSED;
  lexer.reset(sql, noBackslashEscapes);
  try {
    let atStart = true;
    for (let t = lexer.next(); t !== Tok.End; t = lexer.next()) {
      if (atStart && t === Tok.Word) {
        if (lexer.keyword === 'prepare') {
          const refusal = prepareRefusal(noBackslashEscapes);
          if (refusal !== null) return refusal;
        } else if (lexer.keyword === 'create' && createsRoutine()) {
          // The body reaches to the end of the text: its own semicolons do not end the statement.
          return bodyHoldsAdmin(lexer) ? ROUTINE_BODY_REFUSED : null;
        }
      }
      atStart = lexer.type === Tok.Semicolon;
    }
    return null;
  } finally {
    lexer.release();
  }
}

/** After PREPARE: `name FROM @var` is refused; `name FROM 'text'` is refused when the text is. */
function prepareRefusal(noBackslashEscapes: boolean): string | null {
  const name = lexer.next();
  if (name !== Tok.Word && name !== Tok.QuotedIdent) return null;
  if (lexer.next() !== Tok.Word || !lexer.is('from')) return null;
  const source = lexer.next();
  if (source === Tok.UserVar) return PREPARE_FROM_VARIABLE_REFUSED;
  if (source !== Tok.String) return null;
  innerLexer.reset(Buffer.from(lexer.unquoted()), noBackslashEscapes);
  try {
    return bodyHoldsAdmin(innerLexer) ? PREPARED_ADMIN_REFUSED : null;
  } finally {
    innerLexer.release();
  }
}

/** `CREATE [OR REPLACE] [DEFINER = ...] [AGGREGATE] PROCEDURE | FUNCTION | TRIGGER | EVENT`. */
function createsRoutine(): boolean {
  // The object type comes within a few tokens (DEFINER = `u`@`h` is the longest prefix).
  for (let i = 0; i < 12; i++) {
    const t = lexer.next();
    if (t === Tok.End || t === Tok.Semicolon || t === Tok.LParen) return false;
    if (t !== Tok.Word) continue;
    const k = lexer.keyword;
    if (k === 'procedure' || k === 'function' || k === 'trigger' || k === 'event') return true;
    if (k === 'table' || k === 'view' || k === 'index' || k === 'database' || k === 'schema' || k === 'user' || k === 'role' || k === 'temporary') return false;
  }
  return false;
}

/** Whether the rest of `lx`'s text holds an account statement, a global SET, KILL or PREPARE. */
function bodyHoldsAdmin(lx: SqlLexer): boolean {
  let previous: string | undefined;
  for (let t = lx.next(); t !== Tok.End; t = lx.next()) {
    if (t === Tok.SysVar) {
      if (/^@@(global|persist|persist_only)\./i.test(lx.text())) return true;
      previous = undefined;
      continue;
    }
    if (t !== Tok.Word) {
      previous = undefined;
      continue;
    }
    const k = lx.keyword;
    if (k === 'grant' || k === 'revoke' || k === 'kill' || k === 'prepare') return true;
    if ((k === 'user' || k === 'role') && (previous === 'create' || previous === 'alter' || previous === 'drop' || previous === 'rename')) return true;
    if ((k === 'global' || k === 'persist' || k === 'persist_only' || k === 'password') && previous === 'set') return true;
    previous = k;
  }
  return false;
}
