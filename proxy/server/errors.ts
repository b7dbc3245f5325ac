/**
 * What the proxy itself tells a client when something fails: one class per failure, each with a
 * stable `code` (logs, the `errors{kind}` metric and tests key on it), and ONE function,
 * `errFrameForError`, that turns any error into a MySQL ERR packet — errno, SQLSTATE and a
 * message a person can act on. Errors of the wire codec (ProtocolError) and of the write hold
 * pass through the same function, so every ERR the proxy writes comes from here.
 *
 * Error numbers, chosen for what client libraries and retry logic already do with them:
 * - 1040 ER_CON_COUNT_ERROR (08004): max_client_connections reached; or a statement waited
 *   pool.queue_timeout_ms for one of the proxy's backend connections to a node (all
 *   pool.max_connections_per_node in use) or found the wait queue full; or too many
 *   connections are logging in (`login.max_handshaking`, `login.max_handshaking_per_address`);
 *   or the RSA exchange budget before login is spent for now. Nothing ran; retry.
 * - 1045 ER_ACCESS_DENIED_ERROR (28000): unknown user or wrong password.
 * - 1251 ER_NOT_SUPPORTED_AUTH_MODE (08004): an auth exchange the proxy cannot complete.
 * - 3159 ER_SECURE_TRANSPORT_REQUIRED: tls.required and the client did not upgrade.
 * - 1205 ER_LOCK_WAIT_TIMEOUT (HY000): a write waited the whole hold window for a primary. Retry
 *   loops treat 1205 as "try again later", and nothing ran.
 * - 1041 ER_OUT_OF_RESOURCES: the write hold queue was full; or a SET, PREPARE or long data
 *   would take a session (or the whole proxy) past its memory limits (`session_limits`). Nothing
 *   ran; the session lives on.
 * - 1461 ER_MAX_PREPARED_STMT_COUNT_REACHED (42000): the session holds
 *   session_limits.max_prepared_statements prepared statements already.
 * - 1213 ER_LOCK_DEADLOCK (40001): the open transaction was lost (failover, or the connection to
 *   the primary broke). SQLSTATE 40001 is what frameworks retry a whole transaction on, which is
 *   exactly what the client must do.
 * - 2013 CR_SERVER_LOST (HY000): the connection to the backend broke after the statement was sent;
 *   whether it ran is unknown. 2013 is the number every MySQL user knows as "lost connection
 *   during query", which carries the same uncertainty.
 * - 1105 ER_UNKNOWN_ERROR (HY000): no backend reachable, no topology yet, session state could not
 *   be restored on a new backend connection.
 * - 3948 ER_CLIENT_LOCAL_FILES_DISABLED (42000): LOAD DATA LOCAL INFILE is refused.
 * - 1227 ER_SPECIFIC_ACCESS_DENIED_ERROR (42000): CREATE USER, GRANT and the other account
 *   statements are refused: users live per node and would silently diverge. So are global SETs,
 *   PREPARE from a variable and routines whose body holds any of these (server-state-guard.ts).
 * - 1047 ER_UNKNOWN_COM_ERROR (08S01): a command byte the proxy does not forward.
 * - 1243 ER_UNKNOWN_STMT_HANDLER: a statement id the session never prepared (or closed).
 * - 4031 ER_CLIENT_INTERACTION_TIMEOUT: idle_timeout_ms passed with no command.
 * - 3024 ER_QUERY_TIMEOUT: query_timeout_ms passed while a backend was answering.
 * - 1317 ER_QUERY_INTERRUPTED (70100): KILL QUERY from another session of the same user.
 * - 1094 ER_NO_SUCH_THREAD / 1095 ER_KILL_DENIED_ERROR: KILL of an unknown id / another user's.
 * - 1835 ER_MALFORMED_PACKET: a command packet too short for its fields (connection kept).
 * - 1043 ER_HANDSHAKE_ERROR (08S01): bad or too slow handshake, or one closed for keeping the proxy
 *   waiting while others needed its slot.
 * Every message starts with "doltgate:" so a person can tell the proxy's errors from Dolt's.
 */

