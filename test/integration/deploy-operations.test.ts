/**
 * Runs deploy/OPERATIONS.md. Every ```sh block whose first line is `# doc-test: <name>` is run,
 * in the guide's order, by bash (-euo pipefail) against a real local cluster: startLocalCluster's
 * etcd, three Dolt nodes with real agent processes (backups on, quick anti-flap), plus nodes the
 * guide's own commands prepare. The guide's variables (its table) point at that cluster; `dolt`
 * and `doltgate` are on PATH as they would be after the guide's install.
 *
 * Each block has a step below, by name (the two lists must match): the environment of each run
 * (some blocks run once per node), what happens before it in the guide that a test has to stand
 * in for (a `# not-run` systemctl start becomes starting the agent process with the config the
 * guide shows; an automatic failover is caused by losing the primary's host: its agent and Dolt
 * killed with -9), and what the block
 * must have done. The `# not-run` blocks are covered by the systemd and Kubernetes checks.
 *
 * Differences from a real install, all environmental: 127.0.0.1 and free ports instead of host
 * addresses; DOLT_USER is root on the nodes startLocalCluster prepared (Dolt's built-in local
 * superuser; they have no users) and doltgate on the nodes the guide prepares.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse, stringify } from 'yaml';
import { EtcdClusterStore } from '../../agent/store/etcd-cluster-store';
import { hashProxyPassword } from '../../proxy/config';
import { ManagedChild } from '../../common/child-process';
import { freePort } from '../../common/free-port';
import type { LocalCluster } from '../../sandbox/local-cluster';
import { expectKillRefused } from '../bed/app-user-checks';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { doltBinary, repoRoot } from '../bed/dolt-binary';
import { eventually } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';

type Env = Record<string, string>;

interface Block {
  name: string;
  text: string;
  line: number;
}

interface RunResult {
  env: Env;
  code: number;
  output: string;
}

interface Step {
  /** The environment of each run of the block (default: one run, the base environment). */
  runs?: () => Promise<Env[]> | Env[];
  /** Checks after every run succeeded. */
  after?: (results: RunResult[]) => Promise<void> | void;
  /** Skip the block (with the reason) when this says so. */
  skipUnless?: () => Promise<string | null>;
}

/** The guide's doc-test blocks, in order. */
function docTests(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```sh\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !/^\s*```\s*$/.test(lines[j])) body.push(lines[j++].slice(indent));
    const marker = /^# doc-test: ([a-z0-9-]+)$/.exec(body[0] ?? '');
    if (marker) blocks.push({ name: marker[1], text: body.join('\n'), line: i + 1 });
    i = j;
  }
  return blocks;
}

/** The guide's first `# agent.yaml` block: the config the first cluster's agents run with. */
function guideAgentYaml(markdown: string): Record<string, any> {
  const match = /```yaml\n(# agent\.yaml: \/etc\/doltgate\/agent-n1\.yaml\n[\s\S]*?)```/.exec(markdown);
  if (!match) throw new Error('OPERATIONS.md has no `# agent.yaml: /etc/doltgate/agent-n1.yaml` block');
  return parse(match[1]) as Record<string, any>;
}

function bash(script: string, env: Env, cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['--noprofile', '--norc', '-euo', 'pipefail', '-c', script], { env, cwd, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

function run(command: string, args: string[], env: Env, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')}: ${stderr || stdout || error.message}`));
      else resolve(stdout);
    });
  });
}

