/**
 * Where the proxy learns the routing truth (`Topology`): from etcd in a real cluster
 * (EtcdTopologySource, in etcd-topology-source.ts), or from a fixed value for a proxy run without
 * etcd (StaticTopologySource). The router asks `current()` on its hot path (a cheap read of a
 * field, never I/O) and subscribes with `onChange` to drop connections to an old primary and to
 * end the write hold when a primary is back.
 *
 * Contract of every source:
 * - `current().topology` never goes back in epoch; it is null only before the first value.
 * - A topology handed out is frozen; a change is a new object, so `next !== previous`.
 * - `current()` is a field read returning a frozen view object that stays the same until the
 *   source changes (cheap enough for every query; compare views by identity to see a change).
 * - `onChange` listeners hear every applied change, synchronously, in order; they return nothing
 *   and may not throw (a throw is logged and the others are still told).
 * - `start()` resolves within a bounded time even when the store is down; `stop()` ends every
 *   timer and connection the source opened.
 */

import { parseTopology, type Topology } from '../../proto';
import { freezeTopology, type TopologyListener } from './topology-listeners';

export { admitTopology, sameTopology, type Admission, type AdmissionKind, type AppliedTopology } from './topology-admission';
export type { TopologyListener } from './topology-listeners';

export interface TopologyView {
  topology: Topology | null;
  source: 'etcd' | 'static';
  /** False while the etcd watch is disconnected or the last read failed; always true for static. */
  etcdReachable: boolean;
  /** `Date.now()` when the current topology was applied; null before the first. */
  lastUpdateAt: number | null;
}

export interface TopologySource {
  start(): Promise<void>;
  stop(): Promise<void>;
  current(): TopologyView;
  /** Returns the unsubscribe function. */
  onChange(listener: (next: Topology, previous: Topology | null) => void): () => void;
  /**
   * The leader key's value (null: vacant) whenever it changes, and once when first read; a
   * source without a leader key (static) has no such method. Returns the unsubscribe function.
   */
  onLeaderChange?(listener: (leader: string | null) => void): () => void;
}

/**
 * A topology fixed at construction (from the proxy's config file): for a single Dolt server or a
 * test without etcd. It is validated like a value read from etcd, so a bad config fails at start
 * with the same TopologyFormatError naming the bad field. It never changes, so listeners are
 * accepted and never called.
 */
export class StaticTopologySource implements TopologySource {
  private readonly view: TopologyView;

  constructor(topology: Topology) {
    const validated = freezeTopology(parseTopology(structuredClone(topology)));
    this.view = Object.freeze({ topology: validated, source: 'static', etcdReachable: true, lastUpdateAt: Date.now() });
  }

  async start(): Promise<void> {
    // Nothing to connect to.
  }

  async stop(): Promise<void> {
    // Nothing to release.
  }

  current(): TopologyView {
    return this.view;
  }

  onChange(_listener: TopologyListener): () => void {
    return () => undefined;
  }
}
