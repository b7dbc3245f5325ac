/**
 * After a fault is healed: has the cluster converged, and where is every acknowledged write?
 *
 * Converged means: the topology is stable with a primary, every agent is alive and healthy and
 * reports its role (primary or replica) at the topology's epoch, and every branch other than the
 * orphan branches has the same head on the primary, on the remote (remote replication; cluster
 * replication has none) and on every replica.
 *
 * Every acknowledged id is looked up on the primary's `main`. One that is not there is lost; it
 * is orphaned if some other branch (an orphan branch, on the remote or any node) holds it, and
 * gone if no branch anywhere does.
 */

import type { LocalCluster } from '../../sandbox/local-cluster';
import { queryAsRoot } from '../../sandbox/root-query';
import { sleep } from './write-load';

const orphanPrefix = 'doltgate/orphaned/';

export interface Convergence {
  ok: boolean;
  primary: string | null;
  /** The last thing that was not yet as it should be (when not converged). */
  waitingFor: string;
  tookMs: number;
}

function query<T = Record<string, unknown>>(cluster: LocalCluster, node: string, sql: string, params: unknown[] = [], database = 'app'): Promise<T[]> {
  return queryAsRoot<T>(cluster.agent(node).sqlPort, sql, params, { database, connectTimeoutMs: 2_000, queryTimeoutMs: 10_000 });
}

async function localHeads(cluster: LocalCluster, node: string, database: string): Promise<Record<string, string>> {
  const rows = await query<{ name: string; hash: string }>(cluster, node, 'SELECT name, hash FROM dolt_branches', [], database);
  const heads: Record<string, string> = {};
  for (const row of rows) if (!String(row.name).startsWith(orphanPrefix)) heads[String(row.name)] = String(row.hash);
  return heads;
}

async function remoteHeads(cluster: LocalCluster, primary: string, database: string): Promise<Record<string, string>> {
  await query(cluster, primary, "CALL dolt_fetch('origin')", [], database);
  const rows = await query<{ name: string; hash: string }>(cluster, primary, "SELECT name, hash FROM dolt_remote_branches WHERE name LIKE 'remotes/origin/%'", [], database);
  const heads: Record<string, string> = {};
  for (const row of rows) {
    const name = String(row.name).slice('remotes/origin/'.length);
    if (!name.startsWith(orphanPrefix)) heads[name] = String(row.hash);
  }
  return heads;
}

function differs(a: Record<string, string>, b: Record<string, string>): string | null {
  for (const name of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[name] !== b[name]) return `${name}: ${a[name] ?? 'missing'} vs ${b[name] ?? 'missing'}`;
  }
  return null;
}

/** Topology stable with a primary, every agent alive, healthy and in its role at that epoch. */
export async function rolesSettled(cluster: LocalCluster): Promise<{ primary: string | null; waitingFor: string | null }> {
  const snapshot = await cluster.snapshot();
  const topology = snapshot.topology?.value;
  if (!topology || topology.state !== 'stable' || !topology.primary) return { primary: null, waitingFor: `a stable topology (now ${topology ? `${topology.state} at epoch ${topology.epoch}` : 'none'})` };
  const primary = topology.primary;
  for (const agent of cluster.agents) {
    if (!agent.process.running) return { primary, waitingFor: `${agent.name}'s agent to run` };
    const member = snapshot.members[agent.name];
    if (!member) return { primary, waitingFor: `${agent.name}'s member record` };
    const role = agent.name === primary ? 'primary' : 'replica';
    if (!member.health.healthy || member.role !== role || member.epoch !== topology.epoch) {
      return { primary, waitingFor: `${agent.name} healthy as ${role} at epoch ${topology.epoch} (reports ${member.health.healthy ? 'healthy' : 'unhealthy'} ${member.role} at ${member.epoch})` };
    }
  }
  return { primary, waitingFor: null };
}

async function convergedNow(cluster: LocalCluster, databases: string[]): Promise<{ primary: string | null; waitingFor: string | null }> {
  const roles = await rolesSettled(cluster);
  const primary = roles.primary;
  if (roles.waitingFor !== null || primary === null) return roles;
  for (const database of databases) {
    const onPrimary = await localHeads(cluster, primary, database);
    if (cluster.options.replication !== 'cluster') {
      const remoteGap = differs(onPrimary, await remoteHeads(cluster, primary, database));
      if (remoteGap !== null) return { primary, waitingFor: `${database} heads equal on ${primary} and the remote (${remoteGap})` };
    }
    for (const agent of cluster.agents) {
      if (agent.name === primary) continue;
      const gap = differs(onPrimary, await localHeads(cluster, agent.name, database));
      if (gap !== null) return { primary, waitingFor: `${database} heads equal on ${primary} and ${agent.name} (${gap})` };
    }
  }
  return { primary, waitingFor: null };
}