describe('deploy/OPERATIONS.md, every doc-test block run against a real cluster', function () {
  this.timeout(180_000);
  const guide = readFileSync(join(repoRoot, 'deploy', 'OPERATIONS.md'), 'utf8');
  const blocks = docTests(guide);

  const appPassword = 'app-pw-2c9f';
  const grpcToken = 'guide-token-7d1e';
  let cluster: LocalCluster;
  let dir: string;
  let base: Env;
  const extraAgents = new Map<string, { child: ManagedChild; sqlPort: number; metricsPort: number }>();
  let switchoverFrom = '';
  let failedPrimary = '';
  let orphan = '';
  let proxyAddress: { host: string; port: number } | null = null;

  const work = (): string => join(dir, 'work');
  const firstNodeDir = (): string => join(dir, 'guide-first', 'n1');
  const newNodeDir = (): string => join(dir, 'guide-add', 'n4');
  const backupDir = (): string => join(dir, 'backups');

  async function primary(): Promise<string> {
    return cluster.waitForStablePrimary(30_000);
  }

  /** Agents the guide's blocks prepared, by cluster and node name (the first cluster has an n1 too). */
  const extraKey = (clusterName: string, node: string): string => `${clusterName}/${node}`;

  function sqlPortOf(node: string, clusterName = cluster.cluster): number {
    return extraAgents.get(extraKey(clusterName, node))?.sqlPort ?? cluster.agent(node).sqlPort;
  }

  async function primaryEnv(): Promise<Env> {
    const name = await primary();
    // The nodes the guide prepared have its users; startLocalCluster's have Dolt's built-in root.
    return { PRIMARY_HOST: '127.0.0.1', PRIMARY_PORT: String(sqlPortOf(name)), DOLT_USER: extraAgents.has(extraKey(cluster.cluster, name)) ? 'doltgate' : 'root' };
  }

  async function replicaOf(exclude: string[] = []): Promise<string> {
    const name = await primary();
    const snapshot = await cluster.snapshot();
    const replica = cluster.agents.map((agent) => agent.name).find((node) => node !== name && !exclude.includes(node) && snapshot.members[node]?.role === 'replica' && snapshot.members[node]?.health.healthy);
    if (!replica) throw new Error(`no healthy replica besides ${name}`);
    return replica;
  }

  async function waitForRole(clusterName: string, node: string, role: string, within = 45_000): Promise<void> {
    const s = new EtcdClusterStore({ endpoints: cluster.etcd.endpoints, auth: cluster.etcd.auth, cluster: clusterName });
    try {
      await eventually(
        async () => {
          const snapshot = await s.snapshot();
          const member = snapshot.members[node];
          if (member?.role !== role || !member.health.healthy) throw new Error(`${node}: ${member ? `${member.role}, healthy ${member.health.healthy}` : 'no member record'}`);
          if (role === 'primary' && snapshot.topology?.value.state !== 'stable') throw new Error('topology not stable');
          return true;
        },
        { within, interval: 200, what: `${node} ${role} in ${clusterName}` },
      );
    } finally {
      s.close();
    }
  }

  /** Starts an agent with the guide's agent.yaml, changed only where a test host must differ. */
  async function startGuideAgent(name: string, clusterName: string, nodeDir: string, extra: Record<string, unknown> = {}): Promise<void> {
    const sqlPort = await freePort();
    const grpcPort = await freePort();
    const metricsPort = await freePort();
    const config = guideAgentYaml(guide);
    config.name = name;
    config.cluster = clusterName;
    config.etcd = cluster.etcdSection();
    config.dolt = { ...config.dolt, binary: doltBinary(), node_dir: nodeDir, host: '127.0.0.1', port: sqlPort, advertise: `127.0.0.1:${sqlPort}` };
    config.grpc = `127.0.0.1:${grpcPort}`;
    config.metrics = `127.0.0.1:${metricsPort}`;
    config.probe_hosts = [];
    Object.assign(config, extra);
    const file = join(nodeDir, 'agent.yaml');
    await writeFile(file, stringify(config));
    const child = new ManagedChild({
      command: process.execPath,
      args: [join(repoRoot, 'dist', 'bin', 'doltgate.js'), 'agent', '--config', file],
      env: { ...process.env, DOLTGATE_GRPC_TOKEN: grpcToken },
      logFile: join(nodeDir, 'agent.log'),
    });
    await child.start();
    registerCleanup(() => child.stop(15_000).then(() => undefined));
    extraAgents.set(extraKey(clusterName, name), { child, sqlPort, metricsPort });
  }

  /** What `systemctl restart doltgate-agent@<node>` does: stop the agent (and its Dolt), start it again. */
  async function restartAgent(node: string): Promise<void> {
    const agent = cluster.agent(node);
    await agent.process.stop(15_000);
    await agent.process.start();
    await waitForRole(cluster.cluster, node, 'replica');
  }

  const steps: Record<string, Step> = {
    'install-check': {
      after: ([result]) => {
        expect(result.output).to.contain('usage: doltgate').and.to.match(/dolt version \d+\.\d+/);
      },
    },
    'etcd-health': {
      after: ([result]) => {
        expect(result.output).to.contain('is healthy');
      },
    },
    'node-identity': {
      runs: () => [{ NODE_DIR: firstNodeDir() }, { NODE_DIR: newNodeDir() }],
      after: () => {
        for (const nodeDir of [firstNodeDir(), newNodeDir()]) expect(existsSync(join(nodeDir, 'home', '.dolt', 'config_global.json')), nodeDir).to.equal(true);
      },
    },
    'create-databases': {
      runs: () => [{ NODE_DIR: firstNodeDir(), REMOTE: `file://${join(dir, 'guide-first', 'remote')}` }],
      after: () => {
        expect(existsSync(join(firstNodeDir(), 'data', 'app', '.dolt'))).to.equal(true);
        expect(readdirSync(join(dir, 'guide-first', 'remote', 'app')).length, 'pushed to the remote').to.be.greaterThan(0);
      },
    },
    'clone-databases': {
      // The node the guide adds later, cloned from the running cluster's remote.
      runs: () => [{ NODE_DIR: newNodeDir(), REMOTE: `file://${cluster.remoteDir}` }],
      after: () => {
        expect(existsSync(join(newNodeDir(), 'data', 'app', '.dolt'))).to.equal(true);
      },
    },
    'create-users': {
      runs: () => [{ NODE_DIR: firstNodeDir() }, { NODE_DIR: newNodeDir() }],
    },
    'first-cluster-status': {
      // The not-run `systemctl enable --now doltgate-agent@n1`: the guide's agent.yaml, started.
      runs: async () => {
        await startGuideAgent('n1', 'guide-first', firstNodeDir());
        await waitForRole('guide-first', 'n1', 'primary');
        return [{ DOLTGATE_CLUSTER: 'guide-first' }];
      },
      after: async ([result]) => {
        expect(result.output).to.match(/cluster guide-first\s+epoch 1\s+state stable\s+primary n1/);
        // The users the guide created: the agent logs in as doltgate (it is healthy), proxies as app.
        const connect = () => mysql.createConnection({ host: '127.0.0.1', port: sqlPortOf('n1', 'guide-first'), user: 'app', password: appPassword, database: 'app' });
        const connection = await connect();
        const other = await connect();
        try {
          await connection.query('CREATE TABLE guide_check (id INT PRIMARY KEY)');
          await expectKillRefused(connection, other);
        } finally {
          connection.destroy();
          other.destroy();
        }
      },
    },
    'hash-password': {
      after: ([result]) => {
        // Exactly the two lines of a users[] entry, and the hashes of APP_PASSWORD.
        const hashes = parse(result.output) as { native_password_hash: string; caching_sha2_hash: string };
        expect(Object.keys(hashes)).to.deep.equal(['native_password_hash', 'caching_sha2_hash']);
        expect(hashes).to.deep.equal(hashProxyPassword(appPassword));
      },
    },
    'proxy-connect': {
      skipUnless: async () => {
        const help = await run(process.execPath, [join(repoRoot, 'dist', 'bin', 'doltgate.js'), 'proxy', '--help'], process.env as Env, repoRoot).catch((error: Error) => error.message);
        return /not built yet/.test(help) ? '`doltgate proxy` is not built yet (bin/doltgate.ts)' : null;
      },
      runs: async () => {
        if (proxyAddress === null) {
          const proxy = await cluster.startProxy({ name: 'app', password: appPassword });
          proxyAddress = { host: '127.0.0.1', port: proxy.port };
        }
        return [{ PROXY_HOST: proxyAddress.host, PROXY_PORT: String(proxyAddress.port) }];
      },
      after: ([result]) => {
        expect(result.output).to.contain('@@version');
      },
    },
    'add-node-status': {
      // The not-run `systemctl enable --now doltgate-agent@n4`: the node the guide prepared.
      runs: async () => {
        // Priority below the others': the failover later in the guide is caused by killing a
        // Dolt that startLocalCluster started, so those nodes must stay the candidates. The
        // anti-flap interval is the rest of the test cluster's.
        await startGuideAgent('n4', cluster.cluster, newNodeDir(), { priority: 50, ha: { ...guideAgentYaml(guide).ha, min_failover_interval_ms: 1000 } });
        await waitForRole(cluster.cluster, 'n4', 'replica');
        return [{}];
      },
      after: ([result]) => {
        expect(result.output).to.match(/\nn4\s+replica\s+127\.0\.0\.1:\d+\s+healthy/);
      },
    },
    'switchover-dry-run': {
      runs: async () => {
        switchoverFrom = await primary();
        return [{ TARGET: await replicaOf() }];
      },
      after: async ([result]) => {
        expect(result.output).to.contain('dry run').and.to.contain(`to ${result.env.TARGET}`);
        expect(await primary(), 'a dry run changes nothing').to.equal(switchoverFrom);
      },
    },
    switchover: {
      runs: async () => [{ TARGET: await replicaOf() }],
      after: async ([result]) => {
        expect(result.output).to.match(/succeeded at epoch \d+/);
        expect(await primary()).to.equal(result.env.TARGET);
      },
    },
    'after-failover-status': {
      // What an automatic failover starts from: the primary's host is lost (its agent is killed
      // with -9 and its Dolt dies with it), so its lease expires and a replica takes over.
      // (Killing only Dolt right after the switchover could hit the server the switchover had
      // just stopped, still exiting, instead of the one serving.)
      runs: async () => {
        failedPrimary = await primary();
        await queryNode(cluster, failedPrimary, 'CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))');
        await queryNode(cluster, failedPrimary, "INSERT INTO t VALUES (1, 'before the failover')");
        await cluster.agent(failedPrimary).process.kill9();
        await cluster.waitForStablePrimary(30_000, failedPrimary);
        return [{}];
      },
      after: async ([result]) => {
        const now = await primary();
        expect(result.output).to.match(new RegExp(`state stable\\s+primary ${now}`));
        expect(result.output).to.match(new RegExp(`failover\\s+succeeded\\s+${failedPrimary} -> ${now}`));
      },
    },
    'after-failover-gap': {
      runs: async () => [await primaryEnv()],
      after: async ([result]) => {
        expect(result.output).to.match(/not_on_remote\n0\n/);
        // The old primary's host comes back (its agent starts again) and it rejoins as a replica
        // by itself.
        await cluster.agent(failedPrimary).process.start();
        await waitForRole(cluster.cluster, failedPrimary, 'replica', 60_000);
      },
    },
    'orphans-list': {
      // An old primary's saved commits, as its agent leaves them: a branch pushed to the remote.
      runs: async () => {
        const epoch = (await cluster.snapshot()).topology?.value.epoch ?? 2;
        orphan = `doltgate/orphaned/${epoch - 1}/main`;
        const scratch = join(dir, 'orphan');
        const env: Env = { ...base, DOLT_ROOT_PATH: join(scratch, 'home') };
        await mkdir(join(scratch, 'home'), { recursive: true });
        await run('dolt', ['config', '--global', '--add', 'user.name', 'old-primary'], env, scratch);
        await run('dolt', ['config', '--global', '--add', 'user.email', 'old@primary'], env, scratch);
        await run('dolt', ['clone', `file://${cluster.remoteDir}/app`, 'app'], env, scratch);
        await run('dolt', ['sql', '-q', "INSERT INTO t VALUES (2, 'only the old primary had this')"], env, join(scratch, 'app'));
        await run('dolt', ['commit', '-am', 'a write the remote never got'], env, join(scratch, 'app'));
        await run('dolt', ['push', 'origin', `main:${orphan}`], env, join(scratch, 'app'));
        return [await primaryEnv()];
      },
      after: ([result]) => {
        expect(result.output).to.contain(`remotes/origin/${orphan}`);
      },
    },
    'orphans-inspect': {
      runs: async () => [{ ...(await primaryEnv()), ORPHAN: orphan }],
      after: ([result]) => {
        expect(result.output).to.contain('a write the remote never got').and.to.contain('only the old primary had this').and.to.match(/\tmodified\t/);
      },
    },
    'orphans-merge': {
      runs: async () => [{ ...(await primaryEnv()), ORPHAN: orphan }],
      after: async ([result]) => {
        expect(result.output).to.match(/not_on_remote\n0\n/);
        const now = await primary();
        const replica = await replicaOf();
        for (const node of [now, replica]) {
          await eventually(async () => (await queryNode<{ id: number }>(cluster, node, 'SELECT id FROM t ORDER BY id')).map((row) => row.id).join(',') === '1,2', { within: 20_000, what: `the orphan's row on ${node}` });
        }
      },
    },
    'orphans-delete': {
      runs: async () => [{ ...(await primaryEnv()), ORPHAN: orphan }],
      after: async () => {
        const now = await primary();
        await queryNode(cluster, now, "CALL dolt_fetch('--prune', 'origin')");
        const remote = await queryNode<{ name: string }>(cluster, now, 'SELECT name FROM dolt_remote_branches');
        expect(remote.map((b) => b.name)).to.include('remotes/origin/main').and.to.not.include(`remotes/origin/${orphan}`);
      },
    },
    'backup-check': {
      runs: async () => {
        const now = await primary();
        const metrics = `127.0.0.1:${cluster.agent(now).metricsPort}`;
        // A good sync that started after the orphan's merge, so the restore below holds it.
        const since = Date.now();
        await eventually(
          async () => {
            const text = await (await fetch(`http://${metrics}/metrics`)).text();
            const age = /^doltgate_agent_backup_last_good_sync_age_seconds\{[^}]*\} (\S+)$/m.exec(text);
            return age !== null && Number(age[1]) >= 0 && Number(age[1]) * 1000 < Date.now() - since - 1000;
          },
          { within: 30_000, what: `a good backup sync on ${now} after the merge` },
        );
        return [{ ...(await primaryEnv()), AGENT_METRICS: metrics }];
      },
      after: ([result]) => {
        expect(result.output).to.match(/^doltgate_agent_backup_last_good_sync_age_seconds\{/m);
        expect(result.output).to.contain('doltgate_backup').and.to.contain(`file://${backupDir()}/app`);
      },
    },
    'backup-restore': {
      runs: () => [{ RESTORE_DIR: join(dir, 'restore'), BACKUP_URL: `file://${backupDir()}/app` }],
      after: ([result]) => {
        expect(result.output).to.match(/row_count\s*\|?\s*\n[\s\S]*\b2\b/);
      },
    },
    'backup-to-new-remote': {
      runs: () => [{ RESTORE_DIR: join(dir, 'restore'), NEW_REMOTE: `file://${join(dir, 'new-remote')}` }],
      after: async () => {
        const check = join(dir, 'new-remote-check');
        await mkdir(check, { recursive: true });
        const env: Env = { ...base, DOLT_ROOT_PATH: join(dir, 'restore', '.home') };
        await run('dolt', ['clone', `file://${join(dir, 'new-remote')}/app`, 'app'], env, check);
        const out = await run('dolt', ['sql', '-r', 'csv', '-q', 'SELECT COUNT(*) AS n FROM t'], env, join(check, 'app'));
        expect(out.trim().split('\n').pop()).to.equal('2');
      },
    },
    'upgrade-check': {
      // The not-run `systemctl restart doltgate-agent@n3` on a replica.
      runs: async () => {
        await restartAgent(await replicaOf());
        return [{}];
      },
      after: ([result]) => {
        for (const agent of cluster.agents) expect(result.output).to.match(new RegExp(`\\n${agent.name}\\s+(primary|replica)\\s+\\S+\\s+healthy`));
      },
    },
    'upgrade-switchover': {
      runs: async () => {
        switchoverFrom = await primary();
        return [{ TARGET: await replicaOf() }];
      },
      after: async ([result]) => {
        expect(await primary()).to.equal(result.env.TARGET);
        // The not-run `systemctl restart doltgate-agent@n1` of the old primary, last.
        await restartAgent(switchoverFrom);
      },
    },
    'monitoring-check': {
      after: ([result]) => {
        expect(result.output).to.match(/SUCCESS: \S*prometheus\.yml is valid/).and.to.contain('Unit Testing:');
        expect(result.output).to.not.contain('FAILED');
      },
    },
  };

  before(async function () {
    this.timeout(120_000);
    dir = await tempDir('guide');
    await mkdir(join(dir, 'work'), { recursive: true });
    await mkdir(join(dir, 'home'), { recursive: true });
    cluster = await startLocalCluster({
      nodes: 3,
      controlToken: grpcToken,
      agentOverrides: {
        ha: { min_failover_interval_ms: 1000 },
        backup: { url: `file://${join(dir, 'backups')}/{database}`, interval_ms: 1000 },
      },
    });
    // `doltgate` and `dolt` on PATH, as the guide's install puts them.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    await writeFile(join(bin, 'doltgate'), `#!/bin/sh\nexec "${process.execPath}" "${join(repoRoot, 'dist', 'bin', 'doltgate.js')}" "$@"\n`);
    await chmod(join(bin, 'doltgate'), 0o755);
    await symlink(doltBinary(), join(bin, 'dolt'));
    base = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: join(dir, 'home'),
      NO_COLOR: '1',
      DOLTGATE_ETCD: cluster.etcd.endpoints.join(','),
      ...(cluster.etcd.auth === null ? {} : { DOLTGATE_ETCD_USER: cluster.etcd.auth.user, DOLTGATE_ETCD_PASSWORD: cluster.etcd.auth.password }),
      DOLTGATE_CLUSTER: cluster.cluster,
      DOLTGATE_TOKEN: grpcToken,
      DOLTGATE_HOME: repoRoot,
      APP_PASSWORD: appPassword,
      DOLT_USER: 'root',
    };
  });

  it('the test has a step for every doc-test block of the guide, and the guide a block for every step', () => {
    expect(blocks.map((block) => block.name).sort()).to.deep.equal(Object.keys(steps).sort());
  });

  for (const block of blocks) {
    it(`${block.name} (OPERATIONS.md line ${block.line})`, async function () {
      const step = steps[block.name];
      if (!step) throw new Error(`no step for doc-test ${block.name}`);
      const reason = step.skipUnless ? await step.skipUnless() : null;
      if (reason !== null) {
        // Shown as pending with its reason; nothing is pretended to have run.
        this.test!.title += ` (skipped: ${reason})`;
        this.skip();
      }
      const envs = step.runs ? await step.runs() : [{}];
      const results: RunResult[] = [];
      for (const overrides of envs) {
        const env = { ...base, ...overrides };
        const { code, output } = await bash(block.text, env, work());
        expect(code, `block ${block.name} with ${JSON.stringify(overrides)} exited ${code}:\n${output}`).to.equal(0);
        results.push({ env, code, output });
      }
      await step.after?.(results);
    });
  }
});