import { ErrorCode, errFrame, ProtocolError, sqlStateFor } from '../protocol';
import { HoldAbortedError, HoldEpisodeOverError, HoldQueueFullError, HoldTimeoutError } from '../hold/hold-errors';
import { notAnOutcomeToken } from '../../proto/outcome';

/** Client-side error number for "Lost connection to MySQL server during query". */
export const CR_SERVER_LOST = 2013;

export type ProxyErrorCode =
  | 'TOO_MANY_CONNECTIONS'
  | 'OUTCOME_TOKEN'
  | 'BACKEND_BUSY'
  | 'LOGIN_BUSY'
  | 'HANDSHAKES_FULL'
  | 'HANDSHAKE_EVICTED'
  | 'ACCESS_DENIED'
  | 'AUTH_NOT_SUPPORTED'
  | 'TLS_REQUIRED'
  | 'COMPRESSION_REFUSED'
  | 'HANDSHAKE_TIMEOUT'
  | 'IDLE_TIMEOUT'
  | 'QUERY_TIMEOUT'
  | 'UNKNOWN_COMMAND'
  | 'UNKNOWN_STATEMENT'
  | 'LOCAL_INFILE_REFUSED'
  | 'ACCOUNT_STATEMENT_REFUSED'
  | 'TRANSACTION_LOST'
  | 'SESSION_STATE_LOST'
  | 'OUTCOME_UNKNOWN'
  | 'READ_INTERRUPTED'
  | 'BACKEND_UNAVAILABLE'
  | 'BACKEND_READ_ONLY'
  | 'NO_TOPOLOGY'
  | 'STATE_REPLAY_FAILED'
  | 'BACKEND_PROTOCOL'
  | 'BACKEND_ERROR'
  | 'MALFORMED_COMMAND'
  | 'NO_SUCH_THREAD'
  | 'KILL_DENIED'
  | 'QUERY_INTERRUPTED'
  | 'SESSION_MEMORY_LIMIT'
  | 'SERVER_STATE_REFUSED'
  | 'SHUTTING_DOWN';

export abstract class ProxyError extends Error {
  abstract readonly code: ProxyErrorCode;
  readonly errno: number;
  readonly sqlState: string;

  protected constructor(message: string, errno: number, sqlState: string = sqlStateFor(errno)) {
    super(message);
    this.name = new.target.name;
    this.errno = errno;
    this.sqlState = sqlState;
  }
}

export class TooManyConnectionsError extends ProxyError {
  readonly code = 'TOO_MANY_CONNECTIONS';
  constructor(limit: number) {
    super(`doltgate: too many connections (max_client_connections is ${limit}); close idle connections or raise the limit`, ErrorCode.ER_CON_COUNT_ERROR);
  }
}

/**
 * Every backend connection the proxy may open to a node (its budget) is in use and none came
 * free in time, or too many statements already wait for one. Never a sign the node is down.
 */
/** Login work the proxy rations before a client has proven anything ran out for now. */
export class LoginBusyError extends ProxyError {
  readonly code = 'LOGIN_BUSY';
  constructor(what: string) {
    super(`doltgate: too many ${what} in progress; retry shortly, or connect with TLS`, ErrorCode.ER_CON_COUNT_ERROR);
  }
}

/** Handshakes (connections not logged in yet) are bounded apart from logged-in clients. */
export class HandshakeSlotsFullError extends ProxyError {
  readonly code = 'HANDSHAKES_FULL';
  constructor(detail: string) {
    super(`doltgate: too many connections logging in (${detail}); retry shortly`, ErrorCode.ER_CON_COUNT_ERROR);
  }
}

