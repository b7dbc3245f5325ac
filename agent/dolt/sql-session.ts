/**
 * Short-lived admin sessions to the local Dolt through mysql2 (the health checker, the inspector
 * and the failover steps use it; the proxy's hot path never does). Each call opens a connection,
 * runs, and closes it, so a hung server costs one timeout, never a leaked pool.
 */

import mysql from 'mysql2/promise';
import { isUserDatabase } from '../../common/sql-names';

export interface SqlEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

export class DoltSqlError extends Error {
  readonly code = 'DOLT_SQL';
  constructor(readonly statement: string, readonly errno: number | undefined, message: string) {
    super(`${statement.slice(0, 80)} failed${errno ? ` (${errno})` : ''}: ${message}`);
  }
}

export type Row = Record<string, unknown>;

export interface SqlSession {
  query(sql: string, params?: unknown[]): Promise<Row[]>;
}

export async function withSession<T>(endpoint: SqlEndpoint, timeoutMs: number, run: (session: SqlSession) => Promise<T>, database?: string): Promise<T> {
  const connection = await mysql.createConnection({
    host: endpoint.host,
    port: endpoint.port,
    user: endpoint.user,
    password: endpoint.password,
    database,
    connectTimeout: timeoutMs,
  });
  // A server that stops answering mid-query must not hold the agent's loop forever.
  connection.on('error', () => undefined);
  const session: SqlSession = {
    async query(sql, params = []) {
      try {
        const [rows] = await connection.query({ sql, timeout: timeoutMs }, params);
        return Array.isArray(rows) ? (rows as Row[]) : [];
      } catch (error) {
        const typed = error as Error & { errno?: number };
        throw new DoltSqlError(sql, typed.errno, typed.message);
      }
    },
  };
  try {
    return await run(session);
  } finally {
    connection.destroy();
  }
}

/** User databases: everything but MySQL's and Dolt's system schemas. */
export async function listDatabases(session: SqlSession): Promise<string[]> {
  const rows = await session.query('SHOW DATABASES');
  return rows.map((row) => String(Object.values(row)[0])).filter(isUserDatabase).sort();
}

export { quoteIdentifier } from '../../common/sql-names';
