/**
 * Convergence with the real hands: every agent of a simulated cluster runs the agent's own loop
 * glue each cycle — publish its member record, read a snapshot, build the observation
 * (observation-builder.ts), `decide`, and act through the real DecisionActor and
 * FailoverExecutor (decision-actor.ts, failover-executor.ts) — over one in-memory etcd
 * (MemoryClusterStore, which passes the etcd contract suite). Only Dolt is modelled: its roles
 * (SimDolt, a LocalDolt) and its data (SimDatabase, a FailoverDatabase).
 *
 * The agents' cycles of one round run concurrently, so their etcd calls interleave at every
 * await. Faults: an agent killed (its managed Dolt dies with it) at any single I/O call —
 * between any two failover steps or inside one — and revived later; an agent cut off from etcd;
 * a Dolt that fails its checks. The crash tests enumerate every I/O call of a failover, so each
 * half-applied transition is decided again from scratch.
 *
 * Invariants, checked after every single I/O call of any agent, not only at the end:
 * - a Dolt that takes client writes (the primary role) belongs to the node holding the leader
 *   key: never two writers;
 * - the topology epoch never goes down, and one epoch's history never names two candidates;
 * - no commit is lost: a Dolt turned into a read replica while holding commits the remote lacks
 *   would lose them (the model's pessimistic reading of a replica's pull), so every commit is
 *   on the remote, still on its node, or saved as an orphan branch.
 */

import { expect } from 'chai';
import { silentLogger } from '../../common/logger';
import { prng } from '../../common/prng';
import type { HistoryRecord, OperationRecord } from '../../proto';
import { AgentMetrics } from '../../agent/agent-metrics';
import { DecisionActor } from '../../agent/decision-actor';
import type { LocalDolt } from '../../agent/dolt/local-dolt';
import type { DoltServerRole } from '../../agent/dolt/server-config';
import type { BranchOutcome } from '../../agent/dolt/recovery';
import type { FailoverDatabase } from '../../agent/failover/failover-database';
import { FailoverExecutor, type ExecutorHooks } from '../../agent/failover/failover-executor';
import { decide, haConfig, type Decision, type HaConfig } from '../../agent/ha';
import type { NodeState } from '../../agent/node-state';
import { buildObservation } from '../../agent/observation-builder';
import { MemoryClusterStore, MemoryEtcd } from '../../agent/store/memory-cluster-store';
import { StoreUnavailableError, type ClusterSnapshot, type ClusterStore, type LeaseHandle } from '../../agent/store/cluster-store';
import { member, T0, topology as makeTopology } from './ha-fixtures.test';

const STEP_MS = 1_000;
const CLUSTER = 'sim';

/** Thrown at the I/O call an agent dies at: nothing after it happens. */
class AgentCrash extends Error {}

interface SimNode {
  name: string;
  alive: boolean;
  partitioned: boolean;
  doltHealthy: boolean;
  /** What the agent persisted (node-state.ts): survives a crash. */
  state: NodeState;
  dolt: SimDolt;
  store: ClusterStore;
  lease: SimLease;
  actor: DecisionActor;
  leaderVacantSince: number | null;
  lastSnapshot: ClusterSnapshot | null;
  /** Commits only on this node's Dolt (they survive a crash: they are on its disk). */
  notOnRemote: number;
  behind: number;
  /** I/O calls left before this agent dies (null: no crash planned). */
  crashIn: number | null;
  ioCalls: number;
}

class Sim {
  now = T0;
  readonly etcd = new MemoryEtcd(() => this.now);
  /** The etcd as an observer reads it, for the invariants. */
  private readonly observer = new MemoryClusterStore(this.etcd, CLUSTER);
  readonly nodes = new Map<string, SimNode>();
  readonly trace: string[] = [];
  readonly metrics = new AgentMetrics({ cluster: CLUSTER, node: 'sim' });
  last = new Map<string, Decision>();
  maxEpoch = 0;
  candidates = new Map<number, string>();
  created = 0;
  onRemote = 0;
  orphaned = 0;
  lost = 0;

