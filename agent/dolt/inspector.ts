/**
 * What the member record says about a node's data: every database's branch heads, the remote's
 * heads as last fetched, and how many commits the node holds that the remote lacks. The last is
 * how the agent sees Dolt's ignored-push gap (a COMMIT can be acknowledged without reaching the
 * remote; see test/integration/dolt-facts.test.ts): it is measured, never assumed zero.
 */

import type { HeadsByDatabase } from '../../proto';
import { listDatabases, quoteIdentifier, type SqlSession } from './sql-session';

export interface DataInspection {
  heads: HeadsByDatabase;
  remoteHeads: HeadsByDatabase;
  /** Per database and branch: commits on the local branch not on the remote's branch. */
  notOnRemote: Record<string, Record<string, number>>;
  commitsNotOnRemote: number;
  /** Per database and branch: commits on the remote's branch this node lacks. */
  commitsBehindRemote: number;
  /**
   * Databases with no remote of that name (created at run time without a remote URL template):
   * nothing in them reaches the remote or another node; every branch counts as not on the remote.
   */
  databasesWithoutRemote: string[];
}

/** Commits not on the remote, per database: what `doltgate status` shows for each. */
export function notOnRemoteByDatabase(inspection: Pick<DataInspection, 'notOnRemote'>): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const [database, branches] of Object.entries(inspection.notOnRemote)) sums[database] = Object.values(branches).reduce((a, b) => a + b, 0);
  return sums;
}

async function hasRemote(session: SqlSession, database: string, remoteName: string): Promise<boolean> {
  const rows = await session.query(`SELECT name FROM ${quoteIdentifier(database)}.dolt_remotes WHERE name = ?`, [remoteName]);
  return rows.length > 0;
}

export interface InspectOptions {
  remoteName: string;
  /** Fetch first (writable servers only: read-only servers refuse dolt_fetch). */
  fetch: boolean;
}

export async function branchHeads(session: SqlSession, database: string): Promise<Record<string, string>> {
  const rows = await session.query(`SELECT name, hash FROM ${quoteIdentifier(database)}.dolt_branches`);
  const heads: Record<string, string> = {};
  for (const row of rows) heads[String(row.name)] = String(row.hash);
  return heads;
}

export async function remoteBranchHeads(session: SqlSession, database: string, remoteName: string): Promise<Record<string, string>> {
  const rows = await session.query(`SELECT name, hash FROM ${quoteIdentifier(database)}.dolt_remote_branches`);
  const prefix = `remotes/${remoteName}/`;
  const heads: Record<string, string> = {};
  for (const row of rows) {
    const name = String(row.name);
    if (name.startsWith(prefix)) heads[name.slice(prefix.length)] = String(row.hash);
  }
  return heads;
}

/** Commits reachable from `from` but not from `notIn` (both refs), via dolt_log's two-dot range. */
export async function countCommitsBetween(session: SqlSession, database: string, notIn: string, from: string): Promise<number> {
  await session.query(`USE ${quoteIdentifier(database)}`);
  const rows = await session.query('SELECT COUNT(*) AS n FROM dolt_log(?)', [`${notIn}..${from}`]);
  return Number(rows[0]?.n ?? 0);
}

export async function inspectData(session: SqlSession, options: InspectOptions): Promise<DataInspection> {
  const inspection: DataInspection = { heads: {}, remoteHeads: {}, notOnRemote: {}, commitsNotOnRemote: 0, commitsBehindRemote: 0, databasesWithoutRemote: [] };
  for (const database of await listDatabases(session)) {
    if (!(await hasRemote(session, database, options.remoteName))) {
      const heads = await branchHeads(session, database);
      inspection.databasesWithoutRemote.push(database);
      inspection.heads[database] = heads;
      inspection.remoteHeads[database] = {};
      inspection.notOnRemote[database] = Object.fromEntries(Object.keys(heads).map((branch) => [branch, 1]));
      inspection.commitsNotOnRemote += Object.keys(heads).length;
      continue;
    }
    if (options.fetch) {
      await session.query(`USE ${quoteIdentifier(database)}`);
      await session.query('CALL dolt_fetch(?)', [options.remoteName]);
    }
    const heads = await branchHeads(session, database);
    const remote = await remoteBranchHeads(session, database, options.remoteName);
    inspection.heads[database] = heads;
    inspection.remoteHeads[database] = remote;
    inspection.notOnRemote[database] = {};
    for (const [branch, hash] of Object.entries(heads)) {
      const remoteHash = remote[branch];
      // A branch the remote has never seen counts as one commit not on the remote: the gap is
      // visible without walking a possibly long history.
      let ahead = 1;
      if (remoteHash === hash) ahead = 0;
      else if (remoteHash !== undefined) ahead = await countCommitsBetween(session, database, `${options.remoteName}/${branch}`, branch);
      inspection.notOnRemote[database][branch] = ahead;
      inspection.commitsNotOnRemote += ahead;
      if (remoteHash !== undefined && remoteHash !== hash) {
        inspection.commitsBehindRemote += await countCommitsBetween(session, database, branch, `${options.remoteName}/${branch}`);
      }
    }
  }
  return inspection;
}
