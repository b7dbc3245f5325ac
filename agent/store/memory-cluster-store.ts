/**
 * A ClusterStore in memory, for tests that drive the agent's real decide/act code without etcd:
 * the same contract as EtcdClusterStore (test/bed/cluster-store-contract.ts runs one suite against
 * both). One `MemoryEtcd` is the shared "server"; each `MemoryClusterStore` is one agent's client
 * of one cluster on it, as EtcdClusterStores on one etcd are.
 *
 * What it keeps of etcd: one revision counter for every write; create and mod revisions per key;
 * compare-and-swap by them; leases with a TTL whose keys vanish when it lapses (checked on every
 * call, against the injected clock); values stored as JSON, so no caller shares an object with
 * the store. `unavailable = true` makes every call fail as an etcd outage does
 * (StoreUnavailableError), for fault tests.
 */

import type { AuditRecord, DatabaseCatalog, HistoryRecord, MemberRecord, OperationRecord, ProxyPresence, Topology } from '../../proto';
import { fenceClockMs } from '../../common/fence-clock';
import { CompareFailedError, LeaseExpiredError, movesThePrimary, StoreUnavailableError, type ClusterSnapshot, type ClusterStore, type LeaseHandle } from './cluster-store';
import type { EtcdUnavailability } from './etcd-quorum';

interface Entry {
  json: string;
  createRevision: number;
  modRevision: number;
  lease: string | null;
}

interface Lease {
  ttlMs: number;
  expiresAt: number;
}

/** The shared "etcd": keys of every cluster, one revision counter, leases. */
export class MemoryEtcd {
  revision = 1;
  /** Every call fails with StoreUnavailableError while true. */
  unavailable = false;
  readonly keys = new Map<string, Entry>();
  readonly leases = new Map<string, Lease>();
  private nextLease = 1;
  private readonly watchers = new Set<{ prefix: string; onChange: () => void }>();

  constructor(readonly now: () => number = fenceClockMs) {}

  /** Drops lapsed leases and their keys; refuses the call during an outage. */
  enter(what: string): void {
    if (this.unavailable) throw new StoreUnavailableError(what, new Error('etcd is down (MemoryEtcd.unavailable)'));
    const at = this.now();
    for (const [id, lease] of this.leases) {
      if (lease.expiresAt > at) continue;
      this.leases.delete(id);
      for (const [key, entry] of this.keys) if (entry.lease === id) this.delete(key);
    }
  }

  grant(ttlMs: number): string {
    const id = String(this.nextLease++);
    this.leases.set(id, { ttlMs, expiresAt: this.now() + ttlMs });
    return id;
  }

  get(key: string): Entry | undefined {
    return this.keys.get(key);
  }

  put(key: string, value: unknown, lease: string | null = null): number {
    const revision = ++this.revision;
    const existing = this.keys.get(key);
    this.keys.set(key, { json: JSON.stringify(value), createRevision: existing?.createRevision ?? revision, modRevision: revision, lease });
    this.notify(key);
    return revision;
  }

  delete(key: string): void {
    if (!this.keys.delete(key)) return;
    this.revision++;
    this.notify(key);
  }

