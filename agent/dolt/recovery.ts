/**
 * Bringing a node's branches to the newest commits the cluster has published, without losing any
 * commit: the "recover" step of a failover (mode `promote`) and the core of an old primary's
 * rejoin (mode `rejoin`).
 *
 * For every database and every branch, compared with the source (the remote, or a backup fetched
 * as a second remote when it holds newer commits):
 *
 * | local vs source        | promote (this node becomes primary) | rejoin (this node becomes a replica) |
 * |------------------------|-------------------------------------|--------------------------------------|
 * | missing locally        | create from the source              | create from the source               |
 * | equal                  | nothing                             | nothing                              |
 * | behind (an ancestor)   | fast-forward                        | fast-forward                         |
 * | ahead (source is ours) | KEEP: these are acknowledged commits whose push failed; pushed once primary | save, then reset |
 * | diverged               | save, then reset                    | save, then reset                     |
 * | only local             | keep (pushed once primary)          | save, then delete                    |
 * | deleted on the source  | delete                              | delete                               |
 *
 * "Save" creates `doltgate/orphaned/<epoch>/<branch>-<hash>` AT THE HASH THAT IS ABOUT TO LEAVE
 * the branch, checks that the new branch names exactly that hash, and pushes it, so it survives
 * this node.
 *
 * "Deleted on the source": the branch is gone from the source, and this node's remote-tracking
 * ref from before the fetch names exactly its head: the remote had this very commit on that branch
 * and a primary deleted the branch since (dolt_branch -D pushes the delete; a node that was down or
 * idle missed it). Keeping it would bring a deleted branch back when this node pushes as primary.
 * The node holds nothing there the remote did not have, so nothing acknowledged is dropped.
 *
 * Invariant (design.md safety 2): no commit leaves a branch unless a branch that contains it was
 * created and checked first, or the branch was deleted on the remote at exactly that commit. "Ahead" is never treated like "diverged" when promoting. Before a
 * branch is moved its head is read again: if it changed since it was judged (someone wrote to
 * this node), the step fails with RecoveryRaceError rather than reset over the new commit. The
 * agent runs recovery on a private listener no client knows (see server-config.ts), so that
 * error means a bug, not load.
 *
 * Needs a writable server (read-only Dolt refuses fetch and reset). Runs with
 * dolt_transaction_commit off for its session: with it on, a reset lands one commit past its
 * target (pinned in test/integration/dolt-facts.test.ts).
 */

import { branchHeads, remoteBranchHeads } from './inspector';
import { listDatabases, quoteIdentifier, type SqlSession } from './sql-session';
import { remoteUrlFor } from './server-config';

export type RecoveryMode = 'promote' | 'rejoin';

export type BranchAction =
  | 'up-to-date'
  | 'created'
  | 'fast-forwarded'
  /** promote: the local branch holds commits the source lacks and nothing else; kept as is. */
  | 'kept-ahead'
  | 'reset-after-saving-orphans'
  /** promote: a branch the source never had; kept. */
  | 'kept-local-only'
  /** rejoin: a branch the source never had; saved as an orphan branch, then deleted. */
  | 'deleted-after-saving-orphans'
  /** The source deleted the branch at exactly this node's head (see the file doc); deleted here too. */
  | 'deleted-upstream';

export interface BranchOutcome {
  database: string;
  branch: string;
  action: BranchAction;
  from: string | null;
  to: string;
  source: string;
  orphanBranch?: string;
}

export interface RecoveryOptions {
  mode: RecoveryMode;
  primaryRemote: string;
  /** A backup registered as an extra remote (see ensureRemoteOnAllDatabases); used when strictly newer. */
  backupRemote?: string;
  /** The epoch whose commits are saved: names the orphan branches. */
  epoch: number;
  /** Push saved orphan branches to the primary remote (true except in tests of the saving itself). */
  pushOrphans?: boolean;
}

export class RecoveryRaceError extends Error {
  readonly code = 'RECOVERY_RACE';
  constructor(database: string, branch: string, judged: string, now: string) {
    super(`${database}.${branch} moved from ${judged} to ${now} while recovery was deciding what to do with it: nothing was reset; the step will run again`);
  }
}

