/**
 * The control subcommands of `doltgate`, in the order `--help` lists them. Each entry's `run`
 * takes the arguments after the subcommand name and resolves with the exit code (see cli-io.ts);
 * bin/doltgate.ts registers them beside proxy, agent and sandbox.
 */

import * as audit from './audit';
import * as failover from './failover';
import * as history from './history';
import * as outcome from './outcome';
import * as pause from './pause';
import * as resume from './resume';
import * as status from './status';
import * as switchover from './switchover';

export interface CliCommand {
  name: string;
  summary: string;
  run: (argv: string[]) => Promise<number>;
}

export const subcommands: readonly CliCommand[] = [status.command, switchover.command, failover.command, pause.command, resume.command, history.command, audit.command, outcome.command].map(
  // Drop the optional io/env parameters: the table's callers pass argv only.
  (command): CliCommand => ({ name: command.name, summary: command.summary, run: (argv) => command.run(argv) }),
);

export { ExitCode } from './cli-io';
