/**
 * Convergence: decide() run by every agent, cycle after cycle, against a small simulated
 * cluster — etcd keys with leases and create-if-absent, agents that crash between failover
 * steps, partitions, flapping nodes. Like Patroni's quorum tests, each half-applied transition
 * is decided again from scratch, and the test shows the cluster still ends in one stable
 * primary.
 *
 * Invariants checked after every single action, not only at the end:
 * - every writable Dolt belongs to the node whose lease holds the leader key (no two writers);
 * - the topology epoch never goes down, and one epoch never names two candidates;
 * - commits an old primary held that the remote lacked are saved as orphans, never dropped.
 *
 * The simulator applies decisions the way design.md and decision.ts tell the loop to: every
 * etcd write needs the agent to reach etcd; failover plans first take the leader key
 * (create-if-absent) and abort if someone else holds it; an agent's death kills its managed
 * Dolt; a restarted agent starts Dolt read-only and deletes a leader key left under its name by
 * its dead predecessor's lease.
 */

import { expect } from 'chai';
import { prng } from '../../common/prng';
import type { MemberRecord, NodeRole, Topology } from '../../proto';
import { decide } from '../../agent/ha/decide';
import { haConfig, type HaConfig } from '../../agent/ha/config';
import type { Decision } from '../../agent/ha/decision';
import type { InProgress, Observation, PendingOp } from '../../agent/ha/observation';
import { failoverSteps, type FailoverStep } from '../../agent/ha/steps';
import { member, T0, topology as makeTopology } from './ha-fixtures.test';

const STEP_MS = 1_000;

interface SimNode {
  name: string;
  priority: number;
  nofailover: boolean;
  agentAlive: boolean;
  partitioned: boolean;
  doltHealthy: boolean;
  writable: boolean;
  role: NodeRole;
  epoch: number;
  behind: number;
  notOnRemote: number;
  /** Server side: the lease lives until lastRenewAt + TTL. */
  lastRenewAt: number | null;
  /** The member record as last published (frozen while the agent is dead or cut off). */
  published: ReturnType<typeof member> | null;
  /** The etcd part of the last observation this agent could make (stale while cut off). */
  view: Pick<Observation, 'leader' | 'leaderVacantSince' | 'topology' | 'members' | 'paused' | 'lastFailoverAt' | 'pendingOp' | 'inProgress'> | null;
}

interface HistoryRecord extends InProgress {
  completedSteps: FailoverStep[];
  takeoverFrom: { candidate: string; epoch: number } | null;
}

type CrashHook = (node: string, record: HistoryRecord, before: FailoverStep | 'release' | 'end') => boolean;

class Sim {
  now = T0;
  nodes = new Map<string, SimNode>();
  leader: string | null = null;
  vacantSince: number | null = T0;
  topology: Topology | null = null;
  history: HistoryRecord[] = [];
  ops: PendingOp[] = [];
  paused = false;
  orphaned = 0;
  maxEpochSeen = 0;
  crash: CrashHook | null = null;
  /** Decisions of the last round, for assertions and failure messages. */
  last = new Map<string, Decision>();
  trace: string[] = [];

  constructor(readonly config: HaConfig, names: string[], private readonly random: () => number = () => 0.5) {
    for (const name of names) {
      this.nodes.set(name, {
        name, priority: 100, nofailover: false, agentAlive: true, partitioned: false, doltHealthy: true, writable: false,
        role: 'replica', epoch: 0, behind: 0, notOnRemote: 0, lastRenewAt: null, published: null, view: null,
      });
    }
  }

  /** A cluster that has been running with `primary` at `epoch`. */
  static running(config: HaConfig, names: string[], primary: string, epoch = 7, random?: () => number): Sim {
    const sim = new Sim(config, names, random);
    sim.topology = makeTopology(epoch, primary, names, 'stable', sim.now);
    sim.maxEpochSeen = epoch;
    sim.leader = primary;
    sim.vacantSince = null;
    for (const node of sim.nodes.values()) {
      node.epoch = epoch;
      node.role = node.name === primary ? 'primary' : 'replica';
      node.writable = node.name === primary;
      node.lastRenewAt = sim.now;
    }
    return sim;
  }

  node(name: string): SimNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  leaseLive(node: SimNode): boolean {
    return node.lastRenewAt !== null && this.now < node.lastRenewAt + this.config.leaseTtlMs;
  }

