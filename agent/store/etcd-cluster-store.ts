/**
 * ClusterStore on etcd v3 (the etcd3 package). Leases are renewed by hand, not by etcd3's
 * automatic keepalive, because fencing needs to know exactly when the last renewal was sent.
 */

import { randomBytes } from 'node:crypto';
import { Etcd3, isRecoverableError, Range, type IOptions, type Lease } from 'etcd3';
import { etcd3Options, type EtcdAccess } from '../../common/etcd-access';
import { etcdHostBreaker } from '../../common/etcd-host-breaker';
import { fenceClockMs } from '../../common/fence-clock';
import { withTimeout } from '../../common/with-timeout';
import { EtcdQuorumProbe, type EtcdUnavailability } from './etcd-quorum';
import {
  clusterKeys,
  decodeAudit,
  decodeCatalog,
  decodeHistory,
  decodeMember,
  decodeOperation,
  decodeProxyPresence,
  decodeTopology,
  encodeCatalog,
  encodeMember,
  encodeTopology,
  memberNameOfKey,
  type AuditRecord,
  type ClusterKeys,
  type DatabaseCatalog,
  type HistoryRecord,
  type MemberRecord,
  type OperationRecord,
  type ProxyPresence,
  type Topology,
} from '../../proto';
import { DecisionKeyWatch } from './decision-key-watch';
import type { MalformedValueLog } from './malformed-values';
import { CompareFailedError, LeaseExpiredError, movesThePrimary, StoreUnavailableError, type ClusterSnapshot, type ClusterStore, type LeaseHandle } from './cluster-store';

export interface EtcdStoreOptions {
  endpoints: string[];
  /** TLS and user/password for etcd (common/etcd-access.ts); default none. */
  tls?: EtcdAccess['tls'];
  auth?: EtcdAccess['auth'];
  cluster: string;
  /** Per-call deadline: a call that takes longer counts as "etcd unreachable". */
  callTimeoutMs?: number;
  /** Told when etcd cancelled the decision-key watch and it starts over on a new client. */
  onWatchRenew?: (error: Error) => void;
  /** Where values that cannot be decoded are reported (they are skipped); default: nowhere. */
  malformed?: MalformedValueLog;
}

/**
 * Keepalive attempts per renewal (see renew). Each picks a member at random and a dead one fails
 * at once, so with one of three members down all of them miss a live member 3^-10 of the time:
 * once in ~59,000 renewals, and it takes two misses in a row to fence a primary.
 */
const KEEPALIVE_ATTEMPTS = 10;

class EtcdLease implements LeaseHandle {
  lastRenewSentAt: number;
  constructor(private readonly lease: Lease, readonly id: string, readonly ttlMs: number, grantedSentAt: number, private readonly timeoutMs: number) {
    this.lastRenewSentAt = grantedSentAt;
  }

  async renew(): Promise<void> {
    // The earliest send counts: etcd restarts the TTL when it gets a keepalive, never before.
    const sentAt = fenceClockMs();
    const callStarted = Date.now();
    const deadline = callStarted + this.timeoutMs;
    let ttl: number;
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await withTimeout(this.lease.keepaliveOnce(), Math.max(1, deadline - Date.now()));
        ttl = Number(response.TTL);
        break;
      } catch (error) {
        // A keepalive is a stream, which etcd3 does not move to another member as it does unary
        // calls: with one of three members down, a third of renewals failed, and two in a row
        // fence a healthy primary. Nor does the member's circuit breaker help: opening the stream
        // counts as a success there, so its consecutive-failure count never reaches the limit.
        if (attempt < KEEPALIVE_ATTEMPTS && error instanceof Error && isRecoverableError(error) && Date.now() < deadline) continue;
        throw new StoreUnavailableError('renew the lease', error);
      }
    }
    // etcd answers a keepalive for an expired lease with TTL <= 0 rather than an error.
    if (!(ttl > 0)) throw new LeaseExpiredError(this.id);
    this.lastRenewSentAt = sentAt;
  }

  async revoke(): Promise<void> {
    try {
      await withTimeout(this.lease.revoke(), this.timeoutMs);
    } catch (error) {
      throw new StoreUnavailableError('revoke the lease', error);
    }
  }
}



