/**
 * The Dolt facts doltgate's cluster replication mode (issue 15) rests on, beyond the bootstrap,
 * refusal, promotion and hand-over that dolt-cluster-facts.test.ts pins:
 *  - every node can start as a standby at epoch 0, so the agents, not the YAML, pick the first
 *    primary (at doltgate's first epoch);
 *  - with `dolt_cluster_ack_writes_timeout_secs` set, a commit that a standby did not acknowledge
 *    in time still answers OK, with warning 3024 naming how many replicas timed out;
 *  - a role change kills the node's other connections;
 *  - a stale primary restarted without the `cluster:` section (doltgate's fenced and standby roles)
 *    keeps the commits it never replicated and takes no push; those commits can be carried to the
 *    new primary as a branch through a file remote; restarted clustered as a standby at the new
 *    epoch, the primary's root replaces its own: everything it alone held, even a branch, is gone.
 *    So orphans must be saved before a demoted node rejoins as a standby, never after.
 *
 * Three nodes on 127.0.0.1 (SQL and remotesapi), each with its own DOLT_ROOT_PATH; every server
 * is stopped by PID at cleanup.
 */

import { expect } from 'chai';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { initDoltRoot } from '../../agent/dolt/dolt-command';
import { DoltSqlServer } from '../../agent/dolt/sql-server';
import { nodeLayout, type NodeLayout } from '../../sandbox/dolt-node-setup';
import { freePort } from '../../common/free-port';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { doltBinary } from '../bed/dolt-binary';
import { eventually } from '../bed/eventually';
import { queryAsRoot } from '../../sandbox/root-query';

interface ClusterNode {
  name: string;
  layout: NodeLayout;
  sqlPort: number;
  remotesapiPort: number;
  server: DoltSqlServer;
}

type Row = Record<string, unknown>;

function clusterYaml(node: ClusterNode, peers: ClusterNode[]): string {
  return [
    `data_dir: ${JSON.stringify(node.layout.dataDir)}`,
    'listener:',
    '  host: 127.0.0.1',
    `  port: ${node.sqlPort}`,
    'behavior:',
    '  dolt_transaction_commit: true',
    'cluster:',
    '  standby_remotes:',
    ...peers.flatMap((peer) => [`    - name: ${peer.name}`, `      remote_url_template: http://127.0.0.1:${peer.remotesapiPort}/{database}`]),
    '  bootstrap_role: standby',
    '  bootstrap_epoch: 0',
    '  remotesapi:',
    '    address: 127.0.0.1',
    `    port: ${node.remotesapiPort}`,
    '',
  ].join('\n');
}

function query<T = Row>(node: ClusterNode, sql: string, database?: string): Promise<T[]> {
  return queryAsRoot<T>(node.sqlPort, sql, [], { database });
}

async function refusal(node: ClusterNode, sql: string, database?: string): Promise<{ errno?: number; message: string } | null> {
  return query(node, sql, database).then(
    () => null,
    (error: Error & { errno?: number }) => ({ errno: error.errno, message: error.message }),
  );
}

async function roleOf(node: ClusterNode): Promise<string> {
  const rows = await query<{ role: string; epoch: number }>(node, 'SELECT @@GLOBAL.dolt_cluster_role AS role, @@GLOBAL.dolt_cluster_role_epoch AS epoch');
  return `${rows[0].role}@${rows[0].epoch}`;
}

function globalConfigFile(node: ClusterNode): string {
  return join(node.layout.env.rootPath, '.dolt', 'config_global.json');
}

/** A write on `node` with its warnings, as a client of the primary sees them. */
async function writeWithWarnings(node: ClusterNode, sql: string): Promise<{ warningStatus: number; warnings: Array<{ Code: number; Message: string }> }> {
  const connection = await mysql.createConnection({ host: '127.0.0.1', port: node.sqlPort, user: 'root', password: '', database: 'app' });
  try {
    const [result] = await connection.query(sql);
    const warningStatus = (result as { warningStatus: number }).warningStatus;
    const [warnings] = await connection.query('SHOW WARNINGS');
    return { warningStatus, warnings: warnings as Array<{ Code: number; Message: string }> };
  } finally {
    connection.destroy();
  }
}

