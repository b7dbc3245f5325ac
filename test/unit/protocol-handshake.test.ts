/**
 * Connection phase: HandshakeV10 from hand-written captures and round trips, HandshakeResponse41
 * in its three auth-response encodings, SSLRequest detection, auth switch / more data, and
 * COM_CHANGE_USER. Fixtures are written byte by byte from the protocol docs.
 */

import { expect } from 'chai';

import { Capability, ErrorCode } from '../../proxy/protocol/constants';
import { MalformedPacketError } from '../../proxy/protocol/errors';
import {
  buildAuthMoreData,
  buildAuthSwitchRequest,
  buildChangeUser,
  buildHandshakeResponse41,
  buildHandshakeV10,
  buildSslRequest,
  isSslRequest,
  parseAuthMoreData,
  parseAuthSwitchRequest,
  parseChangeUser,
  parseHandshakeResponse41,
  parseHandshakeV10,
} from '../../proxy/protocol/handshake';

const hex = (s: string): Buffer => Buffer.from(s.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');
const z = (s: string): Buffer => Buffer.from(s + '\0', 'latin1');
const seq = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => from + i));

// A MySQL 8.0 server greeting, as on the wire (payload only).
const MYSQL8_GREETING = hex(`
  0a                                        # protocol version 10
  382e302e3336 00                           # "8.0.36" NUL
  2a000000                                  # connection id 42
  3132333435363738                          # scramble part 1 "12345678"
  00                                        # filler
  ffff                                      # capability flags, low 16 bits
  ff                                        # charset 255 utf8mb4_0900_ai_ci
  0200                                      # status: AUTOCOMMIT
  ffdf                                      # capability flags, high 16 bits
  15                                        # auth plugin data length 21
  00000000000000000000                      # reserved
  6162636465666768696a6b6c 00               # scramble part 2 "abcdefghijkl" NUL
  63616368696e675f736861325f70617373776f7264 00  # "caching_sha2_password" NUL
`);

// An older-style greeting whose plugin name ends with the packet instead of a NUL.
const NATIVE_GREETING_NO_NUL = hex(`
  0a 352e372e3939 00 07000000 4142434445464748 00
  ffff 21 0200 ff81 15 00000000000000000000
  494a4b4c4d4e4f5051525354 00
  6d7973716c5f6e61746976655f70617373776f7264      # "mysql_native_password", no NUL
`);

const CLIENT_CAPS =
  Capability.CLIENT_LONG_PASSWORD |
  Capability.CLIENT_LONG_FLAG |
  Capability.CLIENT_CONNECT_WITH_DB |
  Capability.CLIENT_LOCAL_FILES |
  Capability.CLIENT_PROTOCOL_41 |
  Capability.CLIENT_INTERACTIVE |
  Capability.CLIENT_TRANSACTIONS |
  Capability.CLIENT_SECURE_CONNECTION |
  Capability.CLIENT_MULTI_STATEMENTS |
  Capability.CLIENT_MULTI_RESULTS |
  Capability.CLIENT_PS_MULTI_RESULTS |
  Capability.CLIENT_PLUGIN_AUTH |
  Capability.CLIENT_CONNECT_ATTRS |
  Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.CLIENT_SESSION_TRACK |
  Capability.CLIENT_DEPRECATE_EOF;

// A mysql 8 client's HandshakeResponse41.
const CLIENT_RESPONSE = Buffer.concat([
  hex(`
    8da6bf01                                # capabilities 0x01BFA68D
    00000001                                # max packet 16 MiB
    ff                                      # charset 255
    0000000000000000000000000000000000000000000000  # 23 reserved bytes
  `),
  z('root'),
  hex('20'), // auth response length 32 (lenenc)
  seq(1, 32),
  z('shop'),
  z('caching_sha2_password'),
  hex('20'), // attributes: 32 bytes
  hex('03'), Buffer.from('_os'), hex('05'), Buffer.from('Linux'),
  hex('0c'), Buffer.from('_client_name'), hex('08'), Buffer.from('libmysql'),
]);

/** Independent HandshakeResponse41 encoder for the three auth-response encodings. */
function encodeResponse(encoding: 'lenenc' | 'length-byte' | 'nul', auth: Buffer): Buffer {
  const caps =
    Capability.CLIENT_PROTOCOL_41 |
    Capability.CLIENT_PLUGIN_AUTH |
    (encoding === 'lenenc' ? Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | Capability.CLIENT_SECURE_CONNECTION : 0) |
    (encoding === 'length-byte' ? Capability.CLIENT_SECURE_CONNECTION : 0);
  const head = Buffer.alloc(32);
  head.writeUInt32LE(caps >>> 0, 0);
  head.writeUInt32LE(0, 4);
  head[8] = 45;
  const authField =
    encoding === 'nul' ? Buffer.concat([auth, hex('00')]) : Buffer.concat([Buffer.from([auth.length]), auth]);
  return Buffer.concat([head, z('app'), authField, z('mysql_native_password')]);
}

