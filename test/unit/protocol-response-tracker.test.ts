/**
 * ResponseTracker: every response shape the proxy forwards, with CLIENT_DEPRECATE_EOF off and
 * on. Each table row is a server response built by the small encoder below and the step the
 * tracker must answer for each packet (M more, D done, L local infile, A auth data). Every row
 * runs three ways: payload by payload, and through a PacketReader fed the wire bytes split at
 * every offset (frames) and in 1-byte chunks (logical packets).
 */

import { expect } from 'chai';

import { Capability, Command, ServerStatus } from '../../proxy/protocol/constants';
import { UnexpectedPacketError, UnsupportedCommandError } from '../../proxy/protocol/errors';
import { FOLLOW_UP_INSERT_ID, FOLLOW_UP_WARNINGS, leavesFollowUpOf } from '../../proxy/protocol/decode';
import { PacketReader, PacketView } from '../../proxy/protocol/packet-reader';
import {
  ResponseStep,
  ResponseTracker,
  expectsResponse,
  isTrackableCommand,
} from '../../proxy/protocol/response-tracker';

// ---- independent test encoder ------------------------------------------------------------------

const AUTOCOMMIT = ServerStatus.SERVER_STATUS_AUTOCOMMIT;
const IN_TRANS = ServerStatus.SERVER_STATUS_IN_TRANS;
const MORE = ServerStatus.SERVER_MORE_RESULTS_EXISTS;
const CURSOR = ServerStatus.SERVER_STATUS_CURSOR_EXISTS;
const LAST_ROW = ServerStatus.SERVER_STATUS_LAST_ROW_SENT;

function lenenc(n: number): Buffer {
  if (n < 251) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  if (n < 0x1000000) return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeUInt32LE(n >>> 0, 1);
  return b;
}
const str = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([lenenc(b.length), b]);
};
const u16 = (n: number): Buffer => Buffer.from([n & 0xff, n >> 8]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

const ok = (status: number, affected = 0): Buffer => Buffer.concat([Buffer.from([0x00]), lenenc(affected), lenenc(0), u16(status), u16(0)]);
/** OK with header 0xFE: the end-of-rows packet under CLIENT_DEPRECATE_EOF. */
const okEnd = (status: number): Buffer => Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8, 0, 0]);
const eof = (status: number): Buffer => Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8]);
const err = (errno: number, message = 'boom'): Buffer => Buffer.concat([Buffer.from([0xff]), u16(errno), Buffer.from('#HY000' + message)]);
const colDef = (name: string): Buffer =>
  Buffer.concat([str('def'), str('db'), str('t'), str('t'), str(name), str(name), Buffer.from([0x0c]), u16(45), u32(80), Buffer.from([0xfd]), u16(0), Buffer.from([0, 0, 0])]);
const textRow = (...values: Array<string | null>): Buffer => Buffer.concat(values.map((v) => (v === null ? Buffer.from([0xfb]) : str(v))));
/** Binary row: 0x00, NULL bitmap (1 byte for 2 columns), then two INTs: looks like an OK. */
const binaryRow = (a: number, b: number): Buffer => Buffer.concat([Buffer.from([0x00, 0x00]), u32(a), u32(b)]);
const prepareOk = (id: number, columns: number, params: number): Buffer =>
  Buffer.concat([Buffer.from([0x00]), u32(id), u16(columns), u16(params), Buffer.from([0x00]), u16(0)]);
const localInfile = (file: string): Buffer => Buffer.concat([Buffer.from([0xfb]), Buffer.from(file)]);
const authSwitch = (): Buffer => Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_native_password\0'), Buffer.alloc(20, 0x41), Buffer.from([0])]);
const authMoreData = (b: number): Buffer => Buffer.from([0x01, b]);

/** The column-definition block of a result set, with its EOF unless DEPRECATE_EOF. */
function columns(deprecate: boolean, names: string[], eofStatus = AUTOCOMMIT): Buffer[] {
  return [lenenc(names.length), ...names.map(colDef), ...(deprecate ? [] : [eof(eofStatus)])];
}
/** The end of rows: EOF, or OK-0xFE under DEPRECATE_EOF. */
const end = (deprecate: boolean, status: number): Buffer => (deprecate ? okEnd(status) : eof(status));

