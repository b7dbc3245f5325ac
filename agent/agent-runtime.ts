/**
 * One agent beside one Dolt server: the thin loop around the pure `decide`. Every cycle it
 * observes (its Dolt's health and data, one etcd snapshot), decides, and acts through named,
 * idempotent verbs. The lease lives on its own timer (LeaseKeeper) so a long step never starves it.
 *
 * Invariants: the local Dolt takes client writes only in the primary role, which it enters only
 * at a failover's enable-push-on-write step (after the fence moved every proxy to the new epoch)
 * and only under the keeper, which kills it once this agent stops vouching for the lease
 * (agent/keeper/); on start a node that was primary comes back read-only ('fenced') until it
 * holds the key again. Lease deadlines are on the fence clock (common/fence-clock.ts).
 */

import type { Logger } from '../common/logger';
import { catalogNames, type MemberRecord } from '../proto';
import { decide, type Decision, type SelfObservation } from './ha';
import type { AgentConfig } from './agent-config';
import { join } from 'node:path';
import { AgentMetrics } from './agent-metrics';
import { LeaseKeeper } from './lease-keeper';
import { buildObservation } from './observation-builder';
import { NodeStateFile, type NodeState } from './node-state';
import type { ClusterSnapshot, ClusterStore } from './store/cluster-store';
import { ExternalLocalDolt, ManagedLocalDolt, type LocalDolt } from './dolt/local-dolt';
import { DoltSqlServer } from './dolt/sql-server';
import type { DoltServerRole } from './dolt/server-config';
import { listDatabases, quoteIdentifier, withSession, type SqlEndpoint } from './dolt/sql-session';
import { inspectData, notOnRemoteByDatabase } from './dolt/inspector';
import { inspectClusterData, standbysBehind } from './dolt/cluster-inspector';
import { ClusterFailoverDatabase } from './failover/cluster-failover-database';
import type { FailoverDatabase } from './failover/failover-database';
import { DatabaseCatalogSync, type TaggedInspection } from './database-catalog-sync';
import { HealthTracker } from './health/health-tracker';
import { SqlHealthCheck } from './health/sql-check';
import { HostProbe } from './health/host-probe';
import { FailoverExecutor, type ExecutorHooks, type ExecutorSettings } from './failover/failover-executor';
import { SqlFailoverDatabase } from './failover/failover-database';
import { DecisionActor } from './decision-actor';
import { BackupScheduler } from './backup-scheduler';
import { defaultDrainTimeoutMs } from './control/op-request';
import type { EtcdUnavailability } from './store/etcd-quorum';
import { searchCommitGraph } from '../proto/outcome';
import { planRetention } from './retention';

export interface LastDecision {
  action: string;
  reason: string;
  /** For 'wait': its WaitCode, so tests and SREs key on a code, not on the reason's words. */
  waitCode: string | null;
  at: string;
}

/** The keeper's compiled entry, beside this file's own (dist/agent/). */
export const keeperEntry = join(__dirname, 'keeper', 'keeper-main.js');

export class AgentRuntime {
  readonly metrics: AgentMetrics;
  readonly local: LocalDolt;
  /** Where clients reach this node's Dolt; the agent's own sessions use `local.endpoint`. */
  private readonly publicEndpoint: SqlEndpoint;
  private readonly tracker: HealthTracker;
  private readonly probe: HostProbe;
  private readonly lease: LeaseKeeper;
  private readonly stateFile: NodeStateFile;
  private readonly executorSettings: ExecutorSettings;
  /** The node's Dolt data as failover steps and rejoins use it. */
  private readonly database: FailoverDatabase;
  /** What each decision does (decision-actor.ts). */
  private readonly actor: DecisionActor;
  private readonly backup: BackupScheduler | null;
  private state: NodeState;
  private lastInspectAt = 0;
  /** The last inspection, with the role Dolt ran in while it was taken. */
  private taggedInspection: TaggedInspection | null = null;
  /** One kept connection for health checks: the agent's slot when Dolt is full (sql-check.ts). */
  private readonly healthCheck = new SqlHealthCheck();
  private readonly catalogSync: DatabaseCatalogSync;
  private lastProbeAt = 0;
  /** History below this epoch was deleted already (retention.ts): no range delete every cycle. */
  private historyPrunedBelow = 0;
  private lastMembers: Record<string, MemberRecord> = {};
  /** Why this cycle's snapshot failed, when it did. */
  private etcdUnavailable: EtcdUnavailability = 'unreachable';
  private explaining = false;
  private readFailed = false;
  /** The newest snapshot read: what decide sees while etcd does not answer (observation-builder.ts). */
  private lastSnapshot: ClusterSnapshot | null = null;
  private hostReachable = true;
  private leaderVacantSince: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private lastDecisionValue: LastDecision | null = null;
  private lastLogged = '';
  private cycleDone: Promise<void> = Promise.resolve();
  private inCycle = false;
  private wakeRequested = false;
  /** The next cycle was triggered by an etcd change: react first, measure data later. */
  private woken = false;
  private unwatch: (() => Promise<void>) | null = null;

