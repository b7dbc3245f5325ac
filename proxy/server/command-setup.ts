/**
 * The round trips a command may need on its backend connection before the client's own packet
 * goes out: the statement prepared there, the write's database selected, a prepare's snapshot
 * ended, the outcome token armed (outcome-token.ts). None of them is the client's command, so a
 * failure here means the command was never sent (command-forwarder.ts decides what the client
 * hears, or starts the setup over).
 */

import { Command, comInitDbFrame, comQueryFrame, comStmtPrepareFrame } from '../protocol';
import type { BackendConnection } from './backend-connection';
import type { Job } from './command-job';
import { BackendErrorReply, ReadInterruptedError } from './errors';
import { armStatement } from './outcome-token';
import { placementOn, placeStatement, type PreparedStatement } from './prepared-statements';
import type { SessionBackends } from './session-backends';
import type { SessionContext } from './session-context';

/** MySQL's ER_UNKNOWN_SYSTEM_VARIABLE: a Dolt without dolt_transaction_commit_message. */
const UNKNOWN_SYSTEM_VARIABLE = 1193;

export type SetupContext = Pick<SessionContext, 'outcomeTokens' | 'metrics' | 'logger'>;

/**
 * The connection the command's route asks for, waited for if need be (pool budget, write hold);
 * a read with no replica left goes to the primary (`job.route` says where it went).
 */
export async function acquireFor(job: Job, backends: SessionBackends, signal: AbortSignal): Promise<BackendConnection> {
  if (job.fixedConn !== null) {
    if (job.fixedConn.isClosed) throw new ReadInterruptedError(job.fixedConn.name, 'the connection holding this statement closed');
    return job.fixedConn;
  }
  if (job.route === 'replica') {
    const got = await backends.acquireRead(job.replica, signal);
    job.replica = got.replica ?? undefined;
    if (got.replica === null) job.route = 'primary';
    return got.conn;
  }
  job.route = 'primary';
  return backends.acquirePrimary(signal);
}

/** The round trips a command may need on its connection before it is sent. */
export async function readyForCommand(job: Job, conn: BackendConnection, ctx: SetupContext, isClosed: () => boolean): Promise<void> {
  if (!isClosed() && job.stmt !== null) await ensurePrepared(job.stmt, conn);
  if (!isClosed() && job.selectDatabase !== null) await selectDatabase(job.selectDatabase, conn);
  if (!isClosed() && conn.preparedOnly && job.command === Command.COM_QUERY) await endPrepareSnapshot(conn);
  if (!isClosed() && job.commitPlan !== 'none') await armCommitMessage(job, conn, ctx);
}

/**
 * Dolt runs the first statement after a COM_STMT_PREPARE that had no execute in the snapshot of
 * the prepare (dolt-multiplexing-facts): any statement ends that, so a `SELECT 1` goes first and
 * the client's query reads fresh data. Inside a transaction the snapshot is the transaction's
 * anyway.
 */
export async function endPrepareSnapshot(conn: BackendConnection): Promise<void> {
  if (conn.inTransaction) return;
  const o = await conn.runCommand(comQueryFrame('SELECT 1', conn.capabilities));
  if (o.errno !== 0) throw new BackendErrorReply(o.errno, o.sqlState, `doltgate could not refresh ${conn.name} after a prepare: ${o.message}`);
  conn.preparedOnly = false;
}

/**
 * Sets the connection's commit message for `job` (outcome-token.ts): a fresh token, or empty.
 * A Dolt that refuses the variable leaves the message as it was; the job then runs without a
 * token, and a stale token is never left in place for a commit it did not name.
 */
export async function armCommitMessage(job: Job, conn: BackendConnection, ctx: SetupContext): Promise<void> {
  const tokens = ctx.outcomeTokens;
  if (job.commitPlan === 'token' && tokens !== null) {
    const token = tokens.next(conn.target.name);
    const o = await conn.runCommand(comQueryFrame(armStatement(token), conn.capabilities));
    if (o.errno === 0) {
      conn.commitMessage = token;
      job.outcomeToken = token;
      ctx.metrics.outcomeTokens.inc();
      return;
    }
    if (o.errno === UNKNOWN_SYSTEM_VARIABLE) {
      // A Dolt without dolt_transaction_commit_message: tokens off for this proxy, said once.
      tokens.disabledBecause = `${conn.name} does not know dolt_transaction_commit_message`;
      ctx.logger.warn('outcome tokens are off: the primary has no dolt_transaction_commit_message', { backend: conn.name, message: o.message });
    } else {
      ctx.logger.warn('could not set the outcome token on a backend connection', { backend: conn.name, errno: o.errno, message: o.message });
    }
  }
  if (conn.commitMessage === '') return;
  const o = await conn.runCommand(comQueryFrame(armStatement(null), conn.capabilities));
  if (o.errno === 0) {
    conn.commitMessage = '';
    return;
  }
  // The stale token cannot be cleared, so the statement must not run under it; and a connection
  // that fails even a SET is in a state the proxy does not know (a failed Dolt commit leaves its
  // session failing every statement): it is closed, never reused. The command was not sent, so
  // the setup starts over on a fresh connection (command-forwarder.ts retiredDuringSetup), unless
  // a transaction went with it.
  const error = new BackendErrorReply(o.errno, o.sqlState, `doltgate could not clear the commit message on ${conn.name}: ${o.message}`);
  conn.destroy(error);
  throw error;
}

/**
 * For a session without a current database: its backend connection gets the write's target
 * database first (Dolt commits a write to the current database). The client's session still
 * has none; like a pooled connection another session left in a database, the backend's
 * choice shows only to unqualified names, which a session without a database cannot use anyway.
 */
export async function selectDatabase(database: string, conn: BackendConnection): Promise<void> {
  if (conn.database === database) return;
  const o = await conn.runCommand(comInitDbFrame(database));
  if (o.errno !== 0) throw new BackendErrorReply(o.errno, o.sqlState, o.message);
  conn.database = database;
}

export async function ensurePrepared(stmt: PreparedStatement, conn: BackendConnection): Promise<void> {
  if (placementOn(stmt, conn) !== null) return;
  conn.preparedOnly = true;
  const o = await conn.runCommand(comStmtPrepareFrame(stmt.sql));
  if (o.errno !== 0) throw new BackendErrorReply(o.errno, o.sqlState, o.message);
  placeStatement(stmt, conn, o.statementId);
}
