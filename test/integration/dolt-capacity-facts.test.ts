/**
 * What Dolt does at its connection limit (listener.max_connections), and the agent's health check
 * that rests on it (agent/health/sql-check.ts), against a real `dolt sql-server`.
 */

import { expect } from 'chai';
import mysql from 'mysql2/promise';
import { SqlHealthCheck } from '../../agent/health/sql-check';
import { listDatabases } from '../../agent/dolt/sql-session';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';

describe('Dolt at its connection limit (real dolt sql-server)', function () {
  this.timeout(60_000);
  let cluster: TestDoltCluster;
  let port: number;
  const held: mysql.Connection[] = [];
  const open = (connectTimeout = 2_000): Promise<mysql.Connection> => mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', connectTimeout });

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1, databases: ['app'], maxConnections: 3 });
    port = cluster.primary.port;
    registerCleanup(() => held.forEach((connection) => connection.destroy()));
  });
  after(async () => cluster?.stop());

  it('a new client is not refused when Dolt is full: its handshake waits for a free slot (so a fresh-connection check times out like a hung server); an open connection keeps answering', async () => {
    const check = new SqlHealthCheck();
    registerCleanup(() => check.close());
    const endpoint = { host: '127.0.0.1', port, user: 'root', password: '' };
    expect((await check.check(endpoint, 1_000)).ok, 'the kept connection, opened while there is room').to.equal(true);
    held.push(await open(), await open());
    const started = Date.now();
    const fourth = await open(1_500).then((connection) => {
      connection.destroy();
      return 'connected';
    }, (error: Error & { code?: string }) => error.code ?? error.message);
    expect(fourth, 'a fourth client while three are open').to.equal('ETIMEDOUT');
    expect(Date.now() - started).to.be.at.least(1_400);
    const fresh = new SqlHealthCheck();
    const freshResult = await fresh.check(endpoint, 1_000);
    fresh.close();
    expect(freshResult.ok, 'a check on a fresh connection fails while Dolt is full').to.equal(false);
    const kept = await check.check(endpoint, 1_000);
    expect(kept.ok, `the kept connection answers while Dolt is full (${kept.error})`).to.equal(true);
    expect(await listDatabases(check.session(endpoint, 1_000)), 'the per-cycle SHOW DATABASES rides on it too').to.deep.equal(['app']);
    held.pop()?.destroy();
    const fifth = await open(2_000);
    fifth.destroy();
  });

  it('the kept check connection fails when Dolt dies and comes back by itself when Dolt does', async () => {
    held.splice(0).forEach((connection) => connection.destroy());
    const check = new SqlHealthCheck();
    registerCleanup(() => check.close());
    const endpoint = { host: '127.0.0.1', port, user: 'root', password: '' };
    expect((await check.check(endpoint, 1_000)).ok).to.equal(true);
    await cluster.primary.server.kill9();
    const down = await check.check(endpoint, 1_000);
    expect(down.ok, 'Dolt killed').to.equal(false);
    await cluster.primary.server.start();
    const back = await check.check(endpoint, 1_000);
    expect(back.ok, `Dolt back (${back.error})`).to.equal(true);
  });
});
