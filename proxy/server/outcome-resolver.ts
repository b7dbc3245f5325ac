/**
 * Answers `SELECT doltgate_outcome('<token>')` for the proxy: asks the node that ran the
 * statement and the primary (over side connections) and judges (proto/outcome.ts, where the
 * verdicts are explained).
 */

import type { BackendLogin, BackendTarget } from './backend-connection';
import type { BackendPools } from './backend-pool';
import { judgeOutcome, searchCommitGraph, type NodeFinding, type OutcomeVerdict } from '../../proto/outcome';
import { comInitDbFrame } from '../protocol';

export { judgeOutcome, type NodeFinding, type OutcomeFacts, type OutcomeVerdict } from '../../proto/outcome';

/** The rows of `SELECT doltgate_outcome(...)`: a well-formed call with a literal token, or null. */
export function parseOutcomeCall(sql: string): string | null {
  const match = /^\s*SELECT\s+doltgate_outcome\s*\(\s*'([^'\\]*)'\s*\)\s*;?\s*$/i.exec(sql);
  return match === null ? null : match[1];
}

/** Searches one node over a side connection (BackendPools.openSide). */
export async function findCommit(pools: BackendPools, target: BackendTarget, login: BackendLogin, token: string): Promise<NodeFinding> {
  let conn;
  try {
    conn = await pools.openSide(target, login);
  } catch (error) {
    return { kind: 'unreachable', why: (error as Error).message };
  }
  const side = conn;
  try {
    return await searchCommitGraph(
      {
        scalar: (sql) => side.queryScalar(sql),
        useDatabase: async (database) => {
          const selected = await side.runCommand(comInitDbFrame(database));
          if (selected.errno !== 0) throw new Error(`could not select ${database}: ${selected.message}`);
        },
      },
      token,
    );
  } catch (error) {
    return { kind: 'unreachable', why: (error as Error).message };
  } finally {
    side.destroy(null);
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
