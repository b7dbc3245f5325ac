/**
 * Learning test: how etcd3 (the client library) and etcd behave when a watch stream's auth token
 * goes, which common/etcd-watch-stream.ts works around. etcd runs with --auth-token-ttl 1, so a
 * token unused for a second is gone, as one is after etcd's default five idle minutes, or after
 * etcd restarts. Seen first in the fault suite with auth on: a proxy whose topology watch was
 * cancelled "invalid auth token" never attached a watch again and routed by a stale topology
 * until something else broke the stream, ~100 s later.
 */

import { expect } from 'chai';
import { Etcd3, type Watcher } from 'etcd3';
import { etcd3Options } from '../../common/etcd-access';
import { disposeWatchClient } from '../../common/etcd-watch-stream';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';
import { registerCleanup } from '../bed/cleanup';
import { startTestEtcd } from '../bed/etcd';

/** The first of `events` the watcher emits within `ms`, with its error message; 'none' if none. */
function firstEvent(watcher: Watcher, events: string[], ms: number): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('none'), ms);
    for (const event of events) {
      watcher.once(event, (arg: unknown) => {
        clearTimeout(timer);
        resolve(arg instanceof Error ? `${event}: ${arg.message}` : event);
      });
    }
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('etcd3 watches when the stream\'s token goes (learning test, real etcd with --auth-token-ttl 1)', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  const clients: Etcd3[] = [];
  const client = (): Etcd3 => {
    const made = new Etcd3(etcd3Options(etcd.access, { dialTimeout: 2000 }));
    clients.push(made);
    return made;
  };

  before(async () => {
    etcd = await startTestEtcd(1, { auth: true, authTokenTtlSeconds: 1 });
    registerCleanup(() => {
      for (const made of clients) {
        try {
          made.close();
        } catch {
          // already closed
        }
      }
    });
  });

  it('a watch already attached keeps hearing events after its token expired', async () => {
    const watching = client();
    const writer = client();
    const watcher = watching.watch().key('/facts/a').watcher();
    expect(await firstEvent(watcher, ['connected', 'error'], 5000)).to.equal('connected');
    await sleep(2500);
    const heard = firstEvent(watcher, ['put', 'error', 'disconnected'], 5000);
    await writer.put('/facts/a').value('1');
    expect(await heard).to.equal('put');
    await disposeWatchClient(watching, [watcher], 2000);
  });

  it('a watcher created on that stream is cancelled, and no later one on the client ever attaches; one on a new client does', async () => {
    const watching = client();
    const first = watching.watch().key('/facts/b').watcher();
    expect(await firstEvent(first, ['connected', 'error'], 5000)).to.equal('connected');
    await sleep(2500);
    const second = watching.watch().key('/facts/c').watcher();
    expect(await firstEvent(second, ['connected', 'error'], 5000)).to.match(/^error: Watcher canceled: .*invalid auth token/);
    const third = watching.watch().key('/facts/d').watcher();
    expect(await firstEvent(third, ['connected', 'error'], 4000), 'etcd3 waits for the cancelled create forever').to.equal('none');
    // A unary call fetches a fresh token, but the stream keeps the old one.
    expect(await watching.get('/facts/d').string()).to.equal(null);
    const fourth = watching.watch().key('/facts/e').watcher();
    expect(await firstEvent(fourth, ['connected', 'error'], 3000)).to.equal('none');

    const fresh = client();
    const elsewhere = fresh.watch().key('/facts/d').watcher();
    expect(await firstEvent(elsewhere, ['connected', 'error'], 5000)).to.equal('connected');

    // The closed client's stream lingers (~50 s measured) before the stuck watchers detach, so
    // disposal waits no longer than it is told to.
    const started = Date.now();
    await disposeWatchClient(watching, [first, third, fourth], 1000);
    expect(Date.now() - started).to.be.below(2500);
    await disposeWatchClient(fresh, [elsewhere], 2000);
  });
});