  // --- faults ---------------------------------------------------------------------------------
  kill(name: string): void {
    const node = this.node(name);
    node.agentAlive = false;
    node.writable = false; // managed mode: Dolt dies with its agent
    this.trace.push(`${this.t()} kill ${name}`);
  }

  revive(name: string): void {
    const node = this.node(name);
    if (node.agentAlive) return;
    node.agentAlive = true;
    node.doltHealthy = true;
    node.writable = false; // the agent always starts Dolt read-only
    if (this.leader === name) this.setLeader(null); // left by the dead predecessor's lease
    this.trace.push(`${this.t()} revive ${name}`);
  }

  partition(name: string): void {
    this.node(name).partitioned = true;
    this.trace.push(`${this.t()} partition ${name}`);
  }

  heal(name: string): void {
    this.node(name).partitioned = false;
    this.trace.push(`${this.t()} heal ${name}`);
  }

  // --- one cycle ------------------------------------------------------------------------------
  round(): Map<string, Decision> {
    this.now += STEP_MS;
    for (const node of this.nodes.values()) {
      if (!this.leaseLive(node) && this.leader === node.name) this.setLeader(null);
    }
    for (const node of this.nodes.values()) {
      if (node.agentAlive && !node.partitioned) {
        node.lastRenewAt = this.now; // background keepalive (or a fresh lease after a lapse)
        node.published = member(node.name, {
          role: node.role, epoch: node.epoch, healthy: node.doltHealthy, behind: node.behind, notOnRemote: node.notOnRemote,
          priority: node.priority, nofailover: node.nofailover,
        }, this.now);
      }
    }
    this.check('after lease expiry');
    const decisions = new Map<string, Decision>();
    for (const node of this.nodes.values()) if (node.agentAlive) decisions.set(node.name, decide(this.observe(node), this.config, this.now));
    const order = [...decisions.keys()].sort(() => this.random() - 0.5);
    for (const name of order) {
      const decision = decisions.get(name)!;
      if (decision.action !== 'wait' && decision.action !== 'follow' && decision.action !== 'renew-lease') {
        this.trace.push(`${this.t()} ${name}: ${decision.action} — ${decision.reason}`);
      }
      this.apply(this.node(name), decision);
      this.check(`after ${name} ${decision.action}`);
    }
    this.last = decisions;
    return decisions;
  }

  observe(node: SimNode): Observation {
    if (!node.partitioned) {
      const members: Record<string, MemberRecord> = {};
      for (const other of this.nodes.values()) if (this.leaseLive(other) && other.published) members[other.name] = other.published;
      const newest = this.newestRecord();
      node.view = {
        leader: this.leader,
        leaderVacantSince: this.leader === null ? this.vacantSince : null,
        topology: this.topology,
        members,
        paused: this.paused,
        lastFailoverAt: this.newestMove()?.startedAt ?? null,
        pendingOp: this.ops[0] ?? null,
        inProgress: newest && newest.completedSteps.length < failoverSteps.length ? { ...newest, completedSteps: [...newest.completedSteps] } : null,
      };
    }
    const view = node.view ?? {
      leader: null, leaderVacantSince: null, topology: null, members: {}, paused: false, lastFailoverAt: null, pendingOp: null, inProgress: null,
    };
    return {
      ...view,
      self: {
        name: node.name,
        health: { healthy: node.doltHealthy, consecutiveFailures: node.doltHealthy ? 0 : 3, lastError: node.doltHealthy ? null : 'down' },
        role: node.role,
        epoch: node.epoch,
        writable: node.writable,
      },
      etcd: { reachable: !node.partitioned, hasQuorum: !node.partitioned },
      leaseLeftMs: node.lastRenewAt === null ? null : node.lastRenewAt + this.config.leaseTtlMs - this.now,
    };
  }