// ---- table --------------------------------------------------------------------------------------

interface Final {
  statusFlags?: number;
  errno?: number;
  resultCount?: number;
  statementId?: number;
  columnCount?: number;
  paramCount?: number;
}

interface Case {
  name: string;
  command: Command;
  packets: Buffer[];
  /** One letter per packet; default: M for all but a final D. */
  steps?: string;
  /** Indexes of packets after which the client sends one packet (shifting server sequence ids). */
  clientTurns?: number[];
  final: Final;
}

const INITIAL_STATUS = 0x4242 & ~MORE;

function casesFor(deprecate: boolean): Case[] {
  const d = deprecate;
  return [
    { name: 'COM_QUERY answered by OK', command: Command.COM_QUERY, packets: [ok(AUTOCOMMIT, 3)], final: { statusFlags: AUTOCOMMIT, errno: 0, resultCount: 1 } },
    { name: 'COM_QUERY answered by ERR', command: Command.COM_QUERY, packets: [err(1146)], final: { errno: 1146, statusFlags: INITIAL_STATUS } },
    {
      name: 'text result set with rows starting 0xFB (NULL) and 0x00 (empty string) that are neither LOCAL INFILE nor OK',
      command: Command.COM_QUERY,
      packets: [...columns(d, ['a', 'b']), textRow('1', null), textRow(null, 'x'), textRow('', 'abcdef'), end(d, IN_TRANS)],
      final: { statusFlags: IN_TRANS, errno: 0, resultCount: 1 },
    },
    {
      name: 'empty result set',
      command: Command.COM_QUERY,
      packets: [...columns(d, ['a']), end(d, AUTOCOMMIT)],
      final: { statusFlags: AUTOCOMMIT, resultCount: 1 },
    },
    {
      name: 'result set with 300 columns (lenenc column count 0xFC)',
      command: Command.COM_QUERY,
      packets: [...columns(d, Array.from({ length: 300 }, (_, i) => `c${i}`)), end(d, AUTOCOMMIT)],
      final: { statusFlags: AUTOCOMMIT },
    },
    {
      name: 'ERR in the middle of rows',
      command: Command.COM_QUERY,
      packets: [...columns(d, ['a']), textRow('1'), err(1317, 'Query execution was interrupted')],
      final: { errno: 1317, resultCount: 1 },
    },
    {
      name: 'multi-statement: OK, result set, OK',
      command: Command.COM_QUERY,
      packets: [ok(MORE | IN_TRANS), ...columns(d, ['a']), textRow('1'), end(d, MORE | IN_TRANS), ok(AUTOCOMMIT)],
      final: { statusFlags: AUTOCOMMIT, errno: 0, resultCount: 3 },
    },
    {
      name: 'multi-statement stopped by ERR after an OK',
      command: Command.COM_QUERY,
      packets: [ok(MORE | IN_TRANS), err(1064)],
      final: { errno: 1064, statusFlags: IN_TRANS, resultCount: 2 },
    },
    {
      name: 'CALL: two result sets then the final OK, inside a transaction',
      command: Command.COM_QUERY,
      packets: [
        ...columns(d, ['a']), textRow('1'), end(d, MORE | IN_TRANS),
        ...columns(d, ['b', 'c']), textRow('2', '3'), textRow('4', null), end(d, MORE | IN_TRANS),
        ok(IN_TRANS),
      ],
      final: { statusFlags: IN_TRANS, resultCount: 3 },
    },
    {
      name: 'LOCAL INFILE request, then OK after the client sent its data',
      command: Command.COM_QUERY,
      packets: [localInfile('/tmp/data.csv'), ok(AUTOCOMMIT, 10)],
      steps: 'LD',
      final: { statusFlags: AUTOCOMMIT, resultCount: 1 },
    },
    {
      name: 'LOCAL INFILE as the second statement, refused by the server with ERR',
      command: Command.COM_QUERY,
      packets: [ok(MORE | AUTOCOMMIT), localInfile('x'), err(3948)],
      steps: 'MLD',
      final: { errno: 3948, resultCount: 2 },
    },
    {
      name: 'COM_STMT_PREPARE with parameters and columns',
      command: Command.COM_STMT_PREPARE,
      packets: [prepareOk(7, 2, 3), colDef('?'), colDef('?'), colDef('?'), ...(d ? [] : [eof(AUTOCOMMIT)]), colDef('a'), colDef('b'), ...(d ? [] : [eof(AUTOCOMMIT)])],
      final: { statementId: 7, columnCount: 2, paramCount: 3, errno: 0 },
    },
    {
      name: 'COM_STMT_PREPARE with parameters only',
      command: Command.COM_STMT_PREPARE,
      packets: [prepareOk(8, 0, 2), colDef('?'), colDef('?'), ...(d ? [] : [eof(AUTOCOMMIT)])],
      final: { statementId: 8, columnCount: 0, paramCount: 2 },
    },
    {
      name: 'COM_STMT_PREPARE with columns only',
      command: Command.COM_STMT_PREPARE,
      packets: [prepareOk(9, 1, 0), colDef('a'), ...(d ? [] : [eof(AUTOCOMMIT)])],
      final: { statementId: 9, columnCount: 1, paramCount: 0 },
    },
    {
      name: 'COM_STMT_PREPARE of a statement with neither (a single OK)',
      command: Command.COM_STMT_PREPARE,
      packets: [prepareOk(10, 0, 0)],
      final: { statementId: 10, columnCount: 0, paramCount: 0, statusFlags: INITIAL_STATUS },
    },
    { name: 'COM_STMT_PREPARE answered by ERR', command: Command.COM_STMT_PREPARE, packets: [err(1064)], final: { errno: 1064 } },
    {
      name: 'COM_STMT_EXECUTE binary result set whose rows start with 0x00 and look like OKs',
      command: Command.COM_STMT_EXECUTE,
      packets: [...columns(d, ['a', 'b']), binaryRow(1, 2), binaryRow(0, 0), end(d, IN_TRANS)],
      final: { statusFlags: IN_TRANS, resultCount: 1 },
    },
    { name: 'COM_STMT_EXECUTE of an UPDATE (OK)', command: Command.COM_STMT_EXECUTE, packets: [ok(IN_TRANS, 5)], final: { statusFlags: IN_TRANS } },
    {
      name: 'COM_STMT_EXECUTE that opened a cursor ends at the EOF after the columns',
      command: Command.COM_STMT_EXECUTE,
      // The server sends that EOF even under DEPRECATE_EOF: it is how the client learns of the cursor.
      packets: [lenenc(1), colDef('a'), eof(CURSOR | AUTOCOMMIT)],
      final: { statusFlags: CURSOR | AUTOCOMMIT, resultCount: 1 },
    },
    {
      name: 'COM_STMT_EXECUTE with PS_MULTI_RESULTS (CALL): binary result set then OK',
      command: Command.COM_STMT_EXECUTE,
      packets: [...columns(d, ['a']), binaryRow(1, 1), end(d, MORE | AUTOCOMMIT), ok(AUTOCOMMIT)],
      final: { statusFlags: AUTOCOMMIT, resultCount: 2 },
    },
    {
      name: 'COM_STMT_FETCH rows until the last row was sent',
      command: Command.COM_STMT_FETCH,
      packets: [binaryRow(1, 2), binaryRow(3, 4), end(d, CURSOR | LAST_ROW | AUTOCOMMIT)],
      final: { statusFlags: CURSOR | LAST_ROW | AUTOCOMMIT },
    },
    { name: 'COM_STMT_FETCH answered by ERR', command: Command.COM_STMT_FETCH, packets: [err(1243)], final: { errno: 1243 } },
    {
      name: 'COM_FIELD_LIST column definitions',
      command: Command.COM_FIELD_LIST,
      packets: [colDef('id'), colDef('name'), end(d, AUTOCOMMIT)],
      final: { statusFlags: AUTOCOMMIT, resultCount: 1 },
    },
    { name: 'COM_FIELD_LIST of a missing table', command: Command.COM_FIELD_LIST, packets: [err(1146)], final: { errno: 1146 } },
    {
      name: 'COM_STATISTICS: one raw string, not an OK, status unchanged',
      command: Command.COM_STATISTICS,
      packets: [Buffer.from('Uptime: 42  Threads: 1  Questions: 9  Slow queries: 0')],
      final: { statusFlags: INITIAL_STATUS, errno: 0, resultCount: 1 },
    },
    { name: 'COM_PING', command: Command.COM_PING, packets: [ok(AUTOCOMMIT)], final: { statusFlags: AUTOCOMMIT } },
    { name: 'COM_INIT_DB of an unknown database', command: Command.COM_INIT_DB, packets: [err(1049)], final: { errno: 1049 } },
    { name: 'COM_SET_OPTION (answered by EOF)', command: Command.COM_SET_OPTION, packets: [eof(AUTOCOMMIT)], final: { statusFlags: AUTOCOMMIT } },
    { name: 'COM_RESET_CONNECTION', command: Command.COM_RESET_CONNECTION, packets: [ok(AUTOCOMMIT)], final: { statusFlags: AUTOCOMMIT } },
    { name: 'COM_STMT_RESET', command: Command.COM_STMT_RESET, packets: [ok(IN_TRANS)], final: { statusFlags: IN_TRANS } },
    {
      name: 'COM_CHANGE_USER with an auth switch',
      command: Command.COM_CHANGE_USER,
      packets: [authSwitch(), ok(AUTOCOMMIT)],
      steps: 'AD',
      final: { statusFlags: AUTOCOMMIT, errno: 0 },
    },
    {
      name: 'COM_CHANGE_USER with caching_sha2 fast auth (no client turn before the OK)',
      command: Command.COM_CHANGE_USER,
      packets: [authMoreData(0x03), ok(AUTOCOMMIT)],
      steps: 'AD',
      clientTurns: [],
      final: { statusFlags: AUTOCOMMIT },
    },
    { name: 'COM_CHANGE_USER refused', command: Command.COM_CHANGE_USER, packets: [err(1045)], final: { errno: 1045 } },
  ];
}

