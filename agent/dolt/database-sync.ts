/**
 * Bringing a node's set of databases up to the cluster's catalog (proto/database-catalog.ts):
 * a database created at run time on the primary must appear on every other node without a
 * restart, and be there on a node promoted before any client asked a replica for it.
 *
 * Two ways, by role (both pinned in test/integration/dolt-new-database-facts.test.ts):
 * - a read replica clones a database it lacks from the remote URL template the first time a
 *   query names it, and pulls it at every transaction after: naming it is enough;
 * - a writable server without replication (the standby where recovery runs) clones it with
 *   `CALL dolt_clone(url, name)`, which names that URL `origin`; a cluster whose remote has
 *   another name gets it re-added under that name.
 */

import { catalogNames, droppedNames, type DatabaseCatalog } from '../../proto';
import { remoteUrlFor } from './server-config';
import { listDatabases, quoteIdentifier, type SqlSession } from './sql-session';

/** The catalog's databases this node lacks, in name order. */
export function missingDatabases(catalog: readonly string[], local: readonly string[]): string[] {
  const have = new Set(local);
  return catalog.filter((name) => !have.has(name)).sort();
}

/** On a read replica: names each database so Dolt clones it; returns those now present. */
export async function touchDatabases(session: SqlSession, names: readonly string[]): Promise<string[]> {
  for (const name of names) await session.query(`SELECT COUNT(*) AS n FROM ${quoteIdentifier(name)}.dolt_branches`);
  const present = new Set(await listDatabases(session));
  return names.filter((name) => present.has(name));
}

export class NoRemoteTemplateError extends Error {
  readonly code = 'NO_REMOTE_TEMPLATE';
  constructor(names: readonly string[]) {
    super(`the cluster holds database(s) ${names.join(', ')} that this node lacks, and dolt.remote_url_template is not set, so it cannot clone them: set it in agent.yaml (the same on every node)`);
  }
}

/** On a writable server: clones each of these databases (which it lacks) from the remote; returns the names cloned. */
export async function cloneDatabases(session: SqlSession, names: readonly string[], template: string | null, remoteName: string): Promise<string[]> {
  if (names.length === 0) return [];
  if (template === null) throw new NoRemoteTemplateError(names);
  const cloned: string[] = [];
  for (const name of names) {
    await session.query('CALL dolt_clone(?, ?)', [remoteUrlFor(template, name), name]);
    if (remoteName !== 'origin') {
      await session.query(`USE ${quoteIdentifier(name)}`);
      await session.query("CALL dolt_remote('remove', 'origin')");
      await session.query("CALL dolt_remote('add', ?, ?)", [remoteName, remoteUrlFor(template, name)]);
    }
    cloned.push(name);
  }
  return cloned;
}

/** On a writable server: drops each of these databases (which it holds). */
async function dropDatabases(session: SqlSession, names: readonly string[]): Promise<void> {
  for (const name of names) await session.query(`DROP DATABASE ${quoteIdentifier(name)}`);
}

export interface Alignment {
  cloned: string[];
  dropped: string[];
}

/**
 * On a writable standby, before recovery: the databases the catalog lists as live and this node
 * lacks are cloned, the ones it lists as dropped and this node holds are dropped, so that neither
 * a promoted node nor a rejoining old primary brings a dropped database back or misses a new one.
 */
export async function alignWithCatalog(session: SqlSession, catalog: DatabaseCatalog | null, template: string | null, remoteName: string): Promise<Alignment> {
  const present = await listDatabases(session);
  const dropped = droppedNames(catalog).filter((name) => present.includes(name));
  await dropDatabases(session, dropped);
  // A live name is never also a tombstone, so what was present is still what counts for cloning.
  const cloned = await cloneDatabases(session, missingDatabases(catalogNames(catalog), present), template, remoteName);
  return { cloned, dropped };
}

export function describeAlignment(alignment: Alignment): string {
  const parts: string[] = [];
  if (alignment.cloned.length > 0) parts.push(`cloned ${alignment.cloned.join(', ')} from the remote`);
  if (alignment.dropped.length > 0) parts.push(`dropped ${alignment.dropped.join(', ')} (dropped on the primary)`);
  return parts.length > 0 ? `${parts.join('; ')}; ` : '';
}
