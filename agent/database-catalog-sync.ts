/**
 * Keeps the cluster's database catalog (proto/database-catalog.ts) and this node's databases in
 * step, once per inspection of the local Dolt:
 * - on the primary (the leader, named by the topology): records databases created, created again
 *   or dropped there — through any proxy or directly;
 * - on a replica: names each live database it lacks so that Dolt clones it, and removes each
 *   dropped one it still holds (a read-only Dolt refuses DROP DATABASE, so the server restarts
 *   without it).
 * Writable standbys (failover recovery, rejoin) do the same through database-sync.ts.
 */

import type { Logger } from '../common/logger';
import { catalogAfterObservation, catalogNames, droppedNames } from '../proto';
import { missingDatabases, NoRemoteTemplateError, touchDatabases } from './dolt/database-sync';
import type { DataInspection } from './dolt/inspector';
import type { LocalDolt } from './dolt/local-dolt';
import type { DoltServerRole } from './dolt/server-config';
import { withSession } from './dolt/sql-session';
import type { ClusterSnapshot, ClusterStore } from './store/cluster-store';

export interface CatalogSyncSettings {
  name: string;
  remoteUrlTemplate: string | null;
  sqlTimeoutMs: number;
}

/** An inspection and the role the server ran in when it was taken. */
export interface TaggedInspection {
  inspection: DataInspection;
  role: DoltServerRole | null;
}

/** Failed clone attempts (about one a second) before the replica's Dolt is restarted. */
export const CLONE_FAILURES_BEFORE_RESTART = 5;

export class DatabaseCatalogSync {
  private synced: DataInspection | null = null;
  private tenureEpoch: number | null = null;
  private readonly seenThisTenure = new Set<string>();
  private warnedNoTemplate = false;
  /** Consecutive failed attempts to have Dolt clone the databases this replica lacks. */
  private cloneFailures = 0;

  constructor(
    private readonly settings: CatalogSyncSettings,
    private readonly store: ClusterStore,
    private readonly local: LocalDolt,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when it changed the local databases (the caller inspects again soon). */
  async sync(snapshot: ClusterSnapshot, tagged: TaggedInspection | null, epoch: number): Promise<boolean> {
    if (tagged === null || tagged.inspection === this.synced || this.local.mode !== 'managed') return false;
    this.synced = tagged.inspection;
    try {
      const leads = snapshot.leader?.name === this.settings.name && snapshot.topology?.value.primary === this.settings.name;
      if (tagged.role === 'primary' && this.local.runningRole === 'primary' && leads) {
        await this.recordPrimary(snapshot, tagged.inspection, epoch);
        return false;
      }
      if (tagged.role === 'replica' && this.local.runningRole === 'replica') return await this.followAsReplica(snapshot, tagged.inspection);
    } catch (error) {
      this.logger.warn('bringing the databases up to the catalog failed; will try again', { error: (error as Error).message });
    }
    return false;
  }

  private async recordPrimary(snapshot: ClusterSnapshot, inspection: DataInspection, epoch: number): Promise<void> {
    const catalog = snapshot.databases;
    const topology = snapshot.topology;
    if (topology === null) return;
    if (this.tenureEpoch !== epoch) {
      this.tenureEpoch = epoch;
      this.seenThisTenure.clear();
      // Every tenure starts with this epoch's recover step, which cloned every live database of
      // the catalog this node lacked (database-sync.ts alignWithCatalog) or failed: so each one
      // was held here at the start, and one missing now was dropped here since.
      for (const name of catalogNames(catalog?.value ?? null)) this.seenThisTenure.add(name);
    }
    const present = Object.keys(inspection.heads).filter((name) => !inspection.databasesWithoutRemote.includes(name));
    for (const name of present) this.seenThisTenure.add(name);
    const next = catalogAfterObservation(catalog?.value ?? null, { present, seenThisTenure: this.seenThisTenure }, this.settings.name, epoch, new Date(this.now()).toISOString());
    if (next === null) return;
    await this.store.casDatabases(next, catalog?.modRevision ?? null, topology.modRevision);
    this.logger.info('database catalog updated', { databases: catalogNames(next), dropped: droppedNames(next) });
  }

  private async followAsReplica(snapshot: ClusterSnapshot, inspection: DataInspection): Promise<boolean> {
    const local = Object.keys(inspection.heads);
    const catalog = snapshot.databases?.value ?? null;
    const dropped = droppedNames(catalog).filter((name) => local.includes(name));
    if (dropped.length > 0) {
      await this.local.removeDatabases(dropped);
      this.logger.info('removed databases dropped on the primary', { databases: dropped });
      return true;
    }
    const missing = missingDatabases(catalogNames(catalog), local);
    if (missing.length === 0) return false;
    if (this.settings.remoteUrlTemplate === null) {
      if (!this.warnedNoTemplate) this.logger.warn(new NoRemoteTemplateError(missing).message);
      this.warnedNoTemplate = true;
      return false;
    }
    let present: string[];
    try {
      present = await withSession(this.local.endpoint, this.settings.sqlTimeoutMs, (session) => touchDatabases(session, missing));
    } catch (error) {
      // A clone that read the file remote while the primary was still pushing leaves Dolt failing
      // every later clone of it ("manifest referenced table file for which there is no
      // chunkSource", seen in CI) until the process restarts: after a few failures the read-only
      // server restarts without the half-made databases, and the next cycle clones afresh.
      if (++this.cloneFailures >= CLONE_FAILURES_BEFORE_RESTART) {
        this.cloneFailures = 0;
        this.logger.warn('Dolt keeps failing to clone databases created elsewhere; restarting it without them', { databases: missing, error: (error as Error).message });
        await this.local.removeDatabases(missing);
        return true;
      }
      throw error;
    }
    this.cloneFailures = 0;
    if (present.length > 0) this.logger.info('cloned databases created elsewhere', { databases: present });
    return present.length > 0;
  }
}
