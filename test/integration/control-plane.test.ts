/**
 * The control plane end to end against a real etcd: two agents' control servers (no HA loop)
 * over one EtcdClusterStore, a cluster seeded through the store API, and the CLI's runCli
 * functions run exactly as `doltgate <command>` would run them, output captured.
 *
 * Seeded cluster `cp` at epoch 7: a primary (holds the leader key), b healthy replica, c replica
 * with nofailover, d unhealthy replica, e in the topology with no live agent. a and b serve the
 * control API (their member records carry the `grpc` address); both want the token.
 *
 * Where an agent would execute an op, the test plays the executor: it updates `ops/<id>` by
 * compare-and-swap as the agent runtime does and waits for the CLI to print each change.
 */

import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startControlServer, type ControlServer } from '../../agent/control/control-server';
import { haConfig } from '../../agent/ha/config';
import { EtcdClusterStore } from '../../agent/store/etcd-cluster-store';
import type { LeaseHandle, Versioned } from '../../agent/store/cluster-store';
import { memoryIo } from '../../cli/cli-io';
import * as audit from '../../cli/audit';
import * as failover from '../../cli/failover';
import * as history from '../../cli/history';
import * as pause from '../../cli/pause';
import * as resume from '../../cli/resume';
import * as status from '../../cli/status';
import * as switchover from '../../cli/switchover';
import { silentLogger } from '../../common/logger';
import type { HistoryRecord, MemberRecord, OperationRecord, OperationStep, Topology } from '../../proto';
import { freePort } from '../../common/free-port';
import type { EtcdCluster } from '../../sandbox/etcd-cluster';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { startTestEtcd } from '../bed/etcd';
import { eventually } from '../bed/eventually';

const cluster = 'cp';
const token = 'sekret-token';
const config = haConfig();

/** stdout as lines (one write may hold several). */
function lines(io: ReturnType<typeof memoryIo>): string[] {
  return io.stdout.join('\n').split('\n');
}

type Run = (argv: string[], io?: ReturnType<typeof memoryIo>, env?: Record<string, string | undefined>) => Promise<number>;

function member(name: string, grpc: string | null, extra: Partial<MemberRecord> = {}, health: Partial<MemberRecord['health']> = {}): MemberRecord {
  const now = new Date().toISOString();
  return {
    name,
    sql: { host: '127.0.0.1', port: 3300 + name.charCodeAt(0) - 96 },
    grpc,
    role: 'replica',
    epoch: 7,
    health: { healthy: true, consecutiveFailures: 0, lastCheckAt: now, sqlLatencyMs: 1, lastError: null, hostReachable: true, ...health },
    heads: {},
    remoteHeads: {},
    commitsNotOnRemote: 0,
    commitsBehindRemote: 0,
    priority: 100,
    nofailover: false,
    backup: null,
    updatedAt: now,
    ...extra,
  };
}

