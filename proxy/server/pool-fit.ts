/**
 * The pool's pure rules: which sessions a connection can serve at all (its login key), how well
 * an idle one fits a request (exact, replay the session's SETs, or reset first), and the check
 * that a new primary connection reached a Dolt that takes writes.
 */

import { FORWARDED_CAPABILITIES, type BackendConnection, type BackendLogin } from './backend-connection';
import { BackendReadOnlyError } from './errors';

/** Throws BackendReadOnlyError (closing `conn`) when its Dolt does not take writes. */
export async function verifyWritable(conn: BackendConnection): Promise<void> {
  let readOnly: string | null;
  try {
    readOnly = await conn.queryScalar('SELECT @@global.read_only');
  } catch (error) {
    conn.destroy(null);
    throw error;
  }
  if (readOnly !== '0') {
    conn.destroy(null);
    throw new BackendReadOnlyError(conn.name);
  }
}

const loginIds = new WeakMap<BackendLogin, number>();
let nextLoginId = 1;

/**
 * Which connections can serve which sessions at all: same backend login, same forwarded
 * capabilities (a connection negotiated with CLIENT_DEPRECATE_EOF cannot serve a client without
 * it) and the same login charset.
 */
export function poolLoginKey(login: BackendLogin, clientCapabilities: number, charset: number): string {
  let id = loginIds.get(login);
  if (id === undefined) {
    id = nextLoginId++;
    loginIds.set(login, id);
  }
  return `${id}\u0000${(clientCapabilities & FORWARDED_CAPABILITIES) >>> 0}\u0000${charset}`;
}

/** How an idle connection can serve a request; see the file doc. */
export enum Fit {
  Unusable = -1,
  Exact = 0,
  Replay = 1,
  Reset = 2,
}

/** The pure rule behind every hand-over (table-tested in test/unit/backend-pool.test.ts). */
export function fitOf(
  conn: { database: string | null; stateKey: string | null; multiStatements: boolean | null },
  database: string | null,
  stateKey: string,
  multiStatements: boolean | null,
): Fit {
  // Dolt keeps the database through a reset, and nothing unselects one.
  if (database === null && conn.database !== null) return Fit.Unusable;
  // An option switch can be set (COM_SET_OPTION) but not put back to "as negotiated".
  if (multiStatements === null && conn.multiStatements !== null) return Fit.Unusable;
  const sameState = conn.stateKey === stateKey;
  if (sameState && conn.database === database && conn.multiStatements === multiStatements) return Fit.Exact;
  if (sameState || conn.stateKey === '') return Fit.Replay;
  return Fit.Reset;
}
