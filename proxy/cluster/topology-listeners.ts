/**
 * The onChange listeners of a topology source. A listener that throws is logged and skipped: one
 * faulty subscriber must not stop the others from hearing of a new primary, nor break the etcd
 * watch that delivered it. Listeners run synchronously, in subscription order, with a snapshot
 * of the set (a listener may unsubscribe itself or others while being called).
 */

import type { Logger } from '../../common/logger';
import type { Topology } from '../../proto';

export type TopologyListener = (next: Topology, previous: Topology | null) => void;

export class TopologyListeners {
  private readonly listeners = new Set<TopologyListener>();

  add(listener: TopologyListener): () => void {
    // A wrapper per subscription, so subscribing the same function twice gives two subscriptions.
    const entry: TopologyListener = (next, previous) => listener(next, previous);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  notify(next: Topology, previous: Topology | null, logger: Logger): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(next, previous);
      } catch (error) {
        logger.error('a topology listener threw; the others were still told', { error, epoch: next.epoch });
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}

/** Freezes a topology in place, nodes included: every holder of it shares one immutable value. */
export function freezeTopology(topology: Topology): Topology {
  for (const node of Object.values(topology.nodes)) {
    Object.freeze(node.sql);
    Object.freeze(node);
  }
  Object.freeze(topology.nodes);
  return Object.freeze(topology);
}
