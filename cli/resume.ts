/**
 * `doltgate resume`: leave maintenance mode; the agents fail over on their own again. Deletes
 * `/doltgate/<cluster>/pause` through an agent (token needed when configured). Resuming a
 * cluster that is not paused is not an error: the state asked for holds.
 *
 * `--json` prints { "cluster": string, "paused": false, "pause": null, "answeredBy": string }.
 */

import type { PauseReply, ResumeRequest } from '../proto/control-types';
import { connectionArgs, connectionOptions, helpText, parseOptions, type ConnectionArgs, type Env } from './cli-args';
import { ExitCode, processIo, runCommand, type CliIo } from './cli-io';
import { requesterName, withConnection } from './control-client';
import { pauseJson } from './pause';

export interface ResumeArgs {
  connection: ConnectionArgs;
}

const specs = connectionOptions;
const usage = 'doltgate resume [--etcd URL | --config FILE | --agent HOST:PORT] [--json]';
const description = 'Leave maintenance mode: automatic failover is on again.';

export function parseResumeArgs(argv: readonly string[], env: Env): ResumeArgs | 'help' {
  const values = parseOptions(argv, specs);
  if (values.help === true) return 'help';
  return { connection: connectionArgs(values, env) };
}

export async function runCli(argv: string[], io: CliIo = processIo, env: Env = process.env): Promise<number> {
  return runCommand('resume', io, () => argv.includes('--json'), async () => {
    const args = parseResumeArgs(argv, env);
    if (args === 'help') {
      io.out(helpText(usage, description, specs));
      return ExitCode.ok;
    }
    const reply = await withConnection(args.connection, (connection) => connection.call<ResumeRequest, PauseReply>('resume', { requestedBy: requesterName() }));
    const cluster = args.connection.cluster;
    io.out(args.connection.json ? JSON.stringify(pauseJson(cluster, reply), null, 2) : `cluster ${cluster} resumed: automatic failover is on (answered by ${reply.answeredBy})`);
    return ExitCode.ok;
  });
}

export const command = { name: 'resume', summary: 'leave maintenance mode', run: runCli };
