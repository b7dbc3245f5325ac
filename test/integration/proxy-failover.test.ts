/**
 * The proxy following the cluster through etcd (EtcdTopologySource on a real etcd, the topology
 * key written by the test as an agent would) in front of real Dolt nodes:
 * - a failover mid-session: an open transaction on the old primary is reported rolled back and the
 *   client connection stays usable; writes are held while there is no primary, reads keep flowing;
 *   held writes are released to the new primary (a node restarted writable) once it is published;
 * - a switchover lets an open transaction finish on the old primary while new writes are held;
 * - the hold timeout answers a clear error (1205) for writes and transaction starts;
 * - etcd going away leaves the last topology in force and /healthz says so;
 * - a backend killed while a write is in flight gives the "outcome unknown" error.
 */

import { expect } from 'chai';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { clusterKeys, decodeProxyPresence, encodeTopology, type ProxyPresence, type Topology } from '../../proto';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { vouchFor } from '../bed/topology-evidence';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { etcdClient, startTestEtcd } from '../bed/etcd';
import { eventually } from '../bed/eventually';
import type { Etcd3 } from 'etcd3';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';

type Row = RowDataPacket & Record<string, unknown>;
type SqlError = { errno?: number; sqlState?: string; message?: string };

const USER = { name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' };

function settle<T>(p: Promise<T>): { done: () => boolean; result: Promise<T | SqlError> } {
  let done = false;
  const result = p.then(
    (v) => {
      done = true;
      return v;
    },
    (e: SqlError) => {
      done = true;
      return e;
    },
  );
  return { done: () => done, result };
}

describe('proxy following the cluster (real etcd, real Dolt)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let etcd: EtcdCluster;
  let client: Etcd3;
  const proxies: RunningProxy[] = [];
  const connections: mysql.Connection[] = [];

  function topology(epoch: number, state: Topology['state'], primary: string | null, roles: Record<string, Topology['nodes'][string]['role']>): Topology {
    const nodes: Topology['nodes'] = {};
    for (const n of cluster.nodes) nodes[n.name] = { sql: { host: '127.0.0.1', port: n.port }, role: roles[n.name] ?? 'replica' };
    return { epoch, state, primary, nodes, reason: `test: ${state}`, at: new Date().toISOString() };
  }

  async function publish(name: string, t: Topology): Promise<void> {
    await vouchFor(client, name, t);
    await client.put(clusterKeys(name).topology).value(encodeTopology(t));
  }

  async function proxyFor(name: string, holdTimeoutMs: number): Promise<RunningProxy> {
    const p = await startProxy(
      parseProxyConfig({
        listen: { port: 0 },
        users: [USER],
        cluster: name,
        etcd: { endpoints: etcd.endpoints },
        hold: { timeout_ms: holdTimeoutMs, max_held: 100 },
        metrics: { port: 0 },
      }),
      silentLogger,
    );
    proxies.push(p);
    return p;
  }

  async function open(p: RunningProxy): Promise<mysql.Connection> {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: p.server.address.port, user: 'app', password: 'secret', database: 'db' });
    connections.push(c);
    return c;
  }

  /** The presence records (proto/proxy-presence.ts) the proxies of cluster `name` keep in etcd. */
  async function presences(name: string): Promise<ProxyPresence[]> {
    const values = await client.getAll().prefix(clusterKeys(name).proxiesPrefix).strings();
    return Object.values(values).map((raw) => decodeProxyPresence(raw));
  }

  async function presenceSays(name: string, expected: Pick<ProxyPresence, 'epoch' | 'state' | 'draining'>): Promise<void> {
    await eventually(async () => {
      const records = await presences(name);
      expect(records.map(({ epoch, state, draining }) => ({ epoch, state, draining }))).to.deep.equal([expected]);
      return true;
    }, { within: 5_000, what: `the proxy's presence record to say ${JSON.stringify(expected)}` });
  }

  async function portOf(c: mysql.Connection, sql = 'SELECT @@port AS p'): Promise<number> {
    const [rows] = await c.query<Row[]>(sql);
    return Number(rows[0].p);
  }

  async function waitEpoch(p: RunningProxy, epoch: number, state: Topology['state']): Promise<void> {
    await eventually(() => p.server.view.topology?.epoch === epoch && p.server.view.topology.state === state, { within: 10_000, what: `the proxy to apply epoch ${epoch} (${state})` });
  }

  before(async () => {
    [cluster, etcd] = await Promise.all([TestDoltCluster.start({ nodes: 3 }), startTestEtcd(1)]);
    client = etcdClient(etcd);
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))');
  });

  after(async () => {
    for (const c of connections) c.destroy();
    for (const p of proxies) await p.stop();
    await cluster?.stop();
  });

  it('switchover: an open transaction finishes on the old primary while new writes wait, then go on', async () => {
    await publish('sw', topology(1, 'stable', 'n1', { n1: 'primary' }));
    const proxy = await proxyFor('sw', 5000);
    await waitEpoch(proxy, 1, 'stable');
    // The record the outgoing primary's agent waits on before it stops its Dolt.
    await presenceSays('sw', { epoch: 1, state: 'stable', draining: 0 });
    const inTx = await open(proxy);
    const other = await open(proxy);
    await inTx.query('BEGIN');
    await inTx.query("INSERT INTO t VALUES (200, 'in transaction')");

    await publish('sw', topology(2, 'switchover', null, { n1: 'primary' }));
    await waitEpoch(proxy, 2, 'switchover');
    await presenceSays('sw', { epoch: 2, state: 'switchover', draining: 1 });
    const held = settle(other.query("INSERT INTO t VALUES (202, 'held')"));
    await eventually(() => proxy.server.hold.stats.waiting === 1, { within: 5000, what: 'the write to be held' });
    await inTx.query("INSERT INTO t VALUES (201, 'still in transaction')");
    await inTx.query('COMMIT');
    await presenceSays('sw', { epoch: 2, state: 'switchover', draining: 0 });
    expect(held.done()).to.equal(false);
    expect(await portOf(inTx)).to.be.oneOf([cluster.nodes[1].port, cluster.nodes[2].port]); // reads flow meanwhile

    await publish('sw', topology(2, 'stable', 'n1', { n1: 'primary' }));
    const outcome = await held.result;
    expect((outcome as SqlError).errno, (outcome as SqlError).message).to.equal(undefined);
    const rows = await cluster.query<Row>(cluster.primary, 'SELECT id FROM t WHERE id BETWEEN 200 AND 202 ORDER BY id');
    expect(rows.map((r) => r.id)).to.deep.equal([200, 201, 202]);
    // A proxy that stops revokes its lease: a later switchover does not wait out its TTL.
    await proxy.stop();
    expect(await presences('sw')).to.deep.equal([]);
  });

  it('hold timeout: writes and transaction starts get 1205 "no primary" after hold.timeout_ms; reads keep working', async () => {
    await publish('ht', topology(1, 'stable', 'n1', { n1: 'primary' }));
    const proxy = await proxyFor('ht', 400);
    await waitEpoch(proxy, 1, 'stable');
    const c = await open(proxy);
    await c.query("INSERT INTO t VALUES (300, 'before')");
    await publish('ht', topology(2, 'failover', null, { n1: 'down' }));
    await waitEpoch(proxy, 2, 'failover');

    const started = Date.now();
    const write = (await c.query("INSERT INTO t VALUES (301, 'never')").then(() => ({}), (e: SqlError) => e)) as SqlError;
    expect(write.errno).to.equal(1205);
    expect(write.message).to.match(/held this write for \d+ ms while the cluster had no usable primary \(failover at epoch 2\); it was not executed/);
    expect(Date.now() - started).to.be.at.least(350);
    const begin = (await c.query('BEGIN').then(() => ({}), (e: SqlError) => e)) as SqlError;
    expect(begin.errno).to.equal(1205);
    expect(await portOf(c)).to.be.oneOf([cluster.nodes[1].port, cluster.nodes[2].port]);
    const health = (await (await fetch(`http://127.0.0.1:${proxy.httpAddress?.port}/healthz`)).json()) as { detail: { warnings: string[]; hold: { state: string } } };
    expect(health.detail.hold.state).to.equal('holding');
    expect(health.detail.warnings.join(' ')).to.match(/failover in progress/);
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.httpAddress?.port}/metrics`)).text();
    expect(metrics).to.match(/doltgate_proxy_hold_timeouts_total\{[^}]*\} [1-9]/);
    expect(metrics).to.match(/doltgate_proxy_hold_writes_total\{outcome="timed_out"[^}]*\} [1-9]/);

    // Past hold.max_episode_ms (3 × 400 ms here) the proxy stops holding: refused at once.
    await eventually(() => (proxy.server.hold.describe().holdingForMs ?? 0) > 1200, { within: 5000, what: 'the episode to pass its bound' });
    const rejectedBefore = proxy.server.hold.stats.rejected;
    const late = (await c.query("INSERT INTO t VALUES (302, 'never')").then(() => ({}), (e: SqlError) => e)) as SqlError;
    expect(late.errno).to.equal(1205);
    expect(late.message).to.match(/stopped holding writes: the cluster has had no usable primary for \d+ ms \(failover at epoch 2\); this write was not executed/);
    expect(proxy.server.hold.stats.rejected, 'refused without being queued').to.equal(rejectedBefore + 1);
    const after = await (await fetch(`http://127.0.0.1:${proxy.httpAddress?.port}/metrics`)).text();
    expect(after).to.match(/doltgate_proxy_hold_cutoffs_total\{[^}]*\} [1-9]/);
    expect(await portOf(c), 'reads still flow').to.be.oneOf([cluster.nodes[1].port, cluster.nodes[2].port]);
    expect((await cluster.query<Row>(cluster.primary, 'SELECT id FROM t WHERE id BETWEEN 301 AND 302')).length, 'neither write ran').to.equal(0);
  });

  it('failover mid-session: the open transaction is rolled back with a clear error, held writes go to the new primary', async () => {
    await publish('fo', topology(1, 'stable', 'n1', { n1: 'primary' }));
    const proxy = await proxyFor('fo', 30_000);
    await waitEpoch(proxy, 1, 'stable');
    const inTx = await open(proxy);
    const writer = await open(proxy);
    const reader = await open(proxy);
    expect(await portOf(writer, '/* doltgate:primary */ SELECT @@port AS p')).to.equal(cluster.nodes[0].port);
    await inTx.query('BEGIN');
    await inTx.query("INSERT INTO t VALUES (400, 'lost')");

    await publish('fo', topology(2, 'failover', null, { n1: 'down' }));
    await waitEpoch(proxy, 2, 'failover');

    const lost = (await inTx.query("INSERT INTO t VALUES (401, 'lost too')").then(() => ({}), (e: SqlError) => e)) as SqlError;
    expect(lost.errno).to.equal(1213);
    expect(lost.sqlState).to.equal('40001');
    expect(lost.message).to.match(/transaction rolled back: primary changed by failover \(epoch 2\); retry the transaction/);
    expect(await portOf(inTx)).to.be.oneOf([cluster.nodes[1].port, cluster.nodes[2].port]); // still usable

    const held = settle(writer.query("INSERT INTO t VALUES (402, 'held then released')"));
    await eventually(() => proxy.server.hold.stats.waiting === 1, { within: 5000, what: 'the write to be held' });
    expect(await portOf(reader)).to.be.oneOf([cluster.nodes[1].port, cluster.nodes[2].port]);

    // The agent's part, done by hand: n2 restarts writable and is published as the primary.
    await cluster.nodes[1].server.restartAs('primary');
    expect(held.done()).to.equal(false);
    await publish('fo', topology(2, 'stable', 'n2', { n1: 'fenced', n2: 'primary' }));
    const outcome = await held.result;
    expect((outcome as SqlError).errno, (outcome as SqlError).message).to.equal(undefined);

    const onNew = await cluster.query<Row>(cluster.nodes[1], 'SELECT id FROM t WHERE id >= 400 ORDER BY id');
    expect(onNew.map((r) => r.id)).to.deep.equal([402]);
    const onOld = await cluster.query<Row>(cluster.nodes[0], 'SELECT id FROM t WHERE id >= 400 ORDER BY id');
    expect(onOld.map((r) => r.id)).to.deep.equal([]);
    await inTx.query('BEGIN');
    expect(await portOf(inTx)).to.equal(cluster.nodes[1].port);
    await inTx.query('COMMIT');
    const reads = new Set<number>();
    for (let i = 0; i < 4; i++) reads.add(await portOf(reader));
    expect([...reads]).to.deep.equal([cluster.nodes[2].port]);
  });

  it('etcd unreachable: the last topology stays in force and /healthz reports it', async () => {
    const proxy = proxies[proxies.length - 1];
    const c = await open(proxy);
    await etcd.stop();
    await eventually(
      async () => {
        const health = (await (await fetch(`http://127.0.0.1:${proxy.httpAddress?.port}/healthz`)).json()) as { ok: boolean; detail: { etcdReachable: boolean; warnings: string[] } };
        return health.detail.etcdReachable === false && health.ok && /etcd unreachable: routing by the last topology \(epoch 2\)/.test(health.detail.warnings.join(' '));
      },
      { within: 20_000, what: '/healthz to report etcd unreachable' },
    );
    await c.query("INSERT INTO t VALUES (500, 'etcd down')");
    expect((await cluster.query<Row>(cluster.nodes[1], 'SELECT COUNT(*) AS n FROM t WHERE id = 500'))[0].n).to.equal(1);
    // The gauge follows on the proxy's once-a-second metrics timer, /healthz at once.
    await eventually(async () => /doltgate_proxy_etcd_reachable\{[^}]*\} 0/.test(await (await fetch(`http://127.0.0.1:${proxy.httpAddress?.port}/metrics`)).text()), {
      within: 5000,
      what: 'the etcd_reachable gauge at 0',
    });
  });
});

