/**
 * Learning tests: each Dolt fact the design leans on (../shared/dolt.md), pinned against real
 * `dolt sql-server` processes. When Dolt changes under us, these fail first and say which fact moved.
 */

import { expect } from 'chai';
import { rename, writeFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { TestDoltCluster } from '../bed/dolt-cluster';
import { eventually } from '../bed/eventually';
import { remoteBranchHead } from '../bed/remote-inspect';
import { setGlobalConfig } from '../../agent/dolt/dolt-command';

type Row = RowDataPacket & Record<string, unknown>;

/** MySQL's SERVER_STATUS_AUTOCOMMIT flag. */
const SERVER_STATUS_AUTOCOMMIT = 0x0002;

async function head(cluster: TestDoltCluster, node = cluster.primary, ref = 'main'): Promise<string> {
  const rows = await cluster.query<Row>(node, 'SELECT dolt_hashof(?) AS h', [ref]);
  return String(rows[0].h);
}

describe('Dolt facts (real dolt sql-server)', function () {
  this.timeout(120_000);
  let cluster: TestDoltCluster;

  before(async () => {
    cluster = await TestDoltCluster.start({ nodes: 3 });
    await cluster.query(cluster.primary, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(100))');
  });
  after(async () => cluster?.stop());

  it("the greeting's status flags say autocommit is off although @@autocommit is 1 (PyMySQL then never sends SET AUTOCOMMIT = 0: known-differences.ts)", async () => {
    const greeting = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect(cluster.primary.port, '127.0.0.1');
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data);
      });
      socket.once('error', reject);
    });
    // Header (4), protocol version (1), server version up to NUL, connection id (4), auth data
    // (8), filler (1), capabilities low (2), charset (1), then the status flags (2).
    const afterVersion = greeting.indexOf(0, 5) + 1;
    const status = greeting.readUInt16LE(afterVersion + 4 + 8 + 1 + 2 + 1);
    expect(status & SERVER_STATUS_AUTOCOMMIT, `greeting status 0x${status.toString(16)}`).to.equal(0);
    const rows = await cluster.query<Row>(cluster.primary, 'SELECT @@autocommit AS a');
    expect(Number(rows[0].a)).to.equal(1);
  });

  it('an SQL COMMIT on the primary becomes a Dolt commit and reaches the remote (dolt_transaction_commit on)', async () => {
    const before = await head(cluster);
    const connection = await cluster.connect(cluster.primary);
    await connection.query('BEGIN');
    await connection.query("INSERT INTO t VALUES (1, 'one')");
    await connection.query('COMMIT');
    const after = await head(cluster);
    expect(after).to.not.equal(before);
    expect(await remoteBranchHead(cluster.primary.layout.env, cluster.remoteDir, 'db')).to.equal(after);
  });

  it("push-on-write does not move the primary's own remote-tracking ref: the gap is only visible after a fetch", async () => {
    const local = await head(cluster);
    const tracking = await head(cluster, cluster.primary, 'origin/main');
    expect(tracking).to.not.equal(local);
    await cluster.query(cluster.primary, "CALL dolt_fetch('origin')");
    expect(await head(cluster, cluster.primary, 'origin/main')).to.equal(local);
  });

  it('a replica sees the row at its next transaction (pull on read)', async () => {
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (2, 'two')");
    const rows = await cluster.query<Row>(cluster.nodes[1], 'SELECT v FROM t WHERE id = 2');
    expect(rows.map((row) => row.v)).to.deep.equal(['two']);
    expect(await head(cluster, cluster.nodes[1])).to.equal(await head(cluster));
  });

  it('a write to a read-only replica fails with ERROR 1105 "database server is set to read only mode"', async () => {
    const replica = cluster.nodes[1];
    expect((await cluster.query<Row>(replica, 'SELECT @@read_only AS ro'))[0].ro).to.equal(1);
    let caught: (Error & { errno?: number; sqlState?: string }) | undefined;
    try {
      await cluster.query(replica, "INSERT INTO t VALUES (99, 'lost')");
    } catch (error) {
      caught = error as Error & { errno?: number };
    }
    expect(caught, 'the write must be refused').to.not.equal(undefined);
    expect(caught?.errno).to.equal(1105);
    expect(caught?.sqlState).to.equal('HY000');
    expect(caught?.message).to.match(/read only mode/);
  });

  it('a read-only server also refuses dolt_fetch and dolt_reset, so recovery needs a writable restart', async () => {
    const replica = cluster.nodes[2];
    for (const call of ["CALL dolt_fetch('origin')", "CALL dolt_reset('--hard', 'origin/main')"]) {
      let message = '';
      try {
        await cluster.query(replica, call);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message, call).to.match(/read only/i);
    }
  });

  it('replica settings in the YAML system_variables are ignored; in the global config they work', async () => {
    const replica = cluster.nodes[2];
    await replica.server.stop();
    await setGlobalConfig(replica.layout.env, replica.layout.nodeDir, {
      'sqlserver.global.dolt_read_replica_remote': null,
      'sqlserver.global.dolt_replicate_all_heads': null,
    });
    const yamlWithVariables = `data_dir: ${JSON.stringify(replica.layout.dataDir)}
listener: {host: 127.0.0.1, port: ${replica.port}}
behavior: {read_only: true}
system_variables: {dolt_read_replica_remote: origin, dolt_replicate_all_heads: 1}
`;
    await writeFile(replica.server.configFile, yamlWithVariables);
    await replica.server.start();
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (3, 'three')");
    const rowsWhenYaml = await cluster.query<Row>(replica, 'SELECT COUNT(*) AS n FROM t WHERE id = 3');
    expect(Number(rowsWhenYaml[0].n), 'YAML replica settings did not make it pull').to.equal(0);

    await replica.server.restartAs('replica');
    const rowsWhenGlobal = await cluster.query<Row>(replica, 'SELECT COUNT(*) AS n FROM t WHERE id = 3');
    expect(Number(rowsWhenGlobal[0].n), 'global-config replica settings make it pull').to.equal(1);
  });

  it('SET PERSIST dolt_replicate_to_remote turns push-on-write on at run time, and it survives a restart', async () => {
    const standby = cluster.nodes[2];
    // A writable server without push-on-write: what a standby is right after "disable read-only".
    await standby.server.stop();
    await standby.server.configure('primary');
    await setGlobalConfig(standby.layout.env, standby.layout.nodeDir, { 'sqlserver.global.dolt_replicate_to_remote': null });
    await standby.server.start();
    await cluster.query(standby, "CALL dolt_checkout('-b', 'standby-work')");
    const branchWrite = async (id: number): Promise<string> => {
      const connection = await cluster.connect(standby);
      await connection.query("CALL dolt_checkout('standby-work')");
      await connection.query('INSERT INTO t VALUES (?, ?)', [id, `s${id}`]);
      const [rows] = await connection.query<Row[]>("SELECT dolt_hashof('standby-work') AS h");
      connection.destroy();
      return String(rows[0].h);
    };
    await branchWrite(100);
    let remoteHas = true;
    try {
      await remoteBranchHead(standby.layout.env, cluster.remoteDir, 'db', 'standby-work');
    } catch {
      remoteHas = false;
    }
    expect(remoteHas, 'without push-on-write the branch must not reach the remote').to.equal(false);

    await cluster.query(standby, "SET PERSIST dolt_replicate_to_remote = 'origin'");
    const pushed = await branchWrite(101);
    expect(await remoteBranchHead(standby.layout.env, cluster.remoteDir, 'db', 'standby-work')).to.equal(pushed);

    await standby.server.stop();
    await standby.server.start();
    expect((await cluster.query<Row>(standby, 'SELECT @@dolt_replicate_to_remote AS r'))[0].r).to.equal('origin');
  });

  it('fetch + fast-forward brings a stale standby to the remote head; reset --hard does so for a diverged one', async () => {
    const standby = cluster.nodes[1];
    await standby.server.stop();
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (4, 'four')");
    const remoteHead = await head(cluster);
    await standby.server.configure('primary');
    await setGlobalConfig(standby.layout.env, standby.layout.nodeDir, { 'sqlserver.global.dolt_replicate_to_remote': null });
    await standby.server.start();
    expect(await head(cluster, standby)).to.not.equal(remoteHead);
    await cluster.query(standby, "CALL dolt_fetch('origin')");
    const ancestor = await cluster.query<Row>(standby, "SELECT dolt_merge_base('main', 'origin/main') = dolt_hashof('main') AS ff");
    expect(Number(ancestor[0].ff), 'local main is an ancestor of origin/main').to.equal(1);
    await cluster.query(standby, "CALL dolt_merge('origin/main', '--ff-only')");
    expect(await head(cluster, standby)).to.equal(remoteHead);

    await cluster.query(standby, "INSERT INTO t VALUES (500, 'diverged')");
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (5, 'five')");
    await cluster.query(standby, "CALL dolt_fetch('origin')");
    const diverged = await cluster.query<Row>(standby, "SELECT dolt_merge_base('main', 'origin/main') = dolt_hashof('main') AS ff");
    expect(Number(diverged[0].ff)).to.equal(0);
    // With dolt_transaction_commit on, the reset's own transaction adds a commit on top of
    // origin/main; recovery therefore turns it off for its session.
    const connection = await cluster.connect(standby);
    await connection.query('SET SESSION dolt_transaction_commit = 0');
    await connection.query("CALL dolt_reset('--hard', 'origin/main')");
    connection.destroy();
    expect(await head(cluster, standby)).to.equal(await head(cluster));
    const rows = await cluster.query<Row>(standby, 'SELECT COUNT(*) AS n FROM t WHERE id = 500');
    expect(Number(rows[0].n)).to.equal(0);
  });

  it('under dolt_transaction_commit, reset --hard in an autocommit statement lands one commit past the target', async () => {
    const node = cluster.nodes[1];
    const target = await head(cluster, node, 'origin/main');
    await cluster.query(node, "INSERT INTO t VALUES (501, 'diverged again')");
    await cluster.query(node, "CALL dolt_reset('--hard', 'origin/main')");
    const rows = await cluster.query<Row>(node, "SELECT dolt_hashof('main') AS h, dolt_hashof('main~1') AS parent");
    expect(rows[0].h).to.not.equal(target);
    expect(rows[0].parent).to.equal(target);
  });

  it('a COMMIT whose push fails still returns OK; the gap shows as commits in origin/main..main after a fetch', async () => {
    const remoteDb = join(cluster.remoteDir, 'db');
    const aside = `${remoteDb}.aside`;
    const beforeOutage = await head(cluster);
    await rename(remoteDb, aside);
    await writeFile(remoteDb, 'not a dolt remote');
    try {
      await cluster.query(cluster.primary, "INSERT INTO t VALUES (6, 'acknowledged but not pushed')");
      const acknowledged = await head(cluster);
      expect(acknowledged).to.not.equal(beforeOutage);
    } finally {
      await rm(remoteDb, { force: true });
      await rename(aside, remoteDb);
    }
    expect(await remoteBranchHead(cluster.primary.layout.env, cluster.remoteDir, 'db')).to.equal(beforeOutage);
    await cluster.query(cluster.primary, "CALL dolt_fetch('origin')");
    const gap = await cluster.query<Row>(cluster.primary, "SELECT COUNT(*) AS n FROM dolt_log('origin/main..main')");
    expect(Number(gap[0].n)).to.equal(1);
    // The failed push is not retried by itself; an explicit push closes the gap.
    await cluster.query(cluster.primary, "CALL dolt_push('origin', 'main')");
    expect(await remoteBranchHead(cluster.primary.layout.env, cluster.remoteDir, 'db')).to.equal(await head(cluster));
  });

  it('a backup synced from the primary restores a database with its newest commit', async () => {
    const backupUrl = `file://${join(cluster.dir, 'backup', 'db')}`;
    await cluster.query(cluster.primary, "CALL dolt_backup('add', 'bk', ?)", [backupUrl]);
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (7, 'in backup')");
    await cluster.query(cluster.primary, "CALL dolt_backup('sync', 'bk')");
    const primaryHead = await head(cluster);
    const standby = cluster.nodes[1];
    await cluster.query(standby, "CALL dolt_backup('restore', ?, 'restored')", [backupUrl], 'db');
    const restored = await cluster.query<Row>(standby, "SELECT dolt_hashof('main') AS h, (SELECT v FROM t WHERE id = 7) AS v", [], 'restored');
    expect(restored[0].h).to.equal(primaryHead);
    expect(restored[0].v).to.equal('in backup');
  });

  it('kill -9 of a writable server loses no committed row: what the fence (SIGKILL, never a graceful stop) relies on', async () => {
    const primary = cluster.primary;
    for (let id = 100; id < 110; id++) await cluster.query(primary, 'INSERT INTO t VALUES (?, ?)', [id, 'before kill -9']);
    const committed = await head(cluster);
    await primary.server.kill9();
    await primary.server.start();
    expect(await head(cluster)).to.equal(committed);
    const rows = await cluster.query<Row>(primary, 'SELECT COUNT(*) AS n FROM t WHERE id BETWEEN 100 AND 109');
    expect(Number(rows[0].n)).to.equal(10);
  });

  it('@@global.read_only is 1 on a read-only server and 0 on a writable one: what the proxy checks on a new primary connection', async () => {
    expect((await cluster.query<Row>(cluster.primary, 'SELECT @@global.read_only AS ro'))[0].ro).to.equal(0);
    // Earlier tests made the other nodes writable: restart one read-only (the fenced role) to ask.
    const node = cluster.nodes[2];
    await node.server.stop();
    await node.server.configure('fenced');
    await node.server.start();
    expect((await cluster.query<Row>(node, 'SELECT @@global.read_only AS ro'))[0].ro).to.equal(1);
  });

  it('dolt_branch creates a branch at a commit hash and refuses an existing name; -D deletes one (orphan branches)', async () => {
    const at = await head(cluster);
    await cluster.query(cluster.primary, "INSERT INTO t VALUES (120, 'after the saved commit')");
    const name = `doltgate/orphaned/9/main-${at}`;
    await cluster.query(cluster.primary, 'CALL dolt_branch(?, ?)', [name, at]);
    expect(await head(cluster, cluster.primary, name)).to.equal(at);
    const again = await cluster.query(cluster.primary, 'CALL dolt_branch(?, ?)', [name, at]).then(() => null, (error: Error) => error.message);
    expect(again).to.match(/already exists/);
    await cluster.query(cluster.primary, "CALL dolt_branch('-D', ?)", [name]);
    expect(await cluster.query<Row>(cluster.primary, 'SELECT name FROM dolt_branches WHERE name = ?', [name])).to.deep.equal([]);
  });

  it('eventually() fails with the last error when the condition never holds', async () => {
    let message = '';
    try {
      await eventually(() => {
        throw new Error('still down');
      }, { within: 200, interval: 50, what: 'node up' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).to.match(/node up not met within 200 ms .*still down/);
  });
});

