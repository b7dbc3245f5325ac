/**
 * The connection phase toward a client: greeting (HandshakeV10), optional TLS upgrade after an
 * SSLRequest, HandshakeResponse41, authentication (client-auth.ts), and the final OK. On any
 * failure it writes the ERR the client should see (via errFrameForError) before rethrowing, so
 * the caller only has to close the socket.
 *
 * Capabilities: the greeting offers `offeredCapabilities` (what the proxy can honour end to end,
 * intersected with what the backends offer; see ProxyServer) plus CLIENT_SSL when TLS is
 * configured. The session runs with `client & offered`, and asks each backend for exactly the
 * packet-shaping part of that, so every packet can be forwarded untouched in both directions.
 *
 * TLS: the bytes after the SSLRequest belong to the TLS handshake; they are unshifted into the
 * socket before it is wrapped (Node's TLSSocket reads what the socket already buffered).
 */

import { Buffer } from 'node:buffer';
import * as tls from 'node:tls';
import type { Socket } from 'node:net';
import {
  AuthPlugin,
  buildHandshakeV10,
  Capability,
  Charset,
  generateScramble,
  isSslRequest,
  okFrame,
  parseHandshakeResponse41,
  ServerStatus,
} from '../protocol';
import type { ProxyUser } from '../config';
import type { ClientAuthenticator } from './client-auth';
import { CompressionRefusedError, errFrameForError, TlsRequiredError } from './errors';
import { heldVerdict, type LoginGate } from './login-verdict';
import { PacketChannel } from './packet-channel';

/** Connection-phase packets are small; anything bigger is an attack or garbage. */
export const MAX_HANDSHAKE_PACKET = 64 * 1024;

export interface ClientHandshakeSettings {
  connectionId: number;
  serverVersion: string;
  /** Without CLIENT_SSL; it is added when `secureContext` is set. */
  offeredCapabilities: number;
  secureContext: tls.SecureContext | null;
  tlsRequired: boolean;
  authenticator: ClientAuthenticator;
  gate: LoginGate;
  /** The password is proven; an error refuses the login all the same (no logged-in slot free). */
  admitLogin(user: ProxyUser): Error | null;
}

export interface ClientLogin {
  user: ProxyUser;
  /** Negotiated: client & offered. */
  capabilities: number;
  charset: number;
  database: string | null;
  /** The socket to use from now on (a TLSSocket after an upgrade). */
  socket: Socket;
  tls: boolean;
  /** The scramble of the greeting (COM_CHANGE_USER proofs are computed with it). */
  scramble: Buffer;
  /** Bytes the client sent after its last handshake packet. */
  leftover: Buffer;
  connectAttributes: Map<string, string> | null;
}

/** Runs the connection phase; `onChannel` lets the caller reach the channel (to time it out). */
export async function acceptClient(
  socket: Socket,
  settings: ClientHandshakeSettings,
  onChannel: (channel: PacketChannel) => void,
): Promise<ClientLogin> {
  const channel = new PacketChannel(socket, MAX_HANDSHAKE_PACKET, 0);
  onChannel(channel);
  try {
    const scramble = generateScramble();
    const offered = (settings.offeredCapabilities | (settings.secureContext !== null ? Capability.CLIENT_SSL : 0)) >>> 0;
    channel.writePacket(
      buildHandshakeV10({
        serverVersion: settings.serverVersion,
        connectionId: settings.connectionId,
        scramble,
        capabilities: offered,
        charset: Charset.UTF8MB4_GENERAL_CI,
        statusFlags: ServerStatus.SERVER_STATUS_AUTOCOMMIT,
        authPluginName: settings.authenticator.defaultPlugin,
      }),
    );

    let current: Socket = socket;
    let payload = await channel.readPacket();
    if (isSslRequest(payload) && settings.secureContext !== null) {
      const leftover = channel.detach();
      socket.pause();
      if (leftover.length > 0) socket.unshift(leftover);
      const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: settings.secureContext });
      // Until the session installs its own handlers, a TLS failure must not go unhandled.
      secure.on('error', () => undefined);
      current = secure;
      channel.isTls = true;
      channel.attach(secure, Buffer.alloc(0));
      payload = await channel.readPacket();
    } else if (settings.tlsRequired) {
      throw new TlsRequiredError();
    }

    const response = parseHandshakeResponse41(payload);
    // Before any authentication work: such a client cannot be served at all.
    if ((response.capabilities & (Capability.CLIENT_COMPRESS | Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM)) !== 0) throw new CompressionRefusedError();
    const capabilities = (response.capabilities & offered & ~Capability.CLIENT_SSL) >>> 0;
    const user = await heldVerdict(settings.gate, response.username, settings.authenticator.authenticate(channel, {
      username: response.username,
      clientPlugin: (response.capabilities & Capability.CLIENT_PLUGIN_AUTH) !== 0 ? (response.authPluginName ?? AuthPlugin.MYSQL_NATIVE_PASSWORD) : null,
      token: response.authResponse,
      scramble,
      canSwitch: (response.capabilities & Capability.CLIENT_PLUGIN_AUTH) !== 0,
    }));
    const refusal = settings.admitLogin(user);
    if (refusal !== null) throw refusal;
    channel.writeFrame((seq) => okFrame(seq, { statusFlags: ServerStatus.SERVER_STATUS_AUTOCOMMIT }, capabilities));
    const leftover = channel.detach();
    return {
      user,
      capabilities,
      charset: response.charset,
      database: response.database !== null && response.database !== '' ? response.database : null,
      socket: current,
      tls: channel.isTls,
      scramble,
      leftover,
      connectAttributes: response.connectAttributes,
    };
  } catch (error) {
    try {
      channel.writeFrame((seq) => errFrameForError(seq, error));
    } catch {
      // the socket is already gone
    }
    channel.detach();
    throw error;
  }
}

