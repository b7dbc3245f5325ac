/**
 * The control API's audit: every changing call an agent answers becomes an `audit/` record
 * (proto/audit.ts) — who the token or certificate proved the caller to be, its address, what it
 * said about itself, and what came of it. Unauthenticated calls are recorded too, but at most
 * one a second per agent (the rest are counted into the next record), so a caller without the
 * token cannot fill etcd. Writing the record never fails the call: the action has happened (or
 * was refused) either way, and a failed write is logged.
 */

import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../common/logger';
import type { AuditRecord } from '../../proto';
import type { ClusterStore } from '../store/cluster-store';

const UNAUTHENTICATED_RECORD_INTERVAL_MS = 1000;

/** What the server says about a call; the audit adds when and which agent. */
export type AuditEntry = Omit<AuditRecord, 'at' | 'agent'>;

export class ControlAudit {
  private lastUnauthenticatedAt = Number.NEGATIVE_INFINITY;
  private unrecorded = 0;

  constructor(
    private readonly store: ClusterStore,
    private readonly agentName: string,
    private readonly keep: number,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  async record(entry: AuditEntry): Promise<void> {
    const at = this.now();
    let detail = entry.detail;
    if (entry.outcome === 'unauthenticated') {
      if (at - this.lastUnauthenticatedAt < UNAUTHENTICATED_RECORD_INTERVAL_MS) {
        this.unrecorded++;
        return;
      }
      this.lastUnauthenticatedAt = at;
      if (this.unrecorded > 0) detail = `${detail} (and ${this.unrecorded} more unauthenticated calls since the last record)`;
      this.unrecorded = 0;
    }
    const record: AuditRecord = { ...entry, detail, at: new Date(at).toISOString(), agent: this.agentName };
    try {
      await this.store.appendAudit(record, this.keep);
    } catch (error) {
      this.log.error('could not record the control call in the audit', { ...record, error: (error as Error).message });
    }
  }
}

/** What proved the caller: the client certificate (mTLS), the token, or nothing (open API). */
export function callerIdentity(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getAuthContext'>, tokenChecked: boolean): string {
  const parts: string[] = [];
  const certificate = call.getAuthContext().sslPeerCertificate;
  const cn = certificate?.subject?.CN;
  if (cn !== undefined && cn !== '') parts.push(`client certificate CN=${Array.isArray(cn) ? cn.join(',') : cn}`);
  if (tokenChecked) parts.push('token');
  return parts.length > 0 ? parts.join(', ') : 'none (grpc_insecure_no_auth)';
}