// ---- drivers ------------------------------------------------------------------------------------

const LETTER: Record<number, string> = {
  [ResponseStep.More]: 'M',
  [ResponseStep.Done]: 'D',
  [ResponseStep.LocalInfile]: 'L',
  [ResponseStep.AuthData]: 'A',
  [ResponseStep.UnsolicitedError]: 'U',
};

function expectedSteps(c: Case): string {
  return c.steps ?? 'M'.repeat(c.packets.length - 1) + 'D';
}

function clientTurns(c: Case): Set<number> {
  if (c.clientTurns !== undefined) return new Set(c.clientTurns);
  const steps = expectedSteps(c);
  return new Set([...steps].flatMap((s, i) => (s === 'L' || s === 'A' ? [i] : [])));
}

/** The response on the wire: sequence ids from 1, skipping one id per client turn. */
function wire(c: Case): Buffer {
  const turns = clientTurns(c);
  let seq = 1;
  const frames: Buffer[] = [];
  c.packets.forEach((p, i) => {
    frames.push(Buffer.concat([Buffer.from([p.length & 0xff, (p.length >> 8) & 0xff, p.length >> 16, seq & 0xff]), p]));
    seq += turns.has(i) ? 2 : 1;
  });
  return Buffer.concat(frames);
}

function newTracker(deprecate: boolean, command: Command): ResponseTracker {
  const caps = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_MULTI_RESULTS | (deprecate ? Capability.CLIENT_DEPRECATE_EOF : 0);
  const t = new ResponseTracker(caps, INITIAL_STATUS);
  expect(t.begin(command)).to.equal(true);
  return t;
}