  constructor(
    readonly config: AgentConfig,
    private readonly store: ClusterStore,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.metrics = new AgentMetrics({ cluster: config.cluster, node: config.name });
    this.publicEndpoint = { host: config.dolt.host, port: config.dolt.port, user: config.dolt.user, password: config.dolt.password };
    this.lease = new LeaseKeeper(store, config.ha.leaseTtlMs, logger.child('lease'), this.metrics);
    this.stateFile = new NodeStateFile(config.dolt.nodeDir);
    this.state = this.stateFile.read();
    const cluster = config.dolt.cluster;
    if (config.dolt.mode === 'managed') {
      const server = new DoltSqlServer({
        env: { binary: config.dolt.binary, rootPath: `${config.dolt.nodeDir}/home` },
        nodeDir: config.dolt.nodeDir,
        settings: {
          dataDir: config.dolt.dataDir, host: config.dolt.host, port: config.dolt.port, role: 'replica', remoteName: config.dolt.remote, remoteUrlTemplate: config.dolt.remoteUrlTemplate,
          secureFilePriv: config.dolt.secureFilePriv, localInfile: config.dolt.localInfile,
          cluster: cluster === null ? null : { peers: cluster.peers, remotesapi: cluster.remotesapi, epoch: this.state.epoch },
        },
        user: config.dolt.user,
        password: config.dolt.password,
        dieWithParent: true,
        keeperEntry,
      });
      const vouch = (): number | null => this.lease.keeperDeadline(config.ha.fenceMarginMs);
      this.local = new ManagedLocalDolt(server, { user: config.dolt.user, password: config.dolt.password }, logger.child('dolt'), vouch, undefined, cluster?.ackWritesTimeoutSecs ?? 0);
    } else {
      this.local = new ExternalLocalDolt(this.publicEndpoint);
    }
    this.tracker = new HealthTracker(config.ha.failureThreshold);
    this.probe = new HostProbe(logger.child('probe'), config.checkTimeoutMs);
    this.executorSettings = {
      name: config.name,
      remote: config.dolt.remote,
      backupUrl: config.backup?.url ?? null,
      remoteUrlTemplate: config.dolt.remoteUrlTemplate,
      sqlTimeoutMs: Math.max(config.checkTimeoutMs, 2000),
      // Used only by a hand-over without an op; an op carries its own (switchover --drain-timeout).
      drainTimeoutMs: defaultDrainTimeoutMs,
      replication: config.dolt.replication,
    };
    this.database =
      cluster === null
        ? new SqlFailoverDatabase(this.local, this.executorSettings, now)
        : new ClusterFailoverDatabase(this.local, { name: config.name, orphanDir: `${config.dolt.nodeDir}/orphans` }, () => this.primaryEndpoint(), now);
    this.actor = new DecisionActor(
      { name: config.name, state: () => this.state, setState: (next) => this.setState(next), memberRecord: () => this.memberRecord() },
      { store, local: this.local, database: this.database, lease: this.lease, executorWith: (hooks) => this.executorWith(hooks), metrics: this.metrics, logger, now, replication: config.dolt.replication },
    );
    this.catalogSync = new DatabaseCatalogSync(
      { name: config.name, remoteUrlTemplate: config.dolt.remoteUrlTemplate, sqlTimeoutMs: Math.max(5000, config.checkTimeoutMs) },
      store,
      this.local,
      logger.child('catalog'),
      now,
    );
    // Backups run only on a primary, which listens on the public endpoint.
    this.backup = config.backup ? new BackupScheduler(config.backup, this.publicEndpoint, this.metrics, logger.child('backup'), now) : null;
  }

