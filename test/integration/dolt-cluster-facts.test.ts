/**
 * Dolt's direct-to-standby ("cluster") replication: doltgate's second replication mode (README,
 * "Second mode"). These pin the behaviour that mode rests on, against the real binary, so the
 * README's account stays true for the Dolt in use:
 * bootstrap from the YAML, replication of databases, rows and users, a standby's refusal of
 * writes, promotion by `dolt_assume_cluster_role` at a higher epoch, the role kept in the node's
 * own global config, and a graceful hand-over with `dolt_cluster_transition_to_standby`.
 *
 * Three nodes, each with its own DOLT_ROOT_PATH (they must not share one: the role lives there),
 * SQL and remotesapi ports on 127.0.0.1; every server is stopped by PID at cleanup.
 */

import { expect } from 'chai';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

function clusterYaml(node: ClusterNode, peers: ClusterNode[], bootstrapRole: 'primary' | 'standby'): string {
  return [
    'log_level: info',
    `data_dir: ${JSON.stringify(node.layout.dataDir)}`,
    'listener:',
    '  host: 127.0.0.1',
    `  port: ${node.sqlPort}`,
    'cluster:',
    '  standby_remotes:',
    ...peers.flatMap((peer) => [`    - name: ${peer.name}`, `      remote_url_template: http://127.0.0.1:${peer.remotesapiPort}/{database}`]),
    `  bootstrap_role: ${bootstrapRole}`,
    '  bootstrap_epoch: 1',
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

describe('Dolt facts: cluster replication (real dolt sql-server)', function () {
  this.timeout(120_000);
  const nodes: ClusterNode[] = [];
  let n1: ClusterNode;
  let n2: ClusterNode;
  let n3: ClusterNode;

  before(async () => {
    const dir = await tempDir('dolt-cluster');
    const binary = doltBinary();
    for (const name of ['n1', 'n2', 'n3']) {
      const layout = nodeLayout(dir, name, binary);
      const sqlPort = await freePort();
      const remotesapiPort = await freePort();
      const server = new DoltSqlServer({ env: layout.env, nodeDir: layout.nodeDir, settings: { dataDir: layout.dataDir, host: '127.0.0.1', port: sqlPort, role: 'standby', remoteName: 'origin' } });
      registerCleanup(() => server.stop(5000).then(() => undefined));
      nodes.push({ name, layout, sqlPort, remotesapiPort, server });
    }
    [n1, n2, n3] = nodes;
    for (const node of nodes) {
      // The cluster YAML replaces the plain one configure writes; the data dir starts empty.
      await node.server.configure('standby');
      await mkdir(node.layout.dataDir, { recursive: true });
      await initDoltRoot(node.layout.env, node.layout.nodeDir);
      await writeFile(node.server.configFile, clusterYaml(node, nodes.filter((peer) => peer !== node), node === n1 ? 'primary' : 'standby'));
    }
    await Promise.all(nodes.map((node) => node.server.start()));
  });

  it('bootstraps from the YAML: n1 primary at epoch 1, the others standbys; the role is kept in each node\'s global config', async () => {
    expect(await Promise.all(nodes.map(roleOf))).to.deep.equal(['primary@1', 'standby@1', 'standby@1']);
    const saved = JSON.parse(await readFile(globalConfigFile(n1), 'utf8')) as Record<string, string>;
    expect(saved).to.include({ 'sqlserver.cluster.dolt_cluster_role': 'primary', 'sqlserver.cluster.dolt_cluster_role_epoch': '1' });
  });

  it('a database, its rows and users created on the primary reach the standbys; a standby reads but refuses writes', async () => {
    await query(n1, 'CREATE DATABASE app');
    await query(n1, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))', 'app');
    await query(n1, "INSERT INTO t VALUES (1, 'one')", 'app');
    await query(n1, "CREATE USER 'reader'@'%' IDENTIFIED BY 'pw'");
    for (const standby of [n2, n3]) {
      await eventually(async () => (await query(standby, 'SELECT v FROM t WHERE id = 1', 'app').catch(() => [])).length === 1, { within: 20_000, what: `row 1 on ${standby.name}` });
      await eventually(async () => (await query(standby, "SELECT user FROM mysql.user WHERE user = 'reader'")).length === 1, { within: 20_000, what: `user reader on ${standby.name}` });
    }
    const refused = await refusal(n2, "INSERT INTO t VALUES (2, 'two')", 'app');
    expect(refused?.errno).to.equal(1105);
    expect(refused?.message).to.match(/read-only/);
    const status = await query<{ standby_remote: string; role: string; epoch: number }>(n1, "SELECT standby_remote, role, epoch FROM dolt_cluster.dolt_cluster_status WHERE `database` = 'app' ORDER BY standby_remote");
    expect(status.map((row) => `${row.standby_remote} ${row.role} ${row.epoch}`)).to.deep.equal(['n2 primary 1', 'n3 primary 1']);
  });

  it('a role change needs a strictly higher epoch', async () => {
    const refused = await refusal(n2, "CALL dolt_assume_cluster_role('primary', 1)");
    expect(refused?.message).to.match(/already at epoch 1 with different role, 'standby'/);
    expect(await roleOf(n2)).to.equal('standby@1');
  });

  it('failover: with the primary killed, a standby assumed primary at epoch 2 takes writes and the other standby follows it', async () => {
    await n1.server.kill9();
    await query(n2, "CALL dolt_assume_cluster_role('primary', 2)");
    expect(await roleOf(n2)).to.equal('primary@2');
    await query(n2, "INSERT INTO t VALUES (2, 'after failover')", 'app');
    await eventually(async () => (await query(n3, 'SELECT v FROM t WHERE id = 2', 'app')).length === 1, { within: 20_000, what: 'row 2 on n3' });
    expect(await roleOf(n3)).to.equal('standby@2');
  });

  it('the killed primary\'s saved role is still primary@1; written as standby@2 before its restart, it comes back a standby and catches up', async () => {
    const file = globalConfigFile(n1);
    const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(saved).to.include({ 'sqlserver.cluster.dolt_cluster_role': 'primary', 'sqlserver.cluster.dolt_cluster_role_epoch': '1' });
    // What a cluster-mode agent would do before restarting a demoted node (see the README).
    await writeFile(file, JSON.stringify({ ...saved, 'sqlserver.cluster.dolt_cluster_role': 'standby', 'sqlserver.cluster.dolt_cluster_role_epoch': '2' }));
    await n1.server.start();
    expect(await roleOf(n1)).to.equal('standby@2');
    expect((await refusal(n1, "INSERT INTO t VALUES (3, 'stale')", 'app'))?.errno).to.equal(1105);
    await eventually(async () => (await query(n1, 'SELECT v FROM t WHERE id = 2', 'app')).length === 1, { within: 30_000, what: 'row 2 on the restarted n1' });
  });

  it('switchover: transition_to_standby reports every standby caught up, then the target assumes primary at the same epoch', async () => {
    await query(n2, "INSERT INTO t VALUES (4, 'before switchover')", 'app');
    const caughtUp = await query<{ caught_up: number; database: string; remote: string }>(n2, 'CALL dolt_cluster_transition_to_standby(3, 2)');
    const app = caughtUp.filter((row) => row.database === 'app').map((row) => `${row.remote} ${row.caught_up}`).sort();
    expect(app).to.deep.equal(['n1 1', 'n3 1']);
    expect(await roleOf(n2)).to.equal('standby@3');
    await query(n3, "CALL dolt_assume_cluster_role('primary', 3)");
    await query(n3, "INSERT INTO t VALUES (5, 'after switchover')", 'app');
    const rows = await query<{ id: number }>(n3, 'SELECT id FROM t ORDER BY id', 'app');
    expect(rows.map((row) => row.id)).to.deep.equal([1, 2, 4, 5]);
    await eventually(async () => (await query(n2, 'SELECT v FROM t WHERE id = 5', 'app')).length === 1, { within: 20_000, what: 'row 5 on the old primary n2' });
  });
});