/** A handshake that kept the proxy waiting was closed to let a newer one in. */
export class HandshakeEvictedError extends ProxyError {
  readonly code = 'HANDSHAKE_EVICTED';
  constructor(waitedMs: number) {
    super(`doltgate: handshake closed after waiting ${Math.round(waitedMs)} ms for the client while others were logging in; reconnect`, ErrorCode.ER_HANDSHAKE_ERROR);
  }
}

export class BackendBusyError extends ProxyError {
  readonly code = 'BACKEND_BUSY';
  constructor(backend: string, detail: string) {
    super(`doltgate: no backend connection to ${backend} free: ${detail}; nothing ran, retry (or raise pool.max_connections_per_node)`, ErrorCode.ER_CON_COUNT_ERROR);
  }
}

export class AccessDeniedError extends ProxyError {
  readonly code = 'ACCESS_DENIED';
  constructor(user: string, usingPassword: boolean) {
    super(`Access denied for user '${user}'@'doltgate' (using password: ${usingPassword ? 'YES' : 'NO'})`, ErrorCode.ER_ACCESS_DENIED_ERROR);
  }
}

export class AuthNotSupportedError extends ProxyError {
  readonly code = 'AUTH_NOT_SUPPORTED';
  constructor(detail: string) {
    super(`doltgate: ${detail}`, ErrorCode.ER_NOT_SUPPORTED_AUTH_MODE);
  }
}

export class TlsRequiredError extends ProxyError {
  readonly code = 'TLS_REQUIRED';
  constructor() {
    super('doltgate: connections must use TLS (tls.required is set); connect with SSL/TLS enabled', ErrorCode.ER_SECURE_TRANSPORT_REQUIRED);
  }
}

/**
 * The client asked for the compressed protocol, which the proxy never offers: a client that
 * compresses anyway would send frames the proxy cannot read and hang on its read timeout, so it
 * hears this, uncompressed, at login, and the connection closes.
 */
export class CompressionRefusedError extends ProxyError {
  readonly code = 'COMPRESSION_REFUSED';
  constructor() {
    super('doltgate: the compressed protocol is not supported (the client set CLIENT_COMPRESS or zstd compression, which doltgate does not offer); connect without compression', ErrorCode.ER_NOT_SUPPORTED_YET);
  }
}

export class HandshakeTimeoutError extends ProxyError {
  readonly code = 'HANDSHAKE_TIMEOUT';
  constructor(ms: number) {
    super(`doltgate: handshake not completed within ${ms} ms; closing the connection`, ErrorCode.ER_HANDSHAKE_ERROR);
  }
}

export class IdleTimeoutError extends ProxyError {
  readonly code = 'IDLE_TIMEOUT';
  constructor(ms: number) {
    super(`doltgate: the client was inactive for ${ms} ms (idle_timeout_ms) and the connection is closed`, ErrorCode.ER_CLIENT_INTERACTION_TIMEOUT);
  }
}

export class QueryTimeoutError extends ProxyError {
  readonly code = 'QUERY_TIMEOUT';
  /** `couldNotStop`: why KILL QUERY did not stop it on Dolt; null when it did. */
  constructor(ms: number, backend: string, outcomeUnknown: boolean, couldNotStop: string | null) {
    super(
      couldNotStop === null
        ? `doltgate: the statement ran past query_timeout_ms (${ms} ms) on ${backend} and was stopped there (KILL QUERY)`
        : `doltgate: backend ${backend} did not finish answering within ${ms} ms (query_timeout_ms) and the statement could not be stopped there (${couldNotStop}), so it may still be running; its connection was closed` +
            (outcomeUnknown ? ' and whether the statement took effect is unknown' : ''),
      ErrorCode.ER_QUERY_TIMEOUT,
    );
  }
}

export class UnknownCommandError extends ProxyError {
  readonly code = 'UNKNOWN_COMMAND';
  constructor(command: number) {
    super(`doltgate: command 0x${command.toString(16).padStart(2, '0')} is not supported through the proxy`, ErrorCode.ER_UNKNOWN_COM_ERROR);
  }
}

