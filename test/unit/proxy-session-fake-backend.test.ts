/**
 * The proxy's request path — ClientSession, CommandDispatch, CommandForwarder, SessionBackends,
 * the command lifecycle — run for real against scripted backends (test/bed/fake-mysql-server.ts)
 * instead of Dolt, so each loss can be placed exactly: a write whose connection dies after it was
 * sent, a transaction whose connection dies while the client is idle, a replica lost mid-read, a
 * statement stopped by KILL QUERY. A real mysql2 client on the other side; everything on
 * 127.0.0.1, in this process. No command may leave a session in an impossible phase (the BUG
 * counter stays 0).
 */

import { expect } from 'chai';
import { Readable } from 'node:stream';
import mysql, { type Connection } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { FakeMysqlServer, type FakeScript } from '../bed/fake-mysql-server';

describe('proxy request path against scripted backends', function () {
  this.timeout(20_000);
  let primary: FakeMysqlServer;
  let replica: FakeMysqlServer;
  let proxy: RunningProxy;
  const clients: Connection[] = [];
  /** Per test: how the primary and the replica answer (undefined: their defaults). */
  let primaryScript: FakeScript = () => undefined;
  let replicaScript: FakeScript = () => undefined;

  before(async () => {
    primary = await new FakeMysqlServer((sql, c) => primaryScript(sql, c)).start();
    replica = await new FakeMysqlServer((sql, c) => replicaScript(sql, c)).start();
    proxy = await startProxy(
      parseProxyConfig({
        listen: { host: '127.0.0.1', port: 0 },
        users: [
          { name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' },
          { name: 'loader', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '', allow_local_infile: true },
        ],
        static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: primary.port }, n2: { host: '127.0.0.1', port: replica.port } } },
        routing: { read_your_writes_ms: 0 },
      }),
      silentLogger,
    );
  });

  beforeEach(() => {
    primaryScript = () => undefined;
    replicaScript = () => undefined;
    primary.log.length = 0;
    replica.log.length = 0;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.destroy();
    const bugs = await proxy.metrics.commandPhaseBugs.get();
    expect(bugs.values.reduce((sum, v) => sum + v.value, 0), 'impossible command phase moves').to.equal(0);
  });

  after(async () => {
    await proxy?.stop();
    await primary?.stop();
    await replica?.stop();
  });

  async function client(user = 'app', more: Record<string, unknown> = {}): Promise<Connection> {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.server.address.port, user, password: 'secret', database: 'app', ...more });
    clients.push(c);
    return c;
  }

  /** mysql2 only warns about a reply with the wrong sequence id: collect those, to fail on them. */
  function sequenceWarnings(c: Connection): string[] {
    const warnings: string[] = [];
    (c as unknown as { connection: { on(event: 'warn', f: (e: Error) => void): void } }).connection.on('warn', (e) => warnings.push(e.message));
    return warnings;
  }

  /** A client whose local files are `content`, recording which files it was asked for. */
  async function loader(content: Buffer, user = 'loader', flags: string[] = []): Promise<{ c: Connection; asked: string[] }> {
    const asked: string[] = [];
    const c = await client(user, {
      flags,
      infileStreamFactory: (path: string) => {
        asked.push(path);
        return Readable.from([content]);
      },
    });
    return { c, asked };
  }

  async function failure(p: Promise<unknown>): Promise<{ errno: number; message: string }> {
    try {
      await p;
    } catch (error) {
      const e = error as { errno: number; message: string };
      return { errno: e.errno, message: e.message };
    }
    throw new Error('expected the statement to fail');
  }

  it('a read goes to the replica, a write to the primary, and a transaction stays on the primary', async () => {
    const c = await client();
    await c.query('SELECT 7');
    await c.query('INSERT INTO t VALUES (1)');
    await c.query('BEGIN');
    await c.query('SELECT 8');
    await c.query('COMMIT');
    expect(replica.statements()).to.deep.equal(['SELECT 7']);
    expect(primary.statements()).to.deep.equal(['INSERT INTO t VALUES (1)', 'BEGIN', 'SELECT 8', 'COMMIT']);
  });

  it('the primary dies after an autocommit write was sent: the client hears 2013 with an outcome token, and its next statement runs', async () => {
    primaryScript = (sql) => (sql.startsWith('INSERT INTO t VALUES (2)') ? 'close' : undefined);
    const c = await client();
    const lost = await failure(c.query('INSERT INTO t VALUES (2)'));
    expect(lost.errno).to.equal(2013);
    expect(lost.message).to.match(/whether it committed is unknown — outcome token \S+/);
    await c.query('INSERT INTO t VALUES (3)');
    expect(primary.statements()).to.deep.equal(['INSERT INTO t VALUES (2)', 'INSERT INTO t VALUES (3)']);
  });

  it('the primary connection is lost while the client is idle in a transaction: its next statement hears "rolled back" (40001) and does not run; the session goes on', async () => {
    const c = await client();
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (4)');
    primary.dropAll();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lost = await failure(c.query('INSERT INTO t VALUES (5)'));
    expect(lost.errno).to.equal(1213);
    expect(lost.message).to.contain('transaction rolled back');
    await c.query('INSERT INTO t VALUES (6)');
    expect(primary.statements()).to.deep.equal(['BEGIN', 'INSERT INTO t VALUES (4)', 'INSERT INTO t VALUES (6)']);
  });

  it('a ROLLBACK as the first statement after such a loss is answered OK by the proxy: the transaction is already gone', async () => {
    const c = await client();
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (4)');
    primary.dropAll();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await c.query('ROLLBACK');
    await c.query('INSERT INTO t VALUES (6)');
    expect(primary.statements()).to.deep.equal(['BEGIN', 'INSERT INTO t VALUES (4)', 'INSERT INTO t VALUES (6)']);
  });

  it('the COMMIT whose connection dies before its answer: outcome unknown, with a token (not "rolled back")', async () => {
    primaryScript = (sql) => (sql === 'COMMIT' ? 'close' : undefined);
    const c = await client();
    await c.query('BEGIN');
    await c.query('INSERT INTO t VALUES (7)');
    const lost = await failure(c.query('COMMIT'));
    expect(lost.errno).to.equal(2013);
    expect(lost.message).to.match(/outcome token/);
  });

  it('a replica lost mid-read, before any answer: the read is sent again and the client sees only its answer', async () => {
    let seen = 0;
    replicaScript = (sql) => (sql === 'SELECT 9' && seen++ === 0 ? 'close' : undefined);
    const c = await client();
    const [rows] = await c.query('SELECT 9');
    expect((rows as Array<{ v: string }>)[0]?.v).to.equal('9');
    expect(seen, 'the first attempt reached the replica').to.be.at.least(1);
  });

  it('a read lost twice: the second loss fails it as retryable (it is sent again once), nothing changed, and the next read works', async () => {
    replicaScript = (sql) => (sql === 'SELECT 9' ? 'close' : undefined);
    primaryScript = (sql) => (sql === 'SELECT 9' ? 'close' : undefined);
    const c = await client();
    const lost = await failure(c.query('SELECT 9'));
    expect(lost.errno).to.equal(2013);
    expect(lost.message).to.contain('during a read');
    expect(lost.message).to.contain('retry the query');
    const [rows] = await c.query('SELECT 10');
    expect((rows as Array<{ v: string }>)[0]?.v).to.equal('10');
  });

  it('a read inside a transaction is never sent again: its loss is the transaction\'s', async () => {
    primaryScript = (sql) => (sql === 'SELECT 11' ? 'close' : undefined);
    const c = await client();
    await c.query('BEGIN');
    const lost = await failure(c.query('SELECT 11'));
    expect(lost.errno).to.not.equal(0);
    expect(lost.message).to.not.contain('during a read');
  });

  it('KILL QUERY from another session stops a statement that hangs on its backend: 1317 to its client, whose session goes on', async () => {
    primaryScript = (sql) => (sql.startsWith('UPDATE t SET v = SLEEP') ? 'hang' : undefined);
    const victim = await client();
    const killer = await client();
    const proxyId = victim.threadId;
    const running = failure(victim.query('UPDATE t SET v = SLEEP(100)'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await killer.query(`KILL QUERY ${proxyId}`);
    const stopped = await running;
    expect(stopped.errno).to.equal(1317);
    expect(primary.log.some((e) => /^KILL QUERY \d+$/.test(e.sql)), 'the proxy sent KILL QUERY to the backend').to.equal(true);
    await victim.query('INSERT INTO t VALUES (8)');
  });

  it('a backend connection that fails even the proxy\'s own SET (a wedged Dolt session) is closed, and the write runs on a fresh one', async () => {
    let wedged: number | null = null;
    primaryScript = (sql, conn) => {
      if (conn.id === wedged) return { err: { errno: 1105, sqlState: 'HY000', message: 'merge aborted: schema conflict found for table x' } };
      return undefined;
    };
    const c = await client();
    await c.query('INSERT INTO t VALUES (20)');
    const first = primary.log.filter((e) => e.sql === 'INSERT INTO t VALUES (20)').map((e) => e.conn)[0] as number;
    wedged = first;
    await c.query('INSERT INTO t VALUES (21)');
    const second = primary.log.filter((e) => e.sql === 'INSERT INTO t VALUES (21)').map((e) => e.conn);
    expect(second, 'ran once, on another connection').to.have.length(1);
    expect(second[0]).to.not.equal(first);
  });

  it('the proxy answers PING, COM_RESET_CONNECTION and KILL of an unknown id itself, without a backend', async () => {
    const c = await client();
    await c.ping();
    await c.reset();
    const refused = await failure(c.query('KILL 999999'));
    expect(refused.errno).to.equal(1094);
    expect(primary.statements()).to.deep.equal([]);
    expect(replica.statements()).to.deep.equal([]);
  });

  describe('LOAD DATA LOCAL INFILE', () => {
    const rows = Buffer.from('1,a\n2,b\n3,c\n');
    const load = "LOAD DATA LOCAL INFILE 'rows.csv' INTO TABLE t FIELDS TERMINATED BY ','";

    it('from a user without allow_local_infile: refused (3948), the client is never asked for a file, nothing reaches a backend', async () => {
      const { c, asked } = await loader(rows, 'app');
      const refused = await failure(c.query(load));
      expect(refused.errno).to.equal(3948);
      expect(refused.message).to.contain('allow_local_infile');
      expect(asked).to.deep.equal([]);
      expect(primary.statements()).to.deep.equal([]);
      await c.query('SELECT 1');
    });

    it('from an allowed user whose client did not enable local files: refused the same way', async () => {
      const { c, asked } = await loader(rows, 'loader', ['-LOCAL_FILES']);
      expect((await failure(c.query(load))).errno).to.equal(3948);
      expect(asked).to.deep.equal([]);
    });

    it('from an allowed user: the request for the named file is relayed, the file arrives whole, and the session goes on', async () => {
      primaryScript = (sql) => (sql.startsWith('LOAD DATA LOCAL') ? { askFile: 'rows.csv' } : undefined);
      const { c, asked } = await loader(rows);
      const [result] = await c.query(load);
      expect(result).to.deep.include({ affectedRows: 3 });
      expect(asked).to.deep.equal(['rows.csv']);
      expect(primary.files.at(-1)?.equals(rows)).to.equal(true);
      await c.query('INSERT INTO t VALUES (9)');
    });

    it('a server asking for another file than the statement named: the connection is closed, the client never asked, 3948', async () => {
      primaryScript = (sql) => (sql.startsWith('LOAD DATA LOCAL') ? { askFile: '/home/app/.ssh/id_rsa' } : undefined);
      const { c, asked } = await loader(rows);
      const refused = await failure(c.query(load));
      expect(refused.errno).to.equal(3948);
      expect(refused.message).to.contain('did not name');
      expect(asked).to.deep.equal([]);
      await c.query('INSERT INTO t VALUES (10)');
    });

    it('a file of many packets; the primary lost mid-file: the rest is skipped, the client hears 2013 with a token, and the session goes on', async () => {
      const big = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `${i},row ${i}\n`).join(''));
      primaryScript = (sql) => (sql.startsWith('LOAD DATA LOCAL') ? { askFile: 'rows.csv', closeAfter: 100_000 } : undefined);
      const { c, asked } = await loader(big);
      const warnings = sequenceWarnings(c);
      const lost = await failure(c.query(load));
      expect(warnings, 'replies in sequence').to.deep.equal([]);
      expect(asked).to.deep.equal(['rows.csv']);
      expect(lost.errno).to.equal(2013);
      expect(lost.message).to.match(/outcome token/);
      await c.query('INSERT INTO t VALUES (11)');
      primaryScript = (sql) => (sql.startsWith('LOAD DATA LOCAL') ? { askFile: 'rows.csv' } : undefined);
      const [whole] = await c.query(load);
      expect(whole).to.deep.include({ affectedRows: 40_000 });
      expect(primary.files.at(-1)?.equals(big)).to.equal(true);
    });

    it('the primary lost after the whole file went out, before its answer: 2013 with a token, in sequence after the file', async () => {
      primaryScript = (sql) => (sql.startsWith('LOAD DATA LOCAL') ? { askFile: 'rows.csv', closeAtEnd: true } : undefined);
      const { c } = await loader(rows);
      const warnings = sequenceWarnings(c);
      const lost = await failure(c.query(load));
      expect(lost.errno).to.equal(2013);
      expect(warnings, 'replies in sequence').to.deep.equal([]);
      await c.query('INSERT INTO t VALUES (12)');
    });
  });
});
