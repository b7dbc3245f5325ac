/**
 * The knobs of the HA decision, their defaults and their validation. `decide` reads only this
 * record; the agent's config loader builds it with `haConfig(overrides)` so a bad value fails at
 * start-up with a message naming the field instead of deciding wrongly later.
 *
 * Invariants (checked by `validateHaConfig`): 0 < fenceMarginMs < leaseTtlMs; every duration is
 * a non-negative integer of milliseconds; failureThreshold >= 1.
 */

import { isValidNodeName } from '../../proto';

export interface HaConfig {
  /**
   * Consecutive failed health checks after which a primary's agent fences its Dolt and releases
   * the leader key. Below it a primary keeps serving: one slow check is not a failover.
   */
  failureThreshold: number;
  /** TTL of the agent's etcd lease, which carries both `leader` and `members/<name>`. */
  leaseTtlMs: number;
  /**
   * A leader fences itself once less than this remains of its lease without a renewal. It must
   * cover one decide cycle, the time to stop Dolt taking writes, and clock-rate error between
   * this host and etcd; otherwise a partitioned primary could still write when the key lapses.
   */
  fenceMarginMs: number;
  /** Anti-flap: no automatic failover starts within this long of the previous one. */
  minFailoverIntervalMs: number;
  /**
   * A replica further behind the remote than this is not eligible without --force. Recovery
   * fetches the remote anyway, so lag costs time, not data; a large lag mostly means the replica
   * cannot reach the remote, which would also break its recovery.
   */
  maxCommitsBehind: number;
  /**
   * When the leader key vanishes but the topology primary's agent is alive and healthy (a lease
   * blip, or it released the key and recovered), replicas give it this long to take the key back
   * before failing over. Reclaiming keeps commits that never reached the remote; a failover
   * would orphan them.
   */
  reclaimGraceMs: number;
  /** A requested op not claimed within this long is refused as expired: a switchover asked for
   *  ten minutes ago should not fire when a partition heals. */
  opTimeoutMs: number;
  /**
   * The node that bootstraps an empty cluster. Null: the top-ranked live member (see
   * chooseCandidate), which is fine when all nodes start together from one clone.
   */
  initialPrimary: string | null;
}

export const defaultHaConfig: Readonly<HaConfig> = Object.freeze({
  failureThreshold: 3,
  leaseTtlMs: 10_000,
  fenceMarginMs: 3_000,
  minFailoverIntervalMs: 60_000,
  maxCommitsBehind: 1_000,
  reclaimGraceMs: 10_000,
  opTimeoutMs: 120_000,
  initialPrimary: null,
});

export class HaConfigError extends Error {
  readonly code = 'HA_CONFIG';
  constructor(field: keyof HaConfig, detail: string) {
    super(`ha config ${field} ${detail}`);
  }
}

const durationFields = ['leaseTtlMs', 'fenceMarginMs', 'minFailoverIntervalMs', 'reclaimGraceMs', 'opTimeoutMs'] as const;

/** Throws HaConfigError naming the first bad field; returns the same object otherwise. */
export function validateHaConfig(config: HaConfig): HaConfig {
  if (!Number.isSafeInteger(config.failureThreshold) || config.failureThreshold < 1) {
    throw new HaConfigError('failureThreshold', 'must be an integer >= 1');
  }
  for (const field of durationFields) {
    const value = config[field];
    if (!Number.isSafeInteger(value) || value < 0) throw new HaConfigError(field, 'must be a non-negative integer of milliseconds');
  }
  if (config.leaseTtlMs === 0) throw new HaConfigError('leaseTtlMs', 'must be positive');
  if (config.opTimeoutMs === 0) throw new HaConfigError('opTimeoutMs', 'must be positive');
  if (config.fenceMarginMs === 0 || config.fenceMarginMs >= config.leaseTtlMs) {
    throw new HaConfigError('fenceMarginMs', `must be above 0 and below leaseTtlMs (${config.leaseTtlMs})`);
  }
  if (!Number.isSafeInteger(config.maxCommitsBehind) || config.maxCommitsBehind < 0) {
    throw new HaConfigError('maxCommitsBehind', 'must be a non-negative integer');
  }
  if (config.initialPrimary !== null && !isValidNodeName(config.initialPrimary)) {
    throw new HaConfigError('initialPrimary', `${JSON.stringify(config.initialPrimary)} is not a valid node name`);
  }
  return config;
}

/** Defaults overlaid with `overrides`, validated. */
export function haConfig(overrides: Partial<HaConfig> = {}): HaConfig {
  return validateHaConfig({ ...defaultHaConfig, ...overrides });
}
