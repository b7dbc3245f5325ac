/**
 * The proxy's routing table, rebuilt from each topology it hears of: which node takes writes
 * (and under which "primary generation"), which nodes serve reads (fed to the ReplicaSelector),
 * and whether writes must wait in the write hold. Sessions read it on every command; it changes
 * only in `apply`, called from the topology source's onChange.
 *
 * What a new topology does to connections is the pure function `planTopologyChange`, table-tested:
 * - same primary (name and address), stable before and after → keep: connections stay, at the
 *   new epoch (a change elsewhere in the topology must not kill every transaction);
 * - the new state is `switchover` → drain: the old primary is still alive and the agent lets open
 *   transactions finish, so a session in a transaction keeps its connection until the transaction
 *   ends; every other connection to it is closed and new writes are held;
 * - anything else (a failover begins, a new primary is published, the primary's address moved)
 *   → close: every connection to the old primary is closed now; a session that had a transaction
 *   open there gets TransactionLostError on its next command.
 * A primary generation counts these changes: a connection is usable for writes only at the
 * current generation (or, while draining, inside the transaction it already had open).
 *
 * Hold: no primary (state failover/switchover, or no topology yet) → hold.begin(reason); a stable
 * topology with a primary → hold.end() (held writes go to the new primary, FIFO).
 *
 * Suspicion: the proxy also holds writes from the moment it SEES the primary fail, before any
 * agent has published a new topology (design.md safety 5: a write that was never sent is never an
 * error while the hold lasts). A session that cannot reach the primary, or finds it read-only,
 * calls `suspectPrimary`; the hold begins, and the proxy's prober (proxy-server.ts) ends it with
 * `clearSuspicion` once the primary takes writes again. A leader key gone while the topology still
 * names a primary ('lease-lost') is not the prober's to clear: that primary's lease lapsed, so
 * only the leader key coming back for it, or a new topology, ends it. Any topology change that
 * retires the primary's connections drops the suspicion: the new topology decides.
 *
 * Replica nodes carry a generation too: it rises when a node's address or role changes, so a
 * session's replica connection opened before the change is dropped on next use.
 */

import type { Topology } from '../../proto';
import type { WriteHold } from '../hold/write-hold';
import type { ReplicaSelector } from '../routing/replica-selector';
import type { BackendLogin, BackendTarget } from './backend-connection';

export type PrimaryAction = 'keep' | 'drain' | 'close' | 'none';

export interface TopologyPlan {
  primaryAction: PrimaryAction;
  hold: 'begin' | 'end';
  /** Sentence for the log. */
  reason: string;
}

function writerOf(t: Topology | null): BackendTarget | null {
  if (t === null || t.state !== 'stable' || t.primary === null) return null;
  const node = t.nodes[t.primary];
  if (node === undefined) return null;
  return { name: t.primary, host: node.sql.host, port: node.sql.port };
}

function sameTarget(a: BackendTarget, b: BackendTarget): boolean {
  return a.name === b.name && a.host === b.host && a.port === b.port;
}

/** What a change from `previous` to `next` means for connections to the primary. */
export function planTopologyChange(previous: Topology | null, next: Topology): TopologyPlan {
  const before = writerOf(previous);
  const after = writerOf(next);
  const hold = after === null ? 'begin' : 'end';
  if (before === null && previous?.state !== 'switchover') {
    return { primaryAction: 'none', hold, reason: after === null ? `no primary at epoch ${next.epoch} (${next.state}); holding writes` : `primary ${after.name} at epoch ${next.epoch}` };
  }
  if (before !== null && after !== null && sameTarget(before, after)) {
    return { primaryAction: 'keep', hold, reason: `primary ${after.name} unchanged at epoch ${next.epoch}` };
  }
  if (next.state === 'switchover') {
    return { primaryAction: 'drain', hold, reason: `switchover at epoch ${next.epoch}: open transactions on ${before?.name ?? 'the old primary'} may finish, new writes are held` };
  }
  const old = before?.name ?? 'the old primary';
  return {
    primaryAction: 'close',
    hold,
    reason: after === null
      ? `${next.state} at epoch ${next.epoch}: closing connections to ${old}; holding writes`
      : `primary changed to ${after.name} at epoch ${next.epoch}: closing connections to ${old}`,
  };
}

export interface ReplicaNode extends BackendTarget {
  readonly generation: number;
}

export type SuspicionKind = 'unreachable' | 'read-only' | 'lease-lost';

export interface PrimarySuspicion {
  /** The primary generation the failure was seen at; a newer one is not suspect. */
  readonly generation: number;
  readonly kind: SuspicionKind;
  readonly reason: string;
  /** Credentials the prober may log in with (those of the session that saw the failure). */
  readonly login: BackendLogin | null;
}

function leaseLostReason(leader: string | null, epoch: number, primary: string): string {
  return leader === null ? `the leader key is vacant although epoch ${epoch} names ${primary}` : `${leader} holds the leader key although epoch ${epoch} names ${primary}`;
}

export class ClusterView {
  topology: Topology | null = null;
  /** Rises on every change that retires the primary's connections. */
  primaryGeneration = 1;
  /** The generation whose in-transaction connections may finish (switchover), or -1. */
  drainingGeneration = -1;
  primary: BackendTarget | null = null;
  /** Why writes are failing over, for error messages: "primary changed by failover (epoch 7)". */
  lastChange = '';
  /** The primary the topology names was seen failing: writes are held (see the file doc). */
  suspicion: PrimarySuspicion | null = null;
  /** Told when a suspicion begins (the server starts its prober) or ends. */
  onSuspicion: ((suspicion: PrimarySuspicion | null) => void) | null = null;
  /** The leader key's value as last heard (undefined: not known, e.g. a static topology). */
  private leader: string | null | undefined = undefined;
  private readonly replicas = new Map<string, ReplicaNode>();
  private nodeGeneration = 1;

