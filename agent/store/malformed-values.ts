/**
 * etcd values the agent could not decode (a foreign or older writer, a hand edit): they are
 * skipped, never fatal to the HA loop, but never silently. Each is logged once per key and mod
 * revision (the loop reads the same bad value every cycle) and counted by kind, the first segment
 * of its key under the cluster prefix (members, ops, history, topology, ...), for
 * doltgate_agent_malformed_etcd_values_total.
 */

import type { Logger } from '../../common/logger';

/** Distinct key@revision pairs remembered for de-duplication; past this, the oldest are forgotten. */
const rememberAtMost = 1000;

export class MalformedValueLog {
  private readonly seen = new Set<string>();
  private readonly byKind = new Map<string, number>();

  constructor(
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  /** The kind of a key: its first segment under the cluster prefix. */
  kindOf(key: string): string {
    const rest = key.startsWith(this.prefix) ? key.slice(this.prefix.length) : key;
    return rest.split('/')[0] || 'unknown';
  }

  report(key: string, modRevision: string | null, error: unknown): void {
    const id = `${key}@${modRevision ?? '?'}`;
    if (this.seen.has(id)) return;
    if (this.seen.size >= rememberAtMost) this.seen.delete(this.seen.values().next().value as string);
    this.seen.add(id);
    const kind = this.kindOf(key);
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    this.logger.warn('skipped a malformed value in etcd', { key, modRevision, kind, error: error instanceof Error ? error.message : String(error) });
  }

  /** Distinct malformed values seen so far, by kind. */
  counts(): ReadonlyMap<string, number> {
    return this.byKind;
  }
}
