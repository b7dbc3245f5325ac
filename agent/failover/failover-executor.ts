/**
 * Carries out a FailoverPlan from `decide`: the steps of ../shared/design.md (fence, disable
 * read-only, recover, enable push-on-write, reroute), each recorded with its timing in
 * `history/<epoch>` and each idempotent, so a crash anywhere is resumed by the next decision
 * (this agent's, or another's) at the first step not recorded as done.
 *
 * Topology writes (fence, reroute) are compare-and-swap on a fresh read, in one transaction with
 * the history record; losing the CAS means someone else moved the cluster, and the plan stops.
 */

import type { Logger } from '../../common/logger';
import { isFinalOperationState, proxyHandedOver, type HistoryRecord, type HistoryStep, type OperationRecord, type Topology } from '../../proto';
import type { FailoverPlan, FailoverStep } from '../ha';
import { StoreUnavailableError, type ClusterSnapshot, type ClusterStore } from '../store/cluster-store';
import type { LocalDolt } from '../dolt/local-dolt';
import { describeAlignment } from '../dolt/database-sync';
import type { BranchOutcome } from '../dolt/recovery';
import { SqlFailoverDatabase, type FailoverDatabase } from './failover-database';
import { buildTopology } from './topology-builder';
import { clusterStatus, type StandbyStatus } from '../dolt/cluster-role';
import { withSession } from '../dolt/sql-session';

export { backupRemoteName } from './failover-database';

export interface ExecutorSettings {
  name: string;
  remote: string;
  /** Backup URL template with `{database}`, or null. */
  backupUrl: string | null;
  /** The remote URL template (agent config dolt.remote_url_template), or null. */
  remoteUrlTemplate: string | null;
  sqlTimeoutMs: number;
  drainTimeoutMs: number;
  /** How commits reach the other nodes (agent-config.ts); default remote. */
  replication?: 'remote' | 'cluster';
}

export interface ExecutorHooks {
  stepFinished?(step: string, durationMs: number, ok: boolean): void;
  /** Every history write, so an operator op can mirror its progress. */
  historyChanged?(record: HistoryRecord): void;
  rolePublished?(role: 'primary' | 'fenced', epoch: number): void;
}

export class FailoverAbortedError extends Error {
  readonly code = 'FAILOVER_ABORTED';
}

export class FailoverExecutor {
  /** The node's Dolt as the steps use it beyond starting and stopping (failover-database.ts). */
  private readonly database: FailoverDatabase;

  constructor(
    private readonly settings: ExecutorSettings,
    private readonly store: ClusterStore,
    private readonly local: LocalDolt,
    private readonly logger: Logger,
    private readonly hooks: ExecutorHooks = {},
    private readonly now: () => number = Date.now,
    database: FailoverDatabase = new SqlFailoverDatabase(local, settings, now),
  ) {
    this.database = database;
  }

  /** Runs plan.steps in order; resolves when all are done, throws on the first failure. */
  async run(plan: FailoverPlan, reason: string): Promise<void> {
    let record = await this.begin(plan, reason);
    for (const step of plan.steps) {
      record = await this.runStep(plan, record, step);
    }
  }

  /**
   * The history record to run under: the one already written for this epoch and candidate (a
   * resumed plan), else a new one. Creating it and claiming the plan's op happen in one etcd
   * transaction (store.beginFailover), so a plan runs only for an op nobody else claimed, refused
   * or finished meanwhile, and one epoch's history is created by one agent.
   */
  private async begin(plan: FailoverPlan, reason: string): Promise<HistoryRecord> {
    const snapshot = await this.store.snapshot();
    const latest = snapshot.latestHistory;
    const existing = latest && latest.epoch === plan.epoch && latest.candidate === plan.candidate ? latest : null;
    const claim = plan.opId === null ? null : this.claimOf(snapshot.ops, plan.opId, reason);
    if (existing && claim === null) return existing;
    const record: HistoryRecord = existing ?? {
      epoch: plan.epoch,
      kind: plan.kind,
      reason,
      fromPrimary: plan.fromPrimary,
      candidate: plan.candidate,
      handOver: plan.handOver,
      opId: plan.opId,
      takeoverFrom: plan.takeoverFrom,
      startedAt: new Date(this.now()).toISOString(),
      endedAt: null,
      outcome: 'running',
      steps: [],
      orphanedBranches: [],
    };
    if (!(await this.store.beginFailover(existing ? null : record, claim))) {
      throw new FailoverAbortedError(`history of epoch ${plan.epoch} or op ${plan.opId ?? '-'} changed since it was read; observing again`);
    }
    return record;
  }

