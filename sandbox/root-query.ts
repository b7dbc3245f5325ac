/** One query as Dolt's root on a fresh connection to a 127.0.0.1 port: for the test beds' and the benches' query helpers. */

import mysql from 'mysql2/promise';

export interface RootQueryOptions {
  database?: string;
  /** Both off unless set: a test that wants a hung node to fail fast sets them. */
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
}

export async function queryAsRoot<T = Record<string, unknown>>(port: number, sql: string, params: unknown[] = [], options: RootQueryOptions = {}): Promise<T[]> {
  const connection = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', database: options.database, connectTimeout: options.connectTimeoutMs });
  try {
    const [rows] = await connection.query({ sql, timeout: options.queryTimeoutMs }, params);
    return rows as T[];
  } finally {
    connection.destroy();
  }
}
