/**
 * The value of `/doltgate/<cluster>/databases`: every database the cluster holds, as the primaries
 * have seen them. Not bound to a lease: it must outlive the agent that wrote it, because a node
 * promoted after the primary's host is lost clones from it what it lacks (a database created at
 * run time that no replica was asked for yet).
 *
 * Only a primary's agent writes it, by compare-and-swap, and only about databases it holds with a
 * remote: a live name here can always be cloned from the remote URL template. A dropped database
 * stays as a tombstone, so that a node that still holds it (a replica, an old primary rejoining)
 * drops it too instead of bringing it back.
 *
 * Invariant: a primary marks a database dropped only after it has itself held it during its
 * current tenure (catalogAfterObservation's `seenThisTenure`): a promoted node that lacks a
 * database for any other reason never turns that into a drop.
 */

export interface CatalogEntry {
  /** When and by which primary it was first seen, and at which epoch. */
  addedAt: string;
  addedBy: string;
  epoch: number;
  /** Set when a primary dropped it; cleared when one creates it again. */
  dropped?: { at: string; by: string; epoch: number };
}

export interface DatabaseCatalog {
  databases: Record<string, CatalogEntry>;
}

export class CatalogFormatError extends Error {
  readonly code = 'CATALOG_FORMAT';
  constructor(detail: string) {
    super(`database catalog is malformed: ${detail}`);
  }
}

export function decodeCatalog(raw: string | Buffer): DatabaseCatalog {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString());
  } catch (error) {
    throw new CatalogFormatError(`not JSON (${(error as Error).message})`);
  }
  const databases = (value as { databases?: unknown } | null)?.databases;
  if (typeof databases !== 'object' || databases === null || Array.isArray(databases)) throw new CatalogFormatError('databases must be an object');
  return { databases: databases as Record<string, CatalogEntry> };
}

export function encodeCatalog(catalog: DatabaseCatalog): string {
  return JSON.stringify(catalog);
}

/** The live (not dropped) names in the catalog, sorted; none for no catalog. */
export function catalogNames(catalog: DatabaseCatalog | null): string[] {
  return Object.entries(catalog?.databases ?? {}).filter(([, entry]) => entry.dropped === undefined).map(([name]) => name).sort();
}

/** The dropped names (tombstones), sorted. */
export function droppedNames(catalog: DatabaseCatalog | null): string[] {
  return Object.entries(catalog?.databases ?? {}).filter(([, entry]) => entry.dropped !== undefined).map(([name]) => name).sort();
}

export interface PrimaryObservation {
  /** The databases the primary holds with a remote now. */
  present: readonly string[];
  /** Every database it has held during its current tenure, `present` included. */
  seenThisTenure: ReadonlySet<string>;
}

/**
 * What the primary's observation changes: a new database is added, one created again after a
 * drop is live again, and a live one it held this tenure and holds no longer is dropped. Null
 * when nothing changes.
 */
export function catalogAfterObservation(catalog: DatabaseCatalog | null, observed: PrimaryObservation, by: string, epoch: number, now: string): DatabaseCatalog | null {
  const databases = { ...(catalog?.databases ?? {}) };
  const present = new Set(observed.present);
  let changed = false;
  for (const name of present) {
    const entry = databases[name];
    if (entry !== undefined && entry.dropped === undefined) continue;
    databases[name] = { addedAt: now, addedBy: by, epoch };
    changed = true;
  }
  for (const [name, entry] of Object.entries(databases)) {
    if (entry.dropped !== undefined || present.has(name) || !observed.seenThisTenure.has(name)) continue;
    databases[name] = { ...entry, dropped: { at: now, by, epoch } };
    changed = true;
  }
  return changed ? { databases } : null;
}
