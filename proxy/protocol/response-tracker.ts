/**
 * Where a backend's response to one command ends, and the status it ends in. The proxy tells
 * the tracker which command it sent (`begin`), then shows it every server packet it forwards
 * (`feed`); each call answers with a `ResponseStep`. `Done` means the backend is idle again and
 * `statusFlags` holds the final SERVER_STATUS_* bits, which is how the proxy learns whether the
 * session is inside a transaction: from the protocol, never from guessing at SQL.
 *
 * The tracker reads only the first byte and length of each packet, plus a count or status word
 * at a fixed place in the few packets that carry one; it never looks inside rows. Grammar:
 *
 *   result      := OK | ERR | LOCAL_INFILE (client data) (OK | ERR)
 *                | column-count column-def{n} [EOF] row* (EOF | OK-0xFE | ERR)
 *   response    := result (while the terminator has SERVER_MORE_RESULTS_EXISTS: result)
 *   prepare     := ERR | PREPARE_OK param-def{p} [EOF] column-def{c} [EOF]
 *   field list  := column-def* (EOF | OK-0xFE) | ERR
 *   statistics  := one raw string packet | ERR
 *   others      := OK | ERR | EOF (COM_SET_OPTION, COM_DEBUG answer EOF)
 *
 * ([EOF] is absent under CLIENT_DEPRECATE_EOF, where OK-0xFE ends rows instead of EOF.) A first
 * byte means different things at different places, which is why this is a state machine and
 * not a classifier: 0xFB is LOCAL INFILE only as a result's first packet (in a text row it is a
 * NULL), 0x00 is OK only there too (a binary row starts with 0x00), and 0xFE ends rows only when
 * short (EOF < 9 bytes; OK-0xFE < 0xFFFFFF) because a row whose first value is >= 16 MiB starts
 * with 0xFE too. An execute that opened a cursor (SERVER_STATUS_CURSOR_EXISTS) sends no rows; its
 * response is done at the EOF after the column definitions, and rows come with COM_STMT_FETCH.
 *
 * Assumes the negotiated capabilities exclude CLIENT_OPTIONAL_RESULTSET_METADATA (see
 * PROXY_SUPPORTED_CAPABILITIES). After `LocalInfile` the client's file packets use sequence ids
 * the backend reader did not see; the owner must `resetSequence` it before the final OK/ERR.
 * A packet the grammar does not allow throws UnexpectedPacketError and the connection is bad.
 */

import { Capability, Command, MAX_FRAME_PAYLOAD, ResponseHeader, ServerStatus } from './constants';
import { FOLLOW_UP_INSERT_ID, leavesFollowUpOf, statusFlagsOf } from './decode';
import { UnexpectedPacketError, UnsupportedCommandError } from './errors';
import type { PacketView } from './packet-reader';

export const enum ResponseStep {
  /** The response continues: forward the packet and keep reading. */
  More = 0,
  /** The packet completed the response; the backend is idle and the fields below are final. */
  Done = 1,
  /**
   * LOCAL INFILE request (payload: 0xFB + file name). The client side must now send the file
   * and an empty packet (or just an empty packet, to refuse); the server answers OK or ERR.
   */
  LocalInfile = 2,
  /**
   * COM_CHANGE_USER auth exchange: an AuthSwitchRequest (0xFE) or AuthMoreData (0x01). The
   * proxy decides what the client sends back; the response continues with OK or ERR.
   */
  AuthData = 3,
  /**
   * ERR with no command outstanding: the server is about to close the connection (shutdown,
   * idle timeout, KILL). `errno` says which.
   */
  UnsolicitedError = 4,
}

const enum State {
  Idle,
  ResultStart,
  AfterLocalInfile,
  ColumnDefs,
  ColumnsEof,
  Rows,
  PrepareFirst,
  PrepareParams,
  PrepareParamsEof,
  PrepareColumns,
  PrepareColumnsEof,
  FieldList,
  Single,
  Statistics,
  ChangeUser,
}

/** Readable state names for errors. */
const STATE_NAMES = [
  'idle',
  'expecting a result',
  'expecting OK/ERR after LOCAL INFILE data',
  'reading column definitions',
  'expecting EOF after column definitions',
  'reading rows',
  'expecting COM_STMT_PREPARE_OK',
  'reading parameter definitions',
  'expecting EOF after parameter definitions',
  'reading prepared column definitions',
  'expecting EOF after prepared column definitions',
  'reading COM_FIELD_LIST columns',
  'expecting OK/ERR/EOF',
  'expecting COM_STATISTICS text',
  'in COM_CHANGE_USER authentication',
];

