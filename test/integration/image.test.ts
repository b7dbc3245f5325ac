/**
 * The container image, for real. scripts/image.sh (what `npm run image` runs after the
 * bootstrap) builds doltgate/doltgate:<version>, or says it is up to date; then the image itself
 * runs, the way the Kubernetes manifests run it:
 *
 *   - its default command (the image's Entrypoint and Cmd) prints `doltgate --help`;
 *   - the StatefulSet's init step (templates.yaml init-node.sh, with `sh` and the image's dolt)
 *     and then its agent command (`doltgate agent --config ...`), against a real etcd started
 *     here: the agent becomes the primary (topology and member record in etcd), answers /healthz
 *     with 200, and its Dolt takes SQL from the application user the init step created;
 *   - the proxies' init step (render-config.sh, with hashes from the image's own
 *     `doltgate proxy hash-password`) and their proxy command: the application user writes and
 *     reads through it; on SIGTERM the proxy ends, and the agent stops its Dolt with it.
 *
 * Where the image runs: with podman when podman works on this machine (a private store in the
 * temp dir, host network), else in a chroot of the image's root file system unpacked by umoci,
 * as the image's user, with the environment and working directory of the image's config, /proc
 * mounted and a /dev of its own (a tmpfs with null, zero, full, random, urandom, tty).
 * DOLTGATE_IMAGE_RUNTIME=chroot or =podman picks one. What differs from a pod: the host's network
 * (so the rendered agent.yaml's listen addresses become 127.0.0.1 and free ports, as in
 * deploy-kubernetes-init.test.ts), the remote as file:// in the data volume.
 *
 * Cleanup: every process is stopped by its PID (ManagedChild); a podman container is removed by
 * its name, from the private store only; the temp dir is removed only once nothing under it is
 * mounted any more (a recursive delete must never walk into /proc or /dev).
 */

