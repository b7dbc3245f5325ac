/**
 * Response bytes on their way from backend connections to one client socket. Frames of one
 * backend chunk lie back to back, so a run of them is gathered (`add`) and written to the client
 * once — at the end of the chunk (the sink's endBatch) or of the response, whichever comes first
 * (`flush`) — instead of once per frame. Gathered bytes live in the backend reader's memory, valid
 * until that reader's next push, so a flush must come before then; bytes the socket may keep
 * (socket.write holds its argument until the kernel has it) are copied unless they lie in a chunk
 * Node handed to the reader for good (BackendConnection.isBorrowedChunk).
 */

import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { copyRange, type PacketView } from '../protocol';
import type { BackendConnection } from './backend-connection';
import type { FlowControl } from './flow-control';

const EMPTY = Buffer.alloc(0);

export class ResponseBatch {
  /** [start, end) of `buffer`, a buffer of `conn`'s reader; conn null when nothing is gathered. */
  private conn: BackendConnection | null = null;
  private buffer: Buffer = EMPTY;
  private start = 0;
  private end = 0;

  constructor(
    private readonly socket: Socket,
    private readonly flow: FlowControl,
  ) {}

  /** Adds the view's frame(s), forwarded from `conn`, to what the next flush writes. */
  add(conn: BackendConnection, view: PacketView): void {
    const buf = view.buffer;
    if (this.conn === conn && this.buffer === buf && this.end === view.frameStart) {
      this.end = view.frameEnd;
      return;
    }
    if (this.conn !== null) this.flush();
    this.conn = conn;
    this.buffer = buf;
    this.start = view.frameStart;
    this.end = view.frameEnd;
  }

  /** Writes what was gathered, if anything, in one socket write; a full socket pauses the backend. */
  flush(): void {
    const conn = this.conn;
    if (conn === null) return;
    const buf = this.buffer;
    const start = this.start;
    const end = this.end;
    let bytes: Buffer;
    if (!conn.isBorrowedChunk(buf)) bytes = copyRange(buf, start, end);
    else bytes = start === 0 && end === buf.length ? buf : buf.subarray(start, end); // often the whole chunk
    this.conn = null;
    this.buffer = EMPTY;
    if (this.socket.destroyed) return;
    if (!this.socket.write(bytes)) this.flow.clientFull(conn);
  }
}
