/**
 * The agent's view of the coordination store, behind one small interface (Patroni's AbstractDCS
 * idea): the HA loop reads an immutable snapshot each cycle and acts only through these verbs.
 * Production runs on etcd (etcd-cluster-store.ts); tests may run on memory-cluster-store.ts. One
 * contract suite (test/bed/cluster-store-contract.ts) runs against both.
 *
 * Leader-lock rules: create `leader` only if absent; renew only our own lease; delete only if the
 * value is still us. Topology writes are compare-and-swap on the key's mod revision, so two agents
 * can never both publish the same next epoch.
 */

import type { EtcdUnavailability } from './etcd-quorum';
import type { AuditRecord, DatabaseCatalog, HistoryRecord, MemberRecord, OperationRecord, ProxyPresence, Topology } from '../../proto';

export interface Versioned<T> {
  value: T;
  modRevision: string;
}

export interface ClusterSnapshot {
  /** etcd revision the snapshot was read at. */
  revision: string;
  leader: { name: string; lease: string } | null;
  topology: Versioned<Topology> | null;
  members: Record<string, MemberRecord>;
  paused: { by: string; at: string; reason: string } | null;
  ops: Array<Versioned<OperationRecord>>;
  /** The history record of the newest epoch, if any. */
  latestHistory: HistoryRecord | null;
  /**
   * The newest history record of a failover or switchover from one node to another: what
   * anti-flap counts. Not a bootstrap, and not a primary's recovery in place (candidate ===
   * fromPrimary), which moves the epoch but never the primary.
   */
  latestFailover: HistoryRecord | null;
  /** Every database the cluster holds (proto/database-catalog.ts); null before a primary wrote it. */
  databases: Versioned<DatabaseCatalog> | null;
}

/**
 * A history record of a failover or switchover from one node to another: what anti-flap counts
 * (ClusterSnapshot.latestFailover). Not a bootstrap, nor a primary's recovery in place.
 */
export function movesThePrimary(record: HistoryRecord): boolean {
  return record.kind !== 'bootstrap' && record.candidate !== record.fromPrimary;
}

export class StoreUnavailableError extends Error {
  readonly code = 'STORE_UNAVAILABLE';
  constructor(what: string, cause: unknown) {
    super(`etcd unavailable while trying to ${what}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export class CompareFailedError extends Error {
  readonly code = 'COMPARE_FAILED';
  constructor(what: string) {
    super(`${what}: the value changed underneath us (compare-and-swap lost)`);
  }
}

export class LeaseExpiredError extends Error {
  readonly code = 'LEASE_EXPIRED';
  constructor(id: string) {
    super(`lease ${id} has expired: every key bound to it is gone`);
  }
}

export interface LeaseHandle {
  readonly id: string;
  readonly ttlMs: number;
  /** Fence-clock ms (common/fence-clock.ts) at which our last successful keepalive was *sent*: the lease lives at least TTL past it. */
  readonly lastRenewSentAt: number;
  /** Renews once; throws StoreUnavailableError when etcd did not confirm. */
  renew(): Promise<void>;
  revoke(): Promise<void>;
}

export interface ClusterStore {
  readonly cluster: string;
  snapshot(): Promise<ClusterSnapshot>;
  /** A fresh lease; the member key and (for a primary) the leader key are bound to it. */
  grantLease(ttlMs: number): Promise<LeaseHandle>;
  putMember(record: MemberRecord, lease: LeaseHandle): Promise<void>;
  /** Creates `leader` = name bound to the lease if absent; true when we hold it afterwards. */
  acquireLeader(name: string, lease: LeaseHandle): Promise<boolean>;
  /** Deletes `leader` only if it still names us. */
  releaseLeader(name: string): Promise<void>;
  /**
   * Writes the topology if its mod revision is still `expected` (null: the key must not exist),
   * and in the same transaction the history record that explains it, so the two never disagree.
   */
  casTopology(next: Topology, expectedModRevision: string | null, history?: HistoryRecord): Promise<string>;
  putHistory(record: HistoryRecord): Promise<void>;
  /**
   * Starts a failover's record in ONE transaction: creates `history/<epoch>` (`create`; it must
   * not exist yet) and moves the op in `claim` from the revision it was read at to its claimed
   * value. Either may be null, not both. False when a compare failed: another agent created that
   * epoch's history, or the op changed (claimed, refused, finished) since it was read.
   */
  beginFailover(create: HistoryRecord | null, claim: { op: OperationRecord; modRevision: string } | null): Promise<boolean>;
  /**
   * Writes the database catalog if its mod revision is still `expected` (null: must not exist)
   * and the topology's is still `topologyModRevision`: a primary writes it only under the topology
   * that made it primary, so an agent that froze and woke after a failover cannot write it.
   */
  casDatabases(next: DatabaseCatalog, expectedModRevision: string | null, topologyModRevision: string): Promise<string>;
  listHistory(limit: number): Promise<HistoryRecord[]>;
  /** Every live proxy's presence record (proto/proxy-presence.ts), by id; malformed ones are skipped. */
  listProxies(): Promise<ProxyPresence[]>;
  /** Records a changing control call (audit.ts); keeps the newest `keep` records. */
  appendAudit(record: AuditRecord, keep: number): Promise<void>;
  /** The newest `limit` audit records, newest first. */
  listAudit(limit: number): Promise<AuditRecord[]>;
  putOperation(op: OperationRecord, expectedModRevision: string | null): Promise<string>;
  setPaused(paused: { by: string; at: string; reason: string } | null): Promise<void>;
  /** Deletes these operations and the history records of epochs below `historyBelow` (retention.ts). */
  prune(opIds: readonly string[], historyBelow: number | null): Promise<void>;
  /**
   * Calls `onChange` when the leader, topology, pause or an op changes (not on member updates,
   * which every agent writes every cycle). A hint to look again sooner, never the only trigger.
   */
  watchDecisionKeys(onChange: () => void): Promise<() => Promise<void>>;
  /** After a failed read: whether a member answers without a majority, or none answers. */
  explainUnavailable(): Promise<EtcdUnavailability>;
  close(): void;
}
