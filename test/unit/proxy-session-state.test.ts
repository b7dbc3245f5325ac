/**
 * The pure bookkeeping behind transparent reconnects: SessionState (what a new backend connection
 * must replay, by seq mark), StatementRegistry (client ids vs per-backend ids) and the
 * COM_STMT_EXECUTE helpers that splice saved parameter types into a packet that omitted them.
 */

import { expect } from 'chai';
import { classifyQuery } from '../../proxy/routing/classifier';
import { SessionState } from '../../proxy/server/session-state';
import { executeLayout, placementOn, placeStatement, StatementRegistry, withParameterTypes, writeStatementId } from '../../proxy/server/prepared-statements';
import type { BackendConnection } from '../../proxy/server/backend-connection';

function statements(s: SessionState, generation: number, applied: number): string[] {
  return s.pendingFor(generation, applied).map((e) => e.statement);
}

describe('SessionState', () => {
  it('records session SETs in order and replays what a connection has not run', () => {
    const s = new SessionState('db');
    s.applyClassification(classifyQuery("SET SESSION time_zone = '+03:00'"), true);
    const afterFirst = s.lastSeq;
    s.applyClassification(classifyQuery('SET NAMES utf8mb4'), true);
    expect(statements(s, s.generation, 0)).to.deep.equal(["SET SESSION time_zone = '+03:00'", 'SET NAMES utf8mb4']);
    expect(statements(s, s.generation, afterFirst)).to.deep.equal(['SET NAMES utf8mb4']);
    expect(statements(s, s.generation, s.lastSeq)).to.deep.equal([]);
    // Another generation (a reset happened since) means nothing of this session was run there.
    expect(statements(s, s.generation - 1, s.lastSeq)).to.have.length(2);
  });

  it('a failed statement records nothing to replay but keeps its pins', () => {
    const s = new SessionState('db');
    s.applyClassification(classifyQuery("SET SESSION sql_mode = 'ANSI'"), false);
    expect(s.statements).to.have.length(0);
    s.applyClassification(classifyQuery('CREATE TEMPORARY TABLE x (a INT)'), false);
    expect([...s.pins]).to.deep.equal(['temporary-table']);
  });

  it('repeating a constant SET moves it to the end under a new seq instead of growing the list', () => {
    const s = new SessionState('db');
    s.addStatement('SET NAMES utf8mb4');
    s.addStatement("SET time_zone = '+01:00'");
    const mark = s.lastSeq;
    s.addStatement('SET NAMES utf8mb4');
    expect(s.statements.map((e) => e.statement)).to.deep.equal(["SET time_zone = '+01:00'", 'SET NAMES utf8mb4']);
    expect(statements(s, s.generation, mark)).to.deep.equal(['SET NAMES utf8mb4']);
    s.addStatement('SET NAMES utf8mb4'); // already last: nothing to do
    expect(s.lastSeq).to.equal(mark + 1);
    s.addStatement('SET @@sql_mode = CONCAT(@@sql_mode, ",ANSI")');
    s.addStatement('SET @@sql_mode = CONCAT(@@sql_mode, ",ANSI")'); // not constant: kept twice
    expect(s.statements).to.have.length(4);
  });

  it('past the bound the session is pinned instead of growing the list', () => {
    const s = new SessionState('db', 2);
    s.addStatement('SET a = 1');
    s.addStatement('SET b = 1');
    s.addStatement('SET c = 1');
    expect(s.statements).to.have.length(2);
    expect(s.pinned).to.equal(true);
    expect([...s.pins]).to.deep.equal(['unreplayable-set']);
  });

  it('USE changes the database; pins come and go with the classifier; reset starts a new generation', () => {
    const s = new SessionState(null);
    s.applyClassification(classifyQuery('USE `other`'), true);
    expect(s.database).to.equal('other');
    s.applyClassification(classifyQuery('LOCK TABLES t WRITE'), true);
    expect(s.pinned).to.equal(true);
    s.applyClassification(classifyQuery('UNLOCK TABLES'), true);
    expect(s.pinned).to.equal(false);
    s.applyClassification(classifyQuery('SET @v = 1'), true);
    expect([...s.pins]).to.deep.equal(['user-variable']);
    const g = s.generation;
    s.reset('db');
    expect(s.generation).to.equal(g + 1);
    expect(s.pinned).to.equal(false);
    expect(s.database).to.equal('db');
    expect(s.statements).to.have.length(0);
  });
});

describe('StatementRegistry', () => {
  const a = {} as BackendConnection;
  const b = {} as BackendConnection;

  it('hands out client ids and keeps one backend id per connection', () => {
    const r = new StatementRegistry();
    const id = r.reserveId();
    const s = r.add({ clientId: id, sql: 'SELECT ?', classification: classifyQuery('SELECT ?'), mayWrite: false, paramCount: 1, columnCount: 1 }, a, 17);
    placeStatement(s, b, 3);
    s.lastConn = a;
    expect(placementOn(r.get(id)!, a)?.backendId).to.equal(17);
    r.forgetConnection(a);
    expect(placementOn(s, a)).to.equal(null);
    expect(s.placements.map((p) => [p.conn, p.backendId])).to.deep.equal([[b, 3]]);
    expect(s.lastConn).to.equal(null);
    expect(r.delete(id)).to.equal(s);
    expect(r.get(id)).to.equal(undefined);
    expect(r.reserveId()).to.equal(id + 1);
  });
});

describe('COM_STMT_EXECUTE helpers', () => {
  // 0x17, id 7, flags 0, iteration 1, NULL bitmap (2 params: 1 byte), bound flag, [types], values
  const withTypes = Buffer.from([0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1, 0x08, 0x00, 0xfd, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0x68, 0x69]);
  const withoutTypes = Buffer.from([0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0x68, 0x69]);

  it('finds the bound flag and the types', () => {
    expect(executeLayout(withTypes, 2)).to.deep.equal({ boundFlagOffset: 11, bound: true, typesStart: 12, typesEnd: 16 });
    expect(executeLayout(withoutTypes, 2)).to.deep.include({ boundFlagOffset: 11, bound: false });
    expect(executeLayout(Buffer.from([0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0]), 0)).to.deep.include({ boundFlagOffset: -1, bound: false });
  });

  it('splices saved types into an execute that omitted them: the result equals the one that sent them', () => {
    const types = withTypes.subarray(12, 16);
    const spliced = withParameterTypes(withoutTypes, executeLayout(withoutTypes, 2), types);
    expect(spliced.equals(withTypes)).to.equal(true);
  });

  it('rejects packets too short for their parameter count', () => {
    expect(() => executeLayout(Buffer.from([0x17, 7, 0, 0, 0]), 1)).to.throw(/shorter than 10 bytes/);
    expect(() => executeLayout(Buffer.from([0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0]), 1)).to.throw(/new_params_bound_flag/);
    expect(() => executeLayout(Buffer.from([0x17, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8]), 1)).to.throw(/parameter types/);
  });

  it('rewrites the statement id in place', () => {
    const frame = Buffer.concat([Buffer.from([withTypes.length, 0, 0, 0]), withTypes]);
    writeStatementId(frame, 4, 0x01020304);
    expect(frame.readUInt32LE(5)).to.equal(0x01020304);
  });
});
