/**
 * The value of `/doltgate/<cluster>/members/<name>`: what one agent observed about its node, bound
 * to that agent's lease so it vanishes when the agent does. The HA decision reads only these
 * records (plus the topology, leader and pause keys), so everything a failover choice weighs is here.
 */

import type { NodeRole, SqlAddress } from './topology';

/** Commit hashes per database, then per branch: `{ db: { main: 'abc…' } }`. */
export type HeadsByDatabase = Record<string, Record<string, string>>;

export interface MemberHealth {
  healthy: boolean;
  consecutiveFailures: number;
  lastCheckAt: string;
  sqlLatencyMs: number | null;
  lastError: string | null;
  /** Whether the host answered ping (ICMP, or TCP connect where raw sockets are not allowed). */
  hostReachable: boolean;
}

export interface BackupStatus {
  name: string;
  url: string;
  lastGoodSyncAt: string | null;
  heads: HeadsByDatabase;
  lastError: string | null;
}

export interface MemberRecord {
  name: string;
  sql: SqlAddress;
  grpc: string | null;
  role: NodeRole;
  /** The newest topology epoch this agent has acted on. */
  epoch: number;
  health: MemberHealth;
  heads: HeadsByDatabase;
  /** Heads of the remote-tracking branches (`origin/<branch>`) as last fetched or pushed. */
  remoteHeads: HeadsByDatabase;
  /** Commits on local heads that the remote lacks, summed over databases and branches. */
  commitsNotOnRemote: number;
  /** How many commits this node's heads are behind the remote's, summed (replicas). */
  commitsBehindRemote: number;
  /** commitsNotOnRemote per database (absent from agents older than this field). */
  notOnRemoteByDatabase?: Record<string, number>;
  /** Databases without the remote (created at run time with no URL template): at risk. */
  databasesWithoutRemote?: string[];
  /**
   * Cluster mode, on the primary: the standbys Dolt's dolt_cluster_status showed behind on some
   * database at the last inspection (lagging, erroring or never reached). Candidate choice ranks
   * them after the standbys that were caught up (agent/ha/candidate.ts).
   */
  standbysBehind?: string[];
  priority: number;
  nofailover: boolean;
  backup: BackupStatus | null;
  updatedAt: string;
}

export class MemberFormatError extends Error {
  readonly code = 'MEMBER_FORMAT';
  constructor(detail: string) {
    super(`member value is malformed: ${detail}`);
  }
}

export function decodeMember(raw: string | Buffer): MemberRecord {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString());
  } catch (error) {
    throw new MemberFormatError(`not JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null) throw new MemberFormatError('not an object');
  const record = value as Partial<MemberRecord>;
  if (typeof record.name !== 'string') throw new MemberFormatError('name must be a string');
  if (typeof record.health !== 'object' || record.health === null) throw new MemberFormatError('health must be an object');
  if (typeof record.priority !== 'number') throw new MemberFormatError('priority must be a number');
  return record as MemberRecord;
}

export function encodeMember(record: MemberRecord): string {
  return JSON.stringify(record);
}
