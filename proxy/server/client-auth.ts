/**
 * Proves a client knows a proxy user's password, for the login and for COM_CHANGE_USER, with the
 * two plugins MySQL clients speak:
 *
 * - mysql_native_password: the scramble proof is checked against the stored SHA1(SHA1(pw)).
 * - caching_sha2_password: the proxy holds SHA256(SHA256(pw)) for every user, which is exactly
 *   what MySQL's cache holds, so the proxy IS the cache: a proof that verifies gets
 *   FAST_AUTH_SUCCESS at once. A proof that does not verify gets PERFORM_FULL_AUTHENTICATION, as
 *   MySQL answers a cache miss: over TLS the client then sends its password in clear; without TLS
 *   it asks for the proxy's RSA public key (a 2048-bit key made at start-up) and sends the
 *   password XOR scramble encrypted with RSA-OAEP. Either way the cleartext is checked against
 *   the same stored hash. A client that sends cleartext without TLS, or asks for the key when
 *   RSA exchange is off, is refused with "caching_sha2_password full authentication requires
 *   TLS; connect with TLS or use mysql_native_password".
 *
 * When the client answered with a plugin the user has no hash for (or one the proxy does not
 * speak), it is sent an AuthSwitchRequest to one the user has, with a fresh scramble. Unknown
 * users are refused like wrong passwords (ER_ACCESS_DENIED_ERROR), after the same exchange a
 * known user would get, so the reply does not reveal which user names exist.
 *
 * RSA decryption is the one costly step a client can demand before proving anything (1,373
 * decrypts a second raised a legitimate login from 4 to 39 ms), so it draws on a RateBucket:
 * when that is empty the exchange is refused with LoginBusyError rather than queued. Conforming
 * clients reach it only after a failed proof, so the bucket costs honest logins nothing.
 *
 * The recovered inner hash is not kept: the proxy logs in to Dolt with the backend credentials
 * mapped in the config, never with the client's.
 */

import { Buffer } from 'node:buffer';
import { constants as cryptoConstants, generateKeyPair, privateDecrypt, type KeyObject } from 'node:crypto';
import {
  AuthPlugin,
  buildAuthMoreData,
  buildAuthSwitchRequest,
  CachingSha2Status,
  generateScramble,
  recoverCachingSha2Stage1,
  recoverNativePasswordStage1,
  verifyCachingSha2Cleartext,
} from '../protocol';
import type { ProxyAuthPlugin, ProxyUser } from '../config';
import type { AuthIO } from './packet-channel';
import { AccessDeniedError, AuthNotSupportedError, LoginBusyError } from './errors';
import type { RateBucket } from './login-throttle';

export const FULL_AUTH_NEEDS_TLS =
  'caching_sha2_password full authentication requires TLS; connect with TLS or use mysql_native_password';

export interface RsaKeys {
  publicKeyPem: string;
  privateKey: KeyObject;
}

/** A fresh 2048-bit key pair for caching_sha2 full authentication without TLS. */
export function generateRsaKeys(): Promise<RsaKeys> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048 }, (error, publicKey, privateKey) => {
      if (error) reject(error);
      else resolve({ publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey });
    });
  });
}

export interface AuthAttempt {
  username: string;
  /** The plugin the client computed `token` with; null for a client without CLIENT_PLUGIN_AUTH. */
  clientPlugin: string | null;
  token: Buffer;
  /** The scramble `token` was computed with. */
  scramble: Buffer;
  /** The client can follow an AuthSwitchRequest (it sent CLIENT_PLUGIN_AUTH). */
  canSwitch: boolean;
}

const DUMMY_USER: ProxyUser = {
  name: '',
  nativeHash: Buffer.alloc(20, 1),
  cachingSha2Hash: Buffer.alloc(32, 1),
  backendUser: '',
  backendPassword: '',
  allowLocalInfile: false,
};

export class ClientAuthenticator {
  private readonly users: Map<string, ProxyUser>;

  constructor(
    users: readonly ProxyUser[],
    readonly defaultPlugin: ProxyAuthPlugin,
    private readonly rsa: RsaKeys | null,
    private readonly rsaBudget: RateBucket | null = null,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.users = new Map(users.map((u) => [u.name, u]));
  }