  constructor(
    readonly config: HaConfig,
    names: string[],
    private readonly random: () => number = () => 0.5,
  ) {
    for (const name of names) this.nodes.set(name, this.makeNode(name));
  }

  private makeNode(name: string): SimNode {
    const node = { name, alive: true, partitioned: false, doltHealthy: true, state: { role: 'replica', epoch: 0, primaryEpoch: null }, leaderVacantSince: null, lastSnapshot: null, notOnRemote: 0, behind: 0, crashIn: null, ioCalls: 0 } as unknown as SimNode;
    node.dolt = new SimDolt(this, node);
    node.store = guardedStore(this, node, new MemoryClusterStore(this.etcd, CLUSTER));
    node.lease = new SimLease(this, node);
    const executorWith = (hooks: ExecutorHooks): FailoverExecutor =>
      new FailoverExecutor({ name, remote: 'origin', backupUrl: null, remoteUrlTemplate: null, sqlTimeoutMs: 2000, drainTimeoutMs: 5000 }, node.store, node.dolt, silentLogger, hooks, () => this.now, new SimDatabase(this, node));
    node.actor = new DecisionActor(
      {
        name,
        state: () => node.state,
        setState: (next) => {
          this.io(node, `persist ${next.role}@${next.epoch}`);
          node.state = next;
        },
        memberRecord: () => this.memberRecord(node),
      },
      { store: node.store, local: node.dolt, database: new SimDatabase(this, node), lease: node.lease, executorWith, metrics: this.metrics, logger: silentLogger, now: () => this.now },
    );
    return node;
  }

  memberRecord(node: SimNode) {
    return member(node.name, { role: node.state.role, epoch: node.state.epoch, healthy: node.doltHealthy, behind: node.behind, notOnRemote: node.notOnRemote }, this.now);
  }

