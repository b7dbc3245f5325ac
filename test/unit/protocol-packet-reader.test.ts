/**
 * PacketReader: framing under every way TCP can cut a stream, > 16 MiB packets in both reading
 * modes, the size limit and sequence checks. Inputs come from the tiny encoder below, written
 * from the protocol docs and independent of the module under test.
 */

import { expect } from 'chai';

import { PacketOutOfOrderError, PacketTooLargeError } from '../../proxy/protocol/errors';
import { PacketReader, PacketReaderOptions, PacketView } from '../../proxy/protocol/packet-reader';

// ---- independent test encoder ------------------------------------------------------------------

const FULL = 0xffffff;

/** One wire frame: 3-byte LE length, sequence id, payload. */
function wireFrame(seq: number, payload: Buffer): Buffer {
  const header = Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, (payload.length >> 16) & 0xff, seq & 0xff]);
  return Buffer.concat([header, payload]);
}

/** A logical packet as frames: full-size chunks, then the rest (empty if an exact multiple). */
function wirePacket(seq: number, payload: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const n = Math.min(FULL, payload.length - offset);
    frames.push(wireFrame(seq++, payload.subarray(offset, offset + n)));
    offset += n;
    if (n < FULL) return frames;
  }
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

interface Seen {
  seq: number;
  lastSeq: number;
  payload: string;
  frame: string;
  starts: boolean;
  ends: boolean;
}

function snapshot(v: PacketView): Seen {
  return {
    seq: v.sequenceId,
    lastSeq: v.lastSequenceId,
    payload: v.payload.toString('hex'),
    frame: v.frame.toString('hex'),
    starts: v.startsPacket,
    ends: v.endsPacket,
  };
}

function drainFrames(r: PacketReader, out: Seen[]): void {
  for (let v = r.nextFrameViewUntilNextRead(); v !== null; v = r.nextFrameViewUntilNextRead()) out.push(snapshot(v));
}

function drainPackets(r: PacketReader, out: Seen[]): void {
  for (let v = r.nextPacketViewUntilNextRead(); v !== null; v = r.nextPacketViewUntilNextRead()) out.push(snapshot(v));
}

function readAll(chunks: Buffer[], mode: 'frames' | 'packets', options?: PacketReaderOptions): Seen[] {
  const r = new PacketReader(options);
  const out: Seen[] = [];
  for (const c of chunks) {
    r.push(c);
    if (mode === 'frames') drainFrames(r, out);
    else drainPackets(r, out);
  }
  expect(r.bufferedBytes, 'bytes left over').to.equal(0);
  return out;
}

// A stream of small packets in one exchange (seq 0..n), sizes chosen around lenenc and header
// boundaries, including an empty packet (end of LOCAL INFILE data looks like that).
const SMALL_PAYLOADS = [bytes(1, 1), bytes(0, 0), bytes(3, 2), bytes(4, 3), bytes(5, 4), bytes(250, 5), bytes(251, 6), bytes(17, 7)];
const SMALL_STREAM = Buffer.concat(SMALL_PAYLOADS.map((p, i) => wireFrame(i, p)));
const SMALL_EXPECTED: Seen[] = SMALL_PAYLOADS.map((p, i) => ({
  seq: i,
  lastSeq: i,
  payload: p.toString('hex'),
  frame: wireFrame(i, p).toString('hex'),
  starts: true,
  ends: true,
}));

