/**
 * Dolt's cluster role over SQL (cluster mode; test/integration/dolt-cluster-facts and
 * dolt-cluster-mode-facts pin each call): read the role, assume one at an epoch, hand over
 * gracefully, read the primary's replication status.
 *
 * A role change kills every other connection of the node and leaves the calling one unusable,
 * so each change runs on a connection of its own, closed right after.
 */

import { withSession, type SqlEndpoint, type SqlSession } from './sql-session';

export type ClusterRoleName = 'primary' | 'standby' | 'detected_broken_config';

export interface ClusterRole {
  role: ClusterRoleName | string;
  epoch: number;
}

/** The node's role now: the global values (a session's copy is a snapshot from its start). */
export async function readClusterRole(session: SqlSession): Promise<ClusterRole> {
  const rows = await session.query('SELECT @@GLOBAL.dolt_cluster_role AS role, @@GLOBAL.dolt_cluster_role_epoch AS epoch');
  return { role: String(rows[0]?.role ?? ''), epoch: Number(rows[0]?.epoch ?? -1) };
}

/** `CALL dolt_assume_cluster_role(role, epoch)`; Dolt refuses an epoch that does not rise. */
export async function assumeClusterRole(endpoint: SqlEndpoint, role: 'primary' | 'standby', epoch: number, timeoutMs: number): Promise<void> {
  await withSession(endpoint, timeoutMs, (session) => session.query('CALL dolt_assume_cluster_role(?, ?)', [role, epoch]));
}

export interface CaughtUp {
  database: string;
  remote: string;
  caughtUp: boolean;
}

/**
 * `CALL dolt_cluster_transition_to_standby(epoch, minCaughtUp)`: Dolt stops taking writes, kills
 * running queries, waits for its standbys, and turns standby at `epoch` only when at least
 * `minCaughtUp` of them (0: every one) hold every database; otherwise it fails and stays primary.
 */
export async function transitionToStandby(endpoint: SqlEndpoint, epoch: number, minCaughtUp: number, timeoutMs: number): Promise<CaughtUp[]> {
  return withSession(endpoint, timeoutMs, async (session) => {
    const rows = await session.query('CALL dolt_cluster_transition_to_standby(?, ?)', [epoch, minCaughtUp]);
    return rows.map((row) => ({ database: String(row.database), remote: String(row.remote), caughtUp: Number(row.caught_up) === 1 }));
  });
}

export interface StandbyStatus {
  database: string;
  standby: string;
  /** 0 when caught up; null when nothing was pushed yet (cluster/commithook.go). */
  lagMs: number | null;
  error: string | null;
}

/** The primary's view of each standby, per database. */
export async function clusterStatus(session: SqlSession): Promise<StandbyStatus[]> {
  const rows = await session.query('SELECT `database`, standby_remote, replication_lag_millis, current_error FROM dolt_cluster.dolt_cluster_status');
  return rows.map((row) => ({
    database: String(row.database),
    standby: String(row.standby_remote),
    lagMs: row.replication_lag_millis === null || row.replication_lag_millis === undefined ? null : Number(row.replication_lag_millis),
    error: row.current_error === null || row.current_error === undefined || row.current_error === '' ? null : String(row.current_error),
  }));
}
