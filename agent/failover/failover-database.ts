/**
 * What the failover executor asks of its own node's Dolt beyond starting and stopping it
 * (LocalDolt): pushing heads the remote lacks, recovering the newest commits, waiting out the
 * statements under way. One small interface, as Patroni keeps the database behind its own, so
 * the executor's steps run the same against a real Dolt over SQL (SqlFailoverDatabase, here)
 * and against the convergence simulator's model of one (test/unit/ha-converge.test.ts).
 */

import type { DatabaseCatalog } from '../../proto';
import type { LocalDolt } from '../dolt/local-dolt';
import type { DoltServerRole } from '../dolt/server-config';
import { withSession, type SqlEndpoint } from '../dolt/sql-session';
import { alignWithCatalog, type Alignment } from '../dolt/database-sync';
import { ensureRemoteOnAllDatabases, pushAllBranches, recoverNewestCommits, removeRemoteFromAllDatabases, type BranchOutcome } from '../dolt/recovery';

export const backupRemoteName = 'doltgate-backup';

export interface RecoverySettings {
  remote: string;
  /** Backup URL template with `{database}`, or null. */
  backupUrl: string | null;
  /** The remote URL template (agent config dolt.remote_url_template), or null. */
  remoteUrlTemplate: string | null;
}

export interface FailoverDatabase {
  /** Pushes every branch head the remote lacks; how many were pushed. */
  pushAll(timeoutMs: number): Promise<number>;
  /**
   * Recovery on the standby's private listener: first the databases aligned with the cluster's
   * catalog (a database this node never got is cloned, one dropped elsewhere is dropped), then
   * each branch brought to the newest commit. `promote` (a failover's candidate): from the remote
   * or the backup, own commits ahead of it kept. `rejoin` (an old primary stepping down): reset
   * to the remote, commits it lacked saved as orphan branches of `epoch` (dolt/recovery.ts).
   */
  recover(catalog: DatabaseCatalog | null, epoch: number, timeoutMs: number, mode: 'promote' | 'rejoin'): Promise<{ alignment: Alignment; outcomes: BranchOutcome[] }>;
  /**
   * Waits until no other session runs a statement, for at most `boundMs`; how long it waited and
   * how many were still running when it stopped.
   */
  drainStatements(boundMs: number, timeoutMs: number): Promise<{ waitedMs: number; running: number }>;
  /**
   * Whether a node whose Dolt runs in `runningRole` holds nothing a primary lacks, so a rejoin
   * has nothing to save (cluster mode's clustered standby). Absent: a rejoin always recovers.
   */
  holdsOnlyReplicatedCommits?(runningRole: DoltServerRole | null): boolean;
}

/** Waits until no other session of the server runs a statement, for at most `boundMs`. */
export function drainStatements(endpoint: SqlEndpoint, boundMs: number, timeoutMs: number, now: () => number): Promise<{ waitedMs: number; running: number }> {
  const started = now();
  const deadline = started + boundMs;
  return withSession(endpoint, timeoutMs, async (session) => {
    for (;;) {
      const rows = await session.query("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND command NOT IN ('Sleep', 'Daemon', 'Binlog Dump')");
      const running = Number(rows[0]?.n ?? 0);
      if (running === 0 || now() >= deadline) return { waitedMs: now() - started, running };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
}

export class SqlFailoverDatabase implements FailoverDatabase {
  constructor(
    private readonly local: LocalDolt,
    private readonly settings: RecoverySettings,
    private readonly now: () => number,
  ) {}

  pushAll(timeoutMs: number): Promise<number> {
    return withSession(this.local.endpoint, timeoutMs, (session) => pushAllBranches(session, this.settings.remote));
  }

  async recover(catalog: DatabaseCatalog | null, epoch: number, timeoutMs: number, mode: 'promote' | 'rejoin'): Promise<{ alignment: Alignment; outcomes: BranchOutcome[] }> {
    const { remote, backupUrl, remoteUrlTemplate } = this.settings;
    return withSession(this.local.endpoint, timeoutMs, async (session) => {
      const alignment = await alignWithCatalog(session, catalog, remoteUrlTemplate, remote);
      if (mode === 'rejoin' || !backupUrl) return { alignment, outcomes: await recoverNewestCommits(session, { mode, primaryRemote: remote, epoch }) };
      // The backup is fetched as a temporary remote: it may hold commits whose push failed.
      await ensureRemoteOnAllDatabases(session, backupRemoteName, backupUrl);
      try {
        return { alignment, outcomes: await recoverNewestCommits(session, { mode: 'promote', primaryRemote: remote, backupRemote: backupRemoteName, epoch }) };
      } finally {
        await removeRemoteFromAllDatabases(session, backupRemoteName);
      }
    });
  }

  drainStatements(boundMs: number, timeoutMs: number): Promise<{ waitedMs: number; running: number }> {
    return drainStatements(this.local.endpoint, boundMs, timeoutMs, this.now);
  }
}
