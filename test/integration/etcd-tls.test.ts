/**
 * etcd over TLS with client certificates (finding 3 of the hostile-input issue: agent, proxy and
 * CLI had no setting for an etcd CA or client certificate). A real etcd on 127.0.0.1 with
 * --client-cert-auth, certificates made by openssl: the agent's store, the proxy's topology
 * source and the CLI's agent discovery all work with the CA and a client certificate, and a
 * client without a certificate gets nothing.
 */

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { EtcdClusterStore } from '../../agent/store/etcd-cluster-store';
import { discoverAgents } from '../../cli/control-client';
import { ManagedChild } from '../../common/child-process';
import { etcd3Options, type EtcdAccess } from '../../common/etcd-access';
import { freePort } from '../../common/free-port';
import { silentLogger } from '../../common/logger';
import { withTimeout } from '../../common/with-timeout';
import { clusterKeys, encodeTopology, type Topology } from '../../proto';
import { EtcdTopologySource } from '../../proxy/cluster/etcd-topology-source';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { eventually } from '../bed/eventually';
import { vouchFor, vouchingMember } from '../bed/topology-evidence';

describe('etcd over TLS with client certificates (real etcd)', function () {
  this.timeout(60_000);
  let dir: string;
  let access: EtcdAccess;

  const file = (name: string): string => join(dir, name);

  before(async () => {
    dir = await tempDir('etcd-tls');
    const ssl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=doltgate etcd test CA');
    writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
    for (const name of ['server', 'client']) {
      ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
    }
    const clientPort = await freePort();
    const peerPort = await freePort();
    const url = `https://127.0.0.1:${clientPort}`;
    const etcd = new ManagedChild({
      command: 'etcd',
      args: [
        '--name', 'tls1', '--data-dir', file('data'),
        '--listen-client-urls', url, '--advertise-client-urls', url,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `tls1=http://127.0.0.1:${peerPort}`,
        '--cert-file', file('server.pem'), '--key-file', file('server.key'), '--trusted-ca-file', file('ca.pem'), '--client-cert-auth',
      ],
      logFile: file('etcd.log'),
    });
    registerCleanup(() => etcd.stop(5000).then(() => undefined));
    await etcd.start();
    access = { endpoints: [url], tls: { caFile: file('ca.pem'), certFile: file('client.pem'), keyFile: file('client.key') }, auth: null };
    await eventually(async () => {
      const client = new Etcd3(etcd3Options(access));
      try {
        await withTimeout(client.get('probe').string(), 1000, 'etcd up');
        return true;
      } catch {
        return false;
      } finally {
        client.close();
      }
    }, { within: 20_000, what: 'etcd over TLS to answer' });
  });

  it('a client without a certificate gets nothing; one with the CA and its certificate reads and writes', async () => {
    const anonymous = new Etcd3(etcd3Options({ ...access, tls: { caFile: file('ca.pem'), certFile: null, keyFile: null } }, { dialTimeout: 2000 }));
    const refused = await withTimeout(anonymous.put('k').value('v').exec(), 3000, 'anonymous put').then(() => 'written', () => 'refused');
    anonymous.close();
    expect(refused).to.equal('refused');

    const store = new EtcdClusterStore({ endpoints: access.endpoints, tls: access.tls, cluster: 'tls' });
    registerCleanup(() => store.close());
    const lease = await store.grantLease(10_000);
    await store.putMember({ ...vouchingMember('n1', { host: '127.0.0.1', port: 3301 }, 0), grpc: '127.0.0.1:7401' }, lease);
    expect(Object.keys((await store.snapshot()).members)).to.deep.equal(['n1']);
    // The CLI finds the agents through the same etcd, with --etcd-ca/--etcd-cert/--etcd-key.
    expect(await discoverAgents(access, 'tls', 3000)).to.deep.equal([{ name: 'n1', address: '127.0.0.1:7401' }]);
  });

  it("the proxy's topology source follows the topology over TLS", async () => {
    const client = new Etcd3(etcd3Options(access));
    registerCleanup(() => client.close());
    const topology: Topology = { epoch: 1, state: 'stable', primary: 'n1', nodes: { n1: { sql: { host: '127.0.0.1', port: 3301 }, role: 'primary' } }, reason: 'tls test', at: new Date().toISOString() };
    await vouchFor(client, 'tls-proxy', topology);
    await client.put(clusterKeys('tls-proxy').topology).value(encodeTopology(topology));
    const source = new EtcdTopologySource({ endpoints: access.endpoints, tls: access.tls, cluster: 'tls-proxy', logger: silentLogger });
    registerCleanup(() => source.stop());
    await source.start();
    await eventually(() => source.current().topology?.reason === 'tls test', { within: 10_000, what: 'the topology over TLS' });
    expect(source.current().etcdReachable).to.equal(true);
  });
});
