/**
 * Failures of the wire codec, one class per failure, each with a stable string `code` that
 * logs, metrics and tests key on, and the MySQL `errno` + `sqlState` the proxy should answer
 * with if it tells the peer before closing. The codec throws these; it never throws for a
 * condition that is normal on a healthy connection (an incomplete frame is `null`, not an error).
 *
 * Every one of them means the byte stream can no longer be trusted: the connection that
 * produced it is to be closed, never reused (a reader that threw keeps throwing the same error).
 * Plain `Error`s from this folder are programming mistakes in the caller, not peer behaviour.
 */

import { ErrorCode, sqlStateFor } from './constants';

export const enum ProtocolErrorCode {
  PACKET_TOO_LARGE = 'PACKET_TOO_LARGE',
  PACKET_OUT_OF_ORDER = 'PACKET_OUT_OF_ORDER',
  MALFORMED_PACKET = 'MALFORMED_PACKET',
  UNEXPECTED_PACKET = 'UNEXPECTED_PACKET',
  UNSUPPORTED_COMMAND = 'UNSUPPORTED_COMMAND',
}

/** Base of every codec failure; `instanceof ProtocolError` catches them all. */
export abstract class ProtocolError extends Error {
  abstract readonly code: ProtocolErrorCode;
  readonly errno: number;
  readonly sqlState: string;

  protected constructor(message: string, errno: number) {
    super(message);
    this.name = new.target.name;
    this.errno = errno;
    this.sqlState = sqlStateFor(errno);
  }
}

/** A frame header declared a logical packet larger than the configured maximum. */
export class PacketTooLargeError extends ProtocolError {
  readonly code = ProtocolErrorCode.PACKET_TOO_LARGE;
  constructor(
    readonly declaredLength: number,
    readonly maxPacketSize: number,
  ) {
    super(
      `packet of at least ${declaredLength} bytes exceeds the limit of ${maxPacketSize} bytes ` +
        `(raise max_allowed_packet on the proxy, or send smaller statements)`,
      ErrorCode.ER_NET_PACKET_TOO_LARGE,
    );
  }
}

/** A frame carried a sequence id other than the one the exchange requires. */
export class PacketOutOfOrderError extends ProtocolError {
  readonly code = ProtocolErrorCode.PACKET_OUT_OF_ORDER;
  constructor(
    readonly expectedSequenceId: number,
    readonly actualSequenceId: number,
  ) {
    super(
      `got packet sequence id ${actualSequenceId}, expected ${expectedSequenceId}`,
      ErrorCode.ER_NET_PACKETS_OUT_OF_ORDER,
    );
  }
}

/** A payload was shorter than its structure or held an impossible value. */
export class MalformedPacketError extends ProtocolError {
  readonly code = ProtocolErrorCode.MALFORMED_PACKET;
  /** `errno` lets handshake parsing answer ER_HANDSHAKE_ERROR ("Bad handshake") like MySQL does. */
  constructor(what: string, errno: number = ErrorCode.ER_MALFORMED_PACKET) {
    super(`malformed packet: ${what}`, errno);
  }
}

/** A well-formed packet arrived where the response grammar allows none of its kind. */
export class UnexpectedPacketError extends ProtocolError {
  readonly code = ProtocolErrorCode.UNEXPECTED_PACKET;
  constructor(
    readonly state: string,
    readonly firstByte: number,
    readonly payloadLength: number,
  ) {
    super(
      `unexpected packet (first byte 0x${firstByte.toString(16).padStart(2, '0')}, ` +
        `${payloadLength} bytes) while ${state}`,
      ErrorCode.ER_NET_READ_ERROR,
    );
  }
}

/** A command whose response the tracker cannot delimit (replication, clone, ...). */
export class UnsupportedCommandError extends ProtocolError {
  readonly code = ProtocolErrorCode.UNSUPPORTED_COMMAND;
  constructor(readonly command: number) {
    super(
      `command 0x${command.toString(16).padStart(2, '0')} is not supported through the proxy`,
      ErrorCode.ER_UNKNOWN_COM_ERROR,
    );
  }
}
