/**
 * The database a table write names for its target, for a session that has no current database:
 * `INSERT INTO app.t`, `UPDATE app.t`, `CREATE TABLE app.t`, `CREATE INDEX i ON app.t`,
 * `LOAD DATA [LOCAL] INFILE 'f' INTO TABLE app.t`, ... Dolt
 * commits a write to the session's current database and fails one from a session without any
 * (test/integration/dolt-new-database-facts.test.ts), so the proxy selects this database on its
 * backend connection before it sends the write. The client's own session keeps no database.
 *
 * Null when the target table is unqualified (the write then fails as it would on Dolt, with the
 * proxy's advice) or the statement is not a table write (CREATE DATABASE needs no database).
 * Only the target counts: `INSERT INTO t SELECT * FROM app.u` gives null.
 */

import { Buffer } from 'node:buffer';
import { SqlLexer, Tok } from './sql-lexer';

const lexer = new SqlLexer();

/** Words that may stand between a statement's first keyword and its target table. */
const MODIFIERS: Readonly<Record<string, readonly string[]>> = {
  insert: ['low_priority', 'delayed', 'high_priority', 'ignore', 'into'],
  replace: ['low_priority', 'delayed', 'into'],
  update: ['low_priority', 'ignore'],
  delete: ['low_priority', 'quick', 'ignore', 'from'],
  truncate: ['table'],
  rename: ['table'],
  alter: ['online', 'offline', 'ignore', 'table'],
  create: ['or', 'replace', 'temporary', 'table', 'view', 'if', 'not', 'exists', 'algorithm', 'definer', 'sql', 'security'],
  drop: ['temporary', 'table', 'view', 'if', 'exists'],
};

/** Object types of CREATE/DROP/ALTER whose name is a table-level object in a database. */
const TABLE_LEVEL = ['table', 'view'];

export function writeTargetDatabase(sql: Buffer | string, noBackslashEscapes = false): string | null {
  const lx = lexer;
  lx.reset(typeof sql === 'string' ? Buffer.from(sql, 'utf8') : sql, noBackslashEscapes);
  try {
    if (lx.next() !== Tok.Word) return null;
    const head = lx.text().toLowerCase();
    if (head === 'load') return loadTarget(lx);
    const modifiers = MODIFIERS[head];
    if (modifiers === undefined) return null;
    let t = lx.next();
    if (head === 'create' && t === Tok.Word && /^(unique|fulltext|spatial|index)$/i.test(lx.text())) return indexTarget(lx);
    let sawObjectType = head !== 'create' && head !== 'drop' && head !== 'alter';
    while (t === Tok.Word && modifiers.some((word) => lx.is(word))) {
      if (TABLE_LEVEL.some((word) => lx.is(word))) sawObjectType = true;
      t = lx.next();
      // DEFINER = user, ALGORITHM = x, SQL SECURITY x: skip the value too.
      if (t === Tok.Eq) {
        lx.next();
        t = lx.next();
      }
    }
    if (!sawObjectType) return null;
    return qualifier(lx, t);
  } finally {
    lx.release();
  }
}

/** LOAD DATA|XML [LOW_PRIORITY|CONCURRENT] [LOCAL] INFILE 'file' [REPLACE|IGNORE] INTO TABLE db.t */
function loadTarget(lx: SqlLexer): string | null {
  for (let t = lx.next(), i = 0; t !== Tok.End && t !== Tok.Semicolon && i < 10; t = lx.next(), i++) {
    if (t === Tok.Word && lx.is('into')) return lx.next() === Tok.Word && lx.is('table') ? qualifier(lx, lx.next()) : null;
  }
  return null;
}

/** CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX name ON db.t */
function indexTarget(lx: SqlLexer): string | null {
  for (let t = lx.next(), i = 0; t !== Tok.End && t !== Tok.Semicolon && i < 8; t = lx.next(), i++) {
    if (t === Tok.Word && lx.is('on')) return qualifier(lx, lx.next());
  }
  return null;
}

/** The `db` of `db.name` starting at token `t`; null for a bare name. */
function qualifier(lx: SqlLexer, t: Tok): string | null {
  if (t !== Tok.Word && t !== Tok.QuotedIdent) return null;
  const name = t === Tok.Word ? lx.text() : lx.unquoted();
  if (lx.next() !== Tok.Dot) return null;
  const after = lx.next();
  return after === Tok.Word || after === Tok.QuotedIdent ? name : null;
}