const NO_RESPONSE = 0xfe;
const UNSUPPORTED = 0xff;

/** First state for each command byte; commands MySQL does not know are answered with one ERR. */
const FIRST_STATE: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(State.Single);
  t[Command.COM_QUIT] = NO_RESPONSE;
  t[Command.COM_QUERY] = State.ResultStart;
  t[Command.COM_PROCESS_INFO] = State.ResultStart;
  t[Command.COM_STMT_EXECUTE] = State.ResultStart;
  t[Command.COM_FIELD_LIST] = State.FieldList;
  t[Command.COM_STATISTICS] = State.Statistics;
  t[Command.COM_CHANGE_USER] = State.ChangeUser;
  t[Command.COM_STMT_PREPARE] = State.PrepareFirst;
  t[Command.COM_STMT_FETCH] = State.Rows;
  t[Command.COM_STMT_SEND_LONG_DATA] = NO_RESPONSE;
  t[Command.COM_STMT_CLOSE] = NO_RESPONSE;
  // Replication and clone switch the connection to a stream that never "ends".
  t[Command.COM_BINLOG_DUMP] = UNSUPPORTED;
  t[Command.COM_REGISTER_SLAVE] = UNSUPPORTED;
  t[Command.COM_BINLOG_DUMP_GTID] = UNSUPPORTED;
  t[Command.COM_CLONE] = UNSUPPORTED;
  return t;
})();

/** Whether the server answers `command` at all (COM_QUIT, STMT_CLOSE, SEND_LONG_DATA: no). */
export function expectsResponse(command: number): boolean {
  const s = FIRST_STATE[command & 0xff];
  return s !== NO_RESPONSE && s !== UNSUPPORTED;
}

/** Whether the tracker can delimit the response to `command`. */
export function isTrackableCommand(command: number): boolean {
  return FIRST_STATE[command & 0xff] !== UNSUPPORTED;
}

export class ResponseTracker {
  /** Negotiated capabilities of the backend connection; set after its handshake. */
  capabilities: number;

  private status: number;
  private lastErrno = 0;
  private current = -1;
  private results = 0;
  private followUp = false;
  private insertId = false;
  private stmtId = 0;
  private columns = 0;
  private params = 0;
  private state: State = State.Idle;
  private remaining = 0;
  /** Step earned by a multi-frame packet, reported at its last frame. */
  private deferred: ResponseStep = ResponseStep.More;

  /** `statusFlags`: the status of the backend's handshake (or of the last response seen). */
  constructor(capabilities: number, statusFlags = 0) {
    this.capabilities = capabilities;
    this.status = statusFlags;
  }

  /**
   * Last status flags the server reported. Responses that carry none (ERR, COM_STATISTICS,
   * COM_STMT_PREPARE under DEPRECATE_EOF) leave them as they were; note an ERR that rolled the
   * transaction back (ER_LOCK_DEADLOCK) therefore leaves IN_TRANS stale until the next OK/EOF.
   */
  get statusFlags(): number {
    return this.status;
  }

  /** ERR number that ended the current/last response, 0 if it did not end in ERR. */
  get errno(): number {
    return this.lastErrno;
  }

  /**
   * The current/last response left a LAST_INSERT_ID() value, warnings or an error on the
   * connection (leavesFollowUpOf): a statement that follows may need this very connection.
   */
  get leavesFollowUp(): boolean {
    return this.followUp;
  }

  /**
   * Some response since `forgetInsertId` set an insert id: LAST_INSERT_ID() on this connection
   * answers it, whatever ran after (test/integration/dolt-multiplexing-facts.test.ts).
   */
  get holdsInsertId(): boolean {
    return this.insertId;
  }

  /** After COM_RESET_CONNECTION, which sets LAST_INSERT_ID back to 0. */
  forgetInsertId(): void {
    this.insertId = false;
  }

  /** The command being answered, or -1 when idle. */
  get command(): number {
    return this.current;
  }

  /** Results completed so far in this response (1 + number of MORE_RESULTS chainings). */
  get resultCount(): number {
    return this.results;
  }

  /** Statement id from the last successful COM_STMT_PREPARE_OK. */
  get statementId(): number {
    return this.stmtId;
  }

  /** Result columns of the last prepared statement. */
  get columnCount(): number {
    return this.columns;
  }

  /** Parameters of the last prepared statement. */
  get paramCount(): number {
    return this.params;
  }