  // --- the loop's side of each decision --------------------------------------------------------
  apply(node: SimNode, d: Decision): void {
    const etcd = !node.partitioned;
    switch (d.action) {
      case 'wait':
      case 'renew-lease':
        return;
      case 'follow':
        node.epoch = d.epoch;
        return;
      case 'fence-self':
        node.writable = false;
        if (node.role === 'primary') node.role = 'fenced';
        if (d.releaseLeader && etcd && this.leader === node.name) this.setLeader(null);
        return;
      case 'release-leader':
        if (etcd && this.leader === node.name) this.setLeader(null);
        return;
      case 'acquire-leader':
        if (!etcd || !this.takeLeader(node)) return;
        if (this.topology === null) {
          // A bootstrap is published as a fence with no primary; the next rounds resume it.
          this.setTopology(makeTopology(d.epoch, null, [...this.nodes.keys()], 'failover', this.now));
          this.history.push({
            kind: 'bootstrap', epoch: d.epoch, candidate: node.name, fromPrimary: null, handOver: false, opId: null,
            completedSteps: ['fence'], startedAt: this.now, takeoverFrom: null,
          });
          node.epoch = d.epoch;
        }
        return;
      case 'refuse-op':
        if (etcd) this.ops = this.ops.filter((op) => op.id !== d.op.id);
        return;
      case 'rejoin-as-replica':
        this.orphaned += node.notOnRemote; // pushed as doltgate/orphaned/<epoch>/<branch>
        node.notOnRemote = 0;
        node.writable = false;
        node.role = 'replica';
        node.epoch = d.epoch;
        return;
      case 'start-failover':
      case 'resume-failover':
      case 'execute-op':
        this.runPlan(node, d);
        return;
    }
  }

  private runPlan(node: SimNode, d: Extract<Decision, { action: 'start-failover' | 'resume-failover' | 'execute-op' }>): void {
    if (node.partitioned || !this.takeLeader(node)) return;
    let record = this.history.find((r) => r.epoch === d.epoch);
    if (record === undefined) {
      record = {
        kind: d.kind, epoch: d.epoch, candidate: d.candidate, fromPrimary: d.fromPrimary, handOver: d.handOver, opId: d.opId,
        completedSteps: [], startedAt: this.now, takeoverFrom: d.takeoverFrom,
      };
      this.history.push(record);
    }
    expect(record.candidate, `epoch ${d.epoch} names two candidates`).to.equal(d.candidate);
    if (d.action === 'execute-op') this.ops = this.ops.filter((op) => op.id !== d.op.id);
    for (const step of d.steps) {
      if (this.crash?.(node.name, record, step)) return this.kill(node.name);
      this.runStep(node, record, step);
      if (!record.completedSteps.includes(step)) record.completedSteps.push(step);
      this.check(`after ${node.name} ran ${step}`);
    }
    if (d.releaseLeaderAfter) {
      if (this.crash?.(node.name, record, 'release')) return this.kill(node.name);
      if (this.leader === node.name) this.setLeader(null);
    }
    if (this.crash?.(node.name, record, 'end')) this.kill(node.name);
  }

  private runStep(node: SimNode, record: HistoryRecord, step: FailoverStep): void {
    const names = [...this.nodes.keys()];
    switch (step) {
      case 'fence':
        this.setTopology(makeTopology(record.epoch, null, names, record.kind === 'switchover' ? 'switchover' : 'failover', this.now));
        if (record.fromPrimary === node.name) {
          node.writable = false;
          node.role = 'fenced';
          if (record.handOver) node.notOnRemote = 0; // a hand-over pushes its heads before stepping down
        }
        node.epoch = record.epoch;
        return;
      case 'disable-read-only':
        // Writable on a private listener only: no client writes yet.
        return;
      case 'recover':
        // Commits ahead of the remote stay (a recovering old primary keeps its own).
        node.behind = 0;
        return;
      case 'enable-push-on-write':
        if (this.leader !== node.name) return;
        node.writable = true;
        node.notOnRemote = 0; // pushed once primary
        return;
      case 'reroute':
        this.setTopology(makeTopology(record.epoch, record.candidate, names, 'stable', this.now));
        node.role = 'primary';
        node.epoch = record.epoch;
        return;
    }
  }

  private takeLeader(node: SimNode): boolean {
    if (this.leader === null) {
      this.leader = node.name;
      this.vacantSince = null;
    }
    return this.leader === node.name;
  }

  private setLeader(value: string | null): void {
    this.leader = value;
    this.vacantSince = value === null ? this.now : null;
  }

  private setTopology(next: Topology): void {
    expect(next.epoch, 'topology epoch went down').to.be.at.least(this.topology?.epoch ?? 0);
    this.topology = next;
  }

