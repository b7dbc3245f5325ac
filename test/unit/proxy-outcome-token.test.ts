/**
 * Outcome tokens, pure parts: which commands get a token (commitPlan), the token's shape, the
 * SQL form's parser, and the verdict from what the nodes' commit graphs say (judgeOutcome).
 */

import { expect } from 'chai';
import { classifyQuery } from '../../proxy/routing/classifier';
import { mayWrite } from '../../proxy/server/command-job';
import { armStatement, commitPlan, OutcomeTokens, parseOutcomeToken, type CommitPlan } from '../../proxy/server/outcome-token';
import { judgeOutcome, parseOutcomeCall, type NodeFinding, type OutcomeVerdict } from '../../proxy/server/outcome-resolver';

describe('commitPlan: which commands may make a Dolt commit', () => {
  const rows: Array<{ sql: string; inTx: boolean; plan: CommitPlan; clientSets?: boolean }> = [
    { sql: "INSERT INTO t VALUES (1)", inTx: false, plan: 'token' },
    { sql: 'UPDATE t SET v = 1', inTx: false, plan: 'token' },
    { sql: 'DELETE FROM t', inTx: false, plan: 'token' },
    { sql: 'CREATE TABLE u (id INT PRIMARY KEY)', inTx: false, plan: 'token' },
    { sql: 'CALL p()', inTx: false, plan: 'token' },
    { sql: 'COMMIT', inTx: true, plan: 'token' },
    { sql: 'COMMIT', inTx: false, plan: 'none' },
    { sql: 'ROLLBACK', inTx: true, plan: 'none' },
    { sql: "INSERT INTO t VALUES (1)", inTx: true, plan: 'none' },
    { sql: 'CREATE TABLE u (id INT PRIMARY KEY)', inTx: true, plan: 'token' },
    { sql: 'BEGIN', inTx: true, plan: 'token' },
    { sql: 'BEGIN', inTx: false, plan: 'none' },
    { sql: 'SELECT * FROM t', inTx: false, plan: 'none' },
    { sql: "SET @@session.sql_mode = ''", inTx: false, plan: 'none' },
    { sql: 'USE app', inTx: false, plan: 'none' },
    { sql: 'SHOW TABLES', inTx: false, plan: 'none' },
    { sql: 'SAVEPOINT a', inTx: true, plan: 'none' },
    { sql: "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", inTx: false, plan: 'clear' },
    { sql: "INSERT INTO t VALUES (1)", inTx: false, plan: 'none', clientSets: true },
    { sql: 'COMMIT', inTx: true, plan: 'none', clientSets: true },
  ];
  for (const row of rows) {
    it(`${row.sql}${row.inTx ? ' (in a transaction)' : ''}${row.clientSets ? ' (the client names its commits)' : ''} → ${row.plan}`, () => {
      const c = classifyQuery(Buffer.from(row.sql));
      expect(commitPlan(c, mayWrite(c), row.inTx, row.clientSets === true)).to.equal(row.plan);
    });
  }
});

describe('outcome tokens', () => {
  it('are unique, name the node, and parse back; anything else is not a token', () => {
    const tokens = new OutcomeTokens();
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(tokens.next('n1'));
    expect(seen.size).to.equal(1000);
    const one = tokens.next('node-2.a');
    expect(parseOutcomeToken(one)).to.deep.include({ node: 'node-2.a' });
    expect(new OutcomeTokens().next('n1'), 'another proxy run').to.not.be.oneOf([...seen]);
    for (const bad of ['', 'n1', 'n1/', '/0123456789a', "n1/0123456789a'; DROP", 'N1/0123456789a', 'n1/xyz']) expect(parseOutcomeToken(bad), bad).to.equal(null);
  });

  it('the arming statement carries the prefixed token, or clears the message', () => {
    expect(armStatement('n1/0123456789a1')).to.equal("SET SESSION dolt_transaction_commit_message = 'doltgate-outcome:n1/0123456789a1'");
    expect(armStatement(null)).to.equal("SET SESSION dolt_transaction_commit_message = ''");
  });

  it('the SQL form is one literal call', () => {
    expect(parseOutcomeCall("SELECT doltgate_outcome('n1/0123456789a1')")).to.equal('n1/0123456789a1');
    expect(parseOutcomeCall("  select DOLTGATE_OUTCOME ( 'x' ) ; ")).to.equal('x');
    expect(parseOutcomeCall("SELECT doltgate_outcome('a'), 1")).to.equal(null);
    expect(parseOutcomeCall('SELECT doltgate_outcome(@t)')).to.equal(null);
    expect(parseOutcomeCall("SELECT doltgate_outcome('a\\'b')")).to.equal(null);
  });
});

