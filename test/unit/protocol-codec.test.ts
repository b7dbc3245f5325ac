/**
 * encode / decode / packet-writer / command: primitives, OK/ERR/EOF in both directions,
 * frame splitting, classification by first byte and length, COM_QUERY text offset. Expected
 * bytes are written out by hand from the protocol docs.
 */

import { expect } from 'chai';

import {
  Capability,
  Command,
  ErrorCode,
  ServerStatus,
  SessionTrackType,
  sqlStateFor,
} from '../../proxy/protocol/constants';
import {
  queryText,
  queryTextOffset,
  statementIdOf,
  executeFlagsOf,
  initDbSchemaOf,
} from '../../proxy/protocol/command';
import {
  PayloadCursor,
  decodeSchemaChange,
  isEndOfRows,
  isEofPacket,
  isErrPacket,
  isOkPacket,
  parseEof,
  parseErr,
  parseOk,
  parseSessionStateChanges,
  readLenencInt,
  statusFlagsOf,
} from '../../proxy/protocol/decode';
import { PayloadWriter, encodeLenencInt } from '../../proxy/protocol/encode';
import { MalformedPacketError } from '../../proxy/protocol/errors';
import {
  COM_PING_FRAME,
  buildEofPayload,
  buildErrPayload,
  buildOkPayload,
  comQueryFrame,
  comStmtCloseFrame,
  errFrameFor,
  frame,
  framesFor,
  okFrame,
  plainOkFrame,
} from '../../proxy/protocol/packet-writer';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const TRACK = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SESSION_TRACK;
const NO_TRACK = Capability.CLIENT_PROTOCOL_41;
const DEPRECATE = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_DEPRECATE_EOF;

/** Independent frame parser: [length, seq] of each frame in a buffer. */
function frameHeaders(buf: Buffer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let p = 0; p < buf.length; ) {
    const len = buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16);
    out.push([len, buf[p + 3]]);
    p += 4 + len;
  }
  return out;
}

