/**
 * Numbers of the MySQL client/server protocol that the proxy reads or writes: packet framing
 * limits, command bytes, capability and server-status flags, response header bytes, the few
 * character sets and auth plugins we name, and the error numbers the proxy answers with, each
 * paired with its SQLSTATE by `sqlStateFor`.
 *
 * Everything numeric is a `const enum`, so it inlines to a literal on the hot path and costs no
 * property lookup. Names keep MySQL's spelling (COM_QUERY, CLIENT_SSL, ER_...) so that a reader
 * can grep the MySQL manual and the source for them. Capability flags are 32-bit *unsigned* on
 * the wire; `a | b` in JS yields a signed int32 once bit 31 is set, so writers store flags with
 * `>>> 0` and tests compare with `(caps & FLAG) !== 0`, never `> 0`.
 */

/** Frame header: 3-byte little-endian payload length + 1-byte sequence id. */
export const PACKET_HEADER_LENGTH = 4;
/** Largest payload of one frame; a frame of exactly this length is followed by a continuation. */
export const MAX_FRAME_PAYLOAD = 0xffffff;
/** MySQL's own default max_allowed_packet (8.0+), used when a reader is given no limit. */
export const DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024;
/** Length of the scramble (nonce) every built-in auth plugin uses. */
export const SCRAMBLE_LENGTH = 20;
/** The protocol's hard ceiling for max_allowed_packet. */
export const MAX_ALLOWED_PACKET_CEILING = 1024 * 1024 * 1024;

/** First byte of a client command packet (sequence id 0). */
export const enum Command {
  COM_SLEEP = 0x00,
  COM_QUIT = 0x01,
  COM_INIT_DB = 0x02,
  COM_QUERY = 0x03,
  COM_FIELD_LIST = 0x04,
  COM_CREATE_DB = 0x05,
  COM_DROP_DB = 0x06,
  COM_REFRESH = 0x07,
  COM_SHUTDOWN = 0x08,
  COM_STATISTICS = 0x09,
  COM_PROCESS_INFO = 0x0a,
  COM_CONNECT = 0x0b,
  COM_PROCESS_KILL = 0x0c,
  COM_DEBUG = 0x0d,
  COM_PING = 0x0e,
  COM_TIME = 0x0f,
  COM_DELAYED_INSERT = 0x10,
  COM_CHANGE_USER = 0x11,
  COM_BINLOG_DUMP = 0x12,
  COM_TABLE_DUMP = 0x13,
  COM_CONNECT_OUT = 0x14,
  COM_REGISTER_SLAVE = 0x15,
  COM_STMT_PREPARE = 0x16,
  COM_STMT_EXECUTE = 0x17,
  COM_STMT_SEND_LONG_DATA = 0x18,
  COM_STMT_CLOSE = 0x19,
  COM_STMT_RESET = 0x1a,
  COM_SET_OPTION = 0x1b,
  COM_STMT_FETCH = 0x1c,
  COM_DAEMON = 0x1d,
  COM_BINLOG_DUMP_GTID = 0x1e,
  COM_RESET_CONNECTION = 0x1f,
  COM_CLONE = 0x20,
}

