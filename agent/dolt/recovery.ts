/**
 * Bringing a node's branches to the newest commits the cluster has published, without losing any
 * commit: the "recover" step of a failover and the core of an old primary's rejoin.
 *
 * For every database and every branch of the source (the remote, or a backup fetched as a second
 * remote when it holds newer commits): a missing local branch is created; a local branch behind is
 * fast-forwarded; a local branch holding commits the source lacks is first saved as
 * `doltgate/orphaned/<epoch>/<branch>` (and pushed, so it survives this node) and then reset.
 *
 * Needs a writable server (read-only Dolt refuses fetch and reset). Runs with
 * dolt_transaction_commit off for its session: with it on, a reset lands one commit past its
 * target (pinned in test/integration/dolt-facts.test.ts).
 */

import { branchHeads, remoteBranchHeads } from './inspector';
import { listDatabases, quoteIdentifier, type SqlSession } from './sql-session';

export interface RecoverySource {
  /** A Dolt remote name configured on every database, e.g. 'origin'. */
  remote: string;
}

export interface BranchOutcome {
  database: string;
  branch: string;
  action: 'up-to-date' | 'created' | 'fast-forwarded' | 'reset-after-saving-orphans' | 'kept-local-only';
  from: string | null;
  to: string;
  source: string;
  orphanBranch?: string;
}

export interface RecoveryOptions {
  primaryRemote: string;
  /** A backup registered as an extra remote (see ensureBackupRemote); used when strictly newer. */
  backupRemote?: string;
  /** Names the orphan branches; the epoch this recovery belongs to. */
  epoch: number;
  /** Overrides the orphan branch prefix (default `doltgate/orphaned/<epoch>/`). */
  orphanPrefix?: string;
  /** Push saved orphan branches to the primary remote (true except in tests of the saving itself). */
  pushOrphans?: boolean;
}

export function orphanBranchName(epoch: number, branch: string): string {
  return `doltgate/orphaned/${epoch}/${branch}`;
}

async function isAncestor(session: SqlSession, ancestor: string, descendant: string): Promise<boolean> {
  const rows = await session.query('SELECT dolt_merge_base(?, ?) = dolt_hashof(?) AS is_ancestor', [ancestor, descendant, ancestor]);
  return Number(rows[0]?.is_ancestor) === 1;
}

async function activeBranch(session: SqlSession): Promise<string> {
  const rows = await session.query('SELECT active_branch() AS b');
  return String(rows[0]?.b);
}

/**
 * Adds (or re-points) a remote on every database for a backup location, e.g.
 * file:///backups/{database}. Dolt refuses two entries (remote or backup) with one URL, so a
 * backup registration with the same URL is removed first; the backup scheduler re-adds it.
 */
export async function ensureRemoteOnAllDatabases(session: SqlSession, remote: string, urlTemplate: string): Promise<void> {
  for (const database of await listDatabases(session)) {
    await session.query(`USE ${quoteIdentifier(database)}`);
    const url = urlTemplate.replace('{database}', database);
    const backups = await session.query('SELECT name FROM dolt_backups WHERE url = ?', [url]);
    for (const backup of backups) await session.query("CALL dolt_backup('remove', ?)", [String(backup.name)]);
    const rows = await session.query('SELECT url FROM dolt_remotes WHERE name = ?', [remote]);
    if (rows.length > 0 && String(rows[0].url) === url) continue;
    if (rows.length > 0) await session.query("CALL dolt_remote('remove', ?)", [remote]);
    await session.query("CALL dolt_remote('add', ?, ?)", [remote, url]);
  }
}

/** Removes a remote from every database that has it (after recovering from a backup). */
export async function removeRemoteFromAllDatabases(session: SqlSession, remote: string): Promise<void> {
  for (const database of await listDatabases(session)) {
    await session.query(`USE ${quoteIdentifier(database)}`);
    const rows = await session.query('SELECT name FROM dolt_remotes WHERE name = ?', [remote]);
    if (rows.length > 0) await session.query("CALL dolt_remote('remove', ?)", [remote]);
  }
}

