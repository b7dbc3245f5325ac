/**
 * Plain-TCP sockets (to backends, and from clients once logged in) read through Node's `onread`
 * into one buffer shared by every such socket of the process, instead of through the stream's
 * 'data' events. The 'data' path costs, per read, a fresh 64 KiB allocation shrunk to the bytes
 * read, a Buffer object, the Readable machinery and a nextTick; on a proxy that answers a point
 * select with one backend read, that was a measurable share of its CPU per query (see
 * bench/proxy-bench.ts).
 *
 * One buffer can serve every socket because a read's callback runs to completion before the
 * event loop reads another socket. The price is that a chunk dies when its callback returns:
 * whatever must outlive it (an unread partial frame, bytes handed to another socket's write) is
 * copied by the consumer first. TLS sockets keep the 'data' path (TLS reads in C++ underneath).
 * Client sockets, which Node accepts without `onread`, are moved over by `moveToSharedReads`.
 */

import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import * as tls from 'node:tls';

/** Node reads at most this much per call on the 'data' path too. */
const READ_BUFFER_SIZE = 64 * 1024;

const sharedReadBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);

/** Where a socket's reads go; the receiver can change (the login channel, then the connection). */
export class ReadRelay {
  /** Gets the shared buffer and how many of its first bytes were just read. */
  receiver: (buffer: Buffer, bytes: number) => void = () => undefined;

  /** Reads from now on are dropped (the owner closed the socket; a few may still arrive). */
  stop(): void {
    this.receiver = () => undefined;
  }

  /** net.connect options that read through this relay. */
  connectOptions(host: string, port: number): net.NetConnectOpts {
    return { host, port, onread: this.onread() };
  }

  onread(): net.OnReadOpts {
    return {
      buffer: sharedReadBuffer,
      callback: (bytes: number, buffer: Uint8Array): boolean => {
        this.receiver(buffer as Buffer, bytes);
        return true;
      },
    };
  }
}

/** The parts of a net.Socket's internal TCP handle that moving it relies on. */
interface MovableHandle {
  reading: boolean;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
}

function movableHandleOf(socket: net.Socket): MovableHandle | null {
  const handle = (socket as unknown as { _handle?: unknown })._handle;
  if (typeof handle !== 'object' || handle === null) return null;
  const h = handle as Partial<MovableHandle>;
  return typeof h.readStop === 'function' && typeof h.useUserBuffer === 'function' && typeof h.reading === 'boolean' ? (handle as MovableHandle) : null;
}

/**
 * A socket that reads through `relay`, made from one the server accepted — Node offers `onread`
 * only to net.connect, so the accepted socket's TCP handle moves into a new net.Socket built
 * with it. Null, leaving `socket` untouched, when the move is not clean: a TLS socket (reads
 * belong to TLS), bytes still buffered either way, or a Node whose socket internals no longer
 * look as expected; the caller then keeps reading 'data' events. The old socket object is
 * destroyed without its handle, which also takes it off the server's connection count.
 */
export function moveToSharedReads(socket: net.Socket, relay: ReadRelay): net.Socket | null {
  if (socket instanceof tls.TLSSocket || socket.destroyed || socket.writableLength > 0 || socket.readableLength > 0) return null;
  const handle = movableHandleOf(socket);
  if (handle === null) return null;
  if (handle.reading) {
    if (handle.readStop() !== 0) return null;
    handle.reading = false;
  }
  socket.removeAllListeners();
  (socket as unknown as { _handle: unknown })._handle = null;
  socket.on('error', () => undefined);
  socket.destroy();
  return new net.Socket({ handle, readable: true, writable: true, onread: relay.onread() } as net.SocketConstructorOpts);
}