describe('protocol/handshake', () => {
  describe('HandshakeV10', () => {
    it('parses a MySQL 8 greeting captured as bytes', () => {
      const h = parseHandshakeV10(MYSQL8_GREETING);
      expect(h).to.deep.include({
        serverVersion: '8.0.36',
        connectionId: 42,
        capabilities: 0xdfffffff,
        charset: 255,
        statusFlags: 2,
        authPluginName: 'caching_sha2_password',
      });
      expect(h.scramble.toString('latin1')).to.equal('12345678abcdefghijkl');
    });

    it('parses a greeting whose plugin name is not NUL-terminated', () => {
      const h = parseHandshakeV10(NATIVE_GREETING_NO_NUL);
      expect([h.serverVersion, h.connectionId, h.charset, h.authPluginName]).to.deep.equal([
        '5.7.99',
        7,
        0x21,
        'mysql_native_password',
      ]);
      expect(h.scramble.toString('latin1')).to.equal('ABCDEFGHIJKLMNOPQRST');
    });

    it('builds exactly the captured bytes from the same fields', () => {
      const built = buildHandshakeV10({
        serverVersion: '8.0.36',
        connectionId: 42,
        scramble: Buffer.from('12345678abcdefghijkl', 'latin1'),
        capabilities: 0xdfffffff,
        charset: 255,
        statusFlags: 2,
        authPluginName: 'caching_sha2_password',
      });
      expect(built.toString('hex')).to.equal(MYSQL8_GREETING.toString('hex'));
    });

    it('round-trips the proxy greeting', () => {
      const fields = {
        serverVersion: '8.0.33-doltgate',
        connectionId: 0xfffffffe,
        scramble: seq(40, 20),
        capabilities: Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_PLUGIN_AUTH | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_SSL,
        charset: 45,
        statusFlags: 2,
        authPluginName: 'mysql_native_password',
      };
      expect(parseHandshakeV10(buildHandshakeV10(fields))).to.deep.equal(fields);
    });

    it('rejects an ERR or a truncated greeting as a bad handshake', () => {
      for (const bad of [hex('ff1004'), MYSQL8_GREETING.subarray(0, 12)]) {
        let caught: unknown;
        try {
          parseHandshakeV10(bad);
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(MalformedPacketError);
      }
    });
  });

  describe('HandshakeResponse41 and SSLRequest', () => {
    it('parses a mysql 8 client response captured as bytes', () => {
      const r = parseHandshakeResponse41(CLIENT_RESPONSE);
      expect(r.capabilities).to.equal(CLIENT_CAPS >>> 0);
      expect([r.maxPacketSize, r.charset, r.username, r.database, r.authPluginName]).to.deep.equal([
        16 * 1024 * 1024,
        255,
        'root',
        'shop',
        'caching_sha2_password',
      ]);
      expect(r.authResponse.equals(seq(1, 32))).to.equal(true);
      expect([...(r.connectAttributes ?? [])]).to.deep.equal([
        ['_os', 'Linux'],
        ['_client_name', 'libmysql'],
      ]);
    });

    for (const encoding of ['lenenc', 'length-byte', 'nul'] as const) {
      it(`reads the auth response in its ${encoding} encoding`, () => {
        const auth = seq(0x41, 20); // no NUL bytes, so the NUL encoding can carry it
        const r = parseHandshakeResponse41(encodeResponse(encoding, auth));
        expect([r.username, r.authResponse.toString('hex'), r.database, r.authPluginName, r.connectAttributes]).to.deep.equal([
          'app',
          auth.toString('hex'),
          null,
          'mysql_native_password',
          null,
        ]);
      });

      it(`builds the ${encoding} encoding the way the test encoder does`, () => {
        const auth = seq(0x41, 20);
        const expected = encodeResponse(encoding, auth);
        const built = buildHandshakeResponse41({
          capabilities: expected.readUInt32LE(0),
          charset: 45,
          username: 'app',
          authResponse: auth,
          authPluginName: 'mysql_native_password',
        });
        expect(built.toString('hex')).to.equal(expected.toString('hex'));
      });
    }

    it('round-trips a backend login with database and attributes', () => {
      const fields = {
        capabilities: CLIENT_CAPS,
        maxPacketSize: 1 << 24,
        charset: 255,
        username: 'doltgate',
        authResponse: seq(200, 32),
        database: 'shop',
        authPluginName: 'caching_sha2_password',
        connectAttributes: new Map([['program_name', 'doltgate']]),
      };
      const r = parseHandshakeResponse41(buildHandshakeResponse41(fields));
      expect({ ...r, capabilities: r.capabilities | 0 }).to.deep.equal({ ...fields, capabilities: fields.capabilities | 0 });
    });

    it('tells a 32-byte SSLRequest from a full response', () => {
      const ssl = buildSslRequest(CLIENT_CAPS, 1 << 24, 255);
      expect(ssl.length).to.equal(32);
      expect(isSslRequest(ssl)).to.equal(true);
      expect(ssl.readUInt32LE(0) & Capability.CLIENT_SSL).to.not.equal(0);
      expect(isSslRequest(CLIENT_RESPONSE)).to.equal(false);
      expect(isSslRequest(CLIENT_RESPONSE.subarray(0, 32))).to.equal(false); // no CLIENT_SSL bit
      // Parsing an SSLRequest as a response fails as a bad handshake, never crashes.
      let caught: unknown;
      try {
        parseHandshakeResponse41(ssl);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(MalformedPacketError);
      expect((caught as MalformedPacketError).errno).to.equal(ErrorCode.ER_HANDSHAKE_ERROR);
    });

    it('rejects a pre-4.1 client', () => {
      const old = Buffer.from(CLIENT_RESPONSE);
      old.writeUInt32LE(CLIENT_CAPS & ~Capability.CLIENT_PROTOCOL_41, 0);
      expect(() => parseHandshakeResponse41(old)).to.throw(MalformedPacketError, /PROTOCOL_41/);
    });
  });

  describe('auth exchange packets', () => {
    it('parses an AuthSwitchRequest and drops the trailing NUL of its scramble', () => {
      const payload = Buffer.concat([hex('fe'), z('mysql_native_password'), seq(0x30, 20), hex('00')]);
      const r = parseAuthSwitchRequest(payload);
      expect(r.pluginName).to.equal('mysql_native_password');
      expect(r.pluginData.equals(seq(0x30, 20))).to.equal(true);
      expect(buildAuthSwitchRequest('mysql_native_password', seq(0x30, 20)).equals(payload)).to.equal(true);
    });

    it('names the bare 0xFE request as the old-password switch', () => {
      expect(parseAuthSwitchRequest(hex('fe')).pluginName).to.equal('mysql_old_password');
    });

    it('parses and builds AuthMoreData (caching_sha2 fast-auth status)', () => {
      expect(parseAuthMoreData(hex('0103')).toString('hex')).to.equal('03');
      expect(buildAuthMoreData(hex('04')).toString('hex')).to.equal('0104');
      expect(() => parseAuthMoreData(hex('0003'))).to.throw(MalformedPacketError);
    });
  });

  describe('COM_CHANGE_USER', () => {
    const caps =
      Capability.CLIENT_PROTOCOL_41 |
      Capability.CLIENT_SECURE_CONNECTION |
      Capability.CLIENT_PLUGIN_AUTH |
      Capability.CLIENT_CONNECT_ATTRS;

    it('parses a change-user packet captured as bytes', () => {
      const payload = Buffer.concat([
        hex('11'),
        z('bob'),
        hex('14'), seq(0x50, 20),
        z('shop'),
        hex('2d00'), // charset 45
        z('mysql_native_password'),
        hex('0a 03'), Buffer.from('_os'), hex('05'), Buffer.from('Linux'),
      ]);
      const r = parseChangeUser(payload, caps);
      expect([r.username, r.database, r.charset, r.authPluginName]).to.deep.equal(['bob', 'shop', 45, 'mysql_native_password']);
      expect(r.authResponse.equals(seq(0x50, 20))).to.equal(true);
      expect([...(r.connectAttributes ?? [])]).to.deep.equal([['_os', 'Linux']]);
    });

    it('accepts an old client that stops after the database', () => {
      const r = parseChangeUser(Buffer.concat([hex('11'), z('bob'), hex('00'), z('')]), caps);
      expect([r.username, r.authResponse.length, r.database, r.charset, r.authPluginName]).to.deep.equal(['bob', 0, '', null, null]);
    });

    it('round-trips buildChangeUser', () => {
      const fields = { username: 'ann', authResponse: seq(1, 20), database: 'db1', charset: 255, authPluginName: 'mysql_native_password' };
      const r = parseChangeUser(buildChangeUser(caps, fields), caps);
      expect({ ...r, authResponse: r.authResponse.toString('hex') }).to.deep.equal({
        ...fields,
        authResponse: fields.authResponse.toString('hex'),
        connectAttributes: new Map(),
      });
    });
  });
});
