/**
 * The one error class of the control server: a gRPC status code for transports and clients in
 * general, a stable `doltgate-code` (sent as trailing metadata) for the doltgate CLI, and a
 * sentence a person can act on. Every failure a handler can meet is turned into one of these by
 * `asControlError`, so the mapping from store errors to status codes lives in one place.
 */

import * as grpc from '@grpc/grpc-js';
import { controlErrorCodeKey, type ControlErrorCode } from '../../proto/control-types';
import { StoreUnavailableError } from '../store/cluster-store';

const statusOf: Readonly<Record<ControlErrorCode, grpc.status>> = {
  'unknown-node': grpc.status.INVALID_ARGUMENT,
  'bad-request': grpc.status.INVALID_ARGUMENT,
  refused: grpc.status.FAILED_PRECONDITION,
  'op-in-progress': grpc.status.FAILED_PRECONDITION,
  'etcd-unavailable': grpc.status.UNAVAILABLE,
  'agent-stopping': grpc.status.UNAVAILABLE,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  'op-not-found': grpc.status.NOT_FOUND,
  'op-unclaimed': grpc.status.DEADLINE_EXCEEDED,
  'dolt-unavailable': grpc.status.UNAVAILABLE,
  internal: grpc.status.INTERNAL,
};

export class ControlError extends Error {
  readonly status: grpc.status;
  constructor(readonly code: ControlErrorCode, message: string) {
    super(message);
    this.status = statusOf[code];
  }

  /** The shape grpc-js sends as the call's final status. */
  toServiceError(): grpc.ServerErrorResponse {
    const metadata = new grpc.Metadata();
    metadata.set(controlErrorCodeKey, this.code);
    return Object.assign(new Error(this.message), { code: this.status, details: this.message, metadata });
  }
}

/** Any error a handler caught, as a ControlError: etcd trouble is UNAVAILABLE, the unforeseen INTERNAL. */
export function asControlError(error: unknown): ControlError {
  if (error instanceof ControlError) return error;
  if (error instanceof StoreUnavailableError) return new ControlError('etcd-unavailable', error.message);
  const message = error instanceof Error ? error.message : String(error);
  return new ControlError('internal', `internal error: ${message}`);
}