describe('proxy when a backend dies mid-write', function () {
  this.timeout(60_000);

  it('answers "outcome unknown" (2013) and keeps the client connection usable', async () => {
    const cluster = await TestDoltCluster.start({ nodes: 1 });
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v INT)');
    const proxy = await startProxy(
      parseProxyConfig({ listen: { port: 0 }, users: [USER], hold: { timeout_ms: 500 }, static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } } }),
      silentLogger,
    );
    registerCleanup(() => proxy.stop());
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret', database: 'db' });
    registerCleanup(() => c.destroy());
    await c.query('INSERT INTO t VALUES (1, 1)');
    const write = settle(c.query('INSERT INTO t SELECT 2, SLEEP(3)'));
    await eventually(
      async () => (await cluster.query<Row>(cluster.primary, 'SHOW PROCESSLIST')).some((r) => /SLEEP\(3\)/.test(String(r.Info))),
      { within: 5000, what: 'the write to be running on Dolt' },
    );
    await cluster.primary.server.kill9();
    const outcome = (await write.result) as SqlError;
    expect(outcome.errno).to.equal(2013);
    expect(outcome.message).to.match(/after the statement was sent .* whether it committed is unknown — outcome token n1\/[0-9a-z]+: ask SELECT doltgate_outcome/);
    // With n1 gone the next command waits in the hold (the proxy saw the primary fail), and gives
    // up after hold.timeout_ms with an error that says why, never having been sent.
    const down = (await c.query('SELECT 1').then(() => ({}), (e: SqlError) => e)) as SqlError;
    expect(down.errno).to.equal(1205);
    expect(down.message).to.match(/primary n1 cannot be reached .*it was not executed/);
    await cluster.primary.server.start();
    const [rows] = await c.query<Row[]>('SELECT COUNT(*) AS n FROM t WHERE id = 1');
    expect(Number(rows[0].n)).to.equal(1);
    c.destroy();
    await proxy.stop();
    await cluster.stop();
  });
});