import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { chown, mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { parse, stringify } from 'yaml';
import { EtcdClusterStore } from '../../agent/store/etcd-cluster-store';
import { ManagedChild } from '../../common/child-process';
import { freePort } from '../../common/free-port';
import { registerCleanup, registerFailureReport } from '../bed/cleanup';
import { repoRoot } from '../bed/dolt-binary';
import { eventually } from '../bed/eventually';
import { startTestEtcd } from '../bed/etcd';
import { logTails } from '../bed/log-tails';

/** The container's /var/lib/doltgate: the image's home of its user, the pods' data volume. */
const dataMount = '/var/lib/doltgate';
const backendPassword = '5e4d3c2b1a0918273645f0e1d2c3b4a5';
const grpcToken = '9a8b7c6d5e4f30211203f4e5d6c7b8a9';
const appPassword = 'image-test-app-password';

interface RunSpec {
  /** Replaces the image's Entrypoint, like a Kubernetes container's `command`. */
  command?: string[];
  /** Replaces the image's Cmd, like `args`; the image's Cmd when both are absent. */
  args?: string[];
  env: Record<string, string>;
  logFile: string;
}

interface ImageRuntime {
  readonly kind: 'podman' | 'chroot';
  /** Host path of the container's /var/lib/doltgate, owned by the image's user. */
  readonly dataDir: string;
  /** Starts the image; the child's PID is the process to stop. */
  start(spec: RunSpec): Promise<ManagedChild>;
  /** Stops what is left and removes the temp dir; safe to call twice. */
  dispose(): Promise<void>;
}

interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { env: options.env ?? process.env, timeout: options.timeout ?? 120_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

async function runOrThrow(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.output.slice(-2000)}`);
  return result.output;
}

/** Runs scripts/image.sh with its progress lines on our output (a cold build takes minutes). */
function buildImage(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(repoRoot, 'scripts', 'image.sh')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const echo = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      process.stdout.write(text.replace(/^(?=.)/gm, '      '));
    };
    child.stdout.on('data', echo);
    child.stderr.on('data', echo);
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`scripts/image.sh exited ${code}:\n${tail}`))));
  });
}

/** The image's config (Entrypoint, Cmd), read from the OCI layout by tag. */
async function imageConfig(layout: string, tag: string): Promise<ImageConfig> {
  const blob = (digest: string) => join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`no tag ${tag} in ${layout}/index.json`);
  const manifest = JSON.parse(await readFile(blob(entry.digest), 'utf8')) as { config: { digest: string } };
  return (JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as { config: ImageConfig }).config;
}

/** Mount points at or under `dir`, deepest first (from /proc/self/mountinfo; octal escapes undone). */
async function mountsUnder(dir: string): Promise<string[]> {
  const lines = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n');
  const points = lines.map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  return points.filter((point) => point === dir || point.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** Unmounts everything under `dir`, then removes it; refuses to remove while a mount is left. */
async function unmountAndRemove(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    if ((await run('umount', [point])).code !== 0) await run('umount', ['--lazy', point]);
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`still mounted, so ${dir} is left in place: ${left.join(', ')}`);
  if (!process.env.DOLTGATE_KEEP_TEST_DIRS) await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
}

/** The image in a chroot of its root file system, as `umoci unpack` lays it out. */
async function chrootRuntime(dir: string, layout: string, tag: string, config: ImageConfig): Promise<ImageRuntime> {
  const bundle = join(dir, 'bundle');
  await runOrThrow('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle], { timeout: 300_000 });
  // The runtime spec umoci derives from the image config: user, env (HOME from /etc/passwd), cwd.
  const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { env: string[]; cwd: string; user: { uid: number; gid: number } } };
  const rootfs = join(bundle, 'rootfs');
  await runOrThrow('mount', ['-t', 'proc', 'proc', join(rootfs, 'proc')]);
  await runOrThrow('mount', ['-t', 'tmpfs', '-o', 'mode=0755,nosuid,size=1m', 'tmpfs', join(rootfs, 'dev')]);
  for (const [name, major, minor] of [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]] as const) {
    await runOrThrow('mknod', ['-m', '0666', join(rootfs, 'dev', name), 'c', String(major), String(minor)]);
  }
  await runOrThrow('ln', ['-s', '/proc/self/fd', join(rootfs, 'dev', 'fd')]);
  const { uid, gid } = spec.process.user;
  return {
    kind: 'chroot',
    dataDir: join(rootfs, dataMount),
    async start(request: RunSpec) {
      const argv = [...(request.command ?? config.Entrypoint ?? []), ...(request.args ?? (request.command ? [] : (config.Cmd ?? [])))];
      const env = [...spec.process.env, ...Object.entries(request.env).map(([key, value]) => `${key}=${value}`)];
      // chroot execs env, env execs the command: the PID stays the command's.
      const child = new ManagedChild({ command: 'chroot', args: [`--userspec=${uid}:${gid}`, rootfs, '/usr/bin/env', '-i', '-C', spec.process.cwd, ...env, ...argv], logFile: request.logFile });
      await child.start();
      return child;
    },
    dispose: () => unmountAndRemove(dir),
  };
}

/**
 * The image under podman, in a private store (vfs: no mounts) in the temp dir. Two settings this
 * kind of machine needs: no default ulimits (setting them needs CAP_SYS_RESOURCE) and runc when it
 * is installed (crun refuses hybrid cgroup hierarchies).
 */
async function podmanRuntime(dir: string, archive: string, imageName: string): Promise<ImageRuntime> {
  await writeFile(join(dir, 'containers.conf'), '[containers]\ndefault_ulimits = []\n');
  const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf') };
  const global = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  if ((await run('sh', ['-c', 'command -v runc'])).code === 0) global.push('--runtime', 'runc');
  const dataDir = join(dir, 'data');
  await mkdir(dataDir);
  await chown(dataDir, 10001, 10001);
  let containers = 0;
  const names: string[] = [];
  const runtime: ImageRuntime = {
    kind: 'podman',
    dataDir,
    async start(spec: RunSpec) {
      const name = `doltgate-image-test-${process.pid}-${++containers}`;
      names.push(name);
      const entry = spec.command ? ['--entrypoint', spec.command[0]] : [];
      const args = spec.command ? [...spec.command.slice(1), ...(spec.args ?? [])] : (spec.args ?? []);
      const envArgs = Object.entries(spec.env).flatMap(([key, value]) => ['--env', `${key}=${value}`]);
      const child = new ManagedChild({
        command: 'podman',
        args: [...global, 'run', '--rm', '--name', name, '--network', 'host', '--volume', `${dataDir}:${dataMount}`, ...envArgs, ...entry, imageName, ...args],
        env,
        logFile: spec.logFile,
      });
      await child.start();
      return child;
    },
    async dispose() {
      for (const name of names.splice(0)) await run('podman', [...global, 'rm', '--force', '--ignore', name], { env });
      await unmountAndRemove(dir);
    },
  };
  await runOrThrow('podman', [...global, 'load', '--quiet', '--input', archive], { env, timeout: 300_000 });
  return runtime;
}

/** Starts the image and waits for it to end; its output and exit code. */
async function runToEnd(runtime: ImageRuntime, spec: RunSpec, within = 120_000): Promise<{ code: number | null; output: string }> {
  const child = await runtime.start(spec);
  registerCleanup(() => child.stop(10_000).then(() => undefined));
  const timer = setTimeout(() => void child.stop(5_000), within);
  const exit = await child.waitForExit().finally(() => clearTimeout(timer));
  return { code: exit?.code ?? null, output: await readFile(spec.logFile, 'utf8') };
}

describe('container image (scripts/image.sh; in it: --help, the init steps, a real agent and proxy)', function () {
  this.timeout(300_000);
  let runtime: ImageRuntime | undefined;
  let logs = '';

  before(async function () {
    // A cold build (mmdebstrap from the mirror, npm ci, packing) takes a few minutes; warm, seconds.
    this.timeout(1_200_000);
    if (process.getuid?.() !== 0) this.skip();
    await buildImage();
    const version = (JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    const imageName = (await readFile(join(repoRoot, 'build', 'image', 'image-name'), 'utf8')).trim();
    expect(imageName).to.equal(`doltgate/doltgate:${version}`);
    const layout = join(repoRoot, 'build', 'image', 'oci');
    const archive = join(repoRoot, 'build', 'image', `doltgate-${version}.oci.tar`);
    const wanted = process.env.DOLTGATE_IMAGE_RUNTIME ?? 'auto';
    if (wanted !== 'chroot' && (await run('sh', ['-c', 'command -v podman'])).code === 0) {
      const dir = await mkdtemp(join(tmpdir(), 'doltgate-image-podman-'));
      try {
        const candidate = await podmanRuntime(dir, archive, imageName);
        registerCleanup(() => candidate.dispose());
        const probe = await runToEnd(candidate, { env: {}, logFile: join(dir, 'probe.log') });
        if (probe.code === 0 && probe.output.includes('usage: doltgate')) runtime = candidate;
        else {
          await candidate.dispose();
          if (wanted === 'podman') throw new Error(`podman cannot run the image here: ${probe.output.slice(-1000)}`);
          console.log(`      podman cannot run the image here, so a chroot instead: ${probe.output.trim().split('\n').pop()}`);
        }
      } catch (error) {
        await unmountAndRemove(dir);
        if (wanted === 'podman') throw error;
        console.log(`      podman cannot run the image here, so a chroot instead: ${(error as Error).message.split('\n')[0]}`);
      }
    } else if (wanted === 'podman') throw new Error('DOLTGATE_IMAGE_RUNTIME=podman, and podman is not on PATH');
    if (!runtime) {
      const dir = await mkdtemp(join(tmpdir(), 'doltgate-image-chroot-'));
      // Registered before anything is mounted, so a half-made chroot is taken down as well.
      registerCleanup(() => unmountAndRemove(dir));
      runtime = await chrootRuntime(dir, layout, version, await imageConfig(layout, version));
    }
    logs = join(runtime.dataDir, 'logs');
    await mkdir(logs);
    registerFailureReport(() => logTails(logs, 60));
    console.log(`      running the image with ${runtime.kind}`);
  });

  after(async () => {
    await runtime?.dispose();
  });

  it("its default command (the image's Entrypoint and Cmd) prints doltgate's usage", async () => {
    const help = await runToEnd(runtime as ImageRuntime, { env: {}, logFile: join(logs, 'help.log') });
    expect(help.code, help.output).to.equal(0);
    expect(help.output).to.contain('usage: doltgate <command> [options]');
    for (const command of ['proxy', 'agent', 'status', 'switchover', 'failover']) expect(help.output).to.match(new RegExp(`^  ${command} `, 'm'));
  });

  it("runs the manifests' init steps, agent and proxy: the agent becomes primary in a real etcd, the app user writes through the proxy, SIGTERM stops them", async () => {
    const image = runtime as ImageRuntime;
    const etcd = await startTestEtcd();
    const templates = (parse(await readFile(join(repoRoot, 'deploy', 'kubernetes', 'templates.yaml'), 'utf8')) as { data: Record<string, string> }).data;
    const cluster = (parse(await readFile(join(repoRoot, 'deploy', 'kubernetes', 'cluster-config.yaml'), 'utf8')) as { data: Record<string, string> }).data;
    const host = (path: string) => join(image.dataDir, path);
    for (const sub of ['templates', 'config', 'remote']) await mkdir(host(sub), { recursive: true });
    for (const [name, text] of Object.entries(templates)) await writeFile(host(join('templates', name)), text);
    await runOrThrow('chown', ['-R', '10001:10001', image.dataDir]);

    // The StatefulSet's init container: its command and environment (dolt.yaml), in the image.
    const init = await runToEnd(image, {
      command: ['sh', `${dataMount}/templates/init-node.sh`],
      env: {
        POD_NAME: 'dolt-0',
        POD_NAMESPACE: 'doltgate',
        DOLTGATE_NODE_DIR: `${dataMount}/node`,
        DOLTGATE_CONFIG_DIR: `${dataMount}/config`,
        DOLTGATE_TEMPLATES: `${dataMount}/templates`,
        DOLTGATE_CLUSTER: 'image-test',
        DOLTGATE_ETCD_ENDPOINTS: etcd.endpoints.join(','),
        DOLTGATE_REMOTE_URL: `file://${dataMount}/remote/{database}`,
        DOLTGATE_DATABASES: cluster.databases,
        DOLTGATE_APP_USER: cluster['app-user'],
        DOLTGATE_BACKEND_PASSWORD: backendPassword,
      },
      logFile: join(logs, 'init-node.log'),
    });
    expect(init.code, init.output).to.equal(0);
    expect(init.output).to.contain(`${cluster.databases}: created and pushed`).and.to.contain('users doltgate@localhost');

    // The rendered agent.yaml, on loopback and free ports instead of the pod's 0.0.0.0 and fixed ones.
    const rendered = parse(await readFile(host('config/agent.yaml'), 'utf8')) as Record<string, any>;
    expect(rendered.dolt.binary).to.equal('/usr/local/bin/dolt');
    const [sqlPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    rendered.dolt = { ...rendered.dolt, host: '127.0.0.1', port: sqlPort, advertise: `127.0.0.1:${sqlPort}` };
    rendered.grpc = `127.0.0.1:${grpcPort}`;
    rendered.grpc_advertise = rendered.grpc;
    rendered.metrics = `127.0.0.1:${metricsPort}`;
    await writeFile(host('config/agent.local.yaml'), stringify(rendered));
    await chown(host('config/agent.local.yaml'), 10001, 10001);

    const agent = await image.start({ command: ['doltgate', 'agent', '--config', `${dataMount}/config/agent.local.yaml`], env: { DOLTGATE_GRPC_TOKEN: grpcToken }, logFile: join(logs, 'agent.log') });
    registerCleanup(() => agent.stop(20_000).then(() => undefined));
    const store = new EtcdClusterStore({ endpoints: etcd.endpoints, cluster: 'image-test' });
    registerCleanup(() => store.close());
    await eventually(
      async () => {
        if (!agent.running) throw new Error(`the agent exited: ${JSON.stringify(agent.lastExit)}`);
        const snapshot = await store.snapshot();
        const topology = snapshot.topology?.value;
        if (topology?.state !== 'stable' || topology.primary !== 'dolt-0') throw new Error(`topology ${JSON.stringify(topology ?? null)}`);
        if (snapshot.members['dolt-0']?.role !== 'primary') throw new Error(`member record ${JSON.stringify(snapshot.members['dolt-0'] ?? null)}`);
        return true;
      },
      { within: 90_000, interval: 250, what: 'dolt-0 (the agent in the image) primary in etcd' },
    );
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, '/healthz').to.equal(200);

    const connect = () => mysql.createConnection({ host: '127.0.0.1', port: sqlPort, user: cluster['app-user'], password: backendPassword, database: cluster.databases, connectTimeout: 3000 });
    const app = await connect();
    try {
      await app.query('CREATE TABLE t (id INT PRIMARY KEY)');
      await app.query('INSERT INTO t VALUES (1)');
      const [rows] = await app.query('SELECT dolt_version() AS version, COUNT(*) AS n FROM t');
      const [row] = rows as Array<{ version: string; n: number }>;
      expect(row.version).to.match(/^\d+\.\d+\.\d+$/);
      expect(Number(row.n)).to.equal(1);
    } finally {
      app.destroy();
    }

    // The proxies' init container (render-config.sh) with hashes from the image's own
    // `doltgate proxy hash-password`, then their container, on loopback and free ports.
    await writeFile(host('app-password'), appPassword);
    const hashes = await runToEnd(image, { command: ['sh', '-c', `doltgate proxy hash-password < ${dataMount}/app-password`], env: {}, logFile: join(logs, 'hash-password.log') });
    expect(hashes.code, hashes.output).to.equal(0);
    const hash = (key: string) => (new RegExp(`^${key}: "([^"]+)"$`, 'm').exec(hashes.output) ?? [])[1] ?? '';
    const render = await runToEnd(image, {
      command: ['sh', `${dataMount}/templates/render-config.sh`, `${dataMount}/templates/proxy.yaml`, `${dataMount}/config/proxy.yaml`],
      env: {
        DOLTGATE_CLUSTER: 'image-test',
        DOLTGATE_ETCD_ENDPOINTS: etcd.endpoints.join(','),
        DOLTGATE_APP_USER: cluster['app-user'],
        PROXY_APP_NATIVE_HASH: hash('native_password_hash'),
        PROXY_APP_CACHING_SHA2_HASH: hash('caching_sha2_hash'),
      },
      logFile: join(logs, 'render-config.log'),
    });
    expect(render.code, render.output).to.equal(0);
    const proxyConfig = parse(await readFile(host('config/proxy.yaml'), 'utf8')) as Record<string, any>;
    const [proxyPort, proxyMetricsPort] = [await freePort(), await freePort()];
    proxyConfig.listen = { ...proxyConfig.listen, host: '127.0.0.1', port: proxyPort };
    proxyConfig.metrics = { ...proxyConfig.metrics, host: '127.0.0.1', port: proxyMetricsPort };
    await writeFile(host('config/proxy.local.yaml'), stringify(proxyConfig));
    await chown(host('config/proxy.local.yaml'), 10001, 10001);
    const proxy = await image.start({ command: ['doltgate', 'proxy', '--config', `${dataMount}/config/proxy.local.yaml`], env: { DOLTGATE_BACKEND_PASSWORD: backendPassword }, logFile: join(logs, 'proxy.log') });
    registerCleanup(() => proxy.stop(15_000).then(() => undefined));
    const rows = await eventually(
      async () => {
        if (!proxy.running) throw new Error(`the proxy exited: ${JSON.stringify(proxy.lastExit)}`);
        const client = await mysql.createConnection({ host: '127.0.0.1', port: proxyPort, user: cluster['app-user'], password: appPassword, database: cluster.databases, connectTimeout: 3000 });
        try {
          await client.query('INSERT INTO t VALUES (2)');
          const [result] = await client.query('SELECT COUNT(*) AS n FROM t');
          return Number((result as Array<{ n: number }>)[0].n);
        } finally {
          client.destroy();
        }
      },
      { within: 60_000, interval: 500, what: 'a write and a read as the app user through the proxy in the image' },
    );
    expect(rows).to.equal(2);
    expect((await fetch(`http://127.0.0.1:${proxyMetricsPort}/healthz`)).status, 'the proxy /healthz').to.equal(200);
    const proxyExit = await proxy.stop(15_000);
    expect(proxyExit?.signal ?? null, `the proxy ended by itself on SIGTERM: ${JSON.stringify(proxyExit)}`).to.not.equal('SIGKILL');

    // SIGTERM, as the kubelet sends it: the agent stops its Dolt, then itself.
    const exit = await agent.stop(20_000);
    expect(exit?.signal ?? null, `the agent ended by itself on SIGTERM, not by the SIGKILL after 20 s: ${JSON.stringify(exit)}`).to.not.equal('SIGKILL');
    const after = await connect().then(
      (connection) => {
        connection.destroy();
        return 'connected';
      },
      (error: Error & { code?: string }) => error.code ?? error.message,
    );
    expect(after, "Dolt is gone with its agent").to.equal('ECONNREFUSED');
    expect(await readdir(host('node/data'))).to.include(cluster.databases);
  });
});
