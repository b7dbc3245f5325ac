/**
 * The member record's view of a node's data in cluster mode (inspector.ts is remote mode's):
 * every database's branch heads, and on the primary how many standbys lack its newest commits
 * (Dolt's dolt_cluster_status: a lag of 0 is caught up; none yet or an error is not). That count
 * stands where remote mode counts commits not on the remote: commits acknowledged to clients that
 * a failover could lose. There is no remote to be behind.
 */

import { branchHeads, type DataInspection } from './inspector';
import { clusterStatus } from './cluster-role';
import { listDatabases, type SqlSession } from './sql-session';

/** How a standby behind is keyed in notOnRemote (where remote mode keys branches). */
const STANDBY_PREFIX = 'standby ';

export async function inspectClusterData(session: SqlSession, options: { primary: boolean }): Promise<DataInspection> {
  const inspection: DataInspection = { heads: {}, remoteHeads: {}, notOnRemote: {}, commitsNotOnRemote: 0, commitsBehindRemote: 0, databasesWithoutRemote: [] };
  for (const database of await listDatabases(session)) {
    inspection.heads[database] = await branchHeads(session, database);
    inspection.remoteHeads[database] = {};
    inspection.notOnRemote[database] = {};
  }
  if (!options.primary) return inspection;
  for (const row of await clusterStatus(session)) {
    if (inspection.notOnRemote[row.database] === undefined || (row.lagMs === 0 && row.error === null)) continue;
    inspection.notOnRemote[row.database][`${STANDBY_PREFIX}${row.standby}`] = 1;
    inspection.commitsNotOnRemote += 1;
  }
  return inspection;
}

/** The standbys a primary's cluster inspection found behind on some database, by name. */
export function standbysBehind(inspection: Pick<DataInspection, 'notOnRemote'>): string[] {
  const names = new Set<string>();
  for (const entries of Object.values(inspection.notOnRemote)) {
    for (const key of Object.keys(entries)) if (key.startsWith(STANDBY_PREFIX)) names.add(key.slice(STANDBY_PREFIX.length));
  }
  return [...names].sort();
}
