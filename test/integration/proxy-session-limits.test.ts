/**
 * A client cannot make the proxy hold unbounded memory (finding 1 of the hostile-input issue:
 * two sessions sending 15 MiB SETs ran the proxy out of heap and dropped every session). Real
 * Dolt, static topology, small session_limits: past each bound the statement is refused with a
 * clear error, nothing reaches Dolt, and the session — and every other — goes on.
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { Command } from '../../proxy/protocol';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { registerCleanup } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { RawClient } from '../bed/raw-mysql-client';

type Row = RowDataPacket & Record<string, unknown>;
const KiB = 1024;

/** A SET Dolt accepts whose text is about `bytes` long (the proxy keeps it for replay). */
const bigSet = (bytes: number, value = 2048) => `SET SESSION group_concat_max_len = ${value} + 0 * LENGTH('${'x'.repeat(bytes)}')`;

describe('proxy session limits (real Dolt)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let proxy: RunningProxy;

  const open = async (): Promise<mysql.Connection> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user: 'app', password: 'secret', database: 'db' });
    registerCleanup(() => c.destroy());
    return c;
  };
  const errorOf = (p: Promise<unknown>) => p.then(() => null, (e: { errno?: number; message?: string }) => e);
  const scalar = async (c: mysql.Connection, sql: string): Promise<unknown> => Object.values((await c.query<Row[]>(sql))[0][0])[0];

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1 });
    await cluster.query(cluster.primary, 'CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB)');
    const config = parseProxyConfig(
      {
        listen: { host: '127.0.0.1', port: 0 },
        max_allowed_packet: 256 * KiB,
        users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' }],
        static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: cluster.primary.port } } },
        session_limits: { max_replay_bytes: 64 * KiB, max_prepared_statements: 3, max_prepared_bytes: 64 * KiB, total_bytes: 1024 * KiB },
      },
      { baseDir: process.cwd() },
    );
    proxy = await startProxy(config, silentLogger);
  });
  after(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  it('a SET past max_replay_bytes is refused with 1041 and never runs; the session goes on', async () => {
    const c = await open();
    const error = await errorOf(c.query(bigSet(100 * KiB, 4096)));
    expect(error?.errno).to.equal(1041);
    expect(error?.message).to.match(/^doltgate: .*max_replay_bytes/);
    expect(Number(await scalar(c, 'SELECT @@session.group_concat_max_len')), 'the SET did not run').to.not.equal(4096);
    await c.query(bigSet(10 * KiB, 3000));
    expect(Number(await scalar(c, 'SELECT @@session.group_concat_max_len'))).to.equal(3000);
  });

  it('sessions each within their limit cannot add up past total_bytes; a closed session gives its share back', async () => {
    const sessions: mysql.Connection[] = [];
    let refused: { errno?: number; message?: string } | null = null;
    // 1 MiB in 60 KiB SETs: the 18th session at the latest finds the proxy full.
    for (let i = 0; i < 20 && refused === null; i++) {
      const c = await open();
      sessions.push(c);
      refused = await errorOf(c.query(bigSet(60 * KiB)));
    }
    expect(refused?.errno).to.equal(1041);
    expect(refused?.message).to.match(/total_bytes/);
    expect(sessions.length).to.be.within(15, 18);
    const last = sessions[sessions.length - 1];
    expect(Number(await scalar(last, 'SELECT 7')), 'the refused session still works').to.equal(7);
    sessions[0].destroy();
    // The proxy notices the close asynchronously.
    for (let attempt = 0; ; attempt++) {
      const again = await errorOf(last.query(bigSet(60 * KiB)));
      if (again === null) break;
      if (attempt > 50) throw new Error(`still refused after the close: ${again.message}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    sessions.forEach((s) => s.destroy());
  });

  it('the prepared statement past max_prepared_statements gets 1461; closing one makes room', async () => {
    const c = await open();
    const statements = [];
    for (let i = 0; i < 3; i++) statements.push(await c.prepare(`SELECT ? + ${i} AS v`));
    const error = await errorOf(c.prepare('SELECT ? + 99 AS v'));
    expect(error?.errno).to.equal(1461);
    const [rows] = (await statements[2].execute([1])) as unknown as [Row[]];
    expect(Number(rows[0].v), 'the prepared ones still run').to.equal(3);
    statements[0].close();
    const next = await c.prepare('SELECT ? + 99 AS v');
    const [after] = (await next.execute([1])) as unknown as [Row[]];
    expect(Number(after[0].v)).to.equal(100);
  });

  it('long data past max_allowed_packet is dropped and its execute refused (1041); Dolt keeps none of it, the statement lives on', async () => {
    const raw = await RawClient.connect(proxy.server.address.port);
    registerCleanup(() => void raw.socket.destroy());
    await raw.login('app', 'secret');
    raw.command(Command.COM_STMT_PREPARE, 'INSERT INTO blobs VALUES (?, ?)');
    const prepareOk = (await raw.next()) as Buffer;
    expect(prepareOk[0]).to.equal(0x00);
    const id = prepareOk.readUInt32LE(1);
    // The two parameter definitions (CLIENT_DEPRECATE_EOF: no EOF after them).
    for (let i = 0; i < 2; i++) await raw.next();
    const chunk = (param: number, bytes: number) => {
      const body = Buffer.alloc(6 + bytes, 0x62);
      body.writeUInt32LE(id, 0);
      body.writeUInt16LE(param, 4);
      raw.command(Command.COM_STMT_SEND_LONG_DATA, body);
    };
    const execute = (rowId: number) => {
      // flags 0, iteration 1, null bitmap (1 byte), new-params-bound 1, types INT + BLOB, the int.
      const body = Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 0x00, 1, 0x03, 0x00, 0xfc, 0x00, 0, 0, 0, 0]);
      body.writeUInt32LE(id, 0);
      body.writeInt32LE(rowId, 15);
      raw.command(Command.COM_STMT_EXECUTE, body);
    };
    for (let i = 0; i < 3; i++) chunk(1, 100 * KiB); // 300 KiB > 256 KiB
    execute(1);
    const refused = (await raw.next()) as Buffer;
    expect(refused[0], 'ERR').to.equal(0xff);
    expect(refused.readUInt16LE(1)).to.equal(1041);
    expect(refused.subarray(9).toString()).to.match(/max_allowed_packet/);
    chunk(1, 10 * KiB);
    execute(2);
    expect(((await raw.next()) as Buffer)[0], 'OK for an execute within the bound').to.equal(0x00);
    const rows = await cluster.query<Row>(cluster.primary, 'SELECT id, LENGTH(b) AS n FROM blobs ORDER BY id');
    expect(rows.map((r) => [Number(r.id), Number(r.n)])).to.deep.equal([[2, 10 * KiB]]);
  });
});