  get isIdle(): boolean {
    return this.state === State.Idle;
  }

  /**
   * Reading rows: every packet up to the one that ends them (first byte 0xFE or 0xFF) is a row
   * that `feed` would answer with `More` and no change of state, so the owner may forward a
   * run of them (PacketReader.nextRunViewUntilNextRead(0xFE)) without feeding them.
   */
  get inRows(): boolean {
    return this.state === State.Rows && this.deferred === ResponseStep.More;
  }

  get inTransaction(): boolean {
    return (this.status & ServerStatus.SERVER_STATUS_IN_TRANS) !== 0;
  }

  /**
   * Starts tracking the response to `command`; returns false when the server sends none (the
   * tracker stays idle). One command at a time: calling it mid-response is a caller bug.
   */
  begin(command: number): boolean {
    if (this.state !== State.Idle) {
      throw new Error(`ResponseTracker.begin(0x${command.toString(16)}) while ${STATE_NAMES[this.state]}`);
    }
    const first = FIRST_STATE[command & 0xff];
    if (first === UNSUPPORTED) throw new UnsupportedCommandError(command);
    this.lastErrno = 0;
    this.results = 0;
    this.followUp = false;
    this.deferred = ResponseStep.More;
    if (first === NO_RESPONSE) return false;
    this.current = command;
    this.state = first;
    return true;
  }

  /**
   * Feeds a reader view: a logical packet, or a frame from frame-by-frame reading. Continuation
   * frames carry no header byte and are skipped; if the packet they continue completed the
   * response, `Done` is reported with its last frame.
   */
  feed(view: PacketView): ResponseStep {
    if (!view.startsPacket) {
      if (!view.endsPacket || this.deferred === ResponseStep.More) return ResponseStep.More;
      const step = this.deferred;
      this.deferred = ResponseStep.More;
      return step;
    }
    const step = this.feedPayload(view.payloadBuffer, view.payloadStart, view.payloadLength);
    if (!view.endsPacket && step !== ResponseStep.More) {
      this.deferred = step;
      return ResponseStep.More;
    }
    return step;
  }

  /**
   * Feeds one packet given as its (first frame's) payload position and length. For a packet of
   * 16 MiB or more pass the first frame (length 0xFFFFFF) or the whole packet; never a
   * continuation frame.
   */
  feedPayload(buf: Buffer, start: number, length: number): ResponseStep {
    const first = length > 0 ? buf[start] : -1;
    switch (this.state) {
      case State.Idle:
        if (first === ResponseHeader.ERR && length >= 3) {
          this.lastErrno = buf[start + 1] | (buf[start + 2] << 8);
          return ResponseStep.UnsolicitedError;
        }
        break;

      case State.ResultStart:
        if (first === ResponseHeader.OK) return this.endResult(buf, start, length);
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (first === ResponseHeader.LOCAL_INFILE) {
          this.state = State.AfterLocalInfile;
          return ResponseStep.LocalInfile;
        }
        if (first > 0 && first < ResponseHeader.LOCAL_INFILE) {
          this.remaining = first;
        } else if ((first === 0xfc && length >= 3) || (first === 0xfd && length >= 4)) {
          this.remaining = buf[start + 1] | (buf[start + 2] << 8) | (first === 0xfd ? buf[start + 3] << 16 : 0);
        } else {
          break;
        }
        this.state = State.ColumnDefs;
        return ResponseStep.More;

      case State.AfterLocalInfile:
        if (first === ResponseHeader.OK) return this.endResult(buf, start, length);
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        break;

      case State.ColumnDefs:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (--this.remaining === 0) this.state = this.deprecateEof() ? State.Rows : State.ColumnsEof;
        return ResponseStep.More;

      case State.ColumnsEof:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (first === ResponseHeader.EOF && length < 9) {
          const status = this.readStatus(buf, start, length);
          if ((status & ServerStatus.SERVER_STATUS_CURSOR_EXISTS) !== 0) return this.endResult(buf, start, length);
          this.state = State.Rows;
          return ResponseStep.More;
        }
        break;

      case State.Rows:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (first === ResponseHeader.EOF && length < (this.deprecateEof() ? MAX_FRAME_PAYLOAD : 9)) {
          return this.endResult(buf, start, length);
        }
        return ResponseStep.More;

      case State.PrepareFirst:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (first === ResponseHeader.OK && length >= 12) {
          this.stmtId = buf.readUInt32LE(start + 1);
          this.columns = buf[start + 5] | (buf[start + 6] << 8);
          this.params = buf[start + 7] | (buf[start + 8] << 8);
          this.results = 1;
          return this.afterPrepareParams(true);
        }
        break;

      case State.PrepareParams:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (--this.remaining === 0) return this.afterPrepareParams(false);
        return ResponseStep.More;

      case State.PrepareParamsEof:
        if (first === ResponseHeader.EOF && length < 9) {
          this.readStatus(buf, start, length);
          return this.startPrepareColumns();
        }
        break;

      case State.PrepareColumns:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (--this.remaining > 0) return ResponseStep.More;
        if (this.deprecateEof()) return this.finish();
        this.state = State.PrepareColumnsEof;
        return ResponseStep.More;

      case State.PrepareColumnsEof:
        if (first === ResponseHeader.EOF && length < 9) {
          this.readStatus(buf, start, length);
          return this.finish();
        }
        break;

      case State.FieldList:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        // Column definitions start with the lenenc catalog "def", never 0xFE.
        if (first === ResponseHeader.EOF && length < MAX_FRAME_PAYLOAD) {
          this.readStatus(buf, start, length);
          this.results = 1;
          return this.finish();
        }
        return ResponseStep.More;

      case State.Single:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (first === ResponseHeader.OK || first === ResponseHeader.EOF) {
          this.readStatus(buf, start, length);
          this.results = 1;
          return this.finish();
        }
        break;

      case State.Statistics:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        this.results = 1;
        return this.finish();

      case State.ChangeUser:
        if (first === ResponseHeader.ERR) return this.fail(buf, start, length);
        if (first === ResponseHeader.OK) {
          this.readStatus(buf, start, length);
          this.results = 1;
          return this.finish();
        }
        if (first === ResponseHeader.EOF || first === ResponseHeader.AUTH_MORE_DATA) return ResponseStep.AuthData;
        break;
    }
    throw new UnexpectedPacketError(STATE_NAMES[this.state], first, length);
  }

