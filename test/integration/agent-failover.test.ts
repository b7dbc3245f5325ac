/**
 * Failover scenarios with real etcd, real Dolt and real agent processes (issue 4): a crashed
 * primary Dolt, a lost host, a hung host that comes back, etcd member and quorum loss, pause and
 * anti-flap. Each asserts that nothing acknowledged is lost and that no two nodes take writes.
 */

import { expect } from 'chai';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalCluster } from '../../sandbox/local-cluster';
import { isProcessAlive } from '../../common/child-process';
import { eventually, sleep } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';
import { remoteBranchHead } from '../bed/remote-inspect';

const fast = { ha: { min_failover_interval_ms: 1000 } };

async function writeRows(cluster: LocalCluster, node: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await queryNode(cluster, node, 'INSERT INTO t VALUES (?)', [i]);
}

async function ids(cluster: LocalCluster, node: string): Promise<number[]> {
  const rows = await queryNode<{ id: number }>(cluster, node, 'SELECT id FROM t ORDER BY id');
  return rows.map((row) => row.id);
}

async function writableNodes(cluster: LocalCluster): Promise<string[]> {
  const writable: string[] = [];
  for (const agent of cluster.agents) {
    try {
      const rows = await queryNode<{ ro: number }>(cluster, agent.name, 'SELECT @@read_only AS ro');
      if (Number(rows[0].ro) === 0) writable.push(agent.name);
    } catch {
      // down or hung: not taking writes
    }
  }
  return writable;
}

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