export class OrphanSaveError extends Error {
  readonly code = 'ORPHAN_SAVE';
  constructor(database: string, orphan: string, expected: string, found: string | null) {
    super(`${database}: orphan branch ${orphan} should name ${expected} but names ${found ?? 'nothing'}: refusing to move the original branch`);
  }
}

export const orphanBranchPrefix = 'doltgate/orphaned/';

/**
 * The orphan branch for the commit `hash` leaving `branch` in `epoch`. The hash makes the name
 * unique: one node recovering twice in one epoch, or two nodes saving in one epoch, never reuse a
 * name for different commits, and saving the same commit twice finds the branch already right.
 */
export function orphanBranchName(epoch: number, branch: string, hash: string): string {
  return `${orphanBranchPrefix}${epoch}/${branch}-${hash}`;
}

export function isOrphanBranch(branch: string): boolean {
  return branch.startsWith(orphanBranchPrefix);
}

async function isAncestor(session: SqlSession, ancestor: string, descendant: string): Promise<boolean> {
  const rows = await session.query('SELECT dolt_merge_base(?, ?) = dolt_hashof(?) AS is_ancestor', [ancestor, descendant, ancestor]);
  return Number(rows[0]?.is_ancestor) === 1;
}

async function activeBranch(session: SqlSession): Promise<string> {
  const rows = await session.query('SELECT active_branch() AS b');
  return String(rows[0]?.b);
}

async function headOf(session: SqlSession, database: string, branch: string): Promise<string | null> {
  const rows = await session.query(`SELECT hash FROM ${quoteIdentifier(database)}.dolt_branches WHERE name = ?`, [branch]);
  return rows.length === 0 ? null : String(rows[0].hash);
}

/**
 * Adds (or re-points) a remote on every database for a backup location, e.g.
 * file:///backups/{database}. Dolt refuses two entries (remote or backup) with one URL, so a
 * backup registration with the same URL is removed first; the backup scheduler re-adds it.
 */