export async function recoverNewestCommits(session: SqlSession, options: RecoveryOptions): Promise<BranchOutcome[]> {
  await session.query('SET SESSION dolt_transaction_commit = 0');
  const outcomes: BranchOutcome[] = [];
  for (const database of await listDatabases(session)) {
    await session.query(`USE ${quoteIdentifier(database)}`);
    await session.query('CALL dolt_fetch(?)', [options.primaryRemote]);
    let backupHeads: Record<string, string> = {};
    if (options.backupRemote) {
      await session.query('CALL dolt_fetch(?)', [options.backupRemote]);
      backupHeads = await remoteBranchHeads(session, database, options.backupRemote);
    }
    const remoteHeads = await remoteBranchHeads(session, database, options.primaryRemote);
    const local = await branchHeads(session, database);
    const current = await activeBranch(session);
    const branches = new Set([...Object.keys(remoteHeads), ...Object.keys(backupHeads)]);
    for (const branch of [...branches].sort()) {
      if (branch.startsWith('doltgate/orphaned/')) continue;
      let source = options.primaryRemote;
      let target = remoteHeads[branch];
      const backupHash = backupHeads[branch];
      if (options.backupRemote && backupHash !== undefined && backupHash !== target) {
        if (target === undefined || (await isAncestor(session, `${options.primaryRemote}/${branch}`, `${options.backupRemote}/${branch}`))) {
          source = options.backupRemote;
          target = backupHash;
        }
      }
      const sourceRef = `${source}/${branch}`;
      const localHash = local[branch];
      const outcome: BranchOutcome = { database, branch, action: 'up-to-date', from: localHash ?? null, to: target, source };
      if (localHash === undefined) {
        await session.query('CALL dolt_branch(?, ?)', [branch, sourceRef]);
        outcome.action = 'created';
      } else if (localHash !== target) {
        const behindOnly = await isAncestor(session, branch, sourceRef);
        if (!behindOnly) {
          const orphan = options.orphanPrefix ? `${options.orphanPrefix}${branch}` : orphanBranchName(options.epoch, branch);
          await session.query('CALL dolt_branch(?, ?)', [orphan, branch]).catch(async (error: Error) => {
            // Already saved by an earlier, interrupted run of this step: keep that copy.
            if (!/already exists/i.test(error.message)) throw error;
          });
          if (options.pushOrphans ?? true) await session.query('CALL dolt_push(?, ?)', [options.primaryRemote, orphan]);
          outcome.orphanBranch = orphan;
          outcome.action = 'reset-after-saving-orphans';
        } else {
          outcome.action = 'fast-forwarded';
        }
        if (branch === current) await session.query("CALL dolt_reset('--hard', ?)", [sourceRef]);
        else await session.query("CALL dolt_branch('-f', ?, ?)", [branch, sourceRef]);
      }
      outcomes.push(outcome);
    }
    // Local branches the remote never had (work created on this node only) stay, and are pushed by
    // the primary's push-on-write on their next commit; report them so nobody is surprised.
    for (const branch of Object.keys(local)) {
      if (!branches.has(branch) && !branch.startsWith('doltgate/orphaned/')) {
        outcomes.push({ database, branch, action: 'kept-local-only', from: local[branch], to: local[branch], source: 'local' });
      }
    }
  }
  return outcomes;
}

/** `SET PERSIST` push-on-write: takes effect on the next commit, no restart (pinned fact). */
export async function enablePushOnWrite(session: SqlSession, remote: string): Promise<void> {
  await session.query(`SET PERSIST dolt_replicate_to_remote = '${remote.replace(/'/g, "''")}'`);
}

/** Pushes every branch whose head the remote lacks; closes gaps left by ignored failed pushes. */
export async function pushAllBranches(session: SqlSession, remote: string, options: { fetch?: boolean } = {}): Promise<number> {
  let pushed = 0;
  for (const database of await listDatabases(session)) {
    await session.query(`USE ${quoteIdentifier(database)}`);
    // Skippable right after a recovery, which fetched a moment ago.
    if (options.fetch ?? true) await session.query('CALL dolt_fetch(?)', [remote]);
    const local = await branchHeads(session, database);
    const remoteHeads = await remoteBranchHeads(session, database, remote);
    for (const [branch, hash] of Object.entries(local)) {
      if (remoteHeads[branch] === hash) continue;
      await session.query('CALL dolt_push(?, ?)', [remote, branch]);
      pushed++;
    }
  }
  return pushed;
}
