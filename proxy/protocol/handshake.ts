/**
 * The connection phase, both sides of it. The proxy is a server to clients (it builds
 * HandshakeV10, parses SSLRequest / HandshakeResponse41 / COM_CHANGE_USER, switches auth
 * plugins) and a client to Dolt (it parses Dolt's HandshakeV10 and builds a HandshakeResponse41).
 *
 * Everything speaks protocol 4.1 only: a peer without CLIENT_PROTOCOL_41 gets a
 * MalformedPacketError carrying ER_HANDSHAKE_ERROR, which is what MySQL answers to pre-4.1
 * clients. Parsers return copies (their results outlive the reader's view) and are lenient
 * exactly where real clients differ: optional trailing fields may simply end the packet. A
 * server may answer a connection with ERR instead of a handshake (too many connections, host
 * blocked); check `isErrPacket` before `parseHandshakeV10`.
 */

import { Buffer } from 'node:buffer';
import { Capability, ErrorCode, ResponseHeader, SCRAMBLE_LENGTH } from './constants';
import { PayloadCursor } from './decode';
import { PayloadWriter } from './encode';
import { MalformedPacketError } from './errors';

/** An SSLRequest is the first 32 bytes of a HandshakeResponse41, sent in the clear. */
export const SSL_REQUEST_LENGTH = 32;

export interface ServerHandshake {
  serverVersion: string;
  connectionId: number;
  /** 20 bytes for MySQL and Dolt; part 1 (8) and part 2 (12) joined, NUL dropped. */
  scramble: Buffer;
  capabilities: number;
  /** Collation id, low byte only (the handshake has one byte for it). */
  charset: number;
  statusFlags: number;
  /** '' when the server did not set CLIENT_PLUGIN_AUTH. */
  authPluginName: string;
}

/** Protocol::HandshakeV10 payload. `scramble` must be 20 bytes without NULs. */
export function buildHandshakeV10(h: ServerHandshake): Buffer {
  if (h.scramble.length !== SCRAMBLE_LENGTH) throw new RangeError(`scramble must be ${SCRAMBLE_LENGTH} bytes`);
  const caps = h.capabilities >>> 0;
  const pluginAuth = (caps & Capability.CLIENT_PLUGIN_AUTH) !== 0;
  const w = new PayloadWriter(64 + h.serverVersion.length + h.authPluginName.length);
  w.u8(10)
    .nulString(h.serverVersion)
    .u32(h.connectionId)
    .bytes(h.scramble.subarray(0, 8))
    .u8(0)
    .u16(caps & 0xffff)
    .u8(h.charset)
    .u16(h.statusFlags)
    .u16(caps >>> 16)
    .u8(pluginAuth ? SCRAMBLE_LENGTH + 1 : 0)
    .zeros(10);
  // Part 2 is 13 bytes: the last 12 scramble bytes and a NUL, which old clients rely on.
  w.bytes(h.scramble.subarray(8)).u8(0);
  if (pluginAuth) w.nulString(h.authPluginName);
  return w.toPayload();
}

