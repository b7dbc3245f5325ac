/**
 * The proxy end to end against a real three-node Dolt cluster (n1 primary, n2 and n3 read-only
 * replicas) with a static topology: logins with both auth plugins, TLS, the mysql CLI, routing
 * proved by `SELECT @@port`, transactions, session state replay, prepared statements across
 * replicas, multi-result sets, a row over 16 MiB, COM_RESET_CONNECTION / COM_CHANGE_USER, and
 * bad input sent as raw bytes. Each malformed connection must close alone: the proxy keeps
 * serving the others.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { constants as cryptoConstants, publicEncrypt } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { RowDataPacket } from 'mysql2/promise';
import { silentLogger } from '../../common/logger';
import { hashProxyPassword, parseProxyConfig } from '../../proxy/config';
import { startProxy, type RunningProxy } from '../../proxy/proxy-main';
import { AuthPlugin, buildHandshakeResponse41, Capability, parseErr, parseHandshakeV10 } from '../../proxy/protocol';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { eventually } from '../bed/eventually';
import { frame, RawClient } from '../bed/raw-mysql-client';

const run = promisify(execFile);
type Row = RowDataPacket & Record<string, unknown>;

function errnoOf(payload: Buffer | null): number {
  expect(payload, 'an ERR packet').to.not.equal(null);
  expect((payload as Buffer)[0]).to.equal(0xff, `expected ERR, got ${(payload as Buffer).toString('hex').slice(0, 40)}`);
  return parseErr(payload as Buffer).errno;
}

describe('proxy server (real Dolt, static topology)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;
  let proxy: RunningProxy;
  let port: number;
  let ports: Record<string, number>;
  let certDir: string;
  const connections: mysql.Connection[] = [];

  async function open(options: Partial<mysql.ConnectionOptions> = {}): Promise<mysql.Connection> {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'app', password: 'secret', database: 'db', ...options });
    connections.push(c);
    return c;
  }

  async function portOf(c: mysql.Connection, sql = 'SELECT @@port AS p'): Promise<number> {
    const [rows] = await c.query<Row[]>(sql);
    return Number(rows[0].p);
  }

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 3 });
    ports = Object.fromEntries(cluster.nodes.map((n) => [n.name, n.port]));
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v LONGTEXT)');
    certDir = await tempDir('proxy-tls');
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1']);
    const config = parseProxyConfig(
      {
        listen: { host: '127.0.0.1', port: 0 },
        // Short for the stalled-handshake test, long enough for a TLS login on a loaded machine.
        handshake_timeout_ms: 2000,
        users: [
          { name: 'app', ...hashProxyPassword('secret'), backend_user: 'root', backend_password: '' },
          { name: 'native', native_password_hash: hashProxyPassword('n-pass').native_password_hash, backend_user: 'root' },
          { name: 'sha', caching_sha2_hash: hashProxyPassword('s-pass').caching_sha2_hash, backend_user: 'root' },
          { name: 'other', ...hashProxyPassword('other-pass'), backend_user: 'root' },
        ],
        tls: { cert: 'cert.pem', key: 'key.pem' },
        static_topology: { primary: 'n1', nodes: Object.fromEntries(cluster.nodes.map((n) => [n.name, { host: '127.0.0.1', port: n.port }])) },
        metrics: { host: '127.0.0.1', port: 0 },
      },
      { baseDir: certDir },
    );
    proxy = await startProxy(config, silentLogger);
    port = proxy.server.address.port;
  });

  after(async () => {
    for (const c of connections) c.destroy();
    await proxy?.stop();
    await cluster?.stop();
  });

  describe('login', () => {
    it('caching_sha2_password: fast path with the stored SHA256(SHA256(pw))', async () => {
      const c = await open({ user: 'sha', password: 's-pass' });
      expect(await portOf(c, 'SELECT 1 AS p')).to.equal(1);
    });

    it('mysql_native_password: a client answering caching_sha2 is switched to native for a native-only user', async () => {
      const c = await open({ user: 'native', password: 'n-pass' });
      expect(await portOf(c, 'SELECT 2 AS p')).to.equal(2);
    });

    it('a wrong password or unknown user gets ER_ACCESS_DENIED_ERROR 1045', async () => {
      for (const [user, password] of [['app', 'wrong'], ['nobody', 'secret'], ['native', 'wrong'], ['sha', 'wrong']]) {
        const error = await open({ user, password }).then(() => null, (e: { errno?: number }) => e);
        expect(error?.errno, `${user}/${password}`).to.equal(1045);
      }
    });

    it('caching_sha2_password full authentication without TLS uses the RSA key exchange', async () => {
      let scramble = Buffer.alloc(0);
      let step = 0;
      // A client whose fast-path proof fails (as after a cache miss) and then does full auth.
      const plugin = () => (data: Buffer): Buffer | null => {
        step++;
        if (step === 1) {
          scramble = Buffer.from(data.subarray(0, 20));
          return Buffer.alloc(32, 7);
        }
        if (step === 2) {
          expect(data[0]).to.equal(4); // PERFORM_FULL_AUTHENTICATION
          return Buffer.from([2]); // request the public key
        }
        const plain = Buffer.from('s-pass\0');
        for (let i = 0; i < plain.length; i++) plain[i] ^= scramble[i % scramble.length];
        return publicEncrypt({ key: data.toString('ascii'), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plain);
      };
      const c = await open({ user: 'sha', password: 's-pass', authPlugins: { caching_sha2_password: plugin } });
      expect(step).to.equal(3);
      expect(await portOf(c, 'SELECT 3 AS p')).to.equal(3);
    });

    it('TLS: the session is encrypted and caching_sha2 full authentication sends the password in clear over it', async () => {
      let step = 0;
      const plugin = () => (data: Buffer): Buffer | null => {
        step++;
        if (step === 1) return Buffer.alloc(32, 9);
        expect(data[0]).to.equal(4);
        return Buffer.from('s-pass\0');
      };
      const c = await open({ user: 'sha', password: 's-pass', ssl: { rejectUnauthorized: false }, authPlugins: { caching_sha2_password: plugin } });
      expect(step).to.equal(2);
      const stream = (c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream;
      expect(stream.encrypted).to.equal(true);
      expect(await portOf(c)).to.be.oneOf(Object.values(ports));
      const plainTls = await open({ ssl: { rejectUnauthorized: false } });
      expect(await portOf(plainTls, 'SELECT 4 AS p')).to.equal(4);
    });

    it('plain TCP sessions read through the shared buffer; TLS sessions read through TLS', async () => {
      const plain = await open({ user: 'sha', password: 's-pass' });
      expect(await portOf(plain, 'SELECT 5 AS p')).to.equal(5);
      const secure = await open({ ssl: { rejectUnauthorized: false } });
      expect(await portOf(secure, 'SELECT 6 AS p')).to.equal(6);
      const sessions = proxy.server.describeSessions();
      const ids = [plain.threadId, secure.threadId];
      const [p, t] = ids.map((id) => sessions.find((s) => s.connection === id));
      expect(p, 'the plain session').to.include({ tls: false, sharedReads: true });
      expect(t, 'the TLS session').to.include({ tls: true, sharedReads: false });
    });

    it('the mysql command-line client logs in and reads through the proxy', async () => {
      const { stdout } = await run('mysql', ['-h', '127.0.0.1', '-P', String(port), '-u', 'app', '-psecret', '-N', '-B', 'db', '-e', 'SELECT @@port; SELECT COUNT(*) FROM t']);
      const [first, second] = stdout.trim().split('\n');
      expect(Number(first)).to.be.oneOf([ports.n2, ports.n3]);
      expect(Number(second)).to.be.at.least(0);
    });

    it('a stalled handshake is closed after handshake_timeout_ms with ER_HANDSHAKE_ERROR', async () => {
      const raw = await RawClient.connect(port);
      const greeting = await raw.next();
      expect(greeting?.[0]).to.equal(10);
      expect(errnoOf(await raw.next(5000))).to.equal(1043);
      await raw.waitClosed();
    });

    it('a client asking for the compressed protocol is refused at login with a clear error and closed, never left hanging', async () => {
      for (const compress of [Capability.CLIENT_COMPRESS, Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM]) {
        const raw = await RawClient.connect(port);
        parseHandshakeV10((await raw.next()) as Buffer);
        const caps = (Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH | compress) >>> 0;
        raw.send(frame(1, buildHandshakeResponse41({ capabilities: caps, charset: 45, username: 'app', authResponse: Buffer.alloc(32, 1), authPluginName: AuthPlugin.CACHING_SHA2_PASSWORD, maxPacketSize: 1 << 24 })));
        const answer = (await raw.next(2000)) as Buffer;
        expect(answer[0], 'an ERR, uncompressed').to.equal(0xff);
        const err = parseErr(answer);
        expect(err.errno).to.equal(1235);
        expect(err.message).to.match(/compressed protocol is not supported/);
        await raw.waitClosed();
      }
    });
  });

  describe('routing', () => {
    it('autocommit reads land on replicas, writes on the primary', async () => {
      const c = await open();
      const seen = new Set<number>();
      for (let i = 0; i < 6; i++) seen.add(await portOf(c));
      expect([...seen].sort()).to.deep.equal([ports.n2, ports.n3].sort());
      await c.query("INSERT INTO t VALUES (1, 'one')");
      expect((await cluster.query<Row>(cluster.primary, 'SELECT v FROM t WHERE id = 1'))[0].v).to.equal('one');
      expect(await portOf(c, '/* doltgate:primary */ SELECT @@port AS p')).to.equal(ports.n1);
      expect(await portOf(c, 'SELECT @@port AS p FOR UPDATE')).to.equal(ports.n1);
    });

    it('a transaction sticks to the primary from BEGIN to COMMIT, including its reads', async () => {
      const c = await open();
      await c.query('BEGIN');
      expect(await portOf(c)).to.equal(ports.n1);
      await c.query("INSERT INTO t VALUES (2, 'two')");
      expect(await portOf(c)).to.equal(ports.n1);
      await c.query('COMMIT');
      expect(await portOf(c)).to.be.oneOf([ports.n2, ports.n3]);
      await c.query('SET autocommit = 0');
      expect(await portOf(c)).to.equal(ports.n1);
      await c.query('COMMIT');
      await c.query('SET autocommit = 1');
      expect(await portOf(c)).to.be.oneOf([ports.n2, ports.n3]);
    });

    it('user variables and temporary tables pin the session to the primary until COM_RESET_CONNECTION', async () => {
      const c = await open();
      await c.query('SET @x = 42');
      const [rows] = await c.query<Row[]>('SELECT @x AS x, @@port AS p');
      expect(rows[0]).to.deep.include({ x: 42, p: ports.n1 });
      await c.query('CREATE TEMPORARY TABLE tmp (a INT)');
      expect(await portOf(c)).to.equal(ports.n1);
      await (c as unknown as { reset(): Promise<void> }).reset();
      const [after] = await c.query<Row[]>('SELECT @x AS x, @@port AS p');
      expect(after[0].x).to.equal(null);
      expect(Number(after[0].p)).to.be.oneOf([ports.n2, ports.n3]);
    });

    it('session settings are replayed on every backend connection the session opens', async () => {
      const c = await open();
      await c.query("SET SESSION time_zone = '+03:00'");
      await c.query("SET NAMES utf8mb4");
      const seen = new Map<number, string>();
      for (let i = 0; i < 6; i++) {
        const [rows] = await c.query<Row[]>('SELECT @@time_zone AS tz, @@port AS p');
        seen.set(Number(rows[0].p), String(rows[0].tz));
      }
      expect([...seen.keys()].sort()).to.deep.equal([ports.n2, ports.n3].sort());
      expect([...seen.values()]).to.deep.equal(['+03:00', '+03:00']);
      await c.query('BEGIN');
      const [p] = await c.query<Row[]>('SELECT @@time_zone AS tz, @@port AS p');
      expect(p[0]).to.deep.include({ tz: '+03:00', p: ports.n1 });
      await c.query('ROLLBACK');
    });

    it('COM_INIT_DB and USE follow the session to every backend; an unknown database is ER_BAD_DB_ERROR', async () => {
      const c = await open({ database: undefined });
      const [none] = await c.query<Row[]>('SELECT DATABASE() AS d');
      expect(none[0].d).to.equal(null);
      await c.query('USE db');
      const seen = new Set<number>();
      for (let i = 0; i < 4; i++) {
        const [r] = await c.query<Row[]>('SELECT DATABASE() AS d, @@port AS p');
        expect(r[0].d).to.equal('db');
        seen.add(Number(r[0].p));
      }
      expect(seen.size).to.equal(2);

      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret', '');
      raw.send(frame(0, Buffer.concat([Buffer.from([0x02]), Buffer.from('db')]))); // COM_INIT_DB
      expect((await raw.next())?.[0]).to.equal(0);
      raw.send(frame(0, Buffer.concat([Buffer.from([0x02]), Buffer.from('missing_db')])));
      expect(errnoOf(await raw.next())).to.equal(1049);
      raw.send(frame(0, Buffer.concat([Buffer.from([0x03]), Buffer.from('SELECT DATABASE()')])));
      expect(await raw.next()).to.not.equal(null);

      const error = await open({ database: 'missing_db' }).then(
        (m) => m.query('SELECT 1').then(() => null, (e: { errno?: number }) => e),
        (e: { errno?: number }) => e,
      );
      expect(error?.errno).to.equal(1049);
    });
  });

  describe('commands', () => {
    it('a read statement executes on the replica it is prepared on, and is re-prepared transparently on another when that one leaves the read set', async () => {
      const c = await open();
      const seen = new Set<number>();
      for (let i = 0; i < 4; i++) {
        const [rows] = await c.execute<Row[]>('SELECT ? + 1 AS x, @@port AS p', [i]);
        expect(rows[0].x).to.equal(i + 1);
        seen.add(Number(rows[0].p));
      }
      expect(seen.size, 'every execute where it was prepared').to.equal(1);
      const [placed] = [...seen];
      expect(placed).to.be.oneOf([ports.n2, ports.n3]);
      const name = placed === ports.n2 ? 'n2' : 'n3';
      const selector = proxy.server.view.selector;
      selector.markDown(name, performance.now() + 60_000);
      try {
        const [moved] = await c.execute<Row[]>('SELECT ? + 1 AS x, @@port AS p', [9]);
        expect(moved[0].x).to.equal(10);
        expect(Number(moved[0].p), 're-prepared on the other replica').to.equal(name === 'n2' ? ports.n3 : ports.n2);
      } finally {
        selector.markUp(name);
      }
      await c.execute('INSERT INTO t VALUES (?, ?)', [10, 'ten']);
      const [rows] = await c.execute<Row[]>('SELECT v FROM t WHERE id = ?', [10]);
      expect(rows[0]?.v).to.equal('ten');
      await c.unprepare('SELECT ? + 1 AS x, @@port AS p');
      const [again] = await c.execute<Row[]>('SELECT ? + 1 AS x, @@port AS p', [5]);
      expect(again[0].x).to.equal(6);
    });

    it('a session reads its own writes after prepared reads across replicas, and sees a table it just created (issue 16: go-sql-driver prepares every query with arguments)', async () => {
      const c = await open();
      await c.query('CREATE TABLE IF NOT EXISTS ryw (id INT PRIMARY KEY)');
      const replicaPorts = new Set<number>();
      for (let i = 1; i <= 8; i++) {
        await c.query('INSERT INTO ryw VALUES (?)', [i]);
        // Prepared and executed (mysql2 keeps the statement): round robin puts it on each replica.
        const [prepared] = await c.execute<Row[]>('SELECT COUNT(*) AS n, MAX(@@port) AS p FROM ryw WHERE id >= ?', [0]);
        replicaPorts.add(Number(prepared[0].p));
        expect(Number(prepared[0].n), `prepared read ${i}`).to.equal(i);
        // The next plain read, wherever it lands, must not run in an old snapshot.
        const [plain] = await c.query<Row[]>('SELECT COUNT(*) AS n, MAX(@@port) AS p FROM ryw');
        replicaPorts.add(Number(plain[0].p));
        expect(Number(plain[0].n), `plain read after prepared read ${i}`).to.equal(i);
      }
      expect(replicaPorts.size, 'the reads went to more than one replica').to.be.greaterThan(1);
      await c.execute('SELECT COUNT(*) AS n FROM ryw WHERE id >= ?', [0]);
      await c.query('CREATE TABLE ryw_new (id INT PRIMARY KEY)');
      const [fresh] = await c.query<Row[]>('SELECT COUNT(*) AS n FROM ryw_new');
      expect(Number(fresh[0].n), 'a table created right after a prepared read is there').to.equal(0);
    });

    it('multi-statement queries return every result set', async () => {
      const c = await open({ multipleStatements: true });
      const [results] = await c.query<Row[][]>("SELECT 1 AS a; SELECT 2 AS b, 'x' AS c; SELECT @@port AS p");
      expect(results.length).to.equal(3);
      expect(results[0][0].a).to.equal(1);
      expect(results[1][0]).to.deep.include({ b: 2, c: 'x' });
      const [mixed] = await c.query<Row[][]>("INSERT INTO t VALUES (20, 'x'); SELECT @@port AS p");
      expect(Number((mixed as unknown as Row[][])[1][0].p)).to.equal(ports.n1);
    });

    it('a row over 16 MiB passes both ways (multi-frame packets)', async () => {
      const c = await open();
      const big = 'abcdefghij'.repeat(1_700_000); // 17 MB, so both the INSERT and the row span frames
      await c.query('INSERT INTO t VALUES (100, ?)', [big]);
      const [rows] = await c.query<Row[]>('/* doltgate:primary */ SELECT v FROM t WHERE id = 100');
      expect(String(rows[0].v).length).to.equal(big.length);
      expect(rows[0].v === big).to.equal(true);
      const [replica] = await c.query<Row[]>('SELECT LENGTH(v) AS n, @@port AS p FROM t WHERE id = 100');
      expect(Number(replica[0].n)).to.equal(big.length);
    });

    it('LOAD DATA LOCAL INFILE is refused with a clear error and the connection stays usable', async () => {
      const c = await open();
      const error = await c.query("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE t").then(() => null, (e: { errno?: number; message?: string }) => e);
      expect(error?.errno).to.equal(3948);
      expect(error?.message).to.match(/LOAD DATA LOCAL INFILE is not allowed through the proxy for this user/);
      expect(await portOf(c, 'SELECT 5 AS p')).to.equal(5);
    });

    it('COM_PING is answered by the proxy; COM_CHANGE_USER re-authenticates and resets the session', async () => {
      const c = await open();
      await c.ping();
      await c.query('SET @who = 1');
      await c.changeUser({ user: 'other', password: 'other-pass', database: 'db' });
      const [rows] = await c.query<Row[]>('SELECT @who AS w');
      expect(rows[0].w).to.equal(null);
      const error = await c.changeUser({ user: 'other', password: 'nope' }).then(() => null, (e: { errno?: number }) => e);
      expect(error?.errno).to.equal(1045);
    });
    it('KILL takes the proxy\'s connection ids: QUERY interrupts, CONNECTION closes, others are refused', async () => {
      const victim = await open();
      const killer = await open();
      const stranger = await open({ user: 'other', password: 'other-pass' });
      const victimId = victim.threadId as number;
      const sleeping = victim.query('SELECT SLEEP(10) AS s').then(() => ({}), (e: { errno?: number }) => e);
      await eventually(
        async () => (await cluster.query<Row>(cluster.nodes[1], 'SHOW PROCESSLIST')).concat(await cluster.query<Row>(cluster.nodes[2], 'SHOW PROCESSLIST')).some((r) => /SLEEP\(10\)/.test(String(r.Info))),
        { within: 5000, what: 'the query to run on a replica' },
      );
      const denied = await stranger.query(`KILL QUERY ${victimId}`).then(() => null, (e: { errno?: number }) => e);
      expect(denied?.errno).to.equal(1095);
      await killer.query(`KILL QUERY ${victimId}`);
      const interrupted = (await sleeping) as { errno?: number; message?: string };
      expect(interrupted.errno).to.equal(1317);
      expect(interrupted.message).to.match(/doltgate stopped it on n[23] \(127\.0\.0\.1:\d+\) with KILL QUERY/);
      // Stopped on Dolt too, not only answered: the SLEEP is gone from both replicas at once.
      const sleepsLeft = async () => (await cluster.query<Row>(cluster.nodes[1], 'SHOW PROCESSLIST')).concat(await cluster.query<Row>(cluster.nodes[2], 'SHOW PROCESSLIST')).filter((r) => /SLEEP\(10\)/.test(String(r.Info))).length;
      expect(await sleepsLeft()).to.equal(0);
      expect(await portOf(victim, 'SELECT 9 AS p')).to.equal(9);
      const unknown = await killer.query('KILL 999999').then(() => null, (e: { errno?: number }) => e);
      expect(unknown?.errno).to.equal(1094);
      const invalid = await killer.query('KILL @x').then(() => null, (e: { errno?: number }) => e);
      expect(invalid?.errno).to.equal(1064);
      // Inside a multi-statement the KILL would reach Dolt, where the id is one of Dolt's own.
      const batch = await open({ multipleStatements: true });
      const bundled = await batch.query(`SELECT 1; KILL CONNECTION ${victimId}`).then(() => null, (e: { errno?: number; message?: string }) => e);
      expect(bundled?.errno).to.equal(1064);
      expect(bundled?.message).to.match(/statement of its own/);
      const prepared = await batch.query(`PREPARE k FROM 'KILL CONNECTION ${victimId}'`).then(() => null, (e: { errno?: number; message?: string }) => e);
      expect(prepared?.message).to.match(/KILL cannot be prepared/);
      expect(await portOf(victim, 'SELECT 10 AS p')).to.equal(10);
      await killer.query(`KILL CONNECTION ${victimId}`);
      const gone = await victim.query('SELECT 1').then(() => null, (e: { code?: string; fatal?: boolean }) => e);
      expect(gone).to.not.equal(null);
      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret');
      raw.command(0x09); // COM_STATISTICS, answered by the proxy
      expect((await raw.next())?.toString('utf8')).to.match(/^Uptime: \d+  Threads: \d+  Questions: [1-9]\d*/);
    });
    it('a KILL or LOAD DATA LOCAL behind a # or -- comment, or past 256 bytes, is still caught: Dolt never runs it', async () => {
      const bystander = await mysql.createConnection({ host: '127.0.0.1', port: ports.n1, user: 'root', password: '' });
      connections.push(bystander);
      const [idRow] = await bystander.query<Row[]>('SELECT CONNECTION_ID() AS id');
      const doltId = Number(idRow[0].id);
      const c = await open();
      for (const sql of [`# tidy up\nKILL ${doltId}`, `-- tidy up\nKILL CONNECTION ${doltId}`, `/* ${'x'.repeat(300)} */ KILL ${doltId}`]) {
        // The proxy reads the id as one of its own sessions' (none has Dolt's number here, it is this user's own, or another user's: 1095).
        const answer = await c.query(sql).then(() => 0, (e: { errno?: number }) => e.errno);
        expect([0, 1094, 1095], sql).to.include(answer);
        const [alive] = await bystander.query<Row[]>('SELECT 1 AS one');
        expect(Number(alive[0].one), `Dolt's connection ${doltId} after ${JSON.stringify(sql.slice(0, 20))}`).to.equal(1);
      }
      for (const sql of ["# load\nLOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE t", `/* ${'x'.repeat(600)} */ LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE t`]) {
        const error = await c.query(sql).then(() => null, (e: { errno?: number }) => e);
        expect(error?.errno, sql.slice(0, 20)).to.equal(3948);
      }
    });
  });

  describe('bad input (raw bytes)', () => {
    it('an unknown command byte gets ER_UNKNOWN_COM_ERROR and the connection stays usable', async () => {
      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret');
      raw.send(frame(0, [0x42]));
      expect(errnoOf(await raw.next())).to.equal(1047);
      raw.send(frame(0, [0x0e])); // COM_PING
      expect((await raw.next())?.[0]).to.equal(0);
      raw.send(frame(0, Buffer.concat([Buffer.from([0x03]), Buffer.from('SELECT 1')])));
      const result = await raw.response();
      expect(result[0][0], 'a result set, not ERR').to.not.equal(0xff);
    });

    it('COM_FIELD_LIST without a NUL-terminated name is refused (Dolt would drop the backend connection); with one it is answered', async () => {
      const raw = await RawClient.connect(port);
      registerCleanup(() => void raw.socket.destroy());
      await raw.login('app', 'secret');
      for (const body of [Buffer.alloc(0), Buffer.from('t')]) {
        raw.send(frame(0, Buffer.concat([Buffer.from([0x04]), body])));
        expect(errnoOf(await raw.next()), JSON.stringify(body.toString())).to.equal(1835);
      }
      raw.send(frame(0, Buffer.from([0x04, 0x74, 0x00]))); // "t\0"
      const columns = await raw.response();
      expect(columns.length, "t's two columns and the terminator").to.equal(3);
    });

    it('a wrong sequence id gets ER_NET_PACKETS_OUT_OF_ORDER and only that connection closes', async () => {
      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret');
      raw.send(frame(5, Buffer.concat([Buffer.from([0x03]), Buffer.from('SELECT 1')])));
      expect(errnoOf(await raw.next())).to.equal(1156);
      await raw.waitClosed();
      const c = await open();
      expect(await portOf(c, 'SELECT 6 AS p')).to.equal(6);
    });

    it('a declared length over max_allowed_packet gets ER_NET_PACKET_TOO_LARGE and a close', async () => {
      const tiny = await startProxy(
        parseProxyConfig({
          listen: { port: 0 },
          max_allowed_packet: 1024,
          users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root' }],
          static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: ports.n1 } } },
        }),
        silentLogger,
      );
      registerCleanup(() => tiny.stop());
      const raw = await RawClient.connect(tiny.server.address.port);
      await raw.login('app', 'secret');
      raw.send([0xd0, 0x07, 0x00, 0x00, 0x03]); // declares 2000 bytes; refused at the header
      expect(errnoOf(await raw.next())).to.equal(1153);
      await raw.waitClosed();
      await tiny.stop();
      // In the connection phase the limit is 64 KiB.
      const early = await RawClient.connect(port);
      await early.next();
      early.send([0x00, 0x00, 0x10, 1]); // a 1 MiB HandshakeResponse
      expect(errnoOf(await early.next())).to.equal(1153);
      await early.waitClosed();
    });

    it('a truncated packet followed by a close leaves the proxy serving others', async () => {
      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret');
      raw.send([100, 0, 0, 0, 0x03, 0x53, 0x45]); // claims 100 bytes, sends 3
      raw.socket.end();
      await raw.waitClosed();
      const c = await open();
      expect(await portOf(c, 'SELECT 7 AS p')).to.equal(7);
    });

    it('a truncated handshake response gets ER_HANDSHAKE_ERROR', async () => {
      const raw = await RawClient.connect(port);
      await raw.next();
      raw.send(frame(1, [0x00, 0x02, 0x00, 0x00, 0x01])); // 5 bytes of a 32+ byte response
      expect(errnoOf(await raw.next())).to.equal(1043);
      await raw.waitClosed();
    });
    it('random garbage before and after login closes only those connections', async () => {
      let seed = 12345;
      const random = (n: number): Buffer => {
        const b = Buffer.alloc(n);
        for (let i = 0; i < n; i++) {
          seed = (seed * 1103515245 + 12345) & 0x7fffffff;
          b[i] = seed & 0xff;
        }
        return b;
      };
      const raws: RawClient[] = [];
      for (let i = 0; i < 10; i++) {
        const raw = await RawClient.connect(port);
        if (i % 2 === 0) await raw.login('app', 'secret');
        else await raw.next();
        raw.send(random(20 + i * 37));
        raws.push(raw);
      }
      // Every one either got an answer or a close; none may take the proxy down.
      for (const raw of raws) {
        raw.socket.end();
        await raw.waitClosed();
      }
      const c = await open();
      expect(await portOf(c, 'SELECT 8 AS p')).to.equal(8);
    });
  });

  describe('statement plumbing and large responses (raw bytes)', () => {
    it('long data, reset, close and executes without types work across backends with remapped ids', async () => {
      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret');
      raw.command(0x16, 'SELECT CONCAT(?, @@port) AS v'); // COM_STMT_PREPARE
      const prepared = await raw.next();
      expect(prepared?.[0]).to.equal(0);
      const id = (prepared as Buffer).readUInt32LE(1);
      expect(id).to.equal(1); // the proxy's own numbering, whatever Dolt said
      await raw.next(); // parameter definition
      await raw.next(); // column definition (DEPRECATE_EOF: no EOF packets)
      const idBytes = Buffer.alloc(4);
      idBytes.writeUInt32LE(id);
      // COM_STMT_SEND_LONG_DATA for parameter 0: no response.
      raw.send(frame(0, Buffer.concat([Buffer.from([0x18]), idBytes, Buffer.from([0, 0]), Buffer.from('long-')])));
      // COM_STMT_EXECUTE with types bound (VAR_STRING); the long-data parameter carries no value.
      raw.send(frame(0, Buffer.concat([Buffer.from([0x17]), idBytes, Buffer.from([0, 1, 0, 0, 0, 0x00, 1, 0xfd, 0x00])])));
      const first = await raw.response();
      const row1 = first[2].toString('latin1');
      expect(row1).to.match(/long-\d+$/);
      // Again with new_params_bound_flag 0 and an inline value, its replica now out of the read
      // set: the other replica gets it, where the proxy re-prepares and splices the saved types back in.
      const firstPort = Number(/(\d+)$/.exec(row1)?.[1]);
      const away = firstPort === ports.n2 ? 'n2' : 'n3';
      proxy.server.view.selector.markDown(away, performance.now() + 60_000);
      raw.send(frame(0, Buffer.concat([Buffer.from([0x17]), idBytes, Buffer.from([0, 1, 0, 0, 0, 0x00, 0, 3]), Buffer.from('ab-')])));
      const second = await raw.response();
      proxy.server.view.selector.markUp(away);
      const row2 = second[2].toString('latin1');
      expect(row2).to.match(/ab-\d+$/);
      const portsSeen = [row1, row2].map((r) => Number(/(\d+)$/.exec(r)?.[1]));
      expect(portsSeen.sort()).to.deep.equal([ports.n2, ports.n3].sort());
      raw.send(frame(0, Buffer.concat([Buffer.from([0x1a]), idBytes]))); // COM_STMT_RESET
      expect((await raw.next())?.[0]).to.equal(0);
      raw.send(frame(0, Buffer.concat([Buffer.from([0x19]), idBytes]))); // COM_STMT_CLOSE: no response
      raw.send(frame(0, Buffer.concat([Buffer.from([0x17]), idBytes, Buffer.from([0, 1, 0, 0, 0, 0x00, 0, 1, 0x61])])));
      expect(errnoOf(await raw.next())).to.equal(1243);
      raw.command(0x04, 't\0'); // COM_FIELD_LIST
      const fields = await raw.response();
      expect(fields.length).to.be.greaterThan(1);
      raw.command(0x0e);
      expect((await raw.next())?.[0]).to.equal(0);
    });

    it('an error owed for a lost transaction answers the next command that has an answer, never COM_STMT_SEND_LONG_DATA (found by bench:fuzz)', async () => {
      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret');
      raw.command(0x16, 'SELECT ?');
      const prepareOk = (await raw.next()) as Buffer;
      expect(prepareOk[0]).to.equal(0x00);
      const statementId = prepareOk.readUInt32LE(1);
      await raw.next(); // the parameter's definition
      await raw.next(); // the column's definition
      raw.command(0x03, 'BEGIN');
      expect((await raw.next())?.[0]).to.equal(0x00);
      raw.command(0x03, "INSERT INTO t VALUES (7001, 'lost')");
      expect((await raw.next())?.[0]).to.equal(0x00);
      raw.command(0x03, 'SELECT CONNECTION_ID()');
      const idRows = await raw.response();
      const doltId = Number(idRows[2].subarray(1, 1 + idRows[2][0]).toString('latin1'));
      const bystander = await mysql.createConnection({ host: '127.0.0.1', port: ports.n1, user: 'root', password: '' });
      connections.push(bystander);
      await bystander.query(`KILL ${doltId}`);
      await new Promise((r) => setTimeout(r, 500));
      // Long data is never answered, owed error or not.
      const longData = Buffer.alloc(7 + 3);
      longData[0] = 0x18;
      longData.writeUInt32LE(statementId, 1);
      longData.write('abc', 7);
      raw.send(frame(0, longData));
      const early = await raw.next(700).then((p) => p, () => null);
      expect(early, 'an answer to COM_STMT_SEND_LONG_DATA').to.equal(null);
      raw.command(0x03, 'SELECT 1');
      const owed = (await raw.next()) as Buffer;
      expect(owed[0]).to.equal(0xff);
      expect(owed.readUInt16LE(1)).to.equal(1213);
      raw.command(0x03, 'SELECT 5');
      const rows = await raw.response();
      expect(rows[2].subarray(1).toString('latin1')).to.equal('5');
    });

    it('a slow client gets every byte of large results (backpressure; frames copied out of reused buffers)', async () => {
      const big = 'abcdefghij'.repeat(1_700_000);
      await cluster.query(cluster.primary, 'REPLACE INTO t VALUES (101, ?)', [big]);
      await cluster.query(cluster.primary, 'CREATE TABLE wide (id INT PRIMARY KEY, v LONGTEXT)');
      const rowText = (i: number): string => `${String(i).padStart(4, '0')}:` + 'xyz0123456789'.repeat(11_000);
      for (let i = 0; i < 60; i += 10) {
        const values = Array.from({ length: 10 }, (_, k) => `(${i + k}, '${rowText(i + k)}')`).join(',');
        await cluster.query(cluster.primary, `INSERT INTO wide VALUES ${values}`);
      }
      const raw = await RawClient.connect(port);
      await raw.login('app', 'secret');
      raw.slowChunks = 200;
      raw.command(0x03, '/* doltgate:primary */ SELECT v FROM t WHERE id = 101');
      const packets = await raw.response();
      const row = packets[2];
      expect(row[0]).to.equal(0xfe); // lenenc length in 8 bytes
      expect(Number(row.readBigUInt64LE(1))).to.equal(big.length);
      expect(row.subarray(9).equals(Buffer.from(big))).to.equal(true);

      raw.slowChunks = 100;
      raw.command(0x03, '/* doltgate:primary */ SELECT v FROM wide ORDER BY id');
      const rows = (await raw.response()).slice(2, -1);
      expect(rows.length).to.equal(60);
      rows.forEach((r, i) => {
        const text = r.subarray(4).toString('latin1'); // 0xfd + 3-byte length
        expect(text === rowText(i), `row ${i}`).to.equal(true);
      });
    });
  });

  describe('responses past max_allowed_packet (64 MiB)', () => {
    it('a 70 MiB row and a 66 MiB column definition reach the client whole, and the session goes on', async () => {
      const c = await open();
      const size = 70 * 1024 * 1024;
      const [rows] = await c.query<Row[]>(`/* doltgate:primary */ SELECT REPEAT('x', ${size}) AS r`);
      expect(String(rows[0].r).length).to.equal(size);
      // Without an alias the column is named by its SQL text: a 33 MiB literal, twice over.
      const literal = 'y'.repeat(33 * 1024 * 1024);
      const [literalRows, fields] = await c.query<Row[]>(`SELECT '${literal}'`);
      expect(Object.values(literalRows[0])[0] === literal).to.equal(true);
      expect(fields[0].name.length).to.be.at.least(literal.length);
      expect(await portOf(c, 'SELECT 12 AS p')).to.equal(12);
    });
  });

  describe('limits and observability', () => {
    it('query_timeout_ms stops the statement on Dolt (KILL QUERY): 3024 at once, nothing left running, a timed-out write never lands', async () => {
      const timed = await startProxy(
        parseProxyConfig({
          listen: { port: 0 },
          query_timeout_ms: 600,
          users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root' }],
          static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: ports.n1 } } },
        }),
        silentLogger,
      );
      registerCleanup(() => timed.stop());
      const c = await mysql.createConnection({ host: '127.0.0.1', port: timed.server.address.port, user: 'app', password: 'secret', database: 'db' });
      connections.push(c);
      const started = Date.now();
      const slow = await c.query('SELECT SLEEP(6)').then(() => null, (e: { errno?: number; message?: string }) => e);
      expect(slow?.errno).to.equal(3024);
      expect(slow?.message).to.match(/ran past query_timeout_ms \(600 ms\) on n1 \(127\.0\.0\.1:\d+\) and was stopped there \(KILL QUERY\)/);
      expect(Date.now() - started).to.be.below(4000);
      const running = async (pattern: RegExp) => (await cluster.query<Row>(cluster.primary, 'SHOW PROCESSLIST')).filter((r) => pattern.test(String(r.Info))).length;
      expect(await running(/SLEEP\(6\)/)).to.equal(0);
      const write = await c.query("INSERT INTO t VALUES (4242, IF(SLEEP(3) = 0, 'late', 'late'))").then(() => null, (e: { errno?: number }) => e);
      expect(write?.errno).to.equal(3024);
      // Had Dolt been left running it, the row would land 3 s after the statement began.
      await new Promise((r) => setTimeout(r, 3500));
      expect(await cluster.query<Row>(cluster.primary, 'SELECT id FROM t WHERE id = 4242')).to.deep.equal([]);
      expect(await portOf(c, 'SELECT 11 AS p'), 'the session goes on').to.equal(11);
      await timed.stop();
    });

    it('max_client_connections: the next client gets ER_CON_COUNT_ERROR 1040', async () => {
      const small = await startProxy(
        parseProxyConfig({
          listen: { port: 0 },
          max_client_connections: 2,
          users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root' }],
          static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: ports.n1 } } },
        }),
        silentLogger,
      );
      registerCleanup(() => small.stop());
      const smallPort = small.server.address.port;
      const a = await mysql.createConnection({ host: '127.0.0.1', port: smallPort, user: 'app', password: 'secret' });
      const b = await mysql.createConnection({ host: '127.0.0.1', port: smallPort, user: 'app', password: 'secret' });
      const error = await mysql.createConnection({ host: '127.0.0.1', port: smallPort, user: 'app', password: 'secret' }).then(
        (c) => {
          c.destroy();
          return null;
        },
        (e: { errno?: number }) => e,
      );
      expect(error?.errno).to.equal(1040);
      a.destroy();
      b.destroy();
      await eventually(() => small.server.clientCount === 0, { within: 5000, what: 'sessions to close' });
      const c = await mysql.createConnection({ host: '127.0.0.1', port: smallPort, user: 'app', password: 'secret' });
      c.destroy();
      await small.stop();
    });

    it('tls.required refuses a client that did not upgrade, with ER_SECURE_TRANSPORT_REQUIRED', async () => {
      const strict = await startProxy(
        parseProxyConfig(
          {
            listen: { port: 0 },
            users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root' }],
            tls: { cert: 'cert.pem', key: 'key.pem', required: true },
            static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: ports.n1 } } },
          },
          { baseDir: certDir },
        ),
        silentLogger,
      );
      registerCleanup(() => strict.stop());
      const p = strict.server.address.port;
      const error = await mysql.createConnection({ host: '127.0.0.1', port: p, user: 'app', password: 'secret' }).then(
        (c) => {
          c.destroy();
          return null;
        },
        (e: { errno?: number }) => e,
      );
      expect(error?.errno).to.equal(3159);
      const ok = await mysql.createConnection({ host: '127.0.0.1', port: p, user: 'app', password: 'secret', ssl: { rejectUnauthorized: false } });
      const [rows] = await ok.query<Row[]>('SELECT @@port AS p');
      expect(Number(rows[0].p)).to.equal(ports.n1);
      ok.destroy();
      await strict.stop();
    });

    it('read_your_writes_ms sends a session\'s reads to the primary for a while after its write', async () => {
      const ryw = await startProxy(
        parseProxyConfig({
          listen: { port: 0 },
          users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root' }],
          routing: { read_your_writes_ms: 1500 },
          static_topology: { primary: 'n1', nodes: Object.fromEntries(cluster.nodes.map((n) => [n.name, { host: '127.0.0.1', port: n.port }])) },
        }),
        silentLogger,
      );
      registerCleanup(() => ryw.stop());
      const c = await mysql.createConnection({ host: '127.0.0.1', port: ryw.server.address.port, user: 'app', password: 'secret', database: 'db' });
      registerCleanup(() => c.destroy());
      expect(await portOf(c)).to.be.oneOf([ports.n2, ports.n3]);
      await c.query("REPLACE INTO t VALUES (30, 'ryw')");
      expect(await portOf(c)).to.equal(ports.n1);
      expect(await portOf(c, '/* doltgate:replica */ SELECT @@port AS p')).to.be.oneOf([ports.n2, ports.n3]);
      await eventually(async () => [ports.n2, ports.n3].includes(await portOf(c)), { within: 5000, what: 'reads to return to the replicas' });
      c.destroy();
      await ryw.stop();
    });

    it('a replica that goes down is skipped (with backoff) and counted down; reads return when it is back', async () => {
      const c = await open();
      const n3 = cluster.nodes[2];
      await n3.server.stop();
      await eventually(
        async () => {
          for (let i = 0; i < 4; i++) if ((await portOf(c)) !== ports.n2) return false;
          return true;
        },
        { within: 10_000, what: 'reads to avoid the stopped replica' },
      );
      const metrics = await (await fetch(`http://127.0.0.1:${proxy.httpAddress?.port}/metrics`)).text();
      expect(metrics).to.match(/doltgate_proxy_backend_up\{[^}]*backend="n3"[^}]*\} 0/);
      await n3.server.start();
      await eventually(async () => (await portOf(c)) === ports.n3 || (await portOf(c)) === ports.n3, { within: 20_000, what: 'reads to come back to n3' });
    });

    it('/metrics counts queries by route and /healthz reports the topology', async () => {
      const base = `http://127.0.0.1:${proxy.httpAddress?.port}`;
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).to.match(/doltgate_proxy_queries_total\{[^}]*route="replica"[^}]*\} [1-9]/);
      expect(metrics).to.match(/doltgate_proxy_queries_total\{[^}]*route="primary"[^}]*\} [1-9]/);
      expect(metrics).to.match(/doltgate_proxy_topology_epoch\{[^}]*\} 1/);
      const health = (await (await fetch(`${base}/healthz`)).json()) as { ok: boolean; detail: { topology: { primary: string }; source: string } };
      expect(health.ok).to.equal(true);
      expect(health.detail.topology.primary).to.equal('n1');
      expect(health.detail.source).to.equal('static');
    });
  });
});