  constructor(
    readonly selector: ReplicaSelector,
    readonly hold: WriteHold,
  ) {}

  /**
   * The cluster runs Dolt's cluster replication (the topology says so). It carries users and
   * grants, so account statements are forwarded to the primary (with remote replication they
   * would stay on one node and are refused); and it pushes asynchronously, which sets the default
   * read-your-writes window.
   */
  get clusterReplication(): boolean {
    return this.topology?.replication === 'cluster';
  }

  replica(name: string): ReplicaNode | undefined {
    return this.replicas.get(name);
  }

  /** Applies `next`; returns the plan so the server can act on sessions and pools. */
  apply(next: Topology, previous: Topology | null): TopologyPlan {
    const plan = planTopologyChange(previous ?? this.topology, next);
    this.topology = next;
    this.primary = writerOf(next);
    if (plan.primaryAction === 'close' || plan.primaryAction === 'drain') {
      this.drainingGeneration = plan.primaryAction === 'drain' ? this.primaryGeneration : -1;
      this.primaryGeneration++;
      this.lastChange = `${next.state === 'switchover' ? 'switchover' : 'primary changed by failover'} (epoch ${next.epoch})`;
    } else if (plan.primaryAction === 'none' && this.primary !== null) {
      this.drainingGeneration = -1;
    }

    const weights: { name: string; weight: number }[] = [];
    const seen = new Set<string>();
    for (const [name, node] of Object.entries(next.nodes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (name === next.primary || node.role !== 'replica') continue;
      seen.add(name);
      const old = this.replicas.get(name);
      if (old === undefined || old.host !== node.sql.host || old.port !== node.sql.port) {
        this.replicas.set(name, { name, host: node.sql.host, port: node.sql.port, generation: this.nodeGeneration++ });
      }
      weights.push({ name, weight: node.weight ?? 1 });
    }
    for (const name of [...this.replicas.keys()]) if (!seen.has(name)) this.replicas.delete(name);
    this.selector.setReplicas(weights);

    // A suspicion survives only a change that keeps the primary's connections (same primary).
    if (this.suspicion !== null && plan.primaryAction !== 'keep') this.setSuspicion(null);
    if (plan.hold === 'begin') this.hold.begin(`${next.state} at epoch ${next.epoch}`);
    else if (this.suspicion !== null) this.hold.begin(this.suspicion.reason);
    else this.hold.end();
    return plan;
  }

  /**
   * A session saw the primary of `generation` fail. Begins holding writes unless that generation
   * is retired already or the cluster has no primary (the topology's own hold covers that).
   * Returns whether writes are now held for this failure, so the caller should wait and retry.
   */
  suspectPrimary(generation: number, kind: Exclude<SuspicionKind, 'lease-lost'>, reason: string, login: BackendLogin | null): boolean {
    if (generation !== this.primaryGeneration || this.primary === null) return false;
    if (this.suspicion === null) {
      this.setSuspicion({ generation, kind, reason: `primary ${this.primary.name} ${reason}`, login });
      this.hold.begin(this.suspicion!.reason);
    }
    return true;
  }

  /** The prober found the suspect primary taking writes: let held writes go. */
  clearSuspicion(generation: number): void {
    const s = this.suspicion;
    if (s === null || s.generation !== generation || s.kind === 'lease-lost') return;
    this.setSuspicion(null);
    if (this.primary !== null && this.topology?.state === 'stable') this.hold.end();
  }

  /**
   * The leader key's value changed. Away from the primary the topology names (vacant, or another
   * node's): that primary's lease lapsed or it gave the key up, so it is fencing itself; hold
   * writes. Back with that primary's name: release. Only a change away from the primary counts:
   * a key never seen naming it (a topology written by hand, no agents) holds nothing.
   */
  leaderChanged(leader: string | null): void {
    const previous = this.leader;
    this.leader = leader;
    const primary = this.primary;
    if (primary === null) return;
    if (previous === primary.name && leader !== primary.name && this.suspicion === null) {
      this.setSuspicion({ generation: this.primaryGeneration, kind: 'lease-lost', reason: leaseLostReason(leader, this.topology?.epoch ?? 0, primary.name), login: null });
      this.hold.begin(this.suspicion!.reason);
    } else if (leader === primary.name && this.suspicion?.kind === 'lease-lost') {
      this.setSuspicion(null);
      if (this.topology?.state === 'stable') this.hold.end();
    }
  }

  private setSuspicion(next: PrimarySuspicion | null): void {
    this.suspicion = next;
    this.onSuspicion?.(next);
  }

  /** May a primary connection of `generation` run the next command (`inTransaction`: it has one open)? */
  primaryUsable(generation: number, inTransaction: boolean): boolean {
    return generation === this.primaryGeneration || (inTransaction && generation === this.drainingGeneration);
  }

  /** Is a replica connection to `name` opened at `generation` still pointed at a replica? */
  replicaUsable(name: string, generation: number): boolean {
    return this.replicas.get(name)?.generation === generation;
  }
}
