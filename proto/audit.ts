/**
 * `audit/<ms>-<random>`: one record per changing control call an agent answered (switchover,
 * failover, pause, resume — dry runs change nothing and are not recorded), accepted or not: who
 * the token or certificate proved the caller to be, where it called from, what it said about
 * itself, and what came of it. Written by the agent that answered, never changed afterwards;
 * `doltgate audit` lists them newest first. Keys sort by time (the ms are zero-padded).
 */

export type AuditCall = 'switchover' | 'failover' | 'pause' | 'resume';
export type AuditOutcome = 'accepted' | 'refused' | 'unauthenticated' | 'failed';

export interface AuditRecord {
  at: string;
  /** The agent that answered the call. */
  agent: string;
  call: AuditCall;
  /**
   * What authenticated the caller: "token", "client certificate CN=...", or "none
   * (grpc_insecure_no_auth)"; for an unauthenticated call, why it was not.
   */
  identity: string;
  /** The caller's address as the agent saw it. */
  peer: string;
  /** What the caller said about itself (the CLI sends $USER@host); not proven. */
  requestedBy: string;
  outcome: AuditOutcome;
  /** The op written (switchover, failover), the reason for a refusal, or the pause reason. */
  detail: string;
  opId: string | null;
}

export function decodeAudit(raw: string | Buffer): AuditRecord {
  const value = JSON.parse(raw.toString()) as AuditRecord;
  if (typeof value !== 'object' || value === null || typeof value.at !== 'string' || typeof value.call !== 'string' || typeof value.outcome !== 'string') {
    throw new Error('audit value is malformed: needs at, call and outcome');
  }
  return value;
}
