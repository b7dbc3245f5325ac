/**
 * classifyQuery: one table of queries named after the verdict they must get (`route:reason`),
 * then tables for each effect the session tracker reads (transactions, autocommit, pins, session
 * state, statements after the previous one, multi-statement parts), options, and properties every
 * verdict must have (invariants; a Buffer and a string give the same answer).
 */

import { expect } from 'chai';

import {
  Classification,
  ClassifierOptions,
  classifyQuery,
  PinCause,
  Reason,
  Route,
  routineNames,
  SessionStateChange,
  StatementKind,
} from '../../proxy/routing/classifier';

type Verdict = `${Route}:${Reason}`;

const reports: ClassifierOptions = { readOnlyProcedures: routineNames(['my_report', '`Reports`.`Daily_Totals`']) };
const audited: ClassifierOptions = { writeFunctions: routineNames(['audit_touch']) };

/** [expected verdict, query, expected kind?, options?] */
type Row = [Verdict, string, StatementKind?, ClassifierOptions?];

const verdicts: Array<[string, Row[]]> = [
  ['reads', [
    ['replica:read', 'SELECT 1', 'select'],
    ['replica:read', 'select * from t where id = 1', 'select'],
    ['replica:read', '  \t\n SELECT 1', 'select'],
    ['replica:read', '\r\n\tSeLeCt\t1\n', 'select'],
    ['replica:read', '(SELECT 1) UNION (SELECT 2)', 'select'],
    ['replica:read', '((SELECT a FROM t))', 'select'],
    ['replica:read', 'WITH c AS (SELECT 1 AS x) SELECT x FROM c', 'select'],
    ['replica:read', 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', 'select'],
    ['replica:read', 'TABLE t', 'select'],
    ['replica:read', 'VALUES ROW(1, 2), ROW(3, 4)', 'select'],
    ['replica:read', 'SHOW TABLES', 'show'],
    ['replica:read', 'SHOW CREATE TABLE t', 'show'],
    ['replica:read', 'show full processlist', 'show'],
    ['replica:read', 'DESCRIBE t', 'explain'],
    ['replica:read', 'DESC t', 'explain'],
    ['replica:read', 'EXPLAIN SELECT * FROM t', 'explain'],
    ['replica:read', 'EXPLAIN UPDATE t SET a = 1', 'explain'],
    ['replica:read', 'EXPLAIN ANALYZE SELECT * FROM t', 'explain'],
    ['replica:read', "HELP 'contents'", 'other'],
    ['replica:read', 'SELECT @@port', 'select'],
    ['replica:read', 'SELECT @@session.sql_mode, @@global.read_only', 'select'],
    ['replica:read', 'SELECT @a', 'select'],
    ['replica:read', 'SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10', 'select'],
    ['replica:read', 'SELECT COUNT(*) FROM dolt_log', 'select'],
    ['replica:read', "SELECT dolt_hashof('main')", 'select'],
    ['replica:read', "SELECT * FROM dolt_diff('HEAD~', 'HEAD', 't')", 'select'],
    ['replica:read', "SELECT * FROM t AS OF 'main'", 'select'],
    ['replica:read', 'SELECT a FROM t WHERE b IN (SELECT c FROM u)', 'select'],
    ['replica:read', 'SELECT get_lock, last_insert_id FROM t', 'select'],
    ['replica:read', 'SELECT * FROM t, JSON_TABLE(j, "$[*]" COLUMNS (id FOR ORDINALITY)) AS jt', 'select'],
    ['replica:read', 'SELECT 1;', 'select'],
    ['replica:read', 'SELECT 1 ;  \n', 'select'],
    ['replica:read', 'SELECT 1; SELECT 2', 'multi'],
  ]],
  ['keywords hidden in strings, identifiers and comments', [
    ['replica:read', "SELECT 'FOR UPDATE'"],
    ['replica:read', 'SELECT * FROM t WHERE x = "INTO"'],
    ['replica:read', 'SELECT into_col, for_update FROM t'],
    ['replica:read', 'SELECT `into`, `for` FROM `update`'],
    ['replica:read', 'SELECT `a``FOR UPDATE` FROM t'],
    ['replica:read', "SELECT 'it''s FOR UPDATE'"],
    ['replica:read', "SELECT 'a\\' FOR UPDATE'"],
    ['replica:read', 'SELECT "say \\"INTO\\" here"'],
    ['replica:read', "SELECT 'GET_LOCK(1)', \"LAST_INSERT_ID()\""],
    ['replica:read', 'SELECT 1 -- FOR UPDATE'],
    ['replica:read', 'SELECT 1 # INTO @x'],
    ['replica:read', 'SELECT /* FOR UPDATE */ 1'],
    ['replica:read', '-- leading comment\nSELECT 1'],
    ['replica:read', '# hash comment\nSELECT 1'],
    ['replica:read', '/* one */ /* two */\n-- three\nSELECT 1'],
    ['replica:read', '/* INSERT INTO t VALUES (1) */ SELECT 1', 'select'],
    ['replica:read', 'SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t'],
    ['replica:read', 'SELECT /*! STRAIGHT_JOIN */ a FROM t'],
    ['replica:read', '/*!50000 SELECT 1 */', 'select'],
    ['replica:read', "SELECT '/* doltgate:primary */'"],
    ['replica:read', "SELECT ';'; SELECT ';'", 'multi'],
    ['replica:read', 'SELECT 1 -- ; DELETE FROM t', 'select'],
    ['replica:read', "SELECT 'héllo FOR UPDATE', `naïve` FROM café"],
    ['primary:locking-read', 'SELECT a FROM t WHERE b = 1--1 FOR UPDATE'],
    ['primary:locking-read', 'SELECT * FROM café FOR UPDATE'],
  ]],
  ['writes', [
    ['primary:write', 'INSERT INTO t VALUES (1)', 'insert'],
    ['primary:write', 'insert into t select * from u', 'insert'],
    ['primary:write', "INSERT INTO t VALUES ('SELECT')", 'insert'],
    ['primary:write', '/* SELECT */ INSERT INTO t VALUES (1)', 'insert'],
    ['primary:write', 'UPDATE t SET a = 1', 'update'],
    ['primary:write', 'DELETE FROM t', 'delete'],
    ['primary:write', 'REPLACE INTO t VALUES (1)', 'replace'],
    ['primary:write', "LOAD DATA INFILE '/tmp/x' INTO TABLE t", 'load'],
    ['primary:write', 'WITH c AS (SELECT 1) UPDATE t SET a = (SELECT * FROM c)', 'update'],
    ['primary:write', 'WITH c AS (SELECT id FROM u) DELETE FROM t WHERE id IN (SELECT id FROM c)', 'delete'],
    ['primary:write', 'EXPLAIN ANALYZE UPDATE t SET a = 1', 'explain'],
    ['primary:write', 'DO SLEEP(1)', 'do'],
    ['primary:write', '/*!50000 INSERT INTO t VALUES (1) */', 'insert'],
    ['primary:account-management', "SET PASSWORD = 'x'", 'set'],
  ]],
  ['ddl', [
    ['primary:ddl', 'CREATE TABLE t (a INT)', 'ddl'],
    ['primary:ddl', 'ALTER TABLE t ADD COLUMN b INT', 'ddl'],
    ['primary:ddl', 'DROP TABLE t', 'ddl'],
    ['primary:ddl', 'RENAME TABLE a TO b', 'ddl'],
    ['primary:ddl', 'TRUNCATE TABLE t', 'ddl'],
    ['primary:ddl', 'CREATE UNIQUE INDEX i ON t (a)', 'ddl'],
    ['primary:ddl', 'CREATE DATABASE d', 'ddl'],
    ['primary:account-management', "CREATE USER u IDENTIFIED BY 'p'", 'ddl'],
    ['primary:ddl', "CREATE DEFINER=`root`@`%` PROCEDURE p() BEGIN SELECT GET_LOCK('x', 1); END", 'ddl'],
    ['primary:ddl', 'CREATE PROCEDURE p() BEGIN DECLARE x INT; SET x = 1; CASE x WHEN 1 THEN SELECT 1; END CASE; WHILE x < 3 DO SET x = x + 1; END WHILE; END', 'ddl'],
    ['primary:ddl', 'CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO BEGIN IF 1 THEN DELETE FROM t; END IF; END', 'ddl'],
    ['primary:temporary-table', 'CREATE TEMPORARY TABLE tmp (a INT)', 'ddl'],
    ['primary:temporary-table', 'create temporary table if not exists tmp select 1', 'ddl'],
    ['primary:temporary-table', 'DROP TEMPORARY TABLE tmp', 'ddl'],
  ]],
  ['procedures', [
    ['primary:call', "CALL DOLT_COMMIT('-am', 'msg')", 'call'],
    ['primary:call', "call dolt_checkout('feature')", 'call'],
    ['primary:call', 'CALL my_report()', 'call'],
    ['replica:read-only-procedure', 'CALL my_report()', 'call', reports],
    ['replica:read-only-procedure', 'call MY_REPORT', 'call', reports],
    ['replica:read-only-procedure', 'CALL anydb.my_report(1)', 'call', reports],
    ['replica:read-only-procedure', 'CALL `reports`.`Daily_Totals`(1)', 'call', reports],
    ['primary:call', 'CALL other.daily_totals(1)', 'call', reports],
    ['primary:last-insert-id', 'CALL my_report(LAST_INSERT_ID())', 'call', reports],
  ]],
  ['reads the primary or this session must serve', [
    ['primary:locking-read', 'SELECT * FROM t WHERE id = 1 FOR UPDATE', 'select'],
    ['primary:locking-read', 'SELECT * FROM t FOR SHARE', 'select'],
    ['primary:locking-read', 'SELECT * FROM t LOCK IN SHARE MODE', 'select'],
    ['primary:locking-read', 'select * from t for update nowait', 'select'],
    ['primary:locking-read', 'SELECT * FROM t FOR /* why */ UPDATE'],
    ['primary:locking-read', '(SELECT * FROM t) FOR UPDATE'],
    ['primary:locking-read', 'WITH c AS (SELECT 1) SELECT * FROM t FOR UPDATE', 'select'],
    ['primary:locking-read', 'SELECT * FROM t /*!50000 FOR UPDATE */'],
    ['primary:locking-read', 'EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE'],
    ['primary:select-into', "SELECT * FROM t INTO OUTFILE '/tmp/t.csv'"],
    ['primary:select-into', 'SELECT a INTO @x FROM t'],
    ['primary:select-into', "SELECT a FROM t INTO DUMPFILE '/tmp/a'"],
    ['primary:lock-function', "SELECT GET_LOCK('job', 10)"],
    ['primary:lock-function', "select release_lock('job')"],
    ['primary:lock-function', 'SELECT RELEASE_ALL_LOCKS()'],
    ['primary:lock-function', "SELECT IS_FREE_LOCK('job')"],
    ['primary:lock-function', "SELECT IS_USED_LOCK('job')"],
    ['primary:lock-function', "SELECT a, GET_LOCK('x', 0), FOUND_ROWS() FROM t"],
    ['primary:lock-function', "SELECT FOUND_ROWS(), GET_LOCK('x', 0)"],
    ['primary:last-insert-id', 'SELECT LAST_INSERT_ID()'],
    ['primary:last-insert-id', 'SELECT @@identity'],
    ['primary:last-insert-id', 'SELECT last_insert_uuid()'],
    ['primary:session-function', 'SELECT FOUND_ROWS()'],
    ['primary:session-function', 'SELECT ROW_COUNT()'],
    ['primary:session-function', 'SELECT @@warning_count, @@session.error_count'],
    ['primary:diagnostics', 'SHOW WARNINGS', 'show'],
    ['primary:diagnostics', 'SHOW ERRORS LIMIT 1', 'show'],
    ['primary:diagnostics', 'SHOW COUNT(*) WARNINGS', 'show'],
    ['primary:diagnostics', 'GET DIAGNOSTICS @n = NUMBER', 'other'],
    ['primary:user-variable-assignment', 'SELECT @a := 1'],
    ['primary:user-variable-assignment', 'SELECT @rownum := @rownum + 1 AS r FROM t'],
    ['primary:dolt-write-function', "SELECT DOLT_COMMIT('-am', 'x')"],
    ['primary:dolt-write-function', "SELECT dolt_checkout('b')"],
    ['primary:write-function', 'SELECT audit_touch(id) FROM t', 'select', audited],
    ['replica:read', 'SELECT audit_touch FROM t', 'select', audited],
  ]],
  ['transactions', [
    ['primary:transaction-start', 'BEGIN', 'begin'],
    ['primary:transaction-start', 'begin work', 'begin'],
    ['primary:transaction-start', 'START TRANSACTION', 'begin'],
    ['primary:transaction-start', 'START TRANSACTION READ ONLY', 'begin'],
    ['primary:transaction-start', 'START TRANSACTION WITH CONSISTENT SNAPSHOT', 'begin'],
    ['primary:transaction-end', 'COMMIT', 'commit'],
    ['primary:transaction-end', 'commit work', 'commit'],
    ['primary:transaction-end', 'ROLLBACK', 'rollback'],
    ['primary:savepoint', 'ROLLBACK TO SAVEPOINT s1', 'rollback'],
    ['primary:savepoint', 'ROLLBACK WORK TO s1', 'rollback'],
    ['primary:savepoint', 'SAVEPOINT s1', 'savepoint'],
    ['primary:savepoint', 'RELEASE SAVEPOINT s1', 'savepoint'],
    ['primary:xa', "XA START 'x'", 'xa'],
  ]],
  ['SET and USE', [
    ['primary:session-set', 'SET NAMES utf8mb4', 'set'],
    ['primary:session-set', 'SET CHARACTER SET utf8mb4', 'set'],
    ['primary:session-set', "SET sql_mode = 'ANSI'", 'set'],
    ['primary:session-set', 'SET SESSION wait_timeout = 60', 'set'],
    ['primary:session-set', "SET @@session.time_zone = '+00:00'", 'set'],
    ['primary:session-set', 'SET autocommit = 1', 'set'],
    ['primary:session-set', 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', 'set'],
    ['primary:session-set', '/*!40101 SET NAMES utf8 */', 'set'],
    ['primary:autocommit-off', 'SET autocommit = 0', 'set'],
    ['primary:autocommit-off', 'SET @@autocommit=OFF', 'set'],
    ['primary:autocommit-off', "SET SESSION autocommit = 'off'", 'set'],
    ['primary:global-set', 'SET GLOBAL max_connections = 500', 'set'],
    ['primary:global-set', "SET PERSIST dolt_replicate_to_remote = 'origin'", 'set'],
    ['primary:global-set', 'SET @@global.read_only = 1', 'set'],
    ['primary:user-variable-assignment', 'SET @a = 1', 'set'],
    ['primary:user-variable-assignment', 'SET @a := (SELECT MAX(id) FROM t)', 'set'],
    ['primary:transaction-characteristics', 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'set'],
    ['primary:use', 'USE mydb', 'use'],
  ]],
  ['users and grants (the proxy refuses these: users are per node)', [
    ['primary:account-management', "CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'x'", 'ddl'],
    ['primary:account-management', "ALTER USER 'app'@'%' IDENTIFIED BY 'y'", 'ddl'],
    ['primary:account-management', "DROP USER 'app'@'%'", 'ddl'],
    ['primary:account-management', "RENAME USER 'a'@'%' TO 'b'@'%'", 'ddl'],
    ['primary:account-management', 'CREATE ROLE reader', 'ddl'],
    ['primary:account-management', 'DROP ROLE reader', 'ddl'],
    ['primary:account-management', "REVOKE ALL ON *.* FROM 'u'@'%'", 'admin'],
    ['primary:account-management', "/* migration */ GRANT reader TO 'u'@'%'", 'admin'],
    ['primary:account-management', "SET PASSWORD FOR 'u'@'%' = 'z'", 'set'],
    ['primary:ddl', 'CREATE TABLE users (id INT)', 'ddl'],
    ['primary:ddl', 'DROP TABLE user_roles', 'ddl'],
    ['primary:account-management', "SET DEFAULT ROLE reader TO 'u'@'%'", 'set'],
    ['primary:user-variable-assignment', "SET @password = 'x'", 'set'],
  ]],
  ['locks, handlers, prepared statements, administration', [
    ['primary:lock-tables', 'LOCK TABLES t READ, u WRITE', 'lock'],
    ['primary:lock-tables', 'UNLOCK TABLES', 'unlock'],
    ['primary:admin', 'LOCK INSTANCE FOR BACKUP', 'admin'],
    ['primary:handler', 'HANDLER t OPEN', 'handler'],
    ['primary:prepared-statement', "PREPARE s FROM 'SELECT 1'", 'prepare'],
    ['primary:prepared-statement', 'EXECUTE s USING @a', 'prepare'],
    ['primary:prepared-statement', 'DEALLOCATE PREPARE s', 'prepare'],
    ['primary:admin', 'FLUSH PRIVILEGES', 'admin'],
    ['primary:account-management', "GRANT SELECT ON db.* TO 'u'@'%'", 'admin'],
    ['primary:admin', 'KILL 42', 'admin'],
    ['primary:admin', 'ANALYZE TABLE t', 'admin'],
    ['primary:admin', 'START REPLICA', 'admin'],
  ]],
  ['what the classifier cannot tell goes to the primary', [
    ['primary:unknown', 'FROBNICATE t', 'other'],
    ['primary:unknown', "'just a string'", 'other'],
    ['primary:unknown', '(', 'other'],
    ['primary:empty', '', 'empty'],
    ['primary:empty', '  \n\t ', 'empty'],
    ['primary:empty', '/* only a comment */', 'empty'],
    ['primary:empty', ';', 'empty'],
    ['primary:unterminated', "SELECT 'abc"],
    ['primary:unterminated', 'SELECT 1 /* never closed'],
    ['primary:unterminated', 'SELECT `abc'],
    ['primary:unterminated', '/*!50000 SELECT 1'],
  ]],
  ['hints', [
    ['primary:hint-primary', '/* doltgate:primary */ SELECT 1', 'select'],
    ['replica:hint-replica', '/* doltgate:replica */ SELECT 1', 'select'],
    ['primary:hint-primary', '/* DOLTGATE:PRIMARY */ SELECT 1'],
    ['primary:hint-primary', '/* app:web */ /* doltgate:primary */ SELECT 1'],
    ['primary:hint-primary', '-- doltgate:primary\nSELECT 1'],
    ['primary:hint-primary', '# doltgate:primary\nSELECT 1'],
    ['primary:hint-primary', '/*+ doltgate:primary */ SELECT 1'],
    ['replica:hint-replica', 'SELECT /* doltgate:replica */ * FROM t'],
    ['replica:hint-replica', "SELECT * FROM t /* controller='users',doltgate:replica */"],
    ['primary:hint-primary', '/* doltgate:replica */ /* doltgate:primary */ SELECT 1'],
    ['replica:hint-replica', '/* doltgate:replica */ CALL my_report()', 'call'],
    ['primary:replica-hint-ignored', '/* doltgate:replica */ UPDATE t SET a = 1', 'update'],
    ['primary:replica-hint-ignored', '/* doltgate:replica */ SELECT * FROM t FOR UPDATE', 'select'],
    ['primary:replica-hint-ignored', '/* doltgate:replica */ CALL dolt_push()', 'call'],
    ['primary:replica-hint-ignored', '/* doltgate:replica */ SET NAMES utf8', 'set'],
    ['primary:replica-hint-ignored', '/* doltgate:replica */ SELECT 1; DELETE FROM t', 'multi'],
    ['primary:replica-hint-ignored', "/* doltgate:replica */ SELECT 'abc", 'select'],
    ['primary:replica-hint-ignored', '/* doltgate:replica */ SHOW WARNINGS', 'show'],
    ['replica:read', '/* doltgate:secondary */ SELECT 1'],
  ]],
  ['multi-statement', [
    ['primary:multi-statement', 'SELECT 1; INSERT INTO t VALUES (1)', 'multi'],
    ['primary:multi-statement', 'BEGIN; UPDATE t SET a = 1; COMMIT', 'multi'],
    ['primary:multi-statement', 'SET NAMES utf8; SELECT 1', 'multi'],
    ['primary:multi-statement', "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1; SELECT GET_LOCK('x', 1)", 'multi'],
    ['primary:multi-statement', 'CREATE PROCEDURE p() BEGIN SELECT 1; END; SELECT 2', 'multi'],
    ['primary:diagnostics', 'SHOW WARNINGS; SELECT 1', 'multi'],
  ]],
];

function check(c: Classification): void {
  // Invariants every verdict must keep (see classification.ts).
  if (c.route === 'replica') {
    expect(c.pins, 'a replica verdict has no pins').to.deep.equal([]);
    expect(c.sessionState, 'a replica verdict has no session state').to.deep.equal([]);
    expect(c.followsPrevious).to.equal(false);
    expect(c.startsTransaction || c.endsTransaction).to.equal(false);
  }
  if (c.followsPrevious) expect(c.route).to.equal('primary');
  if (!c.isMultiStatement) expect(c.parts).to.deep.equal([]);
  else expect(c.parts.length).to.be.greaterThan(1);
  if (c.hint === undefined) expect(c.reason).to.equal(c.statementReason);
}

describe('classifyQuery verdicts', () => {
  for (const [group, rows] of verdicts) {
    describe(group, () => {
      for (const [verdict, sql, kind, options] of rows) {
        it(`${verdict}${kind ? ` (${kind})` : ''} <= ${JSON.stringify(sql)}`, () => {
          const c = classifyQuery(sql, options);
          expect(`${c.route}:${c.reason}`).to.equal(verdict);
          if (kind !== undefined) expect(c.kind).to.equal(kind);
          check(c);
          expect(classifyQuery(Buffer.from(sql, 'utf8'), options), 'a Buffer gives the same verdict').to.deep.equal(c);
        });
      }
    });
  }
});

describe('classifyQuery transaction effects', () => {
  const rows: Array<[string, { starts: boolean; ends: boolean }]> = [
    ['BEGIN', { starts: true, ends: false }],
    ['START TRANSACTION READ ONLY', { starts: true, ends: false }],
    ['COMMIT', { starts: false, ends: true }],
    ['COMMIT AND CHAIN', { starts: true, ends: true }],
    ['COMMIT WORK AND NO CHAIN', { starts: false, ends: true }],
    ['ROLLBACK AND CHAIN', { starts: true, ends: true }],
    ['ROLLBACK TO SAVEPOINT s', { starts: false, ends: false }],
    ["XA START 'x'", { starts: true, ends: false }],
    ["XA COMMIT 'x'", { starts: false, ends: true }],
    ['SELECT 1', { starts: false, ends: false }],
    ['BEGIN; SELECT 1', { starts: true, ends: false }],
    ['BEGIN; COMMIT', { starts: false, ends: true }],
    ['COMMIT; BEGIN', { starts: true, ends: true }],
  ];
  for (const [sql, want] of rows) {
    it(`${want.ends ? 'ends' : ''}${want.ends && want.starts ? '+' : ''}${want.starts ? 'starts' : ''}${!want.starts && !want.ends ? 'neither' : ''} <= ${sql}`, () => {
      const c = classifyQuery(sql);
      expect({ starts: c.startsTransaction, ends: c.endsTransaction }).to.deep.equal(want);
    });
  }
});

describe('classifyQuery autocommit', () => {
  const rows: Array<[boolean | undefined, string]> = [
    [false, 'SET autocommit = 0'],
    [false, 'set AUTOCOMMIT=off'],
    [false, 'SET @@autocommit = FALSE'],
    [false, "SET SESSION autocommit = 'OFF'"],
    [false, 'SET `autocommit` = 0'],
    [false, "SET sql_mode = '', autocommit = 0"],
    [true, 'SET autocommit = 1'],
    [true, 'SET @@local.autocommit = TRUE'],
    [true, "SET autocommit = '1'"],
    [true, 'SET @@SESSION.autocommit = ON'],
    [true, 'SET autocommit = 0; SET autocommit = 1'],
    [undefined, 'SET autocommit = DEFAULT'],
    [undefined, 'SET autocommit = @x'],
    [undefined, 'SET autocommit = 1 + 0'],
    [undefined, 'SET GLOBAL autocommit = 0'],
    [undefined, 'SET @@global.autocommit = 0'],
    [undefined, 'SET autocommit_extra = 0'],
    [undefined, "SELECT 'SET autocommit = 0'"],
  ];
  for (const [want, sql] of rows) {
    it(`${String(want)} <= ${sql}`, () => {
      expect(classifyQuery(sql).setsAutocommit).to.equal(want);
    });
  }
});

describe('classifyQuery pins', () => {
  const rows: Array<[{ pins: PinCause[]; unpins?: PinCause[] }, string]> = [
    [{ pins: ['temporary-table'] }, 'CREATE TEMPORARY TABLE tmp (a INT)'],
    [{ pins: [] }, 'DROP TEMPORARY TABLE tmp'],
    [{ pins: ['lock-tables'] }, 'LOCK TABLES t WRITE'],
    [{ pins: [], unpins: ['lock-tables'] }, 'UNLOCK TABLES'],
    [{ pins: [], unpins: ['lock-tables'] }, 'LOCK TABLES t READ; UNLOCK TABLES'],
    [{ pins: ['lock-tables'] }, 'UNLOCK TABLES; LOCK TABLES t READ'],
    [{ pins: ['advisory-lock'] }, "SELECT GET_LOCK('job', 10)"],
    [{ pins: ['advisory-lock'] }, "DO GET_LOCK('job', 10)"],
    [{ pins: ['advisory-lock', 'user-variable'] }, "SET @got = GET_LOCK('job', 10)"],
    [{ pins: [] }, "SELECT RELEASE_LOCK('job')"],
    [{ pins: ['user-variable'] }, 'SET @a = 1'],
    [{ pins: ['user-variable'] }, 'SELECT @a := 1'],
    [{ pins: ['user-variable'] }, 'SELECT a INTO @x FROM t'],
    [{ pins: [] }, "SELECT a INTO OUTFILE '/tmp/a' FROM t"],
    [{ pins: ['user-variable'] }, 'UPDATE t SET a = (@n := @n + 1)'],
    [{ pins: ['prepared-statement'] }, "PREPARE s FROM 'SELECT 1'"],
    [{ pins: ['handler'] }, 'HANDLER t OPEN'],
    [{ pins: ['branch-checkout'] }, "CALL DOLT_CHECKOUT('-b', 'feature')"],
    [{ pins: ['branch-checkout'] }, "CALL dolt_checkout('feature')"],
    [{ pins: ['unreplayable-set'] }, 'SET GLOBAL a = 1, SESSION b = 2'],
    [{ pins: ['unreplayable-set'] }, 'SET RESOURCE GROUP rg'],
    [{ pins: [] }, 'SET GLOBAL a = 1'],
    [{ pins: ['unreplayable-set'] }, '/*!40101 SET NAMES utf8; SET x = 1 */'],
    [{ pins: [] }, "CREATE PROCEDURE p() BEGIN SELECT GET_LOCK('x', 1); SET @a = 1; END"],
    [{ pins: [] }, "EXPLAIN SELECT GET_LOCK('x', 1)"],
    [{ pins: ['advisory-lock'] }, "INSERT INTO t SELECT GET_LOCK('x', 1)"],
  ];
  for (const [want, sql] of rows) {
    it(`${want.pins.join('+') || 'none'}${want.unpins ? ` -${want.unpins.join('+')}` : ''} <= ${sql}`, () => {
      const c = classifyQuery(sql);
      expect(c.pins).to.deep.equal(want.pins);
      expect(c.unpins).to.deep.equal(want.unpins ?? []);
    });
  }
});

describe('classifyQuery session state to replay', () => {
  const rows: Array<[SessionStateChange[], string]> = [
    [[{ kind: 'names', statement: 'SET NAMES utf8mb4 COLLATE utf8mb4_bin' }], 'SET NAMES utf8mb4 COLLATE utf8mb4_bin'],
    [[{ kind: 'charset', statement: 'SET CHARSET utf8' }], 'SET CHARSET utf8'],
    [[{ kind: 'role', statement: 'SET ROLE admin' }], 'SET ROLE admin'],
    [[{ kind: 'variables', statement: "SET sql_mode = '', time_zone = '+00:00'" }], "SET sql_mode = '', time_zone = '+00:00'"],
    [[{ kind: 'variables', statement: 'SET NAMES utf8, autocommit = 0' }], 'SET NAMES utf8, autocommit = 0'],
    [[{ kind: 'variables', statement: "SET time_zone = '+00:00'" }], "  SET time_zone = '+00:00' ;  "],
    [[{ kind: 'variables', statement: 'SET x = 1' }], '/* doltgate:primary */ SET x = 1 -- trailing'],
    [[{ kind: 'variables', statement: 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED' }], 'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED'],
    [[{ kind: 'names', statement: '/*!40101 SET NAMES utf8mb4 */' }], '/*!40101 SET NAMES utf8mb4 */'],
    [[{ kind: 'database', statement: 'USE mydb', database: 'mydb' }], 'USE mydb'],
    [[{ kind: 'database', statement: 'USE `my``db`', database: 'my`db' }], 'USE `my``db`'],
    [[{ kind: 'database', statement: 'USE mydb/feature', database: 'mydb/feature' }], 'USE mydb/feature'],
    [[{ kind: 'database', statement: 'use `mydb/feature`', database: 'mydb/feature' }], 'use `mydb/feature`;'],
    [
      [{ kind: 'names', statement: 'SET NAMES utf8' }, { kind: 'database', statement: 'USE db2', database: 'db2' }],
      'SET NAMES utf8; USE db2',
    ],
    [[{ kind: 'variables', statement: 'SET x = 1' }], 'SET x = 1; /*!40101 SET GLOBAL y = 2 */'],
    [[], '/*!40101 SET NAMES utf8; SET x = 1 */'],
    [[], 'SET GLOBAL x = 1'],
    [[], 'SET PERSIST_ONLY x = 1'],
    [[], 'SET @a = 1'],
    [[], 'SET @a = 1, sql_mode = DEFAULT'],
    [[], 'SET TRANSACTION READ ONLY'],
    [[], "SET PASSWORD FOR u = 'x'"],
    [[], 'SET DEFAULT ROLE ALL TO u'],
    [[], 'SELECT 1'],
  ];
  for (const [want, sql] of rows) {
    it(`${want.map((s) => s.kind).join('+') || 'nothing'} <= ${sql}`, () => {
      expect(classifyQuery(sql).sessionState).to.deep.equal(want);
    });
  }
});

describe('classifyQuery statements that follow the previous one', () => {
  const rows: Array<[boolean, string]> = [
    [true, 'SHOW WARNINGS'],
    [true, 'SELECT FOUND_ROWS()'],
    [true, 'SELECT ROW_COUNT() AS n'],
    [true, 'SELECT @@warning_count'],
    [true, 'GET CURRENT DIAGNOSTICS @n = NUMBER'],
    [true, 'SHOW WARNINGS; SELECT 1'],
    [false, 'SHOW WARNINGS; INSERT INTO t VALUES (1)'],
    [false, 'SELECT 1; SHOW WARNINGS'],
    [false, '/* doltgate:primary */ SHOW WARNINGS'],
    [false, "SELECT FOUND_ROWS(), GET_LOCK('x', 1)"],
    [false, 'SELECT LAST_INSERT_ID()'],
    [false, 'SHOW TABLES'],
  ];
  for (const [want, sql] of rows) {
    it(`${want ? 'follows' : 'does not follow'} <= ${sql}`, () => {
      const c = classifyQuery(sql);
      expect(c.followsPrevious).to.equal(want);
      check(c);
    });
  }
});

describe('classifyQuery multi-statement parts', () => {
  it('reports each statement in order with its own verdict', () => {
    const c = classifyQuery("SELECT 1; INSERT INTO t VALUES (';'); SET NAMES utf8");
    expect(c.isMultiStatement).to.equal(true);
    expect(c.parts.map((p) => `${p.kind}/${p.route}:${p.reason}`)).to.deep.equal([
      'select/replica:read',
      'insert/primary:write',
      'set/primary:session-set',
    ]);
    expect(c.sessionState).to.deep.equal([{ kind: 'names', statement: 'SET NAMES utf8' }]);
  });

  it('counts a routine body with nested blocks as one statement', () => {
    const c = classifyQuery('CREATE PROCEDURE p() lbl: BEGIN IF 1 THEN BEGIN SELECT 1; END; END IF; LOOP LEAVE lbl; END LOOP; END lbl; SET @a = 1');
    expect(c.parts.map((p) => p.kind)).to.deep.equal(['ddl', 'set']);
    expect(c.pins).to.deep.equal(['user-variable']);
  });

  it('ignores empty statements between and after semicolons', () => {
    const c = classifyQuery('SELECT 1;; ;SELECT 2;');
    expect(c.parts.map((p) => p.kind)).to.deep.equal(['select', 'select']);
    expect(c.route).to.equal('replica');
  });

  it('sees a statement hidden after a trailing comment only once its line ends', () => {
    expect(classifyQuery('SELECT 1 -- x; DELETE FROM t').isMultiStatement).to.equal(false);
    expect(classifyQuery('SELECT 1 -- x\n; DELETE FROM t').route).to.equal('primary');
  });

  it('finds a write after a large read', () => {
    const big = `SELECT ${Array.from({ length: 20000 }, (_, i) => `'v${i};'`).join(', ')}`;
    expect(classifyQuery(big).route).to.equal('replica');
    expect(classifyQuery(`${big}; DELETE FROM t`).reason).to.equal('multi-statement');
  });
});

describe('classifyQuery options', () => {
  it('reads backslashes literally under NO_BACKSLASH_ESCAPES', () => {
    const sql = "SELECT 'C:\\', 'FOR UPDATE' FROM t";
    expect(classifyQuery(sql, { noBackslashEscapes: true }).reason).to.equal('read');
    // Read with escapes, the first string swallows the second's opening quote, FOR UPDATE looks
    // like code and the rest is an unterminated string: misread, but never towards a replica.
    expect(classifyQuery(sql).route).to.equal('primary');
  });

  it('finds a real FOR UPDATE after a backslash-ended string under NO_BACKSLASH_ESCAPES', () => {
    expect(classifyQuery("SELECT * FROM t WHERE p = 'C:\\' FOR UPDATE", { noBackslashEscapes: true }).reason).to.equal('locking-read');
  });

  it('normalizes configured routine names', () => {
    expect([...routineNames([' My_Report ', '`db`.`P`', ''])]).to.deep.equal(['my_report', 'db.p']);
  });

  it('never lets a listed procedure that pins go to a replica', () => {
    const c = classifyQuery("CALL dolt_checkout('x')", { readOnlyProcedures: routineNames(['dolt_checkout']) });
    expect(c.route).to.equal('primary');
    expect(c.pins).to.deep.equal(['branch-checkout']);
  });

  it('is not fooled by a reused lexer: consecutive calls are independent', () => {
    expect(classifyQuery("SELECT 'open").reason).to.equal('unterminated');
    expect(classifyQuery('/* doltgate:primary */ SELECT 1').reason).to.equal('hint-primary');
    expect(classifyQuery('SELECT 1').reason).to.equal('read');
  });

  it('classifies the query bytes of a COM_QUERY payload sliced from a larger buffer', () => {
    const packet = Buffer.concat([Buffer.from([0x03]), Buffer.from('SELECT * FROM t FOR UPDATE'), Buffer.from('garbage')]);
    const query = packet.subarray(1, packet.length - 'garbage'.length);
    expect(classifyQuery(query).reason).to.equal('locking-read');
    const set = classifyQuery(Buffer.concat([Buffer.from([0x03]), Buffer.from('SET NAMES utf8')]).subarray(1));
    expect(set.sessionState[0].statement).to.equal('SET NAMES utf8');
  });
});
