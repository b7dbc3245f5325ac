/** Waiting for a benchmark's child process to listen. */

import * as net from 'node:net';
import type { ManagedChild } from '../common/child-process';

/** Resolves once something accepts TCP on the port; rejects if the child exits or time runs out. */
export async function waitForPort(port: number, child: ManagedChild, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (!child.running) throw new Error(`exited (${JSON.stringify(child.lastExit)}) before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`did not listen on ${port} within ${withinMs} ms`);
}
