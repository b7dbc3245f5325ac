/**
 * Who may be in the middle of logging in. Connections that have not proven a password have their
 * own table, apart from logged-in clients (max_client_connections), so half-open connections can
 * never take a logged-in client's slot: 1000 of them used to lock every legitimate login out
 * until the handshake timeout.
 *
 * The table is bounded in total (`max`) and per client address (`maxPerAddress`). When a bound
 * is reached the newcomer is not simply refused: the handshake whose client has kept the proxy
 * waiting longest for its next packet is closed to make room, provided it has waited at least
 * `minEvictableWaitMs`. A real client answers each handshake packet within a round trip, so the
 * ones that wait are the ones holding a slot without logging in; only when every handshake in
 * the way is making progress is the newcomer refused. A handshake the proxy itself is working on
 * (checking a password, holding a throttled verdict) is never "waiting" and never evicted; the
 * per-address bound keeps those few.
 *
 * Invariant: at most `max` entries in all, at most `maxPerAddress` per address; an entry leaves
 * through `release` (login done, connection closed) or as the victim `makeRoom` returns.
 */

import type { Socket } from 'node:net';

/** The address logins are counted by: IPv4 clients of a dual-stack listener lose the ::ffff: prefix. */
export function clientAddressOf(socket: Pick<Socket, 'remoteAddress'>): string {
  const a = socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export interface HandshakeSlotsOptions {
  max: number;
  maxPerAddress: number;
  minEvictableWaitMs: number;
}

export type RoomDecision<T> =
  | { readonly admit: true; readonly evicted: T | null }
  | { readonly admit: false; readonly reason: 'address_full' | 'full' };

export class HandshakeSlots<T> {
  private readonly byAddress = new Map<string, Set<T>>();
  private count = 0;

  /** `waitingSince(entry)`: since when the proxy has waited for that client's next packet (null: not waiting). */
  constructor(
    private readonly options: HandshakeSlotsOptions,
    private readonly waitingSince: (entry: T) => number | null,
  ) {}

  get size(): number {
    return this.count;
  }

  countFor(address: string): number {
    return this.byAddress.get(address)?.size ?? 0;
  }

  /**
   * Whether a new handshake from `address` may start now; when a bound is reached, the entry
   * evicted to make room (already removed: the caller closes it).
   */
  makeRoom(address: string, now: number): RoomDecision<T> {
    const own = this.byAddress.get(address);
    const ownFull = own !== undefined && own.size >= this.options.maxPerAddress;
    if (!ownFull && this.count < this.options.max) return { admit: true, evicted: null };
    const victim = this.longestWaiting(ownFull ? [[address, own]] : this.byAddress, now);
    if (victim === null) return { admit: false, reason: ownFull ? 'address_full' : 'full' };
    this.release(victim.address, victim.entry);
    return { admit: true, evicted: victim.entry };
  }

  /** Takes a slot; call after `makeRoom` admitted. */
  add(address: string, entry: T): void {
    let set = this.byAddress.get(address);
    if (set === undefined) {
      set = new Set();
      this.byAddress.set(address, set);
    }
    if (!set.has(entry)) {
      set.add(entry);
      this.count++;
    }
  }

  /** Gives the slot back; a no-op for an entry that holds none (evicted, or never added). */
  release(address: string, entry: T): void {
    const set = this.byAddress.get(address);
    if (set !== undefined && set.has(entry)) this.remove(address, set, entry);
  }

  /** The entry waited on longest, if it has waited long enough to be evicted. */
  private longestWaiting(sets: Iterable<[string, Set<T>]>, now: number): { address: string; entry: T } | null {
    let victim: { address: string; entry: T } | null = null;
    let victimSince = Number.POSITIVE_INFINITY;
    for (const [address, set] of sets) {
      for (const entry of set) {
        const since = this.waitingSince(entry);
        if (since !== null && since < victimSince) {
          victim = { address, entry };
          victimSince = since;
        }
      }
    }
    return victim !== null && now - victimSince >= this.options.minEvictableWaitMs ? victim : null;
  }

  private remove(address: string, set: Set<T>, entry: T): void {
    set.delete(entry);
    this.count--;
    if (set.size === 0) this.byAddress.delete(address);
  }
}
