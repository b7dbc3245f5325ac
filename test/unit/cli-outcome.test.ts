/**
 * `doltgate outcome`: its arguments, and how the agents' answers become a verdict (the judging
 * itself is proto/outcome.ts, table-tested in proxy-outcome-token.test.ts).
 */

import { expect } from 'chai';
import { findingsOf, judgeFindings, parseOutcomeArgs } from '../../cli/outcome';
import type { FindCommitReply } from '../../proto/control-types';

const env = { DOLTGATE_ETCD: 'http://127.0.0.1:2379', DOLTGATE_CLUSTER: 'c1' };
const reply = (node: string, found: boolean, live: string[] = ['main']): { agent: string; reply: FindCommitReply } => ({
  agent: `${node} (127.0.0.1:1)`,
  reply: { node, found, database: found ? 'app' : '', hash: found ? 'h1' : '', liveBranches: found ? live : [] },
});

describe('doltgate outcome', () => {
  it('takes the token first, then the connection options; anything else is a usage error', () => {
    const args = parseOutcomeArgs(['n1/0123456789a1', '--json'], env);
    expect(args).to.not.equal('help');
    expect((args as { token: string }).token).to.equal('n1/0123456789a1');
    expect(parseOutcomeArgs(['--help'], env)).to.equal('help');
    expect(() => parseOutcomeArgs([], env)).to.throw(/a token is needed/);
    expect(() => parseOutcomeArgs(['--json'], env)).to.throw(/a token is needed/);
    expect(() => parseOutcomeArgs(['nope'], env)).to.throw(/not an outcome token/);
  });

  const rows: Array<{ name: string; token: string; primary: string | null; answers: Parameters<typeof findingsOf>[0]; verdict: string }> = [
    { name: 'the primary ran it and has it on main', token: 'n1/0123456789a1', primary: 'n1', answers: [reply('n1', true), reply('n2', false)], verdict: 'committed' },
    { name: 'the primary ran it and lacks it', token: 'n1/0123456789a1', primary: 'n1', answers: [reply('n1', false), reply('n2', false)], verdict: 'not committed' },
    { name: 'the old primary has it, the new one does not', token: 'n1/0123456789a1', primary: 'n2', answers: [reply('n1', true), reply('n2', false)], verdict: 'set aside' },
    { name: 'the old primary\'s agent does not answer', token: 'n1/0123456789a1', primary: 'n2', answers: [{ agent: '127.0.0.1:9', error: 'connection refused' }, reply('n2', false)], verdict: 'unknown' },
    { name: 'no primary now', token: 'n1/0123456789a1', primary: null, answers: [reply('n1', false)], verdict: 'not committed' },
  ];
  for (const row of rows) {
    it(`${row.name} → ${row.verdict}`, () => {
      expect(judgeFindings(row.token, row.primary, findingsOf(row.answers)).verdict).to.equal(row.verdict);
    });
  }
});
