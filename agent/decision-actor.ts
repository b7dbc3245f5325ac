/**
 * The agent's hands: what each `decide` verdict does (agent-runtime.ts observes and decides;
 * this acts). Every verb is idempotent, so a verdict acted on twice — or half-acted on before a
 * crash and decided again — leaves the same state: take or release the leader key, fence, follow,
 * rejoin with orphans saved, run a failover plan through the FailoverExecutor (and keep the
 * operator's op in step with it), refuse an op, keep the stable topology's membership current.
 *
 * It reaches the world through `ActorDeps` only — the cluster store, the local Dolt (its roles,
 * and its data through FailoverDatabase), the lease — so the convergence simulator
 * (test/unit/ha-converge.test.ts) drives this same code over an in-memory store.
 *
 * Invariant (with agent-runtime.ts): the local Dolt enters the primary role only through a plan's
 * enable-push-on-write step, run by the executor while this agent holds the leader key.
 */

import type { Logger } from '../common/logger';
import type { MemberRecord, OperationRecord, Topology } from '../proto';
import type { AgentMetrics } from './agent-metrics';
import { describeAlignment } from './dolt/database-sync';
import type { LocalDolt } from './dolt/local-dolt';
import type { FailoverDatabase } from './failover/failover-database';
import type { ExecutorHooks, FailoverExecutor } from './failover/failover-executor';
import { buildTopology } from './failover/topology-builder';
import type { Decision, FailoverPlan } from './ha';
import { settleStrandedOps } from './ha/stranded-ops';
import type { NodeState } from './node-state';
import { CompareFailedError, type ClusterSnapshot, type ClusterStore, type LeaseHandle } from './store/cluster-store';

/** The node the actor acts for: its name, its persisted role and epoch, its member record. */
export interface ActorNode {
  readonly name: string;
  state(): NodeState;
  setState(next: NodeState): void;
  /** The member record as this node would publish it now. */
  memberRecord(): MemberRecord;
}

export interface ActorDeps {
  store: ClusterStore;
  local: LocalDolt;
  database: FailoverDatabase;
  lease: { current(): Promise<LeaseHandle> };
  /** A FailoverExecutor for this node, with extra hooks (an op mirrors a plan's steps). */
  executorWith(hooks: ExecutorHooks): FailoverExecutor;
  metrics: Pick<AgentMetrics, 'failovers' | 'orphanedBranches'>;
  logger: Logger;
  now: () => number;
  /** The cluster's replication mode, written into the topologies this actor publishes. Default remote. */
  replication?: 'remote' | 'cluster';
}

export class DecisionActor {
  constructor(
    private readonly node: ActorNode,
    private readonly deps: ActorDeps,
  ) {}