  /**
   * The op's claimed value (running, by this agent), or null when this agent already runs it.
   * A pending op is claimed; a running one is taken over (the target's share of a hand-over, or a
   * stalled op); a finished or refused one, or one that is gone, is never run again.
   */
  private claimOf(ops: ClusterSnapshot['ops'], opId: string, reason: string): { op: OperationRecord; modRevision: string } | null {
    const entry = ops.find((candidate) => candidate.value.id === opId);
    if (!entry) throw new FailoverAbortedError(`op ${opId} is gone; not running it`);
    const op = entry.value;
    if (isFinalOperationState(op.state)) throw new FailoverAbortedError(`op ${opId} is already ${op.state}; not running it`);
    if (op.state === 'running' && op.executor === this.settings.name) return null;
    return { op: { ...op, state: 'running', executor: this.settings.name, reason }, modRevision: entry.modRevision };
  }

  private async runStep(plan: FailoverPlan, record: HistoryRecord, name: FailoverStep): Promise<HistoryRecord> {
    const started = this.now();
    const running: HistoryStep = { name, state: 'running', startedAt: new Date(started).toISOString(), endedAt: null, durationMs: null, executor: this.settings.name, detail: '' };
    // A step run again (a resumed plan re-runs local steps) replaces its earlier entry.
    const steps = record.steps.filter((step) => step.name !== name);
    let current: HistoryRecord = { ...record, steps: [...steps, running] };
    await this.store.putHistory(current);
    this.hooks.historyChanged?.(current);
    this.logger.info('failover step started', { step: name, epoch: plan.epoch, candidate: plan.candidate });
    try {
      const detail = await this.execute(plan, name, current);
      const ended = this.now();
      const done: HistoryStep = { ...running, state: 'done', endedAt: new Date(ended).toISOString(), durationMs: ended - started, detail: detail.text };
      current = { ...current, steps: [...steps, done], orphanedBranches: [...current.orphanedBranches, ...detail.orphans] };
      if (name === 'reroute') current = { ...current, outcome: 'succeeded', endedAt: done.endedAt };
      if (detail.topology) await this.publish(detail.topology, current);
      else await this.store.putHistory(current);
      this.hooks.historyChanged?.(current);
      this.hooks.stepFinished?.(name, ended - started, true);
      this.logger.info('failover step done', { step: name, epoch: plan.epoch, tookMs: ended - started, detail: detail.text });
      return current;
    } catch (error) {
      const ended = this.now();
      const failed: HistoryStep = { ...running, state: 'failed', endedAt: new Date(ended).toISOString(), durationMs: ended - started, detail: (error as Error).message };
      const failedRecord: HistoryRecord = { ...current, steps: [...steps, failed] };
      await this.store.putHistory(failedRecord).catch(() => undefined);
      this.hooks.historyChanged?.(failedRecord);
      this.hooks.stepFinished?.(name, ended - started, false);
      this.logger.error('failover step failed', { step: name, epoch: plan.epoch, error: (error as Error).message });
      throw error;
    }
  }

  private async publish(topology: Topology, record: HistoryRecord): Promise<void> {
    const snapshot = await this.store.snapshot();
    const current = snapshot.topology;
    if (current && current.value.epoch > topology.epoch) {
      throw new FailoverAbortedError(`topology moved to epoch ${current.value.epoch} while publishing epoch ${topology.epoch}`);
    }
    await this.store.casTopology(topology, current?.modRevision ?? null, record);
  }

