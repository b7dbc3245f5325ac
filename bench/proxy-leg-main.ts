/**
 * The doltgate proxy as its own process, so the benchmark can read its CPU time from /proc:
 *   node dist/bench/proxy-leg-main.js <proxy.yaml> [module]
 * It loads `runProxy(configPath)` from proxy/proxy-main (or the given module: another build to
 * compare, or a stand-in to check the benchmark itself) at run time (not at compile time: the
 * benchmark must build and run before the proxy exists). When that module cannot be loaded it
 * says why on stderr and exits with code 3, which the benchmark reports as "proxy not built".
 * On SIGTERM/SIGINT it stops the proxy (if runProxy returned something with stop() or close())
 * and exits.
 */

import { join } from 'node:path';

export const PROXY_NOT_BUILT_EXIT = 3;

type RunProxy = (configPath: string) => unknown;

export const defaultProxyModule = join(__dirname, '..', 'proxy', 'proxy-main.js');

function loadRunProxy(modulePath: string): RunProxy | string {
  try {
    // A plain require keeps the compiler from resolving the module: it may not exist yet.
    const loaded = require(modulePath) as { runProxy?: unknown };
    if (typeof loaded.runProxy !== 'function') return `${modulePath} does not export runProxy(configPath)`;
    return loaded.runProxy as RunProxy;
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
}

async function stopHandle(handle: unknown): Promise<void> {
  const h = handle as { stop?: () => unknown; close?: () => unknown } | null | undefined;
  if (typeof h?.stop === 'function') await h.stop();
  else if (typeof h?.close === 'function') await h.close();
}

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (!configPath) {
    process.stderr.write('usage: proxy-leg-main <proxy.yaml>\n');
    process.exit(2);
  }
  const runProxy = loadRunProxy(process.argv[3] ?? defaultProxyModule);
  if (typeof runProxy === 'string') {
    process.stderr.write(`proxy not built: ${runProxy}\n`);
    process.exit(PROXY_NOT_BUILT_EXIT);
  }
  // Signals are handled before runProxy settles: it may resolve only once the proxy stops.
  let handle: unknown;
  const stop = (): void => {
    // Never outstay a stop request: the benchmark waits on this process.
    setTimeout(() => process.exit(0), 5000).unref();
    stopHandle(handle).then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  handle = await runProxy(configPath);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`proxy failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  });
}
