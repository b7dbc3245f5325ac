/**
 * The session's pure decisions about commands: which error a client gets when its backend
 * connection breaks mid-command (one row per situation, named after the answer), LOAD DATA LOCAL
 * detection, and the COM_STMT_* planner fed real packets through a PacketReader.
 */

import { expect } from 'chai';
import { PacketReader, type PacketView } from '../../proxy/protocol';
import { classifyQuery } from '../../proxy/routing/classifier';
import type { BackendConnection } from '../../proxy/server/backend-connection';
import { isLocalInfile, lostCommandErrors, statementFrame, type Job } from '../../proxy/server/command-job';
import { placementOn, placeStatement, StatementRegistry, type StatementPlacement } from '../../proxy/server/prepared-statements';
import { planStatementCommand } from '../../proxy/server/statement-commands';

describe('lostCommandErrors', () => {
  const rows: Array<{ name: string; sql: string | null; onPrimary: boolean; inTx: boolean; errno: number; code: string; next: boolean }> = [
    { name: 'transaction lost (40001): a statement inside a transaction on the primary', sql: "INSERT INTO t VALUES (1)", onPrimary: true, inTx: true, errno: 1213, code: 'TRANSACTION_LOST', next: false },
    { name: 'transaction lost: even a read inside the transaction', sql: 'SELECT 1', onPrimary: true, inTx: true, errno: 1213, code: 'TRANSACTION_LOST', next: false },
    { name: 'outcome unknown: the COMMIT itself (it may have committed)', sql: 'COMMIT', onPrimary: true, inTx: true, errno: 2013, code: 'OUTCOME_UNKNOWN', next: false },
    { name: 'transaction lost: a ROLLBACK inside the transaction (rolled back either way)', sql: 'ROLLBACK', onPrimary: true, inTx: true, errno: 1213, code: 'TRANSACTION_LOST', next: false },
    { name: 'outcome unknown: an autocommit write', sql: "UPDATE t SET v = 1", onPrimary: true, inTx: false, errno: 2013, code: 'OUTCOME_UNKNOWN', next: false },
    { name: 'outcome unknown + next fails: BEGIN; INSERT sent as one batch', sql: 'BEGIN; INSERT INTO t VALUES (1)', onPrimary: true, inTx: false, errno: 2013, code: 'OUTCOME_UNKNOWN', next: true },
    { name: 'read interrupted: an autocommit read on a replica', sql: 'SELECT * FROM t', onPrimary: false, inTx: false, errno: 2013, code: 'READ_INTERRUPTED', next: false },
    { name: 'read interrupted: a command without SQL effects (prepare, field list)', sql: null, onPrimary: false, inTx: false, errno: 2013, code: 'READ_INTERRUPTED', next: false },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const effects = row.sql === null ? null : classifyQuery(row.sql);
      const mayWrite = effects !== null && !['read', 'locking-read'].includes(effects.statementReason);
      const { reply, transactionLost } = lostCommandErrors({ onPrimary: row.onPrimary, wasInTransaction: row.inTx, effects, mayWrite, backend: 'n1', outcomeToken: null }, 'lost the connection to n1: reset');
      expect(reply.errno).to.equal(row.errno);
      expect(reply.code).to.equal(row.code);
      expect(transactionLost).to.equal(row.next);
      expect(reply.message).to.match(/^doltgate: /);
    });
  }
});

describe('isLocalInfile', () => {
  const rows: Array<[string, boolean]> = [
    ["LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE t", true],
    ["/* app */ load data low_priority local infile 'x' into table t", true],
    ["LOAD XML LOCAL INFILE 'x' INTO TABLE t", true],
    ["# app\nLOAD DATA LOCAL INFILE 'x' INTO TABLE t", true],
    ["-- app\nload data concurrent local infile 'x' into table t", true],
    [`/* ${'x'.repeat(600)} */ LOAD DATA LOCAL INFILE 'x' INTO TABLE t`, true],
    ["SELECT 1; LOAD DATA LOCAL INFILE 'x' INTO TABLE t", true],
    ["LOAD DATA INFILE '/srv/x' INTO TABLE t", false],
    ["LOAD DATA INFILE 'local' INTO TABLE t", false],
    ["SELECT 'LOAD DATA LOCAL INFILE'", false],
  ];
  for (const [sql, want] of rows) {
    it(`${want ? 'refuses' : 'lets through'}: ${sql}`, () => {
      expect(isLocalInfile(classifyQuery(sql), Buffer.from(sql))).to.equal(want);
    });
  }
});

