/**
 * Read-your-writes: the window after a commit with an injected clock, and which statements count
 * as making the session's writes visible.
 */

import { expect } from 'chai';

import { classifyQuery } from '../../proxy/routing/classifier';
import { commitsWrite, defaultReadYourWritesMs, ReadYourWritesWindow } from '../../proxy/routing/read-your-writes';

describe('ReadYourWritesWindow', () => {
  it('sends reads to the primary for the window after a commit, and not after', () => {
    const w = new ReadYourWritesWindow(1000);
    expect(w.mustReadPrimary(0)).to.equal(false);
    w.noteCommit(5000);
    expect(w.mustReadPrimary(5000)).to.equal(true);
    expect(w.mustReadPrimary(5999)).to.equal(true);
    expect(w.remainingMs(5250)).to.equal(750);
    expect(w.mustReadPrimary(6000)).to.equal(false);
    expect(w.remainingMs(6000)).to.equal(0);
  });

  it('extends the window with a later commit', () => {
    const w = new ReadYourWritesWindow(1000);
    w.noteCommit(0);
    w.noteCommit(800);
    expect(w.mustReadPrimary(1500)).to.equal(true);
    expect(w.mustReadPrimary(1800)).to.equal(false);
  });

  it('never shortens the window when the clock steps back', () => {
    const w = new ReadYourWritesWindow(1000);
    w.noteCommit(10_000);
    w.noteCommit(2_000);
    expect(w.mustReadPrimary(10_999)).to.equal(true);
  });

  it('is off with a window of 0', () => {
    const w = new ReadYourWritesWindow(0);
    w.noteCommit(100);
    expect(w.mustReadPrimary(100)).to.equal(false);
  });

  it('forgets the last write on reset', () => {
    const w = new ReadYourWritesWindow(1000);
    w.noteCommit(0);
    w.reset();
    expect(w.mustReadPrimary(1)).to.equal(false);
  });

  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`rejects a window of ${bad}`, () => {
      expect(() => new ReadYourWritesWindow(bad)).to.throw(RangeError);
    });
  }
});

describe('commitsWrite', () => {
  const rows: Array<[boolean, string, boolean]> = [
    // [commits a write, statement, in a transaction after it]
    [true, 'INSERT INTO t VALUES (1)', false],
    [false, 'INSERT INTO t VALUES (1)', true],
    [true, 'UPDATE t SET a = 1', false],
    [true, 'CREATE TABLE t (a INT)', false],
    [true, "CALL dolt_commit('-am', 'x')", false],
    [true, 'COMMIT', false],
    [true, 'COMMIT AND CHAIN', true],
    [false, 'ROLLBACK', false],
    [true, 'BEGIN; UPDATE t SET a = 1; COMMIT', false],
    [true, '/* doltgate:primary */ DELETE FROM t', false],
    [true, 'FROBNICATE t', false],
    [false, 'SELECT 1', false],
    [false, '/* doltgate:primary */ SELECT 1', false],
    [false, 'SELECT * FROM t FOR UPDATE', false],
    [false, 'SET NAMES utf8', false],
    [false, 'BEGIN', true],
  ];
  for (const [want, sql, inTransaction] of rows) {
    it(`${want ? 'commits' : 'does not commit'} <= ${sql}${inTransaction ? ' (still in a transaction)' : ''}`, () => {
      expect(commitsWrite(classifyQuery(sql), inTransaction)).to.equal(want);
    });
  }
});

describe('read-your-writes window: the default follows the cluster\'s replication', () => {
  it('remote replication needs none (a replica pulls at each transaction); cluster replication opens 1 s', () => {
    expect(defaultReadYourWritesMs(false)).to.equal(0);
    expect(defaultReadYourWritesMs(true)).to.equal(1_000);
  });

  it('a window given as a function is read at each commit, so a topology that changes mode changes the next window', () => {
    let cluster = false;
    const w = new ReadYourWritesWindow(() => defaultReadYourWritesMs(cluster));
    w.noteCommit(100);
    expect(w.mustReadPrimary(101)).to.equal(false);
    cluster = true;
    w.noteCommit(200);
    expect(w.mustReadPrimary(1_199)).to.equal(true);
    expect(w.mustReadPrimary(1_200)).to.equal(false);
    expect(w.windowMs).to.equal(1_000);
  });

  it('a function that gives a bad length is refused at the commit', () => {
    const w = new ReadYourWritesWindow(() => -1);
    expect(() => w.noteCommit(0)).to.throw(RangeError);
  });
});