/** Parses a server's Protocol::HandshakeV10. */
export function parseHandshakeV10(payload: Buffer): ServerHandshake {
  const c = new PayloadCursor(payload);
  const version = c.u8();
  if (version !== 10) throw handshakeError(`protocol version ${version}, expected 10`);
  const serverVersion = c.nulString();
  const connectionId = c.u32();
  const part1 = c.bytes(8);
  c.skip(1);
  let capabilities = c.u16();
  let charset = 0;
  let statusFlags = 0;
  let authDataLength = 0;
  let part2: Buffer = Buffer.alloc(0);
  let authPluginName = '';
  if (!c.atEnd) {
    charset = c.u8();
    statusFlags = c.u16();
    capabilities = (capabilities | (c.u16() << 16)) >>> 0;
    authDataLength = c.u8();
    c.skip(10);
    if ((capabilities & Capability.CLIENT_SECURE_CONNECTION) !== 0) {
      part2 = c.bytes(Math.min(Math.max(13, authDataLength - 8), c.remaining));
      // The part ends with a NUL that is not scramble (MySQL sends 12 bytes + NUL).
      if (part2.length > 0 && part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
    }
    if ((capabilities & Capability.CLIENT_PLUGIN_AUTH) !== 0) {
      authPluginName = c.nulOrRestBytes().toString('utf8');
    }
  }
  if ((capabilities & Capability.CLIENT_PROTOCOL_41) === 0) throw handshakeError('server lacks CLIENT_PROTOCOL_41');
  return {
    serverVersion,
    connectionId,
    scramble: Buffer.concat([part1, part2]),
    capabilities,
    charset,
    statusFlags,
    authPluginName,
  };
}

export interface HandshakeResponse {
  capabilities: number;
  maxPacketSize: number;
  charset: number;
  username: string;
  /** Auth plugin data; empty for an empty password. */
  authResponse: Buffer;
  /** Present only with CLIENT_CONNECT_WITH_DB. */
  database: string | null;
  /** Present only with CLIENT_PLUGIN_AUTH. */
  authPluginName: string | null;
  /** Present only with CLIENT_CONNECT_ATTRS; insertion order kept. */
  connectAttributes: Map<string, string> | null;
}

/** True for a 32-byte SSLRequest: the client wants TLS before it says anything else. */
export function isSslRequest(payload: Buffer): boolean {
  return (
    payload.length === SSL_REQUEST_LENGTH &&
    (payload.readUInt32LE(0) & Capability.CLIENT_SSL) !== 0
  );
}

/** SSLRequest payload for the proxy's TLS to a backend; CLIENT_SSL is added if missing. */
export function buildSslRequest(capabilities: number, maxPacketSize: number, charset: number): Buffer {
  return new PayloadWriter(SSL_REQUEST_LENGTH)
    .u32(capabilities | Capability.CLIENT_SSL)
    .u32(maxPacketSize)
    .u8(charset)
    .zeros(23)
    .toPayload();
}

/**
 * Parses HandshakeResponse41. An SSLRequest (see `isSslRequest`) has no username and fails as
 * malformed, so test for it first.
 */
export function parseHandshakeResponse41(payload: Buffer): HandshakeResponse {
  const c = new PayloadCursor(payload);
  try {
    const capabilities = c.u32();
    if ((capabilities & Capability.CLIENT_PROTOCOL_41) === 0) throw handshakeError('client lacks CLIENT_PROTOCOL_41');
    const maxPacketSize = c.u32();
    const charset = c.u8();
    c.skip(23);
    const username = c.nulString();
    const authResponse = readAuthResponse(c, capabilities);
    const database =
      (capabilities & Capability.CLIENT_CONNECT_WITH_DB) !== 0 && !c.atEnd ? c.nulOrRestBytes().toString('utf8') : null;
    const authPluginName =
      (capabilities & Capability.CLIENT_PLUGIN_AUTH) !== 0 && !c.atEnd ? c.nulOrRestBytes().toString('utf8') : null;
    const connectAttributes =
      (capabilities & Capability.CLIENT_CONNECT_ATTRS) !== 0 && !c.atEnd ? readConnectAttributes(c) : null;
    return { capabilities, maxPacketSize, charset, username, authResponse, database, authPluginName, connectAttributes };
  } catch (err) {
    throw asHandshakeError(err);
  }
}

export interface HandshakeResponseFields {
  capabilities: number;
  maxPacketSize?: number;
  charset: number;
  username: string;
  authResponse: Uint8Array;
  /** Written when CLIENT_CONNECT_WITH_DB is set ('' if omitted). */
  database?: string;
  /** Written when CLIENT_PLUGIN_AUTH is set ('' if omitted). */
  authPluginName?: string;
  /** Written when CLIENT_CONNECT_ATTRS is set (empty if omitted). */
  connectAttributes?: ReadonlyMap<string, string>;
}

/**
 * HandshakeResponse41 payload for a backend. The auth response is encoded the way the flags
 * allow: lenenc with PLUGIN_AUTH_LENENC_CLIENT_DATA, else a length byte with
 * SECURE_CONNECTION, else NUL-terminated.
 */
export function buildHandshakeResponse41(r: HandshakeResponseFields): Buffer {
  const caps = r.capabilities >>> 0;
  const w = new PayloadWriter(128 + r.authResponse.length);
  w.u32(caps)
    .u32(r.maxPacketSize ?? 0)
    .u8(r.charset)
    .zeros(23)
    .nulString(r.username);
  writeAuthResponse(w, caps, r.authResponse);
  if ((caps & Capability.CLIENT_CONNECT_WITH_DB) !== 0) w.nulString(r.database ?? '');
  if ((caps & Capability.CLIENT_PLUGIN_AUTH) !== 0) w.nulString(r.authPluginName ?? '');
  if ((caps & Capability.CLIENT_CONNECT_ATTRS) !== 0) writeConnectAttributes(w, r.connectAttributes);
  return w.toPayload();
}

// ---- auth exchange packets --------------------------------------------------------------------

export interface AuthSwitchRequest {
  pluginName: string;
  /** Plugin data (the new scramble), without the NUL MySQL appends to it. */
  pluginData: Buffer;
}

/** AuthSwitchRequest: 0xFE, plugin name NUL, plugin data. */
export function parseAuthSwitchRequest(payload: Buffer): AuthSwitchRequest {
  const c = new PayloadCursor(payload);
  if (c.u8() !== ResponseHeader.EOF) throw handshakeError('AuthSwitchRequest does not start with 0xFE');
  // A bare 0xFE is the pre-4.1 "switch to old password" request; name it so callers refuse it.
  if (c.atEnd) return { pluginName: 'mysql_old_password', pluginData: Buffer.alloc(0) };
  const pluginName = c.nulOrRestBytes().toString('utf8');
  let data = c.restBytes();
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
  return { pluginName, pluginData: Buffer.from(data) };
}

/** AuthSwitchRequest payload; a NUL follows the data, as MySQL sends it. */
export function buildAuthSwitchRequest(pluginName: string, pluginData: Uint8Array): Buffer {
  return new PayloadWriter(pluginName.length + pluginData.length + 3)
    .u8(ResponseHeader.EOF)
    .nulString(pluginName)
    .bytes(pluginData)
    .u8(0)
    .toPayload();
}

/** AuthMoreData: 0x01 then plugin-specific bytes (caching_sha2 status byte, a PEM key, ...). */
export function parseAuthMoreData(payload: Buffer): Buffer {
  if (payload.length < 1 || payload[0] !== ResponseHeader.AUTH_MORE_DATA) {
    throw handshakeError('AuthMoreData does not start with 0x01');
  }
  return Buffer.from(payload.subarray(1));
}

export function buildAuthMoreData(data: Uint8Array): Buffer {
  return new PayloadWriter(data.length + 1).u8(ResponseHeader.AUTH_MORE_DATA).bytes(data).toPayload();
}

// ---- COM_CHANGE_USER --------------------------------------------------------------------------

export interface ChangeUser {
  username: string;
  authResponse: Buffer;
  database: string;
  /** null when the client stopped after the database (old clients). */
  charset: number | null;
  authPluginName: string | null;
  connectAttributes: Map<string, string> | null;
}

/** Parses a COM_CHANGE_USER payload; field encodings follow the connection's `capabilities`. */
export function parseChangeUser(payload: Buffer, capabilities: number): ChangeUser {
  const c = new PayloadCursor(payload);
  try {
    if (c.u8() !== 0x11) throw handshakeError('COM_CHANGE_USER does not start with 0x11');
    const username = c.nulString();
    const authResponse =
      (capabilities & Capability.CLIENT_SECURE_CONNECTION) !== 0
        ? Buffer.from(c.bytes(c.u8()))
        : Buffer.from(c.nulBytes());
    const database = c.nulOrRestBytes().toString('utf8');
    const charset = c.remaining >= 2 ? c.u16() : null;
    const authPluginName =
      (capabilities & Capability.CLIENT_PLUGIN_AUTH) !== 0 && !c.atEnd ? c.nulOrRestBytes().toString('utf8') : null;
    const connectAttributes =
      (capabilities & Capability.CLIENT_CONNECT_ATTRS) !== 0 && !c.atEnd ? readConnectAttributes(c) : null;
    return { username, authResponse, database, charset, authPluginName, connectAttributes };
  } catch (err) {
    throw asHandshakeError(err);
  }
}

/** COM_CHANGE_USER payload (re-authenticating a backend connection as another user). */
export function buildChangeUser(
  capabilities: number,
  fields: { username: string; authResponse: Uint8Array; database?: string; charset: number; authPluginName?: string; connectAttributes?: ReadonlyMap<string, string> },
): Buffer {
  const w = new PayloadWriter(128 + fields.authResponse.length);
  w.u8(0x11).nulString(fields.username);
  if ((capabilities & Capability.CLIENT_SECURE_CONNECTION) !== 0) {
    if (fields.authResponse.length > 255) throw new RangeError('auth response over 255 bytes');
    w.u8(fields.authResponse.length).bytes(fields.authResponse);
  } else {
    w.nulString(fields.authResponse);
  }
  w.nulString(fields.database ?? '').u16(fields.charset);
  if ((capabilities & Capability.CLIENT_PLUGIN_AUTH) !== 0) w.nulString(fields.authPluginName ?? '');
  if ((capabilities & Capability.CLIENT_CONNECT_ATTRS) !== 0) writeConnectAttributes(w, fields.connectAttributes);
  return w.toPayload();
}

// ---- shared pieces ----------------------------------------------------------------------------

function readAuthResponse(c: PayloadCursor, capabilities: number): Buffer {
  if ((capabilities & Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) return Buffer.from(c.lenencBytes());
  if ((capabilities & Capability.CLIENT_SECURE_CONNECTION) !== 0) return Buffer.from(c.bytes(c.u8()));
  return Buffer.from(c.nulBytes());
}

function writeAuthResponse(w: PayloadWriter, capabilities: number, data: Uint8Array): void {
  if ((capabilities & Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) {
    w.lenencString(data);
  } else if ((capabilities & Capability.CLIENT_SECURE_CONNECTION) !== 0) {
    if (data.length > 255) throw new RangeError('auth response over 255 bytes needs PLUGIN_AUTH_LENENC_CLIENT_DATA');
    w.u8(data.length).bytes(data);
  } else {
    w.nulString(data);
  }
}

function readConnectAttributes(c: PayloadCursor): Map<string, string> {
  const total = c.lenencInt();
  const attrs = new PayloadCursor(c.buf, c.pos, c.pos + total);
  c.skip(total);
  const out = new Map<string, string>();
  while (!attrs.atEnd) {
    const key = attrs.lenencString();
    out.set(key, attrs.lenencString());
  }
  return out;
}

function writeConnectAttributes(w: PayloadWriter, attrs: ReadonlyMap<string, string> | undefined): void {
  const inner = new PayloadWriter(128);
  if (attrs !== undefined) for (const [k, v] of attrs) inner.lenencString(k).lenencString(v);
  w.lenencString(inner.toPayload());
}

function handshakeError(what: string): MalformedPacketError {
  return new MalformedPacketError(what, ErrorCode.ER_HANDSHAKE_ERROR);
}

/** Parse failures in the connection phase are "Bad handshake" to the peer, as in MySQL. */
function asHandshakeError(err: unknown): unknown {
  if (err instanceof MalformedPacketError && err.errno !== ErrorCode.ER_HANDSHAKE_ERROR) {
    return handshakeError(err.message.replace(/^malformed packet: /, ''));
  }
  return err;
}