/** Capability flags exchanged in the handshake (Protocol::CapabilityFlags). */
export const enum Capability {
  CLIENT_LONG_PASSWORD = 0x00000001,
  CLIENT_FOUND_ROWS = 0x00000002,
  CLIENT_LONG_FLAG = 0x00000004,
  CLIENT_CONNECT_WITH_DB = 0x00000008,
  CLIENT_NO_SCHEMA = 0x00000010,
  CLIENT_COMPRESS = 0x00000020,
  CLIENT_ODBC = 0x00000040,
  CLIENT_LOCAL_FILES = 0x00000080,
  CLIENT_IGNORE_SPACE = 0x00000100,
  CLIENT_PROTOCOL_41 = 0x00000200,
  CLIENT_INTERACTIVE = 0x00000400,
  CLIENT_SSL = 0x00000800,
  CLIENT_IGNORE_SIGPIPE = 0x00001000,
  CLIENT_TRANSACTIONS = 0x00002000,
  CLIENT_RESERVED = 0x00004000,
  /** Called CLIENT_RESERVED2 in newer headers; still means "4.1 auth response with length byte". */
  CLIENT_SECURE_CONNECTION = 0x00008000,
  CLIENT_MULTI_STATEMENTS = 0x00010000,
  CLIENT_MULTI_RESULTS = 0x00020000,
  CLIENT_PS_MULTI_RESULTS = 0x00040000,
  CLIENT_PLUGIN_AUTH = 0x00080000,
  CLIENT_CONNECT_ATTRS = 0x00100000,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x00200000,
  CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS = 0x00400000,
  CLIENT_SESSION_TRACK = 0x00800000,
  CLIENT_DEPRECATE_EOF = 0x01000000,
  /** Changes result-set framing (metadata may be skipped); the proxy must never grant it. */
  CLIENT_OPTIONAL_RESULTSET_METADATA = 0x02000000,
  CLIENT_ZSTD_COMPRESSION_ALGORITHM = 0x04000000,
  CLIENT_QUERY_ATTRIBUTES = 0x08000000,
  MULTI_FACTOR_AUTHENTICATION = 0x10000000,
  CLIENT_CAPABILITY_EXTENSION = 0x20000000,
  CLIENT_SSL_VERIFY_SERVER_CERT = 0x40000000,
  CLIENT_REMEMBER_OPTIONS = 0x80000000,
}

/** Server status flags carried by OK and EOF packets (SERVER_STATUS_* / SERVER_*). */
export const enum ServerStatus {
  SERVER_STATUS_IN_TRANS = 0x0001,
  SERVER_STATUS_AUTOCOMMIT = 0x0002,
  SERVER_MORE_RESULTS_EXISTS = 0x0008,
  SERVER_QUERY_NO_GOOD_INDEX_USED = 0x0010,
  SERVER_QUERY_NO_INDEX_USED = 0x0020,
  SERVER_STATUS_CURSOR_EXISTS = 0x0040,
  SERVER_STATUS_LAST_ROW_SENT = 0x0080,
  SERVER_STATUS_DB_DROPPED = 0x0100,
  SERVER_STATUS_NO_BACKSLASH_ESCAPES = 0x0200,
  SERVER_STATUS_METADATA_CHANGED = 0x0400,
  SERVER_QUERY_WAS_SLOW = 0x0800,
  SERVER_PS_OUT_PARAMS = 0x1000,
  SERVER_STATUS_IN_TRANS_READONLY = 0x2000,
  SERVER_SESSION_STATE_CHANGED = 0x4000,
}

/**
 * First payload byte of server responses. Several share a value and only the context (which
 * packet of which response) or the length tells them apart; see decode.ts and
 * response-tracker.ts.
 */
export const enum ResponseHeader {
  OK = 0x00,
  /** AuthMoreData during authentication. */
  AUTH_MORE_DATA = 0x01,
  /** LOCAL INFILE request as the first packet of a response; a NULL column inside a text row. */
  LOCAL_INFILE = 0xfb,
  /** EOF (payload < 9), OK terminator under CLIENT_DEPRECATE_EOF, or AuthSwitchRequest. */
  EOF = 0xfe,
  ERR = 0xff,
}

/** Session state change types inside an OK packet (CLIENT_SESSION_TRACK). */
export const enum SessionTrackType {
  SESSION_TRACK_SYSTEM_VARIABLES = 0x00,
  SESSION_TRACK_SCHEMA = 0x01,
  SESSION_TRACK_STATE_CHANGE = 0x02,
  SESSION_TRACK_GTIDS = 0x03,
  SESSION_TRACK_TRANSACTION_CHARACTERISTICS = 0x04,
  SESSION_TRACK_TRANSACTION_STATE = 0x05,
}