export class UnknownStatementError extends ProxyError {
  readonly code = 'UNKNOWN_STATEMENT';
  constructor(id: number, command: string) {
    super(`Unknown prepared statement handler (${id}) given to ${command}`, ErrorCode.ER_UNKNOWN_STMT_HANDLER);
  }
}

export class LocalInfileRefusedError extends ProxyError {
  readonly code = 'LOCAL_INFILE_REFUSED';
  /** `why`: what stopped a session that may relay files; absent: the session may not. */
  constructor(why?: string) {
    super(
      why === undefined
        ? 'doltgate: LOAD DATA LOCAL INFILE is not allowed through the proxy for this user (proxy.yaml users[].allow_local_infile, off by default) or this client did not enable local files; load the file on the server with LOAD DATA INFILE, or send the rows as INSERT batches'
        : `doltgate: LOAD DATA LOCAL INFILE refused: ${why}`,
      ErrorCode.ER_CLIENT_LOCAL_FILES_DISABLED,
    );
  }
}

/** A statement that would change what the agents own on Dolt, or run SQL the proxy cannot see (server-state-guard.ts). */
export class ServerStateRefusedError extends ProxyError {
  readonly code = 'SERVER_STATE_REFUSED';
  constructor(message: string) {
    super(message, 1227, '42000');
  }
}

/**
 * Users and grants live outside the databases, per Dolt node: remote-based replication does not
 * carry them (test/integration/dolt-new-database-facts.test.ts), so one made through the proxy
 * would exist on the primary only and be gone after the next failover. Refused, never forwarded;
 * cluster replication carries them, and there they are forwarded (cluster-view.ts).
 */
export class AccountStatementRefusedError extends ProxyError {
  readonly code = 'ACCOUNT_STATEMENT_REFUSED';
  constructor() {
    super(
      'doltgate: CREATE/ALTER/DROP USER, GRANT, REVOKE and SET PASSWORD are refused through the proxy: Dolt keeps users per node and ' +
        'replication does not carry them, so they would vanish at the next failover. Create Dolt users on every node (deploy/OPERATIONS.md, ' +
        'create-users) and proxy users in proxy.yaml (users).',
      1227,
      '42000',
    );
  }
}

/** The session's transaction is gone: its primary connection was closed or broke. */
export class TransactionLostError extends ProxyError {
  readonly code = 'TRANSACTION_LOST';
  constructor(cause: string) {
    super(`doltgate: transaction rolled back: ${cause}; retry the transaction`, ErrorCode.ER_LOCK_DEADLOCK, '40001');
  }
}

/** Pinned session state (temporary tables, locks, user variables) lived on a primary connection that is gone. */
export class SessionStateLostError extends ProxyError {
  readonly code = 'SESSION_STATE_LOST';
  constructor(cause: string, pins: readonly string[]) {
    super(`doltgate: session state (${pins.join(', ')}) was lost: ${cause}; recreate it (temporary tables, locks, user variables) and retry`, ErrorCode.ER_UNKNOWN_ERROR);
  }
}

/** The backend connection broke after a statement that may write was sent. */
export class OutcomeUnknownError extends ProxyError {
  readonly code = 'OUTCOME_UNKNOWN';
  constructor(
    backend: string,
    cause: string,
    /** Names the commit it would have made (outcome-token.ts); null when it had none. */
    readonly outcomeToken: string | null = null,
  ) {
    super(
      outcomeToken === null
        ? `doltgate: lost the connection to ${backend} after the statement was sent (${cause}); whether it took effect is unknown — check before retrying`
        : `doltgate: lost the connection to ${backend} after the statement was sent (${cause}); whether it committed is unknown — outcome token ${outcomeToken}: ask SELECT doltgate_outcome('${outcomeToken}') through the proxy, or doltgate outcome ${outcomeToken}, before retrying`,
      CR_SERVER_LOST,
      'HY000',
    );
  }
}

