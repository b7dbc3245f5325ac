/**
 * The proxy's view of `/doltgate/<cluster>/topology` in etcd: read once at start, then kept
 * current by a watch on that one key, re-read whenever the watch (re)connects so nothing written
 * while it was away is missed.
 *
 * Contract (see also topology-source.ts):
 * - The applied topology never goes back in epoch. Which value wins is decided by admitTopology
 *   (topology-admission.ts) from the epoch and etcd's mod revision, so a re-read racing a watch
 *   event, or a watch replaying after reconnect, can never undo a newer value.
 * - A malformed value or a deleted key is logged and ignored; the last good topology stays: a
 *   proxy keeps routing by what it knows rather than stopping because of a bad write.
 * - `etcdReachable` is true only while the watch is connected AND the last read succeeded. When
 *   it is false the last topology is kept and a background loop re-reads with capped backoff.
 * - `start()` resolves within about `callTimeoutMs` even if etcd is down (topology null,
 *   etcdReachable false) and the source keeps trying in the background.
 * - The leader key is watched beside it (a second watch, re-read whenever it connects) and its
 *   value passed to `onLeaderChange` listeners: the proxy holds writes when the primary's lease is
 *   gone, before the agents publish a new topology (cluster-view.ts).
 */

import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import type { Logger } from '../../common/logger';
import { etcd3Options, type EtcdAccess } from '../../common/etcd-access';
import { etcdHostBreaker } from '../../common/etcd-host-breaker';
import { disposeWatchClient } from '../../common/etcd-watch-stream';
import { withTimeout } from '../../common/with-timeout';
import { clusterKeys, decodeMember, decodeTopology, type ClusterKeys, type Topology } from '../../proto';
import { vetTopology, type TopologyEvidence } from './topology-vetting';
import { admitTopology, type AppliedTopology } from './topology-admission';
import { TopologyListeners, freezeTopology, type TopologyListener } from './topology-listeners';
import type { TopologySource, TopologyView } from './topology-source';

export interface EtcdTopologySourceOptions {
  endpoints: string[];
  /** TLS and user/password for etcd (common/etcd-access.ts); default none. */
  tls?: EtcdAccess['tls'];
  auth?: EtcdAccess['auth'];
  cluster: string;
  logger: Logger;
  /** Deadline of one etcd read and of the first attempt in start(); default 2000 ms. */
  callTimeoutMs?: number;
  /** Longest pause between retries (reads and watch reconnects) while etcd is away; default 5000 ms. */
  maxRetryMs?: number;
  /** Wall clock for `lastUpdateAt`; default Date.now. */
  now?: () => number;
}

/**
 * The watch reconnect backoff handed to etcd3 (its default grows to 30 s, too slow for a proxy
 * that holds writes until it hears of the new primary). Doubles from ~100 ms up to the cap, with
 * ±20% jitter so many proxies do not reconnect in step after an etcd restart.
 */
class CappedBackoff {
  constructor(
    private readonly base: number,
    private readonly cap: number,
  ) {}

  get duration(): number {
    return Math.round(this.base * (0.8 + Math.random() * 0.4));
  }

  next(): CappedBackoff {
    return new CappedBackoff(Math.min(this.base * 2, this.cap), this.cap);
  }
}

const firstRetryMs = 100;
/** How many maxRetryMs the watch may stay unattached while etcd answers reads. */
const stalledWatchFactor = 2;

export class EtcdTopologySource implements TopologySource {
  private readonly endpoints: string[];
  private readonly key: string;
  private readonly keys: ClusterKeys;
  private readonly access: EtcdAccess;
  /** Offers are vetted against etcd one at a time, in the order they arrived. */
  private offers: Promise<void> = Promise.resolve();
  private lastRefusedRevision: string | null = null;
  private readonly leaderKey: string;
  private leaderWatcher: Watcher | null = null;
  /** The leader key's value as last heard: undefined before the first read, null when vacant. */
  private leader: string | null | undefined = undefined;
  private readonly leaderListeners = new Set<(leader: string | null) => void>();
  private readonly logger: Logger;
  private readonly callTimeoutMs: number;
  private readonly maxRetryMs: number;
  private readonly now: () => number;
  private readonly listeners = new TopologyListeners();

  private client: Etcd3 | null = null;
  private watcher: Watcher | null = null;
  private applied: AppliedTopology | null = null;
  private appliedAt: number | null = null;
  private watchConnected = false;
  private readOk = false;
  private reachable = false;
  private started = false;
  private stopped = false;
  private inFlight: Promise<boolean> | null = null;
  private readAgain = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = firstRetryMs;
  /** When etcd first answered a read while the topology watch was unattached (noteReadWithoutWatch). */
  private unattachedSince: number | null = null;
  /** Mod revision of the last malformed value logged, so a re-read does not log it again. */
  private lastMalformedRevision: string | null = null;
  private loggedNoTopology = false;
  private view: TopologyView = Object.freeze({ topology: null, source: 'etcd', etcdReachable: false, lastUpdateAt: null });

