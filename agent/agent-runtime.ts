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
import { catalogNames, type MemberRecord, type OperationRecord, type Topology } from '../proto';
import { decide, type Decision, type FailoverPlan, type SelfObservation } from './ha';
import type { AgentConfig } from './agent-config';
import { join } from 'node:path';
import { AgentMetrics } from './agent-metrics';
import { LeaseKeeper } from './lease-keeper';
import { buildObservation } from './observation-builder';
import { NodeStateFile, type NodeState } from './node-state';
import { CompareFailedError, type ClusterSnapshot, type ClusterStore } from './store/cluster-store';
import { ExternalLocalDolt, ManagedLocalDolt, type LocalDolt } from './dolt/local-dolt';
import { DoltSqlServer } from './dolt/sql-server';
import type { DoltServerRole } from './dolt/server-config';
import { listDatabases, quoteIdentifier, withSession, type SqlEndpoint } from './dolt/sql-session';
import { inspectData, notOnRemoteByDatabase } from './dolt/inspector';
import { DatabaseCatalogSync, type TaggedInspection } from './database-catalog-sync';
import { alignWithCatalog, describeAlignment } from './dolt/database-sync';
import { recoverNewestCommits } from './dolt/recovery';
import { HealthTracker } from './health/health-tracker';
import { SqlHealthCheck } from './health/sql-check';
import { HostProbe } from './health/host-probe';
import { FailoverExecutor, type ExecutorHooks, type ExecutorSettings } from './failover/failover-executor';
import { buildTopology } from './failover/topology-builder';
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
  private readonly executor: FailoverExecutor;
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
    if (config.dolt.mode === 'managed') {
      const server = new DoltSqlServer({
        env: { binary: config.dolt.binary, rootPath: `${config.dolt.nodeDir}/home` },
        nodeDir: config.dolt.nodeDir,
        settings: { dataDir: config.dolt.dataDir, host: config.dolt.host, port: config.dolt.port, role: 'replica', remoteName: config.dolt.remote, remoteUrlTemplate: config.dolt.remoteUrlTemplate, secureFilePriv: config.dolt.secureFilePriv },
        user: config.dolt.user,
        password: config.dolt.password,
        dieWithParent: true,
        keeperEntry,
      });
      const vouch = (): number | null => this.lease.keeperDeadline(config.ha.fenceMarginMs);
      this.local = new ManagedLocalDolt(server, { user: config.dolt.user, password: config.dolt.password }, logger.child('dolt'), vouch);
    } else {
      this.local = new ExternalLocalDolt(this.publicEndpoint);
    }
    this.tracker = new HealthTracker(config.ha.failureThreshold);
    this.probe = new HostProbe(logger.child('probe'), config.checkTimeoutMs);
    this.stateFile = new NodeStateFile(config.dolt.nodeDir);
    this.state = this.stateFile.read();
    this.executorSettings = {
      name: config.name,
      remote: config.dolt.remote,
      backupUrl: config.backup?.url ?? null,
      remoteUrlTemplate: config.dolt.remoteUrlTemplate,
      sqlTimeoutMs: Math.max(config.checkTimeoutMs, 2000),
      // Used only by a hand-over without an op; an op carries its own (switchover --drain-timeout).
      drainTimeoutMs: defaultDrainTimeoutMs,
    };
    this.executor = this.executorWith({});
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
      await this.local.ensureRole(role);
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
      await this.act(decision, snapshot);
      if (snapshot?.leader?.name === this.config.name) await this.keepPrefixSmall(snapshot);
      if (snapshot !== null && (await this.catalogSync.sync(snapshot, this.taggedInspection, this.state.epoch))) this.lastInspectAt = 0;
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
        const inspection = await withSession(this.local.endpoint, Math.max(2000, this.config.checkTimeoutMs), (session) => inspectData(session, { remoteName: this.config.dolt.remote, fetch: writable }));
        this.taggedInspection = { inspection, role: role === this.local.runningRole ? role : null };
        this.metrics.commitsNotOnRemote.set(inspection.commitsNotOnRemote);
        this.metrics.commitsBehindRemote.set(inspection.commitsBehindRemote);
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

  private async act(decision: Decision, snapshot: ClusterSnapshot | null): Promise<void> {
    switch (decision.action) {
      case 'renew-lease':
        if (snapshot) await this.reconcileMembership(snapshot);
        return;
      case 'wait':
        return;
      case 'fence-self': {
        if (this.local.mode === 'managed' && (this.local.runningRole === 'primary' || this.local.runningRole === 'standby')) await this.local.fence();
        if (this.state.role === 'primary') this.setState({ ...this.state, role: 'fenced' });
        if (decision.releaseLeader) await this.store.releaseLeader(this.config.name);
        return;
      }
      case 'release-leader':
        await this.store.releaseLeader(this.config.name);
        return;
      case 'acquire-leader': {
        const lease = await this.lease.current();
        if (!(await this.store.acquireLeader(this.config.name, lease))) return;
        if (snapshot) {
          // The snapshot was read before this cycle published our own record: add it.
          const members = { ...snapshot.members, [this.config.name]: this.memberRecord() };
          // Published as a fence with no primary: proxies hold writes until this node's Dolt
          // takes them, and the next cycle resumes the bootstrap like any failover.
          const reason = `bootstrap of ${this.config.name} at epoch ${decision.epoch} (${decision.reason})`;
          const topology = buildTopology({ epoch: decision.epoch, state: 'failover', primary: null, outgoing: null, members, previous: null, reason, now: this.now() });
          const at = new Date(this.now()).toISOString();
          await this.store.casTopology(topology, null, {
            epoch: decision.epoch, kind: 'bootstrap', reason, fromPrimary: null, candidate: this.config.name, handOver: false, opId: null,
            takeoverFrom: null, startedAt: at, endedAt: null, outcome: 'running',
            steps: [{ name: 'fence', state: 'done', startedAt: at, endedAt: at, durationMs: 0, executor: this.config.name, detail: `published failover at epoch ${decision.epoch} with no primary: proxies hold writes` }],
            orphanedBranches: [],
          });
        }
        this.setState({ ...this.state, epoch: decision.epoch });
        return;
      }
      case 'start-failover':
      case 'resume-failover':
        // A resumed plan may be the target's share of an operator's switchover: keep the op id so
        // the op is closed when the reroute is done.
        await this.runPlan(decision, decision.reason, decision.opId, snapshot, decision.action === 'start-failover' ? 'automatic' : 'resumed');
        return;
      case 'execute-op':
        await this.runPlan(decision, decision.reason, decision.op.id, snapshot, 'operator');
        return;
      case 'refuse-op':
        // Only from pending: an agent that claimed it meanwhile keeps it.
        await this.updateOp(decision.op.id, (op) => (op.state === 'pending' ? { ...op, state: 'refused', reason: decision.reason } : null));
        return;
      case 'rejoin-as-replica':
        await this.rejoin(decision.epoch, decision.orphanEpoch);
        return;
      case 'follow':
        if (this.local.mode === 'managed' && this.local.runningRole !== 'replica') await this.local.ensureRole('replica');
        if (this.state.role !== 'replica' || this.state.epoch !== decision.epoch) this.setState({ ...this.state, role: 'replica', epoch: decision.epoch });
        return;
    }
  }

  /**
   * The primary keeps `topology.nodes` in step with the live members (a replica joined, went
   * down, or came back) at the same epoch: the epoch counts primaries, not membership, and proxies
   * apply same-epoch changes. Down replicas stay listed (role 'down') so proxies skip them.
   */
  private async reconcileMembership(snapshot: ClusterSnapshot): Promise<void> {
    const current = snapshot.topology;
    if (!current || current.value.state !== 'stable' || current.value.primary !== this.config.name) return;
    const members = { ...snapshot.members, [this.config.name]: this.memberRecord() };
    const next = buildTopology({ epoch: current.value.epoch, state: 'stable', primary: this.config.name, outgoing: null, members, previous: current.value, reason: current.value.reason, now: this.now() });
    // A node whose agent is gone stays listed, marked down.
    for (const name of Object.keys(current.value.nodes)) {
      if (!members[name] && next.nodes[name]) next.nodes[name] = { ...next.nodes[name], role: 'down' };
    }
    if (sameNodes(next.nodes, current.value.nodes)) return;
    const changes = describeNodeChanges(current.value.nodes, next.nodes);
    next.reason = `${current.value.reason.split(' | membership: ')[0]} | membership: ${changes}`;
    await this.store.casTopology(next, current.modRevision).then(
      () => this.logger.info('topology membership updated', { epoch: next.epoch, changes }),
      (error: Error) => this.logger.warn('topology membership update lost a race; retrying next cycle', { error: error.message }),
    );
  }

  private async runPlan(plan: FailoverPlan, reason: string, opId: string | null, snapshot: ClusterSnapshot | null, trigger: 'automatic' | 'resumed' | 'operator'): Promise<void> {
    const lease = await this.lease.current();
    const holdsKey = (snapshot?.leader?.name === this.config.name && snapshot.leader.lease === lease.id) || (await this.store.acquireLeader(this.config.name, lease));
    if (!holdsKey) {
      this.logger.info('another node holds the leader key; observing again', { plan: plan.kind, epoch: plan.epoch });
      return;
    }
    // The executor claims the op (pending → running, by this agent) in the transaction that starts
    // the failover's history: see FailoverExecutor.begin.
    // The op mirrors the history's steps one write after another, and all before its outcome:
    // written concurrently, an older step list could land last, and whoever follows the op would
    // see it succeed before its last step did.
    let mirrored: Promise<void> = Promise.resolve();
    const mirror = opId
      ? (steps: OperationRecord['steps']): void => {
          mirrored = mirrored.then(() => this.updateOp(opId, (op) => ({ ...op, steps }))).catch(() => undefined);
        }
      : null;
    const executor = mirror
      ? this.executorWith({
          historyChanged: (record) =>
            mirror(record.steps.map((step) => ({ name: step.name, state: step.state, startedAt: step.startedAt, endedAt: step.endedAt, detail: step.detail, executor: step.executor }))),
        })
      : this.executor;
    try {
      await executor.run(plan, reason);
      if (plan.steps.includes('enable-push-on-write')) this.setState({ role: 'primary', epoch: plan.epoch, primaryEpoch: plan.epoch });
      else this.setState({ ...this.state, epoch: Math.max(this.state.epoch, plan.epoch) });
      // Our step list reaches the op before the key does: the next executor mirrors its own after it.
      await mirrored;
      if (plan.releaseLeaderAfter) await this.store.releaseLeader(this.config.name);
      if (plan.steps.includes('reroute')) this.metrics.failovers.inc({ kind: plan.kind, trigger, outcome: 'succeeded' });
      if (opId && (plan.steps.includes('reroute') || !plan.releaseLeaderAfter)) {
        // The running reason was this agent's decision to act; the outcome is what the requester wants to read.
        const outcome = plan.steps.includes('reroute') ? `${plan.candidate} is primary at epoch ${plan.epoch}` : null;
        await mirrored;
        await this.updateOp(opId, (op) => (this.runsOp(op) ? { ...op, state: 'succeeded', epoch: plan.epoch, reason: outcome ?? op.reason } : null));
      }
    } catch (error) {
      this.metrics.failovers.inc({ kind: plan.kind, trigger, outcome: 'failed' });
      await mirrored;
      // Only an op this agent claimed: a plan stopped before its claim leaves the op to its owner.
      if (opId) await this.updateOp(opId, (op) => (this.runsOp(op) ? { ...op, state: 'failed', reason: (error as Error).message } : null)).catch(() => undefined);
      throw error;
    }
  }

  private async rejoin(epoch: number, orphanEpoch: number): Promise<void> {
    if (this.local.mode !== 'managed') {
      this.setState({ ...this.state, role: 'replica', epoch });
      return;
    }
    // Recovery runs on the standby's private listener: no client writes while it saves and resets.
    await this.local.ensureRole('standby');
    const catalog = (await this.store.snapshot()).databases?.value ?? null;
    const outcomes = await withSession(this.local.endpoint, 60_000, async (session) => {
      const alignment = await alignWithCatalog(session, catalog, this.config.dolt.remoteUrlTemplate, this.config.dolt.remote);
      if (alignment.cloned.length + alignment.dropped.length > 0) this.logger.info(`rejoining: ${describeAlignment(alignment)}`.replace(/; $/, ''));
      return recoverNewestCommits(session, { mode: 'rejoin', primaryRemote: this.config.dolt.remote, epoch: orphanEpoch });
    });
    const orphans = outcomes.filter((outcome) => outcome.orphanBranch).map((outcome) => `${outcome.database}:${outcome.orphanBranch}`);
    if (orphans.length > 0) {
      this.metrics.orphanedBranches.inc(orphans.length);
      this.logger.warn('saved commits the remote lacked as orphan branches', { orphans });
      const history = (await this.store.listHistory(1))[0];
      if (history) await this.store.putHistory({ ...history, orphanedBranches: [...new Set([...history.orphanedBranches, ...orphans])] });
    }
    await this.local.ensureRole('replica');
    this.setState({ role: 'replica', epoch, primaryEpoch: this.state.primaryEpoch });
    this.logger.info('rejoined as a read replica', { epoch, orphans });
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

  private runsOp(op: OperationRecord): boolean {
    return op.state === 'running' && op.executor === this.config.name;
  }

  /** Rewrites the op by `change` (null: leave it as it is), compare-and-swap on a fresh read. */
  private async updateOp(id: string, change: (op: OperationRecord) => OperationRecord | null): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const snapshot = await this.store.snapshot();
      const current = snapshot.ops.find((op) => op.value.id === id);
      if (!current) return;
      const next = change(current.value);
      if (next === null) return;
      try {
        await this.store.putOperation(next, current.modRevision);
        return;
      } catch (error) {
        if (!(error instanceof CompareFailedError)) throw error;
      }
    }
  }
}

function sameNodes(a: Topology['nodes'], b: Topology['nodes']): boolean {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const name of names) {
    const x = a[name];
    const y = b[name];
    if (!x || !y || x.role !== y.role || x.sql.host !== y.sql.host || x.sql.port !== y.sql.port || (x.weight ?? 1) !== (y.weight ?? 1)) return false;
  }
  return true;
}

function describeNodeChanges(before: Topology['nodes'], after: Topology['nodes']): string {
  const parts: string[] = [];
  for (const [name, node] of Object.entries(after)) {
    const old = before[name];
    if (!old) parts.push(`${name} joined as ${node.role}`);
    else if (old.role !== node.role) parts.push(`${name} ${old.role} -> ${node.role}`);
    else if (old.sql.host !== node.sql.host || old.sql.port !== node.sql.port) parts.push(`${name} moved to ${node.sql.host}:${node.sql.port}`);
  }
  return parts.join(', ') || 'addresses updated';
}
