/**
 * While the proxy holds writes because it saw the primary fail (ClusterView suspicion kinds
 * 'unreachable' and 'read-only'), one prober asks that primary every `intervalMs` whether it takes
 * writes again: a fresh connection, a login, `@@global.read_only` 0. The first yes ends the
 * suspicion and the hold lets the writes go; a new topology ends it too (ClusterView.apply). One
 * probe at a time, never per session: a thousand held writes cost one connection attempt per tick.
 *
 * A 'lease-lost' suspicion is not probed: that primary's lease lapsed, and a writable answer from
 * it would mean nothing but that its keeper has not killed it yet.
 */

import type { Logger } from '../../common/logger';
import type { BackendPools } from './backend-pool';
import type { ClusterView, PrimarySuspicion } from './cluster-view';

export class PrimaryProber {
  private timer: NodeJS.Timeout | null = null;
  private probing = false;
  private attempts = 0;

  constructor(
    private readonly view: ClusterView,
    private readonly pools: BackendPools,
    private readonly logger: Logger,
    private readonly intervalMs = 200,
  ) {}

  /** Called with every suspicion change. */
  follow(suspicion: PrimarySuspicion | null): void {
    this.stop();
    if (suspicion === null || suspicion.kind === 'lease-lost' || suspicion.login === null) return;
    this.attempts = 0;
    this.timer = setInterval(() => void this.probe(suspicion), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private async probe(suspicion: PrimarySuspicion): Promise<void> {
    const target = this.view.primary;
    if (this.probing || target === null || this.view.suspicion !== suspicion || suspicion.login === null) return;
    this.probing = true;
    this.attempts++;
    try {
      await this.pools.probeWritable(target, suspicion.login);
      if (this.view.suspicion !== suspicion) return;
      this.logger.info('the suspect primary takes writes again; releasing held writes', { primary: target.name, probes: this.attempts, suspicion: suspicion.reason });
      this.view.clearSuspicion(suspicion.generation);
    } catch {
      // Still down or read-only: the hold goes on, bounded by its own timeout.
    } finally {
      this.probing = false;
    }
  }
}
