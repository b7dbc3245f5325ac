/**
 * `doltgate proxy --config proxy.yaml` runs the proxy until SIGTERM/SIGINT;
 * `doltgate proxy hash-password` reads a password on stdin and prints the two hashes a proxy
 * user entry needs, so plain passwords never go into a config file.
 */

import { hashProxyPassword } from './config';
import { runProxy } from './proxy-main';

const usage = `usage: doltgate proxy --config proxy.yaml
       doltgate proxy hash-password < password-file`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function proxyCommand(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${usage}\n\nRuns the MySQL-protocol proxy. See deploy/config/proxy.example.yaml for every option.\n`);
    return 0;
  }
  if (args[0] === 'hash-password') {
    const password = await readStdin();
    const hashes = hashProxyPassword(password);
    process.stdout.write(`native_password_hash: "${hashes.native_password_hash}"\ncaching_sha2_hash: "${hashes.caching_sha2_hash}"\n`);
    return 0;
  }
  const at = args.indexOf('--config');
  const configPath = at >= 0 ? args[at + 1] : undefined;
  if (!configPath) {
    process.stderr.write(`doltgate proxy: --config is required\n${usage}\n`);
    return 2;
  }
  const proxy = await runProxy(configPath);
  await new Promise<void>((resolve) => {
    const shutdown = (): void => {
      process.off('SIGTERM', shutdown);
      process.off('SIGINT', shutdown);
      resolve();
    };
    process.on('SIGTERM', shutdown);
    process.on('SIGINT', shutdown);
  });
  await proxy.stop();
  return 0;
}