describe('protocol/codec', () => {
  describe('length-encoded integers', () => {
    const table: Array<[string, number | bigint, string]> = [
      ['zero', 0, '00'],
      ['largest 1-byte', 250, 'fa'],
      ['smallest 3-byte', 251, 'fcfb00'],
      ['largest 3-byte', 0xffff, 'fcffff'],
      ['smallest 4-byte', 0x10000, 'fd000001'],
      ['largest 4-byte', 0xffffff, 'fdffffff'],
      ['smallest 9-byte', 0x1000000, 'fe0000000100000000'],
      ['2^53 - 1', Number.MAX_SAFE_INTEGER, 'feffffffffffff1f00'],
      ['2^64 - 1 as bigint', 0xffffffffffffffffn, 'feffffffffffffffff'],
    ];
    for (const [name, value, wire] of table) {
      it(`${name}: encodes as ${wire} and decodes back`, () => {
        expect(encodeLenencInt(value).toString('hex')).to.equal(wire);
        const c = new PayloadCursor(hex(wire));
        if (typeof value === 'bigint') expect(c.lenencBigInt()).to.equal(value);
        else expect(c.lenencInt()).to.equal(value);
        expect(c.atEnd).to.equal(true);
      });
    }

    it('reads NULL (0xFB) only where allowed and rejects 0xFF', () => {
      expect(new PayloadCursor(hex('fb')).lenencIntOrNull()).to.equal(null);
      expect(() => readLenencInt(hex('fb'), 0)).to.throw(MalformedPacketError);
      expect(() => readLenencInt(hex('ff'), 0)).to.throw(MalformedPacketError);
    });

    it('reports a value that runs past the payload as malformed', () => {
      expect(() => readLenencInt(hex('fc01'), 0)).to.throw(MalformedPacketError, /past the payload end/);
    });
  });

  describe('PayloadWriter strings', () => {
    it('writes lenenc, NUL-terminated and raw strings as UTF-8', () => {
      const w = new PayloadWriter(2).lenencString('déf').nulString('ab').text('x').zeros(2);
      expect(w.toPayload().toString('hex')).to.equal('04' + Buffer.from('déf').toString('hex') + '616200' + '78' + '0000');
    });

    it('refuses a NUL inside a NUL-terminated string', () => {
      expect(() => new PayloadWriter().nulString('a\0b')).to.throw(RangeError);
    });
  });

  describe('frame splitting', function () {
    this.timeout(30_000);
    const cases: Array<[string, number, Array<[number, number]>]> = [
      ['empty payload', 0, [[0, 3]]],
      ['small payload', 5, [[5, 3]]],
      ['one byte short of a full frame', 0xfffffe, [[0xfffffe, 3]]],
      ['exactly 0xFFFFFF: full frame plus an empty one', 0xffffff, [[0xffffff, 3], [0, 4]]],
      ['0xFFFFFF + 5', 0xffffff + 5, [[0xffffff, 3], [5, 4]]],
    ];
    const big = Buffer.alloc(0xffffff + 5, 0x61);
    for (const [name, length, headers] of cases) {
      it(name, () => {
        const out = frame(3, big.subarray(0, length));
        expect(frameHeaders(out)).to.deep.equal(headers);
        expect(out.length).to.equal(length + 4 * headers.length);
        expect(framesFor(length)).to.equal(headers.length);
      });
    }

    it('wraps sequence ids past 255', () => {
      expect(frameHeaders(frame(255, big))).to.deep.equal([[0xffffff, 255], [5, 0]]);
    });

    it('PayloadWriter.toFrame splits the same way', () => {
      const w = new PayloadWriter().bytes(big.subarray(0, 0xffffff));
      expect(frameHeaders(w.toFrame(0))).to.deep.equal([[0xffffff, 0], [0, 1]]);
    });
  });

  describe('OK packets', () => {
    it('parses a hand-written OK: 2 rows, insert id 300, in transaction, 1 warning, info text', () => {
      const ok = parseOk(hex('00 02 fc2c01 0100 0100'), NO_TRACK);
      expect(ok).to.include({ affectedRows: 2, lastInsertId: 300, statusFlags: 1, warnings: 1, info: '' });
      const withInfo = Buffer.concat([hex('00 02 fc2c01 0100 0100'), Buffer.from('Rows matched: 2')]);
      expect(parseOk(withInfo, NO_TRACK).info).to.equal('Rows matched: 2');
    });

    it('parses session-track OKs with and without the (optional) info field', () => {
      // Info omitted: MySQL does that when it is empty and nothing changed.
      expect(parseOk(hex('00 00 00 0200 0000'), TRACK)).to.include({ info: '', statusFlags: 2 });
      // Schema change: status has SESSION_STATE_CHANGED (0x4000), info '', state block.
      const block = hex('01 05 04 74657374'); // type 1, data = lenenc "test"
      const ok = parseOk(Buffer.concat([hex('00 00 00 0240 0000 00'), hex('07'), block]), TRACK);
      expect(ok.statusFlags).to.equal(0x4002);
      expect(ok.sessionStateChanges?.equals(block)).to.equal(true);
      const changes = parseSessionStateChanges(ok.sessionStateChanges as Buffer);
      expect(changes.map((c) => c.type)).to.deep.equal([SessionTrackType.SESSION_TRACK_SCHEMA]);
      expect(decodeSchemaChange(changes[0].data)).to.equal('test');
    });

    const roundTrips: Array<[string, number, Parameters<typeof buildOkPayload>[0]]> = [
      ['plain', NO_TRACK, {}],
      ['big numbers and info', NO_TRACK, { affectedRows: 70000, lastInsertId: 2 ** 40, warnings: 3, info: 'hi', statusFlags: 3 }],
      ['session track, no changes', TRACK, { info: 'x', statusFlags: ServerStatus.SERVER_STATUS_IN_TRANS }],
      ['session track with changes', TRACK, { sessionStateChanges: hex('010504 74657374'), statusFlags: 2 }],
      ['0xFE end-of-rows form', DEPRECATE, { asEndOfRows: true, statusFlags: 0x22, warnings: 1 }],
    ];
    for (const [name, caps, fields] of roundTrips) {
      it(`build then parse round trip: ${name}`, () => {
        const parsed = parseOk(buildOkPayload(fields, caps), caps);
        expect(parsed.header).to.equal(fields.asEndOfRows === true ? 0xfe : 0x00);
        expect(parsed.affectedRows).to.equal(Number(fields.affectedRows ?? 0));
        expect(parsed.lastInsertId).to.equal(Number(fields.lastInsertId ?? 0));
        expect(parsed.warnings).to.equal(fields.warnings ?? 0);
        expect(parsed.info).to.equal(fields.info ?? '');
        expect(parsed.statusFlags & ~0x4000).to.equal(fields.statusFlags ?? 2);
        expect(parsed.sessionStateChanges?.toString('hex') ?? null).to.equal(
          fields.sessionStateChanges === undefined ? null : Buffer.from(fields.sessionStateChanges).toString('hex'),
        );
      });
    }

    it('okFrame frames the payload; plainOkFrame is the shared minimal OK', () => {
      expect(okFrame(2, {}, NO_TRACK).toString('hex')).to.equal('0700000200000002000000');
      const p = plainOkFrame(1, ServerStatus.SERVER_STATUS_IN_TRANS | ServerStatus.SERVER_STATUS_AUTOCOMMIT);
      expect(p.toString('hex')).to.equal('0700000100000003000000');
      expect(plainOkFrame(1, 3)).to.equal(p);
    });
  });

  describe('ERR and EOF packets', () => {
    it('parses a hand-written ERR with SQLSTATE', () => {
      const payload = Buffer.concat([hex('ff 1504 23'), Buffer.from("28000Access denied for user 'bob'")]);
      expect(parseErr(payload)).to.deep.equal({ errno: 1045, sqlState: '28000', message: "Access denied for user 'bob'" });
    });

    it('parses an ERR without the SQLSTATE marker', () => {
      expect(parseErr(Buffer.concat([hex('ff 1004'), Buffer.from('Too many connections')]))).to.deep.equal({
        errno: 1040,
        sqlState: '',
        message: 'Too many connections',
      });
    });

    it('builds ERR packets and pairs errno with its SQLSTATE', () => {
      expect(buildErrPayload(1317, '70100', 'stop').toString('hex')).to.equal('ff2505' + '23' + Buffer.from('70100stop').toString('hex'));
      const f = errFrameFor(1, ErrorCode.ER_NET_PACKETS_OUT_OF_ORDER, 'Got packets out of order');
      expect(parseErr(f.subarray(4))).to.deep.equal({ errno: 1156, sqlState: '08S01', message: 'Got packets out of order' });
      expect(f[3]).to.equal(1);
    });

    it('knows the SQLSTATE of the errors the proxy sends', () => {
      const table: Array<[number, string]> = [
        [ErrorCode.ER_CON_COUNT_ERROR, '08004'],
        [ErrorCode.ER_ACCESS_DENIED_ERROR, '28000'],
        [ErrorCode.ER_UNKNOWN_COM_ERROR, '08S01'],
        [ErrorCode.ER_HANDSHAKE_ERROR, '08S01'],
        [ErrorCode.ER_NET_PACKET_TOO_LARGE, '08S01'],
        [ErrorCode.ER_LOCK_WAIT_TIMEOUT, 'HY000'],
        [ErrorCode.ER_QUERY_INTERRUPTED, '70100'],
        [ErrorCode.ER_UNKNOWN_ERROR, 'HY000'],
        [99999, 'HY000'],
      ];
      expect(table.map(([errno]) => [errno, sqlStateFor(errno)])).to.deep.equal(table);
    });

    it('cuts messages at 512 bytes on a character boundary', () => {
      const msg = 'é'.repeat(300); // 600 bytes
      const parsed = parseErr(buildErrPayload(1105, 'HY000', msg));
      expect(Buffer.byteLength(parsed.message)).to.equal(512);
      expect(parsed.message).to.equal('é'.repeat(256));
    });

    it('parses and builds EOF', () => {
      expect(parseEof(hex('fe 0100 2200'))).to.deep.equal({ warnings: 1, statusFlags: 0x22 });
      expect(buildEofPayload(1, 0x22).toString('hex')).to.equal('fe01002200');
    });
  });

  describe('classification by first byte and length', () => {
    const table: Array<[string, number, number, { ok: boolean; err: boolean; eof: boolean; endOld: boolean; endNew: boolean }]> = [
      ['minimal OK', 0x00, 7, { ok: true, err: false, eof: false, endOld: false, endNew: false }],
      ['0x00 too short for OK', 0x00, 6, { ok: false, err: false, eof: false, endOld: false, endNew: false }],
      ['ERR', 0xff, 9, { ok: false, err: true, eof: false, endOld: false, endNew: false }],
      ['EOF', 0xfe, 5, { ok: false, err: false, eof: true, endOld: true, endNew: true }],
      ['0xFE of 8 bytes is still EOF', 0xfe, 8, { ok: false, err: false, eof: true, endOld: true, endNew: true }],
      ['0xFE OK terminator with session state', 0xfe, 40, { ok: false, err: false, eof: false, endOld: false, endNew: true }],
      ['row starting 0xFE (>= 16 MiB value)', 0xfe, 0xffffff, { ok: false, err: false, eof: false, endOld: false, endNew: false }],
    ];
    for (const [name, first, len, want] of table) {
      it(name, () => {
        expect({
          ok: isOkPacket(first, len),
          err: isErrPacket(first),
          eof: isEofPacket(first, len),
          endOld: isEndOfRows(first, len, NO_TRACK),
          endNew: isEndOfRows(first, len, DEPRECATE),
        }).to.deep.equal(want);
      });
    }

    it('statusFlagsOf reads EOF and OK layouts in place, -1 for neither', () => {
      const buf = Buffer.concat([hex('aaaa'), hex('fe 0000 0900'), hex('00 fc0001 00 0300 0000'), hex('00 00')]);
      expect(statusFlagsOf(buf, 2, 5)).to.equal(9);
      expect(statusFlagsOf(buf, 7, 9)).to.equal(3);
      expect(statusFlagsOf(buf, 16, 2)).to.equal(-1);
    });
  });

  describe('client commands', () => {
    const ATTRS = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_QUERY_ATTRIBUTES;
    const sql = Buffer.from('SELECT 1');

    it('finds the SQL right after the command byte without query attributes', () => {
      const p = Buffer.concat([hex('03'), sql]);
      expect(queryTextOffset(p, 0, p.length, NO_TRACK)).to.equal(1);
      expect(queryText(p, 0, p.length, NO_TRACK)).to.equal('SELECT 1');
    });

    it('skips an empty attribute block', () => {
      const p = Buffer.concat([hex('03 00 01'), sql]);
      expect(queryText(p, 0, p.length, ATTRS)).to.equal('SELECT 1');
    });

    it('skips typed attribute values of every encoding, and NULLs', () => {
      // 4 attributes: LONGLONG 7, VAR_STRING "ab", NULL-flagged TINY (no value), DATETIME (len 4).
      const p = Buffer.concat([
        hex('03 04 01'),
        hex('04'), // null bitmap: attribute 2 is NULL
        hex('01'), // new_params_bind_flag
        hex('0800 0161'), // LONGLONG, name "a"
        hex('fd00 0162'), // VAR_STRING, name "b"
        hex('0100 0163'), // TINY, name "c"
        hex('0c00 0164'), // DATETIME, name "d"
        hex('0700000000000000'),
        hex('02 6162'),
        hex('04 e8070101'),
        sql,
      ]);
      expect(queryText(p, 0, p.length, ATTRS)).to.equal('SELECT 1');
      // The same bytes at an offset inside a bigger buffer (a reader view).
      const shifted = Buffer.concat([hex('99999999'), p]);
      expect(queryText(shifted, 4, p.length, ATTRS)).to.equal('SELECT 1');
    });

    it('rejects an attribute block that does not fit', () => {
      const p = hex('03 02 01 00 01 0800');
      expect(() => queryTextOffset(p, 0, p.length, ATTRS)).to.throw(MalformedPacketError);
    });

    it('comQueryFrame writes the empty attribute block only when negotiated', () => {
      expect(comQueryFrame('SELECT 1', NO_TRACK).subarray(4).equals(Buffer.concat([hex('03'), sql]))).to.equal(true);
      const withAttrs = comQueryFrame('SELECT 1', ATTRS);
      expect(withAttrs.subarray(4).equals(Buffer.concat([hex('03 00 01'), sql]))).to.equal(true);
      expect(queryText(withAttrs, 4, withAttrs.length - 4, ATTRS)).to.equal('SELECT 1');
    });

    it('reads statement ids, execute flags and the COM_INIT_DB schema', () => {
      const close = comStmtCloseFrame(0x01020304);
      expect(close.toString('hex')).to.equal('0500000019' + '04030201');
      expect(statementIdOf(close, 4, 5)).to.equal(0x01020304);
      const exec = hex('17 07000000 01 01000000');
      expect(executeFlagsOf(exec, 0, exec.length)).to.equal(1);
      const init = Buffer.concat([Buffer.from([Command.COM_INIT_DB]), Buffer.from('shop')]);
      expect(initDbSchemaOf(init, 0, init.length)).to.equal('shop');
      expect(COM_PING_FRAME.toString('hex')).to.equal('010000000e');
    });
  });
});
