/**
 * The client side of the MySQL handshake from the proxy to one Dolt server: greeting,
 * capabilities (the packet-shaping ones the client negotiated, and only those, plus what the
 * proxy's own login needs; a backend lacking one fails the login with a clear error rather than
 * corrupt a stream later), optional TLS, HandshakeResponse41 with the user's mapped backend
 * credentials (mysql_native_password or caching_sha2_password), auth switches. It ends with a
 * logged-in socket that backend-connection.ts turns into a BackendConnection (the pipe).
 *
 * The password itself (caching_sha2_password full authentication) goes only over TLS with a
 * verified certificate: to anyone else it would be handed in clear to whoever answers.
 */

import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import * as tls from 'node:tls';
import {
  AuthPlugin,
  buildHandshakeResponse41,
  buildSslRequest,
  CachingSha2Status,
  Capability,
  cleartextPasswordPayload,
  hasFlag,
  parseAuthSwitchRequest,
  parseErr,
  parseHandshakeV10,
  ResponseHeader,
  scrambleCachingSha2Password,
  scrambleNativePassword,
} from '../protocol';
import { BackendProtocolError, BackendUnavailableError } from './errors';
import { PacketChannel } from './packet-channel';
import { ReadRelay } from './shared-reads';

/** Capabilities that change the bytes or meaning of forwarded packets: both sides must agree. */
export const FORWARDED_CAPABILITIES: number =
  (Capability.CLIENT_LONG_PASSWORD |
    Capability.CLIENT_FOUND_ROWS |
    Capability.CLIENT_LONG_FLAG |
    Capability.CLIENT_NO_SCHEMA |
    Capability.CLIENT_ODBC |
    Capability.CLIENT_IGNORE_SPACE |
    Capability.CLIENT_INTERACTIVE |
    Capability.CLIENT_TRANSACTIONS |
    Capability.CLIENT_MULTI_STATEMENTS |
    Capability.CLIENT_MULTI_RESULTS |
    Capability.CLIENT_PS_MULTI_RESULTS |
    Capability.CLIENT_SESSION_TRACK |
    Capability.CLIENT_DEPRECATE_EOF |
    Capability.CLIENT_QUERY_ATTRIBUTES) >>>
  0;

/** Of those, the ones whose absence on the backend would corrupt forwarding. */
export const REQUIRED_ON_BACKEND: number =
  (Capability.CLIENT_MULTI_STATEMENTS |
    Capability.CLIENT_MULTI_RESULTS |
    Capability.CLIENT_PS_MULTI_RESULTS |
    Capability.CLIENT_SESSION_TRACK |
    Capability.CLIENT_DEPRECATE_EOF |
    Capability.CLIENT_QUERY_ATTRIBUTES) >>>
  0;

/** What the proxy's own login needs, when the backend offers it. */
const LOGIN_CAPABILITIES: number =
  (Capability.CLIENT_PROTOCOL_41 |
    Capability.CLIENT_SECURE_CONNECTION |
    Capability.CLIENT_PLUGIN_AUTH |
    Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
    Capability.CLIENT_CONNECT_ATTRS) >>>
  0;

