/**
 * Outcome tokens (proxy/server/outcome-token.ts issues them; the proxy's SQL form and
 * `doltgate outcome` answer them): the token's shape, the commit message that carries it, how
 * one node's commit graph is searched for it, and the verdict from what the nodes say. Shared
 * here because the proxy and the agent (for the CLI) both answer the question, the same way.
 *
 * The verdicts:
 * - committed: a commit with the token's message is on a live branch (not an orphan) of the
 *   primary — the write is in the database; do not retry it;
 * - set aside: it committed on the node that ran it, but that node was replaced before the
 *   remote had it, so the commit is on an orphan branch (or will be once the node rejoins), not
 *   on the primary — the write is not in the database; retrying applies it again;
 * - not committed: the node that ran it has no such commit (a commit and its data land
 *   together, and recovery never drops a commit: it saves it on a branch) — safe to retry;
 * - unknown: the node that ran it cannot be asked now, and the primary does not have it.
 */

import { isUserDatabase, quoteIdentifier } from '../common/sql-names';

export const COMMIT_MESSAGE_PREFIX = 'doltgate-outcome:';

/** What a bad token is told, wherever it was given (the SQL form, the RPC, the CLI). */
export function notAnOutcomeToken(token: string): string {
  return `'${token.slice(0, 80)}' is not an outcome token (they look like n1/0123456789abc, from the message of a 2013 error)`;
}

/** The node a token names, or null when it is not one of ours. */
export function parseOutcomeToken(token: string): { node: string; id: string } | null {
  const match = /^([a-z0-9][a-z0-9_.-]{0,62})\/([0-9a-f]{10}[0-9a-z]{1,13})$/.exec(token);
  return match === null ? null : { node: match[1], id: match[2] };
}

export type OutcomeVerdict = 'committed' | 'set aside' | 'not committed' | 'unknown';

/** What one node's commit graph says about a token. */
export type NodeFinding =
  | { kind: 'found'; database: string; hash: string; liveBranches: string[] }
  | { kind: 'absent' }
  /** Not in the topology, or no answer. */
  | { kind: 'unreachable'; why: string };

export interface OutcomeFacts {
  /** The node the token names: it ran the statement. */
  ranOn: string;
  /** The primary now, or null when the cluster has none. */
  primary: string | null;
  onPrimary: NodeFinding | null;
  /** What the node that ran it says; null when that node is the primary (onPrimary says it). */
  onRunner: NodeFinding | null;
}

export function judgeOutcome(f: OutcomeFacts): { verdict: OutcomeVerdict; detail: string } {
  const p = f.onPrimary;
  if (p !== null && p.kind === 'found') {
    if (p.liveBranches.length > 0) return { verdict: 'committed', detail: `commit ${p.hash} of database ${p.database} on the primary ${f.primary}, on ${p.liveBranches.join(', ')}` };
    return { verdict: 'set aside', detail: `commit ${p.hash} of database ${p.database} is on the primary ${f.primary} only on an orphan branch: a failover set it aside; it is not in the database` };
  }
  const runner = f.ranOn === f.primary ? p : f.onRunner;
  if (runner === null) return { verdict: 'unknown', detail: `${f.ranOn}, which ran it, was not asked` };
  if (runner.kind === 'found') {
    if (f.primary === null) return { verdict: 'unknown', detail: `commit ${runner.hash} of database ${runner.database} is on ${f.ranOn}, which ran it; the cluster has no primary now, so whether it stays is not known yet` };
    return { verdict: 'set aside', detail: `commit ${runner.hash} of database ${runner.database} is on ${f.ranOn}, which ran it, but not on the primary ${f.primary}: the failover left it behind (saved on an orphan branch when ${f.ranOn} rejoins); it is not in the database` };
  }
  if (runner.kind === 'absent') return { verdict: 'not committed', detail: `${f.ranOn}, which ran it, has no commit with this token: it did not commit` };
  if (p !== null && p.kind === 'unreachable' && f.ranOn !== f.primary) {
    return { verdict: 'unknown', detail: `neither ${f.ranOn}, which ran it (${runner.why}), nor the primary (${p.why}) can be asked now` };
  }
  if (f.ranOn === f.primary) return { verdict: 'unknown', detail: `the primary ${f.ranOn}, which ran it, cannot be asked now (${runner.why}); ask again once it answers` };
  return { verdict: 'unknown', detail: `${f.ranOn}, which ran it, cannot be asked now (${runner.why}); the primary does not have it; ask again once ${f.ranOn} is back` };
}

/** What searching a node needs: one text query answered with its first value, and selecting a database. */
export interface CommitGraphReader {
  scalar(sql: string): Promise<string | null>;
  useDatabase(database: string): Promise<void>;
}

/**
 * Looks for the commit with the token's message in every database of one node. Messages and
 * hashes hold only [a-z0-9_./:-], so the SQL needs no escaping.
 */
export async function searchCommitGraph(reader: CommitGraphReader, token: string): Promise<Exclude<NodeFinding, { kind: 'unreachable' }>> {
  const message = `${COMMIT_MESSAGE_PREFIX}${token}`;
  const list = await reader.scalar("SELECT GROUP_CONCAT(schema_name SEPARATOR '\\n') FROM information_schema.schemata");
  for (const database of (list ?? '').split('\n').filter((name) => name !== '' && isUserDatabase(name))) {
    const hash = await reader.scalar(`SELECT commit_hash FROM ${quoteIdentifier(database)}.dolt_commits WHERE message = '${message}' LIMIT 1`);
    if (hash === null) continue;
    await reader.useDatabase(database);
    const live = await reader.scalar(`SELECT GROUP_CONCAT(name ORDER BY name SEPARATOR ',') FROM dolt_branches WHERE name NOT LIKE 'doltgate/orphaned/%' AND DOLT_MERGE_BASE('${hash}', name) = '${hash}'`);
    return { kind: 'found', database, hash, liveBranches: live === null || live === '' ? [] : live.split(',') };
  }
  return { kind: 'absent' };
}
