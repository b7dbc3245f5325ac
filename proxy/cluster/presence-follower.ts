/**
 * Feeds a proxy's presence record (proxy-presence-publisher.ts) from what its server applied:
 * after each topology, and then every `pollMs` while sessions still finish work on a retired
 * primary, so the record says `draining: 0` within a poll of the last one letting go.
 */

import type { PresenceState, ProxyPresencePublisher } from './proxy-presence-publisher';

export interface PresenceSource {
  presenceState(): PresenceState | null;
  onTopologyApplied(listener: () => void): () => void;
}

export function followPresence(server: PresenceSource, publisher: Pick<ProxyPresencePublisher, 'publish'>, pollMs = 20): () => void {
  let timer: NodeJS.Timeout | null = null;
  const report = (): void => {
    timer = null;
    const state = server.presenceState();
    if (state === null) return;
    publisher.publish(state);
    if (state.draining > 0 && timer === null) {
      timer = setTimeout(report, pollMs);
      timer.unref();
    }
  };
  const unsubscribe = server.onTopologyApplied(() => {
    if (timer !== null) clearTimeout(timer);
    report();
  });
  report();
  return () => {
    unsubscribe();
    if (timer !== null) clearTimeout(timer);
  };
}
