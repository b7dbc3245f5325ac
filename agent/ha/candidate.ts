/**
 * Who should become primary: one pure function of the live member records, the topology and
 * the config. Every agent runs it on the same etcd snapshot and so reaches the same answer;
 * only the chosen node campaigns for the leader key, the others wait naming it. When snapshots
 * differ for a moment two nodes may both campaign, and the leader key's create-if-absent lets
 * exactly one win.
 *
 * Eligible: not the outgoing primary, not nofailover, healthy, reporting role replica (skipped
 * while bootstrapping, when no topology exists), and at most maxCommitsBehind behind the remote
 * (unless ignoreLag). Ranking: first the standbys the outgoing primary last saw caught up (cluster
 * mode: its record's standbysBehind; a standby it saw behind may lack commits it acknowledged),
 * then priority descending, then commitsBehindRemote ascending, then name ascending (plain
 * code-unit order, not locale order, so every host sorts alike). Without the outgoing primary's
 * record (its host is gone), or in remote mode, the first key ties.
 *
 * Deliberately not weighed: the age of a record (`updatedAt`). Clocks differ between hosts,
 * agents would disagree; the member lease already bounds how long a dead agent's record lives.
 */

import type { MemberRecord, Topology } from '../../proto';
import type { HaConfig } from './config';
import { countOf, ordinal } from '../../common/wording';

export type ExclusionCode = 'outgoing-primary' | 'nofailover' | 'unhealthy' | 'not-replica' | 'lagging';

export interface Exclusion {
  name: string;
  code: ExclusionCode;
  /** `b is unhealthy (3 failed checks: connection refused)`. */
  reason: string;
}

export interface RankedCandidate {
  name: string;
  priority: number;
  commitsBehindRemote: number;
  /** Cluster mode: the outgoing primary last saw this standby behind it. */
  behindPrimary?: boolean;
}

export interface CandidateChoice {
  /** ranked[0], or null when nobody is eligible. */
  chosen: RankedCandidate | null;
  /** Eligible members, best first. */
  ranked: readonly RankedCandidate[];
  /** Ineligible members in name order, each with the first rule that excludes it. */
  excluded: readonly Exclusion[];
}

export interface CandidateOptions {
  /** The primary being replaced: never a candidate. Default: topology.primary. */
  outgoing?: string | null;
  /** Words its exclusion: `a is the failed primary` or `a is the current primary`. */
  outgoingWhy?: 'failed' | 'current';
  /** A forced op without a target: lag does not exclude (health still does). */
  ignoreLag?: boolean;
}

/** Healthy by its own checks and below the failure threshold: both must hold. */
export function memberHealthy(member: MemberRecord, config: HaConfig): boolean {
  return member.health.healthy && member.health.consecutiveFailures < config.failureThreshold;
}

/** `3 failed checks: connection refused`, for reasons about a node's health. */
export function describeHealth(health: { consecutiveFailures: number; lastError: string | null }): string {
  const checks = countOf(health.consecutiveFailures, 'failed check');
  return health.lastError ? `${checks}: ${health.lastError}` : checks;
}

/** The first rule that makes `member` ineligible, or null when it is eligible. */
export function exclusionOf(
  member: MemberRecord,
  topology: Topology | null,
  config: HaConfig,
  options: CandidateOptions = {},
): Exclusion | null {
  const name = member.name;
  const outgoing = options.outgoing === undefined ? (topology?.primary ?? null) : options.outgoing;
  if (name === outgoing) {
    return { name, code: 'outgoing-primary', reason: `${name} is the ${options.outgoingWhy ?? 'failed'} primary` };
  }
  if (member.nofailover) return { name, code: 'nofailover', reason: `${name} has nofailover` };
  if (!memberHealthy(member, config)) {
    return { name, code: 'unhealthy', reason: `${name} is unhealthy (${describeHealth(member.health)})` };
  }
  if (topology !== null && member.role !== 'replica') {
    return { name, code: 'not-replica', reason: `${name} reports role ${member.role}, not replica` };
  }
  if (!options.ignoreLag && member.commitsBehindRemote > config.maxCommitsBehind) {
    return {
      name,
      code: 'lagging',
      reason: `${name} is ${countOf(member.commitsBehindRemote, 'commit')} behind the remote (limit ${config.maxCommitsBehind})`,
    };
  }
  return null;
}

/** Caught up with the outgoing primary first, then priority descending, then lag ascending, then name ascending. */
export function compareCandidates(a: RankedCandidate, b: RankedCandidate): number {
  const behindA = a.behindPrimary === true ? 1 : 0;
  const behindB = b.behindPrimary === true ? 1 : 0;
  if (behindA !== behindB) return behindA - behindB;
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.commitsBehindRemote !== b.commitsBehindRemote) return a.commitsBehindRemote - b.commitsBehindRemote;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function chooseCandidate(
  members: Readonly<Record<string, MemberRecord>>,
  topology: Topology | null,
  config: HaConfig,
  options: CandidateOptions = {},
): CandidateChoice {
  const ranked: RankedCandidate[] = [];
  const excluded: Exclusion[] = [];
  const outgoing = options.outgoing === undefined ? (topology?.primary ?? null) : options.outgoing;
  const reported = outgoing === null ? undefined : members[outgoing]?.standbysBehind;
  const behind = new Set(Array.isArray(reported) ? reported.filter((entry): entry is string => typeof entry === 'string') : []);
  for (const [name, record] of Object.entries(members)) {
    // The etcd key names the member; a record whose body disagrees is judged under its key.
    const member = record.name === name ? record : { ...record, name };
    const exclusion = exclusionOf(member, topology, config, options);
    if (exclusion !== null) excluded.push(exclusion);
    else if (behind.has(name)) ranked.push({ name, priority: member.priority, commitsBehindRemote: member.commitsBehindRemote, behindPrimary: true });
    else ranked.push({ name, priority: member.priority, commitsBehindRemote: member.commitsBehindRemote });
  }
  ranked.sort(compareCandidates);
  excluded.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { chosen: ranked[0] ?? null, ranked, excluded };
}

/** `priority 100, 0 commits behind the remote`. */
export function describeCandidate(candidate: RankedCandidate): string {
  const position = candidate.behindPrimary === true ? ', behind the old primary when it last looked' : '';
  return `priority ${candidate.priority}, ${countOf(candidate.commitsBehindRemote, 'commit')} behind the remote${position}`;
}

/**
 * `b is unhealthy (3 failed checks), c has nofailover`. The outgoing primary's exclusion is left
 * out (it goes without saying); `ifNone` is the text when nothing else remains.
 */
export function describeExclusions(excluded: readonly Exclusion[], ifNone = 'no live replica'): string {
  const shown = excluded.filter((e) => e.code !== 'outgoing-primary');
  return shown.length === 0 ? ifNone : shown.map((e) => e.reason).join(', ');
}

/**
 * Where `name` stands in a choice, for a waiting node's reason: `this node ranks 2nd`,
 * `this node is excluded: it has nofailover`, or `this node has no live member record`.
 */
export function standingOf(choice: CandidateChoice, name: string): string {
  const rank = choice.ranked.findIndex((c) => c.name === name);
  if (rank >= 0) return `this node ranks ${ordinal(rank + 1)}`;
  const exclusion = choice.excluded.find((e) => e.name === name);
  if (exclusion) return `this node is excluded: ${exclusion.reason}`;
  return 'this node has no live member record';
}