describe('control plane: gRPC API and CLI (real etcd)', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let store: EtcdClusterStore;
  let lease: LeaseHandle;
  let serverA: ControlServer;
  let serverB: ControlServer;
  let addressA: string;
  let addressB: string;
  let base: string[];

  async function cli(run: Run, args: string[], withBase = true): Promise<{ code: number; io: ReturnType<typeof memoryIo> }> {
    const io = memoryIo();
    // An empty environment: DOLTGATE_* of whoever runs the tests must not leak in.
    const code = await run([...args, ...(withBase ? base : [])], io, {});
    return { code, io };
  }

  async function opFor(target: string, state: OperationRecord['state']): Promise<Versioned<OperationRecord>> {
    return eventually(
      async () => {
        const snapshot = await store.snapshot();
        const found = snapshot.ops.find((op) => op.value.target === target && op.value.state === state);
        if (found === undefined) throw new Error(`no op to ${target} in state ${state} (ops: ${snapshot.ops.map((op) => `${op.value.id} ${op.value.state}`).join(', ') || 'none'})`);
        return found;
      },
      { within: 10_000, what: `an op to ${target} in state ${state}` },
    );
  }

  before(async () => {
    etcd = await startTestEtcd(1);
    store = new EtcdClusterStore({ endpoints: etcd.endpoints, cluster });
    registerCleanup(() => store.close());
    const common = { host: '127.0.0.1', port: 0, store, haConfig: config, token, logger: silentLogger, watchPollMs: 50 };
    serverA = await startControlServer({ ...common, agentName: 'a', localStatus: () => ({ lastDecision: { action: 'renew-lease', reason: 'primary a holds the leader key and is healthy', waitCode: null } }) });
    registerCleanup(() => serverA.stop());
    serverB = await startControlServer({ ...common, agentName: 'b', localStatus: () => ({ lastDecision: null }) });
    registerCleanup(() => serverB.stop());
    addressA = `127.0.0.1:${serverA.port}`;
    addressB = `127.0.0.1:${serverB.port}`;
    base = ['--etcd', etcd.endpoints.join(','), '--cluster', cluster];

    lease = await store.grantLease(600_000);
    await store.putMember(member('a', addressA, {
      role: 'primary', commitsNotOnRemote: 2,
      heads: { app: { main: 'h1' }, orders: { main: 'h2' } }, notOnRemoteByDatabase: { app: 0, orders: 2 }, databasesWithoutRemote: [],
    }), lease);
    await store.putMember(member('b', addressB, { priority: 90, commitsBehindRemote: 1 }), lease);
    await store.putMember(member('c', null, { nofailover: true }), lease);
    await store.putMember(member('d', null, {}, { healthy: false, consecutiveFailures: 4, lastError: 'connection refused' }), lease);
    const nodes: Topology['nodes'] = {};
    for (const name of ['a', 'b', 'c', 'd', 'e']) nodes[name] = { sql: { host: '127.0.0.1', port: 3300 + name.charCodeAt(0) - 96 }, role: name === 'a' ? 'primary' : 'replica' };
    await store.casTopology({ epoch: 7, state: 'stable', primary: 'a', nodes, reason: 'seeded by the test', at: new Date().toISOString() }, null);
    expect(await store.acquireLeader('a', lease)).to.equal(true);
  });

  it('status --json reports the cluster field by field', async () => {
    const { code, io } = await cli(status.runCli, ['--json']);
    expect(code, io.text()).to.equal(0);
    const json = JSON.parse(io.stdout.join('\n')) as status.StatusJson;
    expect(json).to.include({ cluster, epoch: 7, state: 'stable', primary: 'a', leader: 'a', paused: false, pause: null, answeredBy: 'a', topologyReason: 'seeded by the test' });
    expect(json.lastDecision).to.deep.equal({ agent: 'a', action: 'renew-lease', reason: 'primary a holds the leader key and is healthy', waitCode: null });
    expect(json.nodes.map((node) => node.name)).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(json.nodes[0]).to.deep.equal({
      name: 'a', sql: '127.0.0.1:3301', role: 'primary', live: true, healthy: true, consecutiveFailures: 0, lastError: null,
      commitsNotOnRemote: 2, commitsBehindRemote: 0, priority: 100, nofailover: false, grpc: addressA, epoch: 7,
      databases: [{ name: 'app', commitsNotOnRemote: 0, hasRemote: true }, { name: 'orders', commitsNotOnRemote: 2, hasRemote: true }],
    });
    expect(json.nodes[1]).to.include({ role: 'replica', healthy: true, priority: 90, commitsBehindRemote: 1, grpc: addressB });
    expect(json.nodes[2]).to.include({ nofailover: true, grpc: null });
    expect(json.nodes[3]).to.include({ healthy: false, consecutiveFailures: 4, lastError: 'connection refused' });
    expect(json.nodes[4]).to.deep.equal({
      name: 'e', sql: '127.0.0.1:3305', role: 'replica', live: false, healthy: false, consecutiveFailures: 0, lastError: null,
      commitsNotOnRemote: 0, commitsBehindRemote: 0, priority: 0, nofailover: false, grpc: null, epoch: 0, databases: [],
    });
    expect(json.operations).to.deep.equal([]);
  });

  it('status prints a table a person can read', async () => {
    const { code, io } = await cli(status.runCli, []);
    expect(code).to.equal(0);
    const text = io.stdout.join('\n');
    expect(text).to.contain(`cluster ${cluster}  epoch 7  state stable  primary a  leader a`);
    expect(text).to.contain('decision of a: renew-lease: primary a holds the leader key and is healthy');
    expect(text).to.match(/\nd\s+replica\s+127\.0\.0\.1:3304\s+unhealthy\s+4\s/);
    expect(text).to.contain('d: last error: connection refused');
  });

  it('tries the agents in turn: an unreachable one is skipped', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const { code, io } = await cli(status.runCli, ['--agent', `${dead},${addressB}`, '--json'], false);
    expect(code, io.text()).to.equal(0);
    expect(JSON.parse(io.stdout.join('\n'))).to.include({ answeredBy: 'b', lastDecision: null });
  });

  it('pause needs the token: without it or with a wrong one, exit 2 and nothing written', async () => {
    for (const args of [['--reason', 'x'], ['--reason', 'x', '--token', 'wrong']]) {
      const { code, io } = await cli(pause.runCli, args);
      expect(code, io.text()).to.equal(2);
      expect(io.stderr[0]).to.match(/^doltgate pause: pause needs the agents' token .*: (none was given|the one given is wrong)$/);
    }
    expect((await store.snapshot()).paused).to.equal(null);
  });

  it('pause and resume are written to etcd and shown by status', async () => {
    const paused = await cli(pause.runCli, ['--reason', 'upgrading dolt', '--token', token]);
    expect(paused.code, paused.io.text()).to.equal(0);
    expect(lines(paused.io)[0]).to.match(/^cluster cp paused by .+ via a at .+: upgrading dolt$/);
    const inEtcd = (await store.snapshot()).paused;
    expect(inEtcd?.reason).to.equal('upgrading dolt');
    expect(inEtcd?.by).to.match(/@.+ via a$/);

    const shown = await cli(status.runCli, ['--json']);
    const json = JSON.parse(shown.io.stdout.join('\n')) as status.StatusJson;
    expect(json.paused).to.equal(true);
    expect(json.pause).to.deep.equal(inEtcd);

    const resumed = await cli(resume.runCli, ['--token', token, '--json']);
    expect(resumed.code, resumed.io.text()).to.equal(0);
    expect(JSON.parse(resumed.io.stdout.join('\n'))).to.deep.equal({ cluster, paused: false, pause: null, answeredBy: 'a' });
    expect((await store.snapshot()).paused).to.equal(null);
  });

  it('switchover --dry-run prints the plan, needs no token and writes nothing', async () => {
    const { code, io } = await cli(switchover.runCli, ['--to', 'b', '--dry-run']);
    expect(code, io.text()).to.equal(0);
    expect(lines(io)[0]).to.match(/^dry run \(answered by a\): switchover \(dry run\) from a to b at epoch 8: a fences/);
    expect(lines(io).slice(2).map((line) => line.trim().split(/\s+/).slice(1).join(' '))).to.deep.equal([
      'a fence', 'b disable-read-only', 'b recover', 'b enable-push-on-write', 'b reroute',
    ]);
    expect((await store.snapshot()).ops).to.deep.equal([]);
  });

  const refusals: Array<{ name: string; run: Run; args: string[]; code: number; message: RegExp }> = [
    { name: 'unknown node: exit 5', run: switchover.runCli, args: ['--to', 'zz', '--dry-run'], code: 5, message: /^doltgate switchover: unknown node "zz": cluster cp has nodes a, b, c, d, e$/ },
    { name: 'target with nofailover: exit 3 with the reason', run: switchover.runCli, args: ['--to', 'c', '--dry-run'], code: 3, message: /: switchover \(dry run\) refused: target c has nofailover/ },
    { name: 'unhealthy target: exit 3 with the reason', run: switchover.runCli, args: ['--to', 'd', '--dry-run'], code: 3, message: /refused: .*target d is unhealthy \(4 failed checks: connection refused\); use --force/ },
    { name: 'target without a live agent: exit 3', run: switchover.runCli, args: ['--to', 'e', '--dry-run'], code: 3, message: /refused: .*target e has no live agent/ },
    { name: 'failover from a healthy primary without --force: exit 3', run: failover.runCli, args: ['--to', 'b', '--dry-run'], code: 3, message: /use switchover, or --force/ },
  ];
  for (const row of refusals) {
    it(`dry-run refusal, ${row.name}`, async () => {
      const { code, io } = await cli(row.run, row.args);
      expect(code, io.text()).to.equal(row.code);
      expect(io.stderr[0]).to.match(row.message);
    });
  }

  it('while paused, a failover without a target is refused; naming one is a person’s choice and runs', async () => {
    expect((await cli(pause.runCli, ['--token', token])).code).to.equal(0);
    try {
      const unnamed = await cli(failover.runCli, ['--force', '--dry-run', '--json']);
      expect(unnamed.code, unnamed.io.text()).to.equal(3);
      expect(unnamed.io.stderr[0]).to.match(/^doltgate failover: failover \(dry run\) refused: the cluster is paused: name a target \(--to <node>\)/);
      expect(JSON.parse(unnamed.io.stdout[0])).to.deep.include({ error: { exitCode: 3, kind: 'refused', message: unnamed.io.stderr[0].replace('doltgate failover: ', '') } });
      const named = await cli(failover.runCli, ['--to', 'b', '--force', '--dry-run', '--json']);
      expect(named.code, named.io.text()).to.equal(0);
      expect(JSON.parse(named.io.stdout.join('\n'))).to.include({ dryRun: true, opId: null, kind: 'failover', target: 'b', candidate: 'b', executor: 'a', epoch: 8 });
    } finally {
      expect((await cli(resume.runCli, ['--token', token])).code).to.equal(0);
    }
  });

  it('switchover writes ops/<id> pending, then prints each step live as the executor reports it, and exits 0', async () => {
    const io = memoryIo();
    const running = switchover.runCli(['--to', 'b', '--drain-timeout', '2500', '--token', token, ...base], io, {});
    const pending = await opFor('b', 'pending');
    expect(pending.value).to.include({ kind: 'switchover', target: 'b', force: false, drainTimeoutMs: 2500, state: 'pending', executor: null, epoch: null });
    expect(pending.value.requestedBy).to.match(/@.+ via a$/);
    expect(pending.value.reason).to.match(new RegExp(`^switchover ${pending.value.id} from a to b at epoch 8`));
    expect(pending.value.steps).to.deep.equal([]);

    // The executor's part: claim, then report every step, each write a CAS on the last revision.
    let op = pending.value;
    let revision = pending.modRevision;
    const report = async (next: Partial<OperationRecord>, shown: RegExp): Promise<void> => {
      op = { ...op, ...next };
      revision = await store.putOperation(op, revision);
      await eventually(() => io.stdout.some((line) => shown.test(line)), { within: 10_000, what: `the CLI printing ${shown}` });
    };
    const at = (): string => new Date().toISOString();
    const stepsDone: OperationStep[] = [];
    // The CLI shows the op's state from when it starts watching: let it see "pending" first.
    await eventually(() => io.stdout.some((line) => / pending: waiting for an agent to claim it$/.test(line)), { within: 10_000, what: 'the CLI printing the pending op' });
    await report({ state: 'running', executor: 'a' }, /op \S+ running on a$/);
    for (const name of ['fence', 'disable-read-only', 'recover', 'enable-push-on-write', 'reroute']) {
      const started = at();
      await report({ steps: [...stepsDone, { name, state: 'running', startedAt: started, endedAt: null, detail: '' }] }, new RegExp(`  ${name}\\s+running\\s+on a$`));
      stepsDone.push({ name, state: 'done', startedAt: started, endedAt: at(), detail: `${name} ok` });
      if (name !== 'reroute') await report({ steps: [...stepsDone] }, new RegExp(`  ${name}\\s+done\\s+.*on a: ${name} ok$`));
    }
    op = { ...op, steps: [...stepsDone], state: 'succeeded', epoch: 8, reason: 'b is primary at epoch 8' };
    await store.putOperation(op, revision);

    expect(await running, io.text()).to.equal(0);
    // Without the clock, the durations (they vary) and the executor column.
    const events = io.stdout.slice(1).map((line) => line.replace(/^\d\d:\d\d:\d\d {2}/, '').replace(/\s+/g, ' ').replace(/ on a.*$/, '').replace(/ \d+(\.\d)? m?s$/, ''));
    expect(io.stdout[0]).to.match(new RegExp(`^switchover op ${op.id} requested through agent a: switchover ${op.id} from a to b`));
    expect(events).to.deep.equal([
      `op ${op.id} pending: waiting for an agent to claim it`,
      `op ${op.id} running`,
      'fence running', 'fence done',
      'disable-read-only running', 'disable-read-only done',
      'recover running', 'recover done',
      'enable-push-on-write running', 'enable-push-on-write done',
      'reroute running', 'reroute done',
      `op ${op.id} succeeded at epoch 8: b is primary at epoch 8`,
    ]);

    const shown = JSON.parse((await cli(status.runCli, ['--json'])).io.stdout.join('\n')) as status.StatusJson;
    expect(shown.operations[0]).to.include({ id: op.id, state: 'succeeded', epoch: 8, executor: 'a' });
  });

  it('a second request while an op is pending is refused; --no-wait --json returns the op id', async () => {
    const first = await cli(switchover.runCli, ['--to', 'b', '--no-wait', '--json', '--token', token]);
    expect(first.code, first.io.text()).to.equal(0);
    const written = JSON.parse(first.io.stdout.join('\n')) as { opId: string; dryRun: boolean; executor: string };
    expect(written).to.include({ dryRun: false, executor: 'a' });
    const pending = await opFor('b', 'pending');
    expect(pending.value.id).to.equal(written.opId);

    const second = await cli(switchover.runCli, ['--to', 'b', '--token', token]);
    expect(second.code, second.io.text()).to.equal(3);
    expect(second.io.stderr[0]).to.contain(`switchover ${written.opId} to b is pending`);

    await store.putOperation({ ...pending.value, state: 'refused', reason: 'refused by the test' }, pending.modRevision);
  });

  it('an op the executor fails exits 1 with its reason', async () => {
    const io = memoryIo();
    const running = failover.runCli(['--to', 'b', '--force', '--token', token, ...base], io, {});
    const pending = await opFor('b', 'pending');
    const started = new Date().toISOString();
    await store.putOperation(
      { ...pending.value, state: 'failed', executor: 'b', reason: 'recover failed: remote unreachable', steps: [{ name: 'recover', state: 'failed', startedAt: started, endedAt: started, detail: 'remote unreachable' }] },
      pending.modRevision,
    );
    expect(await running, io.text()).to.equal(1);
    expect(io.stdout.some((line) => /recover\s+failed\s+0 ms\s+on b: remote unreachable$/.test(line)), io.text()).to.equal(true);
    expect(io.stderr).to.deep.equal([`doltgate failover: op ${pending.value.id} failed: recover failed: remote unreachable`]);
  });

  it('a watch moves to the next agent when its agent stops mid-operation, and prints nothing twice', async () => {
    const leaving = await startControlServer({
      host: '127.0.0.1', port: 0, store, haConfig: config, token, logger: silentLogger, watchPollMs: 50, agentName: 'x', localStatus: () => ({ lastDecision: null }),
    });
    registerCleanup(() => leaving.stop());
    const io = memoryIo();
    const running = switchover.runCli(['--to', 'b', '--token', token, '--agent', `127.0.0.1:${leaving.port},${addressB}`], io, {});
    const pending = await opFor('b', 'pending');
    expect(pending.value.requestedBy).to.match(/ via x$/);
    await eventually(() => io.stdout.some((line) => / pending: /.test(line)), { within: 10_000, what: 'the pending line' });
    await leaving.stop();
    const started = new Date().toISOString();
    await store.putOperation(
      { ...pending.value, state: 'succeeded', executor: 'a', epoch: 8, reason: 'done', steps: [{ name: 'fence', state: 'done', startedAt: started, endedAt: started, detail: '' }] },
      pending.modRevision,
    );
    expect(await running, io.text()).to.equal(0);
    const pendingLines = io.stdout.filter((line) => / pending: /.test(line));
    expect(pendingLines, 'the pending state, reported again by b, is printed once').to.have.length(1);
    expect(io.stdout[io.stdout.length - 1]).to.match(new RegExp(`op ${pending.value.id} succeeded at epoch 8: done$`));
  });

  it('history lists records newest first, with steps and orphaned branches', async () => {
    const record = (epoch: number, kind: HistoryRecord['kind'], orphaned: string[]): HistoryRecord => ({
      epoch, kind, reason: `${kind} at ${epoch}`, fromPrimary: 'a', candidate: 'b', handOver: kind === 'switchover', opId: null, takeoverFrom: null,
      startedAt: '2024-05-01T12:00:00.000Z', endedAt: '2024-05-01T12:00:02.000Z', outcome: 'succeeded',
      steps: [{ name: 'fence', state: 'done', startedAt: '2024-05-01T12:00:00.000Z', endedAt: '2024-05-01T12:00:00.100Z', durationMs: 100, executor: 'a', detail: 'fenced' }],
      orphanedBranches: orphaned,
    });
    await store.putHistory(record(5, 'failover', ['doltgate/orphaned/4/main']));
    await store.putHistory(record(6, 'switchover', []));

    const json = await cli(history.runCli, ['--json']);
    expect(json.code, json.io.text()).to.equal(0);
    const parsed = JSON.parse(json.io.stdout.join('\n')) as { cluster: string; records: history.HistoryJson[] };
    expect(parsed.cluster).to.equal(cluster);
    expect(parsed.records.map((r) => `${r.epoch} ${r.kind}`)).to.deep.equal(['6 switchover', '5 failover']);
    expect(parsed.records[1]).to.include({ fromPrimary: 'a', candidate: 'b', outcome: 'succeeded', durationMs: 2000, opId: null });
    expect(parsed.records[1].steps).to.deep.equal([{ name: 'fence', state: 'done', startedAt: '2024-05-01T12:00:00.000Z', endedAt: '2024-05-01T12:00:00.100Z', durationMs: 100, executor: 'a', detail: 'fenced' }]);
    expect(parsed.records[1].orphanedBranches).to.deep.equal(['doltgate/orphaned/4/main']);

    const limited = await cli(history.runCli, ['--limit', '1']);
    expect(limited.code).to.equal(0);
    expect(limited.io.stdout.join('\n')).to.match(/^epoch 6 {2}switchover {2}succeeded {2}a -> b/);
    expect(limited.io.stdout.join('\n')).not.to.contain('epoch 5');

    const text = (await cli(history.runCli, [])).io.stdout.join('\n');
    expect(text).to.contain('  orphaned branches: doltgate/orphaned/4/main');
  });

  it('unreachable etcd: exit 4 with a message naming it', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const { code, io } = await cli(status.runCli, ['--etcd', url, '--timeout', '1000'], false);
    expect(code).to.equal(4);
    const port = url.split(':')[2];
    expect(io.stderr[0]).to.equal(`doltgate status: cannot reach etcd at ${url}: connection refused (ECONNREFUSED 127.0.0.1:${port})`);
  });

  it('an agent cut off from etcd answers UNAVAILABLE: exit 4 when no other agent answers', async () => {
    const deadStore = new EtcdClusterStore({ endpoints: [`http://127.0.0.1:${await freePort()}`], cluster, callTimeoutMs: 500 });
    registerCleanup(() => deadStore.close());
    const cutOff = await startControlServer({ host: '127.0.0.1', port: 0, store: deadStore, agentName: 'x', haConfig: config, token, localStatus: () => ({ lastDecision: null }), logger: silentLogger });
    registerCleanup(() => cutOff.stop());
    const { code, io } = await cli(status.runCli, ['--agent', `127.0.0.1:${cutOff.port}`], false);
    expect(code).to.equal(4);
    expect(io.stderr[0]).to.match(/^doltgate status: no agent answered: 127\.0\.0\.1:\d+: etcd unavailable while trying to read the cluster state/);
  });

  it('TLS: the CLI verifies the agent with --tls-ca; mTLS refuses a client without a certificate', async function () {
    const dir = await tempDir('control-tls');
    const ssl = (...args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=doltgate test CA');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const name of ['server', 'client']) {
      ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', ...(name === 'server' ? ['-extfile', 'san.ext'] : []));
    }
    const file = (name: string): string => join(dir, name);
    const common = { host: '127.0.0.1', port: 0, store, haConfig: config, localStatus: () => ({ lastDecision: null }), logger: silentLogger };
    const tls = await startControlServer({ ...common, agentName: 'tls', token, tls: { cert: file('server.pem'), key: file('server.key') } });
    registerCleanup(() => tls.stop());
    const mtls = await startControlServer({ ...common, agentName: 'mtls', tls: { cert: file('server.pem'), key: file('server.key'), ca: file('ca.pem'), requireClientCert: true } });
    registerCleanup(() => mtls.stop());

    const agent = (server: ControlServer): string[] => ['--agent', `127.0.0.1:${server.port}`, '--timeout', '2000', '--json'];
    const verified = await cli(status.runCli, [...agent(tls), '--tls-ca', file('ca.pem')], false);
    expect(verified.code, verified.io.text()).to.equal(0);
    expect(JSON.parse(verified.io.stdout.join('\n'))).to.include({ answeredBy: 'tls', cluster });
    expect((await cli(status.runCli, agent(tls), false)).code, 'plain text to a TLS agent').to.equal(4);

    const withCert = await cli(status.runCli, [...agent(mtls), '--tls-ca', file('ca.pem'), '--tls-cert', file('client.pem'), '--tls-key', file('client.key')], false);
    expect(withCert.code, withCert.io.text()).to.equal(0);
    expect((await cli(status.runCli, [...agent(mtls), '--tls-ca', file('ca.pem')], false)).code, 'mTLS without a client certificate').to.equal(4);

    // The certificate is the authentication: no token, and the audit names its subject.
    const mtlsArgs = [...agent(mtls), '--tls-ca', file('ca.pem'), '--tls-cert', file('client.pem'), '--tls-key', file('client.key')];
    const resumed = await cli(resume.runCli, mtlsArgs, false);
    expect(resumed.code, resumed.io.text()).to.equal(0);
    const [latest] = await store.listAudit(1);
    expect(latest).to.include({ call: 'resume', agent: 'mtls', identity: 'client certificate CN=client', outcome: 'accepted' });
  });

  it('an agent will not serve an open control API unless told so by name', async () => {
    const common = { host: '127.0.0.1', port: 0, store, haConfig: config, localStatus: () => ({ lastDecision: null }), logger: silentLogger };
    const refused = await startControlServer({ ...common, agentName: 'open' }).then(
      (server) => server.stop().then(() => null),
      (error: Error) => error,
    );
    expect(refused?.message).to.match(/needs a token or client certificates/);
    const open = await startControlServer({ ...common, agentName: 'open', insecureNoAuth: true });
    registerCleanup(() => open.stop());
    const resumed = await cli(resume.runCli, ['--agent', `127.0.0.1:${open.port}`, '--json'], false);
    expect(resumed.code, resumed.io.text()).to.equal(0);
    const [latest] = await store.listAudit(1);
    expect(latest).to.include({ call: 'resume', agent: 'open', identity: 'none (grpc_insecure_no_auth)', outcome: 'accepted' });
    await open.stop();
  });

  it('every changing call is in the audit, newest first: who authenticated, from where, what came of it; dry runs are not', async () => {
    await new Promise((r) => setTimeout(r, 1100)); // past the once-a-second bound on unauthenticated records
    expect((await cli(pause.runCli, ['--reason', 'no token'])).code).to.equal(2);
    expect((await cli(pause.runCli, ['--reason', 'audited pause', '--token', token])).code).to.equal(0);
    expect((await cli(switchover.runCli, ['--to', 'c', '--token', token])).code, 'refused: c has nofailover').to.equal(3);
    expect((await cli(switchover.runCli, ['--to', 'b', '--dry-run'])).code).to.equal(0);
    expect((await cli(resume.runCli, ['--token', token])).code).to.equal(0);

    const listed = await cli(audit.runCli, ['--limit', '4', '--json']);
    expect(listed.code, listed.io.text()).to.equal(0);
    const records = (JSON.parse(listed.io.stdout.join('\n')) as { records: Array<Record<string, unknown>> }).records;
    expect(records.map((r) => `${r.call} ${r.outcome}`)).to.deep.equal(['resume accepted', 'switchover refused', 'pause accepted', 'pause unauthenticated']);
    const [resumed, refusedSwitchover, paused, unauthenticated] = records;
    expect(resumed).to.include({ identity: 'token', agent: 'a' });
    expect(String(resumed.peer)).to.match(/127\.0\.0\.1/);
    expect(String(resumed.requestedBy)).to.match(/@/);
    expect(String(refusedSwitchover.detail)).to.match(/target c has nofailover/);
    expect(paused).to.include({ identity: 'token', detail: 'audited pause' });
    expect(String(unauthenticated.identity)).to.match(/^rejected: none was given$/);

    const table = await cli(audit.runCli, ['--limit', '4']);
    expect(lines(table.io)[0]).to.match(/^AT\s+CALL\s+OUTCOME\s+AUTHENTICATED BY\s+FROM/);
  });
});
