/**
 * Why a session keeps its backend connections between statements (SessionBackends.holdReason),
 * row by row: the rule multiplexing and the pinned-sessions metric rest on.
 */

import { expect } from 'chai';
import type { BackendConnection } from '../../proxy/server/backend-connection';
import type { BackendPools } from '../../proxy/server/backend-pool';
import type { ClusterView } from '../../proxy/server/cluster-view';
import { StatementRegistry } from '../../proxy/server/prepared-statements';
import { SessionBackends, type HoldReason, type SessionIdentity } from '../../proxy/server/session-backends';
import { SessionState } from '../../proxy/server/session-state';
import { classifyQuery } from '../../proxy/routing/classifier';

interface Row {
  name: string;
  multiplexing: boolean;
  inTransaction?: boolean;
  autocommit?: boolean;
  statement?: string;
  prepared?: boolean;
  expected: HoldReason | null;
}

const rows: Row[] = [
  { name: 'nothing ties the session', multiplexing: true, expected: null },
  { name: 'a replayable SET does not', multiplexing: true, statement: "SET NAMES utf8mb4", expected: null },
  { name: 'multiplexing off', multiplexing: false, expected: 'multiplexing-off' },
  { name: 'an open transaction', multiplexing: true, inTransaction: true, expected: 'transaction' },
  { name: 'autocommit off', multiplexing: true, autocommit: false, expected: 'autocommit-off' },
  { name: 'a user variable', multiplexing: true, statement: 'SET @x = 1', expected: 'user-variable' },
  { name: 'a temporary table', multiplexing: true, statement: 'CREATE TEMPORARY TABLE tmp (a INT)', expected: 'temporary-table' },
  { name: 'a prepared statement', multiplexing: true, prepared: true, expected: 'prepared-statement' },
  { name: 'a transaction outranks a pin', multiplexing: true, inTransaction: true, statement: 'SET @x = 1', expected: 'transaction' },
];

describe('proxy session: why it keeps its backend connections (holdReason)', () => {
  for (const row of rows) {
    it(`${row.name} → ${row.expected ?? 'gives them back'}`, () => {
      const state = new SessionState('db');
      const statements = new StatementRegistry();
      const id: SessionIdentity = { state, statements, sink: null as never, login: { user: 'app', password: '' }, clientCapabilities: 0, charset: 45 };
      const backends = new SessionBackends(id, {} as ClusterView, {} as BackendPools, 0, () => 0, { enabled: row.multiplexing, lingerMs: 1000 });
      if (row.inTransaction === true) backends.primary = { inTransaction: true } as unknown as BackendConnection;
      if (row.autocommit === false) backends.autocommit = false;
      if (row.statement !== undefined) state.applyClassification(classifyQuery(Buffer.from(row.statement)), true);
      if (row.prepared === true) {
        const c = classifyQuery(Buffer.from('SELECT 1'));
        statements.add({ clientId: 1, sql: 'SELECT 1', classification: c, mayWrite: false, paramCount: 0, columnCount: 1 }, {} as BackendConnection, 7);
      }
      expect(backends.holdReason()).to.equal(row.expected);
    });
  }
});