  private executorWith(hooks: ExecutorHooks): FailoverExecutor {
    return new FailoverExecutor(
      this.executorSettings,
      this.store,
      this.local,
      this.logger.child('failover'),
      { stepFinished: (step, ms, ok) => this.metrics.failoverStepSeconds.observe({ step, outcome: ok ? 'ok' : 'failed' }, ms / 1000), ...hooks },
      this.now,
      this.database,
    );
  }

  get lastDecision(): LastDecision | null {
    return this.lastDecisionValue;
  }

  get nodeState(): NodeState {
    return { ...this.state };
  }

  /** Starts the local Dolt (managed mode) read-only, then the loop. */
  async start(): Promise<void> {
    if (this.local.mode === 'managed') {
      // Never writable at start: a former primary comes back fenced until decide makes it leader.
      const role: DoltServerRole = this.state.role === 'primary' || this.state.role === 'fenced' ? 'fenced' : 'replica';
      if (this.state.role === 'primary') this.setState({ ...this.state, role: 'fenced' });
      await this.local.ensureRole(role, this.state.epoch);
    }
    await this.dropStaleLeaderKey();
    this.lease.start();
    this.running = true;
    this.schedule(0);
    // Look again as soon as the leader, topology, pause or an op changes, instead of waiting out
    // the check interval: a switchover's write pause includes this wait.
    this.unwatch = await this.store.watchDecisionKeys(() => this.wake()).catch((error: Error) => {
      this.logger.warn('watching etcd failed; relying on the check interval', { error: error.message });
      return null;
    });
    this.logger.info('agent started', { name: this.config.name, cluster: this.config.cluster, role: this.state.role, epoch: this.state.epoch });
  }

  /** Cluster mode's rejoin: where the published primary's Dolt answers, with this agent's credentials. */
  private async primaryEndpoint(): Promise<SqlEndpoint | null> {
    const topology = (await this.store.snapshot()).topology?.value ?? null;
    const node = topology?.primary ? topology.nodes[topology.primary] : undefined;
    if (!node || topology?.primary === this.config.name) return null;
    return { host: node.sql.host, port: node.sql.port, user: this.config.dolt.user, password: this.config.dolt.password };
  }

  /**
   * A leader key with our name but a predecessor's lease (this agent restarted before that lease
   * lapsed) would make decide believe we lead on a lease we cannot renew: delete it.
   */
  private async dropStaleLeaderKey(): Promise<void> {
    try {
      const snapshot = await this.store.snapshot();
      const lease = await this.lease.current();
      if (snapshot.leader?.name === this.config.name && snapshot.leader.lease !== lease.id) {
        await this.store.releaseLeader(this.config.name);
        this.logger.warn('deleted a leader key left by this agent\'s previous run', { staleLease: snapshot.leader.lease });
      }
    } catch (error) {
      this.logger.warn('could not check for a stale leader key (etcd unreachable?)', { error: (error as Error).message });
    }
  }

  /**
   * Leadership is the key AND the lease it is bound to. A key with our name on a lease that is no
   * longer ours (it lapsed by our clock, and the lease keeper took a fresh one, while etcd has not
   * deleted the key yet) must not make decide believe we lead: our Dolt was fenced when that lease
   * ran out, and the key is about to vanish. Delete it now and decide as if it were gone; taking
   * the key again goes through a failover at a new epoch.
   */
  private async withoutKeyOfLapsedLease(snapshot: ClusterSnapshot): Promise<ClusterSnapshot> {
    const id = this.lease.currentId();
    if (snapshot.leader?.name !== this.config.name || id === null || snapshot.leader.lease === id) return snapshot;
    this.logger.warn('the leader key names this node but a lapsed lease; deleting it', { keyLease: snapshot.leader.lease, currentLease: id });
    await this.store.releaseLeader(this.config.name).catch((error: Error) => this.logger.warn('deleting the stale leader key failed', { error: error.message }));
    return { ...snapshot, leader: null };
  }

