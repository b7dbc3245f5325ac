/**
 * The packet exchange of a COM_CHANGE_USER, seen from the session: an AuthIO for the
 * ClientAuthenticator whose reads are fed by the session's command loop (`deliver`) and whose
 * writes go to the client socket, numbered from the sequence id after the COM_CHANGE_USER.
 * Dolt does not implement COM_CHANGE_USER ("command handling not implemented yet: 17"), and the
 * backend login is the proxy's anyway, so the proxy answers it itself: it re-authenticates the
 * client against the proxy users, then drops the session's backend connections and state.
 */

import type { Socket } from 'node:net';
import { frame } from '../protocol';
import type { AuthIO } from './packet-channel';

export class ChangeUserExchange implements AuthIO {
  /** Sequence id of the next packet, either way. */
  seq: number;
  private waiter: { resolve: (payload: Buffer) => void; reject: (error: Error) => void } | null = null;

  /**
   * `expect(seq)`: the session must read the client's next packet with this sequence id and
   * hand it to `deliver`.
   */
  constructor(
    private readonly socket: Socket,
    firstSequenceId: number,
    readonly isTls: boolean,
    private readonly expect: (sequenceId: number) => void,
  ) {
    this.seq = firstSequenceId & 0xff;
  }

  /** A read is outstanding: the session's next client packet belongs here. */
  get waiting(): boolean {
    return this.waiter !== null;
  }

  readPacket(): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.expect(this.seq);
    });
  }

  writePacket(payload: Uint8Array): void {
    this.socket.write(frame(this.seq, payload));
    this.seq = (this.seq + 1) & 0xff;
  }

  /** The client's packet (a copy) and the sequence id of its last frame. */
  deliver(payload: Buffer, lastSequenceId: number): void {
    const w = this.waiter;
    this.waiter = null;
    this.seq = (lastSequenceId + 1) & 0xff;
    w?.resolve(payload);
  }

  /** The client went away mid-exchange. */
  abandon(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.reject(new Error('connection closed during COM_CHANGE_USER'));
  }
}