describe('protocol/packet-reader', () => {
  describe('framing small packets however the stream is cut', () => {
    for (const mode of ['frames', 'packets'] as const) {
      it(`${mode}: one chunk yields every packet with payload, raw frame and sequence id`, () => {
        expect(readAll([SMALL_STREAM], mode)).to.deep.equal(SMALL_EXPECTED);
      });

      it(`${mode}: two chunks split at every byte offset yield the same packets`, () => {
        for (let cut = 0; cut <= SMALL_STREAM.length; cut++) {
          const got = readAll([SMALL_STREAM.subarray(0, cut), SMALL_STREAM.subarray(cut)], mode);
          expect(got, `cut at ${cut}`).to.deep.equal(SMALL_EXPECTED);
        }
      });

      it(`${mode}: three chunks split at every pair of offsets yield the same packets`, () => {
        // The first 5 packets (33 bytes) keep the number of offset pairs small.
        const stream = Buffer.concat(SMALL_PAYLOADS.slice(0, 5).map((p, i) => wireFrame(i, p)));
        const expected = SMALL_EXPECTED.slice(0, 5);
        for (let a = 0; a <= stream.length; a++) {
          for (let b = a; b <= stream.length; b++) {
            const got = readAll([stream.subarray(0, a), stream.subarray(a, b), stream.subarray(b)], mode);
            expect(got, `cuts at ${a},${b}`).to.deep.equal(expected);
          }
        }
      });

      it(`${mode}: 1-byte chunks yield the same packets`, () => {
        const chunks: Buffer[] = [];
        for (let i = 0; i < SMALL_STREAM.length; i++) chunks.push(SMALL_STREAM.subarray(i, i + 1));
        expect(readAll(chunks, mode)).to.deep.equal(SMALL_EXPECTED);
      });

      it(`${mode}: with copyChunks, pushed chunks may be overwritten right after push`, () => {
        const r = new PacketReader({ copyChunks: true });
        const out: Seen[] = [];
        // Feed through one shared "socket buffer" that is clobbered after every push.
        const shared = Buffer.alloc(16);
        for (let i = 0; i < SMALL_STREAM.length; i += 16) {
          const n = Math.min(16, SMALL_STREAM.length - i);
          SMALL_STREAM.copy(shared, 0, i, i + n);
          r.push(shared.subarray(0, n));
          if (mode === 'frames') drainFrames(r, out);
          else drainPackets(r, out);
          shared.fill(0xee);
        }
        expect(out).to.deep.equal(SMALL_EXPECTED);
      });
      it(`${mode}: push(buffer, n) + keepUnread: one shared read buffer, clobbered after every read, cut at every offset`, () => {
        // As a socket read through onread delivers: the same big buffer, its first n bytes new.
        const shared = Buffer.alloc(64 * 1024);
        for (let cut = 0; cut <= SMALL_STREAM.length; cut++) {
          const r = new PacketReader({ initialCapacity: 64 });
          const out: Seen[] = [];
          for (const piece of [SMALL_STREAM.subarray(0, cut), SMALL_STREAM.subarray(cut)]) {
            piece.copy(shared, 0);
            r.push(shared, piece.length);
            if (mode === 'frames') drainFrames(r, out);
            else drainPackets(r, out);
            r.keepUnread();
            shared.fill(0xee);
          }
          expect(out, `cut at ${cut}`).to.deep.equal(SMALL_EXPECTED);
          expect(r.bufferedBytes, `cut at ${cut}`).to.equal(0);
        }
      });
    }

    it('grows and compacts its own buffer correctly under random cuts (small initial capacity)', () => {
      // Deterministic PRNG so a failure names a reproducible seed.
      let state = 12345;
      const rand = (n: number): number => {
        state = (state * 1103515245 + 12345) & 0x7fffffff;
        return state % n;
      };
      const payloads = Array.from({ length: 80 }, (_, i) => bytes(rand(i % 10 === 0 ? 3000 : 300), i));
      const stream = Buffer.concat(payloads.map((p, i) => wireFrame(i, p)));
      const expected = payloads.map((p, i) => ({ seq: i, payload: p.toString('hex') }));
      for (let seed = 1; seed <= 40; seed++) {
        state = seed;
        for (const copyChunks of [false, true]) {
          const r = new PacketReader({ initialCapacity: 64, retainCapacity: 2048, copyChunks });
          const got: Array<{ seq: number; payload: string }> = [];
          for (let i = 0; i < stream.length; ) {
            const n = 1 + rand(seed % 2 === 0 ? 700 : 90);
            r.push(stream.subarray(i, i + n));
            i += n;
            const packets = rand(2) === 0;
            for (;;) {
              const v = packets ? r.nextPacketViewUntilNextRead() : r.nextFrameViewUntilNextRead();
              if (v === null) break;
              got.push({ seq: v.sequenceId, payload: v.payload.toString('hex') });
            }
          }
          expect(got, `seed ${seed}, copyChunks ${copyChunks}`).to.deep.equal(expected);
          expect(r.bufferedBytes).to.equal(0);
        }
      }
    });

    it('returns null on an incomplete header or body, then the packet once it completes', () => {
      const r = new PacketReader();
      const f = wireFrame(0, bytes(10, 9));
      r.push(f.subarray(0, 3));
      expect(r.nextFrameViewUntilNextRead()).to.equal(null);
      r.push(f.subarray(3, 8));
      expect(r.nextFrameViewUntilNextRead()).to.equal(null);
      expect(r.bufferedBytes).to.equal(8);
      r.push(f.subarray(8));
      const v = r.nextFrameViewUntilNextRead();
      expect(v?.payload.equals(bytes(10, 9))).to.equal(true);
      expect(r.nextFrameViewUntilNextRead()).to.equal(null);
    });

    it('reuses one view object and exposes the first payload byte without a Buffer', () => {
      const r = new PacketReader();
      r.push(Buffer.concat([wireFrame(0, Buffer.from([0x03, 0x41])), wireFrame(1, Buffer.alloc(0))]));
      const a = r.nextFrameViewUntilNextRead();
      expect(a?.firstByte).to.equal(0x03);
      expect(a?.payloadLength).to.equal(2);
      const b = r.nextFrameViewUntilNextRead();
      expect(b).to.equal(a);
      expect(b?.firstByte).to.equal(-1);
      expect(b?.payloadLength).to.equal(0);
    });

    it('payload and frame are views into the pushed bytes, not copies', () => {
      const r = new PacketReader();
      const chunk = wireFrame(0, Buffer.from('hello'));
      r.push(chunk);
      const v = r.nextFrameViewUntilNextRead();
      expect(v?.payload.buffer).to.equal(chunk.buffer);
      expect(v?.frame.equals(chunk)).to.equal(true);
    });

    it('tracks the next sequence id, wrapping from 255 to 0', () => {
      const r = new PacketReader();
      r.resetSequence(254);
      r.push(Buffer.concat([wireFrame(254, bytes(2, 1)), wireFrame(255, bytes(2, 2)), wireFrame(0, bytes(2, 3))]));
      const seqs: number[] = [];
      for (let v = r.nextPacketViewUntilNextRead(); v !== null; v = r.nextPacketViewUntilNextRead()) seqs.push(v.sequenceId);
      expect(seqs).to.deep.equal([254, 255, 0]);
      expect(r.nextSequenceId).to.equal(1);
    });
  });

  describe('runs of small packets (nextRunViewUntilNextRead)', () => {
    // Rows (first byte < 0xFE), then an OK-0xFE that ends them, then more rows.
    const payloads = [Buffer.from([1, 0x61]), Buffer.from([0, 0, 1]), Buffer.from([0xfb]), Buffer.from([0xfe, 0, 0, 2, 0]), Buffer.from([3, 0x62, 0x63, 0x64])];
    const wire = Buffer.concat(payloads.map((p, i) => wireFrame(i + 1, p)));

    it('spans the qualifying packets, stops before one that does not, however the stream is cut', () => {
      for (let cut = 0; cut <= wire.length; cut++) {
        const r = new PacketReader();
        r.resetSequence(1);
        const seen: string[] = [];
        let frames = '';
        for (const chunk of [wire.subarray(0, cut), wire.subarray(cut)]) {
          r.push(chunk);
          for (;;) {
            const run = r.nextRunViewUntilNextRead(0xfe);
            if (run !== null) {
              seen.push(`run ${run.frameCount} seq ${run.sequenceId}-${run.lastSequenceId} first ${run.payload.toString('hex')}`);
              frames += run.frame.toString('hex');
              continue;
            }
            const v = r.nextFrameViewUntilNextRead();
            if (v === null) break;
            seen.push(`frame seq ${v.sequenceId}`);
            frames += v.frame.toString('hex');
          }
        }
        expect(frames, `cut at ${cut}`).to.equal(wire.toString('hex'));
        expect(seen.filter((s) => s.startsWith('frame')), `cut at ${cut}`).to.deep.equal(['frame seq 4']);
        expect(r.nextSequenceId).to.equal(6);
        if (cut === 0 || cut === wire.length) {
          expect(seen).to.deep.equal(['run 3 seq 1-3 first 0161', 'frame seq 4', 'run 1 seq 5-5 first 03626364']);
        }
      }
    });

    it('leaves empty packets, 16 MiB frames and bad headers to nextFrameViewUntilNextRead', () => {
      const empty = new PacketReader();
      empty.push(wireFrame(0, Buffer.alloc(0)));
      expect(empty.nextRunViewUntilNextRead(0xfe)).to.equal(null);
      expect(empty.nextFrameViewUntilNextRead()?.payloadLength).to.equal(0);

      const outOfOrder = new PacketReader();
      outOfOrder.push(Buffer.concat([wireFrame(0, Buffer.from([1, 0x61])), wireFrame(5, Buffer.from([1, 0x62]))]));
      expect(outOfOrder.nextRunViewUntilNextRead(0xfe)?.frameCount).to.equal(1);
      expect(outOfOrder.nextRunViewUntilNextRead(0xfe)).to.equal(null);
      expect(() => outOfOrder.nextFrameViewUntilNextRead()).to.throw(PacketOutOfOrderError);

      const tooLarge = new PacketReader({ maxPacketSize: 4 });
      tooLarge.push(wireFrame(0, Buffer.from([1, 2, 3, 4, 5])));
      expect(tooLarge.nextRunViewUntilNextRead(0xfe)).to.equal(null);
      expect(() => tooLarge.nextFrameViewUntilNextRead()).to.throw(PacketTooLargeError);

      const header = Buffer.from([0xff, 0xff, 0xff, 0]);
      const big = new PacketReader();
      big.push(Buffer.concat([header, Buffer.alloc(100, 1)]));
      expect(big.nextRunViewUntilNextRead(0xfe)).to.equal(null);
    });
  });

  describe('sequence ids', () => {
    it('reports an out-of-order id as PacketOutOfOrderError with both ids, before the body arrives', () => {
      const r = new PacketReader();
      r.push(wireFrame(0, bytes(3, 1)));
      expect(r.nextFrameViewUntilNextRead()?.sequenceId).to.equal(0);
      r.push(wireFrame(5, bytes(100, 2)).subarray(0, 4)); // header only
      let caught: unknown;
      try {
        r.nextFrameViewUntilNextRead();
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(PacketOutOfOrderError);
      const e = caught as PacketOutOfOrderError;
      expect(e.code).to.equal('PACKET_OUT_OF_ORDER');
      expect([e.expectedSequenceId, e.actualSequenceId]).to.deep.equal([1, 5]);
      expect([e.errno, e.sqlState]).to.deep.equal([1156, '08S01']);
    });

    it('keeps failing with the same error once failed (the stream position is lost)', () => {
      const r = new PacketReader();
      r.push(wireFrame(3, bytes(1, 1)));
      expect(() => r.nextPacketViewUntilNextRead()).to.throw(PacketOutOfOrderError);
      const first = r.error;
      r.resetSequence(3);
      expect(() => r.nextPacketViewUntilNextRead()).to.throw(PacketOutOfOrderError);
      expect(r.error).to.equal(first);
    });

    it('accepts any id after resetSequence to it, in both reading modes', () => {
      const r = new PacketReader();
      r.resetSequence(1);
      r.push(wireFrame(1, bytes(2, 0)));
      expect(r.nextPacketViewUntilNextRead()?.sequenceId).to.equal(1);
      r.resetSequence(0);
      r.push(wireFrame(0, bytes(2, 0)));
      expect(r.nextFrameViewUntilNextRead()?.sequenceId).to.equal(0);
    });

    it('does not check when checkSequence is false, but still reports the next id', () => {
      const r = new PacketReader({ checkSequence: false });
      r.push(Buffer.concat([wireFrame(7, bytes(1, 0)), wireFrame(2, bytes(1, 0))]));
      expect(r.nextPacketViewUntilNextRead()?.sequenceId).to.equal(7);
      expect(r.nextPacketViewUntilNextRead()?.sequenceId).to.equal(2);
      expect(r.nextSequenceId).to.equal(3);
    });
  });

  describe('size limit', () => {
    it('rejects a declared length over maxPacketSize from the header alone', () => {
      const r = new PacketReader({ maxPacketSize: 1000 });
      r.push(wireFrame(0, bytes(1000, 0)));
      expect(r.nextFrameViewUntilNextRead()?.payloadLength).to.equal(1000);
      r.push(Buffer.from([0xe9, 0x03, 0x00, 0x01])); // header declaring 1001 bytes, no body yet
      let caught: unknown;
      try {
        r.nextFrameViewUntilNextRead();
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(PacketTooLargeError);
      const e = caught as PacketTooLargeError;
      expect([e.code, e.declaredLength, e.maxPacketSize, e.errno, e.sqlState]).to.deep.equal([
        'PACKET_TOO_LARGE',
        1001,
        1000,
        1153,
        '08S01',
      ]);
      expect(() => r.nextFrameViewUntilNextRead()).to.throw(PacketTooLargeError);
    });

    it('rejects in packet mode too, without waiting for the body', () => {
      const r = new PacketReader({ maxPacketSize: 10 });
      r.push(Buffer.from([11, 0, 0, 0]));
      expect(() => r.nextPacketViewUntilNextRead()).to.throw(PacketTooLargeError);
    });
  });

  describe('packets of 16 MiB and more', function () {
    this.timeout(60_000);
    // One payload for the whole block: 16 MiB + 1000, and its first 0xFFFFFF bytes as the
    // exact-multiple case.
    const big = bytes(FULL + 1000, 11);
    const exact = big.subarray(0, FULL);
    const tail = bytes(20, 99);
    // Exchange: big (seq 0,1), exact (seq 2, empty 3), small (seq 4).
    const frames = [...wirePacket(0, big), ...wirePacket(2, exact), wireFrame(4, tail)];
    const stream = Buffer.concat(frames);

    function splitEvery(step: number): Buffer[] {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += step) chunks.push(stream.subarray(i, i + step));
      return chunks;
    }

    it('test encoder: 16 MiB + 1000 is 2 frames, exactly 0xFFFFFF is a full frame plus an empty one', () => {
      expect(frames.map((f) => f.length - 4)).to.deep.equal([FULL, 1000, FULL, 0, 20]);
    });

    for (const chunkSize of [65_536, 1_000_003, stream.length]) {
      it(`packet mode reassembles logical packets (chunks of ${chunkSize} bytes)`, () => {
        const r = new PacketReader();
        const got: Array<{ len: number; ok: boolean; seq: number; last: number; frames: number; raw: number }> = [];
        for (const c of splitEvery(chunkSize)) {
          r.push(c);
          for (let v = r.nextPacketViewUntilNextRead(); v !== null; v = r.nextPacketViewUntilNextRead()) {
            const want = [big, exact, tail][got.length];
            got.push({
              len: v.payloadLength,
              ok: v.payload.equals(want),
              seq: v.sequenceId,
              last: v.lastSequenceId,
              frames: v.frameCount,
              raw: v.frame.length,
            });
          }
        }
        expect(got).to.deep.equal([
          { len: FULL + 1000, ok: true, seq: 0, last: 1, frames: 2, raw: FULL + 1000 + 8 },
          { len: FULL, ok: true, seq: 2, last: 3, frames: 2, raw: FULL + 8 },
          { len: 20, ok: true, seq: 4, last: 4, frames: 1, raw: 24 },
        ]);
        expect(r.nextSequenceId).to.equal(5);
      });

      it(`frame mode forwards every raw frame untouched, marking packet starts and ends (chunks of ${chunkSize})`, () => {
        const r = new PacketReader();
        const flags: string[] = [];
        const raw: Buffer[] = [];
        for (const c of splitEvery(chunkSize)) {
          r.push(c);
          for (let v = r.nextFrameViewUntilNextRead(); v !== null; v = r.nextFrameViewUntilNextRead()) {
            flags.push(`${v.sequenceId}:${v.startsPacket ? 'S' : '-'}${v.endsPacket ? 'E' : '-'}:${v.payloadLength}`);
            raw.push(Buffer.from(v.frame));
          }
        }
        expect(flags).to.deep.equal([`0:S-:${FULL}`, '1:-E:1000', `2:S-:${FULL}`, '3:-E:0', '4:SE:20']);
        expect(Buffer.concat(raw).equals(stream)).to.equal(true);
      });
    }

    it('counts the whole logical packet against the limit, failing at the continuation header', () => {
      const r = new PacketReader({ maxPacketSize: FULL + 999 });
      r.push(stream.subarray(0, 4 + FULL + 4));
      const v = r.nextFrameViewUntilNextRead();
      expect(v?.endsPacket).to.equal(false);
      expect(r.isMidPacket).to.equal(true);
      expect(() => r.nextFrameViewUntilNextRead()).to.throw(PacketTooLargeError);
      expect((r.error as PacketTooLargeError).declaredLength).to.equal(FULL + 1000);
    });

    it('checks the sequence id of continuation frames too', () => {
      for (const mode of ['frames', 'packets'] as const) {
        const r = new PacketReader();
        r.push(Buffer.concat([stream.subarray(0, 4 + FULL), Buffer.from([1, 0, 0, 9, 0x41])]));
        const read = (): PacketView | null =>
          mode === 'frames' ? r.nextFrameViewUntilNextRead() : r.nextPacketViewUntilNextRead();
        if (mode === 'frames') expect(read()?.sequenceId).to.equal(0);
        expect(read, mode).to.throw(PacketOutOfOrderError, /got packet sequence id 9, expected 1/);
      }
    });

    it('refuses packet reads in the middle of a packet read frame by frame', () => {
      const r = new PacketReader();
      r.push(stream.subarray(0, 4 + FULL));
      expect(r.nextFrameViewUntilNextRead()?.startsPacket).to.equal(true);
      expect(() => r.nextPacketViewUntilNextRead()).to.throw(/inside a packet/);
    });
  });
});
