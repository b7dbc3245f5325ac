/**
 * Backpressure between one client socket and the backend connections of its session, so a slow
 * reader or a huge upload never makes the proxy buffer without bound:
 *
 * - client → backend: while a command over 16 MiB streams to a backend whose socket is full,
 *   the client socket is paused until that backend socket drains (`backendFull`);
 * - backend → client: when the client socket is full, the backend connection answering is
 *   paused until the client drains (`clientFull`);
 * - bytes the client sends while a command runs pile up in its reader; past `highWater` the
 *   client socket is paused until the session reads commands again (`bufferFull` / `bufferRead`).
 *
 * The client socket is paused while any of its reasons holds, and flows otherwise. One bound
 * handler per direction; no closure per packet.
 */

import type { Socket } from 'node:net';
import type { BackendConnection } from './backend-connection';

export class FlowControl {
  private pausedForBuffer = false;
  private pausedForBackend = false;
  private waitingOn: BackendConnection | null = null;
  private pausedBackend: BackendConnection | null = null;
  private stopped = false;

  private readonly onClientDrain = (): void => {
    const b = this.pausedBackend;
    this.pausedBackend = null;
    if (b !== null && !b.isClosed) b.resume();
  };

  private readonly onBackendDrain = (): void => {
    this.waitingOn = null;
    this.pausedForBackend = false;
    this.apply();
  };

  constructor(
    private socket: Socket,
    readonly highWater: number,
  ) {}

  /** The session's socket from now on (a TLSSocket after the upgrade). */
  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('drain', this.onClientDrain);
  }

  /** The client's reader holds `buffered` bytes the session is not reading yet. */
  bufferFull(buffered: number): void {
    if (buffered > this.highWater && !this.pausedForBuffer) {
      this.pausedForBuffer = true;
      this.apply();
    }
  }

  /** The session reads client commands again. */
  bufferRead(): void {
    if (!this.pausedForBuffer) return;
    this.pausedForBuffer = false;
    this.apply();
  }

  /** A write to `conn` returned false: pause the client until it drains. */
  backendFull(conn: BackendConnection): void {
    if (this.pausedForBackend) return;
    this.pausedForBackend = true;
    this.waitingOn = conn;
    this.apply();
    conn.socket.once('drain', this.onBackendDrain);
  }

  /** A write to the client returned false: pause `conn` until the client drains. */
  clientFull(conn: BackendConnection): void {
    if (this.pausedBackend !== null) return;
    this.pausedBackend = conn;
    conn.pause();
  }

  /** `conn` is gone: nothing waits on it any more. */
  forget(conn: BackendConnection): void {
    if (this.pausedBackend === conn) this.pausedBackend = null;
    if (this.waitingOn === conn) {
      conn.socket.off('drain', this.onBackendDrain);
      this.waitingOn = null;
      this.pausedForBackend = false;
      this.apply();
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private apply(): void {
    if (this.stopped) return;
    if (this.pausedForBuffer || this.pausedForBackend) this.socket.pause();
    else this.socket.resume();
  }
}