  /** Keys under `prefix`, in key order (as an etcd range read returns them). */
  range(prefix: string): Array<[string, Entry]> {
    return [...this.keys].filter(([key]) => key.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  watch(prefix: string, onChange: () => void): () => void {
    const watcher = { prefix, onChange };
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  private notify(key: string): void {
    for (const w of this.watchers) if (key.startsWith(w.prefix)) queueMicrotask(w.onChange);
  }
}

const parse = <T>(entry: Entry): T => JSON.parse(entry.json) as T;

class MemoryLease implements LeaseHandle {
  lastRenewSentAt: number;
  constructor(
    private readonly etcd: MemoryEtcd,
    readonly id: string,
    readonly ttlMs: number,
  ) {
    this.lastRenewSentAt = etcd.now();
  }

  async renew(): Promise<void> {
    const sentAt = this.etcd.now();
    this.etcd.enter('renew the lease');
    const lease = this.etcd.leases.get(this.id);
    if (lease === undefined) throw new LeaseExpiredError(this.id);
    lease.expiresAt = sentAt + lease.ttlMs;
    this.lastRenewSentAt = sentAt;
  }

  async revoke(): Promise<void> {
    this.etcd.enter('revoke the lease');
    const lease = this.etcd.leases.get(this.id);
    if (lease === undefined) return;
    lease.expiresAt = -Infinity;
    this.etcd.enter('revoke the lease');
  }
}


export class MemoryClusterStore implements ClusterStore {
  private readonly prefix: string;
  private auditSerial = 0;

  constructor(
    private readonly etcd: MemoryEtcd,
    readonly cluster: string,
  ) {
    this.prefix = `/doltgate-memory/${cluster}/`;
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join('/');
  }

  private historyKey(epoch: number): string {
    return this.key('history', String(epoch).padStart(16, '0'));
  }

  async snapshot(): Promise<ClusterSnapshot> {
    this.etcd.enter('read the cluster state');
    const leader = this.etcd.get(this.key('leader'));
    const topology = this.etcd.get(this.key('topology'));
    const databases = this.etcd.get(this.key('databases'));
    const paused = this.etcd.get(this.key('pause'));
    const snapshot: ClusterSnapshot = {
      revision: String(this.etcd.revision),
      leader: leader === undefined ? null : { name: parse<string>(leader), lease: leader.lease ?? '0' },
      topology: topology === undefined ? null : { value: parse<Topology>(topology), modRevision: String(topology.modRevision) },
      members: {},
      paused: paused === undefined ? null : parse<ClusterSnapshot['paused']>(paused),
      ops: this.etcd.range(this.key('ops', '')).map(([, entry]) => ({ value: parse<OperationRecord>(entry), modRevision: String(entry.modRevision) })),
      latestHistory: null,
      latestFailover: null,
      databases: databases === undefined ? null : { value: parse<DatabaseCatalog>(databases), modRevision: String(databases.modRevision) },
    };
    for (const [, entry] of this.etcd.range(this.key('members', ''))) {
      const record = parse<MemberRecord>(entry);
      snapshot.members[record.name] = record;
    }
    for (const [, entry] of this.etcd.range(this.key('history', ''))) {
      const record = parse<HistoryRecord>(entry);
      snapshot.latestHistory = record;
      if (movesThePrimary(record)) snapshot.latestFailover = record;
    }
    return snapshot;
  }

  async grantLease(ttlMs: number): Promise<LeaseHandle> {
    this.etcd.enter('grant a lease');
    // etcd's TTLs are whole seconds, at least one.
    const ttl = Math.max(1, Math.round(ttlMs / 1000)) * 1000;
    return new MemoryLease(this.etcd, this.etcd.grant(ttl), ttl);
  }

  async putMember(record: MemberRecord, lease: LeaseHandle): Promise<void> {
    this.etcd.enter('publish the member record');
    if (!this.etcd.leases.has(lease.id)) throw new StoreUnavailableError('publish the member record', new LeaseExpiredError(lease.id));
    this.etcd.put(this.key('members', record.name), record, lease.id);
  }

  async acquireLeader(name: string, lease: LeaseHandle): Promise<boolean> {
    this.etcd.enter('campaign for leader');
    const existing = this.etcd.get(this.key('leader'));
    if (existing !== undefined) return parse<string>(existing) === name && existing.lease === lease.id;
    if (!this.etcd.leases.has(lease.id)) throw new StoreUnavailableError('campaign for leader', new LeaseExpiredError(lease.id));
    this.etcd.put(this.key('leader'), name, lease.id);
    return true;
  }

  async releaseLeader(name: string): Promise<void> {
    this.etcd.enter('release leader');
    const existing = this.etcd.get(this.key('leader'));
    if (existing !== undefined && parse<string>(existing) === name) this.etcd.delete(this.key('leader'));
  }

  /** Compare on a key's mod revision (null: the key must not exist). */
  private matches(key: string, expectedModRevision: string | null): boolean {
    const entry = this.etcd.get(key);
    return expectedModRevision === null ? entry === undefined : entry !== undefined && String(entry.modRevision) === expectedModRevision;
  }

  async casTopology(next: Topology, expectedModRevision: string | null, history?: HistoryRecord): Promise<string> {
    this.etcd.enter('publish the topology');
    if (!this.matches(this.key('topology'), expectedModRevision)) throw new CompareFailedError(`publishing topology epoch ${next.epoch}`);
    const revision = this.etcd.put(this.key('topology'), next);
    // One transaction in etcd: both writes carry the same revision there; here the topology's.
    if (history) this.etcd.put(this.historyKey(history.epoch), history);
    return String(revision);
  }

  async putHistory(record: HistoryRecord): Promise<void> {
    this.etcd.enter('record history');
    this.etcd.put(this.historyKey(record.epoch), record);
  }

  async beginFailover(create: HistoryRecord | null, claim: { op: OperationRecord; modRevision: string } | null): Promise<boolean> {
    if (create === null && claim === null) throw new Error('beginFailover needs a history record to create or an op to claim');
    this.etcd.enter('start the failover record');
    if (create !== null && this.etcd.get(this.historyKey(create.epoch)) !== undefined) return false;
    if (claim !== null && !this.matches(this.key('ops', claim.op.id), claim.modRevision)) return false;
    if (create !== null) this.etcd.put(this.historyKey(create.epoch), create);
    if (claim !== null) this.etcd.put(this.key('ops', claim.op.id), claim.op);
    return true;
  }

  async casDatabases(next: DatabaseCatalog, expectedModRevision: string | null, topologyModRevision: string): Promise<string> {
    this.etcd.enter('publish the database catalog');
    if (!this.matches(this.key('databases'), expectedModRevision) || !this.matches(this.key('topology'), topologyModRevision)) throw new CompareFailedError('publishing the database catalog');
    return String(this.etcd.put(this.key('databases'), next));
  }

  /** The newest `limit` values under `section`, newest first (keys sort oldest first). */
  private newest<T>(section: string, limit: number): T[] {
    return this.etcd
      .range(this.key(section, ''))
      .reverse()
      .slice(0, limit)
      .map(([, entry]) => parse<T>(entry));
  }

  async listHistory(limit: number): Promise<HistoryRecord[]> {
    this.etcd.enter('read history');
    return this.newest<HistoryRecord>('history', limit);
  }

  async listProxies(): Promise<ProxyPresence[]> {
    this.etcd.enter('read the proxies');
    return this.etcd.range(this.key('proxies', '')).map(([, entry]) => parse<ProxyPresence>(entry));
  }

  /** What a proxy writes for itself (proxy-presence-publisher.ts); `lease` null keeps it until removed. */
  putProxyPresence(record: ProxyPresence, lease: LeaseHandle | null = null): void {
    this.etcd.put(this.key('proxies', record.id), record, lease?.id ?? null);
  }

  removeProxyPresence(id: string): void {
    this.etcd.delete(this.key('proxies', id));
  }

  async appendAudit(record: AuditRecord, keep: number): Promise<void> {
    this.etcd.enter('record the audit entry');
    const atMs = Date.parse(record.at);
    const serial = String(this.auditSerial++).padStart(8, '0');
    this.etcd.put(this.key('audit', `${String(Number.isFinite(atMs) ? atMs : Date.now()).padStart(16, '0')}-${serial}`), record);
    const all = this.etcd.range(this.key('audit', ''));
    for (const [key] of all.slice(0, Math.max(0, all.length - keep))) this.etcd.delete(key);
  }

  async listAudit(limit: number): Promise<AuditRecord[]> {
    this.etcd.enter('read the audit');
    return this.newest<AuditRecord>('audit', limit);
  }

  async putOperation(op: OperationRecord, expectedModRevision: string | null): Promise<string> {
    this.etcd.enter('write the operation');
    if (!this.matches(this.key('ops', op.id), expectedModRevision)) throw new CompareFailedError(`writing operation ${op.id}`);
    return String(this.etcd.put(this.key('ops', op.id), op));
  }

  async setPaused(paused: { by: string; at: string; reason: string } | null): Promise<void> {
    this.etcd.enter(paused ? 'pause' : 'resume');
    if (paused) this.etcd.put(this.key('pause'), paused);
    else this.etcd.delete(this.key('pause'));
  }

  async prune(opIds: readonly string[], historyBelow: number | null): Promise<void> {
    this.etcd.enter('delete old records');
    for (const id of opIds) this.etcd.delete(this.key('ops', id));
    if (historyBelow === null) return;
    for (const [key, entry] of this.etcd.range(this.key('history', ''))) if (parse<HistoryRecord>(entry).epoch < historyBelow) this.etcd.delete(key);
  }

  async watchDecisionKeys(onChange: () => void): Promise<() => Promise<void>> {
    this.etcd.enter('watch the decision keys');
    const stops = ['leader', 'topology', 'pause', 'ops/'].map((part) => this.etcd.watch(this.key(part), onChange));
    return async () => {
      for (const stop of stops) stop();
    };
  }

  async explainUnavailable(): Promise<EtcdUnavailability> {
    return 'unreachable';
  }

  close(): void {}
}