/** COM_STMT_EXECUTE flags byte. */
export const enum CursorType {
  CURSOR_TYPE_NO_CURSOR = 0x00,
  CURSOR_TYPE_READ_ONLY = 0x01,
  CURSOR_TYPE_FOR_UPDATE = 0x02,
  CURSOR_TYPE_SCROLLABLE = 0x04,
  PARAMETER_COUNT_AVAILABLE = 0x08,
}

/** Column types; only needed to skip binary-encoded values (query attributes). */
export const enum ColumnType {
  MYSQL_TYPE_DECIMAL = 0x00,
  MYSQL_TYPE_TINY = 0x01,
  MYSQL_TYPE_SHORT = 0x02,
  MYSQL_TYPE_LONG = 0x03,
  MYSQL_TYPE_FLOAT = 0x04,
  MYSQL_TYPE_DOUBLE = 0x05,
  MYSQL_TYPE_NULL = 0x06,
  MYSQL_TYPE_TIMESTAMP = 0x07,
  MYSQL_TYPE_LONGLONG = 0x08,
  MYSQL_TYPE_INT24 = 0x09,
  MYSQL_TYPE_DATE = 0x0a,
  MYSQL_TYPE_TIME = 0x0b,
  MYSQL_TYPE_DATETIME = 0x0c,
  MYSQL_TYPE_YEAR = 0x0d,
  MYSQL_TYPE_NEWDATE = 0x0e,
  MYSQL_TYPE_VARCHAR = 0x0f,
  MYSQL_TYPE_BIT = 0x10,
  MYSQL_TYPE_TIMESTAMP2 = 0x11,
  MYSQL_TYPE_DATETIME2 = 0x12,
  MYSQL_TYPE_TIME2 = 0x13,
  MYSQL_TYPE_JSON = 0xf5,
  MYSQL_TYPE_NEWDECIMAL = 0xf6,
  MYSQL_TYPE_ENUM = 0xf7,
  MYSQL_TYPE_SET = 0xf8,
  MYSQL_TYPE_TINY_BLOB = 0xf9,
  MYSQL_TYPE_MEDIUM_BLOB = 0xfa,
  MYSQL_TYPE_LONG_BLOB = 0xfb,
  MYSQL_TYPE_BLOB = 0xfc,
  MYSQL_TYPE_VAR_STRING = 0xfd,
  MYSQL_TYPE_STRING = 0xfe,
  MYSQL_TYPE_GEOMETRY = 0xff,
}

/** Collation ids the proxy names; the handshake carries one byte of it. */
export const enum Charset {
  LATIN1_SWEDISH_CI = 8,
  UTF8MB3_GENERAL_CI = 33,
  UTF8MB4_GENERAL_CI = 45,
  BINARY = 63,
  UTF8MB4_0900_AI_CI = 255,
}

export const enum AuthPlugin {
  MYSQL_NATIVE_PASSWORD = 'mysql_native_password',
  CACHING_SHA2_PASSWORD = 'caching_sha2_password',
  MYSQL_CLEAR_PASSWORD = 'mysql_clear_password',
  SHA256_PASSWORD = 'sha256_password',
}