/** SELECT doltgate_outcome('...') with something that is not an outcome token. */
export class OutcomeTokenError extends ProxyError {
  readonly code = 'OUTCOME_TOKEN';
  constructor(token: string) {
    super(`doltgate: ${notAnOutcomeToken(token)}`, ErrorCode.ER_WRONG_ARGUMENTS, 'HY000');
  }
}

/** The backend connection broke during a read outside a transaction: nothing changed, retrying is safe. */
export class ReadInterruptedError extends ProxyError {
  readonly code = 'READ_INTERRUPTED';
  constructor(backend: string, cause: string) {
    super(`doltgate: lost the connection to ${backend} during a read (${cause}); nothing was changed, retry the query`, CR_SERVER_LOST, 'HY000');
  }
}

export class BackendUnavailableError extends ProxyError {
  readonly code = 'BACKEND_UNAVAILABLE';
  constructor(backend: string, detail: string) {
    super(`doltgate: cannot reach ${backend}: ${detail}`, ErrorCode.ER_UNKNOWN_ERROR);
  }
}

/** The primary answered but does not take writes (Dolt started read-only: it is being fenced). */
export class BackendReadOnlyError extends ProxyError {
  readonly code = 'BACKEND_READ_ONLY';
  constructor(backend: string) {
    super(`doltgate: ${backend} is read-only, so it is not a usable primary (it is fenced or failing over)`, ErrorCode.ER_UNKNOWN_ERROR);
  }
}

export class NoTopologyError extends ProxyError {
  readonly code = 'NO_TOPOLOGY';
  constructor(detail: string) {
    super(`doltgate: no usable topology yet (${detail}); check that etcd is reachable and an agent has published the cluster`, ErrorCode.ER_UNKNOWN_ERROR);
  }
}

/**
 * Replaying the session's database or settings on a backend connection failed. An unknown
 * database keeps MySQL's own errno (1049), so a login naming a missing database looks as usual.
 */
export class StateReplayError extends ProxyError {
  readonly code = 'STATE_REPLAY_FAILED';
  constructor(backend: string, what: string, detail: string, backendErrno = 0) {
    super(
      `doltgate: could not restore the session's ${what} on ${backend}: ${detail}`,
      backendErrno === ErrorCode.ER_BAD_DB_ERROR ? ErrorCode.ER_BAD_DB_ERROR : ErrorCode.ER_UNKNOWN_ERROR,
    );
  }
}

/** A backend broke the protocol (or answered the login with an error). */
export class BackendProtocolError extends ProxyError {
  readonly code = 'BACKEND_PROTOCOL';
  /** The backend answered with an ERR of its own (`serverErrno`); 0 for a protocol violation. */
  readonly serverErrno: number;
  constructor(backend: string, detail: string, serverErrno = 0) {
    super(`doltgate: backend ${backend}: ${detail}`, serverErrno !== 0 ? serverErrno : ErrorCode.ER_UNKNOWN_ERROR);
    this.serverErrno = serverErrno;
  }
}

/** An ERR a backend answered to a command the proxy ran for the client (a lazy re-prepare): passed on as it was. */
export class BackendErrorReply extends ProxyError {
  readonly code = 'BACKEND_ERROR';
  constructor(errno: number, sqlState: string, message: string) {
    super(message, errno, /^[0-9A-Z]{5}$/.test(sqlState) ? sqlState : sqlStateFor(errno));
  }
}

/** A command packet too short or otherwise malformed; the connection stays usable. */
export class MalformedCommandError extends ProxyError {
  readonly code = 'MALFORMED_COMMAND';
  constructor(detail: string) {
    super(`doltgate: malformed packet: ${detail}`, ErrorCode.ER_MALFORMED_PACKET);
  }
}

/** KILL of a connection id the proxy does not have (ids are the proxy's, not Dolt's). */
export class NoSuchThreadError extends ProxyError {
  readonly code = 'NO_SUCH_THREAD';
  constructor(id: number) {
    super(`Unknown thread id: ${id} (doltgate: KILL takes the proxy's connection ids, as shown in its greeting; CONNECTION_ID() returns Dolt's)`, 1094, 'HY000');
  }
}