function finalOf(t: ResponseTracker, want: Final): Final {
  const got: Final = {};
  for (const k of Object.keys(want) as Array<keyof Final>) got[k] = t[k];
  return got;
}

/** Feeds views from a reader to the tracker, answering client turns like the proxy would. */
function feedFromReader(t: ResponseTracker, r: PacketReader, v: PacketView | null, out: string[], turns: Set<number>): void {
  if (v === null) return;
  const step = t.feed(v);
  if (v.endsPacket) {
    out.push(LETTER[step]);
    if (turns.has(out.length - 1)) r.resetSequence(v.lastSequenceId + 2);
  } else {
    expect(step).to.equal(ResponseStep.More);
  }
}

describe('protocol/response-tracker', () => {
  for (const deprecate of [false, true]) {
    describe(`CLIENT_DEPRECATE_EOF ${deprecate ? 'on' : 'off'}`, () => {
      for (const c of casesFor(deprecate)) {
        it(c.name, () => {
          // Payload by payload.
          const t = newTracker(deprecate, c.command);
          const steps = c.packets.map((p) => LETTER[t.feedPayload(p, 0, p.length)]).join('');
          expect(steps, 'steps').to.equal(expectedSteps(c));
          expect(t.isIdle).to.equal(true);
          expect(finalOf(t, c.final)).to.deep.equal(c.final);

          // Through the reader, frame by frame, the wire split at every offset.
          const bytes = wire(c);
          const turns = clientTurns(c);
          for (let cut = 0; cut <= bytes.length; cut++) {
            const tr = newTracker(deprecate, c.command);
            const r = new PacketReader();
            r.resetSequence(1);
            const out: string[] = [];
            for (const chunk of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
              r.push(chunk);
              for (let v = r.nextFrameViewUntilNextRead(); v !== null; v = r.nextFrameViewUntilNextRead()) feedFromReader(tr, r, v, out, turns);
            }
            expect(out.join(''), `cut at ${cut}`).to.equal(expectedSteps(c));
            expect(finalOf(tr, c.final)).to.deep.equal(c.final);
          }

          // Through the reader, logical packets, 1-byte chunks.
          const tr = newTracker(deprecate, c.command);
          const r = new PacketReader();
          r.resetSequence(1);
          const out: string[] = [];
          for (let i = 0; i < bytes.length; i++) {
            r.push(bytes.subarray(i, i + 1));
            for (let v = r.nextPacketViewUntilNextRead(); v !== null; v = r.nextPacketViewUntilNextRead()) feedFromReader(tr, r, v, out, turns);
          }
          expect(out.join('')).to.equal(expectedSteps(c));
          expect(finalOf(tr, c.final)).to.deep.equal(c.final);

          // As the proxy forwards: runs of rows while the tracker is in rows, frames otherwise,
          // the wire split at every offset. A run is packets the tracker would answer M to.
          for (let cut = 0; cut <= bytes.length; cut++) {
            const tr = newTracker(deprecate, c.command);
            const r = new PacketReader();
            r.resetSequence(1);
            const out: string[] = [];
            let forwarded = 0;
            for (const chunk of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
              r.push(chunk);
              for (;;) {
                const run = tr.inRows ? r.nextRunViewUntilNextRead(0xfe) : null;
                if (run !== null) {
                  expect(run.frame.length).to.equal(run.frameEnd - run.frameStart);
                  forwarded += run.frame.length;
                  for (let i = 0; i < run.frameCount; i++) out.push('M');
                  continue;
                }
                const v = r.nextFrameViewUntilNextRead();
                if (v === null) break;
                forwarded += v.frame.length;
                feedFromReader(tr, r, v, out, turns);
              }
            }
            expect(out.join(''), `runs, cut at ${cut}`).to.equal(expectedSteps(c));
            expect(forwarded, `runs, cut at ${cut}: bytes forwarded`).to.equal(bytes.length);
            expect(finalOf(tr, c.final)).to.deep.equal(c.final);
          }
        });
      }

      it('a row whose first value is >= 16 MiB starts with 0xFE and is not the end of rows', function () {
        this.timeout(60_000);
        const huge = Buffer.alloc(0x1000000, 0x61); // 16 MiB value: lenenc prefix 0xFE + 8 bytes
        const row = textRow(huge.toString('latin1'));
        expect(row[0]).to.equal(0xfe);
        const packets = [...columns(deprecate, ['blob']), row, end(deprecate, AUTOCOMMIT)];
        const c: Case = { name: 'big row', command: Command.COM_QUERY, packets, final: { statusFlags: AUTOCOMMIT } };
        const frames: Buffer[] = [];
        let seq = 1;
        for (const p of packets) {
          for (let off = 0; ; ) {
            const n = Math.min(0xffffff, p.length - off);
            frames.push(Buffer.concat([Buffer.from([n & 0xff, (n >> 8) & 0xff, n >> 16, seq++ & 0xff]), p.subarray(off, off + n)]));
            off += n;
            if (n < 0xffffff) break;
          }
        }
        const bytes = Buffer.concat(frames);
        for (const mode of ['frames', 'packets'] as const) {
          const t = newTracker(deprecate, c.command);
          const r = new PacketReader();
          r.resetSequence(1);
          const out: string[] = [];
          for (let i = 0; i < bytes.length; i += 1 << 20) {
            r.push(bytes.subarray(i, i + (1 << 20)));
            for (;;) {
              const v = mode === 'frames' ? r.nextFrameViewUntilNextRead() : r.nextPacketViewUntilNextRead();
              if (v === null) break;
              feedFromReader(t, r, v, out, new Set());
            }
          }
          expect(out.join(''), mode).to.equal(expectedSteps(c));
          expect(t.statusFlags).to.equal(AUTOCOMMIT);
        }
      });
    });
  }

  describe('outside the response grammar', () => {
    const caps = Capability.CLIENT_PROTOCOL_41;

    it('commands without a response leave the tracker idle', () => {
      for (const cmd of [Command.COM_STMT_CLOSE, Command.COM_STMT_SEND_LONG_DATA, Command.COM_QUIT]) {
        const t = new ResponseTracker(caps);
        expect(t.begin(cmd), `0x${cmd.toString(16)}`).to.equal(false);
        expect(t.isIdle).to.equal(true);
        expect(expectsResponse(cmd)).to.equal(false);
      }
      expect(expectsResponse(Command.COM_QUERY)).to.equal(true);
    });

    it('reports an ERR while idle as unsolicited (the server is closing), with its errno', () => {
      const t = new ResponseTracker(caps);
      const p = err(4031, 'The client was disconnected by the server because of inactivity');
      expect(t.feedPayload(p, 0, p.length)).to.equal(ResponseStep.UnsolicitedError);
      expect(t.errno).to.equal(4031);
    });

    it('throws UnexpectedPacketError for a packet the grammar does not allow', () => {
      const table: Array<[string, Command | null, Buffer[]]> = [
        ['OK while idle', null, [ok(2)]],
        ['0xFE as the first packet of a query response', Command.COM_QUERY, [eof(2)]],
        ['a row where the EOF after the columns belongs', Command.COM_QUERY, [lenenc(1), colDef('a'), textRow('x')]],
        ['a column count after LOCAL INFILE', Command.COM_QUERY, [localInfile('f'), lenenc(1)]],
        ['a truncated OK', Command.COM_PING, [Buffer.from([0x00, 0x00])]],
      ];
      for (const [name, cmd, packets] of table) {
        const t = new ResponseTracker(caps);
        if (cmd !== null) t.begin(cmd);
        const last = packets[packets.length - 1];
        for (const p of packets.slice(0, -1)) t.feedPayload(p, 0, p.length);
        let caught: unknown;
        try {
          t.feedPayload(last, 0, last.length);
        } catch (e) {
          caught = e;
        }
        expect(caught, name).to.be.instanceOf(UnexpectedPacketError);
        expect((caught as UnexpectedPacketError).code).to.equal('UNEXPECTED_PACKET');
      }
    });

    it('refuses replication commands it cannot delimit', () => {
      const t = new ResponseTracker(caps);
      expect(isTrackableCommand(Command.COM_BINLOG_DUMP)).to.equal(false);
      expect(() => t.begin(Command.COM_BINLOG_DUMP)).to.throw(UnsupportedCommandError).with.property('errno', 1047);
      expect(t.isIdle).to.equal(true);
    });

    it('refuses a second command while a response is outstanding', () => {
      const t = new ResponseTracker(caps);
      t.begin(Command.COM_QUERY);
      expect(() => t.begin(Command.COM_PING)).to.throw(/while expecting a result/);
    });

    it('derives inTransaction from the final status flags', () => {
      const t = new ResponseTracker(caps, AUTOCOMMIT);
      expect(t.inTransaction).to.equal(false);
      t.begin(Command.COM_QUERY);
      const p = ok(IN_TRANS);
      t.feedPayload(p, 0, p.length);
      expect(t.inTransaction).to.equal(true);
    });

    it('reports Done at the last frame when a multi-frame packet completes the response', function () {
      this.timeout(30_000);
      // A >= 16 MiB COM_STATISTICS string is absurd, but it is the one single-packet response
      // whose size is not bounded by the grammar.
      const text = Buffer.alloc(0xffffff + 3, 0x55);
      const bytes = Buffer.concat([
        Buffer.from([0xff, 0xff, 0xff, 1]),
        text.subarray(0, 0xffffff),
        Buffer.from([3, 0, 0, 2]),
        text.subarray(0xffffff),
      ]);
      const t = new ResponseTracker(caps);
      t.begin(Command.COM_STATISTICS);
      const r = new PacketReader();
      r.resetSequence(1);
      r.push(bytes);
      const steps: ResponseStep[] = [];
      for (let v = r.nextFrameViewUntilNextRead(); v !== null; v = r.nextFrameViewUntilNextRead()) steps.push(t.feed(v));
      expect(steps).to.deep.equal([ResponseStep.More, ResponseStep.Done]);
    });
  });
});