export class EtcdClusterStore implements ClusterStore {
  private readonly client: Etcd3;
  private readonly keys: ClusterKeys;
  private readonly timeoutMs: number;

  constructor(options: EtcdStoreOptions) {
    this.keys = clusterKeys(options.cluster);
    this.cluster = options.cluster;
    this.timeoutMs = options.callTimeoutMs ?? 1500;
    const access = { endpoints: options.endpoints, tls: options.tls ?? null, auth: options.auth ?? null };
    this.clientOptions = etcd3Options(access, { dialTimeout: this.timeoutMs, faultHandling: { host: etcdHostBreaker } });
    this.client = new Etcd3(this.clientOptions);
    this.onWatchRenew = options.onWatchRenew;
    this.malformed = options.malformed ?? null;
  }

  private readonly malformed: MalformedValueLog | null;

  private readonly clientOptions: IOptions;
  private quorumProbe: EtcdQuorumProbe | null = null;
  private readonly onWatchRenew: ((error: Error) => void) | undefined;

  readonly cluster: string;

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await withTimeout(run(), this.timeoutMs);
    } catch (error) {
      if (error instanceof CompareFailedError) throw error;
      throw new StoreUnavailableError(what, error);
    }
  }

  async snapshot(): Promise<ClusterSnapshot> {
    // One range read is one consistent revision: every field agrees in time. It starts past the
    // audit records (keyspace.ts), which the HA loop never needs.
    const state = new Range(this.keys.stateStart, Range.prefix(this.keys.prefix).end);
    const response = await this.call('read the cluster state', () => this.client.getAll().inRange(state).exec());
    const snapshot: ClusterSnapshot = {
      revision: String(response.header.revision),
      leader: null,
      topology: null,
      members: {},
      paused: null,
      ops: [],
      latestHistory: null,
      latestFailover: null,
      databases: null,
    };
    for (const kv of response.kvs) {
      const key = kv.key.toString();
      try {
        if (key === this.keys.leader) {
          snapshot.leader = { name: kv.value.toString(), lease: String(kv.lease) };
        } else if (key === this.keys.topology) {
          snapshot.topology = { value: decodeTopology(kv.value), modRevision: String(kv.mod_revision) };
        } else if (key === this.keys.databases) {
          snapshot.databases = { value: decodeCatalog(kv.value), modRevision: String(kv.mod_revision) };
        } else if (key === this.keys.pause) {
          snapshot.paused = JSON.parse(kv.value.toString()) as ClusterSnapshot['paused'];
        } else if (key.startsWith(this.keys.membersPrefix)) {
          const record = decodeMember(kv.value);
          snapshot.members[memberNameOfKey(this.keys, key) ?? record.name] = record;
        } else if (key.startsWith(this.keys.opsPrefix)) {
          snapshot.ops.push({ value: decodeOperation(kv.value), modRevision: String(kv.mod_revision) });
        } else if (key.startsWith(this.keys.historyPrefix)) {
          // Keys sort by zero-padded epoch, so the last one read is the newest.
          const record = decodeHistory(kv.value);
          snapshot.latestHistory = record;
          if (movesThePrimary(record)) snapshot.latestFailover = record;
        }
      } catch (error) {
        // A malformed value from an older or foreign writer is skipped, never fatal to the loop.
        this.malformed?.report(key, String(kv.mod_revision), error);
      }
    }
    return snapshot;
  }

  async grantLease(ttlMs: number): Promise<LeaseHandle> {
    const ttlSeconds = Math.max(1, Math.round(ttlMs / 1000));
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive: false });
    // etcd3 emits 'lost' on failures we already surface as exceptions; an unhandled 'error'-like
    // emit must not crash the agent.
    lease.on('lost', () => undefined);
    const sentAt = fenceClockMs();
    const id = await this.call('grant a lease', () => lease.grant());
    return new EtcdLease(lease, id, ttlSeconds * 1000, sentAt, this.timeoutMs);
  }

  async putMember(record: MemberRecord, lease: LeaseHandle): Promise<void> {
    await this.call('publish the member record', () => this.client.put(this.keys.member(record.name)).value(encodeMember(record)).lease(lease.id).exec());
  }

  async acquireLeader(name: string, lease: LeaseHandle): Promise<boolean> {
    const result = await this.call('campaign for leader', () =>
      this.client.if(this.keys.leader, 'Create', '==', 0).then(this.client.put(this.keys.leader).value(name).lease(lease.id)).else(this.client.get(this.keys.leader)).commit(),
    );
    if (result.succeeded) return true;
    const existing = result.responses[0]?.response_range?.kvs[0];
    // Already ours (a retry after a lost answer) counts as held, if it is bound to this lease.
    return existing !== undefined && existing.value.toString() === name && String(existing.lease) === lease.id;
  }

  async releaseLeader(name: string): Promise<void> {
    await this.call('release leader', () => this.client.if(this.keys.leader, 'Value', '==', name).then(this.client.delete().key(this.keys.leader)).commit());
  }

  async casTopology(next: Topology, expectedModRevision: string | null, history?: HistoryRecord): Promise<string> {
    const writes = [this.client.put(this.keys.topology).value(encodeTopology(next))];
    if (history) writes.push(this.client.put(this.keys.history(history.epoch)).value(JSON.stringify(history)));
    const result = await this.call('publish the topology', () =>
      (expectedModRevision === null
        ? this.client.if(this.keys.topology, 'Create', '==', 0)
        : this.client.if(this.keys.topology, 'Mod', '==', expectedModRevision)
      )
        .then(...writes)
        .commit(),
    );
    if (!result.succeeded) throw new CompareFailedError(`publishing topology epoch ${next.epoch}`);
    return String(result.header.revision);
  }

  async casDatabases(next: DatabaseCatalog, expectedModRevision: string | null, topologyModRevision: string): Promise<string> {
    const result = await this.call('publish the database catalog', () =>
      (expectedModRevision === null ? this.client.if(this.keys.databases, 'Create', '==', 0) : this.client.if(this.keys.databases, 'Mod', '==', expectedModRevision))
        .and(this.keys.topology, 'Mod', '==', topologyModRevision)
        .then(this.client.put(this.keys.databases).value(encodeCatalog(next)))
        .commit(),
    );
    if (!result.succeeded) throw new CompareFailedError('publishing the database catalog');
    return String(result.header.revision);
  }

  async putHistory(record: HistoryRecord): Promise<void> {
    await this.call('record history', () => this.client.put(this.keys.history(record.epoch)).value(JSON.stringify(record)).exec());
  }

  async beginFailover(create: HistoryRecord | null, claim: { op: OperationRecord; modRevision: string } | null): Promise<boolean> {
    const compares: Array<{ key: string; target: 'Create' | 'Mod'; value: number | string }> = [];
    const writes: Array<{ key: string; value: string }> = [];
    if (create) {
      compares.push({ key: this.keys.history(create.epoch), target: 'Create', value: 0 });
      writes.push({ key: this.keys.history(create.epoch), value: JSON.stringify(create) });
    }
    if (claim) {
      compares.push({ key: this.keys.op(claim.op.id), target: 'Mod', value: claim.modRevision });
      writes.push({ key: this.keys.op(claim.op.id), value: JSON.stringify(claim.op) });
    }
    const [first, ...rest] = compares;
    if (first === undefined) throw new Error('beginFailover needs a history record to create or an op to claim');
    const result = await this.call('start the failover record', () => {
      let txn = this.client.if(first.key, first.target, '==', first.value);
      for (const c of rest) txn = txn.and(c.key, c.target, '==', c.value);
      return txn.then(...writes.map((w) => this.client.put(w.key).value(w.value))).commit();
    });
    return result.succeeded;
  }

  async listHistory(limit: number): Promise<HistoryRecord[]> {
    const values = await this.call('read history', () => this.client.getAll().prefix(this.keys.historyPrefix).sort('Key', 'Descend').limit(limit).strings());
    const records: HistoryRecord[] = [];
    for (const [key, raw] of Object.entries(values)) {
      try {
        records.push(decodeHistory(raw));
      } catch (error) {
        this.malformed?.report(key, null, error);
      }
    }
    return records.sort((a, b) => b.epoch - a.epoch);
  }

  async listProxies(): Promise<ProxyPresence[]> {
    const values = await this.call('read the proxies', () => this.client.getAll().prefix(this.keys.proxiesPrefix).strings());
    const records: ProxyPresence[] = [];
    for (const key of Object.keys(values).sort()) {
      try {
        records.push(decodeProxyPresence(values[key]));
      } catch (error) {
        this.malformed?.report(key, null, error);
      }
    }
    return records;
  }

  async appendAudit(record: AuditRecord, keep: number): Promise<void> {
    const atMs = Date.parse(record.at);
    const key = this.keys.audit(Number.isFinite(atMs) ? atMs : Date.now(), randomBytes(4).toString('hex'));
    await this.call('record the audit entry', () => this.client.put(key).value(JSON.stringify(record)).exec());
    // Past `keep`, the oldest go: keys only, so the check stays cheap.
    const audit = Range.prefix(this.keys.auditPrefix);
    const count = await this.call('count audit entries', () => this.client.getAll().inRange(audit).count());
    if (count <= keep) return;
    const oldest = await this.call('read old audit keys', () => this.client.getAll().inRange(audit).sort('Key', 'Ascend').limit(count - keep + 1).keys());
    const firstKept = oldest[count - keep];
    if (firstKept !== undefined) await this.call('delete old audit entries', () => this.client.delete().inRange(new Range(this.keys.auditPrefix, firstKept)).exec());
  }

  async listAudit(limit: number): Promise<AuditRecord[]> {
    const values = await this.call('read the audit', () => this.client.getAll().prefix(this.keys.auditPrefix).sort('Key', 'Descend').limit(limit).strings());
    const records: AuditRecord[] = [];
    const newestFirst = Object.keys(values).sort().reverse();
    for (const key of newestFirst) {
      try {
        records.push(decodeAudit(values[key]));
      } catch (error) {
        this.malformed?.report(key, null, error);
      }
    }
    return records;
  }

  async putOperation(op: OperationRecord, expectedModRevision: string | null): Promise<string> {
    const key = this.keys.op(op.id);
    const result = await this.call('write the operation', () =>
      (expectedModRevision === null ? this.client.if(key, 'Create', '==', 0) : this.client.if(key, 'Mod', '==', expectedModRevision))
        .then(this.client.put(key).value(JSON.stringify(op)))
        .commit(),
    );
    if (!result.succeeded) throw new CompareFailedError(`writing operation ${op.id}`);
    return String(result.header.revision);
  }

  async prune(opIds: readonly string[], historyBelow: number | null): Promise<void> {
    for (const id of opIds) {
      // Planned from finished ops only, which never change again (operations.ts): no compare.
      await this.call('delete an old operation', () => this.client.delete().key(this.keys.op(id)).exec());
    }
    if (historyBelow !== null) {
      const range = new Range(this.keys.history(0), this.keys.history(historyBelow));
      await this.call('delete old history', () => this.client.delete().range(range).exec());
    }
  }

  async setPaused(paused: { by: string; at: string; reason: string } | null): Promise<void> {
    if (paused) {
      await this.call('pause', () => this.client.put(this.keys.pause).value(JSON.stringify(paused)).exec());
    } else {
      await this.call('resume', () => this.client.delete().key(this.keys.pause).exec());
    }
  }

  async watchDecisionKeys(onChange: () => void): Promise<() => Promise<void>> {
    const watch = new DecisionKeyWatch({ keys: this.keys, newClient: () => new Etcd3(this.clientOptions), onChange, timeoutMs: this.timeoutMs, onRenew: this.onWatchRenew });
    return () => watch.stop();
  }

  explainUnavailable(): Promise<EtcdUnavailability> {
    this.quorumProbe ??= new EtcdQuorumProbe(this.clientOptions, this.timeoutMs);
    return this.quorumProbe.explain();
  }

  close(): void {
    this.client.close();
  }
}