/** Error numbers the proxy emits or must recognise; `sqlStateFor` gives each one's SQLSTATE. */
export const enum ErrorCode {
  ER_CON_COUNT_ERROR = 1040,
  ER_OUT_OF_RESOURCES = 1041,
  ER_BAD_HOST_ERROR = 1042,
  ER_HANDSHAKE_ERROR = 1043,
  ER_DBACCESS_DENIED_ERROR = 1044,
  ER_ACCESS_DENIED_ERROR = 1045,
  ER_NO_DB_ERROR = 1046,
  ER_UNKNOWN_COM_ERROR = 1047,
  ER_BAD_DB_ERROR = 1049,
  ER_SERVER_SHUTDOWN = 1053,
  ER_UNKNOWN_ERROR = 1105,
  ER_NET_PACKET_TOO_LARGE = 1153,
  ER_NET_READ_ERROR_FROM_PIPE = 1154,
  ER_NET_PACKETS_OUT_OF_ORDER = 1156,
  ER_NET_UNCOMPRESS_ERROR = 1157,
  ER_NET_READ_ERROR = 1158,
  ER_NET_READ_INTERRUPTED = 1159,
  ER_NET_ERROR_ON_WRITE = 1160,
  ER_NET_WRITE_INTERRUPTED = 1161,
  ER_NEW_ABORTING_CONNECTION = 1184,
  ER_TOO_MANY_USER_CONNECTIONS = 1203,
  ER_WRONG_ARGUMENTS = 1210,
  ER_LOCK_WAIT_TIMEOUT = 1205,
  ER_READ_ONLY_TRANSACTION = 1207,
  ER_LOCK_DEADLOCK = 1213,
  ER_NOT_SUPPORTED_YET = 1235,
  ER_UNKNOWN_STMT_HANDLER = 1243,
  ER_NOT_SUPPORTED_AUTH_MODE = 1251,
  ER_OPTION_PREVENTS_STATEMENT = 1290,
  ER_QUERY_INTERRUPTED = 1317,
  ER_PLUGIN_IS_NOT_LOADED = 1524,
  ER_ACCESS_DENIED_NO_PASSWORD_ERROR = 1698,
  ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION = 1792,
  ER_MAX_PREPARED_STMT_COUNT_REACHED = 1461,
  ER_MALFORMED_PACKET = 1835,
  ER_QUERY_TIMEOUT = 3024,
  ER_SERVER_OFFLINE_MODE = 3032,
  ER_SECURE_TRANSPORT_REQUIRED = 3159,
  ER_CLIENT_LOCAL_FILES_DISABLED = 3948,
  ER_CLIENT_INTERACTION_TIMEOUT = 4031,
}

/** SQLSTATE of everything the server does not classify. */
export const SQLSTATE_GENERAL = 'HY000';

const SQLSTATE_BY_ERRNO: ReadonlyMap<number, string> = new Map<number, string>([
  [ErrorCode.ER_CON_COUNT_ERROR, '08004'],
  [ErrorCode.ER_OUT_OF_RESOURCES, 'HY000'],
  [ErrorCode.ER_MAX_PREPARED_STMT_COUNT_REACHED, '42000'],
  [ErrorCode.ER_BAD_HOST_ERROR, '08S01'],
  [ErrorCode.ER_HANDSHAKE_ERROR, '08S01'],
  [ErrorCode.ER_DBACCESS_DENIED_ERROR, '42000'],
  [ErrorCode.ER_ACCESS_DENIED_ERROR, '28000'],
  [ErrorCode.ER_NO_DB_ERROR, '3D000'],
  [ErrorCode.ER_UNKNOWN_COM_ERROR, '08S01'],
  [ErrorCode.ER_BAD_DB_ERROR, '42000'],
  [ErrorCode.ER_SERVER_SHUTDOWN, '08S01'],
  [ErrorCode.ER_UNKNOWN_ERROR, 'HY000'],
  [ErrorCode.ER_NET_PACKET_TOO_LARGE, '08S01'],
  [ErrorCode.ER_NET_READ_ERROR_FROM_PIPE, '08S01'],
  [ErrorCode.ER_NET_PACKETS_OUT_OF_ORDER, '08S01'],
  [ErrorCode.ER_NET_UNCOMPRESS_ERROR, '08S01'],
  [ErrorCode.ER_NET_READ_ERROR, '08S01'],
  [ErrorCode.ER_NET_READ_INTERRUPTED, '08S01'],
  [ErrorCode.ER_NET_ERROR_ON_WRITE, '08S01'],
  [ErrorCode.ER_NET_WRITE_INTERRUPTED, '08S01'],
  [ErrorCode.ER_NEW_ABORTING_CONNECTION, '08S01'],
  [ErrorCode.ER_TOO_MANY_USER_CONNECTIONS, '42000'],
  [ErrorCode.ER_LOCK_WAIT_TIMEOUT, 'HY000'],
  [ErrorCode.ER_READ_ONLY_TRANSACTION, '25000'],
  [ErrorCode.ER_LOCK_DEADLOCK, '40001'],
  [ErrorCode.ER_NOT_SUPPORTED_YET, '42000'],
  [ErrorCode.ER_UNKNOWN_STMT_HANDLER, 'HY000'],
  [ErrorCode.ER_NOT_SUPPORTED_AUTH_MODE, '08004'],
  [ErrorCode.ER_OPTION_PREVENTS_STATEMENT, 'HY000'],
  [ErrorCode.ER_QUERY_INTERRUPTED, '70100'],
  [ErrorCode.ER_PLUGIN_IS_NOT_LOADED, 'HY000'],
  [ErrorCode.ER_ACCESS_DENIED_NO_PASSWORD_ERROR, '28000'],
  [ErrorCode.ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, '25006'],
  [ErrorCode.ER_MALFORMED_PACKET, 'HY000'],
  [ErrorCode.ER_QUERY_TIMEOUT, 'HY000'],
  [ErrorCode.ER_SERVER_OFFLINE_MODE, 'HY000'],
  [ErrorCode.ER_SECURE_TRANSPORT_REQUIRED, 'HY000'],
  [ErrorCode.ER_CLIENT_LOCAL_FILES_DISABLED, '42000'],
  [ErrorCode.ER_CLIENT_INTERACTION_TIMEOUT, 'HY000'],
]);