describe('agent failover (real etcd, Dolt and agent processes)', function () {
  this.timeout(180_000);

  it('kill -9 of the primary Dolt: a new epoch\'s primary has every committed row and takes writes', async () => {
    const cluster = await startLocalCluster({ agentOverrides: fast });
    const primary = await cluster.waitForStablePrimary(30_000);
    const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await writeRows(cluster, primary, 0, 25);
    const doltPid = await cluster.doltPid(primary);
    expect(doltPid, 'the agent runs a dolt sql-server child').to.be.a('number');
    process.kill(doltPid as number, 'SIGKILL');
    // Usually a replica; the old primary itself when its Dolt is back before a replica takes the
    // key (it recovers in place at the new epoch, within the reclaim grace): both are failovers.
    const next = await cluster.waitForStablePrimary(20_000, undefined, epoch);
    expect(await ids(cluster, next)).to.deep.equal(range(0, 25));
    await writeRows(cluster, next, 25, 1);
    expect(await ids(cluster, next)).to.deep.equal(range(0, 26));
    const snapshot = await cluster.snapshot();
    const history = snapshot.latestHistory;
    expect(history?.candidate).to.equal(next);
    expect(history?.steps.filter((step) => step.state === 'done').map((step) => step.name)).to.deep.equal(['fence', 'disable-read-only', 'recover', 'enable-push-on-write', 'reroute']);
    await eventually(async () => (await writableNodes(cluster)).join(',') === next, { within: 15_000, what: `only ${next} writable` });
  });

  it('whole host lost (agent and Dolt killed together): the lease expires and a replica takes over', async () => {
    const cluster = await startLocalCluster({ agentOverrides: fast });
    const primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await writeRows(cluster, primary, 0, 10);
    const doltPid = (await cluster.doltPid(primary)) as number;
    await cluster.agent(primary).process.kill9();
    // Dolt runs under a parent-death signal: it dies with its agent.
    await eventually(() => !isProcessAlive(doltPid), { within: 5000, what: 'dolt gone with its agent' });
    const next = await cluster.waitForStablePrimary(30_000, primary);
    expect(await ids(cluster, next)).to.deep.equal(range(0, 10));
    await writeRows(cluster, next, 10, 1);
  });

  it('hung host (SIGSTOP of agent, keeper and Dolt): failover; after SIGCONT the keeper kills the stale primary, which saves its orphaned commit and rejoins', async () => {
    const cluster = await startLocalCluster({ agentOverrides: fast });
    const primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await writeRows(cluster, primary, 0, 5);
    // An acknowledged commit whose push fails: only the old primary has it.
    const remoteDb = join(cluster.remoteDir, 'app');
    await rename(remoteDb, `${remoteDb}.aside`);
    await writeFile(remoteDb, 'unreachable');
    try {
      await queryNode(cluster, primary, 'INSERT INTO t VALUES (999)');
    } finally {
      await rm(remoteDb, { force: true });
      await rename(`${remoteDb}.aside`, remoteDb);
    }
    // The whole host freezes: agent, keeper and Dolt. On waking, the keeper finds its deadline
    // passed and kills Dolt before the agent has run a line.
    const agent = cluster.agent(primary);
    const doltPid = (await cluster.doltPid(primary)) as number;
    const keeperPid = (await cluster.keeperPid(primary)) as number;
    const frozen = [doltPid, keeperPid];
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    agent.process.signal('SIGSTOP');
    let next: string;
    try {
      next = await cluster.waitForStablePrimary(30_000, primary);
      await writeRows(cluster, next, 5, 1);
    } finally {
      for (const pid of frozen) if (isProcessAlive(pid)) process.kill(pid, 'SIGCONT');
      agent.process.signal('SIGCONT');
    }
    await eventually(() => !isProcessAlive(doltPid), { within: 5_000, what: 'the keeper to kill the stale primary on waking' });
    await eventually(async () => {
      const member = (await cluster.snapshot()).members[primary];
      return member?.role === 'replica' && member.epoch > 1;
    }, { within: 30_000, what: `${primary} rejoined as a replica` });
    expect((await writableNodes(cluster)).sort()).to.deep.equal([next]);
    const history = (await cluster.snapshot()).latestHistory;
    expect(history?.orphanedBranches.some((branch) => branch.startsWith('app:doltgate/orphaned/'))).to.equal(true);
    const orphan = (history?.orphanedBranches[0] ?? '').replace('app:', '');
    const orphanHead = await remoteBranchHead({ binary: cluster.options.doltBinary, rootPath: join(cluster.agent(next).nodeDir, 'home') }, cluster.remoteDir, 'app', orphan);
    // The new primary reads the saved commit after fetching it from the remote.
    await queryNode(cluster, next, "CALL dolt_fetch('origin')");
    const saved = await queryNode<{ id: number }>(cluster, next, `SELECT id FROM t AS OF '${orphanHead}' WHERE id = 999`);
    expect(saved.map((row) => row.id), 'the orphaned commit is readable from the remote branch').to.deep.equal([999]);
    await eventually(async () => (await ids(cluster, primary)).includes(5), { within: 10_000, what: 'old primary replicates the new primary' });
  });

  it('frozen agent (SIGSTOP of the agent alone): its keeper kills the writable Dolt before the lease lapses; never two writable nodes', async () => {
    const cluster = await startLocalCluster({ agentOverrides: fast });
    const primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await writeRows(cluster, primary, 0, 5);
    const doltPid = (await cluster.doltPid(primary)) as number;
    const agent = cluster.agent(primary);
    const samples: Array<{ at: number; writable: string[] }> = [];
    agent.process.signal('SIGSTOP');
    const frozenAt = Date.now();
    let next: string | undefined;
    try {
      // Before the keeper, the old primary stayed writable for as long as its agent was frozen.
      while (Date.now() - frozenAt < 20_000 && next === undefined) {
        samples.push({ at: Date.now() - frozenAt, writable: await writableNodes(cluster) });
        const topology = (await cluster.snapshot()).topology?.value;
        if (topology?.state === 'stable' && topology.primary !== primary && samples[samples.length - 1].writable.includes(topology.primary ?? '')) next = topology.primary ?? undefined;
      }
    } finally {
      agent.process.signal('SIGCONT');
    }
    expect(next, 'a replica took over').to.be.a('string');
    const dual = samples.filter((sample) => sample.writable.length > 1);
    expect(dual, 'samples with two writable nodes').to.deep.equal([]);
    const lastWritableOld = Math.max(...samples.filter((sample) => sample.writable.includes(primary)).map((sample) => sample.at));
    // The lease is 5 s and the fence margin 2 s: the keeper kills Dolt about 3 s after the last renewal.
    expect(lastWritableOld, 'the old primary stopped taking writes within the lease').to.be.below(5_000);
    expect(isProcessAlive(doltPid)).to.equal(false);
    expect(await ids(cluster, next as string)).to.deep.equal(range(0, 5));
    await eventually(async () => (await cluster.snapshot()).members[primary]?.role === 'replica', { within: 30_000, what: `${primary} rejoined after SIGCONT` });
  });

  it('etcd unreachable for less than the lease margin: the primary serves on its lease, no fence, no new epoch', async () => {
    // A 10 s lease with a 3 s margin: the primary may serve 7 s past its last renewal.
    const cluster = await startLocalCluster({ agentOverrides: { ha: { min_failover_interval_ms: 1000, lease_ttl_ms: 10_000, fence_margin_ms: 3_000 } } });
    const primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    const epoch = (await cluster.snapshot()).topology?.value.epoch;
    const etcd = cluster.etcd.members[0].process;
    etcd.signal('SIGSTOP');
    const outage: string[][] = [];
    try {
      const started = Date.now();
      // Longer than the agent's etcd call timeout (1.5 s), well inside the lease minus margin.
      while (Date.now() - started < 2_200) {
        outage.push(await writableNodes(cluster));
        await sleep(100);
      }
    } finally {
      etcd.signal('SIGCONT');
    }
    await sleep(2_000);
    expect(outage.filter((writable) => writable.join(',') !== primary), 'moments the primary was not writable').to.deep.equal([]);
    expect((await cluster.snapshot()).topology?.value).to.include({ epoch, primary, state: 'stable' });
    await writeRows(cluster, primary, 0, 1);
  });

  it('the candidate dies mid-failover: the last node takes the failover over and every row survives', async () => {
    const cluster = await startLocalCluster({ agentOverrides: fast });
    const primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await writeRows(cluster, primary, 0, 10);
    // The primary's host is lost (so the candidate is a replica, never the old primary
    // recovering in place); catch the candidate between its fence and its reroute, then lose its
    // whole host too.
    await cluster.agent(primary).process.kill9();
    const candidate = await eventually(async (): Promise<string | undefined> => {
      const history = (await cluster.snapshot()).latestHistory;
      const fenced = history?.kind === 'failover' && history.outcome === 'running' && history.steps.some((step) => step.name === 'fence' && step.state === 'done');
      return fenced ? history.candidate : undefined;
    }, { within: 20_000, interval: 10, what: 'a failover past its fence' }) as string;
    await cluster.agent(candidate).process.kill9();
    const last = cluster.agents.map((agent) => agent.name).find((name) => name !== primary && name !== candidate) as string;
    expect(await cluster.waitForStablePrimary(40_000, primary)).to.equal(last);
    expect(await ids(cluster, last)).to.deep.equal(range(0, 10));
    await writeRows(cluster, last, 10, 1);
    const history = (await cluster.snapshot()).latestHistory;
    expect(history?.candidate).to.equal(last);
    expect(history?.takeoverFrom?.candidate, 'recorded as a takeover of the stalled attempt').to.equal(candidate);
  });

  it('etcd: losing one of three members changes nothing; losing quorum promotes nobody', async () => {
    const cluster = await startLocalCluster({ etcdMembers: 3, agentOverrides: fast });
    const primary = await cluster.waitForStablePrimary(30_000);
    const epoch = (await cluster.snapshot()).topology?.value.epoch;
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await cluster.etcd.members[2].process.stop();
    await sleep(6000);
    expect((await cluster.snapshot()).topology?.value).to.include({ epoch, primary, state: 'stable' });
    await writeRows(cluster, primary, 0, 3);
    await cluster.etcd.members[1].process.stop();
    const doltPid = (await cluster.doltPid(primary)) as number;
    process.kill(doltPid, 'SIGKILL');
    // Without quorum: the primary cannot renew and stays fenced; no replica may become writable.
    // A replica says why it waits: the member it reaches answers, without a leader.
    const replica = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    await eventually(async () => {
      const health = (await (await fetch(`http://127.0.0.1:${cluster.agent(replica).metricsPort}/healthz`)).json()) as { lastDecision: { waitCode: string | null } | null };
      return health.lastDecision?.waitCode === 'no-quorum';
    }, { within: 10_000, what: `${replica} to wait with code no-quorum` });
    await sleep(10_000);
    expect(await writableNodes(cluster)).to.deep.equal([]);
  });

  it('paused: no failover (the old primary recovers in place); resumed: failover; a second failure inside the anti-flap interval: no second failover', async () => {
    const cluster = await startLocalCluster({ agentOverrides: { ha: { min_failover_interval_ms: 120_000 } } });
    const primary = await cluster.waitForStablePrimary(30_000);
    const store = cluster.store();
    try {
      await store.setPaused({ by: 'test', at: new Date().toISOString(), reason: 'maintenance' });
      process.kill((await cluster.doltPid(primary)) as number, 'SIGKILL');
      // With no failover allowed, the old primary recovers in place (at a new epoch) once its Dolt
      // is restarted.
      const paused = await eventually(async () => {
        const topology = (await cluster.snapshot()).topology?.value;
        return topology?.state === 'stable' && (await writableNodes(cluster)).join(',') === primary ? topology : null;
      }, { within: 20_000, what: `${primary} stable and writable again` });
      expect(paused, 'paused: no failover to another node').to.include({ primary, state: 'stable' });
      const inPlace = (await cluster.snapshot()).latestHistory;
      expect(inPlace, 'recovered in place').to.include({ candidate: primary, fromPrimary: primary });
      await store.setPaused(null);
      // Resumed, a crash fails over: to a replica, or in place when the old Dolt is back first
      // (not a move, so anti-flap does not count it). Crash until it moves.
      let next = primary;
      for (let attempt = 0; attempt < 3 && next === primary; attempt++) {
        const before = (await cluster.snapshot()).topology?.value.epoch as number;
        process.kill((await cluster.doltPid(primary)) as number, 'SIGKILL');
        next = await cluster.waitForStablePrimary(20_000, undefined, before);
      }
      expect(next, 'a replica took over within three crashes').to.not.equal(primary);
      const epoch = (await cluster.snapshot()).topology?.value.epoch as number;
      process.kill((await cluster.doltPid(next)) as number, 'SIGKILL');
      await sleep(8000);
      const after = (await cluster.snapshot()).topology?.value;
      expect(after?.primary, 'anti-flap: no second failover to another node').to.equal(next);
      expect(after?.state).to.equal('stable');
      const latest = (await cluster.snapshot()).latestHistory;
      if ((after?.epoch ?? 0) > epoch) expect(latest, `${next} recovered in place`).to.include({ candidate: next, fromPrimary: next });
    } finally {
      store.close();
    }
  });
});
