import { expect } from 'chai';
import { parseUnittestVerbose } from '../drivers/pymysql';
import { compareRuns, parseGoTestJson, type TestOutcome } from '../drivers/suite-results';

const run = (entries: Record<string, TestOutcome>): Map<string, TestOutcome> => new Map(Object.entries(entries));

describe("drivers' suites: comparing a direct run with one through the proxy", () => {
  const known = [
    { suite: 's', test: 'TestExplained', why: 'the proxy answers with its own connection id' },
    { suite: 's', test: 'TestNowFixed', why: 'was different once' },
    { suite: 'other', test: 'TestOnlyProxy', why: 'listed for another suite' },
  ];
  const rows: Array<[string, Record<string, TestOutcome>, Record<string, TestOutcome>, { unexplained: string[]; explained: string[]; stale: string[]; better: string[] }]> = [
    ['the same outcomes: nothing to say', { TestA: 'pass', TestB: 'fail', TestC: 'skip' }, { TestA: 'pass', TestB: 'fail', TestC: 'skip' }, { unexplained: [], explained: [], stale: ['TestExplained', 'TestNowFixed'], better: [] }],
    ['fails only through the proxy, not listed', { TestOnlyProxy: 'pass' }, { TestOnlyProxy: 'fail' }, { unexplained: ['TestOnlyProxy'], explained: [], stale: ['TestExplained', 'TestNowFixed'], better: [] }],
    ['fails only through the proxy, listed', { TestExplained: 'pass', TestNowFixed: 'pass' }, { TestExplained: 'fail', TestNowFixed: 'pass' }, { unexplained: [], explained: ['TestExplained'], stale: ['TestNowFixed'], better: [] }],
    ['skipped direct, failed through the proxy', { TestS: 'skip' }, { TestS: 'fail' }, { unexplained: ['TestS'], explained: [], stale: ['TestExplained', 'TestNowFixed'], better: [] }],
    ['missing through the proxy (the run died) counts as failed', { TestGone: 'pass' }, {}, { unexplained: ['TestGone'], explained: [], stale: ['TestExplained', 'TestNowFixed'], better: [] }],
    ['a failing test only the proxy ran', {}, { TestNew: 'fail' }, { unexplained: ['TestNew'], explained: [], stale: ['TestExplained', 'TestNowFixed'], better: [] }],
    ['fails direct, passes through the proxy', { TestB: 'fail' }, { TestB: 'pass' }, { unexplained: [], explained: [], stale: ['TestExplained', 'TestNowFixed'], better: ['TestB'] }],
  ];
  for (const [what, direct, proxy, expected] of rows) {
    it(what, () => {
      const comparison = compareRuns('s', run(direct), run(proxy), known);
      expect(comparison.unexplained).to.deep.equal(expected.unexplained);
      expect(comparison.explained.map((entry) => entry.test)).to.deep.equal(expected.explained);
      expect(comparison.stale).to.deep.equal(expected.stale);
      expect(comparison.betterThroughProxy).to.deep.equal(expected.better);
    });
  }

  it('counts outcomes of each run', () => {
    const comparison = compareRuns('s', run({ A: 'pass', B: 'pass', C: 'fail', D: 'skip' }), run({ A: 'pass', B: 'fail', C: 'fail', D: 'skip' }), []);
    expect(comparison.direct).to.deep.equal({ pass: 2, fail: 1, skip: 1 });
    expect(comparison.proxy).to.deep.equal({ pass: 1, fail: 2, skip: 1 });
  });

  it('reads go test -json: a test that started and never ended (the binary died) failed', () => {
    const log = ['{"Action":"run","Test":"TestA"}', '{"Action":"pass","Test":"TestA"}', '{"Action":"run","Test":"TestPaused"}', '{"Action":"pause","Test":"TestPaused"}'].join('\n');
    expect([...parseGoTestJson(log)]).to.deep.equal([['TestA', 'pass'], ['TestPaused', 'fail']]);
  });

  it('reads go test -json: top-level tests only, the last verdict wins, other lines ignored', () => {
    const log = [
      '{"Action":"run","Test":"TestA"}',
      '{"Action":"output","Test":"TestA","Output":"=== RUN TestA\\n"}',
      '{"Action":"pass","Test":"TestA/sub"}',
      '{"Action":"fail","Test":"TestA"}',
      '{"Action":"skip","Test":"TestB"}',
      'go: downloading filippo.io/edwards25519 v1.1.0',
      '{"Action":"pass","Test":"TestC"}',
      '{"Action":"fail"}',
      '{not json',
    ].join('\n');
    expect([...parseGoTestJson(log)]).to.deep.equal([['TestA', 'fail'], ['TestB', 'skip'], ['TestC', 'pass']]);
  });
});

describe("drivers' suites: reading python -m unittest -v", () => {
  it('one-line and docstring results, skips, expected failures; other lines ignored', () => {
    const output = [
      'test_a (pymysql.tests.test_basic.TestConversion.test_a) ... ok',
      'test_b (pymysql.tests.test_basic.TestConversion.test_b)',
      'Should have a NULL constant. ... FAIL',
      'test_c (pymysql.tests.test_basic.TestConversion.test_c) ... skipped "needs MySQL 8"',
      'test_d (pymysql.tests.test_basic.TestConversion.test_d) ... expected failure',
      'test_e (pymysql.tests.test_basic.TestConversion.test_e)',
      'printed by the test',
      'Large query ... ERROR',
      '======================================================================',
      'ERROR: test_e (pymysql.tests.test_basic.TestConversion.test_e)',
      'Ran 5 tests in 0.1s',
    ].join('\n');
    expect([...parseUnittestVerbose(output)]).to.deep.equal([
      ['pymysql.tests.test_basic.TestConversion.test_a', 'pass'],
      ['pymysql.tests.test_basic.TestConversion.test_b', 'fail'],
      ['pymysql.tests.test_basic.TestConversion.test_c', 'skip'],
      ['pymysql.tests.test_basic.TestConversion.test_d', 'pass'],
      ['pymysql.tests.test_basic.TestConversion.test_e', 'fail'],
    ]);
  });
});