  node(name: string): SimNode {
    const node = this.nodes.get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  t(): string {
    return `+${(this.now - T0) / 1000}s`;
  }

  // --- a running cluster --------------------------------------------------------------------------

  /** `primary` leading at `epoch`, the others following, as if it had been running a while. */
  static async running(config: HaConfig, names: string[], primary: string, epoch = 7, random?: () => number): Promise<Sim> {
    const sim = new Sim(config, names, random);
    const seed = new MemoryClusterStore(sim.etcd, CLUSTER);
    await seed.casTopology(makeTopology(epoch, primary, names, 'stable', sim.now), null);
    for (const node of sim.nodes.values()) await node.lease.current();
    expect(await seed.acquireLeader(primary, await sim.node(primary).lease.current())).to.equal(true);
    for (const node of sim.nodes.values()) {
      node.state = { role: node.name === primary ? 'primary' : 'replica', epoch, primaryEpoch: node.name === primary ? epoch : null };
      node.dolt.role = node.name === primary ? 'primary' : 'replica';
    }
    sim.maxEpoch = epoch;
    return sim;
  }

  // --- faults -------------------------------------------------------------------------------------

  kill(name: string, why = 'kill'): void {
    const node = this.node(name);
    if (!node.alive) return;
    node.alive = false;
    node.crashIn = null;
    node.dolt.role = null; // managed: Dolt dies with its agent (the keeper)
    this.trace.push(`${this.t()} ${why} ${name}`);
  }

  /** A fresh agent process on the node: its persisted state, a new lease, the runtime's start(). */
  async revive(name: string): Promise<void> {
    const old = this.node(name);
    if (old.alive) return;
    const node = this.makeNode(name);
    node.state = old.state;
    node.notOnRemote = old.notOnRemote;
    node.behind = old.behind;
    node.partitioned = old.partitioned;
    this.nodes.set(name, node);
    this.trace.push(`${this.t()} revive ${name}`);
    // AgentRuntime.start: never writable at start; a former primary comes back fenced.
    const role: DoltServerRole = node.state.role === 'primary' || node.state.role === 'fenced' ? 'fenced' : 'replica';
    if (node.state.role === 'primary') node.state = { ...node.state, role: 'fenced' };
    await node.dolt.ensureRole(role);
    // dropStaleLeaderKey: a key under our name on the dead predecessor's lease goes.
    try {
      const snapshot = await node.store.snapshot();
      const lease = await node.lease.current();
      if (snapshot.leader?.name === name && snapshot.leader.lease !== lease.id) await node.store.releaseLeader(name);
    } catch (error) {
      if (error instanceof AgentCrash) return;
    }
  }

  // --- one cycle of every agent, concurrently ------------------------------------------------------

  async round(writes = true): Promise<void> {
    this.now += STEP_MS;
    this.check('time passed (leases may have lapsed)');
    // The primary takes client writes; now and then a push to the remote fails.
    if (writes) {
      for (const node of this.nodes.values()) {
        if (node.dolt.role !== 'primary') continue;
        this.created++;
        if (this.random() < 0.2) node.notOnRemote++;
        else this.onRemote++;
      }
    }
    const order = [...this.nodes.values()].filter((n) => n.alive).sort(() => this.random() - 0.5);
    this.last = new Map();
    await Promise.all(order.map((node) => this.cycle(node)));
    this.check('end of round');
  }

  /** AgentRuntime.cycle, around the real decide and act. */
  private async cycle(node: SimNode): Promise<void> {
    try {
      await node.lease.keepalive();
      let snapshot: ClusterSnapshot | null = null;
      try {
        await node.store.putMember(this.memberRecord(node), await node.lease.current());
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
      }
      try {
        snapshot = await node.store.snapshot();
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
      }
      if (snapshot !== null) {
        // withoutKeyOfLapsedLease: a key of ours on a lease we no longer hold is not leadership.
        const id = node.lease.currentId();
        if (snapshot.leader?.name === node.name && id !== null && snapshot.leader.lease !== id) {
          await node.store.releaseLeader(node.name).catch(() => undefined);
          snapshot = { ...snapshot, leader: null };
        }
        node.lastSnapshot = snapshot;
        if (snapshot.leader === null) node.leaderVacantSince ??= this.now;
        else node.leaderVacantSince = null;
      }
      const self = {
        name: node.name,
        health: { healthy: node.doltHealthy, consecutiveFailures: node.doltHealthy ? 0 : 3, lastError: node.doltHealthy ? null : 'down' },
        role: node.state.role,
        epoch: node.state.epoch,
        writable: node.dolt.role === 'primary',
      };
      const observation = buildObservation(snapshot, { self, leaseLeftMs: node.lease.leftMs(), leaderVacantSince: node.leaderVacantSince, lastKnown: node.lastSnapshot });
      const decision = decide(observation, this.config, this.now);
      this.last.set(node.name, decision);
      if (decision.action !== 'wait' && decision.action !== 'follow' && decision.action !== 'renew-lease') this.trace.push(`${this.t()} ${node.name}: ${decision.action} — ${decision.reason}`);
      await node.actor.act(decision, snapshot);
    } catch (error) {
      if (error instanceof AgentCrash) return;
      // A failed step or a lost race: the runtime logs it and decides again next cycle.
      this.trace.push(`${this.t()} ${node.name}: cycle failed: ${(error as Error).message}`);
    }
  }

  /** Every I/O call of an agent: a planned crash happens here, and the invariants are checked. */
  io(node: SimNode, what: string): void {
    if (!node.alive) throw new AgentCrash(`${node.name} is dead (${what})`);
    node.ioCalls++;
    if (node.crashIn !== null) {
      node.crashIn--;
      if (node.crashIn < 0) {
        this.kill(node.name, `crash before ${what}:`);
        throw new AgentCrash(`${node.name} crashed before ${what}`);
      }
    }
    this.check(`${node.name} ${what}`);
  }

  // --- invariants ---------------------------------------------------------------------------------

  check(when: string): void {
    this.etcd.enter('invariant check'); // lapsed leases go, as the server drops them
    const leader = this.etcd.get(`/doltgate-memory/${CLUSTER}/leader`);
    const holder = leader === undefined ? null : (JSON.parse(leader.json) as string);
    for (const node of this.nodes.values()) {
      if (node.dolt.role === 'primary') expect(holder, `${when}: ${node.name} takes writes without the leader key\n${this.trace.join('\n')}`).to.equal(node.name);
    }
    const topology = this.etcd.get(`/doltgate-memory/${CLUSTER}/topology`);
    const epoch = topology === undefined ? 0 : (JSON.parse(topology.json) as { epoch: number }).epoch;
    expect(epoch, `${when}: topology epoch went down`).to.be.at.least(this.maxEpoch);
    this.maxEpoch = epoch;
    for (const [, entry] of this.etcd.range(`/doltgate-memory/${CLUSTER}/history/`)) {
      const record = JSON.parse(entry.json) as HistoryRecord;
      const named = this.candidates.get(record.epoch);
      if (named === undefined) this.candidates.set(record.epoch, record.candidate);
      else expect(record.candidate, `${when}: epoch ${record.epoch} names two candidates`).to.equal(named);
    }
    const held = [...this.nodes.values()].reduce((sum, n) => sum + n.notOnRemote, 0);
    expect(this.lost, `${when}: commits lost\n${this.trace.join('\n')}`).to.equal(0);
    expect(this.onRemote + held + this.orphaned, `${when}: commits unaccounted for`).to.equal(this.created);
  }

  async stable(): Promise<boolean> {
    const snapshot = await this.observer.snapshot();
    const t = snapshot.topology?.value;
    if (t === undefined || t.state !== 'stable' || t.primary === null) return false;
    const primary = this.node(t.primary);
    if (!primary.alive || primary.dolt.role !== 'primary' || snapshot.leader?.name !== t.primary) return false;
    if (snapshot.ops.some((op) => op.value.state === 'pending' || op.value.state === 'running')) return false;
    if (this.last.size === 0) return false;
    for (const [name, d] of this.last) if (d.action !== (name === t.primary ? 'renew-lease' : 'follow')) return false;
    return true;
  }

  async settle(maxRounds = 300): Promise<number> {
    for (let i = 1; i <= maxRounds; i++) {
      await this.round();
      if (await this.stable()) return i;
    }
    const ops = (await this.observer.snapshot()).ops.map((o) => `op ${o.value.id}: ${o.value.state} by ${o.value.executor ?? '-'} — ${o.value.reason}`);
    const pending = [...[...this.last].map(([n, d]) => `${n}: ${d.action} — ${d.reason}`), ...ops].join('\n');
    throw new Error(`no convergence after ${maxRounds} rounds\n${pending}\n--- trace\n${this.trace.slice(-80).join('\n')}`);
  }

  async primary(): Promise<{ name: string | null; epoch: number }> {
    const t = (await this.observer.snapshot()).topology?.value;
    return { name: t?.primary ?? null, epoch: t?.epoch ?? 0 };
  }

  async requestOp(op: Partial<OperationRecord> & Pick<OperationRecord, 'id' | 'kind'>): Promise<void> {
    await this.observer.putOperation({ target: null, force: false, drainTimeoutMs: 5000, requestedAt: new Date(this.now).toISOString(), requestedBy: 'test', state: 'pending', executor: null, epoch: null, steps: [], reason: 'requested', ...op }, null);
  }

  history(): HistoryRecord[] {
    return this.etcd.range(`/doltgate-memory/${CLUSTER}/history/`).map(([, entry]) => JSON.parse(entry.json) as HistoryRecord);
  }

  /** Rounds until the topology's epoch passes `epoch` (at most `max`). */
  async untilEpochAbove(epoch: number, max = 60): Promise<void> {
    for (let i = 0; i < max && (await this.primary()).epoch <= epoch; i++) await this.round();
  }

  async observerOps(): Promise<OperationRecord[]> {
    return (await this.observer.snapshot()).ops.map((o) => o.value);
  }

  async op(id: string): Promise<OperationRecord | undefined> {
    return (await this.observer.snapshot()).ops.find((o) => o.value.id === id)?.value;
  }
}

/** A node's etcd client: every call is one of its I/O calls, and fails while it is cut off. */
function guardedStore(sim: Sim, node: SimNode, inner: ClusterStore): ClusterStore {
  return new Proxy(inner, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        sim.io(node, `etcd ${String(key)}`);
        if (node.partitioned) throw new StoreUnavailableError(String(key), new Error('cut off from etcd'));
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

/** LeaseKeeper's part the loop uses: one lease, renewed each cycle, a fresh one once it lapsed. */
class SimLease {
  private handle: LeaseHandle | null = null;

  constructor(
    private readonly sim: Sim,
    private readonly node: SimNode,
  ) {}

  async current(): Promise<LeaseHandle> {
    if (this.handle !== null && this.leftMs() !== null && (this.leftMs() as number) > 0) return this.handle;
    this.handle = await this.node.store.grantLease(this.sim.config.leaseTtlMs);
    return this.handle;
  }

  currentId(): string | null {
    return this.handle?.id ?? null;
  }

  leftMs(): number | null {
    return this.handle === null ? null : this.handle.lastRenewSentAt + this.handle.ttlMs - this.sim.now;
  }

  async keepalive(): Promise<void> {
    if (this.handle === null) return;
    this.sim.io(this.node, 'etcd renew the lease');
    if (this.node.partitioned) return; // renewals fail while cut off; the lease runs down
    try {
      await this.handle.renew();
    } catch {
      this.handle = null; // lapsed: the next current() takes a fresh one
    }
  }
}

/** The managed Dolt's roles: each start or stop is one I/O call of its agent. */
class SimDolt implements LocalDolt {
  readonly mode = 'managed' as const;
  role: DoltServerRole | null = 'replica';
  readonly endpoint = { host: '127.0.0.1', port: 0, user: 'root', password: '' };
  readonly pid = undefined;

  constructor(
    private readonly sim: Sim,
    private readonly node: SimNode,
  ) {}

  get runningRole(): DoltServerRole | null {
    return this.role;
  }

  async ensureRole(role: DoltServerRole): Promise<void> {
    this.sim.io(this.node, `dolt ${role}`);
    if (this.role === role) return;
    if (role === 'replica' && this.node.notOnRemote > 0) {
      // A read replica pulls the remote's heads: commits only here would be gone.
      this.sim.lost += this.node.notOnRemote;
      this.node.notOnRemote = 0;
    }
    if (role === 'replica' || role === 'standby') this.node.behind = 0;
    this.role = role;
  }

  async fence(): Promise<void> {
    this.sim.io(this.node, 'dolt fence');
    this.role = 'fenced';
  }

  async restartIfCrashed(): Promise<boolean> {
    return false;
  }

  async removeDatabases(): Promise<void> {}

  async stop(): Promise<void> {
    this.role = null;
  }
}

/** The node's data as failover steps and rejoins change it. */
class SimDatabase implements FailoverDatabase {
  constructor(
    private readonly sim: Sim,
    private readonly node: SimNode,
  ) {}

  async pushAll(): Promise<number> {
    this.sim.io(this.node, 'push all branches');
    const pushed = this.node.notOnRemote;
    this.sim.onRemote += pushed;
    this.node.notOnRemote = 0;
    return pushed;
  }

  async recover(_catalog: unknown, epoch: number, _timeoutMs: number, mode: 'promote' | 'rejoin'): Promise<{ alignment: { cloned: string[]; dropped: string[] }; outcomes: BranchOutcome[] }> {
    this.sim.io(this.node, `recover (${mode})`);
    const outcomes: BranchOutcome[] = [];
    if (mode === 'rejoin' && this.node.notOnRemote > 0) {
      // Saved as doltgate/orphaned/<epoch>/main before the reset to the remote.
      this.sim.orphaned += this.node.notOnRemote;
      this.node.notOnRemote = 0;
      outcomes.push({ database: 'app', branch: 'main', action: 'reset', source: 'origin', orphanBranch: `doltgate/orphaned/${epoch}/main` } as unknown as BranchOutcome);
    }
    this.node.behind = 0;
    return { alignment: { cloned: [], dropped: [] }, outcomes };
  }

  async drainStatements(): Promise<{ waitedMs: number; running: number }> {
    this.sim.io(this.node, 'drain statements');
    return { waitedMs: 0, running: 0 };
  }
}

const config = haConfig({ maxCommitsBehind: 100 });
const names = ['a', 'b', 'c'];

describe('ha convergence through the real actor and executor', () => {
  it('a running cluster stays put', async () => {
    const sim = await Sim.running(config, names, 'a');
    for (let i = 0; i < 20; i++) await sim.round();
    expect(await sim.stable()).to.equal(true);
    expect(await sim.primary()).to.deep.equal({ name: 'a', epoch: 7 });
  });

  it('bootstrap: three empty agents elect one primary through the executor', async () => {
    const sim = new Sim(config, names);
    await sim.settle();
    const { name, epoch } = await sim.primary();
    expect(name).to.be.oneOf(names);
    expect(epoch).to.equal(1);
  });

  it('primary agent dies: a replica takes over at epoch 8; the old primary rejoins and its unpushed commits are saved', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(7));
    for (let i = 0; i < 5; i++) await sim.round();
    sim.node('a').notOnRemote += 3;
    sim.created += 3;
    sim.kill('a');
    await sim.settle();
    const after = await sim.primary();
    expect(after.name).to.be.oneOf(['b', 'c']);
    expect(after.epoch).to.equal(8);
    await sim.revive('a');
    await sim.settle();
    expect(sim.node('a').dolt.role).to.equal('replica');
    expect(sim.orphaned).to.be.at.least(3);
  });

  it('primary cut off from etcd fences before its lease lapses; another takes over; on return it rejoins', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(11));
    sim.node('a').partitioned = true;
    // Settled means every agent follows or leads: not while a is cut off, so wait for the move.
    for (let i = 0; i < 60 && (await sim.primary()).epoch === 7; i++) await sim.round();
    for (let i = 0; i < 5; i++) await sim.round();
    expect((await sim.primary()).name).to.be.oneOf(['b', 'c']);
    expect(sim.node('a').dolt.role).to.not.equal('primary');
    sim.node('a').partitioned = false;
    await sim.settle();
    expect(sim.node('a').dolt.role).to.equal('replica');
  });

