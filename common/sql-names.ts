/**
 * Names in Dolt's SQL, as every part of doltgate writes and reads them: a quoted identifier, and
 * which databases are the user's (not MySQL's or Dolt's system schemas, nor `db/branch` names).
 */

const SYSTEM_SCHEMAS: ReadonlySet<string> = new Set(['information_schema', 'mysql', 'performance_schema', 'sys', 'dolt_cluster']);

export function quoteIdentifier(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

export function isUserDatabase(name: string): boolean {
  return !SYSTEM_SCHEMAS.has(name) && !name.includes('/');
}