/** A reader view of one command packet (sequence 0). */
function commandView(payload: Buffer): PacketView {
  const r = new PacketReader();
  const frame = Buffer.alloc(4 + payload.length);
  frame.writeUIntLE(payload.length, 0, 3);
  payload.copy(frame, 4);
  r.push(frame);
  return r.nextFrameViewUntilNextRead() as PacketView;
}

function idPayload(command: number, id: number, rest: number[] = []): Buffer {
  const b = Buffer.alloc(5 + rest.length);
  b[0] = command;
  b.writeUInt32LE(id, 1);
  Buffer.from(rest).copy(b, 5);
  return b;
}

describe('planStatementCommand', () => {
  const conn = { isClosed: false, isIdle: true } as unknown as BackendConnection;
  const classify = (sql: string) => classifyQuery(sql);

  function registryWithStatement(): StatementRegistry {
    const r = new StatementRegistry();
    const id = r.reserveId();
    r.add({ clientId: id, sql: 'UPDATE t SET v = ? WHERE id = 1', classification: classifyQuery('UPDATE t SET v = ? WHERE id = 1'), mayWrite: true, paramCount: 1, columnCount: 0 }, conn, 40);
    return r;
  }

  it('PREPARE is routed by its SQL and reserves the client id', () => {
    const r = new StatementRegistry();
    const plan = planStatementCommand(commandView(Buffer.concat([Buffer.from([0x16]), Buffer.from('SELECT ?')])), r, classify);
    expect(plan.action).to.equal('route');
    if (plan.action !== 'route') return;
    expect(plan.routing.route).to.equal('replica');
    expect(plan.job.prepare?.clientId).to.equal(1);
  });

  for (const sql of ['KILL ?', 'kill query 5', '/* app */ KILL CONNECTION 7']) {
    it(`PREPARE of ${JSON.stringify(sql)} is refused (run by Dolt, the id would be one of Dolt's)`, () => {
      const plan = planStatementCommand(commandView(Buffer.concat([Buffer.from([0x16]), Buffer.from(sql)])), new StatementRegistry(), classify);
      expect(plan.action).to.equal('refuse');
      if (plan.action !== 'refuse') return;
      expect(plan.error.message).to.match(/KILL cannot be prepared/);
    });
  }

  it('EXECUTE of a write may write, saves bound types, and rewrites to the backend id', () => {
    const r = registryWithStatement();
    const payload = idPayload(0x17, 1, [0, 1, 0, 0, 0, 0x00, 1, 0x08, 0x00, 5, 0, 0, 0, 0, 0, 0, 0]);
    const view = commandView(payload);
    const plan = planStatementCommand(view, r, classify);
    expect(plan.action).to.equal('route');
    if (plan.action !== 'route') return;
    expect(plan.mayWrite).to.equal(true);
    expect(r.get(1)?.types?.toString('hex')).to.equal('0800');
    const job = { command: 0x17, frame: Buffer.from(view.frame), endsPacket: true, seq: 0, layout: plan.job.layout } as Job;
    const out = statementFrame(job, r.get(1)!, placementOn(r.get(1)!, conn)!) as Buffer;
    expect(out.readUInt32LE(5)).to.equal(40);
  });

  it('EXECUTE without types to a backend lacking the current ones gets them spliced in; new types reach every backend again', () => {
    const r = registryWithStatement();
    const stmt = r.get(1)!;
    const other = { isClosed: false, isIdle: true } as unknown as BackendConnection;
    const there = placeStatement(stmt, other, 77);
    const bound = (t: number) => idPayload(0x17, 1, [0, 1, 0, 0, 0, 0x00, 1, t, 0x00, 5, 0, 0, 0, 0, 0, 0, 0]);
    const unbound = idPayload(0x17, 1, [0, 1, 0, 0, 0, 0x00, 0, 5, 0, 0, 0, 0, 0, 0, 0]);
    const frameFor = (payload: Buffer, placement: StatementPlacement): Buffer => {
      const view = commandView(payload);
      const plan = planStatementCommand(view, r, classify);
      if (plan.action !== 'route') throw new Error(`expected route, got ${plan.action}`);
      const job = { command: 0x17, frame: Buffer.from(view.frame), endsPacket: true, seq: 0, layout: plan.job.layout } as Job;
      return statementFrame(job, stmt, placement) as Buffer;
    };
    frameFor(bound(0x08), placementOn(stmt, conn)!);
    placementOn(stmt, conn)!.typesSent = true;
    // `other` never got types: the saved ones go with it (bound flag 1 + LONGLONG).
    const spliced = frameFor(unbound, there);
    expect(spliced.readUInt32LE(5)).to.equal(77);
    expect(spliced.subarray(4 + 11, 4 + 14).toString('hex')).to.equal('010800');
    there.typesSent = true;
    // The same types again change nothing; new ones make both backends need them.
    frameFor(bound(0x08), placementOn(stmt, conn)!);
    expect([placementOn(stmt, conn)!.typesSent, there.typesSent]).to.deep.equal([true, true]);
    frameFor(bound(0x0f), placementOn(stmt, conn)!);
    expect([placementOn(stmt, conn)!.typesSent, there.typesSent]).to.deep.equal([false, false]);
    expect(frameFor(unbound, there).subarray(4 + 11, 4 + 14).toString('hex')).to.equal('010f00');
  });

  it('unknown ids: EXECUTE and RESET get 1243, SEND_LONG_DATA and CLOSE get no response', () => {
    const r = registryWithStatement();
    const exec = planStatementCommand(commandView(idPayload(0x17, 9, [0, 1, 0, 0, 0])), r, classify);
    expect(exec.action === 'refuse' && (exec.error as { errno?: number }).errno).to.equal(1243);
    const reset = planStatementCommand(commandView(idPayload(0x1a, 9)), r, classify);
    expect(reset.action === 'refuse' && (reset.error as { errno?: number }).errno).to.equal(1243);
    expect(planStatementCommand(commandView(idPayload(0x18, 9, [0, 0, 0x61])), r, classify).action).to.equal('none');
    expect(planStatementCommand(commandView(idPayload(0x19, 9)), r, classify)).to.deep.equal({ action: 'none', closes: [] });
  });

  it('CLOSE forgets the statement and closes it on every backend that has it', () => {
    const r = registryWithStatement();
    expect(planStatementCommand(commandView(idPayload(0x19, 1)), r, classify)).to.deep.equal({ action: 'none', closes: [[conn, 40]] });
    expect(r.get(1)).to.equal(undefined);
  });

  it('RESET with nothing to reset anywhere is answered OK; FETCH without a cursor is an error', () => {
    const r = registryWithStatement();
    expect(planStatementCommand(commandView(idPayload(0x1a, 1)), r, classify)).to.deep.equal({ action: 'ok' });
    const fetch = planStatementCommand(commandView(idPayload(0x1c, 1, [0, 0, 0, 1])), r, classify);
    expect(fetch.action === 'refuse' && (fetch.error as { errno?: number }).errno).to.equal(1421);
    r.get(1)!.lastConn = conn;
    const follow = planStatementCommand(commandView(idPayload(0x1c, 1, [0, 0, 0, 1])), r, classify);
    expect(follow.action === 'route' && follow.job.fixedConn).to.equal(conn);
  });

  it('a truncated EXECUTE is a malformed-packet error, not a crash', () => {
    const r = registryWithStatement();
    const plan = planStatementCommand(commandView(idPayload(0x17, 1, [0, 1])), r, classify);
    expect(plan.action === 'refuse' && (plan.error as { errno?: number }).errno).to.equal(1835);
    const short = planStatementCommand(commandView(Buffer.from([0x17, 1])), r, classify);
    expect(short.action).to.equal('refuse');
  });
});
