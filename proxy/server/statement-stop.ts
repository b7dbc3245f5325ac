/**
 * Stopping a statement where it runs, for query_timeout_ms and a client's KILL QUERY: closing
 * the backend connection alone would leave Dolt running it (pinned in dolt-protocol-facts.test.ts),
 * so the proxy sends KILL QUERY for the backend's connection id over a side connection. Dolt then
 * ends the response with an ERR, which the client hears as `reply(null)` (the forwarder swaps it
 * in: `Inflight.stopping`). If the KILL fails, or the statement has not ended STOP_GRACE_MS after
 * Dolt accepted it, the connection is closed and the client told the statement could not be
 * stopped (`reply(why)`), unless the command ended meanwhile.
 */

import type { BackendConnection, BackendLogin } from './backend-connection';
import type { BackendPools } from './backend-pool';
import type { Inflight } from './command-job';
import type { CommandLifecycle } from './command-lifecycle';

/** How long a statement may take to end after Dolt accepted KILL QUERY for it. */
export const STOP_GRACE_MS = 2000;

type SidePools = Pick<BackendPools, 'openSide' | 'connectTimeoutMs'>;

export function stopOnBackend(f: Inflight, reply: (couldNotStop: string | null) => Error, life: CommandLifecycle, pools: SidePools, login: BackendLogin): void {
  f.stopping = reply(null);
  const conn = f.conn;
  const giveUp = (why: string): void => {
    if (life.inflight !== f) return;
    f.failure = reply(why);
    conn.destroy(f.failure);
  };
  killQuery(conn, pools, login).then(
    () => {
      f.killSettled = true;
      setTimeout(() => giveUp(`KILL QUERY ${conn.connectionId} was accepted but the statement had not ended ${STOP_GRACE_MS} ms later`), STOP_GRACE_MS).unref();
    },
    (error: Error) => {
      f.killSettled = true;
      giveUp(error.message);
    },
  );
}

/**
 * KILL QUERY for `conn`'s backend connection id, sent over a fresh connection to the same node
 * (past the budget, like a probe: stopping a statement must not queue behind the load it is part
 * of). Resolves once Dolt accepted the KILL; rejects when it could not be sent or Dolt refused
 * it. Bounded by connectTimeoutMs, twice (connect, then the statement).
 */
async function killQuery(conn: BackendConnection, pools: SidePools, login: BackendLogin): Promise<void> {
  const side = await pools.openSide(conn.target, login);
  const limit = pools.connectTimeoutMs;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      side.queryScalar(`KILL QUERY ${conn.connectionId}`),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${conn.name} did not answer KILL QUERY within ${limit} ms`)), limit);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    side.destroy(null);
  }
}
