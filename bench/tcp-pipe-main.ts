/**
 * The baseline pipe as its own process, so the benchmark can read its CPU time from /proc:
 *   node dist/bench/tcp-pipe-main.js <listen-port> <target-host> <target-port>
 * Listens on 127.0.0.1, prints one JSON line `{"listening":<port>}` on stdout once ready, and
 * exits cleanly on SIGTERM or SIGINT.
 */

import { startTcpPipe } from './tcp-pipe';

async function main(): Promise<void> {
  const [listenPort, targetHost, targetPort] = process.argv.slice(2);
  if (listenPort === undefined || targetHost === undefined || targetPort === undefined) {
    process.stderr.write('usage: tcp-pipe-main <listen-port> <target-host> <target-port>\n');
    process.exit(2);
  }
  const pipe = await startTcpPipe({ listenHost: '127.0.0.1', listenPort: Number(listenPort), targetHost, targetPort: Number(targetPort) });
  process.stdout.write(JSON.stringify({ listening: pipe.port }) + '\n');
  const stop = (): void => {
    void pipe.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`tcp pipe failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