  it('switchover op: the primary hands over to the target, pushing its heads first', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(3));
    sim.node('a').notOnRemote += 2;
    sim.created += 2;
    await sim.requestOp({ id: 'op-1', kind: 'switchover', target: 'c' });
    await sim.settle();
    expect(await sim.primary()).to.deep.equal({ name: 'c', epoch: 8 });
    expect((await sim.op('op-1'))?.state).to.equal('succeeded');
    expect(sim.orphaned).to.equal(0); // pushed before stepping down, nothing to orphan
  });

  it('etcd blip shorter than the TTL: the primary fences at the margin, then recovers in place at a new epoch; no failover to another node', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(5));
    await sim.round();
    sim.node('a').partitioned = true;
    for (let i = 0; i < 8; i++) await sim.round();
    expect(sim.node('a').dolt.role).to.not.equal('primary');
    sim.node('a').partitioned = false;
    await sim.settle();
    expect(await sim.primary()).to.deep.equal({ name: 'a', epoch: 8 });
    expect(sim.history().find((r) => r.epoch === 8)).to.deep.include({ candidate: 'a', fromPrimary: 'a' });
  });

  it('primary agent restarts: it reclaims the key within the grace (recovering in place, its unpushed commits kept and pushed) instead of a failover', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(6));
    await sim.round();
    sim.node('a').notOnRemote += 1;
    sim.created += 1;
    sim.kill('a');
    await sim.round();
    await sim.revive('a');
    await sim.settle();
    expect(await sim.primary()).to.deep.equal({ name: 'a', epoch: 8 });
    expect(sim.orphaned).to.equal(0);
  });

  it('primary Dolt fails its checks: fence, release, a replica takes over; the old primary rejoins once healthy', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(8));
    await sim.round();
    sim.node('a').doltHealthy = false;
    await sim.untilEpochAbove(7);
    expect((await sim.primary()).name).to.be.oneOf(['b', 'c']);
    sim.node('a').doltHealthy = true;
    await sim.settle();
    expect(sim.node('a').dolt.role).to.equal('replica');
    expect(sim.node('a').state).to.deep.include({ role: 'replica', epoch: 8 });
  });

  it('flapping: a second failure whose agent lives waits out the anti-flap interval (in place), never fails over to a third node early', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(9));
    await sim.round();
    sim.kill('a');
    await sim.settle();
    const first = await sim.primary();
    const firstAt = sim.now;
    sim.node(first.name as string).doltHealthy = false;
    for (let i = 0; i < 20; i++) await sim.round();
    expect(await sim.primary(), 'no failover inside the window').to.deep.equal(first);
    expect([...sim.last.values()].some((d) => d.action === 'wait' && d.code === 'anti-flap')).to.equal(true);
    sim.node(first.name as string).doltHealthy = true;
    await sim.settle();
    expect((await sim.primary()).name).to.equal(first.name);
    expect(sim.now - firstAt).to.be.below(config.minFailoverIntervalMs);
  });

  it('flapping: a second failure whose agent is gone fails over at once (nobody could recover it in place)', async () => {
    const sim = await Sim.running(config, names, 'a', 7, prng(10));
    await sim.round();
    sim.kill('a');
    await sim.settle();
    const first = await sim.primary();
    const firstAt = sim.now;
    sim.kill(first.name as string);
    await sim.settle();
    const second = await sim.primary();
    expect(second.epoch).to.equal(9);
    expect(second.name).to.not.be.oneOf(['a', first.name]);
    expect(sim.now - firstAt).to.be.below(config.minFailoverIntervalMs);
  });

  // Every I/O call of a failover, one crash each: the agent dies there, comes back later, and
  // whatever was half done is decided again from scratch.
  const crashCases: Array<{ kind: 'failover' | 'switchover'; crashing: 'candidate' | 'a' }> = [
    { kind: 'failover', crashing: 'candidate' },
    { kind: 'switchover', crashing: 'a' },
    { kind: 'switchover', crashing: 'candidate' },
  ];
  for (const { kind, crashing } of crashCases) {
    it(`${kind}: ${crashing === 'a' ? 'the old primary' : 'the candidate'} crashing at any one of its I/O calls until the new primary is stable still ends in one stable primary`, async function () {
      this.timeout(60_000);
      // The uninterrupted run: who the candidate is and how many I/O calls it takes.
      const reference = await crashRun(kind, crashing, null);
      expect(reference.calls, 'the run did some I/O').to.be.greaterThan(5);
      for (let k = 0; k < reference.calls; k++) {
        const run = await crashRun(kind, crashing, k);
        expect(run.primary, `crash at I/O call ${k}`).to.be.oneOf(names);
      }
    });
  }

  // Random faults for a while, then everything heals: the invariants hold throughout (checked at
  // every I/O call) and the cluster always converges. A failing seed prints its trace.
  const fuzzConfig = haConfig({ maxCommitsBehind: 100, minFailoverIntervalMs: 15_000 });
  const fuzzNames = ['a', 'b', 'c', 'd'];
  const seen = { failovers: 0, takeovers: 0, ops: 0, fences: 0, rejoins: 0, reclaims: 0, refusals: 0, crashes: 0 };
  it('random faults over 60 seeds: kills at random I/O calls, revivals, cut-offs, sick Dolts and operator ops; always back to one stable primary', async function () {
    this.timeout(180_000);
    for (let seed = 1; seed <= 60; seed++) {
      const random = prng(seed);
      const sim = await Sim.running(fuzzConfig, fuzzNames, 'a', 7, random);
      const pick = (list: string[]): string => list[Math.floor(random() * list.length)] as string;
      for (let i = 0; i < 120; i++) {
        const roll = random();
        const alive = fuzzNames.filter((n) => sim.node(n).alive);
        if (roll < 0.03 && alive.length > 2) sim.kill(pick(alive));
        else if (roll < 0.06 && alive.length > 2) sim.node(pick(alive)).crashIn = Math.floor(random() * 20);
        else if (roll < 0.12) await sim.revive(pick(fuzzNames));
        else if (roll < 0.15) sim.node(pick(fuzzNames)).partitioned = true;
        else if (roll < 0.21) sim.node(pick(fuzzNames)).partitioned = false;
        else if (roll < 0.24) sim.node(pick(fuzzNames)).doltHealthy = false;
        else if (roll < 0.3) sim.node(pick(fuzzNames)).doltHealthy = true;
        else if (roll < 0.32) {
          const busy = (await sim.observerOps()).some((op) => op.state === 'pending' || op.state === 'running');
          if (!busy) await sim.requestOp({ id: `op-${seed}-${i}`, kind: random() < 0.5 ? 'switchover' : 'failover', target: random() < 0.7 ? pick(fuzzNames) : null, force: random() < 0.3 });
        }
        await sim.round();
      }
      for (const name of fuzzNames) {
        sim.node(name).crashIn = null;
        await sim.revive(name);
        sim.node(name).partitioned = false;
        sim.node(name).doltHealthy = true;
      }
      try {
        await sim.settle(400);
      } catch (error) {
        throw new Error(`seed ${seed}: ${(error as Error).message}`);
      }
      const history = sim.history();
      seen.failovers += history.length;
      seen.takeovers += history.filter((r) => r.takeoverFrom !== null).length;
      seen.ops += history.filter((r) => r.opId !== null).length;
      const count = (what: string): number => sim.trace.filter((line) => line.includes(what)).length;
      seen.fences += count(': fence-self');
      seen.rejoins += count(': rejoin-as-replica');
      seen.reclaims += count('reclaim');
      seen.refusals += count(': refuse-op');
      seen.crashes += count('crash before');
      const writers = fuzzNames.filter((n) => sim.node(n).dolt.role === 'primary');
      expect(writers, `seed ${seed}`).to.deep.equal([(await sim.primary()).name]);
    }
  });

  it('the random runs did exercise failovers, takeovers, ops, fencing, rejoins, reclaims, refusals and crashes mid-step', () => {
    expect(seen.failovers, JSON.stringify(seen)).to.be.above(60);
    for (const [what, n] of Object.entries(seen)) expect(n, `${what}: ${JSON.stringify(seen)}`).to.be.above(0);
    console.log(`      (60 seeds: ${JSON.stringify(seen)})`);
  });
});

