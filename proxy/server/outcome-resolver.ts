/**
 * Answers `SELECT doltgate_outcome('<token>')`: did the statement that got this outcome token
 * (outcome-token.ts) commit? From Dolt's commit graph, on the node that ran it and on the
 * primary:
 *
 * - committed: a commit with the token's message is on a live branch (not an orphan) of the
 *   primary — the write is in the database; do not retry it;
 * - set aside: it committed on the node that ran it, but that node was replaced before the
 *   remote had it, so the commit is on an orphan branch (or will be once the node rejoins), not
 *   on the primary — the write is not in the database; retrying applies it again;
 * - not committed: the node that ran it has no such commit (a commit and its data land
 *   together, and recovery never drops a commit: it saves it on a branch) — safe to retry;
 * - unknown: the node that ran it cannot be asked now, and the primary does not have it.
 *
 * `judgeOutcome` is the pure part (table-tested); `findCommit` asks one node.
 */

import type { BackendLogin, BackendTarget } from './backend-connection';
import type { BackendPools } from './backend-pool';
import { COMMIT_MESSAGE_PREFIX } from './outcome-token';
import { comInitDbFrame } from '../protocol';

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

/** The rows of `SELECT doltgate_outcome(...)`: a well-formed call with a literal token, or null. */
export function parseOutcomeCall(sql: string): string | null {
  const match = /^\s*SELECT\s+doltgate_outcome\s*\(\s*'([^'\\]*)'\s*\)\s*;?\s*$/i.exec(sql);
  return match === null ? null : match[1];
}

const PROBE_CHARSET = 45;

function quoteIdentifier(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/**
 * Looks for the commit with the token's message in every database of one node, over a fresh
 * side connection (past the budget, like KILL QUERY: a question about a lost write must not queue
 * behind the load). Messages hold only [a-z0-9_./-], so the SQL needs no escaping.
 */
export async function findCommit(pools: BackendPools, target: BackendTarget, login: BackendLogin, token: string): Promise<NodeFinding> {
  const message = `${COMMIT_MESSAGE_PREFIX}${token}`;
  let conn;
  try {
    conn = await pools.acquire({ target, login, clientCapabilities: 0, charset: PROBE_CHARSET, database: null, stateKey: '', multiStatements: null, fresh: true });
  } catch (error) {
    return { kind: 'unreachable', why: (error as Error).message };
  }
  try {
    const list = await conn.queryScalar("SELECT GROUP_CONCAT(schema_name SEPARATOR '\\n') FROM information_schema.schemata WHERE schema_name NOT IN ('information_schema', 'mysql')");
    for (const database of (list ?? '').split('\n').filter((name) => name !== '')) {
      const hash = await conn.queryScalar(`SELECT commit_hash FROM ${quoteIdentifier(database)}.dolt_commits WHERE message = '${message}' LIMIT 1`);
      if (hash === null) continue;
      const selected = await conn.runCommand(comInitDbFrame(database));
      if (selected.errno !== 0) return { kind: 'unreachable', why: `could not select ${database}: ${selected.message}` };
      const live = await conn.queryScalar(`SELECT GROUP_CONCAT(name ORDER BY name SEPARATOR ',') FROM dolt_branches WHERE name NOT LIKE 'doltgate/orphaned/%' AND DOLT_MERGE_BASE('${hash}', name) = '${hash}'`);
      return { kind: 'found', database, hash, liveBranches: live === null || live === '' ? [] : live.split(',') };
    }
    return { kind: 'absent' };
  } catch (error) {
    return { kind: 'unreachable', why: (error as Error).message };
  } finally {
    conn.destroy(null);
  }
}

/** Asks the nodes (the primary, and the node that ran it when that is another) and judges. */
export async function resolveOutcome(token: string, deps: { pools: BackendPools; login: BackendLogin; primary: BackendTarget | null; node: (name: string) => BackendTarget | undefined; ranOn: string }): Promise<{ verdict: OutcomeVerdict; detail: string }> {
  const { primary, ranOn } = deps;
  const askRunner = (): Promise<NodeFinding | null> => {
    if (primary !== null && primary.name === ranOn) return Promise.resolve(null);
    const runnerTarget = deps.node(ranOn);
    if (runnerTarget === undefined) return Promise.resolve({ kind: 'unreachable', why: `${ranOn} is not in the topology` });
    return findCommit(deps.pools, runnerTarget, deps.login, token);
  };
  const [onPrimary, onRunner] = await Promise.all([primary === null ? Promise.resolve(null) : findCommit(deps.pools, primary, deps.login, token), askRunner()]);
  return judgeOutcome({ ranOn, primary: primary?.name ?? null, onPrimary, onRunner });
}