export class KillDeniedError extends ProxyError {
  readonly code = 'KILL_DENIED';
  constructor(id: number) {
    super(`You are not owner of thread ${id}`, 1095, 'HY000');
  }
}

/** KILL QUERY cut this command: the proxy closed its backend connection. */
export class QueryInterruptedError extends ProxyError {
  readonly code = 'QUERY_INTERRUPTED';
  /** KILL QUERY while the statement waited for a backend connection: nothing was sent. */
  static beforeSending(): QueryInterruptedError {
    return new QueryInterruptedError(false, '', null, 'Query execution was interrupted (before doltgate sent it to Dolt)');
  }

  /** `couldNotStop`: why KILL QUERY did not stop it on Dolt; null when it did. */
  constructor(mayWrite: boolean, backend: string, couldNotStop: string | null, message?: string) {
    super(
      message ?? (couldNotStop === null
        ? `Query execution was interrupted (doltgate stopped it on ${backend} with KILL QUERY)`
        : `Query execution was interrupted, but doltgate could not stop it on ${backend} (${couldNotStop}), so it may still be running; doltgate closed its backend connection${mayWrite ? ' and whether the statement took effect is unknown' : ''}`),
      ErrorCode.ER_QUERY_INTERRUPTED,
    );
  }
}

export class ShuttingDownError extends ProxyError {
  readonly code = 'SHUTTING_DOWN';
  constructor() {
    super('doltgate: the proxy is shutting down', ErrorCode.ER_SERVER_SHUTDOWN);
  }
}

/** errno, SQLSTATE and message for any error the proxy may have to report to a client. */
export function describeForClient(error: unknown): { errno: number; sqlState: string; message: string; kind: string } {
  if (error instanceof ProxyError) return { errno: error.errno, sqlState: error.sqlState, message: error.message, kind: error.code };
  if (error instanceof ProtocolError) {
    return { errno: error.errno, sqlState: error.sqlState, message: `doltgate: ${error.message}`, kind: error.code };
  }
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof HoldTimeoutError) return { errno: ErrorCode.ER_LOCK_WAIT_TIMEOUT, sqlState: 'HY000', message, kind: error.code };
  // Not executed either way, so a driver's retry-on-lock-timeout is safe and right.
  if (error instanceof HoldEpisodeOverError) return { errno: ErrorCode.ER_LOCK_WAIT_TIMEOUT, sqlState: 'HY000', message, kind: error.code };
  if (error instanceof HoldQueueFullError) return { errno: ErrorCode.ER_OUT_OF_RESOURCES, sqlState: 'HY000', message, kind: error.code };
  if (error instanceof HoldAbortedError) return { errno: ErrorCode.ER_QUERY_INTERRUPTED, sqlState: '70100', message, kind: error.code };
  return { errno: ErrorCode.ER_UNKNOWN_ERROR, sqlState: 'HY000', message: `doltgate: internal error: ${message}`, kind: 'INTERNAL' };
}

/** The one place an error becomes an ERR packet. */
export function errFrameForError(sequenceId: number, error: unknown): Buffer {
  const d = describeForClient(error);
  return errFrame(sequenceId, d.errno, d.sqlState, d.message);
}

/** The stable `kind` label for logs and the errors metric. */
export function errorKind(error: unknown): string {
  return describeForClient(error).kind;
}

/**
 * A statement would take the session or the proxy past a memory limit (session-memory.ts): it was
 * not sent, and the session goes on. `errno` 1461 for the prepared-statement count, else 1041.
 */
export class SessionMemoryLimitError extends ProxyError {
  readonly code = 'SESSION_MEMORY_LIMIT';
  constructor(detail: string, errno: number = ErrorCode.ER_OUT_OF_RESOURCES) {
    super(`doltgate: ${detail}; nothing was sent and the session goes on`, errno);
  }
}
