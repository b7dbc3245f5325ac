/**
 * `doltgate proxy --config proxy.yaml` runs the proxy until SIGTERM/SIGINT;
 * `doltgate proxy hash-password` reads a password on stdin and prints the two hashes a proxy
 * user entry needs, so plain passwords never go into a config file.
 */

import { Buffer } from 'node:buffer';
import { runDaemonCommand } from '../common/daemon-command';
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
  if (args[0] === 'hash-password') {
    const hashes = hashProxyPassword(await readStdin());
    process.stdout.write(`native_password_hash: "${hashes.native_password_hash}"\ncaching_sha2_hash: "${hashes.caching_sha2_hash}"\n`);
    return 0;
  }
  return runDaemonCommand(
    {
      name: 'proxy',
      usage,
      help: 'Runs the MySQL-protocol proxy. deploy/config/proxy.example.yaml documents every option.',
      start: (configPath) => runProxy(configPath),
    },
    args,
  );
}