describe('judgeOutcome', () => {
  const found = (live: string[]): NodeFinding => ({ kind: 'found', database: 'app', hash: 'h1', liveBranches: live });
  const absent: NodeFinding = { kind: 'absent' };
  const gone: NodeFinding = { kind: 'unreachable', why: 'connection refused' };
  const rows: Array<{ name: string; ranOn: string; primary: string | null; onPrimary: NodeFinding | null; onRunner: NodeFinding | null; verdict: OutcomeVerdict; detail: RegExp }> = [
    { name: 'on a live branch of the primary', ranOn: 'n1', primary: 'n1', onPrimary: found(['main']), onRunner: null, verdict: 'committed', detail: /on main/ },
    { name: 'on the primary, which another node ran it on (pushed before the failover)', ranOn: 'n1', primary: 'n2', onPrimary: found(['main']), onRunner: gone, verdict: 'committed', detail: /primary n2/ },
    { name: 'on the primary only on an orphan branch', ranOn: 'n1', primary: 'n1', onPrimary: found([]), onRunner: null, verdict: 'set aside', detail: /orphan branch/ },
    { name: 'the primary ran it and has no such commit', ranOn: 'n1', primary: 'n1', onPrimary: absent, onRunner: null, verdict: 'not committed', detail: /did not commit/ },
    { name: 'the primary ran it and cannot be asked', ranOn: 'n1', primary: 'n1', onPrimary: gone, onRunner: null, verdict: 'unknown', detail: /^the primary n1, which ran it, cannot be asked now/ },
    { name: 'the old primary ran it and has no such commit', ranOn: 'n1', primary: 'n2', onPrimary: absent, onRunner: absent, verdict: 'not committed', detail: /did not commit/ },
    { name: 'the old primary has it but the new primary does not', ranOn: 'n1', primary: 'n2', onPrimary: absent, onRunner: found(['main']), verdict: 'set aside', detail: /left it behind/ },
    { name: 'the old primary is gone and the new primary lacks it', ranOn: 'n1', primary: 'n2', onPrimary: absent, onRunner: gone, verdict: 'unknown', detail: /ask again once n1 is back/ },
    { name: 'nobody can be asked', ranOn: 'n1', primary: 'n2', onPrimary: gone, onRunner: gone, verdict: 'unknown', detail: /neither n1/ },
    { name: 'no primary; the node that ran it has it', ranOn: 'n1', primary: null, onPrimary: null, onRunner: found(['main']), verdict: 'unknown', detail: /no primary now/ },
    { name: 'no primary; the node that ran it has no such commit', ranOn: 'n1', primary: null, onPrimary: null, onRunner: absent, verdict: 'not committed', detail: /did not commit/ },
  ];
  for (const row of rows) {
    it(`${row.name} → ${row.verdict}`, () => {
      const answer = judgeOutcome({ ranOn: row.ranOn, primary: row.primary, onPrimary: row.onPrimary, onRunner: row.onRunner });
      expect(answer.verdict).to.equal(row.verdict);
      expect(answer.detail).to.match(row.detail);
    });
  }
});
