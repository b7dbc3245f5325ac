/**
 * Free TCP ports on 127.0.0.1. The kernel picks a port by binding to 0; we remember what we handed
 * out so that two callers in one process never get the same port even before either binds it.
 */

import * as net from 'node:net';

const handedOut = new Set<number>();

/** A port the kernel had free a moment ago, without remembering it (for long-lived daemons). */
export function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await bindEphemeral();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free port on 127.0.0.1 after 50 attempts');
}

export async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  return ports;
}
