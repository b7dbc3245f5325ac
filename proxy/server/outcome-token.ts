/**
 * Outcome tokens: a name for every statement that can make a Dolt commit, so that when the
 * connection to the primary dies after it was sent, the client's 2013 carries a token and the
 * question "did it commit?" has an answer in Dolt's commit graph (issue 14).
 *
 * How (test/integration/dolt-outcome-facts.test.ts): the primary runs with
 * dolt_transaction_commit on, so every SQL COMMIT and autocommit write is a Dolt commit, and the
 * session variable `dolt_transaction_commit_message` becomes that commit's message. Before such a
 * statement the proxy sets it, on the backend connection, to `doltgate-outcome:<token>`; data and
 * commit land together, so a commit with that message exists exactly when the statement
 * committed. `dolt_commits` lists commits of every branch: one a failover set aside on an orphan
 * branch is still found.
 *
 * Invariant (enforced by `commitPlan` and CommandForwarder.armCommitMessage): on a backend
 * connection, a statement that can make a Dolt commit runs with the message either empty or its
 * own fresh token — never a token left by an earlier statement — so a commit carrying token T
 * was made by the statement T was given to, and by nothing else.
 */

import { randomBytes } from 'node:crypto';
import type { Classification } from '../routing/classification';

import { COMMIT_MESSAGE_PREFIX } from '../../proto/outcome';

export { COMMIT_MESSAGE_PREFIX, parseOutcomeToken } from '../../proto/outcome';

/** What to do about the commit message before a command. */
export type CommitPlan =
  /** It can make a Dolt commit: give it a fresh token. */
  | 'token'
  /** It can make a Dolt commit but gets no token (several statements in one query): clear a stale one. */
  | 'clear'
  /** It makes no Dolt commit, or the client names its commits itself. */
  | 'none';

/** Statement kinds that never make a Dolt commit of their own (outside an open transaction, see below). */
const NEVER_COMMITS: ReadonlySet<string> = new Set(['set', 'use', 'show', 'explain', 'savepoint', 'rollback', 'prepare', 'empty', 'handler']);

/**
 * `c`: the command's classification; `mayWrite`: command-job's mayWrite; `inTransaction`: a
 * transaction is open on the primary, or autocommit is off (then a write commits nothing yet).
 */
export function commitPlan(c: Classification, mayWrite: boolean, inTransaction: boolean, clientSetsMessage: boolean): CommitPlan {
  if (clientSetsMessage) return 'none';
  let commits: boolean;
  if (c.kind === 'commit') commits = inTransaction;
  else if (NEVER_COMMITS.has(c.kind) || !mayWrite) commits = false;
  // Inside a transaction a write commits nothing; DDL, BEGIN and LOCK TABLES commit it implicitly.
  else if (inTransaction) commits = c.kind === 'ddl' || c.kind === 'begin' || c.kind === 'lock' || c.kind === 'multi';
  else commits = c.kind !== 'begin' && c.kind !== 'lock' && c.kind !== 'unlock';
  if (!commits) return 'none';
  return c.isMultiStatement ? 'clear' : 'token';
}

/** Makes tokens `<node>/<run><n>`: unique per proxy run, and naming the node that ran the statement. */
export class OutcomeTokens {
  private readonly run = randomBytes(5).toString('hex');
  private counter = 0;
  /** Why tokens are off (a Dolt without the variable), or null while they are on. */
  disabledBecause: string | null = null;

  get enabled(): boolean {
    return this.disabledBecause === null;
  }

  next(node: string): string {
    this.counter++;
    return `${node}/${this.run}${this.counter.toString(36)}`;
  }
}

/** The statement that arms a connection: the token's characters need no escaping. */
export function armStatement(token: string | null): string {
  return `SET SESSION dolt_transaction_commit_message = '${token === null ? '' : COMMIT_MESSAGE_PREFIX + token}'`;
}
