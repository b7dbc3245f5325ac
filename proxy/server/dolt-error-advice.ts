/**
 * Dolt errors that are true but leave a user stuck, rewritten by the proxy into ones that say what
 * to do. Only errors after which nothing was written are rewritten (pinned in
 * test/integration/dolt-new-database-facts.test.ts): with dolt_transaction_commit on, which every
 * doltgate primary runs, Dolt commits a write to the session's current database, and
 * - a session with no current database gets 1105 "cannot dolt_commit with no database selected"
 *   even for a qualified name (`CREATE TABLE app.t ...`);
 * - a session whose current database is another one gets 1105 "no changes to dolt_commit on
 *   database <current>".
 * The first becomes 1046 ER_NO_DB_ERROR (3D000), the error every MySQL tool already knows as
 * "select a database first"; the proxy meets it only for writes whose target database it cannot
 * tell (write-target.ts selects the others' database first). Every other error passes through.
 */

import { ErrorCode, sqlStateFor } from '../protocol';
import { BackendErrorReply } from './errors';

export function doltErrorAdvice(errno: number, message: string): BackendErrorReply | null {
  if (errno !== ErrorCode.ER_UNKNOWN_ERROR) return null;
  if (/cannot dolt_commit with no database selected/i.test(message)) {
    return new BackendErrorReply(
      ErrorCode.ER_NO_DB_ERROR,
      sqlStateFor(ErrorCode.ER_NO_DB_ERROR),
      'No database selected (doltgate: Dolt commits each write to the session\'s current database and this session has none, ' +
        'so a qualified name like app.t is not enough; connect with a database — mysql -D app, database: \'app\' in the driver — ' +
        'or run USE app first. Nothing was written.)',
    );
  }
  const other = /no changes to dolt_commit on database (\S+)/i.exec(message);
  if (other !== null) {
    return new BackendErrorReply(
      ErrorCode.ER_UNKNOWN_ERROR,
      sqlStateFor(ErrorCode.ER_UNKNOWN_ERROR),
      `doltgate: this statement writes another database than the session's current one (${other[1]}); Dolt commits each write ` +
        'to the current database only: run USE <the database it writes> first. Nothing was written.',
    );
  }
  return null;
}
