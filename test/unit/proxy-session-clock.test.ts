/**
 * The sessions' timeouts with an injected clock, as the write-hold tests do: the proxy server
 * takes its clock and no timer (`now`, `manualTicks`), the test moves time and calls `tick()`,
 * against a scripted backend (test/bed/fake-mysql-server.ts). query_timeout_ms stops a statement
 * on its backend (KILL QUERY over a side connection); idle_timeout_ms closes only the sessions
 * idle that long; handshake_timeout_ms closes a login that stalls. Nothing here waits for a
 * real timeout.
 */

import { expect } from 'chai';
import * as net from 'node:net';
import mysql, { type Connection } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { StaticTopologySource } from '../../proxy/cluster/topology-source';
import { ProxyMetrics } from '../../proxy/proxy-metrics';
import { ProxyServer } from '../../proxy/server/proxy-server';
import { eventually } from '../bed/eventually';
import { FakeMysqlServer } from '../bed/fake-mysql-server';

describe('proxy session timeouts on an injected clock', function () {
  this.timeout(20_000);
  let backend: FakeMysqlServer;
  let server: ProxyServer;
  let source: StaticTopologySource;
  let clock = 1_000_000;
  const clients: Connection[] = [];

  before(async () => {
    backend = await new FakeMysqlServer((sql) => (sql.startsWith('UPDATE t SET v = SLEEP') ? 'hang' : undefined)).start();
    const config = parseProxyConfig({
      listen: { host: '127.0.0.1', port: 0 },
      users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' }],
      static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: backend.port } } },
      query_timeout_ms: 5000,
      idle_timeout_ms: 60_000,
      handshake_timeout_ms: 2000,
    });
    source = new StaticTopologySource(config.staticTopology as NonNullable<typeof config.staticTopology>);
    await source.start();
    server = new ProxyServer({ config, topology: source, metrics: new ProxyMetrics({ cluster: config.cluster }), logger: silentLogger, now: () => clock, manualTicks: true });
    await server.start();
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await server?.stop();
    await source?.stop();
    await backend?.stop();
  });

  async function client(): Promise<Connection> {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: server.address.port, user: 'app', password: 'secret', database: 'app' });
    clients.push(c);
    return c;
  }

  it('a statement past query_timeout_ms is stopped on its backend with KILL QUERY; its client hears 3024 and the session goes on', async () => {
    const c = await client();
    const running = c.query('UPDATE t SET v = SLEEP(100)').then(
      () => null,
      (e: { errno: number; message: string }) => e,
    );
    await eventually(() => backend.log.some((e) => e.sql.startsWith('UPDATE t SET v = SLEEP')), { within: 5000, what: 'the statement to reach the backend' });
    clock += 4000;
    server.tick();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(backend.log.some((e) => e.sql.startsWith('KILL QUERY')), 'not stopped before its time').to.equal(false);
    clock += 1001;
    server.tick();
    const stopped = await running;
    expect(stopped?.errno).to.equal(3024);
    expect(stopped?.message).to.contain('was stopped there (KILL QUERY)');
    expect(backend.log.some((e) => /^KILL QUERY \d+$/.test(e.sql))).to.equal(true);
    await c.query('SELECT 1');
  });

  it('idle_timeout_ms closes the session idle that long with 4031, not one that was active within it', async () => {
    const idle = await client();
    const active = await client();
    let idleClosed = false;
    const idleBytes: Buffer[] = [];
    idle.on('error', () => undefined);
    const stream = (idle as unknown as { connection: { stream: net.Socket } }).connection.stream;
    stream.on('data', (chunk: Buffer) => idleBytes.push(chunk));
    stream.on('close', () => (idleClosed = true));
    clock += 30_000;
    await active.query('SELECT 2');
    clock += 30_001;
    server.tick();
    await eventually(() => idleClosed, { within: 5000, what: 'the idle session to be closed' });
    // ERR 4031 (ff bf 0f) says why, before the close.
    expect(Buffer.concat(idleBytes).includes(Buffer.from([0xff, 0xbf, 0x0f])), 'the ERR it was told why with').to.equal(true);
    const [rows] = await active.query('SELECT 3');
    expect((rows as Array<{ v: string }>)[0]?.v).to.equal('3');
  });

  it('handshake_timeout_ms closes a login that stalls after the greeting', async () => {
    const socket = net.connect(server.address.port, '127.0.0.1');
    const received: Buffer[] = [];
    let closed = false;
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await eventually(() => received.length > 0, { within: 5000, what: 'the greeting' });
    server.tick();
    expect(closed, 'not closed before its time').to.equal(false);
    clock += 2001;
    server.tick();
    await eventually(() => closed, { within: 5000, what: 'the stalled login to be closed' });
    const all = Buffer.concat(received);
    expect(all.includes(Buffer.from('handshake not completed within 2000 ms'))).to.equal(true);
    socket.destroy();
  });
});