describe('proxy to a Dolt that requires TLS (backend_tls)', function () {
  this.timeout(60_000);

  it('logs in to Dolt over TLS when backend_tls is set, and reports the refusal when it is not', async () => {
    const cluster = await TestDoltCluster.start({ nodes: 1, startServers: false });
    const node = cluster.primary;
    const dir = node.layout.nodeDir;
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1']);
    const yaml = readFileSync(node.server.configFile, 'utf8').replace(
      /( {2}max_connections: \d+\n)/,
      `$1  tls_key: ${JSON.stringify(join(dir, 'key.pem'))}\n  tls_cert: ${JSON.stringify(join(dir, 'cert.pem'))}\n  require_secure_transport: true\n`,
    );
    writeFileSync(node.server.configFile, yaml);
    // The bed's readiness probe does not speak TLS; wait for the server with one that does.
    await node.server.start(1).catch(() => undefined);
    await eventually(
      async () => {
        const c = await mysql.createConnection({ host: '127.0.0.1', port: node.port, user: 'root', ssl: { rejectUnauthorized: false } });
        c.destroy();
        return true;
      },
      { within: 20_000, what: 'Dolt to accept TLS connections' },
    );
    const base = {
      listen: { port: 0 },
      users: [{ name: 'app', ...hashProxyPassword('secret'), backend_user: 'root' }],
      static_topology: { primary: 'n1', nodes: { n1: { host: '127.0.0.1', port: node.port } } },
    };
    const withTls = await startProxy(parseProxyConfig({ ...base, backend_tls: { reject_unauthorized: false } }), silentLogger);
    const plain = await startProxy(parseProxyConfig(base), silentLogger);
    registerCleanup(() => withTls.stop());
    registerCleanup(() => plain.stop());
    const good = await mysql.createConnection({ host: '127.0.0.1', port: withTls.server.address.port, user: 'app', password: 'secret' });
    const [rows] = await good.query<Row[]>('SELECT @@port AS p');
    expect(Number(rows[0].p)).to.equal(node.port);
    good.destroy();
    const bad = await mysql.createConnection({ host: '127.0.0.1', port: plain.server.address.port, user: 'app', password: 'secret' });
    const error = (await bad.query('SELECT 1').then(() => ({}), (e: { message?: string }) => e)) as { message?: string };
    expect(error.message).to.match(/doltgate: backend n1 .*refused the login.*insecure connections/is);
    bad.destroy();
    await withTls.stop();
    await plain.stop();
    await cluster.stop();
  });
});