/**
 * One failover (primary a's Dolt fails its checks) or switchover (op: to b), with one agent
 * (`crashing`: the old primary a, or the candidate) dying at its k-th I/O call after the
 * trigger; null: no crash, and `calls` says how many I/O calls that agent made until the new
 * primary was stable. Then every agent is back and the cluster must settle.
 */
async function crashRun(kind: 'failover' | 'switchover', crashing: 'candidate' | 'a', k: number | null): Promise<{ calls: number; primary: string; sim: Sim }> {
  const sim = await Sim.running(config, names, 'a', 7, prng(42));
  for (let i = 0; i < 3; i++) await sim.round();
  if (kind === 'failover') sim.node('a').doltHealthy = false;
  else await sim.requestOp({ id: 'op-x', kind: 'switchover', target: 'b' });
  // decide picks b in both cases: the switchover's target; the first of two equal replicas.
  const actor = crashing === 'a' ? 'a' : 'b';
  const before = sim.node(actor).ioCalls;
  if (k !== null) sim.node(actor).crashIn = k;
  let calls = 0;
  for (let i = 0; i < 40; i++) {
    await sim.round();
    if (k === null && (await sim.primary()).epoch > 7 && (await sim.stable())) break;
  }
  calls = sim.node(actor).ioCalls - before;
  if (k === null) expect(await sim.primary(), `the uninterrupted ${kind}`).to.deep.equal({ name: 'b', epoch: 8 });
  for (const name of names) await sim.revive(name);
  sim.node('a').doltHealthy = true;
  await sim.settle(400);
  const { name } = await sim.primary();
  return { calls, primary: name as string, sim };
}
