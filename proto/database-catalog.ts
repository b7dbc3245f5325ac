/**
 * The value of `/doltgate/<cluster>/databases`: every database the cluster holds, as the primaries
 * have seen them. Not bound to a lease: it must outlive the agent that wrote it, because a node
 * promoted after the primary's host is lost clones from it what it lacks (a database created at
 * run time that no replica was asked for yet).
 *
 * Only a primary's agent adds to it, by compare-and-swap, and only databases it holds with a
 * remote: a name here can always be cloned from the remote URL template.
 */

export interface CatalogEntry {
  /** When and by which primary it was first seen, and at which epoch. */
  addedAt: string;
  addedBy: string;
  epoch: number;
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

/** The names in the catalog, sorted; none for no catalog. */
export function catalogNames(catalog: DatabaseCatalog | null): string[] {
  return Object.keys(catalog?.databases ?? {}).sort();
}

/** The catalog with `names` added (existing entries untouched); null when none is new. */
export function catalogWith(catalog: DatabaseCatalog | null, names: readonly string[], by: string, epoch: number, now: string): DatabaseCatalog | null {
  const databases = { ...(catalog?.databases ?? {}) };
  let added = false;
  for (const name of names) {
    if (databases[name] !== undefined) continue;
    databases[name] = { addedAt: now, addedBy: by, epoch };
    added = true;
  }
  return added ? { databases } : null;
}
