import { expect } from 'chai';
import { writeTargetDatabase } from '../../proxy/routing/write-target';

describe('proxy: the database a write targets (for a session without one)', () => {
  const rows: Array<[string, string | null]> = [
    ['INSERT INTO app.t VALUES (1)', 'app'],
    ["LOAD DATA LOCAL INFILE 'r.csv' INTO TABLE app.t FIELDS TERMINATED BY ','", 'app'],
    ["LOAD DATA LOW_PRIORITY INFILE 'r.csv' REPLACE INTO TABLE `my db`.t", 'my db'],
    ["LOAD DATA LOCAL INFILE 'r.csv' INTO TABLE t", null],
    ['insert low_priority ignore into `my db`.`t` (a) values (1)', 'my db'],
    ['/* tool */ INSERT INTO app.t SELECT * FROM other.u', 'app'],
    ['INSERT INTO t SELECT * FROM app.u', null],
    ['REPLACE INTO app.t VALUES (1)', 'app'],
    ['UPDATE app.t SET a = 1', 'app'],
    ['UPDATE t SET a = 1', null],
    ['DELETE FROM app.t WHERE id = 1', 'app'],
    ['DELETE t1 FROM app.t1 JOIN app.t2', null],
    ['CREATE TABLE app.w (id INT PRIMARY KEY)', 'app'],
    ['CREATE TEMPORARY TABLE IF NOT EXISTS app.w (id INT)', 'app'],
    ['CREATE OR REPLACE VIEW app.v AS SELECT 1', 'app'],
    ['CREATE ALGORITHM = MERGE VIEW app.v AS SELECT 1', 'app'],
    ['CREATE UNIQUE INDEX i ON app.t (a)', 'app'],
    ['CREATE INDEX i ON t (a)', null],
    ['ALTER TABLE app.t ADD COLUMN b INT', 'app'],
    ['DROP TABLE IF EXISTS app.t', 'app'],
    ['TRUNCATE TABLE app.t', 'app'],
    ['TRUNCATE app.t', 'app'],
    ['RENAME TABLE app.a TO app.b', 'app'],
    ['CREATE DATABASE orders', null],
    ['DROP DATABASE orders', null],
    ['CREATE USER u', null],
    ['DROP PROCEDURE app.p', null],
    ['SELECT * FROM app.t', null],
    ['CALL dolt_commit()', null],
    ['', null],
  ];
  for (const [sql, expected] of rows) {
    it(`${JSON.stringify(sql)} → ${expected ?? 'none'}`, () => expect(writeTargetDatabase(sql)).to.equal(expected));
  }
});