describe('leavesFollowUpOf: what an OK/EOF leaves for the next statement on the connection', () => {
  const okWith = (affected: number, insertId: number, warnings: number): Buffer => Buffer.concat([Buffer.from([0x00]), lenenc(affected), lenenc(insertId), u16(AUTOCOMMIT), u16(warnings)]);
  const eofWith = (warnings: number): Buffer => Buffer.from([0xfe, warnings & 0xff, warnings >> 8, AUTOCOMMIT, 0]);
  const rows: Array<[string, Buffer, number]> = [
    ['plain OK', okWith(1, 0, 0), 0],
    ['OK with an insert id', okWith(1, 7, 0), FOLLOW_UP_INSERT_ID],
    ['OK with a large insert id (lenenc 0xfc) after a large row count', okWith(300, 70_000, 0), FOLLOW_UP_INSERT_ID],
    ['OK with warnings', okWith(0, 0, 2), FOLLOW_UP_WARNINGS],
    ['OK with both', okWith(300, 9, 1), FOLLOW_UP_INSERT_ID | FOLLOW_UP_WARNINGS],
    ['EOF without warnings', eofWith(0), 0],
    ['EOF with warnings', eofWith(3), FOLLOW_UP_WARNINGS],
  ];
  for (const [name, payload, expected] of rows) {
    it(`${name} → ${expected}`, () => expect(leavesFollowUpOf(payload, 0, payload.length)).to.equal(expected));
  }

  it('the tracker keeps the insert id across later answers until forgetInsertId; follow-up is per response, and an ERR is one', () => {
    const t = new ResponseTracker(Capability.CLIENT_PROTOCOL_41);
    const answer = (p: Buffer): void => {
      t.begin(Command.COM_QUERY);
      expect(t.feedPayload(p, 0, p.length)).to.equal(ResponseStep.Done);
    };
    answer(okWith(1, 5, 0));
    expect([t.leavesFollowUp, t.holdsInsertId]).to.deep.equal([true, true]);
    answer(ok(AUTOCOMMIT));
    expect([t.leavesFollowUp, t.holdsInsertId]).to.deep.equal([false, true]);
    answer(err(1146));
    expect(t.leavesFollowUp).to.equal(true);
    t.forgetInsertId();
    expect(t.holdsInsertId).to.equal(false);
  });
});