  constructor(options: EtcdTopologySourceOptions) {
    this.keys = clusterKeys(options.cluster);
    this.key = this.keys.topology;
    this.leaderKey = clusterKeys(options.cluster).leader;
    this.logger = options.logger.child('topology', { cluster: options.cluster });
    this.callTimeoutMs = options.callTimeoutMs ?? 2000;
    this.maxRetryMs = options.maxRetryMs ?? 5000;
    this.now = options.now ?? Date.now;
    this.endpoints = options.endpoints;
    this.access = { endpoints: options.endpoints, tls: options.tls ?? null, auth: options.auth ?? null };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.client = this.newClient();
    const connected = this.openWatcher();
    this.openLeaderWatcher();
    const [readOk] = await Promise.all([this.refresh('start'), withTimeout(connected, this.callTimeoutMs).catch(() => undefined)]);
    if (!readOk) {
      this.logger.warn('etcd did not answer at start; routing waits for the topology and keeps trying in the background', { endpoints: this.endpoints, key: this.key });
    }
  }

  private newClient(): Etcd3 {
    return new Etcd3(etcd3Options(this.access, {
      dialTimeout: this.callTimeoutMs,
      faultHandling: { host: etcdHostBreaker, watchBackoff: new CappedBackoff(firstRetryMs / 2, this.maxRetryMs) },
    }));
  }

  /**
   * A cancelled watcher leaves its client's stream unable to attach any other (see
   * common/etcd-watch-stream.ts): both watches move to a fresh client, whose 'connected' re-reads
   * the keys, and the old client is disposed of.
   */
  private renewClient(why: string, error: unknown): void {
    const old = this.client;
    if (this.stopped || !old) return;
    this.logger.warn(`${why}; watching again on a new etcd client`, { error, epoch: this.applied?.topology.epoch ?? null });
    const oldWatchers = [this.watcher, this.leaderWatcher];
    this.client = this.newClient();
    this.watcher = null;
    this.leaderWatcher = null;
    this.watchConnected = false;
    this.unattachedSince = null;
    this.updateReachable();
    void disposeWatchClient(old, oldWatchers, this.callTimeoutMs);
    void this.openWatcher();
    this.openLeaderWatcher();
    this.scheduleRetry();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const watchers = [this.watcher, this.leaderWatcher];
    this.watcher = null;
    this.leaderWatcher = null;
    if (this.client) await disposeWatchClient(this.client, watchers, this.callTimeoutMs);
    this.client = null;
    this.watchConnected = false;
    this.updateReachable();
  }

  /** The same frozen object until something changes: the router may call this per query. */
  current(): TopologyView {
    return this.view;
  }

  private refreshView(): void {
    this.view = Object.freeze({ topology: this.applied?.topology ?? null, source: 'etcd', etcdReachable: this.reachable, lastUpdateAt: this.appliedAt });
  }

  onChange(listener: TopologyListener): () => void {
    return this.listeners.add(listener);
  }

  onLeaderChange(listener: (leader: string | null) => void): () => void {
    this.leaderListeners.add(listener);
    if (this.leader !== undefined) listener(this.leader);
    return () => {
      this.leaderListeners.delete(listener);
    };
  }

  private setLeader(leader: string | null): void {
    if (leader === this.leader || this.stopped) return;
    this.leader = leader;
    for (const listener of [...this.leaderListeners]) {
      try {
        listener(leader);
      } catch (error) {
        this.logger.error('a leader listener threw; the others were still told', { error });
      }
    }
  }

  /** Watches the leader key; every (re)connect re-reads it, so a change made meanwhile is seen. */
  private openLeaderWatcher(): void {
    const client = this.client;
    if (!client) return;
    const watcher = client.watch().key(this.leaderKey).watcher();
    this.leaderWatcher = watcher;
    const read = (): void => {
      void withTimeout(client.get(this.leaderKey).string(), this.callTimeoutMs, 'read the leader key').then(
        (value) => {
          if (watcher === this.leaderWatcher) this.setLeader(value);
        },
        () => undefined,
      );
    };
    watcher.on('connected', read);
    watcher.on('put', (kv: IKeyValue) => {
      if (watcher === this.leaderWatcher) this.setLeader(kv.value.toString());
    });
    watcher.on('delete', () => {
      if (watcher === this.leaderWatcher) this.setLeader(null);
    });
    watcher.on('error', (error: Error) => {
      // Cancelled for good; the last value stays meanwhile.
      if (watcher !== this.leaderWatcher || this.stopped) return;
      this.renewClient('etcd cancelled the leader watch', error);
    });
  }