describe('proxy holds writes from the moment it sees the primary fail (topology unchanged)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let etcd: EtcdCluster;
  let client: Etcd3;
  let proxy: RunningProxy;
  let writer: mysql.Connection;
  const name = 'seen';

  async function heldCount(): Promise<number> {
    return proxy.server.hold.stats.waiting;
  }

  async function suspicions(kind: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${proxy.httpAddress?.port}/metrics`)).text();
    const match = new RegExp(`doltgate_proxy_primary_suspicions_total\\{[^}]*kind="${kind}"[^}]*\\} (\\d+)`).exec(text);
    return match ? Number(match[1]) : 0;
  }

  before(async () => {
    [cluster, etcd] = await Promise.all([TestDoltCluster.start({ nodes: 2 }), startTestEtcd(1)]);
    client = etcdClient(etcd);
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))');
    const nodes: Topology['nodes'] = {};
    for (const n of cluster.nodes) nodes[n.name] = { sql: { host: '127.0.0.1', port: n.port }, role: n.name === 'n1' ? 'primary' : 'replica' };
    const first: Topology = { epoch: 1, state: 'stable', primary: 'n1', nodes, reason: 'test', at: new Date().toISOString() };
    await vouchFor(client, name, first);
    await client.put(clusterKeys(name).topology).value(encodeTopology(first));
    await client.put(clusterKeys(name).leader).value('n1');
    proxy = await startProxy(
      parseProxyConfig({ listen: { port: 0 }, users: [USER], cluster: name, etcd: { endpoints: etcd.endpoints }, hold: { timeout_ms: 30_000, max_held: 100 }, metrics: { port: 0 } }),
      silentLogger,
    );
    registerCleanup(() => proxy.stop());
    await eventually(() => proxy.server.view.topology?.epoch === 1, { within: 10_000, what: 'the proxy to apply epoch 1' });
    writer = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret', database: 'db' });
    registerCleanup(() => writer.destroy());
    await writer.query("INSERT INTO t VALUES (1, 'before')");
  });

  after(async () => {
    writer?.destroy();
    await proxy?.stop();
    await cluster?.stop();
  });

  it('the primary unreachable (connection refused): the write waits instead of failing, and goes through once the primary is back', async () => {
    const before = await suspicions('unreachable');
    await cluster.primary.server.kill9();
    // Before, this write answered "cannot reach n1" at once; it was never sent.
    const held = settle(writer.query("INSERT INTO t VALUES (2, 'held while n1 was down')"));
    await eventually(async () => (await heldCount()) === 1, { within: 5_000, what: 'the write to be held' });
    expect(held.done()).to.equal(false);
    await cluster.primary.server.start();
    const outcome = await held.result;
    expect((outcome as SqlError).errno, (outcome as SqlError).message).to.equal(undefined);
    expect(await cluster.query<Row>(cluster.primary, 'SELECT v FROM t WHERE id = 2')).to.deep.equal([{ v: 'held while n1 was down' }]);
    expect(await suspicions('unreachable')).to.equal(before + 1);
  });

  it('the primary restarted read-only (fenced): the write waits, never reaches it, and goes through once it is writable again', async () => {
    const primary = cluster.primary;
    await primary.server.kill9();
    await primary.server.configure('fenced');
    await primary.server.start();
    const held = settle(writer.query("INSERT INTO t VALUES (3, 'held while n1 was read-only')"));
    await eventually(async () => (await heldCount()) === 1, { within: 5_000, what: 'the write to be held' });
    expect(await suspicions('read-only')).to.be.greaterThan(0);
    await primary.server.kill9();
    await primary.server.configure('primary');
    await primary.server.start();
    const outcome = await held.result;
    expect((outcome as SqlError).errno, (outcome as SqlError).message).to.equal(undefined);
    expect(await cluster.query<Row>(primary, 'SELECT v FROM t WHERE id = 3')).to.deep.equal([{ v: 'held while n1 was read-only' }]);
  });

  it("the primary's leader key gone: writes wait until it names the primary again (the prober cannot release them)", async () => {
    await client.delete().key(clusterKeys(name).leader).exec();
    await eventually(() => proxy.server.view.suspicion?.kind === 'lease-lost', { within: 5_000, what: 'the proxy to see the leader key gone' });
    const held = settle(writer.query("INSERT INTO t VALUES (4, 'held while the key was gone')"));
    await eventually(async () => (await heldCount()) === 1, { within: 5_000, what: 'the write to be held' });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(held.done(), 'the primary answers, but without its lease it must not get writes').to.equal(false);
    await client.put(clusterKeys(name).leader).value('n1');
    const outcome = await held.result;
    expect((outcome as SqlError).errno, (outcome as SqlError).message).to.equal(undefined);
    expect(await cluster.query<Row>(cluster.primary, 'SELECT COUNT(*) AS n FROM t WHERE id = 4')).to.deep.equal([{ n: 1 }]);
  });
});
