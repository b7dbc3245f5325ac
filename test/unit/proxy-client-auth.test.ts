/**
 * ClientAuthenticator against a scripted client (a fake AuthIO): every path of the two plugins —
 * native verify, caching_sha2 fast path, plugin switch, full authentication over TLS (cleartext)
 * and without TLS (RSA key exchange, or the clear refusal when no key is available) — and that
 * unknown users and wrong passwords get the same 1045 after the same exchange.
 */

import { expect } from 'chai';
import { constants as cryptoConstants, publicEncrypt } from 'node:crypto';
import { hashProxyPassword, parseProxyConfig, type ProxyUser } from '../../proxy/config';
import { generateScramble, parseAuthSwitchRequest, scrambleCachingSha2Password, scrambleNativePassword } from '../../proxy/protocol';
import { ClientAuthenticator, FULL_AUTH_NEEDS_TLS, generateRsaKeys, type RsaKeys } from '../../proxy/server/client-auth';
import type { AuthIO } from '../../proxy/server/packet-channel';

/** Replies to the server's packets with `script(packet)`; records what the server wrote. */
class ScriptedClient implements AuthIO {
  readonly written: Buffer[] = [];
  private answers: Buffer[] = [];
  constructor(
    readonly isTls: boolean,
    private readonly script: (packet: Buffer) => Buffer,
  ) {}
  writePacket(payload: Uint8Array): void {
    const p = Buffer.from(payload);
    this.written.push(p);
    this.answers.push(this.script(p));
  }
  readPacket(): Promise<Buffer> {
    const a = this.answers.shift();
    return a === undefined ? Promise.reject(new Error('client has nothing to say')) : Promise.resolve(a);
  }
}

const users: ProxyUser[] = parseProxyConfig({
  users: [
    { name: 'both', ...hashProxyPassword('pw') },
    { name: 'native', native_password_hash: hashProxyPassword('pw').native_password_hash },
    { name: 'sha', caching_sha2_hash: hashProxyPassword('pw').caching_sha2_hash },
    { name: 'empty', ...hashProxyPassword('') },
  ],
  static_topology: { primary: 'n1', nodes: { n1: { port: 1 } } },
}).users;

