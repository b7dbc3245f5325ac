/**
 * The primary's scheduled Dolt backup (the seed's first availability tool): every interval it
 * runs `dolt_backup('sync', ...)` for every database, records the time and heads of the last good
 * sync for the member record, and exposes the age so an alert fires when syncs fail or lag.
 */

import type { Logger } from '../common/logger';
import type { BackupStatus, HeadsByDatabase } from '../proto';
import type { AgentMetrics } from './agent-metrics';
import { branchHeads } from './dolt/inspector';
import { remoteUrlFor } from './dolt/server-config';
import { listDatabases, quoteIdentifier, withSession, type SqlEndpoint } from './dolt/sql-session';

export const backupName = 'doltgate_backup';

export class BackupScheduler {
  private lastAttemptAt = 0;
  private lastGoodAt: number | null = null;
  private heads: HeadsByDatabase = {};
  private lastError: string | null = null;

  constructor(
    private readonly settings: { url: string; intervalMs: number; maxAgeMs: number },
    private readonly endpoint: SqlEndpoint,
    private readonly metrics: AgentMetrics,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  status(): BackupStatus {
    return {
      name: backupName,
      url: this.settings.url,
      lastGoodSyncAt: this.lastGoodAt === null ? null : new Date(this.lastGoodAt).toISOString(),
      heads: this.heads,
      lastError: this.lastError,
    };
  }

  async maybeSync(now: number): Promise<void> {
    this.metrics.backupLastGoodSyncAge.set(this.lastGoodAt === null ? -1 : (now - this.lastGoodAt) / 1000);
    if (now - this.lastAttemptAt < this.settings.intervalMs) return;
    this.lastAttemptAt = now;
    await this.syncNow();
  }

  async syncNow(): Promise<void> {
    try {
      const heads = await withSession(this.endpoint, 60_000, async (session) => {
        const synced: HeadsByDatabase = {};
        for (const database of await listDatabases(session)) {
          await session.query(`USE ${quoteIdentifier(database)}`);
          const url = remoteUrlFor(this.settings.url, database);
          const existing = await session.query('SELECT url FROM dolt_backups WHERE name = ?', [backupName]).catch(() => []);
          if (existing.length === 0) await session.query("CALL dolt_backup('add', ?, ?)", [backupName, url]);
          await session.query("CALL dolt_backup('sync', ?)", [backupName]);
          synced[database] = await branchHeads(session, database);
        }
        return synced;
      });
      this.heads = heads;
      this.lastGoodAt = this.now();
      this.lastError = null;
      this.metrics.backupLastGoodSyncAge.set(0);
    } catch (error) {
      this.lastError = (error as Error).message;
      this.metrics.backupSyncFailures.inc();
      this.logger.warn('backup sync failed', { error: this.lastError });
    }
  }
}
