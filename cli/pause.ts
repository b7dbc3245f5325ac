/**
 * `doltgate pause [--reason R]`: maintenance mode. The agents stop failing over on their own;
 * operator ops that name a target (`switchover --to`, `failover --to`) still run, because a
 * person chose them. Writes `/doltgate/<cluster>/pause` {by, at, reason} through an agent, so it
 * needs the token when the agents have one. Pausing a paused cluster replaces the reason.
 *
 * `--json` prints { "cluster": string, "paused": true, "pause": { "by", "at", "reason" }, "answeredBy": string }.
 */

import type { PauseReply, PauseRequest } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, parseOptions, type ConnectionArgs, type Env, type OptionSpec } from './cli-args';
import { ExitCode, processIo, runCommand, type CliIo } from './cli-io';
import { requesterName, withConnection } from './control-client';
import { formatTime } from './format-table';

export interface PauseArgs {
  connection: ConnectionArgs;
  reason: string;
}

const specs: readonly OptionSpec[] = [
  { name: 'reason', kind: 'string', placeholder: 'TEXT', help: 'why, for whoever looks at `doltgate status` next' },
  ...connectionOptions,
];
const usage = 'doltgate pause [--reason TEXT] [--etcd URL | --config FILE | --agent HOST:PORT] [--json]';
const description = 'Maintenance mode: no automatic failover until `doltgate resume`. Operator ops naming a target still run.';

export function parsePauseArgs(argv: readonly string[], env: Env): PauseArgs | 'help' {
  const values = parseOptions(argv, specs);
  if (values.help === true) return 'help';
  return { connection: connectionArgs(values, env), reason: (values.reason as string | undefined) ?? '' };
}

/** Both pause and resume print this shape. */
export function pauseJson(cluster: string, reply: PauseReply): { cluster: string; paused: boolean; pause: { by: string; at: string; reason: string } | null; answeredBy: string } {
  const pause = reply.pause?.paused ? { by: reply.pause.by, at: reply.pause.at, reason: reply.pause.reason } : null;
  return { cluster, paused: pause !== null, pause, answeredBy: reply.answeredBy };
}

export function formatPause(cluster: string, reply: PauseReply): string {
  const pause = reply.pause;
  if (pause === null || !pause.paused) return `cluster ${cluster} is not paused (answered by ${reply.answeredBy})`;
  return `cluster ${cluster} paused by ${pause.by} at ${formatTime(pause.at)}: ${pause.reason}\nno automatic failover until 'doltgate resume'`;
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  return runCommand('pause', io, () => argv.includes('--json'), async () => {
    const args = parsePauseArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    const reply = await withConnection(args.connection, (connection) =>
      connection.call<PauseRequest, PauseReply>('pause', { reason: args.reason, requestedBy: requesterName() }),
    );
    const cluster = args.connection.cluster;
    io.out(args.connection.json ? JSON.stringify(pauseJson(cluster, reply), null, 2) : formatPause(cluster, reply));
    return ExitCode.ok;
  });
}

export const command = { name: 'pause', summary: 'maintenance mode: no automatic failover ([--reason TEXT])', run: runCli };
