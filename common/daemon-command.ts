/**
 * The shape every long-running `doltgate` subcommand shares: `--help`, a required `--config`,
 * start, then run until SIGTERM or SIGINT and stop cleanly.
 */

export function waitForStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(signal);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

export interface DaemonSpec {
  name: string;
  usage: string;
  help: string;
  start(configPath: string): Promise<{ stop(): Promise<void> }>;
}

export async function runDaemonCommand(spec: DaemonSpec, args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${spec.usage}\n\n${spec.help}\n`);
    return 0;
  }
  const at = args.indexOf('--config');
  const configPath = at >= 0 ? args[at + 1] : undefined;
  if (!configPath) {
    process.stderr.write(`doltgate ${spec.name}: --config is required\n${spec.usage}\n`);
    return 2;
  }
  const running = await spec.start(configPath);
  await waitForStopSignal();
  await running.stop();
  return 0;
}
