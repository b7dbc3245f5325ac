/**
 * `doltgate failover [--to NODE] [--force]`: an unplanned promotion. Without --to the agents
 * promote the top-ranked eligible replica (refused while the cluster is paused: that choice would
 * be automatic). While a healthy primary holds the leader key a failover needs --force — that is
 * what switchover is for. --force skips the target's health, role and lag checks, never etcd
 * quorum or the node's nofailover. --dry-run judges and prints the plan, writing nothing.
 *
 * Exit: 0 done (or dry run accepted), 1 the failover failed, 2 usage, 3 refused (the reason is
 * printed), 4 unreachable, 5 unknown node. Output formats: operation-progress.ts.
 */

import { isValidNodeName } from '../proto';
import type { FailoverRequest } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, parseOptions, type ConnectionArgs, type Env, type OptionSpec } from './cli-args';
import { ExitCode, processIo, runCommand, UsageError, type CliIo } from './cli-io';
import { requestAndFollow } from './operation-progress';

export interface FailoverArgs {
  connection: ConnectionArgs;
  /** Null: the agents choose. */
  target: string | null;
  force: boolean;
  dryRun: boolean;
  noWait: boolean;
}

const specs: readonly OptionSpec[] = [
  { name: 'to', kind: 'string', placeholder: 'NODE', help: 'the replica to promote (default: the top-ranked eligible one)' },
  { name: 'force', kind: 'flag', help: "fail over even from a healthy primary; skip the target's health, role and lag checks" },
  { name: 'dry-run', kind: 'flag', help: 'judge and print the plan; change nothing' },
  { name: 'no-wait', kind: 'flag', help: 'return once the op is written instead of following its steps' },
  ...connectionOptions,
];
const usage = 'doltgate failover [--to NODE] [--force] [--dry-run] [--no-wait] [--etcd URL | --config FILE | --agent HOST:PORT] [--json]';
const description = 'Forced failover: fence the primary and promote NODE (or the best replica). Shows each step live.';

export function parseFailoverArgs(argv: readonly string[], env: Env): FailoverArgs | 'help' {
  const values = parseOptions(argv, specs);
  if (values.help === true) return 'help';
  const target = (values.to as string | undefined) ?? null;
  if (target !== null && !isValidNodeName(target)) throw new UsageError(`--to ${JSON.stringify(target)} is not a node name`);
  return {
    connection: connectionArgs(values, env),
    target,
    force: values.force === true,
    dryRun: values['dry-run'] === true,
    noWait: values['no-wait'] === true,
  };
}

export function failoverRequest(args: FailoverArgs): FailoverRequest {
  return { target: args.target ?? undefined, force: args.force, dryRun: args.dryRun, requestedBy: '' };
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  return runCommand('failover', io, () => argv.includes('--json'), async () => {
    const args = parseFailoverArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    return requestAndFollow({ connection: args.connection, call: { method: 'failover', request: failoverRequest(args) }, noWait: args.noWait, io });
  });
}

export const command = { name: 'failover', summary: 'forced failover ([--to NODE] [--force] [--dry-run])', run: runCli };
