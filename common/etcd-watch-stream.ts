/**
 * What etcd3 (the client library) does with one watch stream per client, and how we get out of
 * it. Learned against real etcd in test/integration/etcd3-watch-facts.test.ts:
 *
 * - All watchers of a client share one gRPC stream, which carries the auth token it was opened
 *   with. Once that token has gone (its TTL passed unused, or etcd restarted and forgot it), a
 *   watcher created on the stream is cancelled by etcd ("invalid auth token").
 * - After a watcher's creation is cancelled, for that reason or any other (a compacted start
 *   revision), etcd3 never attaches another watcher on that stream: its attach queue waits for
 *   the cancelled one forever, so later watchers never connect, even after a call has fetched a
 *   fresh token (and in that run the watchers already attached stopped hearing events too).
 *
 * So a cancelled watcher means the client's stream is done for: its owner makes a new client and
 * watches again, and disposes of the old one with this function: it closes the client and cancels
 * its watchers (a watcher left on a closed client would retry on timers of its own forever). A
 * stuck watcher's cancel() returns only once the closed client's stream has ended, ~50 s later
 * as measured, so the wait here is bounded and the cancels finish on their own after it.
 */

import type { Etcd3, Watcher } from 'etcd3';
import { withTimeout } from './with-timeout';

export async function disposeWatchClient(client: Etcd3, watchers: ReadonlyArray<Watcher | null>, timeoutMs: number): Promise<void> {
  try {
    client.close();
  } catch {
    // closing a client whose channels already failed may throw; it is closed either way
  }
  await Promise.all(
    watchers.filter((watcher): watcher is Watcher => watcher !== null).map((watcher) => withTimeout(watcher.cancel(), timeoutMs, 'cancel a watcher of a closed etcd client').catch(() => undefined)),
  );
}

