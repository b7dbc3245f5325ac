#!/usr/bin/env node
/**
 * The one `doltgate` command. Subcommands are listed with the state they are in, so `--help`
 * never promises a part that is not built yet.
 */

import { agentCommand } from '../agent/agent-main';
import { proxyCommand } from '../proxy/proxy-command';
import { sandboxCommand } from '../sandbox/sandbox-command';
import { subcommands as controlSubcommands } from '../cli';

interface Subcommand {
  name: string;
  summary: string;
  run?: (args: string[]) => Promise<number>;
}

const subcommands: Subcommand[] = [
  { name: 'proxy', summary: 'run the MySQL-protocol proxy (--config proxy.yaml; hash-password)', run: (args) => proxyCommand(args) },
  { name: 'agent', summary: 'run the HA agent beside one Dolt server (--config agent.yaml)', run: (args) => agentCommand(args) },
  // Every control subcommand cli/ has, in its order: a list kept here too left audit and outcome out.
  ...controlSubcommands,
  { name: 'sandbox', summary: 'a local cluster: etcd, three Dolt nodes, agents and a proxy (up [--detach] | down)', run: (args) => sandboxCommand(args) },
];

function usage(): string {
  const width = Math.max(...subcommands.map((command) => command.name.length));
  return [
    'usage: doltgate <command> [options]',
    '',
    'A failover-aware MySQL-protocol proxy and HA agents for Dolt.',
    '',
    'commands:',
    ...subcommands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    'Run `doltgate <command> --help` for a command\'s options.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = subcommands.find((candidate) => candidate.name === name);
  if (!command) {
    process.stderr.write(`doltgate: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  if (!command.run) {
    process.stderr.write(`doltgate ${name}: not built yet\n`);
    return 3;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: Error) => {
    process.stderr.write(`doltgate: ${error.message}\n`);
    process.exitCode = 1;
  },
);
