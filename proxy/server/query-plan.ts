/**
 * What the session does with one COM_QUERY, decided from its text, its classification and two
 * facts of the session (what its kept state may still grow by, its current database) — no
 * sockets — as a `QueryPlan`. The checks, in order; the first that applies wins:
 *
 *  1. LOAD DATA LOCAL INFILE → refused, unless the session may relay files (local-infile.ts):
 *     then forwarded as a write that names the one file the server may ask for;
 *  2. a SET that would grow the session's replayed state past its bound → refused (1041-class);
 *  3. an account statement (CREATE USER, GRANT, ...) → refused: users live per node, not replicated;
 *  4. KILL [QUERY|CONNECTION] n → the proxy's own KILL (its ids are the proxy's, not Dolt's);
 *  5. a statement that would change the server's replication or read-only state → refused;
 *  6. SELECT doltgate_outcome('<token>') → answered by the proxy (outcome-resolver.ts);
 *  7. anything else → forwarded; a write from a session without a database names the database
 *     the backend connection must select first (write-target.ts).
 *
 * The same order as before it was pulled out of client-session.ts; table-tested in
 * test/unit/proxy-query-plan.test.ts.
 */

import type { Buffer } from 'node:buffer';
import type { Classification } from '../routing/classifier';
import { writeTargetDatabase } from '../routing/write-target';
import { isAccountStatement, isLocalInfile, mayWrite } from './command-job';
import { AccountStatementRefusedError, LocalInfileRefusedError, ServerStateRefusedError } from './errors';
import { parseKill, type KillRequest } from './kill-command';
import { parseOutcomeCall } from './outcome-resolver';
import { localInfileTarget } from './local-infile';
import { serverStateRefusal } from './server-state-guard';

export type QueryPlan =
  /** `localInfile`: the file a LOAD DATA LOCAL names, the only one its response may ask for. */
  | { action: 'forward'; mayWrite: boolean; selectDatabase: string | null; localInfile: string | null }
  | { action: 'refuse'; error: Error }
  | { action: 'kill'; request: KillRequest }
  | { action: 'outcome'; token: string };

export interface QuerySession {
  /** Null when the session may keep what `c` sets; else the error that says why not. */
  admit(c: Classification): Error | null;
  readonly database: string | null;
}

/**
 * `relaysFiles`: the user may send files and the client enabled them (local-infile.ts).
 * `accountsReplicate`: the cluster replicates users and grants (cluster-view.ts), so account
 * statements go to the primary like any write.
 */
export function planQuery(sql: Buffer, c: Classification, noBackslashEscapes: boolean, session: QuerySession, relaysFiles = false, accountsReplicate = false): QueryPlan {
  if (isLocalInfile(c, sql, noBackslashEscapes)) return planLocalInfile(sql, c, noBackslashEscapes, session, relaysFiles);
  const overLimit = session.admit(c);
  if (overLimit !== null) return { action: 'refuse', error: overLimit };
  if (!accountsReplicate && isAccountStatement(c)) return { action: 'refuse', error: new AccountStatementRefusedError() };
  const kill = parseKill(c, sql, noBackslashEscapes);
  if (kill !== null) return { action: 'kill', request: kill };
  const guarded = serverStateRefusal(c, sql, noBackslashEscapes);
  if (guarded !== null) return { action: 'refuse', error: new ServerStateRefusedError(guarded) };
  // A cheap test first: this runs for every SELECT.
  if (c.kind === 'select' && sql.length < 512 && (sql.includes('_outcome') || sql.includes('_OUTCOME'))) {
    const token = parseOutcomeCall(sql.toString('utf8'));
    if (token !== null) return { action: 'outcome', token };
  }
  const writes = mayWrite(c);
  const selectDatabase = writes && session.database === null ? writeTargetDatabase(sql, noBackslashEscapes) : null;
  if (selectDatabase !== null) return { action: 'forward', mayWrite: true, selectDatabase, localInfile: null };
  // The common plans are shared: nothing is allocated per query for them.
  return writes ? FORWARD_WRITE : FORWARD_READ;
}

const FORWARD_READ: QueryPlan = Object.freeze({ action: 'forward', mayWrite: false, selectDatabase: null, localInfile: null });
const FORWARD_WRITE: QueryPlan = Object.freeze({ action: 'forward', mayWrite: true, selectDatabase: null, localInfile: null });

function planLocalInfile(sql: Buffer, c: Classification, noBackslashEscapes: boolean, session: QuerySession, relaysFiles: boolean): QueryPlan {
  if (!relaysFiles) return { action: 'refuse', error: new LocalInfileRefusedError() };
  if (c.kind !== 'load') return { action: 'refuse', error: new LocalInfileRefusedError('send LOAD DATA LOCAL as a statement of its own, not inside a multi-statement query') };
  const target = localInfileTarget(sql, noBackslashEscapes);
  if ('refusal' in target) return { action: 'refuse', error: new LocalInfileRefusedError(target.refusal) };
  const selectDatabase = session.database === null ? writeTargetDatabase(sql, noBackslashEscapes) : null;
  return { action: 'forward', mayWrite: true, selectDatabase, localInfile: target.file };
}