  private async execute(plan: FailoverPlan, step: FailoverStep, record: HistoryRecord): Promise<{ text: string; topology?: Topology; orphans: string[] }> {
    const timeout = this.settings.sqlTimeoutMs;
    switch (step) {
      case 'fence': {
        const snapshot = await this.store.snapshot();
        const previous = snapshot.topology?.value ?? null;
        const state = plan.kind === 'switchover' ? 'switchover' : 'failover';
        let text = `published ${state} at epoch ${plan.epoch}: proxies hold writes`;
        if (plan.handOver && plan.fromPrimary === this.settings.name) {
          // Our own share of a planned hand-over: hold writes first, then make sure every commit
          // is on the remote, then stop taking writes.
          const topology = buildTopology({ epoch: plan.epoch, state, primary: null, outgoing: null, members: snapshot.members, previous, reason: record.reason, now: this.now(), replication: this.settings.replication });
          await this.publish(topology, record);
          // The bound the operator gave the op (switchover --drain-timeout), else the agent's.
          const op = snapshot.ops.find((entry) => entry.value.id === plan.opId)?.value ?? null;
          const bound = op?.drainTimeoutMs ?? this.settings.drainTimeoutMs;
          const deadline = this.now() + bound;
          // Invariant (design.md: a switchover shows no client an error): Dolt is stopped only
          // once every proxy that answers has applied this epoch and let its transactions on this
          // node end, or the drain bound has passed; a proxy still routing by the old topology
          // would send its next write here and see the connection die.
          const proxies = await this.awaitProxies(plan.epoch, deadline);
          const drained = await this.database.drainStatements(Math.max(0, deadline - this.now()), timeout);
          const drainText = drained.running === 0 ? `drained in ${drained.waitedMs} ms` : `${drained.running} statement(s) still running at the ${bound} ms drain bound, cut off`;
          if (this.settings.replication === 'cluster') {
            text += `; ${proxies}; ${drainText}; ${await this.handOverClustered(plan, deadline)}`;
            this.hooks.rolePublished?.('fenced', plan.epoch);
            return { text, orphans: [] };
          }
          const pushed = await this.database.pushAll(timeout * 10);
          await this.local.fence({ restart: false });
          this.hooks.rolePublished?.('fenced', plan.epoch);
          text += `; ${proxies}; ${drainText}; pushed ${pushed} branch(es) the remote lacked; stopped taking writes`;
          return { text, orphans: [] };
        }
        if (previous && previous.epoch === plan.epoch && previous.state !== 'stable') return { text: `already published at epoch ${plan.epoch}`, orphans: [] };
        const topology = buildTopology({ epoch: plan.epoch, state, primary: null, outgoing: plan.fromPrimary, members: snapshot.members, previous, reason: record.reason, now: this.now(), replication: this.settings.replication });
        return { text, topology, orphans: [] };
      }
      case 'disable-read-only':
      case 'recover':
      case 'enable-push-on-write':
        return this.executeLocal(plan, step);
      case 'reroute': {
        const snapshot = await this.store.snapshot();
        const previous = snapshot.topology?.value ?? null;
        if (previous && previous.epoch === plan.epoch && previous.state === 'stable' && previous.primary === plan.candidate) {
          return { text: 'already rerouted', orphans: [] };
        }
        const topology = buildTopology({ epoch: plan.epoch, state: 'stable', primary: plan.candidate, outgoing: plan.fromPrimary, members: snapshot.members, previous, reason: record.reason, now: this.now(), replication: this.settings.replication });
        return { text: `published stable topology: primary ${plan.candidate} at epoch ${plan.epoch}`, topology, orphans: [] };
      }
    }
  }

