/**
 * Keeps this proxy's `proxies/<id>` record (proto/proxy-presence.ts) in etcd: bound to a lease of
 * its own, renewed every third of its TTL, rewritten whenever what the proxy applied changes.
 * The outgoing primary of a switchover reads these records to know that every proxy holds writes
 * before it stops its Dolt.
 *
 * One write at a time, newest value wins: `publish` only records what to say; the loop says it,
 * so a burst of changes costs one put. A failed put or renewal is retried with capped backoff on a
 * fresh lease (the old one may have lapsed while etcd was away). Never throws into the proxy.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Etcd3, type Lease } from 'etcd3';
import { etcd3Options, type EtcdAccess } from '../../common/etcd-access';
import type { Logger } from '../../common/logger';
import { withTimeout } from '../../common/with-timeout';
import { clusterKeys, encodeProxyPresence, type ClusterState, type ProxyPresence } from '../../proto';

export interface PresenceState {
  epoch: number;
  state: ClusterState;
  draining: number;
}

export interface ProxyPresenceOptions {
  access: EtcdAccess;
  cluster: string;
  logger: Logger;
  /** Lease TTL: how long a dead proxy's record outlives it; default 5 s. */
  ttlSeconds?: number;
  callTimeoutMs?: number;
  now?: () => number;
}

const firstRetryMs = 200;
const maxRetryMs = 5_000;

/** A proxy's id: unique per process, and says where it runs. */
export function newProxyId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export class ProxyPresencePublisher {
  readonly id = newProxyId();
  private readonly key: string;
  private readonly ttlSeconds: number;
  private readonly callTimeoutMs: number;
  private readonly now: () => number;
  private readonly client: Etcd3;
  private lease: { lease: Lease; id: string } | null = null;
  private wanted: PresenceState | null = null;
  /** The value etcd holds under the current lease, or null (none yet, or the lease is new). */
  private written: string | null = null;
  private loop: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private retryMs = firstRetryMs;
  private renewDueAt = 0;
  private stopped = false;

  constructor(private readonly options: ProxyPresenceOptions) {
    this.key = clusterKeys(options.cluster).proxy(this.id);
    this.ttlSeconds = options.ttlSeconds ?? 5;
    this.callTimeoutMs = options.callTimeoutMs ?? 2_000;
    this.now = options.now ?? Date.now;
    this.client = new Etcd3(etcd3Options(options.access, { dialTimeout: this.callTimeoutMs }));
  }

  /** Say `state` (soon; the newest call wins). */
  publish(state: PresenceState): void {
    this.wanted = { ...state };
    this.kick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    await this.loop?.catch(() => undefined);
    const held = this.lease;
    this.lease = null;
    // Revoking deletes the record at once, so a switchover does not wait for a proxy that left.
    if (held !== null) await withTimeout(held.lease.revoke(), this.callTimeoutMs).catch(() => undefined);
    this.client.close();
  }

  private kick(delayMs: number): void {
    if (this.stopped || this.loop !== null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.loop = this.step().finally(() => {
        this.loop = null;
        this.scheduleNext();
      });
    }, delayMs);
    this.timer.unref();
  }

  private scheduleNext(): void {
    if (this.stopped || this.wanted === null) return;
    const value = this.valueOf(this.wanted);
    if (this.lease === null) return this.kick(this.retryMs);
    this.kick(value !== this.written ? 0 : Math.max(0, this.renewDueAt - this.now()));
  }

  private valueOf(state: PresenceState): string {
    return encodeProxyPresence({ id: this.id, epoch: state.epoch, state: state.state, draining: state.draining, at: '' } satisfies ProxyPresence);
  }

  private async step(): Promise<void> {
    const wanted = this.wanted;
    if (wanted === null) return;
    try {
      if (this.lease !== null && this.now() >= this.renewDueAt) {
        const answer = await withTimeout(this.lease.lease.keepaliveOnce(), this.callTimeoutMs);
        // etcd answers a keepalive for a lapsed lease with TTL <= 0: its record is gone.
        if (!(Number(answer.TTL) > 0)) this.dropLease('the lease lapsed');
        else this.renewDueAt = this.now() + (this.ttlSeconds * 1000) / 3;
      }
      if (this.lease === null) {
        const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: false });
        lease.on('lost', () => undefined);
        const id = await withTimeout(lease.grant(), this.callTimeoutMs);
        this.lease = { lease, id };
        this.written = null;
        this.renewDueAt = this.now() + (this.ttlSeconds * 1000) / 3;
      }
      const value = this.valueOf(wanted);
      if (value !== this.written) {
        const record: ProxyPresence = { id: this.id, epoch: wanted.epoch, state: wanted.state, draining: wanted.draining, at: new Date(this.now()).toISOString() };
        await withTimeout(this.client.put(this.key).value(encodeProxyPresence(record)).lease(this.lease.id).exec(), this.callTimeoutMs);
        this.written = value;
      }
      this.retryMs = firstRetryMs;
    } catch (error) {
      this.dropLease((error as Error).message);
      this.retryMs = Math.min(maxRetryMs, this.retryMs * 2);
    }
  }

  private dropLease(why: string): void {
    if (this.lease !== null) this.options.logger.warn('proxy presence record lost; registering again', { key: this.key, error: why });
    this.lease = null;
    this.written = null;
  }
}
