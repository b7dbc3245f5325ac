/**
 * Learning test: what an etcd member that lost its quorum still answers, which the agent uses to
 * tell "etcd has no quorum" from "etcd is unreachable" (agent/store/etcd-quorum.ts). With two of
 * three members stopped (etcd auth on), a linearizable read cannot complete and a new client
 * cannot even get a token, while the survivor's HTTP /metrics still answers, without auth, and
 * says `etcd_server_has_leader 0` once its election timeout passes.
 */

import { expect } from 'chai';
import { Etcd3 } from 'etcd3';
import { etcd3Options } from '../../common/etcd-access';
import { EtcdQuorumProbe } from '../../agent/store/etcd-quorum';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';
import { registerCleanup } from '../bed/cleanup';
import { startTestEtcd } from '../bed/etcd';
import { eventually } from '../bed/eventually';

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | 'timed out'> {
  return Promise.race([promise, new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), ms))]);
}

async function hasLeaderLine(clientUrl: string): Promise<string> {
  const text = await (await fetch(`${clientUrl}/metrics`)).text();
  return text.split('\n').find((line) => line.startsWith('etcd_server_has_leader ')) ?? 'missing';
}

describe('etcd without quorum (learning test, real 3-member etcd with auth)', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  const clients: Etcd3[] = [];
  const client = (endpoint: string): Etcd3 => {
    const made = new Etcd3(etcd3Options({ ...etcd.access, endpoints: [endpoint] }, { dialTimeout: 2000 }));
    clients.push(made);
    return made;
  };

  before(async () => {
    etcd = await startTestEtcd(3, { auth: true });
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

  it('the survivor of three says it has no leader on /metrics while reads and new logins never complete', async () => {
    const survivor = etcd.members[0];
    const probe = new EtcdQuorumProbe(etcd3Options(etcd.access), 1000);
    const before = client(survivor.clientUrl);
    await before.put('/facts/q').value('1');
    expect(await hasLeaderLine(survivor.clientUrl)).to.equal('etcd_server_has_leader 1');
    expect(await probe.explain(), 'a member with a leader is no evidence of lost quorum').to.equal('unreachable');

    await etcd.members[1].process.stop();
    await etcd.members[2].process.stop();

    expect(await withTimeout(before.get('/facts/q').string().then(() => 'read', (error: Error) => `failed: ${error.message}`), 3000)).to.not.equal('read');
    // Its election timeout (1 s by default) passes, then it says it follows nobody.
    await eventually(async () => (await hasLeaderLine(survivor.clientUrl)) === 'etcd_server_has_leader 0', { within: 15_000, what: 'the survivor to report no leader' });
    const health = await fetch(`${survivor.clientUrl}/health`);
    expect(health.status).to.equal(503);
    // A client that logs in now gets no token: handing one out needs the quorum.
    expect(await withTimeout(client(survivor.clientUrl).maintenance.status().then(() => 'answered', () => 'failed'), 5000)).to.not.equal('answered');
    expect(await probe.explain()).to.equal('no-quorum');

    await survivor.process.stop();
    expect(await probe.explain(), 'nobody answers').to.equal('unreachable');
  });
});