  /**
   * Cluster mode, the outgoing primary's share of a hand-over: Dolt's graceful step-down, which
   * waits for the standbys. Invariant: the candidate holds every commit when this node stops being
   * primary. Writes are held and drained by now, so a candidate caught up before the call stays so;
   * it is checked before (nothing changes when it lags) and in Dolt's own answer after.
   */
  private async handOverClustered(plan: FailoverPlan, deadline: number): Promise<string> {
    const timeout = this.settings.sqlTimeoutMs;
    if (this.local.handOverToStandby === undefined) throw new Error('this node\'s Dolt cannot hand over in cluster mode (not managed by this agent)');
    // The last commits before the hold are still on their way (Dolt pushes asynchronously): wait
    // for them, within the drain bound (and at least a few seconds), before judging the candidate.
    const waitUntil = Math.max(deadline, this.now() + 5 * timeout);
    let lagging = await this.candidateLag(plan.candidate);
    while (lagging.length > 0 && this.now() < waitUntil) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      lagging = await this.candidateLag(plan.candidate);
    }
    if (lagging.length > 0) {
      throw new FailoverAbortedError(
        `${plan.candidate} has not caught up on ${lagging.map((row) => `${row.database} (${row.error ?? (row.lagMs === null ? 'nothing replicated yet' : `${row.lagMs} ms behind`)})`).join(', ')}: still primary, not handing over`,
      );
    }
    const caughtUp = await this.local.handOverToStandby(plan.epoch, 1, timeout * 10);
    const missed = caughtUp.filter((row) => row.remote === plan.candidate && !row.caughtUp);
    if (missed.length > 0) throw new Error(`handed over, but Dolt reports ${plan.candidate} behind on ${missed.map((row) => row.database).join(', ')}: not promoting it`);
    const standbys = [...new Set(caughtUp.filter((row) => row.caughtUp).map((row) => row.remote))].sort();
    return `handed over with dolt_cluster_transition_to_standby: ${standbys.join(', ') || 'no standby'} caught up; a cluster standby at epoch ${plan.epoch}`;
  }

  /** The databases `candidate` lags behind this primary on, by Dolt's dolt_cluster_status. */
  private async candidateLag(candidate: string): Promise<StandbyStatus[]> {
    const status = await withSession(this.local.endpoint, this.settings.sqlTimeoutMs, clusterStatus);
    return status.filter((row) => row.standby === candidate && (row.lagMs !== 0 || row.error !== null));
  }

  /** The steps that touch only the local Dolt: no topology write. */
  private async executeLocal(plan: FailoverPlan, step: 'disable-read-only' | 'recover' | 'enable-push-on-write'): Promise<{ text: string; orphans: string[] }> {
    if (this.settings.replication === 'cluster') return this.executeLocalClustered(plan, step);
    const timeout = this.settings.sqlTimeoutMs;
    switch (step) {
      case 'disable-read-only': {
        if (this.local.runningRole === 'standby') return { text: 'already writable on its private listener', orphans: [] };
        await this.local.ensureRole('standby');
        return { text: `restarted dolt sql-server writable on private port ${this.local.endpoint.port}, replication off`, orphans: [] };
      }
      case 'recover': {
        // Recovery runs only where no client can write (a resumed plan may find Dolt in another role).
        await this.local.ensureRole('standby');
        // A database the cluster holds but this node never got (created at run time, no replica
        // asked for it yet) is cloned first, so that recovery and the new primary cover it too.
        // One dropped there and still held here is dropped, so it does not come back.
        const catalog = (await this.store.snapshot()).databases?.value ?? null;
        const { alignment, outcomes } = await this.database.recover(catalog, plan.epoch, timeout * 30, 'promote');
        return { text: describeAlignment(alignment) + describeOutcomes(outcomes), orphans: outcomes.flatMap((outcome) => (outcome.orphanBranch ? [`${outcome.database}:${outcome.orphanBranch}`] : [])) };
      }
      case 'enable-push-on-write': {
        await this.local.ensureRole('primary');
        this.hooks.rolePublished?.('primary', plan.epoch);
        // Commits kept because they were ahead of the remote, or recovered from a backup, are not on
        // the remote yet; push-on-write would send them only with the next commit. Best effort: an
        // unreachable remote must not stall the failover, and the agent reports the gap.
        const pushed = await this.database.pushAll(timeout * 10).then(
          (count) => (count === 0 ? 'the remote has every head' : `pushed ${count} branch(es) the remote lacked`),
          (error: Error) => `could not push to the remote yet (${error.message}); commits not on the remote are reported by the agent`,
        );
        return { text: `restarted dolt sql-server on its public listener with dolt_replicate_to_remote = '${this.settings.remote}' under the keeper; ${pushed}`, orphans: [] };
      }
    }
  }

  /**
   * Cluster mode's local steps: the candidate is a cluster standby that holds what the primary
   * replicated to it, so it recovers nothing; it becomes writable by assuming the primary role at
   * the plan's epoch, at run time and under the keeper, in enable-push-on-write (the same step as
   * remote mode, so the invariant "primary only through that step" holds in both).
   */
  private async executeLocalClustered(plan: FailoverPlan, step: 'disable-read-only' | 'recover' | 'enable-push-on-write'): Promise<{ text: string; orphans: string[] }> {
    switch (step) {
      case 'disable-read-only': {
        const was = this.local.runningRole;
        // A resumed plan may find Dolt without cluster: (fenced, restarted): clustered again, below the plan's epoch.
        await this.local.ensureRole('replica', plan.epoch - 1);
        return { text: was === 'replica' ? 'a cluster standby already: it turns writable by assuming the primary role' : `restarted dolt sql-server as a cluster standby at epoch ${plan.epoch - 1}`, orphans: [] };
      }
      case 'recover': {
        await this.database.recover(null, plan.epoch, this.settings.sqlTimeoutMs, 'promote');
        return { text: 'nothing to recover: cluster replication put on this standby every commit the primary replicated to it', orphans: [] };
      }
      case 'enable-push-on-write': {
        await this.local.ensureRole('primary', plan.epoch);
        this.hooks.rolePublished?.('primary', plan.epoch);
        return { text: `assumed the cluster primary role at epoch ${plan.epoch} (dolt_assume_cluster_role, no restart) under the keeper; Dolt replicates every commit to its standbys`, orphans: [] };
      }
    }
  }

  /**
   * Waits until every live proxy's presence record (proto/proxy-presence.ts) says it handed the
   * old primary over at `epoch`, or until `deadline`. Says what it saw, for the history step.
   */
  private async awaitProxies(epoch: number, deadline: number): Promise<string> {
    const started = this.now();
    let pending: string[] = [];
    let total = 0;
    let lastError: string | null = null;
    for (;;) {
      try {
        const proxies = await this.store.listProxies();
        total = proxies.length;
        pending = proxies.filter((proxy) => !proxyHandedOver(proxy, epoch)).map((proxy) => `${proxy.id} (epoch ${proxy.epoch}, ${proxy.draining} draining)`);
        lastError = null;
      } catch (error) {
        // etcd away is waited out to the drain bound; anything else is not a reason to wait.
        if (!(error instanceof StoreUnavailableError)) throw error;
        lastError = error.message;
      }
      if ((lastError === null && pending.length === 0) || this.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const waited = this.now() - started;
    if (lastError !== null) return `could not read the proxies' records (${lastError}) within ${waited} ms`;
    if (pending.length > 0) return `${pending.length} of ${total} prox${total === 1 ? 'y' : 'ies'} had not let go at the drain bound: ${pending.join(', ')}`;
    return total === 0 ? 'no proxy registered' : `${total} prox${total === 1 ? 'y' : 'ies'} holding writes in ${waited} ms`;
  }
}

function describeOutcomes(outcomes: BranchOutcome[]): string {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome.action, (counts.get(outcome.action) ?? 0) + 1);
  const sources = [...new Set(outcomes.map((outcome) => outcome.source))].join(', ');
  return [...counts.entries()].map(([action, count]) => `${count} ${action}`).join(', ') + (sources ? ` (from ${sources})` : '');
}