describe('ClientAuthenticator', function () {
  let rsa: RsaKeys;
  before(async () => {
    rsa = await generateRsaKeys();
  });

  async function attempt(
    auth: ClientAuthenticator,
    io: AuthIO,
    username: string,
    plugin: string | null,
    token: (scramble: Buffer) => Buffer,
  ): Promise<string> {
    const scramble = generateScramble();
    try {
      const u = await auth.authenticate(io, { username, clientPlugin: plugin, token: token(scramble), scramble, canSwitch: plugin !== null });
      return `ok ${u.name}`;
    } catch (e) {
      return `${(e as { errno?: number }).errno}: ${(e as Error).message}`;
    }
  }

  it('mysql_native_password: a right proof passes, a wrong one is 1045', async () => {
    const auth = new ClientAuthenticator(users, 'mysql_native_password', rsa);
    const io = new ScriptedClient(false, () => Buffer.alloc(0));
    expect(await attempt(auth, io, 'native', 'mysql_native_password', (s) => scrambleNativePassword('pw', s))).to.equal('ok native');
    expect(await attempt(auth, io, 'native', 'mysql_native_password', (s) => scrambleNativePassword('nope', s))).to.match(/^1045: Access denied for user 'native'/);
    expect(await attempt(auth, io, 'empty', 'mysql_native_password', () => Buffer.alloc(0))).to.equal('ok empty');
    expect(io.written).to.have.length(0);
  });

  it('caching_sha2_password fast path: FAST_AUTH_SUCCESS, no further exchange', async () => {
    const auth = new ClientAuthenticator(users, 'caching_sha2_password', rsa);
    const io = new ScriptedClient(false, () => Buffer.alloc(0));
    expect(await attempt(auth, io, 'sha', 'caching_sha2_password', (s) => scrambleCachingSha2Password('pw', s))).to.equal('ok sha');
    expect(io.written.map((p) => p.toString('hex'))).to.deep.equal(['0103']);
  });

  it('caching_sha2_password and no password: an empty answer gets OK at once, with no FAST_AUTH_SUCCESS first (as MySQL; PyMySQL needs it)', async () => {
    const auth = new ClientAuthenticator(users, 'caching_sha2_password', rsa);
    const io = new ScriptedClient(false, () => Buffer.alloc(0));
    expect(await attempt(auth, io, 'empty', 'caching_sha2_password', () => Buffer.alloc(0))).to.equal('ok empty');
    expect(io.written, 'nothing before the OK').to.have.length(0);
    // An empty answer is no proof of a password the user has.
    const other = new ScriptedClient(false, () => Buffer.alloc(0));
    expect(await attempt(auth, other, 'sha', 'caching_sha2_password', () => Buffer.alloc(0))).to.not.equal('ok sha');
    expect(other.written.map((p) => p.toString('hex'))[0], 'a wrong proof still gets PERFORM_FULL_AUTHENTICATION').to.equal('0104');
  });

  it('switches a client to a plugin the user has, with a fresh scramble', async () => {
    const auth = new ClientAuthenticator(users, 'caching_sha2_password', rsa);
    const io = new ScriptedClient(false, (p) => {
      const sw = parseAuthSwitchRequest(p);
      expect(sw.pluginName).to.equal('mysql_native_password');
      return scrambleNativePassword('pw', sw.pluginData);
    });
    expect(await attempt(auth, io, 'native', 'caching_sha2_password', (s) => scrambleCachingSha2Password('pw', s))).to.equal('ok native');
    const io2 = new ScriptedClient(false, (p) => {
      if (p[0] === 0xfe) return scrambleCachingSha2Password('pw', parseAuthSwitchRequest(p).pluginData);
      return Buffer.alloc(0);
    });
    expect(await attempt(auth, io2, 'sha', 'mysql_native_password', (s) => scrambleNativePassword('pw', s))).to.equal('ok sha');
    expect(io2.written[0][0]).to.equal(0xfe);
    // A client that cannot switch (no CLIENT_PLUGIN_AUTH) and has no usable proof is refused.
    expect(await attempt(auth, new ScriptedClient(false, () => Buffer.alloc(0)), 'sha', null, (s) => scrambleNativePassword('pw', s))).to.match(/^1045/);
  });

  it('full authentication over TLS: the cleartext password is checked against the stored hash', async () => {
    const auth = new ClientAuthenticator(users, 'caching_sha2_password', null);
    const good = new ScriptedClient(true, (p) => (p[1] === 4 ? Buffer.from('pw\0') : Buffer.alloc(0)));
    expect(await attempt(auth, good, 'sha', 'caching_sha2_password', () => Buffer.alloc(32, 1))).to.equal('ok sha');
    expect(good.written.map((p) => p.toString('hex'))).to.deep.equal(['0104']);
    const bad = new ScriptedClient(true, () => Buffer.from('wrong\0'));
    expect(await attempt(auth, bad, 'sha', 'caching_sha2_password', () => Buffer.alloc(32, 1))).to.match(/^1045/);
  });

  it('full authentication without TLS: RSA key exchange', async () => {
    const auth = new ClientAuthenticator(users, 'caching_sha2_password', rsa);
    let scramble: Buffer = Buffer.alloc(0);
    const io = new ScriptedClient(false, (p) => {
      if (p[1] === 4) return Buffer.from([2]);
      const plain = Buffer.from('pw\0');
      for (let i = 0; i < plain.length; i++) plain[i] ^= scramble[i % scramble.length];
      return publicEncrypt({ key: p.subarray(1).toString('ascii'), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plain);
    });
    const result = await attempt(auth, io, 'sha', 'caching_sha2_password', (s) => {
      scramble = s;
      return Buffer.alloc(32, 1);
    });
    expect(result).to.equal('ok sha');
    expect(io.written[1].toString('ascii')).to.match(/^\x01-----BEGIN PUBLIC KEY-----/);
  });

  it('full authentication without TLS and without a key is refused with the clear message', async () => {
    const auth = new ClientAuthenticator(users, 'caching_sha2_password', null);
    const keyRequest = new ScriptedClient(false, () => Buffer.from([2]));
    expect(await attempt(auth, keyRequest, 'sha', 'caching_sha2_password', () => Buffer.alloc(32, 1))).to.equal(`1251: doltgate: ${FULL_AUTH_NEEDS_TLS}`);
    const cleartext = new ScriptedClient(false, () => Buffer.from('pw\0'));
    expect(await attempt(new ClientAuthenticator(users, 'caching_sha2_password', rsa), cleartext, 'sha', 'caching_sha2_password', () => Buffer.alloc(32, 1))).to.match(/^1251: .*requires TLS/);
  });

  it('an unknown user goes through the same exchange and gets the same 1045', async () => {
    const auth = new ClientAuthenticator(users, 'caching_sha2_password', null);
    const io = new ScriptedClient(true, () => Buffer.from('pw\0'));
    expect(await attempt(auth, io, 'ghost', 'caching_sha2_password', (s) => scrambleCachingSha2Password('pw', s))).to.match(/^1045: Access denied for user 'ghost'/);
    expect(io.written.map((p) => p.toString('hex'))).to.deep.equal(['0104']);
    expect(await attempt(auth, new ScriptedClient(false, () => Buffer.alloc(0)), 'ghost', 'mysql_native_password', (s) => scrambleNativePassword('pw', s))).to.match(/^1045/);
  });
});
