/** copyRange: the same bytes as a slice, in memory of its own, on both sides of the loop limit. */

import { expect } from 'chai';

import { copyRange } from '../../proxy/protocol/copy-range';

describe('protocol/copy-range', () => {
  const source = Buffer.alloc(6000);
  for (let i = 0; i < source.length; i++) source[i] = (i * 7 + 3) & 0xff;
  // A view into a larger ArrayBuffer, as reader views are: byteOffset must be honoured.
  const view = Buffer.concat([Buffer.alloc(13, 0xaa), source]).subarray(13);

  for (const [start, end] of [[0, 0], [0, 1], [5, 133], [5, 134], [100, 100 + 4096], [0, 6000], [5999, 6000]]) {
    it(`copies [${start}, ${end}) exactly, into memory of its own`, () => {
      const out = copyRange(view, start, end);
      expect(out.equals(source.subarray(start, end))).to.equal(true);
      if (end > start) {
        out[0] ^= 0xff;
        expect(view[start], 'the source is untouched by writes to the copy').to.equal(source[start]);
      }
    });
  }
});
