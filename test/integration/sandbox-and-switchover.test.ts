/**
 * Issue 5's end-to-end checks with real processes: `doltgate sandbox up`, a connection through its
 * proxy, a failover and `down`, in one test; and a planned switchover under continuous writes
 * through the proxy with zero client errors and no lost rows.
 */

import { expect } from 'chai';
import { newestDescendant } from '../../sandbox/local-cluster';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { isProcessAlive } from '../../common/child-process';
import { memoryIo } from '../../cli/cli-io';
import * as switchoverCli from '../../cli/switchover';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { repoRoot } from '../bed/dolt-binary';
import { eventually } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';

const entry = join(repoRoot, 'dist', 'bin', 'doltgate.js');
const ER_DUP_ENTRY = 1062;

function doltgate(args: string[], timeoutMs = 120_000, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [entry, ...args], { timeout: timeoutMs, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('sandbox and zero-error switchover (real processes)', function () {
  this.timeout(240_000);

  it('sandbox up --detach, connect through the proxy, survive a failover, sandbox down', async () => {
    const dir = join(await tempDir('sandbox'), 'sb');
    const up = await doltgate(['sandbox', 'up', '--detach', '--dir', dir]);
    const statePath = join(dir, 'state.json');
    // Whatever happens below, stop what `up` started.
    registerCleanup(async () => {
      if (existsSync(statePath)) await doltgate(['sandbox', 'down', '--dir', dir]);
    });
    expect(up.code, up.stderr).to.equal(0);
    expect(up.stdout).to.match(/mysql -h 127\.0\.0\.1 -P \d+ -u app -psandbox app/);
    const state = JSON.parse(readFileSync(statePath, 'utf8'));
    // It holds the proxy's and the nodes' passwords: the owner's alone, as are the configs.
    expect(statSync(statePath).mode & 0o777, 'state.json mode').to.equal(0o600);
    for (const file of ['proxy1.yaml', 'n1/agent.yaml']) expect(statSync(join(dir, file)).mode & 0o777, file).to.equal(0o600);
    expect(state.cluster).to.equal('sandbox');
    expect(state.etcd).to.have.length(1);
    // etcd runs with authentication on: the CLI needs the credentials state.json holds.
    expect(state.etcdUser).to.equal('root');
    const etcdEnv = { DOLTGATE_ETCD_USER: state.etcdUser as string, DOLTGATE_ETCD_PASSWORD: state.etcdPassword as string };
    const refused = await doltgate(['status', '--json', '--etcd', state.etcd[0], '--cluster', state.cluster], 30_000);
    expect(refused.code, 'status without etcd credentials').to.not.equal(0);
    expect(state.proxy).to.include.keys('host', 'port', 'user', 'password', 'metrics');
    expect(state.nodes.map((node: { name: string }) => node.name)).to.deep.equal(['n1', 'n2', 'n3']);
    for (const node of state.nodes) expect(node).to.include.keys('name', 'sqlPort', 'user', 'password', 'grpc', 'agentPid');

    const connect = () => mysql.createConnection({ host: '127.0.0.1', port: state.proxy.port, user: state.proxy.user, password: state.proxy.password, database: 'app' });
    const client = await connect();
    registerCleanup(() => client.destroy());
    await client.query('CREATE TABLE t (id INT PRIMARY KEY)');
    await client.query('INSERT INTO t VALUES (1), (2)');

    const status = JSON.parse((await doltgate(['status', '--json', '--etcd', state.etcd[0], '--cluster', state.cluster], 120_000, etcdEnv)).stdout);
    const primary = state.nodes.find((node: { name: string }) => node.name === status.primary);
    // The agent's Dolt runs under its keeper: find it in the agent's process tree.
    const doltPid = await newestDescendant(primary.agentPid, (cmdline) => cmdline.includes('sql-server') && !cmdline.some((arg) => arg.endsWith('keeper-main.js')));
    expect(doltPid, 'the primary agent runs a dolt sql-server').to.be.a('number');
    process.kill(doltPid as number, 'SIGKILL');

    // A replica takes over, or the old primary recovers in place when its Dolt is back first:
    // either way a newer epoch with a primary.
    await eventually(async () => {
      const after = JSON.parse((await doltgate(['status', '--json', '--etcd', state.etcd[0], '--cluster', state.cluster], 120_000, etcdEnv)).stdout);
      return after.state === 'stable' && after.primary !== null && after.epoch > status.epoch;
    }, { within: 30_000, what: 'a primary at a newer epoch' });
    // An attempt can commit and still fail for the client (its connection cut by the failover:
    // "outcome unknown"), so a later attempt's duplicate-key error means an earlier one landed.
    const attempts: string[] = [];
    await eventually(async () => {
      const again = await connect();
      try {
        await again.query('INSERT INTO t VALUES (3)');
        attempts.push('inserted');
      } catch (error) {
        attempts.push((error as Error).message);
        if ((error as { errno?: number }).errno !== ER_DUP_ENTRY) throw error;
      } finally {
        again.destroy();
      }
      return true;
    }, { within: 20_000, what: 'a write through the proxy after the failover' });
    expect(attempts.filter((outcome) => outcome === 'inserted').length, attempts.join('; ')).to.be.at.most(1);
    // Reads may go to a replica, which catches up with the new primary on its own.
    await eventually(async () => {
      const again = await connect();
      try {
        const [onPrimary] = await again.query('/* doltgate:primary */ SELECT id FROM t ORDER BY id');
        const [anywhere] = await again.query('SELECT id FROM t ORDER BY id');
        const ids = (rows: unknown) => (rows as Array<{ id: number }>).map((row) => row.id).join(',');
        expect(ids(onPrimary), 'rows on the new primary').to.equal('1,2,3');
        expect(ids(anywhere), 'rows read through the proxy').to.equal('1,2,3');
        return true;
      } finally {
        again.destroy();
      }
    }, { within: 20_000, what: 'rows 1,2,3 read through the proxy after the failover' });

    const down = await doltgate(['sandbox', 'down', '--dir', dir]);
    expect(down.code, down.stderr).to.equal(0);
    expect(existsSync(statePath)).to.equal(false);
    for (const node of state.nodes) expect(isProcessAlive(node.agentPid), `agent ${node.name} stopped`).to.equal(false);
    expect(isProcessAlive(state.proxy.pid)).to.equal(false);
    for (const pid of state.etcdPids) expect(isProcessAlive(pid)).to.equal(false);
  });

  it('a switchover under continuous writes through the proxy: zero client errors, no lost rows', async () => {
    const cluster = await startLocalCluster({ agentOverrides: { ha: { min_failover_interval_ms: 1000 } } });
    const primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE w (id INT PRIMARY KEY)');
    const proxy = await cluster.startProxy({ name: 'app', password: 'pw' });
    const writer = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: 'app', password: 'pw', database: 'app' });
    registerCleanup(() => writer.destroy());
    const acknowledged: number[] = [];
    const errors: string[] = [];
    let stop = false;
    const writing = (async () => {
      // Bounded: at most 5000 writes or until told to stop.
      for (let id = 1; id <= 5000 && !stop; id++) {
        try {
          await writer.query('INSERT INTO w VALUES (?)', [id]);
          acknowledged.push(id);
        } catch (error) {
          errors.push((error as Error).message);
        }
      }
    })();
    await eventually(() => acknowledged.length >= 20, { within: 10_000, what: 'writes flowing' });
    const target = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    const io = memoryIo();
    const code = await switchoverCli.runCli(['--to', target, '--etcd', cluster.etcd.endpoints[0], '--cluster', cluster.cluster], io, cluster.cliEnv());
    expect(code, io.text()).to.equal(0);
    const before = acknowledged.length;
    await eventually(() => acknowledged.length >= before + 20, { within: 15_000, what: 'writes flowing on the new primary' });
    stop = true;
    await writing;
    expect(errors, 'client errors during the switchover').to.deep.equal([]);
    const rows = await queryNode<{ id: number }>(cluster, target, 'SELECT id FROM w ORDER BY id');
    const stored = new Set(rows.map((row) => row.id));
    expect(acknowledged.filter((id) => !stored.has(id)), 'acknowledged rows missing on the new primary').to.deep.equal([]);
  });
});
