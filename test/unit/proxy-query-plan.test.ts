/**
 * The COM_QUERY plan, row by row: each check of proxy/server/query-plan.ts where it applies, and
 * the pairs where the earlier check must win (a KILL that is also over the session's SET budget
 * cannot be, so the pairs are those a statement can really hit).
 */

import { expect } from 'chai';
import { classifyQuery } from '../../proxy/routing/classifier';
import { SessionMemoryLimitError } from '../../proxy/server/errors';
import { planQuery, type QueryPlan, type QuerySession } from '../../proxy/server/query-plan';

const roomy: QuerySession = { admit: () => null, database: 'app' };
const full: QuerySession = { admit: (c) => (c.sessionState.length > 0 ? new SessionMemoryLimitError('over session_limits.max_replay_bytes') : null), database: 'app' };
const noDatabase: QuerySession = { admit: () => null, database: null };

function plan(sql: string, session: QuerySession = roomy, noBackslashEscapes = false, relaysFiles = false, accountsReplicate = false): QueryPlan {
  const bytes = Buffer.from(sql);
  return planQuery(bytes, classifyQuery(bytes, { noBackslashEscapes }), noBackslashEscapes, session, relaysFiles, accountsReplicate);
}

function summary(p: QueryPlan): string {
  switch (p.action) {
    case 'refuse':
      return `refuse ${(p.error as { code?: string }).code}`;
    case 'kill':
      return `kill ${JSON.stringify(p.request)}`;
    case 'outcome':
      return `outcome ${p.token}`;
    case 'forward':
      return `forward ${p.mayWrite ? 'write' : 'read'}${p.selectDatabase === null ? '' : ` in ${p.selectDatabase}`}${p.localInfile === null ? '' : ` with file ${p.localInfile}`}`;
  }
}

