/**
 * `doltgate switchover --to NODE`: a planned hand-over of the primary role to a replica. The
 * primary drains open transactions (bounded by --drain-timeout), makes sure its heads are on the
 * remote and fences; the target then promotes. With --dry-run the agents judge the request with
 * the same rules they execute by and print the plan, writing nothing (no token needed).
 *
 * Exit: 0 done (or dry run accepted), 1 the switchover failed, 2 usage, 3 refused (the reason is
 * printed), 4 unreachable, 5 unknown node. Output formats: operation-progress.ts.
 */

import { isValidNodeName } from '../proto';
import type { SwitchoverRequest } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, parseOptions, type ConnectionArgs, type Env, type OptionSpec } from './cli-args';
import { ExitCode, processIo, runCommand, UsageError, type CliIo } from './cli-io';
import { requestAndFollow } from './operation-progress';

export interface SwitchoverArgs {
  connection: ConnectionArgs;
  target: string;
  dryRun: boolean;
  /** Null: the agents' default. */
  drainTimeoutMs: number | null;
  noWait: boolean;
}

const specs: readonly OptionSpec[] = [
  { name: 'to', kind: 'string', placeholder: 'NODE', help: 'the replica to promote (required)' },
  { name: 'dry-run', kind: 'flag', help: 'judge and print the plan; change nothing' },
  { name: 'drain-timeout', kind: 'int', placeholder: 'MS', help: "bound for open transactions to finish on the old primary (agents' default 10000)" },
  { name: 'no-wait', kind: 'flag', help: 'return once the op is written instead of following its steps' },
  ...connectionOptions,
];
const usage = 'doltgate switchover --to NODE [--dry-run] [--drain-timeout MS] [--no-wait] [--etcd URL | --config FILE | --agent HOST:PORT] [--json]';
const description = 'Planned switchover: hold writes, drain, push and fence the primary, promote NODE. Shows each step live.';

export function parseSwitchoverArgs(argv: readonly string[], env: Env): SwitchoverArgs | 'help' {
  const values = parseOptions(argv, specs);
  if (values.help === true) return 'help';
  const target = values.to as string | undefined;
  if (target === undefined) throw new UsageError('--to NODE is required: the replica to promote');
  if (!isValidNodeName(target)) throw new UsageError(`--to ${JSON.stringify(target)} is not a node name`);
  return {
    connection: connectionArgs(values, env),
    target,
    dryRun: values['dry-run'] === true,
    drainTimeoutMs: (values['drain-timeout'] as number | undefined) ?? null,
    noWait: values['no-wait'] === true,
  };
}

export function switchoverRequest(args: SwitchoverArgs): SwitchoverRequest {
  return { target: args.target, dryRun: args.dryRun, drainTimeoutMs: args.drainTimeoutMs ?? undefined, requestedBy: '' };
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  return runCommand('switchover', io, () => argv.includes('--json'), async () => {
    const args = parseSwitchoverArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    return requestAndFollow({ connection: args.connection, call: { method: 'switchover', request: switchoverRequest(args) }, noWait: args.noWait, io });
  });
}

export const command = { name: 'switchover', summary: 'planned switchover to a replica (--to NODE [--dry-run])', run: runCli };