describe('Dolt facts: what cluster mode rests on (real dolt sql-server)', function () {
  this.timeout(120_000);
  const nodes: ClusterNode[] = [];
  let dir: string;
  let n1: ClusterNode;
  let n2: ClusterNode;
  let n3: ClusterNode;

  async function startClustered(node: ClusterNode): Promise<void> {
    await writeFile(node.server.configFile, clusterYaml(node, nodes.filter((peer) => peer !== node)));
    await node.server.start();
  }

  before(async () => {
    dir = await tempDir('dolt-cluster-mode');
    const binary = doltBinary();
    for (const name of ['n1', 'n2', 'n3']) {
      const layout = nodeLayout(dir, name, binary);
      const sqlPort = await freePort();
      const remotesapiPort = await freePort();
      const server = new DoltSqlServer({ env: layout.env, nodeDir: layout.nodeDir, settings: { dataDir: layout.dataDir, host: '127.0.0.1', port: sqlPort, role: 'fenced', remoteName: 'origin' } });
      registerCleanup(() => server.stop(5000).then(() => undefined));
      nodes.push({ name, layout, sqlPort, remotesapiPort, server });
    }
    [n1, n2, n3] = nodes;
    for (const node of nodes) {
      await node.server.configure('fenced');
      await mkdir(node.layout.dataDir, { recursive: true });
      await initDoltRoot(node.layout.env, node.layout.nodeDir);
    }
    await Promise.all(nodes.map(startClustered));
  });

  it('every node can start a standby at epoch 0; the one that assumes primary at epoch 1 leads, and the others follow it', async () => {
    expect(await Promise.all(nodes.map(roleOf))).to.deep.equal(['standby@0', 'standby@0', 'standby@0']);
    expect((await refusal(n1, 'CREATE DATABASE app'))?.message).to.match(/read.only/i);
    await query(n1, "CALL dolt_assume_cluster_role('primary', 1)");
    expect(await roleOf(n1)).to.equal('primary@1');
    await query(n1, 'CREATE DATABASE app');
    await query(n1, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))', 'app');
    await query(n1, "INSERT INTO t VALUES (1, 'one')", 'app');
    for (const standby of [n2, n3]) {
      await eventually(async () => (await query(standby, 'SELECT v FROM t WHERE id = 1', 'app').catch(() => [])).length === 1, { within: 20_000, what: `row 1 on ${standby.name}` });
      expect(await roleOf(standby)).to.equal('standby@1');
    }
  });

  it('with ack writes on, a commit a standby does not acknowledge in time answers OK with warning 3024; with every standby up, none', async () => {
    await query(n1, 'SET @@GLOBAL.dolt_cluster_ack_writes_timeout_secs = 2');
    const acked = await writeWithWarnings(n1, "INSERT INTO t VALUES (2, 'acked by both')");
    expect(acked.warningStatus).to.equal(0);
    await n3.server.stop(5000);
    const timedOut = await writeWithWarnings(n1, "INSERT INTO t VALUES (3, 'n3 is down')");
    expect(timedOut.warningStatus).to.be.greaterThan(0);
    expect(timedOut.warnings.map((w) => `${w.Code} ${w.Message}`)).to.deep.equal(['3024 Timed out replication of commit to 1 out of 2 replicas.']);
    expect(await query(n2, 'SELECT v FROM t WHERE id = 3', 'app')).to.have.length(1);
    await query(n1, 'SET @@GLOBAL.dolt_cluster_ack_writes_timeout_secs = 0');
  });

  it('a role change kills the node\'s other connections', async () => {
    const other = await mysql.createConnection({ host: '127.0.0.1', port: n2.sqlPort, user: 'root', password: '', database: 'app' });
    try {
      await other.query('SELECT 1');
      // n1 still runs at epoch 1, but n3 is down and n2 will lead: n1 is first killed like a failed primary.
      await n1.server.kill9();
      await query(n2, "CALL dolt_assume_cluster_role('primary', 2)");
      expect(await roleOf(n2)).to.equal('primary@2');
      const after = await other.query('SELECT 1').then(
        () => 'answered',
        (error: Error & { code?: string }) => error.code ?? error.message,
      );
      expect(after).to.not.equal('answered');
    } finally {
      other.destroy();
    }
  });

  it('a stale primary started without cluster: keeps what it never replicated; carried over by a file remote, it becomes a branch on the new primary', async () => {
    // n1 (killed at epoch 1) held row 3 and nothing later; give it a commit nobody else has, as a
    // primary that lost its standbys would: started standalone and writable, then read-only.
    await n1.server.configure('standby');
    await n1.server.start();
    await query(n1, "INSERT INTO t VALUES (4, 'only on the old primary')", 'app');
    await n1.server.stop(5000);
    await n1.server.configure('fenced');
    await n1.server.start();
    expect((await query<{ v: string }>(n1, 'SELECT v FROM t WHERE id = 4', 'app')).map((r) => r.v)).to.deep.equal(['only on the old primary']);
    expect((await refusal(n1, "INSERT INTO t VALUES (5, 'fenced')", 'app'))?.message).to.match(/read.only/i);
    // Meanwhile the new primary takes writes.
    await query(n2, "INSERT INTO t VALUES (6, 'after failover')", 'app');

    // The save: writable on its own again, the old primary names its head as an orphan branch and
    // pushes it to a file remote; the new primary fetches it from there.
    await n1.server.stop(5000);
    await n1.server.configure('standby');
    await n1.server.start();
    const orphans = `file://${join(dir, 'orphans', 'app')}`;
    await mkdir(join(dir, 'orphans', 'app'), { recursive: true });
    await query(n1, "CALL dolt_branch('doltgate/orphaned/2/main', 'main')", 'app');
    await query(n1, "CALL dolt_branch('local-only', 'main')", 'app');
    await query(n1, `CALL dolt_remote('add', 'doltgate-orphans', '${orphans}')`, 'app');
    await query(n1, "CALL dolt_push('doltgate-orphans', 'doltgate/orphaned/2/main')", 'app');
    const orphanHead = String((await query<{ hash: string }>(n1, "SELECT hash FROM dolt_branches WHERE name = 'main'", 'app'))[0].hash);
    await n1.server.stop(5000);

    // How the rejoin tells a commit the new primary lacks: dolt_commits lists every commit reachable
    // from any ref (branches and remote-tracking refs), so the old primary's head is unknown there
    // until handed over.
    const knows = async (node: ClusterNode, hash: string): Promise<number> =>
      Number((await queryAsRoot<{ n: number }>(node.sqlPort, 'SELECT COUNT(*) AS n FROM dolt_commits WHERE commit_hash = ?', [hash], { database: 'app' }))[0].n);
    expect(await knows(n2, String((await query<{ hash: string }>(n2, "SELECT hash FROM dolt_branches WHERE name = 'main'", 'app'))[0].hash))).to.equal(1);
    expect(await knows(n2, orphanHead), 'the old primary\'s own commit').to.equal(0);
    await query(n2, `CALL dolt_remote('add', 'doltgate-orphans', '${orphans}')`, 'app');
    await query(n2, "CALL dolt_fetch('doltgate-orphans', 'doltgate/orphaned/2/main')", 'app');
    const fetched = String((await query<{ hash: string }>(n2, "SELECT hash FROM dolt_remote_branches WHERE name = 'remotes/doltgate-orphans/doltgate/orphaned/2/main'", 'app'))[0].hash);
    expect(fetched).to.equal(orphanHead);
    expect(await knows(n2, fetched), 'reachable from the remote-tracking ref alone: listed already').to.equal(1);
    await query(n2, "CALL dolt_branch('doltgate/orphaned/2/main', 'doltgate-orphans/doltgate/orphaned/2/main')", 'app');
    await query(n2, "CALL dolt_remote('remove', 'doltgate-orphans')", 'app');
    expect(await knows(n2, fetched), 'on a branch, the remote gone').to.equal(1);
    const onBranch = await query<{ v: string }>(n2, "SELECT v FROM t AS OF 'doltgate/orphaned/2/main' WHERE id = 4", 'app');
    expect(onBranch.map((r) => r.v)).to.deep.equal(['only on the old primary']);
    expect(await query(n2, 'SELECT v FROM t WHERE id = 4', 'app')).to.have.length(0);
  });

  it('restarted clustered as a standby at the new epoch, the old primary takes the new primary\'s root: its own commit and branch are gone, the orphan branch arrives', async () => {
    const file = globalConfigFile(n1);
    const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(saved).to.include({ 'sqlserver.cluster.dolt_cluster_role': 'primary', 'sqlserver.cluster.dolt_cluster_role_epoch': '1' });
    await writeFile(file, JSON.stringify({ ...saved, 'sqlserver.cluster.dolt_cluster_role': 'standby', 'sqlserver.cluster.dolt_cluster_role_epoch': '2' }));
    await startClustered(n1);
    expect(await roleOf(n1)).to.equal('standby@2');
    await eventually(async () => (await query(n1, 'SELECT v FROM t WHERE id = 6', 'app')).length === 1, { within: 30_000, what: 'row 6 on the rejoined n1' });
    expect(await query(n1, 'SELECT v FROM t WHERE id = 4', 'app')).to.have.length(0);
    const branches = (await query<{ name: string }>(n1, 'SELECT name FROM dolt_branches ORDER BY name', 'app')).map((r) => r.name);
    expect(branches).to.deep.equal(['doltgate/orphaned/2/main', 'main']);
  });

  it('a standby started again after missing writes catches up at the primary\'s epoch', async () => {
    await startClustered(n3);
    await eventually(async () => (await query(n3, 'SELECT v FROM t WHERE id = 6', 'app').catch(() => [])).length === 1, { within: 30_000, what: 'row 6 on n3' });
    expect(await roleOf(n3)).to.equal('standby@2');
  });
});