export async function ensureRemoteOnAllDatabases(session: SqlSession, remote: string, urlTemplate: string): Promise<void> {
  for (const database of await listDatabases(session)) {
    await session.query(`USE ${quoteIdentifier(database)}`);
    const url = remoteUrlFor(urlTemplate, database);
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

interface DatabaseRecovery {
  session: SqlSession;
  database: string;
  options: RecoveryOptions;
  current: string;
}

/**
 * Creates the orphan branch at `hash`, checks it names exactly that hash, and pushes it. Safe to
 * repeat: the name is derived from the hash, so a branch of that name from an earlier run that
 * names the same hash is the same save.
 */
async function saveOrphan(r: DatabaseRecovery, branch: string, hash: string): Promise<string> {
  const orphan = orphanBranchName(r.options.epoch, branch, hash);
  const existing = await headOf(r.session, r.database, orphan);
  if (existing === null) await r.session.query('CALL dolt_branch(?, ?)', [orphan, hash]);
  const saved = await headOf(r.session, r.database, orphan);
  if (saved !== hash) throw new OrphanSaveError(r.database, orphan, hash, saved);
  if (r.options.pushOrphans ?? true) await r.session.query('CALL dolt_push(?, ?)', [r.options.primaryRemote, orphan]);
  return orphan;
}

/** Moves `branch` from `judged` to `sourceRef`, refusing if it moved since it was judged. */
async function moveBranch(r: DatabaseRecovery, branch: string, judged: string, sourceRef: string): Promise<void> {
  const now = await headOf(r.session, r.database, branch);
  if (now !== judged) throw new RecoveryRaceError(r.database, branch, judged, now ?? 'deleted');
  if (branch === r.current) await r.session.query("CALL dolt_reset('--hard', ?)", [sourceRef]);
  else await r.session.query("CALL dolt_branch('-f', ?, ?)", [branch, sourceRef]);
}

async function recoverBranch(r: DatabaseRecovery, branch: string, localHash: string | undefined, source: string, target: string): Promise<BranchOutcome> {
  const sourceRef = `${source}/${branch}`;
  const outcome: BranchOutcome = { database: r.database, branch, action: 'up-to-date', from: localHash ?? null, to: target, source };
  if (localHash === undefined) {
    await r.session.query('CALL dolt_branch(?, ?)', [branch, sourceRef]);
    outcome.action = 'created';
    return outcome;
  }
  if (localHash === target) return outcome;
  if (await isAncestor(r.session, branch, sourceRef)) {
    await moveBranch(r, branch, localHash, sourceRef);
    outcome.action = 'fast-forwarded';
    return outcome;
  }
  if (r.options.mode === 'promote' && (await isAncestor(r.session, sourceRef, branch))) {
    outcome.action = 'kept-ahead';
    outcome.to = localHash;
    return outcome;
  }
  outcome.orphanBranch = await saveOrphan(r, branch, localHash);
  await moveBranch(r, branch, localHash, sourceRef);
  outcome.action = 'reset-after-saving-orphans';
  return outcome;
}

/** Every branch of every database brought to the source's newest commits (table in the file doc). */
export async function recoverNewestCommits(session: SqlSession, options: RecoveryOptions): Promise<BranchOutcome[]> {
  await session.query('SET SESSION dolt_transaction_commit = 0');
  const outcomes: BranchOutcome[] = [];
  for (const database of await listDatabases(session)) {
    await session.query(`USE ${quoteIdentifier(database)}`);
    // What the remote held when this node last heard from it, before the fetch prunes the
    // tracking refs of branches deleted since.
    const lastKnown = await remoteBranchHeads(session, database, options.primaryRemote);
    await session.query("CALL dolt_fetch('--prune', ?)", [options.primaryRemote]);
    let backupHeads: Record<string, string> = {};
    if (options.backupRemote) {
      await session.query('CALL dolt_fetch(?)', [options.backupRemote]);
      backupHeads = await remoteBranchHeads(session, database, options.backupRemote);
    }
    const remoteHeads = await remoteBranchHeads(session, database, options.primaryRemote);
    const local = await branchHeads(session, database);
    const r: DatabaseRecovery = { session, database, options, current: await activeBranch(session) };
    const branches = new Set([...Object.keys(remoteHeads), ...Object.keys(backupHeads)]);
    for (const branch of [...branches].sort()) {
      if (isOrphanBranch(branch)) continue;
      let source = options.primaryRemote;
      let target = remoteHeads[branch];
      const backupHash = backupHeads[branch];
      if (options.backupRemote && backupHash !== undefined && backupHash !== target) {
        if (target === undefined || (await isAncestor(session, `${options.primaryRemote}/${branch}`, `${options.backupRemote}/${branch}`))) {
          source = options.backupRemote;
          target = backupHash;
        }
      }
      outcomes.push(await recoverBranch(r, branch, local[branch], source, target));
    }
    for (const branch of Object.keys(local).sort()) {
      if (branches.has(branch) || isOrphanBranch(branch)) continue;
      const hash = local[branch];
      if (lastKnown[branch] === hash && branch !== r.current) {
        const now = await headOf(session, database, branch);
        if (now !== hash) throw new RecoveryRaceError(database, branch, hash, now ?? 'deleted');
        await session.query("CALL dolt_branch('-D', ?)", [branch]);
        outcomes.push({ database, branch, action: 'deleted-upstream', from: hash, to: hash, source: options.primaryRemote });
        continue;
      }
      if (options.mode === 'promote' || branch === r.current) {
        // Work created on this node only: a promoted node pushes it once it is primary. A rejoining
        // node cannot delete the branch its session stands on; it stays, reported.
        outcomes.push({ database, branch, action: 'kept-local-only', from: hash, to: hash, source: 'local' });
        continue;
      }
      const orphan = await saveOrphan(r, branch, hash);
      const now = await headOf(session, database, branch);
      if (now !== hash) throw new RecoveryRaceError(database, branch, hash, now ?? 'deleted');
      await session.query("CALL dolt_branch('-D', ?)", [branch]);
      outcomes.push({ database, branch, action: 'deleted-after-saving-orphans', from: hash, to: hash, source: 'local', orphanBranch: orphan });
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