  /** The newest failover that moved the primary to another node: what anti-flap counts. */
  private newestMove(): HistoryRecord | undefined {
    return [...this.history].filter((r) => r.kind !== 'bootstrap' && r.candidate !== r.fromPrimary).sort((a, b) => b.epoch - a.epoch)[0];
  }

  private newestRecord(): HistoryRecord | undefined {
    return [...this.history].sort((a, b) => b.epoch - a.epoch)[0];
  }

  // --- invariants and convergence ---------------------------------------------------------------
  check(when: string): void {
    for (const node of this.nodes.values()) {
      if (node.writable) {
        expect(this.leader, `${when}: ${node.name} is writable without the leader key\n${this.trace.join('\n')}`).to.equal(node.name);
      }
    }
    const epoch = this.topology?.epoch ?? 0;
    expect(epoch, `${when}: topology epoch went down`).to.be.at.least(this.maxEpochSeen);
    this.maxEpochSeen = epoch;
  }

  stable(): boolean {
    const t = this.topology;
    if (t === null || t.state !== 'stable' || t.primary === null) return false;
    const primary = this.node(t.primary);
    if (!primary.agentAlive || !primary.writable || this.leader !== t.primary) return false;
    if (this.ops.length > 0) return false;
    for (const [name, d] of this.last) {
      const expected = name === t.primary ? 'renew-lease' : 'follow';
      if (d.action !== expected) return false;
    }
    return this.last.size > 0;
  }

  runFor(ms: number): void {
    for (let i = 0; i < ms / STEP_MS; i++) this.round();
  }

  /** Rounds until stable; fails with the trace when it does not get there. */
  settle(maxRounds = 300): number {
    for (let i = 1; i <= maxRounds; i++) {
      this.round();
      if (this.stable()) return i;
    }
    const pending = [...this.last].map(([n, d]) => `${n}: ${d.action} — ${d.reason}`).join('\n');
    throw new Error(`no convergence after ${maxRounds} rounds\n${pending}\n--- trace\n${this.trace.join('\n')}`);
  }

  t(): string {
    return `+${(this.now - T0) / 1000}s`;
  }
}

const config = haConfig({ maxCommitsBehind: 100 });
const names = ['a', 'b', 'c'];

