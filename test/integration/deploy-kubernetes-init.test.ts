/**
 * The Kubernetes pods' init step, for real: deploy/kubernetes/templates.yaml's init-node.sh and
 * render-config.sh run with sh, the way the StatefulSet's init container runs them (same
 * environment variables, the pod name as the downward API gives it), for two pods against a
 * real file:// Dolt remote, with the real dolt binary. Then real agents start on what the script
 * left behind, coordinated by a real etcd, and the application user the script created logs in
 * on both nodes with the Secret's password.
 *
 * What the test changes, because it runs on one host and not in pods: the rendered agent.yaml's
 * listen addresses and ports (127.0.0.1 and free ports instead of 0.0.0.0 and fixed ports) and
 * the dolt binary's path. Everything else is the rendered file as is.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse, stringify } from 'yaml';
import { parseAgentConfig } from '../../agent/agent-config';
import { EtcdClusterStore } from '../../agent/store/etcd-cluster-store';
import { ManagedChild } from '../../common/child-process';
import { freePort } from '../../common/free-port';
import { expectKillRefused } from '../bed/app-user-checks';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { doltBinary, repoRoot } from '../bed/dolt-binary';
import { eventually } from '../bed/eventually';
import { startTestEtcd } from '../bed/etcd';

const backendPassword = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const grpcToken = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

function sh(script: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('sh', [script], { env, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('deploy/kubernetes init step (init-node.sh with real Dolt, then real agents)', function () {
  this.timeout(180_000);

  it('pod 1 waits for pod 0; pod 0 creates and pushes the databases; pod 1 clones them; both agents run on the result and the app user logs in', async () => {
    const dir = await tempDir('k8s-init');
    const templates = (parse(await readFile(join(repoRoot, 'deploy', 'kubernetes', 'templates.yaml'), 'utf8')) as { data: Record<string, string> }).data;
    const cluster = (parse(await readFile(join(repoRoot, 'deploy', 'kubernetes', 'cluster-config.yaml'), 'utf8')) as { data: Record<string, string> }).data;
    const tpl = join(dir, 'templates');
    await mkdir(tpl);
    for (const [name, text] of Object.entries(templates)) await writeFile(join(tpl, name), text);
    const etcd = await startTestEtcd();
    const remote = join(dir, 'remote');

    const podEnv = (pod: string): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      HOME: dir,
      DOLT: doltBinary(),
      POD_NAME: pod,
      POD_NAMESPACE: 'doltgate',
      DOLTGATE_NODE_DIR: join(dir, pod, 'node'),
      DOLTGATE_CONFIG_DIR: join(dir, pod, 'config'),
      DOLTGATE_TEMPLATES: tpl,
      DOLTGATE_CLUSTER: 'k8s-init',
      DOLTGATE_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      DOLTGATE_REMOTE_URL: `file://${remote}/{database}`,
      DOLTGATE_DATABASES: 'app inventory',
      DOLTGATE_APP_USER: cluster['app-user'],
      DOLTGATE_BACKEND_PASSWORD: backendPassword,
    });
    const init = (pod: string) => sh(join(tpl, 'init-node.sh'), podEnv(pod));

    // OrderedReady normally keeps dolt-1 from starting first; if it does, it must fail and retry.
    const early = await init('dolt-1');
    expect(early.code, early.output).to.equal(1);
    expect(early.output).to.contain('pod 0 creates it');
    expect(existsSync(join(dir, 'dolt-1', 'node', 'data', 'app')), 'no half-made database left behind').to.equal(false);

    const first = await init('dolt-0');
    expect(first.code, first.output).to.equal(0);
    expect(first.output).to.contain('app: created and pushed').and.to.contain('inventory: created and pushed');
    const second = await init('dolt-1');
    expect(second.code, second.output).to.equal(0);
    expect(second.output).to.contain('app: cloned').and.to.contain('inventory: cloned');
    const again = await init('dolt-1');
    expect(again.code, `a pod restart runs it again: ${again.output}`).to.equal(0);
    expect(again.output).to.contain('app: present');

    // The rendered agent.yaml as the agent will load it.
    const agents: Array<{ pod: string; sqlPort: number; metricsPort: number; process: ManagedChild }> = [];
    for (const pod of ['dolt-0', 'dolt-1']) {
      const rendered = await readFile(join(dir, pod, 'config', 'agent.yaml'), 'utf8');
      process.env.DOLTGATE_GRPC_TOKEN = grpcToken;
      const config = parseAgentConfig(rendered, join(dir, pod, 'config', 'agent.yaml'));
      delete process.env.DOLTGATE_GRPC_TOKEN;
      expect(config.name).to.equal(pod);
      expect(config.etcd.endpoints).to.deep.equal(etcd.endpoints);
      expect(config.dolt.nodeDir).to.equal(join(dir, pod, 'node'));
      expect(config.dolt.advertise.host).to.equal(`${pod}.dolt.doltgate.svc`);

      const sqlPort = await freePort();
      const grpcPort = await freePort();
      const metricsPort = await freePort();
      const local = parse(rendered) as Record<string, any>;
      local.dolt = { ...local.dolt, binary: doltBinary(), host: '127.0.0.1', port: sqlPort, advertise: `127.0.0.1:${sqlPort}` };
      local.grpc = `127.0.0.1:${grpcPort}`;
      local.grpc_advertise = `127.0.0.1:${grpcPort}`;
      local.metrics = `127.0.0.1:${metricsPort}`;
      const localFile = join(dir, pod, 'config', 'agent.local.yaml');
      await writeFile(localFile, stringify(local));
      const child = new ManagedChild({
        command: process.execPath,
        args: [join(repoRoot, 'dist', 'bin', 'doltgate.js'), 'agent', '--config', localFile],
        env: { ...process.env, DOLTGATE_GRPC_TOKEN: grpcToken },
        logFile: join(dir, pod, 'agent.log'),
      });
      await child.start();
      registerCleanup(() => child.stop(15_000).then(() => undefined));
      agents.push({ pod, sqlPort, metricsPort, process: child });
    }

    const store = new EtcdClusterStore({ endpoints: etcd.endpoints, cluster: 'k8s-init' });
    registerCleanup(() => store.close());
    await eventually(
      async () => {
        const snapshot = await store.snapshot();
        const topology = snapshot.topology?.value;
        if (topology?.state !== 'stable' || topology.primary !== 'dolt-0') throw new Error(`topology ${JSON.stringify(topology ?? null)}`);
        if (snapshot.members['dolt-0']?.role !== 'primary' || snapshot.members['dolt-1']?.role !== 'replica') throw new Error('roles not settled');
        return true;
      },
      { within: 60_000, interval: 250, what: 'dolt-0 primary (ha.initial_primary) and dolt-1 replica' },
    );

    // The probes' endpoint answers 200 on both.
    for (const agent of agents) expect((await fetch(`http://127.0.0.1:${agent.metricsPort}/healthz`)).status, `${agent.pod} /healthz`).to.equal(200);

    // The proxies' login: the app user with the Secret's password, on the primary and the replica.
    const connect = (port: number) => mysql.createConnection({ host: '127.0.0.1', port, user: cluster['app-user'], password: backendPassword, database: 'app', connectTimeout: 3000 });
    const primary = await connect(agents[0].sqlPort);
    const victim = await connect(agents[0].sqlPort);
    try {
      await primary.query('CREATE TABLE t (id INT PRIMARY KEY)');
      await primary.query('INSERT INTO t VALUES (1), (2)');
      await expectKillRefused(primary, victim);
    } finally {
      primary.destroy();
      victim.destroy();
    }
    await eventually(
      async () => {
        const replica = await connect(agents[1].sqlPort);
        try {
          const [rows] = await replica.query('SELECT COUNT(*) AS n FROM t');
          return Number((rows as Array<{ n: number }>)[0].n) === 2;
        } finally {
          replica.destroy();
        }
      },
      { within: 30_000, what: 'the rows on dolt-1, read as the app user' },
    );
    const wrong = await mysql.createConnection({ host: '127.0.0.1', port: agents[1].sqlPort, user: cluster['app-user'], password: 'not-the-password', connectTimeout: 3000 }).then(
      (connection) => {
        connection.destroy();
        return 'logged in';
      },
      (error: Error) => error.message,
    );
    expect(wrong, 'sanity: a wrong password is refused').to.match(/denied/i);
  });
});
