/** A real etcd for a test: started on free loopback ports, stopped and removed at cleanup. */

import { etcd3Options } from '../../common/etcd-access';
import { Etcd3 } from 'etcd3';
import { EtcdCluster } from '../../sandbox/etcd-cluster';
import { registerCleanup, tempDir } from './cleanup';

export async function startTestEtcd(members: 1 | 3 = 1, options: { auth?: boolean; authTokenTtlSeconds?: number } = {}): Promise<EtcdCluster> {
  const dir = await tempDir('etcd');
  const cluster = await EtcdCluster.start({ dir, members, auth: options.auth, authTokenTtlSeconds: options.authTokenTtlSeconds });
  registerCleanup(() => cluster.stop());
  return cluster;
}

export function etcdClient(cluster: Pick<EtcdCluster, 'access'>): Etcd3 {
  const client = new Etcd3(etcd3Options(cluster.access, { dialTimeout: 2000 }));
  // Closing a client whose cluster a test already stopped may reject; that is not a test failure.
  registerCleanup(() => {
    try {
      client.close();
    } catch {
      // ignored: see above
    }
  });
  return client;
}
