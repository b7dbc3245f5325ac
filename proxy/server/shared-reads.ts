/**
 * Plain-TCP backend sockets read through Node's `onread` into one buffer shared by every backend
 * socket of the process, instead of through the stream's 'data' events. The 'data' path costs,
 * per read, a fresh 64 KiB allocation shrunk to the bytes read, a Buffer object, the Readable
 * machinery and a nextTick; on a proxy that answers a point select with one backend read, that
 * was a measurable share of its CPU per query (see bench/proxy-bench.ts).
 *
 * One buffer can serve every socket because a read's callback runs to completion before the
 * event loop reads another socket. The price is that a chunk dies when its callback returns:
 * whatever must outlive it (an unread partial frame, bytes handed to another socket's write) is
 * copied by the consumer first. TLS sockets keep the 'data' path (TLS reads in C++ underneath).
 */

import * as net from 'node:net';

/** Node reads at most this much per call on the 'data' path too. */
const READ_BUFFER_SIZE = 64 * 1024;

const sharedReadBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);

/** Where a socket's reads go; the receiver can change (the login channel, then the connection). */
export class ReadRelay {
  receiver: (chunk: Buffer) => void = () => undefined;

  /** net.connect options that read through this relay. */
  connectOptions(host: string, port: number): net.NetConnectOpts {
    return {
      host,
      port,
      onread: {
        buffer: sharedReadBuffer,
        callback: (bytes: number, buffer: Uint8Array): boolean => {
          this.receiver((buffer as Buffer).subarray(0, bytes));
          return true;
        },
      },
    };
  }
}
