/**
 * `classifyQuery` decides where a COM_QUERY may run and what it does to the session. It is pure
 * (no I/O, no clock) and reads the query once, left to right, with the byte tokenizer in
 * `sql-lexer.ts`: the leading keyword(s) name the statement; the rest is scanned only for what
 * can turn a read into something the primary or this session must serve (FOR UPDATE / FOR SHARE /
 * LOCK IN SHARE MODE, INTO, lock and session functions, `@var :=`, Dolt write functions) and for
 * `;` separating statements. Strings, quoted identifiers and comments are skipped as the server
 * skips them, so `SELECT 'FOR UPDATE'` stays a read.
 *
 * The default is the primary: a query goes to a replica only when it is known to be a read
 * (SELECT, WITH .. SELECT, TABLE, VALUES, SHOW, DESCRIBE, EXPLAIN, HELP, or CALL of a procedure
 * configured as read-only). Decisions the router relies on:
 *
 * - START TRANSACTION READ ONLY goes to the primary like any transaction: a transaction must stay
 *   on one backend, and the primary is the one backend that always has the newest data.
 * - GET_LOCK pins the session to the primary until it is reset: locks nest and can fail, so a
 *   RELEASE_LOCK seen in SQL does not prove the session holds none. Likewise CREATE TEMPORARY
 *   TABLE pins until reset (DROP TEMPORARY TABLE may not drop the last one). LOCK TABLES pins
 *   until UNLOCK TABLES.
 * - User variables are pinned, not replayed (see set-statement.ts). PREPARE pins: the prepared
 *   statement exists only on the backend that prepared it.
 * - CALL goes to the primary: every dolt_* procedure writes or talks to remotes, and user
 *   procedures may write. `readOnlyProcedures` names the exceptions; a replica hint may also send
 *   a user procedure (never a dolt_* one) to a replica. CALL dolt_checkout pins: the checked-out
 *   branch is session state the other backends cannot be made to share.
 * - Hints are `doltgate:primary` / `doltgate:replica` inside any comment of the query (leading,
 *   after SELECT like optimizer hints, or trailing like sqlcommenter tags). A replica hint never
 *   sends a statement that writes, locks or depends on session state to a replica: Dolt replicas
 *   would lose the write silently. It is reported as 'replica-hint-ignored'.
 * - Stored functions called from a SELECT may write; name them in `writeFunctions`, or hint.
 * - A multi-statement query goes to a replica only if every statement is a plain read.
 * - CREATE PROCEDURE / FUNCTION / TRIGGER / EVENT bodies contain `;`; inside them BEGIN/CASE ..
 *   END blocks are counted so the body is one statement, and its contents cause no effects
 *   (defining a routine runs none of it).
 *
 * Not reentrant: one module-level lexer is reused, which is safe because the function never
 * yields or calls out.
 */

import { Buffer } from 'node:buffer';
import { Classification, combineStatements, StatementFacts, type ClassifierOptions } from './classification';
import { HINT_PRIMARY, HINT_REPLICA, SqlLexer, Tok } from './sql-lexer';
import { StatementScanner } from './statement-scanner';

export type { Classification, ClassifierOptions, Hint, PinCause, Reason, Route, SessionStateChange, StatementKind } from './classification';


/** Normalizes configured routine names: trimmed, backticks removed, lower-case. */
export function routineNames(names: Iterable<string>): ReadonlySet<string> {
  const set = new Set<string>();
  for (const name of names) {
    const normal = name.trim().replace(/`/g, '').toLowerCase();
    if (normal !== '') set.add(normal);
  }
  return set;
}

const NO_OPTIONS: ClassifierOptions = Object.freeze({});
const lexer = new SqlLexer();
const scanner = new StatementScanner();

/** Classifies the query text of a COM_QUERY (the payload after the command byte). */
export function classifyQuery(sql: Buffer | string, options: ClassifierOptions = NO_OPTIONS): Classification {
  const bytes = typeof sql === 'string' ? Buffer.from(sql, 'utf8') : sql;
  const lx = lexer;
  lx.reset(bytes, options.noBackslashEscapes === true);
  try {
    const facts: StatementFacts[] = [];
    do {
      const f = scanner.scan(lx, options);
      if (f !== undefined) facts.push(f);
    } while (lx.type !== Tok.End);
    return combineStatements(facts, (lx.hints & HINT_PRIMARY) !== 0, (lx.hints & HINT_REPLICA) !== 0, lx.unterminated);
  } finally {
    lx.release();
  }
}