  async act(decision: Decision, snapshot: ClusterSnapshot | null): Promise<void> {
    switch (decision.action) {
      case 'renew-lease':
        if (snapshot) {
          await this.reconcileMembership(snapshot);
          await this.settleStrandedOps(snapshot);
        }
        return;
      case 'wait':
        return;
      case 'fence-self': {
        if (this.deps.local.mode === 'managed' && (this.deps.local.runningRole === 'primary' || this.deps.local.runningRole === 'standby')) await this.deps.local.fence();
        if (this.node.state().role === 'primary') this.node.setState({ ...this.node.state(), role: 'fenced' });
        if (decision.releaseLeader) await this.deps.store.releaseLeader(this.node.name);
        return;
      }
      case 'release-leader':
        await this.deps.store.releaseLeader(this.node.name);
        return;
      case 'acquire-leader': {
        const lease = await this.deps.lease.current();
        if (!(await this.deps.store.acquireLeader(this.node.name, lease))) return;
        if (snapshot) {
          // The snapshot was read before this cycle published our own record: add it.
          const members = { ...snapshot.members, [this.node.name]: this.node.memberRecord() };
          // Published as a fence with no primary: proxies hold writes until this node's Dolt
          // takes them, and the next cycle resumes the bootstrap like any failover.
          const reason = `bootstrap of ${this.node.name} at epoch ${decision.epoch} (${decision.reason})`;
          const topology = buildTopology({ epoch: decision.epoch, state: 'failover', primary: null, outgoing: null, members, previous: null, reason, now: this.deps.now(), replication: this.deps.replication });
          const at = new Date(this.deps.now()).toISOString();
          await this.deps.store.casTopology(topology, null, {
            epoch: decision.epoch, kind: 'bootstrap', reason, fromPrimary: null, candidate: this.node.name, handOver: false, opId: null,
            takeoverFrom: null, startedAt: at, endedAt: null, outcome: 'running',
            steps: [{ name: 'fence', state: 'done', startedAt: at, endedAt: at, durationMs: 0, executor: this.node.name, detail: `published failover at epoch ${decision.epoch} with no primary: proxies hold writes` }],
            orphanedBranches: [],
          });
        }
        this.node.setState({ ...this.node.state(), epoch: decision.epoch });
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
        if (this.deps.local.mode === 'managed' && this.deps.local.runningRole !== 'replica') await this.deps.local.ensureRole('replica', decision.epoch);
        if (this.node.state().role !== 'replica' || this.node.state().epoch !== decision.epoch) this.node.setState({ ...this.node.state(), role: 'replica', epoch: decision.epoch });
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
    if (!current || current.value.state !== 'stable' || current.value.primary !== this.node.name) return;
    const members = { ...snapshot.members, [this.node.name]: this.node.memberRecord() };
    const next = buildTopology({ epoch: current.value.epoch, state: 'stable', primary: this.node.name, outgoing: null, members, previous: current.value, reason: current.value.reason, now: this.deps.now(), replication: this.deps.replication });
    // A node whose agent is gone stays listed, marked down.
    for (const name of Object.keys(current.value.nodes)) {
      if (!members[name] && next.nodes[name]) next.nodes[name] = { ...next.nodes[name], role: 'down' };
    }
    if (sameNodes(next.nodes, current.value.nodes)) return;
    const changes = describeNodeChanges(current.value.nodes, next.nodes);
    next.reason = `${current.value.reason.split(' | membership: ')[0]} | membership: ${changes}`;
    await this.deps.store.casTopology(next, current.modRevision).then(
      () => this.deps.logger.info('topology membership updated', { epoch: next.epoch, changes }),
      (error: Error) => this.deps.logger.warn('topology membership update lost a race; retrying next cycle', { error: error.message }),
    );
  }

  private async runPlan(plan: FailoverPlan, reason: string, opId: string | null, snapshot: ClusterSnapshot | null, trigger: 'automatic' | 'resumed' | 'operator'): Promise<void> {
    const lease = await this.deps.lease.current();
    const holdsKey = (snapshot?.leader?.name === this.node.name && snapshot.leader.lease === lease.id) || (await this.deps.store.acquireLeader(this.node.name, lease));
    if (!holdsKey) {
      this.deps.logger.info('another node holds the leader key; observing again', { plan: plan.kind, epoch: plan.epoch });
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
      ? this.deps.executorWith({
          historyChanged: (record) =>
            mirror(record.steps.map((step) => ({ name: step.name, state: step.state, startedAt: step.startedAt, endedAt: step.endedAt, detail: step.detail, executor: step.executor }))),
        })
      : this.deps.executorWith({});
    try {
      await executor.run(plan, reason);
      if (plan.steps.includes('enable-push-on-write')) this.node.setState({ role: 'primary', epoch: plan.epoch, primaryEpoch: plan.epoch });
      else this.node.setState({ ...this.node.state(), epoch: Math.max(this.node.state().epoch, plan.epoch) });
      // Our step list reaches the op before the key does: the next executor mirrors its own after it.
      await mirrored;
      if (plan.releaseLeaderAfter) await this.deps.store.releaseLeader(this.node.name);
      if (plan.steps.includes('reroute')) this.deps.metrics.failovers.inc({ kind: plan.kind, trigger, outcome: 'succeeded' });
      if (opId && (plan.steps.includes('reroute') || !plan.releaseLeaderAfter)) {
        // The running reason was this agent's decision to act; the outcome is what the requester wants to read.
        const outcome = plan.steps.includes('reroute') ? `${plan.candidate} is primary at epoch ${plan.epoch}` : null;
        await mirrored;
        await this.updateOp(opId, (op) => (this.runsOp(op) ? { ...op, state: 'succeeded', epoch: plan.epoch, reason: outcome ?? op.reason } : null));
      }
    } catch (error) {
      this.deps.metrics.failovers.inc({ kind: plan.kind, trigger, outcome: 'failed' });
      await mirrored;
      // Only an op this agent claimed: a plan stopped before its claim leaves the op to its owner.
      if (opId) await this.updateOp(opId, (op) => (this.runsOp(op) ? { ...op, state: 'failed', reason: (error as Error).message } : null)).catch(() => undefined);
      throw error;
    }
  }

  private async rejoin(epoch: number, orphanEpoch: number): Promise<void> {
    if (this.deps.local.mode !== 'managed') {
      this.node.setState({ ...this.node.state(), role: 'replica', epoch });
      return;
    }
    if (this.deps.database.holdsOnlyReplicatedCommits?.(this.deps.local.runningRole) === true) {
      // A cluster standby already (a hand-over): everything it holds came from a primary.
      this.node.setState({ role: 'replica', epoch, primaryEpoch: this.node.state().primaryEpoch });
      this.deps.logger.info('rejoined as a read replica: nothing of its own to save', { epoch });
      return;
    }
    // Recovery runs on the standby's private listener: no client writes while it saves and resets.
    await this.deps.local.ensureRole('standby');
    const catalog = (await this.deps.store.snapshot()).databases?.value ?? null;
    const { alignment, outcomes } = await this.deps.database.recover(catalog, orphanEpoch, 60_000, 'rejoin');
    if (alignment.cloned.length + alignment.dropped.length > 0) this.deps.logger.info(`rejoining: ${describeAlignment(alignment)}`.replace(/; $/, ''));
    const orphans = outcomes.filter((outcome) => outcome.orphanBranch).map((outcome) => `${outcome.database}:${outcome.orphanBranch}`);
    if (orphans.length > 0) {
      this.deps.metrics.orphanedBranches.inc(orphans.length);
      this.deps.logger.warn('saved commits the remote lacked as orphan branches', { orphans });
      const history = (await this.deps.store.listHistory(1))[0];
      if (history) await this.deps.store.putHistory({ ...history, orphanedBranches: [...new Set([...history.orphanedBranches, ...orphans])] });
    }
    await this.deps.local.ensureRole('replica', epoch);
    this.node.setState({ role: 'replica', epoch, primaryEpoch: this.node.state().primaryEpoch });
    this.deps.logger.info('rejoined as a read replica', { epoch, orphans });
  }

  /** The stable primary closes ops whose executor stopped for good (ha/stranded-ops.ts). */
  private async settleStrandedOps(snapshot: ClusterSnapshot): Promise<void> {
    const topology = snapshot.topology?.value;
    if (topology === undefined || !snapshot.ops.some((op) => op.value.state === 'running')) return;
    const outcomes = settleStrandedOps(snapshot.ops.map((op) => op.value), await this.deps.store.listHistory(20), topology);
    for (const o of outcomes) {
      await this.updateOp(o.id, (op) => (op.state === 'running' ? { ...op, state: o.state, epoch: o.epoch, reason: o.reason } : null));
      this.deps.logger.warn('settled an op its executor left running', { op: o.id, state: o.state, reason: o.reason });
    }
  }

  private runsOp(op: OperationRecord): boolean {
    return op.state === 'running' && op.executor === this.node.name;
  }

  /** Rewrites the op by `change` (null: leave it as it is), compare-and-swap on a fresh read. */
  private async updateOp(id: string, change: (op: OperationRecord) => OperationRecord | null): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const snapshot = await this.deps.store.snapshot();
      const current = snapshot.ops.find((op) => op.value.id === id);
      if (!current) return;
      const next = change(current.value);
      if (next === null) return;
      try {
        await this.deps.store.putOperation(next, current.modRevision);
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
