/** Failover step order, resumption, and HaConfig validation. */

import { expect } from 'chai';
import { defaultHaConfig, haConfig, HaConfigError, type HaConfig } from '../../agent/ha/config';
import { failoverSteps, isFailoverStep, nextStep, remainingSteps, type FailoverStep } from '../../agent/ha/steps';
import { formatDuration } from '../../common/wording';

describe('ha steps', () => {
  it('are the documented procedure, in order', () => {
    expect(failoverSteps).to.deep.equal(['fence', 'disable-read-only', 'recover', 'enable-push-on-write', 'reroute']);
  });

  const rows: Array<{ name: string; completed: FailoverStep[]; next: FailoverStep | null; remaining: FailoverStep[] }> = [
    { name: 'fence: nothing done', completed: [], next: 'fence', remaining: [...failoverSteps] },
    { name: 'recover: after fence and disable-read-only', completed: ['fence', 'disable-read-only'], next: 'recover', remaining: ['recover', 'enable-push-on-write', 'reroute'] },
    { name: 'reroute: only the last step left', completed: ['fence', 'disable-read-only', 'recover', 'enable-push-on-write'], next: 'reroute', remaining: ['reroute'] },
    { name: 'null: all done', completed: [...failoverSteps], next: null, remaining: [] },
    { name: 'disable-read-only: a gap resumes at the gap and re-runs what follows', completed: ['fence', 'recover'], next: 'disable-read-only', remaining: ['disable-read-only', 'recover', 'enable-push-on-write', 'reroute'] },
    { name: 'fence: recorded order does not matter', completed: ['disable-read-only'], next: 'fence', remaining: [...failoverSteps] },
  ];
  for (const row of rows) {
    it(`nextStep → ${row.name}`, () => {
      expect(nextStep(row.completed)).to.equal(row.next);
      expect(remainingSteps(row.completed)).to.deep.equal(row.remaining);
    });
  }

  it('recognises step names from history', () => {
    expect(isFailoverStep('recover')).to.equal(true);
    expect(isFailoverStep('promote')).to.equal(false);
    expect(isFailoverStep(3)).to.equal(false);
  });
});

describe('ha config', () => {
  it('defaults validate', () => {
    expect(haConfig()).to.deep.equal(defaultHaConfig);
  });

  const bad: Array<[string, Partial<HaConfig>, RegExp]> = [
    ['failureThreshold 0', { failureThreshold: 0 }, /failureThreshold must be an integer >= 1/],
    ['fence margin not below the TTL', { leaseTtlMs: 5_000, fenceMarginMs: 5_000 }, /fenceMarginMs must be above 0 and below leaseTtlMs \(5000\)/],
    ['zero fence margin', { fenceMarginMs: 0 }, /fenceMarginMs must be above 0/],
    ['negative interval', { minFailoverIntervalMs: -1 }, /minFailoverIntervalMs must be a non-negative integer/],
    ['fractional lag limit', { maxCommitsBehind: 1.5 }, /maxCommitsBehind must be a non-negative integer/],
    ['invalid initial primary', { initialPrimary: 'Node A' }, /initialPrimary "Node A" is not a valid node name/],
  ];
  for (const [name, overrides, message] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => haConfig(overrides)).to.throw(HaConfigError, message);
      try {
        haConfig(overrides);
      } catch (error) {
        expect((error as HaConfigError).code).to.equal('HA_CONFIG');
      }
    });
  }
});

describe('ha formatDuration', () => {
  const rows: Array<[number, string]> = [[850, '850 ms'], [1_234, '1.2 s'], [12_000, '12 s'], [60_000, '60 s'], [-1_500, '-1.5 s']];
  for (const [ms, text] of rows) it(`${ms} → ${text}`, () => expect(formatDuration(ms)).to.equal(text));
});
