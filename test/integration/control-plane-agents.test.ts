/**
 * The control plane against real agents (issue 5): the CLI drives real failovers and switchovers
 * on a cluster of real etcd, Dolt and agent processes, through the agents' gRPC API.
 */

import { expect } from 'chai';
import type { LocalCluster } from '../../sandbox/local-cluster';
import { memoryIo } from '../../cli/cli-io';
import * as statusCli from '../../cli/status';
import * as switchoverCli from '../../cli/switchover';
import * as failoverCli from '../../cli/failover';
import * as pauseCli from '../../cli/pause';
import * as resumeCli from '../../cli/resume';
import * as historyCli from '../../cli/history';
import { eventually, sleep } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';
import { queryAsRoot } from '../../sandbox/root-query';
import { clusterKeys, encodeProxyPresence, type ProxyPresence } from '../../proto';
import { etcdClient } from '../bed/etcd';

type Runner = { runCli(argv: string[], io?: ReturnType<typeof memoryIo>, env?: NodeJS.ProcessEnv): Promise<number> };

async function cli(cluster: LocalCluster, command: Runner, args: string[]): Promise<{ code: number; out: string }> {
  const io = memoryIo();
  const code = await command.runCli([...args, '--etcd', cluster.etcd.endpoints.join(','), '--cluster', cluster.cluster], io, cluster.cliEnv());
  return { code, out: io.text() };
}

