/**
 * What the proxy refuses because Dolt would let any user do it (server-state-guard.ts): global
 * SETs, PREPARE from a variable or of an admin statement, and routines whose body holds one.
 */

import { expect } from 'chai';
import { Buffer } from 'node:buffer';
import { classifyQuery } from '../../proxy/routing/classifier';
import { GLOBAL_SET_REFUSED, PREPARE_FROM_VARIABLE_REFUSED, PREPARED_ADMIN_REFUSED, ROUTINE_BODY_REFUSED, serverStateRefusal } from '../../proxy/server/server-state-guard';

const refusal = (sql: string): string | null => serverStateRefusal(classifyQuery(Buffer.from(sql)), Buffer.from(sql), false);

describe('server-state guard', () => {
  const rows: Array<[string, string | null]> = [
    ["SET GLOBAL dolt_replicate_to_remote = ''", GLOBAL_SET_REFUSED],
    ['SET PERSIST max_connections = 5', GLOBAL_SET_REFUSED],
    ['SET PERSIST_ONLY read_only = 1', GLOBAL_SET_REFUSED],
    ['SET @@global.read_only = 1', GLOBAL_SET_REFUSED],
    ['/* tidy */ SET GLOBAL read_only = 1', GLOBAL_SET_REFUSED],
    ['SET SESSION sql_mode = DEFAULT', null],
    ['SET @a = 1', null],
    ['SELECT @@global.read_only', null],
    ['PREPARE s FROM @sql', PREPARE_FROM_VARIABLE_REFUSED],
    ['prepare `s` from @`sql`', PREPARE_FROM_VARIABLE_REFUSED],
    ["PREPARE s FROM 'ALTER USER doltgate IDENTIFIED BY ''x'''", PREPARED_ADMIN_REFUSED],
    ["PREPARE s FROM 'SET GLOBAL read_only = 1'", PREPARED_ADMIN_REFUSED],
    ["PREPARE s FROM 'SELECT ? + 1'", null],
    ['CREATE PROCEDURE p() BEGIN ALTER USER doltgate IDENTIFIED BY "x"; END', ROUTINE_BODY_REFUSED],
    ['CREATE DEFINER = `app`@`%` PROCEDURE p() BEGIN SET @s = "GRANT SUPER ON *.* TO app"; PREPARE q FROM @s; EXECUTE q; END', ROUTINE_BODY_REFUSED],
    ['CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET @@global.max_connections = 1', ROUTINE_BODY_REFUSED],
    ['CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO GRANT SUPER ON *.* TO app', ROUTINE_BODY_REFUSED],
    ['CREATE FUNCTION f() RETURNS INT DETERMINISTIC BEGIN SET PASSWORD = "x"; RETURN 1; END', ROUTINE_BODY_REFUSED],
    ['CREATE PROCEDURE p() BEGIN KILL 5; END', ROUTINE_BODY_REFUSED],
    ['CREATE PROCEDURE p(IN n INT) BEGIN INSERT INTO t VALUES (n, "user"); SELECT * FROM t; END', null],
    ['CREATE PROCEDURE p() SELECT `grant`, `kill` FROM t', null],
    ['CREATE TABLE grants (id INT PRIMARY KEY)', null],
    ['SELECT 1; SET GLOBAL read_only = 1', GLOBAL_SET_REFUSED],
    ['SELECT 1; PREPARE s FROM @x', PREPARE_FROM_VARIABLE_REFUSED],
  ];
  for (const [sql, expected] of rows) {
    it(`${sql} → ${expected === null ? 'allowed' : expected.slice(10, 60)}`, () => {
      expect(refusal(sql)).to.equal(expected);
    });
  }
});
