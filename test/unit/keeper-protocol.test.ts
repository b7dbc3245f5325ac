/**
 * The keeper's protocol and its one decision (agent/keeper/keeper-protocol.ts), table by table.
 */

import { expect } from 'chai';
import { formatKeeperArgs, formatKeeperLine, mustKill, parseKeeperArgs, parseKeeperLine } from '../../agent/keeper/keeper-protocol';

describe('keeper protocol', () => {
  describe('parseKeeperArgs', () => {
    const rows: Array<{ argv: string[]; expect: ReturnType<typeof parseKeeperArgs> | RegExp }> = [
      { argv: ['--until', '1500', '--', 'dolt', 'sql-server'], expect: { guarded: true, until: 1500, command: ['dolt', 'sql-server'] } },
      { argv: ['--unguarded', '--', 'dolt'], expect: { guarded: false, until: null, command: ['dolt'] } },
      { argv: ['--until', '0', '--', 'x'], expect: { guarded: true, until: 0, command: ['x'] } },
      { argv: ['--until', '-5', '--', 'x'], expect: /non-negative integer/ },
      { argv: ['--until', '1.5', '--', 'x'], expect: /non-negative integer/ },
      { argv: ['--until', 'soon', '--', 'x'], expect: /non-negative integer/ },
      { argv: ['--until', '10'], expect: /no command after --/ },
      { argv: ['--until', '10', '--'], expect: /no command after --/ },
      { argv: ['--', 'dolt'], expect: /expected --until <ms> or --unguarded/ },
      { argv: ['--unguarded', '--until', '5', '--', 'dolt'], expect: /expected --until <ms> or --unguarded/ },
    ];
    for (const row of rows) {
      it(`${row.argv.join(' ')} → ${row.expect instanceof RegExp ? `refused (${row.expect.source})` : JSON.stringify(row.expect)}`, () => {
        if (row.expect instanceof RegExp) expect(() => parseKeeperArgs(row.argv)).to.throw(row.expect);
        else expect(parseKeeperArgs(row.argv)).to.deep.equal(row.expect);
      });
    }

    it('round-trips through formatKeeperArgs', () => {
      for (const args of [{ guarded: true, until: 42 }, { guarded: false, until: null }]) {
        expect(parseKeeperArgs([...formatKeeperArgs(args), '--', 'cmd'])).to.deep.equal({ ...args, command: ['cmd'] });
      }
    });
  });

  describe('parseKeeperLine', () => {
    const rows: Array<[string, number | null]> = [
      ['until 12345', 12345],
      ['until 0', 0],
      ['  until 7  ', 7],
      ['until -1', null],
      ['until 1e9', null],
      ['until', null],
      ['until 12 13', null],
      ['UNTIL 5', null],
      ['', null],
      ['until 1234567890123456', null],
    ];
    for (const [line, expected] of rows) {
      it(`${JSON.stringify(line)} → ${expected}`, () => expect(parseKeeperLine(line)).to.equal(expected));
    }

    it('formatKeeperLine writes what parseKeeperLine reads, floored and never negative', () => {
      expect(parseKeeperLine(formatKeeperLine(99.9))).to.equal(99);
      expect(parseKeeperLine(formatKeeperLine(-3))).to.equal(0);
      expect(formatKeeperLine(5).endsWith('\n')).to.equal(true);
    });
  });

  describe('mustKill', () => {
    const rows: Array<{ name: string; guarded: boolean; until: number | null; now: number; kill: boolean }> = [
      { name: 'guarded, deadline ahead', guarded: true, until: 1000, now: 999, kill: false },
      { name: 'guarded, at the deadline', guarded: true, until: 1000, now: 1000, kill: true },
      { name: 'guarded, past the deadline', guarded: true, until: 1000, now: 5000, kill: true },
      { name: 'guarded without any deadline', guarded: true, until: null, now: 0, kill: true },
      { name: 'unguarded, past any deadline', guarded: false, until: 1000, now: 5000, kill: false },
      { name: 'unguarded without a deadline', guarded: false, until: null, now: 5000, kill: false },
    ];
    for (const row of rows) {
      it(`${row.name} → ${row.kill ? 'kill' : 'keep'}`, () => expect(mustKill(row.guarded, row.until, row.now)).to.equal(row.kill));
    }
  });
});
