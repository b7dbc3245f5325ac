/**
 * The keeper's protocol and its one decision (agent/keeper/keeper-protocol.ts), table by table.
 */

import { expect } from 'chai';
import { applyKeeperMessage, formatKeeperArgs, formatKeeperLine, formatKeeperMessage, mustKill, parseKeeperArgs, parseKeeperLine, parseKeeperMessage, type KeeperMessage } from '../../agent/keeper/keeper-protocol';

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

  describe('parseKeeperMessage', () => {
    const rows: Array<[string, KeeperMessage | null]> = [
      ['until 12345', { kind: 'until', until: 12345 }],
      ['guard 900', { kind: 'guard', until: 900 }],
      [' guard 0 ', { kind: 'guard', until: 0 }],
      ['unguard', { kind: 'unguard' }],
      ['  unguard  ', { kind: 'unguard' }],
      ['unguard 5', null],
      ['guard', null],
      ['guard -1', null],
      ['GUARD 5', null],
      ['guard 1234567890123456', null],
    ];
    for (const [line, expected] of rows) {
      it(`${JSON.stringify(line)} → ${JSON.stringify(expected)}`, () => expect(parseKeeperMessage(line)).to.deep.equal(expected));
    }

    it('formatKeeperMessage writes what parseKeeperMessage reads', () => {
      for (const message of [{ kind: 'until', until: 7 }, { kind: 'guard', until: 8 }, { kind: 'unguard' }] as KeeperMessage[]) {
        expect(parseKeeperMessage(formatKeeperMessage(message))).to.deep.equal(message);
      }
    });

    it('a guard line is not a deadline for parseKeeperLine (an old keeper ignores it rather than extend)', () => {
      expect(parseKeeperLine('guard 5')).to.equal(null);
    });
  });

  describe('applyKeeperMessage', () => {
    const rows: Array<{ from: { guarded: boolean; until: number | null }; message: KeeperMessage; to: { guarded: boolean; until: number | null } }> = [
      { from: { guarded: false, until: null }, message: { kind: 'until', until: 10 }, to: { guarded: false, until: 10 } },
      { from: { guarded: false, until: null }, message: { kind: 'guard', until: 10 }, to: { guarded: true, until: 10 } },
      { from: { guarded: true, until: 50 }, message: { kind: 'guard', until: 10 }, to: { guarded: true, until: 10 } },
      { from: { guarded: true, until: 50 }, message: { kind: 'until', until: 60 }, to: { guarded: true, until: 60 } },
      { from: { guarded: true, until: 50 }, message: { kind: 'unguard' }, to: { guarded: false, until: 50 } },
      { from: { guarded: false, until: 50 }, message: { kind: 'unguard' }, to: { guarded: false, until: 50 } },
    ];
    for (const row of rows) {
      it(`${JSON.stringify(row.from)} + ${JSON.stringify(row.message)} → ${JSON.stringify(row.to)}`, () => {
        expect(applyKeeperMessage(row.from, row.message)).to.deep.equal(row.to);
        // And the kill decision follows: only a guarded state with its deadline reached kills.
        expect(mustKill(row.to.guarded, row.to.until, 1_000)).to.equal(row.to.guarded && (row.to.until ?? 0) <= 1_000);
      });
    }
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