  /** Stops the loop; in managed mode stops Dolt before giving up the lease (no writes after). */
  async stop(options: { stopDolt?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.running = false;
    clearTimeout(this.timer);
    await this.unwatch?.();
    await this.cycleDone.catch(() => undefined);
    if (options.stopDolt ?? true) await this.local.stop();
    this.lease.stop();
    await this.lease.revoke();
    this.probe.close();
    this.healthCheck.close();
    this.store.close();
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.inCycle = true;
      this.cycleDone = this.cycle().finally(() => {
        this.inCycle = false;
        const again = this.wakeRequested;
        this.wakeRequested = false;
        this.schedule(again ? 0 : this.config.checkIntervalMs);
      });
    }, delay);
  }

  private wake(): void {
    if (!this.running) return;
    this.woken = true;
    if (this.inCycle) this.wakeRequested = true;
    else this.schedule(0);
  }

  private setState(next: NodeState): void {
    this.state = next;
    this.stateFile.write(next);
    this.metrics.setRole(next.role);
    this.metrics.epoch.set(next.epoch);
  }

  private async cycle(): Promise<void> {
    try {
      await this.observeLocal();
      const read = await this.store.snapshot().catch((error: Error) => {
        this.logger.warn('etcd snapshot failed', { error: error.message });
        return null;
      });
      this.readFailed = read === null;
      if (read) this.etcdUnavailable = 'unreachable';
      else this.explainUnavailable();
      this.metrics.etcdReachable.set(read ? 1 : 0);
      let snapshot: ClusterSnapshot | null = null;
      if (read) {
        await this.publishMember().catch((error: Error) => this.logger.warn('publishing the member record failed', { error: error.message }));
        snapshot = await this.withoutKeyOfLapsedLease(read);
        this.lastSnapshot = snapshot;
        this.lastMembers = snapshot.members;
        if (snapshot.leader === null) this.leaderVacantSince ??= this.now();
        else this.leaderVacantSince = null;
      }
      const decision = decide(this.observe(snapshot), this.config.ha, this.now());
      this.record(decision);
      if (this.stopped) return;
      await this.actor.act(decision, snapshot);
      if (snapshot?.leader?.name === this.config.name) await this.keepPrefixSmall(snapshot);
      // Cluster mode replicates CREATE and DROP DATABASE by itself: no catalog to follow.
      if (snapshot !== null && this.config.dolt.replication === 'remote' && (await this.catalogSync.sync(snapshot, this.taggedInspection, this.state.epoch))) this.lastInspectAt = 0;
    } catch (error) {
      this.logger.error('agent cycle failed', { error: (error as Error).message });
    }
  }

  /** The leader deletes finished operations and history beyond what it keeps (retention.ts). */
  private async keepPrefixSmall(snapshot: ClusterSnapshot): Promise<void> {
    const plan = planRetention(
      snapshot.ops.map((op) => op.value),
      snapshot.latestHistory?.epoch ?? null,
      this.config.retention,
      this.now(),
    );
    const historyBelow = plan.historyBelow !== null && plan.historyBelow > this.historyPrunedBelow ? plan.historyBelow : null;
    if (plan.opIds.length === 0 && historyBelow === null) return;
    try {
      await this.store.prune(plan.opIds, historyBelow);
      if (historyBelow !== null) this.historyPrunedBelow = historyBelow;
      this.logger.info('deleted old records from etcd', { operations: plan.opIds.length, historyBelowEpoch: historyBelow });
    } catch (error) {
      this.logger.warn('deleting old operations and history failed; will try again', { error: (error as Error).message });
    }
  }

  private async observeLocal(): Promise<void> {
    const now = this.now();
    // A primary whose Dolt died is not restarted in place: its failing checks make decide fence
    // it and release the key, so a replica takes over; it comes back read-only after that.
    if (this.state.role !== 'primary' && (await this.local.restartIfCrashed(now))) this.metrics.doltRestarts.inc();
    const check = await this.healthCheck.check(this.local.endpoint, this.config.checkTimeoutMs, this.now);
    // A managed server whose process exited (even after it answered this check) is down now.
    if (this.local.mode === 'managed' && this.local.runningRole === null) this.tracker.recordExited({ ...check, error: 'dolt sql-server exited' });
    else this.tracker.record(check);
    this.metrics.healthy.set(this.tracker.healthy ? 1 : 0);
    if (check.ok && check.latencyMs !== null) this.metrics.healthCheckSeconds.observe(check.latencyMs / 1000);
    else this.metrics.healthCheckFailures.inc();
    const targets = this.probeTargets();
    if (now - this.lastProbeAt >= 5 * this.config.checkIntervalMs && targets.length > 0) {
      this.lastProbeAt = now;
      const results = await Promise.all(targets.map((target) => this.probe.probe(target)));
      this.hostReachable = results.every((result) => result.reachable);
      if (!this.hostReachable) {
        this.logger.warn('peers or etcd unreachable by ping', { unreachable: targets.filter((_, i) => !results[i].reachable).map((t) => t.host) });
      }
    }
    this.tracker.recordHost(this.hostReachable);
    const reacting = this.woken;
    this.woken = false;
    const sinceInspect = now - this.lastInspectAt;
    // A new database on the primary is inspected soon, but at most once a second: an inspection
    // fetches, and a remote that does not answer must not slow every cycle.
    const urgent = sinceInspect >= Math.min(1_000, this.config.inspectIntervalMs) && (await this.primaryHasNewDatabase());
    if (check.ok && !reacting && (sinceInspect >= this.config.inspectIntervalMs || urgent)) {
      this.lastInspectAt = now;
      const writable = this.local.runningRole === 'primary';
      try {
        const role = this.local.runningRole;
        const inspection = await withSession(this.local.endpoint, Math.max(2000, this.config.checkTimeoutMs), (session) =>
          this.config.dolt.replication === 'cluster' ? inspectClusterData(session, { primary: writable }) : inspectData(session, { remoteName: this.config.dolt.remote, fetch: writable }),
        );
        this.taggedInspection = { inspection, role: role === this.local.runningRole ? role : null };
        if (this.config.dolt.replication === 'cluster') {
          this.metrics.standbysBehind.set(inspection.commitsNotOnRemote);
        } else {
          this.metrics.commitsNotOnRemote.set(inspection.commitsNotOnRemote);
          this.metrics.commitsBehindRemote.set(inspection.commitsBehindRemote);
        }
      } catch (error) {
        this.logger.warn('inspecting heads failed', { error: (error as Error).message });
      }
    }
    if (this.backup && this.local.runningRole === 'primary' && check.ok) await this.backup.maybeSync(now);
  }

  /**
   * On the primary, every cycle: a database the last inspection did not list (CREATE DATABASE a
   * moment ago) is inspected, and so recorded in the catalog, now rather than at the next
   * inspection: until it is in the catalog, a node promoted after this host is lost would not
   * clone it.
   */
  private async primaryHasNewDatabase(): Promise<boolean> {
    if (this.local.mode !== 'managed' || this.local.runningRole !== 'primary') return false;
    // The first inspection of a tenure is taken at once: the catalog sync needs one taken as primary.
    const tagged = this.taggedInspection;
    if (tagged === null || tagged.role !== 'primary') return true;
    const known = new Set([...Object.keys(tagged.inspection.heads), ...catalogNames(this.lastSnapshot?.databases?.value ?? null)]);
    try {
      const names = await listDatabases(this.healthCheck.session(this.local.endpoint, this.config.checkTimeoutMs));
      return names.some((name) => !known.has(name));
    } catch {
      return false;
    }
  }

  /**
   * Who to ping: etcd's hosts and the peers' hosts (from the last snapshot), plus any configured.
   * Together with the SQL check this tells "Dolt is down" from "this host is cut off".
   */
  private probeTargets(): Array<{ host: string; port: number }> {
    const targets = new Map<string, { host: string; port: number }>();
    for (const target of this.config.probeHosts) targets.set(target.host, target);
    for (const endpoint of this.config.etcd.endpoints) {
      const url = new URL(endpoint);
      targets.set(url.hostname, { host: url.hostname, port: Number(url.port || 2379) });
    }
    for (const member of Object.values(this.lastMembers)) {
      if (member.name !== this.config.name && !targets.has(member.sql.host)) targets.set(member.sql.host, member.sql);
    }
    return [...targets.values()];
  }

  private selfObservation(): SelfObservation {
    const health = this.tracker.snapshot();
    // Writable for decide means "takes client writes": a standby on its private listener does not.
    const writable = this.local.mode === 'managed' ? this.local.runningRole === 'primary' : this.state.role === 'primary';
    return {
      name: this.config.name,
      // decide wants the latest check's verdict here; it applies the failure threshold itself.
      health: { healthy: health.consecutiveFailures === 0 && health.lastError === null, consecutiveFailures: health.consecutiveFailures, lastError: health.lastError },
      role: this.state.role,
      epoch: this.state.epoch,
      writable,
    };
  }

  /**
   * Finds out in the background why etcd did not answer, for the next cycle's wait code: awaited
   * here it would stretch a cycle by a call timeout exactly when the fence margin is running out.
   */
  private explainUnavailable(): void {
    if (this.explaining) return;
    this.explaining = true;
    this.store
      .explainUnavailable()
      .catch((): EtcdUnavailability => 'unreachable')
      .then((why) => {
        // etcd may have answered meanwhile: an old verdict must not outlive the outage.
        if (this.readFailed) this.etcdUnavailable = why;
        this.explaining = false;
      });
  }

  private observe(snapshot: ClusterSnapshot | null) {
    return buildObservation(snapshot, {
      self: this.selfObservation(),
      leaseLeftMs: this.lease.leftMs(),
      leaderVacantSince: this.leaderVacantSince,
      lastKnown: this.lastSnapshot,
      etcdUnavailable: this.etcdUnavailable,
    });
  }

  memberRecord(): MemberRecord {
    const inspection = this.taggedInspection?.inspection ?? null;
    return {
      name: this.config.name,
      sql: this.config.dolt.advertise,
      grpc: this.config.grpcAdvertise ? `${this.config.grpcAdvertise.host}:${this.config.grpcAdvertise.port}` : null,
      role: this.state.role,
      epoch: this.state.epoch,
      health: this.tracker.snapshot(),
      heads: inspection?.heads ?? {},
      remoteHeads: inspection?.remoteHeads ?? {},
      commitsNotOnRemote: inspection?.commitsNotOnRemote ?? 0,
      commitsBehindRemote: inspection?.commitsBehindRemote ?? 0,
      notOnRemoteByDatabase: inspection ? notOnRemoteByDatabase(inspection) : {},
      databasesWithoutRemote: inspection?.databasesWithoutRemote ?? [],
      ...(this.config.dolt.replication === 'cluster' && inspection ? { standbysBehind: standbysBehind(inspection) } : {}),
      priority: this.config.priority,
      nofailover: this.config.nofailover,
      backup: this.backup?.status() ?? null,
      updatedAt: new Date(this.now()).toISOString(),
    };
  }

  private async publishMember(): Promise<void> {
    const lease = await this.lease.current();
    await this.store.putMember(this.memberRecord(), lease);
  }

  private record(decision: Decision): void {
    this.lastDecisionValue = { action: decision.action, reason: decision.reason, waitCode: decision.action === 'wait' ? decision.code : null, at: new Date(this.now()).toISOString() };
    this.metrics.decisions.inc({ action: decision.action, code: decision.action === 'wait' ? decision.code : '' });
    // Reasons carry live numbers ("lease valid for 6.0 s"): log on a change of action or code.
    const key = `${decision.action}:${decision.action === 'wait' ? decision.code : ''}`;
    if (key !== this.lastLogged) {
      this.lastLogged = key;
      this.logger.info('decision', { action: decision.action, reason: decision.reason });
    }
  }

  /** Searches this node's own Dolt for an outcome token's commit (`doltgate outcome`, FindCommit). */
  async findCommit(token: string): Promise<{ found: false } | { found: true; database: string; hash: string; liveBranches: string[] }> {
    const finding = await withSession(this.local.endpoint, this.config.checkTimeoutMs * 5, (session) =>
      searchCommitGraph(
        {
          scalar: async (sql) => {
            const rows = await session.query(sql);
            const first = rows[0] === undefined ? undefined : Object.values(rows[0])[0];
            return first === undefined || first === null ? null : String(first);
          },
          useDatabase: async (database) => {
            await session.query(`USE ${quoteIdentifier(database)}`);
          },
        },
        token,
      ),
    );
    return finding.kind === 'found' ? { found: true, database: finding.database, hash: finding.hash, liveBranches: finding.liveBranches } : { found: false };
  }
}