describe('control plane with real agents', function () {
  this.timeout(180_000);
  let cluster: LocalCluster;
  let primary: string;

  before(async () => {
    cluster = await startLocalCluster({ agentOverrides: { ha: { min_failover_interval_ms: 1000 } } });
    primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
  });
  after(async () => cluster?.stop());

  it('status --json names the cluster, epoch, state, primary and every node with address, role and health', async () => {
    await eventually(async () => {
      const { code, out } = await cli(cluster, statusCli, ['--json']);
      expect(code).to.equal(0);
      const status = JSON.parse(out);
      expect(status.cluster).to.equal(cluster.cluster);
      expect(status.state).to.equal('stable');
      expect(status.primary).to.equal(primary);
      expect(status.epoch).to.be.a('number');
      expect(status.nodes.map((node: { name: string }) => node.name).sort()).to.deep.equal(['n1', 'n2', 'n3']);
      for (const node of status.nodes) {
        expect(node.sql).to.equal(`127.0.0.1:${cluster.agent(node.name).sqlPort}`);
        expect(node.role).to.equal(node.name === primary ? 'primary' : 'replica');
        expect(node.healthy).to.equal(true);
      }
      return true;
    }, { within: 15_000, what: 'a complete status' });
  });

  it('switchover --dry-run says what would happen and changes nothing; bad targets are refused with reasons', async () => {
    const target = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    const before = (await cluster.snapshot()).topology?.value.epoch;
    const dry = await cli(cluster, switchoverCli, ['--to', target, '--dry-run']);
    expect(dry.code, dry.out).to.equal(0);
    expect(dry.out).to.contain(target);
    expect((await cluster.snapshot()).topology?.value.epoch).to.equal(before);
    const unknown = await cli(cluster, switchoverCli, ['--to', 'nope', '--dry-run']);
    expect(unknown.code, unknown.out).to.equal(5);
    const self = await cli(cluster, switchoverCli, ['--to', primary, '--dry-run']);
    expect(self.code, self.out).to.equal(3);
  });

  it('switchover --to moves the primary with every step shown, and history lists them', async () => {
    const target = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    await queryNode(cluster, primary, 'INSERT INTO t VALUES (1)');
    const result = await cli(cluster, switchoverCli, ['--to', target]);
    expect(result.code, result.out).to.equal(0);
    for (const step of ['fence', 'disable-read-only', 'recover', 'enable-push-on-write', 'reroute']) expect(result.out).to.contain(step);
    // Each step names the node that ran it: the outgoing primary fences, the target does the rest.
    expect(result.out, result.out).to.match(new RegExp(`fence\\s+done\\s+.* on ${primary}: `));
    expect(result.out, result.out).to.match(new RegExp(`reroute\\s+done\\s+.* on ${target}: `));
    expect(result.out, result.out).to.match(new RegExp(`succeeded at epoch \\d+: ${target} is primary at epoch \\d+$`, 'm'));
    primary = await cluster.waitForStablePrimary(15_000);
    expect(primary).to.equal(target);
    expect((await queryNode<{ id: number }>(cluster, primary, 'SELECT id FROM t')).map((row) => row.id)).to.deep.equal([1]);
    const history = await cli(cluster, historyCli, ['--json']);
    expect(history.code).to.equal(0);
    const records = JSON.parse(history.out);
    const latest = (Array.isArray(records) ? records : records.history ?? records.records)[0];
    expect(latest.kind).to.equal('switchover');
    expect(latest.steps.map((step: { name: string }) => step.name)).to.deep.equal(['fence', 'disable-read-only', 'recover', 'enable-push-on-write', 'reroute']);
  });

  it('switchover --drain-timeout bounds the wait for a statement still running on the old primary', async () => {
    const target = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    // A statement that outlives any drain: the fence restarts Dolt read-only under it.
    const sleeper = queryAsRoot(cluster.agent(primary).sqlPort, 'SELECT SLEEP(30)', [], { database: 'app', connectTimeoutMs: 2000, queryTimeoutMs: 60_000 }).catch(() => 'cut off');
    await eventually(async () => (await queryNode<{ n: number }>(cluster, primary, "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP%'"))[0].n > 0, { within: 5_000, what: 'the sleeping statement to run' });
    const result = await cli(cluster, switchoverCli, ['--to', target, '--drain-timeout', '700']);
    expect(result.code, result.out).to.equal(0);
    expect(result.out, result.out).to.match(/fence\s+done\s+.*1 statement\(s\) still running at the 700 ms drain bound, cut off/);
    expect(await sleeper).to.equal('cut off');
    primary = await cluster.waitForStablePrimary(15_000);
    expect(primary).to.equal(target);
  });

  it('switchover waits for every proxy to let the old primary go (its presence record), bounded by --drain-timeout', async () => {
    const client = etcdClient(cluster.etcd);
    const keys = clusterKeys(cluster.cluster);
    const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
    // A proxy that still routes by the current topology: it never catches up, so only the bound ends the wait.
    const stuck: ProxyPresence = { id: 'stuck-proxy', epoch, state: 'stable', draining: 0, at: new Date().toISOString() };
    await client.put(keys.proxy(stuck.id)).value(encodeProxyPresence(stuck));
    const status = JSON.parse((await cli(cluster, statusCli, ['--json'])).out);
    expect(status.proxies, 'status lists the proxies').to.deep.include({ id: 'stuck-proxy', epoch, state: 'stable', draining: 0, at: stuck.at });
    let target = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    const started = Date.now();
    let result = await cli(cluster, switchoverCli, ['--to', target, '--drain-timeout', '1500']);
    expect(result.code, result.out).to.equal(0);
    expect(result.out, result.out).to.match(/fence\s+done\s+.*1 of 1 proxy had not let go at the drain bound: stuck-proxy \(epoch \d+, 0 draining\)/);
    expect(Date.now() - started, 'the switchover waited out the bound').to.be.at.least(1500);
    primary = await cluster.waitForStablePrimary(15_000);
    expect(primary).to.equal(target);

    // One that catches up 1 s into the wait (draining a transaction, then letting go) ends it then.
    const next = (await cluster.snapshot()).topology?.value.epoch as number;
    const slow: ProxyPresence = { id: 'slow-proxy', epoch: next, state: 'stable', draining: 0, at: new Date().toISOString() };
    await client.delete().key(keys.proxy(stuck.id));
    await client.put(keys.proxy(slow.id)).value(encodeProxyPresence(slow));
    const catchUp = (async () => {
      // From the moment the switchover is visible the agent waits on this record: 1 s of it.
      await eventually(async () => ((await cluster.snapshot()).topology?.value.epoch ?? 0) > next, { within: 15_000, what: 'the switchover to be published' });
      await sleep(500);
      await client.put(keys.proxy(slow.id)).value(encodeProxyPresence({ ...slow, epoch: next + 1, state: 'switchover', draining: 1 }));
      await sleep(500);
      await client.put(keys.proxy(slow.id)).value(encodeProxyPresence({ ...slow, epoch: next + 1, state: 'switchover', draining: 0 }));
    })();
    target = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    result = await cli(cluster, switchoverCli, ['--to', target, '--drain-timeout', '20000']);
    await catchUp;
    expect(result.code, result.out).to.equal(0);
    const waited = Number(/1 proxy holding writes in (\d+) ms/.exec(result.out)?.[1]);
    expect(waited, result.out).to.be.within(1000, 15_000);
    await client.delete().key(keys.proxy(slow.id));
    primary = await cluster.waitForStablePrimary(15_000);
    expect(primary).to.equal(target);
  });

  it('pause blocks automatic failover; resume restores it', async () => {
    expect((await cli(cluster, pauseCli, ['--reason', 'maintenance'])).code).to.equal(0);
    expect((await cluster.snapshot()).paused?.reason).to.equal('maintenance');
    const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
    await cluster.agent(primary).process.kill9();
    await sleep(9000);
    expect((await cluster.snapshot()).topology?.value.epoch, 'paused: no failover').to.equal(epoch);
    // The agent that answers says why it waits, as a code.
    const status = JSON.parse((await cli(cluster, statusCli, ['--json'])).out);
    expect(status.lastDecision, JSON.stringify(status.lastDecision)).to.include({ action: 'wait', waitCode: 'paused' });
    expect((await cli(cluster, resumeCli, [])).code).to.equal(0);
    const next = await cluster.waitForStablePrimary(30_000, primary);
    expect((await cluster.snapshot()).topology?.value.epoch).to.be.greaterThan(epoch);
    primary = next;
  });

  it('failover --force --to a named node moves the primary there', async () => {
    const target = cluster.agents.find((agent) => agent.name !== primary && agent.process.running)?.name as string;
    const result = await cli(cluster, failoverCli, ['--to', target, '--force']);
    expect(result.code, result.out).to.equal(0);
    expect(await cluster.waitForStablePrimary(20_000, primary)).to.equal(target);
  });
});