  /** Attaches a watcher on the key; resolves on its first 'connected' (never rejects). */
  private openWatcher(): Promise<void> {
    if (!this.client) return Promise.resolve();
    // watcher() attaches without waiting: create() would wait for 'connected', forever if etcd is down.
    const watcher = this.client.watch().key(this.key).watcher();
    this.watcher = watcher;
    const firstConnect = new Promise<void>((resolve) => watcher.once('connected', () => resolve()));
    watcher.on('connected', () => {
      if (watcher !== this.watcher) return;
      this.watchConnected = true;
      this.unattachedSince = null;
      this.updateReachable();
      // Whatever was written while the watch was away (or before it first attached) is read now.
      void this.refresh('watch connected');
    });
    watcher.on('disconnected', (error: Error) => {
      if (watcher !== this.watcher) return;
      if (this.watchConnected) this.logger.warn('the topology watch lost etcd; keeping the last topology while it reconnects', { error, epoch: this.applied?.topology.epoch ?? null });
      this.watchConnected = false;
      this.updateReachable();
      // Reads keep the topology current until the watch is back.
      this.scheduleRetry();
    });
    watcher.on('put', (kv: IKeyValue) => {
      if (watcher !== this.watcher) return;
      void this.offer(kv.value, String(kv.mod_revision), 'watch');
    });
    watcher.on('delete', () => {
      if (watcher !== this.watcher) return;
      this.logger.warn('the topology key was deleted; keeping the last topology until a new one is published', { key: this.key, epoch: this.applied?.topology.epoch ?? null });
    });
    watcher.on('error', (error: Error) => {
      // etcd cancelled the watch for good (its token gone, or its start revision compacted away).
      if (watcher !== this.watcher) return;
      this.renewClient('etcd cancelled the topology watch', error);
    });
    return firstConnect;
  }

  /** One read of the key at a time; a read asked for meanwhile runs once the current one ends. */
  private refresh(why: string): Promise<boolean> {
    if (this.inFlight) {
      this.readAgain = true;
      return this.inFlight;
    }
    const read = this.readOnce(why).finally(() => {
      this.inFlight = null;
      if (this.readAgain && !this.stopped) {
        this.readAgain = false;
        void this.refresh(`${why} (again)`);
      }
    });
    this.inFlight = read;
    return read;
  }

  private async readOnce(why: string): Promise<boolean> {
    const client = this.client;
    if (!client || this.stopped) return false;
    try {
      const response = await withTimeout(client.get(this.key).exec(), this.callTimeoutMs, 'read the topology');
      if (this.stopped) return false;
      this.readOk = true;
      if (this.watchConnected) this.retryDelay = firstRetryMs;
      else this.noteReadWithoutWatch();
      const kv = response.kvs[0];
      if (kv) {
        await this.offer(kv.value, String(kv.mod_revision), 'read');
      } else if (!this.loggedNoTopology) {
        this.loggedNoTopology = true;
        this.logger.warn('no topology is published in etcd yet; writes cannot be routed until an agent publishes one', { key: this.key });
      }
      return true;
    } catch (error) {
      if (this.stopped) return false;
      if (this.readOk) this.logger.warn('could not read the topology from etcd; keeping the last one', { error, why, epoch: this.applied?.topology.epoch ?? null });
      this.readOk = false;
      this.scheduleRetry();
      return false;
    } finally {
      this.updateReachable();
    }
  }

  /**
   * etcd answers reads but the watch has not connected: until it does, the retry loop keeps
   * reading (so the proxy still follows the topology), and a watch that stays unattached while
   * etcd answers is on a stream that will never attach it: it moves to a new client.
   */
  private noteReadWithoutWatch(): void {
    const now = Date.now();
    if (this.unattachedSince === null) {
      this.unattachedSince = now;
    } else if (now - this.unattachedSince >= stalledWatchFactor * this.maxRetryMs) {
      // etcd3 retries a lost stream within maxRetryMs: this long means it never will.
      this.renewClient(`etcd answered reads for ${now - this.unattachedSince} ms while the topology watch stayed unattached`, null);
      return;
    }
    this.scheduleRetry();
  }

