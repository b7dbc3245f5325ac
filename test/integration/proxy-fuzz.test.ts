/**
 * A short fixed-seed slice of `npm run bench:fuzz` (bench/fuzz/): mutated handshake responses and
 * mutated commands against a real proxy and a real Dolt. Any crash, hang, wrong answer or login
 * bypass fails the test with the input's hex; the long run is the benchmark.
 */

import { expect } from 'chai';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy } from '../../proxy/proxy-main';
import { runFuzz } from '../../bench/fuzz/fuzz-run';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';

describe('protocol fuzzing, a fixed-seed slice (real proxy, real Dolt)', function () {
  this.timeout(180_000);

  it('12,000 mutated packets before and after login: 0 crashes, hangs, wrong answers or bypasses', async () => {
    const cluster = await TestDoltCluster.start({ nodes: 1, databases: ['fuzzdb'] });
    registerCleanup(() => cluster.stop());
    await cluster.query(cluster.primary, 'CREATE TABLE fuzz (id INT PRIMARY KEY, v TEXT)');
    await cluster.query(cluster.primary, "INSERT INTO fuzz VALUES (1, 'one'), (2, 'two')");
    const proxy = await startProxy(
      parseProxyConfig({
        listen: { host: '127.0.0.1', port: 0 },
        handshake_timeout_ms: 2000,
        query_timeout_ms: 5000,
        users: [{ name: 'fuzz', ...hashProxyPassword('fuzz-password'), backend_user: 'root', backend_password: '' }],
        static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } },
        login: { failed_user_threshold: 1_000_000, failed_address_threshold: 1_000_000 },
      }),
      silentLogger,
    );
    registerCleanup(() => proxy.stop());
    const report = await runFuzz({
      host: '127.0.0.1',
      port: proxy.server.address.port,
      user: 'fuzz',
      password: 'fuzz-password',
      database: 'fuzzdb',
      seed: 7,
      inputs: 12_000,
      connections: 6,
      preLoginShare: 1 / 3,
      answerTimeoutMs: 10_000,
      deadline: performance.now() + 120_000,
      alive: () => true,
    });
    console.log(`      ${report.inputs} inputs in ${(report.elapsedMs / 1000).toFixed(1)} s: ${report.preLogin} before login, ${report.postLogin} after; ${report.ok} ok, ${report.errors} err, ${report.closedByProxy} closed, ${report.canaries} canaries`);
    expect(report.failures, report.failures.join('\n')).to.deep.equal([]);
    expect(report.inputs).to.equal(12_000);
    expect(report.preLogin).to.be.greaterThan(1000);
    expect(report.postLogin).to.be.greaterThan(1000);
    expect(report.canaries, 'the canaries ran').to.be.greaterThan(100);
    expect(report.errors, 'garbage was refused').to.be.greaterThan(1000);
    await proxy.stop();
  });
});