  private deprecateEof(): boolean {
    return (this.capabilities & Capability.CLIENT_DEPRECATE_EOF) !== 0;
  }

  /** Reads and records the status word of an OK/EOF; malformed ones are unexpected packets. */
  private readStatus(buf: Buffer, start: number, length: number): number {
    const status = statusFlagsOf(buf, start, length);
    if (status < 0) throw new UnexpectedPacketError(STATE_NAMES[this.state], buf[start], length);
    this.status = status;
    return status;
  }

  /** A result ended with OK/EOF: chain to the next one or finish the response. */
  private endResult(buf: Buffer, start: number, length: number): ResponseStep {
    const status = this.readStatus(buf, start, length);
    this.results++;
    const followUp = leavesFollowUpOf(buf, start, length);
    if (followUp !== 0) {
      this.followUp = true;
      if ((followUp & FOLLOW_UP_INSERT_ID) !== 0) this.insertId = true;
    }
    if ((status & ServerStatus.SERVER_MORE_RESULTS_EXISTS) !== 0) {
      this.state = State.ResultStart;
      return ResponseStep.More;
    }
    return this.finish();
  }

  /** ERR ends the whole response, even mid-chain: the server runs no later statement. */
  private fail(buf: Buffer, start: number, length: number): ResponseStep {
    if (length < 3) throw new UnexpectedPacketError(STATE_NAMES[this.state], ResponseHeader.ERR, length);
    this.lastErrno = buf[start + 1] | (buf[start + 2] << 8);
    this.results++;
    // SHOW WARNINGS after an error shows the error: as much a follow-up as a warning.
    this.followUp = true;
    return this.finish();
  }

  private afterPrepareParams(fromOk: boolean): ResponseStep {
    if (fromOk && this.params > 0) {
      this.remaining = this.params;
      this.state = State.PrepareParams;
      return ResponseStep.More;
    }
    if (!fromOk && !this.deprecateEof()) {
      this.state = State.PrepareParamsEof;
      return ResponseStep.More;
    }
    return this.startPrepareColumns();
  }

  private startPrepareColumns(): ResponseStep {
    if (this.columns === 0) return this.finish();
    this.remaining = this.columns;
    this.state = State.PrepareColumns;
    return ResponseStep.More;
  }

  private finish(): ResponseStep {
    // An ERR can end a chain whose last status still promised more results; the response is over.
    this.status &= ~ServerStatus.SERVER_MORE_RESULTS_EXISTS;
    this.state = State.Idle;
    this.current = -1;
    return ResponseStep.Done;
  }
}
