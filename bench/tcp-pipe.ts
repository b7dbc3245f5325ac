/**
 * The benchmark's baseline: the cheapest possible TCP proxy in Node. Each accepted client socket
 * gets a new socket to the backend and bytes are piped both ways untouched, with Nagle off on
 * both sides (MySQL exchanges small request/response packets; Nagle would add latency the real
 * proxy does not have). No parsing, no pooling, no routing — whatever doltgate costs above this
 * is the price of understanding the protocol.
 *
 * A failure on either side destroys both sockets: a half-open pipe would leave the client
 * waiting for an answer that cannot come.
 */

import * as net from 'node:net';

export interface TcpPipeOptions {
  listenHost: string;
  /** 0 picks a free port; read `port` on the result. */
  listenPort: number;
  targetHost: string;
  targetPort: number;
}

export interface TcpPipe {
  readonly port: number;
  /** Client connections open now. */
  readonly connections: number;
  /** Stops listening and destroys every open pair of sockets. */
  close(): Promise<void>;
}

export async function startTcpPipe(options: TcpPipeOptions): Promise<TcpPipe> {
  const open = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (client) => {
    const backend = net.connect({ host: options.targetHost, port: options.targetPort, noDelay: true });
    open.add(client);
    const teardown = (): void => {
      open.delete(client);
      client.destroy();
      backend.destroy();
    };
    client.on('error', teardown).on('close', teardown);
    backend.on('error', teardown).on('close', teardown);
    // Writes made before the backend connects are queued by the socket itself.
    client.pipe(backend);
    backend.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.listenHost, port: options.listenPort }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get connections() {
      return open.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