describe('ha convergence', () => {
  it('a running cluster stays put', () => {
    const sim = Sim.running(config, names, 'a');
    expect(sim.settle()).to.equal(1);
    expect(sim.last.get('a')?.action).to.equal('renew-lease');
  });

  it('bootstrap: three empty agents elect one primary at epoch 1', () => {
    const sim = new Sim(config, names);
    sim.settle();
    expect(sim.topology).to.deep.include({ epoch: 1, primary: 'a', state: 'stable' });
  });

  it('primary dies: the chosen replica takes over at epoch 8', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.kill('a');
    sim.settle();
    expect(sim.topology).to.deep.include({ epoch: 8, primary: 'b' });
  });

  it('primary cut off from etcd fences before its lease lapses; on return it rejoins and saves its orphans', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.node('a').notOnRemote = 2; // acknowledged, but the push failed
    sim.partition('a');
    sim.runFor(30_000);
    expect(sim.topology).to.deep.include({ epoch: 8, primary: 'b' });
    expect(sim.node('a')).to.deep.include({ writable: false, role: 'fenced' });
    sim.heal('a');
    sim.settle();
    expect(sim.node('a')).to.deep.include({ role: 'replica', epoch: 8, writable: false });
    expect(sim.orphaned).to.equal(2);
  });

  it('etcd blip shorter than the TTL: the primary fences at the margin, then recovers in place at a new epoch; no failover to another node', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.partition('a');
    sim.runFor(8_000);
    expect(sim.node('a').writable).to.equal(false);
    sim.heal('a');
    sim.settle();
    expect(sim.topology).to.deep.include({ epoch: 8, primary: 'a' });
    expect(sim.history.find((r) => r.epoch === 8)).to.deep.include({ candidate: 'a', fromPrimary: 'a' });
  });

  it('primary agent restarts: it reclaims the key within the grace (recovering in place) instead of a failover', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.node('a').notOnRemote = 1;
    sim.kill('a');
    sim.round();
    sim.revive('a');
    sim.settle();
    expect(sim.topology).to.deep.include({ epoch: 8, primary: 'a' });
    expect(sim.node('a').notOnRemote).to.equal(0); // kept on the primary and pushed, not orphaned
    expect(sim.orphaned).to.equal(0);
  });

  it('primary Dolt fails its checks: fence, release, replica takes over; old primary rejoins once healthy', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.node('a').doltHealthy = false;
    sim.runFor(5_000);
    expect(sim.topology).to.deep.include({ epoch: 8, primary: 'b' });
    sim.node('a').doltHealthy = true;
    sim.settle();
    expect(sim.node('a')).to.deep.include({ role: 'replica', epoch: 8 });
  });

  it('flapping: a second failure whose agent lives waits out the anti-flap interval (in place), never fails over to a third node early', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.kill('a');
    sim.settle();
    const firstAt = sim.now;
    sim.node('b').doltHealthy = false;
    sim.runFor(20_000);
    expect(sim.topology, 'no failover inside the window').to.deep.include({ epoch: 8, primary: 'b' });
    expect([...sim.last.values()].some((d) => d.action === 'wait' && d.code === 'anti-flap')).to.equal(true);
    sim.node('b').doltHealthy = true;
    sim.settle();
    expect(sim.topology).to.deep.include({ primary: 'b' });
    expect(sim.now - firstAt).to.be.below(config.minFailoverIntervalMs);
  });

  it('flapping: a second failure whose agent is gone fails over at once (nobody could recover it in place)', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.kill('a');
    sim.settle();
    const firstAt = sim.now;
    sim.kill('b');
    sim.settle();
    expect(sim.topology).to.deep.include({ epoch: 9, primary: 'c' });
    expect(sim.now - firstAt).to.be.below(config.minFailoverIntervalMs);
  });

  it('switchover op: the primary hands over to the target without a second writer', () => {
    const sim = Sim.running(config, names, 'a');
    sim.settle();
    sim.ops.push({ id: 'op-1', kind: 'switchover', target: 'c', force: false, requestedAt: sim.now });
    sim.settle();
    expect(sim.topology).to.deep.include({ epoch: 8, primary: 'c', state: 'stable' });
    expect(sim.node('a')).to.deep.include({ role: 'replica', writable: false });
  });

  // Half-applied transitions: the executor dies before each step in turn; the next decisions
  // must pick the failover up (the same node after a restart, or another node) and converge.
  const stepsAndEnd: Array<FailoverStep | 'end'> = [...failoverSteps, 'end'];
  for (const [k, at] of stepsAndEnd.entries()) {
    it(`failover to b, b dies before ${at} (${k} steps done) and stays dead: c takes over at epoch 9`, () => {
      const sim = Sim.running(config, names, 'a');
      sim.settle();
      sim.crash = (node, record, before) => node === 'b' && record.epoch === 8 && before === at;
      sim.kill('a');
      sim.settle();
      if (at === 'end') {
        // Everything was done before b died: b's reroute stands until b's lease lapses, then c fails over from b.
        expect(sim.topology).to.deep.include({ primary: 'c' });
      } else {
        expect(sim.topology).to.deep.include({ epoch: 9, primary: 'c' });
        expect(sim.history.find((r) => r.epoch === 9)?.fromPrimary).to.equal('a');
      }
    });

    it(`failover to b, b dies before ${at} (${k} steps done) and restarts at once: b ends primary (at epoch 8 unless it had finished)`, () => {
      const sim = Sim.running(config, names, 'a');
      sim.settle();
      let crashed = false;
      sim.crash = (node, record, before) => {
        if (crashed || node !== 'b' || record.epoch !== 8 || before !== at) return false;
        return (crashed = true);
      };
      sim.kill('a');
      for (let i = 0; i < 50 && !crashed; i++) sim.round();
      expect(crashed).to.equal(true);
      sim.revive('b');
      sim.settle();
      // Dead after its reroute, b's key and Dolt are gone with it: it recovers in place at epoch 9.
      expect(sim.topology, sim.trace.join('\n')).to.deep.include({ epoch: at === 'end' ? 9 : 8, primary: 'b' });
    });
  }

  for (const at of ['fence', 'release'] as const) {
    it(`switchover a → c, a dies before ${at}: c still ends primary`, () => {
      const sim = Sim.running(config, names, 'a');
      sim.settle();
      sim.crash = (node, _record, before) => node === 'a' && before === at;
      sim.ops.push({ id: 'op-1', kind: 'switchover', target: 'c', force: false, requestedAt: sim.now });
      sim.settle();
      expect(sim.topology).to.deep.include({ primary: 'c', state: 'stable' });
    });
  }

  for (const at of failoverSteps.slice(1)) {
    it(`switchover a → c, c dies before ${at} and restarts at once: c resumes`, () => {
      const sim = Sim.running(config, names, 'a');
      sim.settle();
      let crashed = false;
      sim.crash = (node, _record, before) => {
        if (crashed || node !== 'c' || before !== at) return false;
        return (crashed = true);
      };
      sim.ops.push({ id: 'op-1', kind: 'switchover', target: 'c', force: false, requestedAt: sim.now });
      for (let i = 0; i < 5 && !crashed; i++) sim.round();
      expect(crashed).to.equal(true);
      sim.revive('c');
      sim.settle();
      expect(sim.topology).to.deep.include({ epoch: 8, primary: 'c' });
    });
  }

  // Random faults for a while, then everything heals: invariants hold throughout and the
  // cluster always converges. Failing seeds print their trace.
  const fuzzConfig = haConfig({ maxCommitsBehind: 100, minFailoverIntervalMs: 15_000 });
  const seen = { failovers: 0, takeovers: 0, ops: 0, fences: 0, rejoins: 0, reclaims: 0, refusals: 0 };
  for (let seed = 1; seed <= 100; seed++) {
    it(`random faults, seed ${seed}: no second writer, converges after healing`, () => {
      const random = prng(seed);
      const sim = Sim.running(fuzzConfig, ['a', 'b', 'c', 'd'], 'a', 7, random);
      const pick = (list: string[]) => list[Math.floor(random() * list.length)]!;
      // Executors die between steps now and then, as long as two agents stay up.
      sim.crash = () => random() < 0.05 && [...sim.nodes.values()].filter((n) => n.agentAlive).length > 2;
      for (let i = 0; i < 120; i++) {
        const roll = random();
        const all = [...sim.nodes.keys()];
        const alive = all.filter((n) => sim.node(n).agentAlive);
        if (roll < 0.04 && alive.length > 2) sim.kill(pick(alive));
        else if (roll < 0.10) sim.revive(pick(all));
        else if (roll < 0.13) sim.partition(pick(all));
        else if (roll < 0.19) sim.heal(pick(all));
        else if (roll < 0.22) sim.node(pick(all)).doltHealthy = false;
        else if (roll < 0.28) sim.node(pick(all)).doltHealthy = true;
        else if (roll < 0.30) sim.node(pick(all)).notOnRemote += 1;
        else if (roll < 0.32 && sim.ops.length === 0) {
          sim.ops.push({ id: `op-${i}`, kind: random() < 0.5 ? 'switchover' : 'failover', target: random() < 0.7 ? pick(all) : null, force: random() < 0.3, requestedAt: sim.now });
        }
        sim.round();
      }
      sim.crash = null;
      for (const name of sim.nodes.keys()) {
        sim.revive(name);
        sim.heal(name);
        sim.node(name).doltHealthy = true;
      }
      sim.settle(400);
      seen.failovers += sim.history.length;
      seen.takeovers += sim.history.filter((r) => r.takeoverFrom !== null).length;
      seen.ops += sim.history.filter((r) => r.opId !== null).length;
      const count = (what: string) => sim.trace.filter((line) => line.includes(what)).length;
      seen.fences += count(': fence-self');
      seen.rejoins += count(': rejoin-as-replica');
      seen.reclaims += count('reclaim it');
      seen.refusals += count(': refuse-op');
      const writers = [...sim.nodes.values()].filter((n) => n.writable).map((n) => n.name);
      expect(writers).to.deep.equal([sim.topology?.primary]);
    });
  }

  it('the random runs did exercise failovers, takeovers, ops, fencing, rejoins, reclaims and refusals', () => {
    expect(seen.failovers, JSON.stringify(seen)).to.be.above(100);
    for (const [what, n] of Object.entries(seen)) expect(n, `${what}: ${JSON.stringify(seen)}`).to.be.above(0);
    console.log(`      (100 seeds: ${JSON.stringify(seen)})`);
  });
});