  /** Background healing while etcd is away: re-open a dropped watch, re-read, back off, repeat. */
  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.stopped) return;
      if (!this.watcher) void this.openWatcher();
      void this.refresh('retry');
    }, delay);
    // The proxy's listeners keep the process alive, not this loop.
    this.retryTimer.unref();
  }

  /** A value from a read or a watch event, queued behind the ones before it. */
  private offer(raw: Buffer, modRevision: string, via: 'read' | 'watch'): Promise<void> {
    const next = this.offers.then(() => this.consider(raw, modRevision, via));
    this.offers = next.catch(() => undefined);
    return next;
  }

  /**
   * Decode, ask admitTopology, vet against the member records and history (topology-vetting.ts),
   * apply and notify. A value that cannot be vetted (etcd gone between the value and the
   * evidence) is not applied; the retry loop reads it again.
   */
  private async consider(raw: Buffer, modRevision: string, via: 'read' | 'watch'): Promise<void> {
    let candidate: Topology;
    try {
      candidate = decodeTopology(raw);
    } catch (error) {
      if (this.lastMalformedRevision !== modRevision) {
        this.lastMalformedRevision = modRevision;
        this.logger.error('ignored a malformed topology value; keeping the last good one', { error, modRevision, via, epoch: this.applied?.topology.epoch ?? null });
      }
      return;
    }
    const revision = BigInt(modRevision);
    const verdict = admitTopology(this.applied, candidate, revision);
    if (verdict.kind === 'older-epoch') this.logger.warn(verdict.reason, { modRevision, via });
    else if (!verdict.apply) this.logger.debug(verdict.reason, { modRevision, via });
    if (!verdict.apply) {
      if (verdict.advanceRevision && this.applied) this.applied = { topology: this.applied.topology, modRevision: revision };
      return;
    }
    let evidence: TopologyEvidence;
    try {
      evidence = await this.evidence();
    } catch (error) {
      this.logger.warn('could not read the member records to vet a new topology; keeping the last one and reading again', { error, epoch: candidate.epoch, modRevision });
      this.readOk = false;
      this.updateReachable();
      this.scheduleRetry();
      return;
    }
    if (this.stopped) return;
    const vetting = vetTopology(candidate, this.applied?.topology.epoch ?? null, evidence);
    if (!vetting.accept) {
      if (this.lastRefusedRevision !== modRevision) {
        this.lastRefusedRevision = modRevision;
        this.logger.error(`refused topology epoch ${candidate.epoch}: ${vetting.reason}; keeping the last good one`, { modRevision, via, epoch: this.applied?.topology.epoch ?? null });
      }
      return;
    }
    if (vetting.unvouched.length > 0) this.logger.warn('topology nodes without a member record are left out of routing', { nodes: vetting.unvouched, epoch: candidate.epoch });
    // The applied value may have moved while the evidence was read: admit again.
    if (!admitTopology(this.applied, candidate, revision).apply) return;
    const previous = this.applied?.topology ?? null;
    const next = freezeTopology(vetting.topology);
    this.applied = { topology: next, modRevision: revision };
    this.appliedAt = this.now();
    this.refreshView();
    this.logger.info(verdict.reason, { epoch: next.epoch, state: next.state, primary: next.primary, modRevision, via, why: next.reason });
    this.listeners.notify(next, previous, this.logger);
  }

  /** The member records and the newest history epoch, as etcd holds them now. */
  private async evidence(): Promise<TopologyEvidence> {
    const client = this.client;
    if (!client) throw new Error('no etcd client');
    const [memberValues, historyKeys] = await withTimeout(
      Promise.all([client.getAll().prefix(this.keys.membersPrefix).strings(), client.getAll().prefix(this.keys.historyPrefix).sort('Key', 'Descend').limit(1).keys()]),
      this.callTimeoutMs,
      'read the member records',
    );
    const members: Record<string, { sql: { host: string; port: number }; epoch: number }> = {};
    for (const [key, value] of Object.entries(memberValues)) {
      try {
        const m = decodeMember(value);
        members[key.slice(this.keys.membersPrefix.length)] = { sql: m.sql, epoch: m.epoch };
      } catch {
        // a malformed member vouches for nothing
      }
    }
    const newest = historyKeys[0];
    const latestHistoryEpoch = newest === undefined ? null : Number(newest.slice(this.keys.historyPrefix.length));
    return { members, latestHistoryEpoch: Number.isSafeInteger(latestHistoryEpoch) ? latestHistoryEpoch : null };
  }

  private updateReachable(): void {
    const reachable = !this.stopped && this.watchConnected && this.readOk;
    if (reachable === this.reachable) return;
    this.reachable = reachable;
    this.refreshView();
    if (reachable) this.logger.info('etcd is reachable; the topology is current', { epoch: this.applied?.topology.epoch ?? null });
    else if (!this.stopped) this.logger.warn('etcd is unreachable; routing by the last topology seen', { epoch: this.applied?.topology.epoch ?? null });
  }
}
