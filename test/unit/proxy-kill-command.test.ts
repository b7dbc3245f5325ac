/**
 * KILL through the proxy: which statements are the proxy's to run (parseKill, fed the real
 * classifier) and what a KILL of each kind of target does (planKill, one row per rule).
 */

import { expect } from 'chai';
import { Buffer } from 'node:buffer';
import { classifyQuery } from '../../proxy/routing/classifier';
import { KILL_NEEDS_LITERAL_ID, KILL_NOT_ALONE, KILL_NOT_PREPARED, parseKill, planKill, type KillableSession, type KillRequest } from '../../proxy/server/kill-command';

describe('parseKill', () => {
  const literal = { refusal: KILL_NEEDS_LITERAL_ID };
  const alone = { refusal: KILL_NOT_ALONE };
  const prepared = { refusal: KILL_NOT_PREPARED };
  const rows: Array<{ sql: string; expected: ReturnType<typeof parseKill>; noBackslashEscapes?: boolean }> = [
    { sql: 'KILL 12', expected: { query: false, id: 12 } },
    { sql: 'kill connection 7;', expected: { query: false, id: 7 } },
    { sql: 'KILL QUERY 3', expected: { query: true, id: 3 } },
    { sql: '/* from the app */ KILL QUERY 3 ', expected: { query: true, id: 3 } },
    { sql: '# from the app\nKILL QUERY 3', expected: { query: true, id: 3 } },
    { sql: '-- from the app\nkill 4', expected: { query: false, id: 4 } },
    { sql: `/* ${'x'.repeat(300)} */ KILL 5`, expected: { query: false, id: 5 } },
    { sql: `KILL 6 /* ${'x'.repeat(300)} */`, expected: { query: false, id: 6 } },
    { sql: '/*!KILL 7*/', expected: { query: false, id: 7 } },
    { sql: 'KILL 8 -- why', expected: { query: false, id: 8 } },
    { sql: 'KILL 8 9', expected: literal },
    { sql: 'KILL QUERY @id', expected: literal },
    { sql: 'KILL (SELECT 1)', expected: literal },
    // Forwarded, these would kill Dolt's connection 1 or 2, whoever that is.
    { sql: 'KILL 1; SELECT 1', expected: alone },
    { sql: 'SELECT 1; /* then */ KILL QUERY 2;', expected: alone },
    { sql: 'SELECT 1;\nkill 2', expected: alone },
    { sql: 'SELECT 1', expected: null },
    { sql: "SELECT 'KILL 1'", expected: null },
    { sql: "SELECT 1; FLUSH PRIVILEGES; SELECT '; KILL 1'", expected: null },
    { sql: "SELECT 'a\\'; KILL 1'; FLUSH PRIVILEGES", expected: null },
    { sql: "SELECT 'a\\'; KILL 1'; FLUSH PRIVILEGES", expected: alone, noBackslashEscapes: true },
    { sql: 'GRANT SELECT ON t TO u; SELECT 1', expected: null },
    { sql: "PREPARE s FROM 'KILL QUERY 5'", expected: prepared },
    { sql: 'prepare `s` from "/* x */ kill 5"', expected: prepared },
    { sql: "SET @a = 1; PREPARE s FROM 'KILL 5'; EXECUTE s", expected: prepared },
    { sql: "PREPARE s FROM 'SELECT ''KILL 5'''", expected: null },
    { sql: "PREPARE s FROM '# c\nKILL 5'", expected: prepared },
    { sql: 'PREPARE s FROM @text', expected: null },
    { sql: 'EXECUTE s', expected: null },
    { sql: 'SHOW PROCESSLIST', expected: null },
  ];
  for (const row of rows) {
    it(`${JSON.stringify(row.sql)}${row.noBackslashEscapes ? ' (NO_BACKSLASH_ESCAPES)' : ''} -> ${JSON.stringify(row.expected)}`, () => {
      const options = { noBackslashEscapes: row.noBackslashEscapes === true };
      expect(parseKill(classifyQuery(row.sql, options), Buffer.from(row.sql), options.noBackslashEscapes)).to.deep.equal(row.expected);
    });
  }
});

describe('planKill', () => {
  const me: KillableSession = { userName: 'app' };
  const sibling: KillableSession = { userName: 'app' };
  const stranger: KillableSession = { userName: 'reporting' };
  const sessions = new Map<number, KillableSession>([
    [1, me],
    [2, sibling],
    [3, stranger],
  ]);
  const find = (id: number): KillableSession | undefined => sessions.get(id);
  const rows: Array<{ name: string; request: KillRequest; action: string; errno?: number; target?: KillableSession }> = [
    { name: 'a refused KILL statement: its refusal as a syntax error, nothing killed', request: { refusal: KILL_NEEDS_LITERAL_ID }, action: 'refuse', errno: 1064 },
    { name: 'an id no session of this proxy has: ER_NO_SUCH_THREAD', request: { query: true, id: 99 }, action: 'refuse', errno: 1094 },
    { name: "another user's session: ER_KILL_DENIED (no PROCESS privilege through the proxy)", request: { query: false, id: 3 }, action: 'refuse', errno: 1095 },
    { name: "another user's query: denied too", request: { query: true, id: 3 }, action: 'refuse', errno: 1095 },
    { name: 'KILL QUERY of itself: nothing else runs, just OK', request: { query: true, id: 1 }, action: 'ok' },
    { name: 'KILL of itself: the session closes', request: { query: false, id: 1 }, action: 'close-self' },
    { name: "KILL QUERY of the same user's session: its command is cut", request: { query: true, id: 2 }, action: 'interrupt', target: sibling },
    { name: "KILL of the same user's session: it is closed", request: { query: false, id: 2 }, action: 'close', target: sibling },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const plan = planKill(me, row.request, find);
      expect(plan.action).to.equal(row.action);
      if (plan.action === 'refuse') expect((plan.error as Error & { errno: number }).errno).to.equal(row.errno);
      if (plan.action === 'interrupt' || plan.action === 'close') expect(plan.target).to.equal(row.target);
    });
  }
});