/** The SQLSTATE MySQL pairs with `errno`; HY000 for numbers this table does not know. */
export function sqlStateFor(errno: number): string {
  return SQLSTATE_BY_ERRNO.get(errno) ?? SQLSTATE_GENERAL;
}

/**
 * Capabilities the proxy can honour end to end. The proxy offers clients the intersection of
 * this set and what the backend offers; OPTIONAL_RESULTSET_METADATA, COMPRESS and ZSTD are left
 * out because the codec (and the response tracker) assume uncompressed frames with full metadata.
 */
export const PROXY_SUPPORTED_CAPABILITIES: number =
  (Capability.CLIENT_LONG_PASSWORD |
    Capability.CLIENT_FOUND_ROWS |
    Capability.CLIENT_LONG_FLAG |
    Capability.CLIENT_CONNECT_WITH_DB |
    Capability.CLIENT_NO_SCHEMA |
    Capability.CLIENT_ODBC |
    Capability.CLIENT_LOCAL_FILES |
    Capability.CLIENT_IGNORE_SPACE |
    Capability.CLIENT_PROTOCOL_41 |
    Capability.CLIENT_INTERACTIVE |
    Capability.CLIENT_SSL |
    Capability.CLIENT_IGNORE_SIGPIPE |
    Capability.CLIENT_TRANSACTIONS |
    Capability.CLIENT_RESERVED |
    Capability.CLIENT_SECURE_CONNECTION |
    Capability.CLIENT_MULTI_STATEMENTS |
    Capability.CLIENT_MULTI_RESULTS |
    Capability.CLIENT_PS_MULTI_RESULTS |
    Capability.CLIENT_PLUGIN_AUTH |
    Capability.CLIENT_CONNECT_ATTRS |
    Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
    Capability.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS |
    Capability.CLIENT_SESSION_TRACK |
    Capability.CLIENT_DEPRECATE_EOF |
    Capability.CLIENT_QUERY_ATTRIBUTES) >>>
  0;

/** True when `flag` is set in `flags`; safe for bit 31, where `flags & flag` is negative. */
export function hasFlag(flags: number, flag: number): boolean {
  return (flags & flag) !== 0;
}