/**
 * Waits for an outage to be over while the writers run: the roles settled (rolesSettled) and
 * stayed so for `steadyMs` (right after a fault the old state can still look settled), and every
 * writer had a write acknowledged that it sent after that.
 */
export async function waitOutageOver(cluster: LocalCluster, ackedSince: (since: number) => boolean, withinMs: number, steadyMs = 2_000): Promise<{ ok: boolean; waitingFor: string }> {
  const started = Date.now();
  let steadySince: number | null = null;
  let waitingFor = 'nothing checked yet';
  while (Date.now() - started < withinMs) {
    try {
      const roles = await rolesSettled(cluster);
      if (roles.waitingFor !== null) {
        steadySince = null;
        waitingFor = roles.waitingFor;
      } else {
        steadySince ??= Date.now();
        if (Date.now() - steadySince < steadyMs) waitingFor = 'the roles to stay settled';
        else if (!ackedSince(steadySince)) waitingFor = 'every writer to get a write through';
        else return { ok: true, waitingFor: '' };
      }
    } catch (error) {
      steadySince = null;
      waitingFor = `an answer (${(error as Error).message})`;
    }
    await sleep(200);
  }
  return { ok: false, waitingFor };
}

/** Waits until the cluster has converged (see the file doc); writers should be paused. */
export async function waitConverged(cluster: LocalCluster, databases: string[], withinMs: number): Promise<Convergence> {
  const started = Date.now();
  let waitingFor = 'nothing checked yet';
  let primary: string | null = null;
  while (Date.now() - started < withinMs) {
    try {
      const now = await convergedNow(cluster, databases);
      primary = now.primary;
      if (now.waitingFor === null) return { ok: true, primary, waitingFor: '', tookMs: Date.now() - started };
      waitingFor = now.waitingFor;
    } catch (error) {
      waitingFor = `an answer (${(error as Error).message})`;
    }
    await sleep(250);
  }
  return { ok: false, primary, waitingFor, tookMs: Date.now() - started };
}

export interface AckAudit {
  /** Acknowledged ids not on the primary's main. */
  lost: number[];
  /** Of those, ids some other branch holds. */
  orphaned: number[];
  /** Of those, ids no branch holds. */
  gone: number[];
}

/** Where are the acknowledged `ids`? (see the file doc) */
export async function auditAcks(cluster: LocalCluster, primary: string, table: string, ids: readonly number[], database = 'app'): Promise<AckAudit> {
  const onMain = new Set((await query<{ id: number | string }>(cluster, primary, `SELECT id FROM ${table}`, [], database)).map((row) => Number(row.id)));
  const lost = ids.filter((id) => !onMain.has(id));
  if (lost.length === 0) return { lost, orphaned: [], gone: [] };
  const found = new Set<number>();
  // Every branch of every node, the remote's included (fetched onto the primary first).
  await query(cluster, primary, "CALL dolt_fetch('origin')", [], database).catch(() => undefined);
  for (const agent of cluster.agents) {
    let refs: string[];
    try {
      const local = await query<{ name: string }>(cluster, agent.name, 'SELECT name FROM dolt_branches', [], database);
      const remote = await query<{ name: string }>(cluster, agent.name, 'SELECT name FROM dolt_remote_branches', [], database);
      refs = [...local.map((row) => String(row.name)), ...remote.map((row) => String(row.name))];
    } catch {
      continue;
    }
    for (const ref of refs) {
      if (ref === 'main' && agent.name === primary) continue;
      const missing = lost.filter((id) => !found.has(id));
      if (missing.length === 0) break;
      try {
        const rows = await query<{ id: number | string }>(cluster, agent.name, `SELECT id FROM ${table} AS OF ? WHERE id IN (${missing.map(() => '?').join(',')})`, [ref, ...missing], database);
        for (const row of rows) found.add(Number(row.id));
      } catch {
        // A branch without the table, or one that moved meanwhile: nothing found there.
      }
    }
  }
  return { lost, orphaned: lost.filter((id) => found.has(id)), gone: lost.filter((id) => !found.has(id)) };
}
