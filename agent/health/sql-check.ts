/**
 * The SQL health check: `SELECT 1` within a timeout, on one connection the agent keeps open.
 *
 * Why not a fresh connection per check: at max_connections Dolt does not refuse a new client, it
 * holds its handshake until a slot frees (pinned in test/integration/dolt-capacity-facts.test.ts),
 * so under application load a fresh-connection check times out exactly like a hung server, and
 * the agent would fence a healthy primary. A connection opened while Dolt had room keeps
 * answering when it is full: it is the agent's reserved slot.
 *
 * The connection follows the endpoint (a standby listens on its own port) and is opened again
 * when it breaks (Dolt restarted); a check that must reconnect and cannot, fails.
 */

import mysql from 'mysql2/promise';
import { withTimeout } from '../../common/with-timeout';
import type { Row, SqlEndpoint, SqlSession } from '../dolt/sql-session';
import type { CheckResult } from './health-tracker';

export class SqlHealthCheck {
  private connection: mysql.Connection | null = null;
  private key = '';

  async check(endpoint: SqlEndpoint, timeoutMs: number, now: () => number = Date.now): Promise<CheckResult> {
    const started = now();
    this.follow(endpoint);
    try {
      const reused = this.connection !== null;
      try {
        await this.query(endpoint, timeoutMs, 'SELECT 1');
      } catch (error) {
        // A kept connection that broke (Dolt restarted, a role change) is opened once more; a
        // fresh one that fails is the answer.
        if (!reused || now() - started >= timeoutMs) throw error;
        await this.query(endpoint, Math.max(1, timeoutMs - (now() - started)), 'SELECT 1');
      }
      return { ok: true, latencyMs: now() - started, error: null, at: started };
    } catch (error) {
      return { ok: false, latencyMs: null, error: (error as Error).message, at: started };
    }
  }

  /**
   * A read-only statement on the kept connection (the primary's per-cycle SHOW DATABASES): work
   * the agent does every cycle must not wait for a slot on a full Dolt either.
   */
  async query(endpoint: SqlEndpoint, timeoutMs: number, sql: string): Promise<Row[]> {
    this.follow(endpoint);
    try {
      const connection = this.connection ?? (await this.open(endpoint, timeoutMs));
      const [rows] = await withTimeout(connection.query({ sql, timeout: timeoutMs }), timeoutMs);
      return Array.isArray(rows) ? (rows as Row[]) : [];
    } catch (error) {
      // After an error or a timeout the connection's state is unknown: never reuse it.
      this.close();
      throw error;
    }
  }

  /** The kept connection belongs to one endpoint: another one (the standby's port) closes it. */
  private follow(endpoint: SqlEndpoint): void {
    const key = `${endpoint.user}@${endpoint.host}:${endpoint.port}`;
    if (key !== this.key) this.close();
    this.key = key;
  }

  /** This check's connection as a SqlSession, for helpers that take one. */
  session(endpoint: SqlEndpoint, timeoutMs: number): SqlSession {
    return { query: (sql, params = []) => (params.length === 0 ? this.query(endpoint, timeoutMs, sql) : Promise.reject(new Error('the health check connection takes no parameters'))) };
  }

  private async open(endpoint: SqlEndpoint, timeoutMs: number): Promise<mysql.Connection> {
    const pending = mysql.createConnection({ host: endpoint.host, port: endpoint.port, user: endpoint.user, password: endpoint.password, connectTimeout: timeoutMs });
    let connection: mysql.Connection;
    try {
      connection = await withTimeout(pending, timeoutMs);
    } catch (error) {
      // One that connects after we gave up is closed, not leaked.
      pending.then((late) => late.destroy(), () => undefined);
      throw error;
    }
    connection.on('error', () => {
      if (this.connection === connection) this.close();
    });
    this.connection = connection;
    return connection;
  }

  close(): void {
    this.connection?.destroy();
    this.connection = null;
  }
}
