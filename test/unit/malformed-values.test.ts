import { expect } from 'chai';
import { createLogger } from '../../common/logger';
import { MalformedValueLog } from '../../agent/store/malformed-values';

function logWithLines(): { log: MalformedValueLog; lines: string[] } {
  const lines: string[] = [];
  return { log: new MalformedValueLog('/doltgate/c/', createLogger('agent', {}, (line) => lines.push(line), 'warn')), lines };
}

describe('MalformedValueLog', () => {
  const kinds: Array<[string, string]> = [
    ['/doltgate/c/members/n1', 'members'],
    ['/doltgate/c/ops/abc', 'ops'],
    ['/doltgate/c/history/00000000000000000007', 'history'],
    ['/doltgate/c/topology', 'topology'],
    ['/doltgate/c/', 'unknown'],
    ['/elsewhere/x', 'unknown'],
  ];
  for (const [key, kind] of kinds) {
    it(`${key} is of kind ${kind}`, () => expect(logWithLines().log.kindOf(key)).to.equal(kind));
  }

  it('logs and counts each key and revision once, however often it is read', () => {
    const { log, lines } = logWithLines();
    for (let cycle = 0; cycle < 5; cycle++) log.report('/doltgate/c/members/n1', '10', new SyntaxError('Unexpected token'));
    log.report('/doltgate/c/members/n1', '11', new SyntaxError('Unexpected token'));
    log.report('/doltgate/c/ops/x', '12', 'not an op');
    expect([...log.counts()]).to.deep.equal([['members', 2], ['ops', 1]]);
    expect(lines).to.have.length(3);
    const first = JSON.parse(lines[0]);
    expect(first).to.include({ level: 'warn', msg: 'skipped a malformed value in etcd', key: '/doltgate/c/members/n1', modRevision: '10', kind: 'members', error: 'Unexpected token' });
    expect(JSON.parse(lines[2]).error).to.equal('not an op');
  });

  it('forgets the oldest pairs past 1000, so memory stays bounded while counts keep growing', () => {
    const { log } = logWithLines();
    for (let revision = 0; revision < 1500; revision++) log.report('/doltgate/c/topology', String(revision), 'bad');
    log.report('/doltgate/c/topology', '0', 'bad');
    expect(log.counts().get('topology')).to.equal(1501);
  });
});
