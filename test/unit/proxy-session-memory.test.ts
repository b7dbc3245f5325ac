/**
 * What a client may make the proxy hold (session-memory.ts): replayed SET text and prepared
 * statements per session and over the whole proxy, and the long data of one execute. Each bound
 * refuses before anything is sent and gives its charge back when the state goes.
 */

import { expect } from 'chai';
import { Buffer } from 'node:buffer';
import { PacketReader, type PacketView } from '../../proxy/protocol';
import { classifyQuery } from '../../proxy/routing/classifier';
import type { BackendConnection } from '../../proxy/server/backend-connection';
import { placementOn, StatementRegistry } from '../../proxy/server/prepared-statements';
import { ProxyMemoryBudget } from '../../proxy/server/session-memory';
import { SessionState } from '../../proxy/server/session-state';
import { planStatementCommand } from '../../proxy/server/statement-commands';

const set = (bytes: number) => classifyQuery(`SET SESSION sql_mode = '${'A'.repeat(bytes)}'`);
const setLength = (bytes: number) => `SET SESSION sql_mode = '${'A'.repeat(bytes)}'`.length;

function commandView(payload: Buffer): PacketView {
  const r = new PacketReader();
  const frame = Buffer.alloc(4 + payload.length);
  frame.writeUIntLE(payload.length, 0, 3);
  payload.copy(frame, 4);
  r.push(frame);
  return r.nextFrameViewUntilNextRead() as PacketView;
}

function longData(id: number, bytes: number): Buffer {
  const b = Buffer.alloc(7 + bytes, 0x61);
  b[0] = 0x18;
  b.writeUInt32LE(id, 1);
  b.writeUInt16LE(0, 5);
  return b;
}

const execute = (id: number) => {
  const b = Buffer.from([0x17, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1, 0xfc, 0x00]);
  b.writeUInt32LE(id, 1);
  return b;
};

describe('session memory: replayed SETs', () => {
  it('a SET past max_replay_bytes is refused (1041) before it runs; smaller ones are kept and counted', () => {
    const s = new SessionState('db', 256, 1000);
    expect(s.admit(set(100))).to.equal(null);
    s.applyClassification(set(100), true);
    expect(s.replayBytes).to.equal(setLength(100));
    const refusal = s.admit(set(1000));
    expect(refusal?.errno).to.equal(1041);
    expect(refusal?.message).to.match(/max_replay_bytes \(1000\)/);
    expect(s.admit(classifyQuery('SELECT 1')), 'statements that keep nothing').to.equal(null);
    expect(s.admit(classifyQuery('USE other')), 'a database change keeps no text').to.equal(null);
  });

  it('every session draws on the proxy budget; a reset or release gives it back', () => {
    const budget = new ProxyMemoryBudget(2 * setLength(100));
    const a = new SessionState('db', 256, 10_000, budget);
    const b = new SessionState('db', 256, 10_000, budget);
    a.applyClassification(set(100), true);
    b.applyClassification(set(100), true);
    expect(budget.used).to.equal(2 * setLength(100));
    const refusal = b.admit(set(10));
    expect(refusal?.message).to.match(/total_bytes/);
    a.reset('db');
    expect(budget.used).to.equal(setLength(100));
    expect(b.admit(set(10))).to.equal(null);
    b.release();
    expect(budget.used).to.equal(0);
  });
});

describe('session memory: prepared statements', () => {
  const conn = { isClosed: false, isIdle: true } as unknown as BackendConnection;
  const add = (r: StatementRegistry, sql: string) => r.add({ clientId: r.reserveId(), sql, classification: classifyQuery(sql), mayWrite: false, paramCount: 1, columnCount: 1 }, conn, 1);

  it('count: the statement past max_prepared_statements is refused with 1461; a close makes room', () => {
    const r = new StatementRegistry({ maxReplayBytes: 1 << 20, maxPreparedStatements: 2, maxPreparedBytes: 1 << 20 });
    const first = add(r, 'SELECT ?');
    add(r, 'SELECT ?');
    expect(r.admit(8)?.errno).to.equal(1461);
    r.delete(first.clientId);
    expect(r.admit(8)).to.equal(null);
  });

  it('bytes: per session and per proxy; delete and clear give the charge back', () => {
    const budget = new ProxyMemoryBudget(100);
    const r = new StatementRegistry({ maxReplayBytes: 1 << 20, maxPreparedStatements: 100, maxPreparedBytes: 60 }, budget);
    const other = new StatementRegistry({ maxReplayBytes: 1 << 20, maxPreparedStatements: 100, maxPreparedBytes: 60 }, budget);
    add(r, 'S'.repeat(50));
    expect(r.admit(20)?.message).to.match(/max_prepared_bytes \(60\)/);
    add(other, 'S'.repeat(45));
    expect(other.admit(10)?.message, 'the proxy is full though the session is not').to.match(/total_bytes/);
    r.clear();
    expect(budget.used).to.equal(45);
    expect(other.admit(10)).to.equal(null);
  });

  it('planStatementCommand refuses the PREPARE over the limit and sends nothing', () => {
    const r = new StatementRegistry({ maxReplayBytes: 1 << 20, maxPreparedStatements: 1, maxPreparedBytes: 1 << 20 });
    add(r, 'SELECT ?');
    const plan = planStatementCommand(commandView(Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT 2')])), r, (sql) => classifyQuery(sql));
    expect(plan.action).to.equal('refuse');
    expect(plan.action === 'refuse' && (plan.error as { errno?: number }).errno).to.equal(1461);
  });
});

describe('session memory: long data of one execute', () => {
  const classify = (sql: string) => classifyQuery(sql);

  it('chunks within max_allowed_packet are routed; past it the rest is dropped and the execute refused, closing the statement on its backend', () => {
    const conn = { isClosed: false, isIdle: true } as unknown as BackendConnection;
    const r = new StatementRegistry();
    const stmt = r.add({ clientId: r.reserveId(), sql: 'INSERT INTO t VALUES (?)', classification: classifyQuery('INSERT INTO t VALUES (?)'), mayWrite: true, paramCount: 1, columnCount: 0 }, conn, 40);
    const first = planStatementCommand(commandView(longData(stmt.clientId, 600)), r, classify, 1000);
    expect(first.action).to.equal('route');
    stmt.longDataConn = conn; // where the forwarder sent it
    const second = planStatementCommand(commandView(longData(stmt.clientId, 600)), r, classify, 1000);
    expect(second).to.deep.equal({ action: 'none', closes: [] });
    expect(planStatementCommand(commandView(longData(stmt.clientId, 1)), r, classify, 1000).action, 'later chunks are dropped too').to.equal('none');
    const exec = planStatementCommand(commandView(execute(stmt.clientId)), r, classify, 1000);
    expect(exec.action).to.equal('refuse');
    if (exec.action !== 'refuse') return;
    expect((exec.error as { errno?: number }).errno).to.equal(1041);
    expect(exec.error.message).to.match(/max_allowed_packet \(1000 bytes\)/);
    expect(exec.closes).to.deep.equal([[conn, 40]]);
    expect(placementOn(stmt, conn), 'a later execute re-prepares it there').to.equal(null);
    // The statement itself lives on: long data starts over within the bound.
    expect(planStatementCommand(commandView(longData(stmt.clientId, 600)), r, classify, 1000).action).to.equal('route');
  });
});