export interface BackendTarget {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface BackendLogin {
  user: string;
  password: string;
}

export interface BackendConnectOptions {
  target: BackendTarget;
  login: BackendLogin;
  /** The client's negotiated capabilities; the forwarded part is requested from the backend. */
  clientCapabilities: number;
  charset: number;
  database: string | null;
  connectTimeoutMs: number;
  maxPacketSize: number;
  tls: tls.ConnectionOptions | null;
  connectAttributes?: ReadonlyMap<string, string>;
}


/** A socket logged in to a backend, and what the handshake said. */
export interface LoggedInSocket {
  socket: net.Socket;
  capabilities: number;
  serverVersion: string;
  connectionId: number;
  isTls: boolean;
  statusFlags: number;
  /** Bytes read past the login's last packet: the start of what follows. */
  leftover: Buffer;
  /** The shared read buffer's relay for a plain TCP socket; null under TLS. */
  relay: ReadRelay | null;
}

export async function loginToBackend(options: BackendConnectOptions): Promise<LoggedInSocket> {
  const { target } = options;
  const where = `${target.name} (${target.host}:${target.port})`;
  // Plain TCP reads through the shared buffer; under TLS, reads happen beneath the TLS socket.
  const relay = options.tls === null ? new ReadRelay() : null;
  const raw = net.connect(relay !== null ? relay.connectOptions(target.host, target.port) : { host: target.host, port: target.port });
  // Stays for the socket's life: under TLS the raw socket must never raise an unhandled error.
  raw.on('error', () => undefined);
  let socket: net.Socket = raw;
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 30_000);
  const timer = setTimeout(() => socket.destroy(new Error(`no handshake within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
  const channel = new PacketChannel(socket, 64 * 1024, 0);
  if (relay !== null) relay.receiver = (buffer, bytes) => channel.feed(buffer.subarray(0, bytes));
  try {
    const greeting = await channel.readPacket();
    if (greeting.length > 0 && greeting[0] === ResponseHeader.ERR) {
      const err = parseErr(greeting);
      throw new BackendProtocolError(where, `refused the connection: ${err.message}`, err.errno);
    }
    const hs = parseHandshakeV10(greeting);
    const wanted = options.clientCapabilities & FORWARDED_CAPABILITIES;
    const missing = wanted & REQUIRED_ON_BACKEND & ~hs.capabilities;
    if (missing !== 0) {
      throw new BackendProtocolError(where, `lacks capabilities 0x${(missing >>> 0).toString(16)} the client negotiated; packets could not be forwarded untouched`);
    }
    let capabilities = ((wanted | LOGIN_CAPABILITIES | (options.database !== null ? Capability.CLIENT_CONNECT_WITH_DB : 0)) & hs.capabilities) >>> 0;
    capabilities = (capabilities | Capability.CLIENT_PROTOCOL_41) >>> 0;
    const maxPacketSize = options.maxPacketSize;

    let isTls = false;
    if (options.tls !== null) {
      if (!hasFlag(hs.capabilities, Capability.CLIENT_SSL)) throw new BackendProtocolError(where, 'does not offer TLS but backend_tls is configured');
      capabilities = (capabilities | Capability.CLIENT_SSL) >>> 0;
      channel.writePacket(buildSslRequest(capabilities, maxPacketSize, options.charset));
      channel.detach();
      const secure = tls.connect({ ...options.tls, socket, servername: options.tls.servername ?? (net.isIP(target.host) === 0 ? target.host : undefined) });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', () => resolve());
        secure.once('error', reject);
      });
      socket = secure;
      channel.attach(secure, Buffer.alloc(0));
      channel.isTls = true;
      isTls = true;
    }

    const password = options.login.password;
    let plugin = hs.authPluginName === '' ? AuthPlugin.MYSQL_NATIVE_PASSWORD : hs.authPluginName;
    let scramble = hs.scramble;
    channel.writePacket(
      buildHandshakeResponse41({
        capabilities,
        maxPacketSize,
        charset: options.charset,
        username: options.login.user,
        authResponse: tokenFor(plugin, password, scramble, where),
        database: options.database ?? '',
        authPluginName: plugin,
        connectAttributes: options.connectAttributes ?? new Map([['_client_name', 'doltgate']]),
      }),
    );
    for (;;) {
      const packet = await channel.readPacket();
      const first = packet.length > 0 ? packet[0] : -1;
      if (first === ResponseHeader.OK) break;
      if (first === ResponseHeader.ERR) {
        const err = parseErr(packet);
        throw new BackendProtocolError(where, `refused the login of user '${options.login.user}': ${err.message}`, err.errno);
      }
      if (first === ResponseHeader.EOF) {
        const sw = parseAuthSwitchRequest(packet);
        plugin = sw.pluginName;
        scramble = sw.pluginData;
        channel.writePacket(tokenFor(plugin, password, scramble, where));
        continue;
      }
      if (first === ResponseHeader.AUTH_MORE_DATA && plugin === AuthPlugin.CACHING_SHA2_PASSWORD) {
        const status = packet.length === 2 ? packet[1] : -1;
        if (status === CachingSha2Status.FAST_AUTH_SUCCESS) continue;
        if (status === CachingSha2Status.PERFORM_FULL_AUTHENTICATION) {
          // The password itself goes only to a server whose identity TLS verified: to anyone
          // else (an unverified certificate, or an RSA key the server hands over) it would be
          // handed in clear to whoever answers at that address.
          if (!isTls || options.tls?.rejectUnauthorized === false) {
            throw new BackendProtocolError(
              where,
              `asks for the password itself (caching_sha2_password full authentication), which doltgate sends only over TLS with a verified certificate; ${isTls ? 'set backend_tls.reject_unauthorized: true with the CA' : 'configure backend_tls'} or give user '${options.login.user}' mysql_native_password`,
            );
          }
          channel.writePacket(cleartextPasswordPayload(password));
          continue;
        }
      }
      throw new BackendProtocolError(where, `unexpected packet 0x${first.toString(16)} during login`);
    }
    clearTimeout(timer);
    const leftover = channel.detach();
    socket.setTimeout(0);
    return { socket, capabilities, serverVersion: hs.serverVersion, connectionId: hs.connectionId, isTls, statusFlags: hs.statusFlags, leftover, relay };
  } catch (error) {
    clearTimeout(timer);
    channel.detach();
    socket.on('error', () => undefined);
    socket.destroy();
    if (error instanceof BackendProtocolError) throw error;
    const e = error as NodeJS.ErrnoException;
    throw new BackendUnavailableError(where, e.code !== undefined ? `${e.code} ${e.message}` : e.message);
  }
}

function tokenFor(plugin: string, password: string, scramble: Buffer, where: string): Buffer {
  if (plugin === AuthPlugin.MYSQL_NATIVE_PASSWORD) return scrambleNativePassword(password, scramble);
  if (plugin === AuthPlugin.CACHING_SHA2_PASSWORD) return scrambleCachingSha2Password(password, scramble);
  throw new BackendProtocolError(where, `asks for auth plugin ${plugin}, which doltgate does not speak (use mysql_native_password or caching_sha2_password)`);
}
