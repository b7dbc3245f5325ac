/**
 * Learning tests for the protocol facts the proxy is built on: which commands Dolt answers, its
 * limits, why the proxy must never let a client's KILL reach Dolt, and what keeps one it cannot see
 * harmless (a backend user without SUPER). Raw commands go through
 * test/bed/raw-mysql-client.ts, since no driver sends them.
 */

import { expect } from 'chai';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { Command, parseErr } from '../../proxy/protocol';
import { connectionId, expectKillRefused } from '../bed/app-user-checks';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { RawClient } from '../bed/raw-mysql-client';
import { registerCleanup } from '../bed/cleanup';

type Row = RowDataPacket & Record<string, unknown>;

const ER_UNKNOWN_COM_ERROR = 1047;

describe('Dolt protocol facts (real dolt sql-server)', function () {
  this.timeout(60_000);
  let cluster: TestDoltCluster;
  let raw: RawClient;

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 1 });
  });
  after(async () => cluster?.stop());

  beforeEach(async () => {
    raw = await RawClient.connect(cluster.primary.port);
    await raw.login('root', '', cluster.databases[0]);
  });
  afterEach(() => raw.socket.destroy());

  it('COM_STATISTICS and COM_CHANGE_USER are not implemented (1047), and the connection stays usable', async () => {
    for (const command of [Command.COM_STATISTICS, Command.COM_CHANGE_USER]) {
      raw.command(command, command === Command.COM_CHANGE_USER ? Buffer.from('root\0\0db\0') : Buffer.alloc(0));
      const reply = (await raw.next()) as Buffer;
      expect(reply[0], `command 0x${command.toString(16)} gets ERR`).to.equal(0xff);
      expect(parseErr(reply).errno).to.equal(ER_UNKNOWN_COM_ERROR);
    }
    raw.command(Command.COM_PING);
    expect(((await raw.next()) as Buffer)[0], 'OK to COM_PING').to.equal(0x00);
  });

  it('COM_RESET_CONNECTION works: OK, and user variables are gone after it', async () => {
    raw.command(Command.COM_QUERY, 'SET @kept = 5');
    expect(((await raw.next()) as Buffer)[0]).to.equal(0x00);
    raw.command(Command.COM_RESET_CONNECTION);
    expect(((await raw.next()) as Buffer)[0], 'OK to COM_RESET_CONNECTION').to.equal(0x00);
    raw.command(Command.COM_QUERY, 'SELECT @kept');
    const [, , row] = await raw.response();
    expect(row[0], 'the row holds NULL (0xfb)').to.equal(0xfb);
  });

  it('COM_FIELD_LIST: a terminated name is answered (an empty one with no columns); a name without its NUL makes Dolt drop the connection', async () => {
    await cluster.query(cluster.primary, 'CREATE TABLE IF NOT EXISTS fl (a INT)');
    raw.command(Command.COM_FIELD_LIST, Buffer.from('fl\0'));
    const packets = await raw.response();
    expect(packets.length, 'one column definition and the terminator').to.equal(2);
    expect(packets[1][0]).to.equal(0xfe);
    raw.command(Command.COM_FIELD_LIST, Buffer.from('\0'));
    expect(((await raw.next()) as Buffer)[0], 'no columns: just the terminator').to.equal(0xfe);
    for (const body of [Buffer.alloc(0), Buffer.from('fl')]) {
      const victim = await RawClient.connect(cluster.primary.port);
      registerCleanup(() => void victim.socket.destroy());
      await victim.login('root', '', cluster.databases[0]);
      victim.command(Command.COM_FIELD_LIST, body);
      expect(await victim.next(), `after ${JSON.stringify(body.toString())}`).to.equal(null);
    }
  });

  it('max_allowed_packet is 1 GiB and local_infile is off', async () => {
    const [settings] = await cluster.query<Row>(cluster.primary, 'SELECT @@max_allowed_packet AS maxPacket, @@local_infile AS localInfile');
    expect(Number(settings.maxPacket)).to.equal(1 << 30);
    expect(Number(settings.localInfile)).to.equal(0);
  });

  it("Dolt carries out a KILL inside a multi-statement and a prepared KILL: another client's connection dies", async () => {
    const killer = await cluster.connect(cluster.primary);
    try {
      for (const how of ['multi-statement', 'prepared']) {
        const victim = await cluster.connect(cluster.primary);
        try {
          const id = await connectionId(victim);
          if (how === 'prepared') {
            await killer.query(`PREPARE k FROM 'KILL ${id}'`);
            await killer.query('EXECUTE k');
          } else {
            await killer.query(`SELECT 1; KILL ${id}`);
          }
          const outcome = await victim.query('SELECT 1').then(() => 'alive', () => 'killed');
          expect(outcome, `victim after a ${how} KILL`).to.equal('killed');
        } finally {
          victim.destroy();
        }
      }
    } finally {
      killer.destroy();
    }
  });

  it('a statement whose client hung up keeps running; KILL QUERY from another connection ends it with 1105 and the connection stays; KILL QUERY of an unknown id answers OK', async () => {
    const watcher = await cluster.connect(cluster.primary);
    const running = async (id: number): Promise<boolean> => {
      const [rows] = await watcher.query<RowDataPacket[]>(`SELECT COMMAND FROM information_schema.processlist WHERE ID = ${id}`);
      return rows.some((r) => r.COMMAND === 'Query');
    };
    try {
      const gone = await cluster.connect(cluster.primary);
      const goneId = await connectionId(gone);
      gone.query('SELECT SLEEP(4)').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      gone.destroy();
      await new Promise((r) => setTimeout(r, 1500));
      expect(await running(goneId), 'the statement of a closed connection, 1.5 s later').to.equal(true);
      await watcher.query(`KILL QUERY ${goneId}`);

      const victim = await cluster.connect(cluster.primary);
      try {
        const id = await connectionId(victim);
        const started = Date.now();
        const outcome = victim.query('SELECT SLEEP(8)').then(() => null, (e: { errno?: number; message?: string }) => e);
        await new Promise((r) => setTimeout(r, 300));
        await watcher.query(`KILL QUERY ${id}`);
        const error = await outcome;
        expect(error?.errno).to.equal(1105);
        expect(error?.message).to.match(/context canceled/);
        expect(Date.now() - started).to.be.below(4000);
        expect(await running(id)).to.equal(false);
        const [rows] = await victim.query<RowDataPacket[]>('SELECT 7 AS n');
        expect(rows[0].n).to.equal(7);
      } finally {
        victim.destroy();
      }
      // An OK proves nothing: the proxy must see the statement end to say it stopped.
      await watcher.query('KILL QUERY 987654');
    } finally {
      watcher.destroy();
    }
  });

  it('without SUPER a user may not KILL, not even another connection of its own user; it may do DDL and DML', async () => {
    await cluster.query(cluster.primary, "CREATE USER 'nosuper'@'%' IDENTIFIED BY 'pw'");
    await cluster.query(cluster.primary, "GRANT ALL ON *.* TO 'nosuper'@'%'");
    await cluster.query(cluster.primary, "REVOKE SUPER ON *.* FROM 'nosuper'@'%'");
    const connect = () => mysql.createConnection({ host: '127.0.0.1', port: cluster.primary.port, user: 'nosuper', password: 'pw', database: cluster.databases[0] });
    const killer = await connect();
    const victim = await connect();
    try {
      await killer.query('CREATE TABLE nosuper_check (id INT PRIMARY KEY)');
      await killer.query('INSERT INTO nosuper_check VALUES (1)');
      await expectKillRefused(killer, victim);
      const pushed = await killer.query("CALL dolt_push('origin', 'main')").then(() => 'pushed', (error: Error) => error.message);
      expect(pushed, 'dolt_push without SUPER').to.match(/command denied/);
    } finally {
      killer.destroy();
      victim.destroy();
    }
  });
});
