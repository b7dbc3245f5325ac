/**
 * One forged etcd write must not hand the proxy's traffic, or its backend password, to someone
 * else (finding 3 of the hostile-input issue: a single unauthenticated write pointed a proxy at a
 * fake Dolt, which got the password by RSA and served the application its rows; an epoch of
 * 2^53-1 then pinned the proxy to it). Real etcd, real Dolt, and a fake "Dolt" on loopback that
 * records every byte it is sent.
 */

import { expect } from 'chai';
import { createServer, type Server, type Socket } from 'node:net';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import type { Etcd3 } from 'etcd3';
import { silentLogger } from '../../common/logger';
import { clusterKeys, encodeTopology, type Topology } from '../../proto';
import { buildHandshakeV10, Capability, frame, ServerStatus } from '../../proxy/protocol';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { BackendConnection } from '../../proxy/server/backend-connection';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { etcdClient, startTestEtcd } from '../bed/etcd';
import { eventually } from '../bed/eventually';
import { vouchFor } from '../bed/topology-evidence';

type Row = RowDataPacket & Record<string, unknown>;

/** A server that greets like a MySQL server asking for caching_sha2_password, then asks for full authentication. */
async function fakeDolt(): Promise<{ server: Server; port: number; received: Buffer[]; connections: () => number }> {
  const received: Buffer[] = [];
  let count = 0;
  const server = createServer((socket: Socket) => {
    count++;
    socket.on('error', () => undefined);
    const caps = (Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH | Capability.CLIENT_DEPRECATE_EOF | Capability.CLIENT_TRANSACTIONS | Capability.CLIENT_MULTI_RESULTS | Capability.CLIENT_CONNECT_WITH_DB | Capability.CLIENT_PS_MULTI_RESULTS | Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CLIENT_CONNECT_ATTRS) >>> 0;
    socket.write(frame(0, buildHandshakeV10({ serverVersion: '8.0.33-fake', connectionId: 7, scramble: Buffer.alloc(20, 0x41), capabilities: caps, charset: 45, statusFlags: ServerStatus.SERVER_STATUS_AUTOCOMMIT, authPluginName: 'caching_sha2_password' })));
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      if (!answered) {
        answered = true;
        socket.write(frame(2, Buffer.from([0x01, 0x04]))); // PERFORM_FULL_AUTHENTICATION
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registerCleanup(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0, received, connections: () => count };
}

describe('a forged topology in etcd (real etcd, real Dolt, a fake server)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let etcd: EtcdCluster;
  let client: Etcd3;
  let proxy: RunningProxy;
  const name = 'forgery';

  const topology = (epoch: number, primary: string, sql: Record<string, number>): Topology => ({
    epoch,
    state: 'stable',
    primary,
    nodes: Object.fromEntries(Object.entries(sql).map(([n, port]) => [n, { sql: { host: '127.0.0.1', port }, role: n === primary ? 'primary' : 'replica' }])),
    reason: 'test',
    at: new Date().toISOString(),
  });
  const writeTopology = (t: Topology) => client.put(clusterKeys(name).topology).value(encodeTopology(t));

  before(async () => {
    [cluster, etcd] = await Promise.all([TestDoltCluster.start({ nodes: 2 }), startTestEtcd(1)]);
    client = etcdClient(etcd);
    const first = topology(1, 'n1', { n1: cluster.nodes[0].port, n2: cluster.nodes[1].port });
    await vouchFor(client, name, first);
    await writeTopology(first);
    await client.put(clusterKeys(name).leader).value('n1');
    proxy = await startProxy(
      parseProxyConfig({
        listen: { port: 0 },
        users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' }],
        cluster: name,
        etcd: { endpoints: etcd.endpoints },
      }),
      silentLogger,
    );
    registerCleanup(() => proxy.stop());
    await eventually(() => proxy.server.view.topology?.epoch === 1, { within: 10_000, what: 'the first topology' });
  });
  after(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  const writesGoTo = async (): Promise<number> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret', database: 'db' });
    try {
      const [rows] = await c.query<Row[]>('/* doltgate:primary */ SELECT @@port AS p');
      return Number(rows[0].p);
    } finally {
      c.destroy();
    }
  };

  it('a forged primary (a node no agent vouches for, at epoch 2^53-1) is refused; the proxy keeps the real one, and a later honest topology still applies', async () => {
    const fake = await fakeDolt();
    await writeTopology(topology(2 ** 53 - 1, 'evil', { n1: cluster.nodes[0].port, n2: cluster.nodes[1].port, evil: fake.port }));
    await writeTopology(topology(2, 'n1', { n1: fake.port, n2: cluster.nodes[1].port }));
    await new Promise((r) => setTimeout(r, 500));
    expect(proxy.server.view.topology?.epoch).to.equal(1);
    expect(await writesGoTo()).to.equal(cluster.nodes[0].port);
    expect(fake.connections(), 'the fake server was never dialled').to.equal(0);

    // Not pinned: the next honest epoch (with what the agents write beside it) applies.
    const honest = { ...topology(2, 'n1', { n1: cluster.nodes[0].port, n2: cluster.nodes[1].port }), reason: 'honest' };
    await vouchFor(client, name, honest);
    await writeTopology(honest);
    await eventually(() => proxy.server.view.topology?.reason === 'honest', { within: 10_000, what: 'the honest epoch 2' });
    expect(await writesGoTo()).to.equal(cluster.nodes[0].port);
  });

  it('the backend password never goes to a server that asks for it without verified TLS (RSA key or cleartext)', async () => {
    const fake = await fakeDolt();
    const refused = await BackendConnection.connect({
      target: { name: 'fake', host: '127.0.0.1', port: fake.port },
      login: { user: 'root', password: 'the-backend-password' },
      clientCapabilities: 0,
      charset: 45,
      database: null,
      connectTimeoutMs: 3000,
      maxPacketSize: 1 << 24,
      tls: null,
    }).then(
      (c) => {
        c.destroy(null);
        return null;
      },
      (e: Error) => e,
    );
    expect(refused?.message).to.match(/asks for the password itself .*only over TLS with a verified certificate/);
    await new Promise((r) => setTimeout(r, 200));
    const sent = Buffer.concat(fake.received);
    expect(sent.includes(Buffer.from('the-backend-password')), 'the password in clear').to.equal(false);
    // The handshake response (with its scramble-based proof) is all the fake ever got.
    expect(fake.received.length).to.equal(1);
  });
});
