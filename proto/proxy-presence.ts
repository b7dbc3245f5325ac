/**
 * The value of `/doltgate/<cluster>/proxies/<id>`: what one proxy has applied, bound to that
 * proxy's own etcd lease (it vanishes a few seconds after the proxy dies). Written by the proxy
 * after each topology it applies and, while it drains a switching primary, each time the number of
 * its connections still in a transaction there changes.
 *
 * Why: a planned switchover promises no client error (design.md). The outgoing primary's agent
 * publishes `switchover` and must not stop its Dolt while a proxy still sends it new writes — which
 * a proxy does until the watch event reaches it. So the agent waits (bounded by the drain timeout)
 * until every proxy it can see has handed the old primary over (`proxyHandedOver`).
 *
 * A proxy that cannot reach etcd writes nothing, so it is not waited for past its lease: what it
 * still sends the old primary fails as "outcome unknown", never silently (safety does not rest on
 * this record; the fence does).
 */

import type { ClusterState } from './topology';

export interface ProxyPresence {
  /** Unique per proxy process: host, pid and a random suffix. */
  id: string;
  /** The epoch and state of the topology it applied last. */
  epoch: number;
  state: ClusterState;
  /** Its connections to the previous primary still inside a transaction (a switchover lets them finish). */
  draining: number;
  /** ISO-8601 time of the write. */
  at: string;
}

export class ProxyPresenceFormatError extends Error {
  readonly code = 'PROXY_PRESENCE_FORMAT';
  constructor(detail: string) {
    super(`proxy presence value is malformed: ${detail}`);
  }
}

const states: readonly ClusterState[] = ['stable', 'failover', 'switchover'];

export function decodeProxyPresence(raw: string | Buffer): ProxyPresence {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString());
  } catch (error) {
    throw new ProxyPresenceFormatError(`not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProxyPresenceFormatError('not an object');
  const record = value as Record<string, unknown>;
  if (typeof record.id !== 'string' || record.id === '') throw new ProxyPresenceFormatError('id must be a non-empty string');
  if (typeof record.epoch !== 'number' || !Number.isSafeInteger(record.epoch) || record.epoch < 0) throw new ProxyPresenceFormatError('epoch must be an integer >= 0');
  if (!states.includes(record.state as ClusterState)) throw new ProxyPresenceFormatError(`state must be one of ${states.join(', ')}`);
  if (typeof record.draining !== 'number' || !Number.isSafeInteger(record.draining) || record.draining < 0) throw new ProxyPresenceFormatError('draining must be an integer >= 0');
  if (typeof record.at !== 'string') throw new ProxyPresenceFormatError('at must be a string');
  return { id: record.id, epoch: record.epoch, state: record.state as ClusterState, draining: record.draining, at: record.at };
}

export function encodeProxyPresence(record: ProxyPresence): string {
  return JSON.stringify(record);
}

/**
 * Has this proxy stopped sending the primary that `epoch` retires anything new? True once it
 * applied `epoch` (or a later one) with no transaction still open on the old primary.
 */
export function proxyHandedOver(presence: ProxyPresence, epoch: number): boolean {
  return presence.epoch > epoch || (presence.epoch === epoch && presence.draining === 0);
}
