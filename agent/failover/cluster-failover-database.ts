/**
 * FailoverDatabase for cluster mode (Dolt's direct-to-standby replication). There is no remote:
 * a standby already holds what the primary replicated to it, so promotion recovers nothing and
 * there is nothing to push. What remains is the rejoin of an old primary: before it turns a
 * cluster standby, whose root the primary's push replaces at once, every branch head the primary
 * does not know is saved as an orphan branch (`doltgate/orphaned/<epoch>/<branch>-<hash>`) and
 * handed to the primary through a file remote (dolt-cluster-mode-facts.test.ts pins each step).
 *
 * The file remote lives under this node's directory. A primary on another host cannot read it;
 * then the orphan stays there, outside the data directory so that the rejoin does not touch it,
 * and the outcome says where (`kept on <node> at <url>`).
 */

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatabaseCatalog } from '../../proto';
import type { LocalDolt } from '../dolt/local-dolt';
import type { DoltServerRole } from '../dolt/server-config';
import { branchHeads } from '../dolt/inspector';
import { isOrphanBranch, orphanBranchName, type BranchOutcome } from '../dolt/recovery';
import type { Alignment } from '../dolt/database-sync';
import { listDatabases, quoteIdentifier, withSession, type SqlEndpoint, type SqlSession } from '../dolt/sql-session';
import { drainStatements, type FailoverDatabase } from './failover-database';

export interface ClusterRejoinSettings {
  /** This node's name: names the primary's temporary remote. */
  name: string;
  /** Where orphans are pushed before the primary fetches them: `<dir>/<epoch>/<database>`. */
  orphanDir: string;
}

const localRemote = 'doltgate-orphans';

export class ClusterFailoverDatabase implements FailoverDatabase {
  constructor(
    private readonly local: LocalDolt,
    private readonly settings: ClusterRejoinSettings,
    /** The published primary's SQL endpoint (with this agent's credentials), or null. */
    private readonly primaryEndpoint: () => Promise<SqlEndpoint | null>,
    private readonly now: () => number,
  ) {}

  /** Cluster replication sends every commit to the standbys by itself; a hand-over waits for it. */
  async pushAll(): Promise<number> {
    return 0;
  }

  /** A clustered standby holds only what a primary replicated to it: nothing of its own to save. */
  holdsOnlyReplicatedCommits(runningRole: DoltServerRole | null): boolean {
    return runningRole === 'replica';
  }

  async recover(_catalog: DatabaseCatalog | null, epoch: number, timeoutMs: number, mode: 'promote' | 'rejoin'): Promise<{ alignment: Alignment; outcomes: BranchOutcome[] }> {
    const alignment: Alignment = { cloned: [], dropped: [] };
    // Databases, drops and commits reach a standby by Dolt's replication: nothing to fetch or align.
    if (mode === 'promote') return { alignment, outcomes: [] };
    const primary = await this.primaryEndpoint();
    if (primary === null) throw new Error('rejoining needs the primary, to learn which commits it lacks and to hand it the orphans; none is published yet');
    return withSession(this.local.endpoint, timeoutMs, (mine) =>
      withSession(primary, timeoutMs, async (theirs) => ({ alignment, outcomes: await this.saveOrphans(mine, theirs, epoch) })),
    );
  }

  drainStatements(boundMs: number, timeoutMs: number): Promise<{ waitedMs: number; running: number }> {
    return drainStatements(this.local.endpoint, boundMs, timeoutMs, this.now);
  }

  private async saveOrphans(mine: SqlSession, theirs: SqlSession, epoch: number): Promise<BranchOutcome[]> {
    const outcomes: BranchOutcome[] = [];
    const theirDatabases = new Set(await listDatabases(theirs));
    for (const database of await listDatabases(mine)) {
      for (const [branch, hash] of Object.entries(await branchHeads(mine, database))) {
        if (theirDatabases.has(database) && (await knowsCommit(theirs, database, hash))) {
          outcomes.push({ database, branch, action: 'up-to-date', from: hash, to: hash, source: 'primary' });
          continue;
        }
        // An orphan branch saved before and never handed over is handed over under its own name.
        const orphan = isOrphanBranch(branch) ? branch : orphanBranchName(epoch, branch, hash);
        const url = await this.pushToFileRemote(mine, database, branch, orphan, epoch);
        const where = theirDatabases.has(database) ? await this.handOver(theirs, database, orphan, url) : `kept on ${this.settings.name} at ${url}: the primary has no database ${database}`;
        outcomes.push({ database, branch, action: 'reset-after-saving-orphans', from: hash, to: 'the primary\'s root', source: 'primary', orphanBranch: where === null ? orphan : `${orphan} (${where})` });
      }
    }
    return outcomes;
  }

  private async pushToFileRemote(mine: SqlSession, database: string, branch: string, orphan: string, epoch: number): Promise<string> {
    const dir = join(this.settings.orphanDir, String(epoch), database);
    await mkdir(dir, { recursive: true });
    const url = `file://${dir}`;
    await mine.query(`USE ${quoteIdentifier(database)}`);
    if (orphan !== branch) await mine.query("CALL dolt_branch('-f', ?, ?)", [orphan, branch]);
    await replaceRemote(mine, database, localRemote, url);
    await mine.query('CALL dolt_push(?, ?)', [localRemote, orphan]);
    return url;
  }

  /** The primary fetches the orphan and names it; null when done, else where it stays and why. */
  private async handOver(theirs: SqlSession, database: string, orphan: string, url: string): Promise<string | null> {
    const remote = `doltgate-orphans-${this.settings.name}`;
    try {
      await theirs.query(`USE ${quoteIdentifier(database)}`);
      await replaceRemote(theirs, database, remote, url);
      try {
        await theirs.query('CALL dolt_fetch(?, ?)', [remote, orphan]);
        await theirs.query("CALL dolt_branch('-f', ?, ?)", [orphan, `${remote}/${orphan}`]);
      } finally {
        await theirs.query("CALL dolt_remote('remove', ?)", [remote]).catch(() => undefined);
      }
      return null;
    } catch (error) {
      return `kept on ${this.settings.name} at ${url}: the primary could not fetch it (${(error as Error).message})`;
    }
  }
}

/**
 * Whether `hash` is a commit the session's server holds in `database`: dolt_commits lists every
 * commit reachable from a branch or a remote-tracking ref (dolt-cluster-mode-facts.test.ts).
 */
async function knowsCommit(session: SqlSession, database: string, hash: string): Promise<boolean> {
  const rows = await session.query(`SELECT COUNT(*) AS n FROM ${quoteIdentifier(database)}.dolt_commits WHERE commit_hash = ?`, [hash]);
  return Number(rows[0]?.n ?? 0) > 0;
}

async function replaceRemote(session: SqlSession, database: string, remote: string, url: string): Promise<void> {
  const rows = await session.query(`SELECT url FROM ${quoteIdentifier(database)}.dolt_remotes WHERE name = ?`, [remote]);
  if (rows.length > 0 && String(rows[0].url) === url) return;
  if (rows.length > 0) await session.query("CALL dolt_remote('remove', ?)", [remote]);
  await session.query("CALL dolt_remote('add', ?, ?)", [remote, url]);
}
