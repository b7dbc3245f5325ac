/**
 * Agent duties beyond failover, against real processes: restarting a crashed replica Dolt,
 * scheduled backups (recorded in the member record and metrics, and used by a failover when they
 * hold newer commits than the remote), keeping etcd's record of past operations bounded, and the
 * /metrics endpoint.
 */

import { expect } from 'chai';
import { rename, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { join } from 'node:path';
import { eventually } from '../bed/eventually';
import { queryNode, startLocalCluster } from '../bed/local-cluster';
import { tempDir } from '../bed/cleanup';
import type { OperationRecord } from '../../proto';

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

describe('agent operations (real etcd, Dolt and agent processes)', function () {
  this.timeout(180_000);

  it('restarts a crashed replica Dolt and exposes the restart, role and epoch in /metrics', async () => {
    const cluster = await startLocalCluster({ agentOverrides: { ha: { min_failover_interval_ms: 1000 } } });
    const primary = await cluster.waitForStablePrimary(30_000);
    const replica = cluster.agents.find((agent) => agent.name !== primary)?.name as string;
    const before = (await cluster.doltPid(replica)) as number;
    process.kill(before, 'SIGKILL');
    await eventually(async () => {
      const pid = await cluster.doltPid(replica);
      if (pid === undefined || pid === before) return false;
      await queryNode(cluster, replica, 'SELECT 1');
      return true;
    }, { within: 20_000, what: 'replica dolt restarted' });
    expect((await cluster.snapshot()).topology?.value.primary, 'a replica crash is no failover').to.equal(primary);
    const metrics = await get(`http://127.0.0.1:${cluster.agent(replica).metricsPort}/metrics`);
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.match(/doltgate_agent_dolt_restarts_total\{[^}]*\} [1-9]/);
    expect(metrics.body).to.match(/doltgate_agent_role\{[^}]*role="replica"[^}]*\} 1/);
    for (const name of ['doltgate_agent_epoch', 'doltgate_agent_health_check_seconds_bucket', 'doltgate_agent_lease_renew_seconds_bucket', 'doltgate_agent_commits_not_on_remote', 'doltgate_agent_decisions_total']) {
      expect(metrics.body, name).to.contain(name);
    }
    const health = await get(`http://127.0.0.1:${cluster.agent(replica).metricsPort}/healthz`);
    expect(health.status).to.equal(200);
    expect(JSON.parse(health.body).lastDecision.action).to.be.a('string');
  });

  it('the leader deletes finished operations beyond retention.finished_ops, but never a running one', async () => {
    const cluster = await startLocalCluster({ agentOverrides: { retention: { finished_ops: 2, history: 10 } } });
    await cluster.waitForStablePrimary(30_000);
    const store = cluster.store();
    try {
      const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
      const old = (id: string, h: number, state: OperationRecord['state']): OperationRecord => ({
        id, kind: 'switchover', target: 'nowhere', force: false, drainTimeoutMs: 1000, requestedAt: hoursAgo(h), requestedBy: 'test', state, executor: null, epoch: null, steps: [], reason: 'written by the test',
      });
      // Oldest first; 'running-old' is not finished (its target does not exist, so no agent takes it up).
      for (const op of [old('f-5h', 5, 'succeeded'), old('f-4h', 4, 'failed'), old('f-3h', 3, 'refused'), old('f-2h', 2, 'succeeded'), old('running-old', 6, 'running')]) {
        await store.putOperation(op, null);
      }
      await eventually(async () => {
        const ids = (await cluster.snapshot()).ops.map((op) => op.value.id).sort();
        expect(ids).to.deep.equal(['f-2h', 'f-3h', 'running-old']);
        return true;
      }, { within: 15_000, what: 'the leader to delete the two oldest finished operations' });
    } finally {
      store.close();
    }
  });

  it('syncs a backup on schedule, and a failover recovers from it when it is newer than the remote', async () => {
    const backupDir = await tempDir('backup');
    const cluster = await startLocalCluster({
      agentOverrides: { ha: { min_failover_interval_ms: 1000 }, backup: { url: `file://${backupDir}/{database}`, interval_ms: 1000, max_age_ms: 60_000 } },
    });
    const primary = await cluster.waitForStablePrimary(30_000);
    await queryNode(cluster, primary, 'CREATE TABLE t (id INT PRIMARY KEY)');
    await eventually(async () => Boolean((await cluster.snapshot()).members[primary]?.backup?.lastGoodSyncAt), { within: 15_000, what: 'a good backup sync' });
    // Pushes fail from now on, backups keep working: the backup holds the newest commit.
    const remoteDb = join(cluster.remoteDir, 'app');
    await rename(remoteDb, `${remoteDb}.aside`);
    await writeFile(remoteDb, 'unreachable');
    let synced: string | null | undefined;
    try {
      await queryNode(cluster, primary, 'INSERT INTO t VALUES (42)');
      const head = String((await queryNode<{ h: string }>(cluster, primary, "SELECT dolt_hashof('main') AS h"))[0].h);
      await eventually(async () => {
        const member = (await cluster.snapshot()).members[primary];
        synced = member?.backup?.heads?.app?.main;
        return synced === head;
      }, { within: 15_000, what: 'the backup holds the unpushed commit' });
    } finally {
      await rm(remoteDb, { force: true });
      await rename(`${remoteDb}.aside`, remoteDb);
    }
    // The host is lost (its agent killed, Dolt with it): a replica must take over, and only the
    // backup has the row. (Killing only Dolt can end in the old primary recovering in place.)
    await cluster.agent(primary).process.kill9();
    const next = await cluster.waitForStablePrimary(30_000, primary);
    const rows = await queryNode<{ id: number }>(cluster, next, 'SELECT id FROM t');
    expect(rows.map((row) => row.id), 'the acknowledged row came back from the backup').to.deep.equal([42]);
    const recover = (await cluster.snapshot()).latestHistory?.steps.find((step) => step.name === 'recover');
    expect(recover?.detail).to.contain('doltgate-backup');
  });
});
