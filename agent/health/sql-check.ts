/** The SQL health check: connect and `SELECT 1` within a timeout, with mysql2. */

import { withTimeout } from '../../common/with-timeout';
import { withSession, type SqlEndpoint } from '../dolt/sql-session';
import type { CheckResult } from './health-tracker';

export async function sqlCheck(endpoint: SqlEndpoint, timeoutMs: number, now: () => number = Date.now): Promise<CheckResult> {
  const started = now();
  try {
    await withTimeout(withSession(endpoint, timeoutMs, (session) => session.query('SELECT 1')), timeoutMs);
    return { ok: true, latencyMs: now() - started, error: null, at: started };
  } catch (error) {
    return { ok: false, latencyMs: null, error: (error as Error).message, at: started };
  }
}

