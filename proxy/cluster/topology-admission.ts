/**
 * Whether a topology value read from etcd may replace the one the proxy routes by: a pure
 * function of (what is applied, what arrived), so the rule that keeps a proxy from ever routing
 * writes backwards is one small table-tested function rather than a property of event timing.
 *
 * Rules, in order:
 * 1. Nothing applied yet → apply.
 * 2. An older epoch than the applied one → ignore, loudly: the epoch only rises, and a value of an
 *    older epoch names a primary that may already have been replaced (a stale writer, a restored
 *    backup of etcd, a hand edit).
 * 3. A newer epoch → apply.
 * 4. The same epoch: etcd's mod revision orders the writes of that epoch (failover → stable is
 *    written at the same epoch). A revision at or below the applied one is a replay — a re-read
 *    racing a watch event, or a watch resuming after reconnect — and is ignored quietly.
 * 5. The same epoch at a newer revision with the same content → nothing to tell anyone; the newer
 *    revision is remembered so later replays are recognised.
 * 6. Otherwise (same epoch, newer revision, new content) → apply.
 *
 * Every verdict carries a sentence for the log, and tests assert those sentences.
 */

import type { Topology } from '../../proto';

export interface AppliedTopology {
  readonly topology: Topology;
  /** etcd mod revision of the key when this value was written. */
  readonly modRevision: bigint;
}

export type AdmissionKind = 'first' | 'newer-epoch' | 'same-epoch-change' | 'unchanged' | 'replay' | 'older-epoch';

export interface Admission {
  kind: AdmissionKind;
  /** True when the candidate replaces the applied topology and listeners hear of it. */
  apply: boolean;
  /** True when only the remembered mod revision moves forward (kind 'unchanged'). */
  advanceRevision: boolean;
  reason: string;
}

function describe(topology: Topology): string {
  return topology.state === 'stable' ? `stable, primary ${topology.primary}` : `${topology.state}, no primary`;
}

/** Content equality of two topologies (everything except the write time `at`). */
export function sameTopology(a: Topology, b: Topology): boolean {
  if (a.epoch !== b.epoch || a.state !== b.state || a.primary !== b.primary || a.reason !== b.reason) return false;
  const aNames = Object.keys(a.nodes).sort();
  const bNames = Object.keys(b.nodes).sort();
  if (aNames.length !== bNames.length) return false;
  for (let i = 0; i < aNames.length; i++) {
    if (aNames[i] !== bNames[i]) return false;
    const x = a.nodes[aNames[i]];
    const y = b.nodes[bNames[i]];
    if (x.role !== y.role || x.sql.host !== y.sql.host || x.sql.port !== y.sql.port || (x.weight ?? 1) !== (y.weight ?? 1)) return false;
  }
  return true;
}

export function admitTopology(applied: AppliedTopology | null, candidate: Topology, modRevision: bigint): Admission {
  if (applied === null) {
    return { kind: 'first', apply: true, advanceRevision: true, reason: `applied topology epoch ${candidate.epoch} (${describe(candidate)})` };
  }
  const current = applied.topology;
  if (candidate.epoch < current.epoch) {
    return {
      kind: 'older-epoch',
      apply: false,
      advanceRevision: false,
      reason: `ignored topology epoch ${candidate.epoch} (${describe(candidate)}): epoch ${current.epoch} is already applied and the epoch only rises`,
    };
  }
  if (candidate.epoch > current.epoch) {
    return { kind: 'newer-epoch', apply: true, advanceRevision: true, reason: `applied topology epoch ${candidate.epoch} (${describe(candidate)}), replacing epoch ${current.epoch} (${describe(current)})` };
  }
  if (modRevision <= applied.modRevision) {
    return { kind: 'replay', apply: false, advanceRevision: false, reason: `ignored topology epoch ${candidate.epoch} at mod revision ${modRevision}: revision ${applied.modRevision} is already applied` };
  }
  if (sameTopology(current, candidate)) {
    return { kind: 'unchanged', apply: false, advanceRevision: true, reason: `topology epoch ${candidate.epoch} rewritten without changes at mod revision ${modRevision}` };
  }
  return {
    kind: 'same-epoch-change',
    apply: true,
    advanceRevision: true,
    reason: `applied topology epoch ${candidate.epoch} (${describe(candidate)}), replacing the same epoch's earlier value (${describe(current)})`,
  };
}
