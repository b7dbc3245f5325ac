/**
 * The hot path's one question: can this command go to a backend connection right now, without
 * any I/O first? `readyConnection` answers with the connection, or null — then the command takes
 * the async setup path (command-setup.ts: connect, replay state, re-prepare, arm the outcome
 * token, select the database, wait in the write hold). It also settles where a read goes
 * (`job.route`, `job.replica`) as routing decided (route-decision.ts), since the replica is
 * picked here.
 *
 * A connection is ready when it is idle and synced with the session's state, and none of these
 * needs a round trip first: the statement prepared there (with its parameter types, if the
 * client left them out), a text query after a prepare-only use (the prepare's snapshot must end
 * first: dolt-multiplexing-facts), a commit message to arm or clear, a database to select.
 */

import { Command } from '../protocol';
import { readTarget } from '../routing/route-decision';
import type { ReplicaSelector } from '../routing/replica-selector';
import type { BackendConnection } from './backend-connection';
import type { Job } from './command-job';
import { placementOn, type PreparedStatement } from './prepared-statements';
import type { SessionBackends } from './session-backends';

export function readyConnection(job: Job, backends: SessionBackends, selector: ReplicaSelector, now: number): BackendConnection | null {
  let conn: BackendConnection | null = null;
  if (job.fixedConn !== null) {
    conn = job.fixedConn.isIdle && !job.fixedConn.isClosed ? job.fixedConn : null;
  } else if (job.route === 'replica') {
    // An execute runs on the replica its statement is prepared on: re-prepared elsewhere, it
    // would leave a prepare-only connection behind, whose next statement Dolt runs in the
    // snapshot of the prepare (dolt-multiplexing-facts): the session's next read missed its
    // own writes, even a table it had just created (issue 16).
    job.replica = (job.stmt !== null ? placedReplica(job.stmt, backends, selector, now) : undefined) ?? backends.pickReplica(now);
    job.route = readTarget(job.replica);
    if (job.replica !== undefined) conn = backends.readyReplica(job.replica);
  } else if (job.route === 'previous') {
    const last = backends.last;
    conn = last !== null && last.isIdle && backends.synced(last) ? last : null;
    if (conn === null) job.route = 'primary';
  }
  if (job.route === 'primary' && job.fixedConn === null) conn = backends.readyPrimary();
  if (conn === null) return null;
  if (job.stmt !== null && !statementReadyOn(job, job.stmt, conn)) return null;
  // A text query on a prepare-only connection first ends the prepare's snapshot: a round trip.
  if (conn.preparedOnly && job.command === Command.COM_QUERY) return null;
  // Arming the commit message is a round trip: the async path does it.
  if (job.commitPlan !== 'none' && !(job.commitPlan === 'clear' && conn.commitMessage === '')) return null;
  // A database to select first is I/O: the async path does it.
  if (job.selectDatabase !== null && conn.database !== job.selectDatabase) return null;
  return conn;
}

/** A replica this session holds the statement prepared on, still usable and in the read set. */
function placedReplica(stmt: PreparedStatement, backends: SessionBackends, selector: ReplicaSelector, now: number): string | undefined {
  for (const placement of stmt.placements) {
    const conn = placement.conn;
    if (conn.role === 'replica' && backends.usable(conn) && selector.isAvailable(conn.target.name, now)) return conn.target.name;
  }
  return undefined;
}

/** Can this statement command go to `conn` without I/O (prepared there; types if needed)? */
function statementReadyOn(job: Job, stmt: PreparedStatement, conn: BackendConnection): boolean {
  const placement = placementOn(stmt, conn);
  if (placement === null) return false;
  if (job.command !== Command.COM_STMT_EXECUTE || job.layout === null) return true;
  return job.layout.bound || job.layout.boundFlagOffset < 0 || placement.typesSent || stmt.types === null;
}