describe('query plan (pure, check by check)', () => {
  const rows: Array<{ name: string; sql: string; session?: QuerySession; plan: string }> = [
    { name: '7: a read is forwarded', sql: 'SELECT * FROM t', plan: 'forward read' },
    { name: '7: a write is forwarded', sql: "INSERT INTO t VALUES (1)", plan: 'forward write' },
    { name: '7: a write without a current database names its target database', sql: 'INSERT INTO app.t VALUES (1)', session: noDatabase, plan: 'forward write in app' },
    { name: '7: a read without a current database selects nothing', sql: 'SELECT * FROM app.t', session: noDatabase, plan: 'forward read' },
    { name: '1: LOAD DATA LOCAL INFILE', sql: "LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE t", plan: 'refuse LOCAL_INFILE_REFUSED' },
    { name: '1: behind a comment', sql: "/* x */ LOAD DATA LOCAL INFILE 'f' INTO TABLE t", plan: 'refuse LOCAL_INFILE_REFUSED' },
    { name: '2: a SET past the session budget', sql: "SET @@session.sql_mode = 'ANSI'", session: full, plan: 'refuse SESSION_MEMORY_LIMIT' },
    { name: '2: a read is not affected by a full budget', sql: 'SELECT 1', session: full, plan: 'forward read' },
    { name: '3: an account statement', sql: "CREATE USER u IDENTIFIED BY 'p'", plan: 'refuse ACCOUNT_STATEMENT_REFUSED' },
    { name: '3: a GRANT', sql: 'GRANT SELECT ON *.* TO u', plan: 'refuse ACCOUNT_STATEMENT_REFUSED' },
    { name: '4: KILL QUERY n is the proxy\'s', sql: 'KILL QUERY 7', plan: 'kill {"query":true,"id":7}' },
    { name: '4: KILL n behind a -- comment', sql: '-- why\nKILL 9', plan: 'kill {"query":false,"id":9}' },
    { name: '5: a global SET of replication state', sql: "SET GLOBAL dolt_replicate_to_remote = ''", plan: 'refuse SERVER_STATE_REFUSED' },
    { name: '5 before 7: SET PERSIST is refused, not forwarded as a write', sql: 'SET PERSIST max_connections = 5', plan: 'refuse SERVER_STATE_REFUSED' },
    { name: '6: the outcome call', sql: "SELECT doltgate_outcome('n1/0123456789a1')", plan: 'outcome n1/0123456789a1' },
    { name: '6: any spelling of the name', sql: "select DOLTGATE_OUTCOME('t')", plan: 'outcome t' },
    { name: '6: not a literal call: forwarded (Dolt will say it has no such function)', sql: "SELECT doltgate_outcome('a'), 1", plan: 'forward read' },
  ];
  for (const row of rows) {
    it(`${row.name} → ${row.plan}`, () => {
      expect(summary(plan(row.sql, row.session))).to.equal(row.plan);
    });
  }

  // Cluster mode: Dolt replicates users and grants, so account statements are writes like any other;
  // the checks around them are unchanged.
  const clustered: Array<{ name: string; sql: string; session?: QuerySession; plan: string }> = [
    { name: 'an account statement', sql: "CREATE USER u IDENTIFIED BY 'p'", plan: 'forward write' },
    { name: 'a GRANT', sql: 'GRANT SELECT ON app.* TO u', plan: 'forward write' },
    { name: 'SET PASSWORD', sql: "SET PASSWORD FOR u = 'q'", plan: 'forward write' },
    { name: 'replication state stays refused', sql: "SET GLOBAL dolt_replicate_to_remote = ''", plan: 'refuse SERVER_STATE_REFUSED' },
    { name: 'a KILL stays the proxy\'s', sql: 'KILL 9', plan: 'kill {"query":false,"id":9}' },
    { name: 'LOAD DATA LOCAL stays refused', sql: "LOAD DATA LOCAL INFILE 'f' INTO TABLE t", plan: 'refuse LOCAL_INFILE_REFUSED' },
  ];
  for (const row of clustered) {
    it(`cluster mode: ${row.name} → ${row.plan}`, () => {
      expect(summary(plan(row.sql, row.session, false, false, true))).to.equal(row.plan);
    });
  }

  // LOAD DATA LOCAL for a session that may relay files (its user has allow_local_infile and its
  // client enabled local files): forwarded naming its one file, or refused saying why.
  const relaying: Array<{ name: string; sql: string; session?: QuerySession; plan: string }> = [
    { name: 'a single LOAD DATA LOCAL names its file', sql: "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t", plan: 'forward write with file rows.csv' },
    { name: 'LOW_PRIORITY and a comment before it', sql: "/* load */ LOAD DATA LOW_PRIORITY LOCAL INFILE \"a b.csv\" INTO TABLE t", plan: 'forward write with file a b.csv' },
    { name: "a doubled quote is the file name's quote", sql: "LOAD DATA LOCAL INFILE 'it''s.csv' INTO TABLE t", plan: "forward write with file it's.csv" },
    { name: 'without a database, its target database is selected first', sql: "LOAD DATA LOCAL INFILE 'r.csv' INTO TABLE app.t", session: noDatabase, plan: 'forward write in app with file r.csv' },
    { name: 'inside a multi-statement query: refused', sql: "SELECT 1; LOAD DATA LOCAL INFILE 'r.csv' INTO TABLE t", plan: 'refuse LOCAL_INFILE_REFUSED' },
    { name: 'a backslash in the name: refused (the name Dolt reads would differ)', sql: "LOAD DATA LOCAL INFILE 'a\\\\b.csv' INTO TABLE t", plan: 'refuse LOCAL_INFILE_REFUSED' },
    { name: 'a plain LOAD DATA INFILE (server side) is an ordinary write', sql: "LOAD DATA INFILE 'r.csv' INTO TABLE t", plan: 'forward write' },
  ];
  for (const row of relaying) {
    it(`relaying files: ${row.name} → ${row.plan}`, () => {
      expect(summary(plan(row.sql, row.session, false, true))).to.equal(row.plan);
    });
  }

  it('the refusal says why: not allowed for the session, or what stops this statement', () => {
    const denied = plan("LOAD DATA LOCAL INFILE 'r.csv' INTO TABLE t");
    expect(denied.action === 'refuse' && denied.error.message).to.contain('allow_local_infile');
    const multi = plan("SELECT 1; LOAD DATA LOCAL INFILE 'r.csv' INTO TABLE t", roomy, false, true);
    expect(multi.action === 'refuse' && multi.error.message).to.contain('statement of its own');
  });

  it('the common forward plans are shared objects (nothing allocated per query)', () => {
    expect(plan('SELECT 1')).to.equal(plan('SELECT 2'));
    expect(plan('INSERT INTO t VALUES (1)')).to.equal(plan('UPDATE t SET v = 1'));
  });
});