  /** The user if `attempt` (and whatever exchange follows on `io`) proves the password. */
  async authenticate(io: AuthIO, attempt: AuthAttempt): Promise<ProxyUser> {
    const known = this.users.get(attempt.username);
    const user = known ?? DUMMY_USER;
    const denied = (usedPassword: boolean): AccessDeniedError => new AccessDeniedError(attempt.username, usedPassword);

    let plugin = attempt.clientPlugin ?? AuthPlugin.MYSQL_NATIVE_PASSWORD;
    let token = attempt.token;
    let scramble = attempt.scramble;
    if (!this.userHas(user, plugin)) {
      if (!attempt.canSwitch) throw denied(token.length > 0);
      plugin = this.userHas(user, this.defaultPlugin)
        ? this.defaultPlugin
        : user.nativeHash !== null
          ? AuthPlugin.MYSQL_NATIVE_PASSWORD
          : AuthPlugin.CACHING_SHA2_PASSWORD;
      scramble = generateScramble();
      io.writePacket(buildAuthSwitchRequest(plugin, scramble));
      token = await io.readPacket();
    }

    if (plugin === AuthPlugin.MYSQL_NATIVE_PASSWORD) {
      const ok = recoverNativePasswordStage1(token, scramble, user.nativeHash as Buffer) !== null;
      if (!ok || known === undefined) throw denied(token.length > 0);
      return known;
    }

    // caching_sha2_password
    const hash = user.cachingSha2Hash as Buffer;
    // An empty answer for a user without a password: OK at once, with no FAST_AUTH_SUCCESS first,
    // as MySQL answers it. PyMySQL counts on that (it reads the OK where the status byte would
    // be: "Packet sequence number wrong"); other clients accept either.
    if (token.length === 0 && hash.length === 0 && known !== undefined) return known;
    if (recoverCachingSha2Stage1(token, scramble, hash) !== null && known !== undefined) {
      io.writePacket(buildAuthMoreData(Buffer.from([CachingSha2Status.FAST_AUTH_SUCCESS])));
      return known;
    }
    io.writePacket(buildAuthMoreData(Buffer.from([CachingSha2Status.PERFORM_FULL_AUTHENTICATION])));
    const reply = await io.readPacket();
    let cleartext: Buffer;
    if (io.isTls) {
      cleartext = reply;
    } else if (reply.length === 1 && reply[0] === CachingSha2Status.REQUEST_PUBLIC_KEY) {
      if (this.rsa === null) throw new AuthNotSupportedError(FULL_AUTH_NEEDS_TLS);
      this.takeRsaToken();
      io.writePacket(buildAuthMoreData(Buffer.from(this.rsa.publicKeyPem, 'ascii')));
      cleartext = this.decryptPassword(await io.readPacket(), scramble);
    } else if (this.rsa !== null && reply.length === 256) {
      // The client already had the key (configured public key) and sent the encrypted password.
      this.takeRsaToken();
      cleartext = this.decryptPassword(reply, scramble);
    } else {
      throw new AuthNotSupportedError(FULL_AUTH_NEEDS_TLS);
    }
    if (verifyCachingSha2Cleartext(cleartext, hash) === null || known === undefined) throw denied(true);
    return known;
  }

  private takeRsaToken(): void {
    if (this.rsaBudget !== null && !this.rsaBudget.tryTake(this.now())) throw new LoginBusyError('RSA password exchanges (login.rsa_exchanges_per_second)');
  }

  private userHas(user: ProxyUser, plugin: string): boolean {
    if (plugin === AuthPlugin.MYSQL_NATIVE_PASSWORD) return user.nativeHash !== null;
    if (plugin === AuthPlugin.CACHING_SHA2_PASSWORD) return user.cachingSha2Hash !== null;
    return false;
  }

  /** RSA-OAEP(SHA-1) decrypt, then undo the XOR with the scramble (repeated over the length). */
  private decryptPassword(encrypted: Buffer, scramble: Buffer): Buffer {
    const rsa = this.rsa as RsaKeys;
    let plain: Buffer;
    try {
      plain = privateDecrypt({ key: rsa.privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, encrypted);
    } catch {
      return Buffer.from([0xff]); // undecryptable: verifies as a wrong password
    }
    for (let i = 0; i < plain.length; i++) plain[i] ^= scramble[i % scramble.length];
    return plain;
  }
}
