import { expect } from 'chai';
import { HealthTracker } from '../../agent/health/health-tracker';

const ok = (at: number) => ({ ok: true, latencyMs: 2, error: null, at });
const fail = (at: number) => ({ ok: false, latencyMs: null, error: 'refused', at });

describe('HealthTracker', () => {
  const rows: Array<{ name: string; threshold: number; results: Array<typeof ok | typeof fail>; healthy: boolean; failures: number }> = [
    { name: 'unknown before any check is unhealthy', threshold: 3, results: [], healthy: false, failures: 0 },
    { name: 'one success is healthy', threshold: 3, results: [ok], healthy: true, failures: 0 },
    { name: 'two failures under a threshold of three stay healthy', threshold: 3, results: [ok, fail, fail], healthy: true, failures: 2 },
    { name: 'three consecutive failures are unhealthy', threshold: 3, results: [ok, fail, fail, fail], healthy: false, failures: 3 },
    { name: 'a success in between resets the count', threshold: 3, results: [fail, fail, ok, fail, fail], healthy: true, failures: 2 },
    { name: 'one success after being unhealthy is healthy again', threshold: 2, results: [fail, fail, fail, ok], healthy: true, failures: 0 },
    { name: 'a threshold of one makes any failure unhealthy', threshold: 1, results: [ok, fail], healthy: false, failures: 1 },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const tracker = new HealthTracker(row.threshold);
      row.results.forEach((result, i) => tracker.record(result(i * 1000)));
      expect(tracker.healthy).to.equal(row.healthy);
      expect(tracker.snapshot().consecutiveFailures).to.equal(row.failures);
    });
  }

  it('an exited process is unhealthy at once, whatever the threshold; one success after it is healthy again', () => {
    const tracker = new HealthTracker(3);
    tracker.record(ok(0));
    tracker.recordExited({ ...ok(1000), error: 'dolt sql-server exited' });
    expect(tracker.healthy).to.equal(false);
    expect(tracker.snapshot()).to.include({ consecutiveFailures: 3, lastError: 'dolt sql-server exited' });
    tracker.recordExited(fail(2000));
    expect(tracker.snapshot().consecutiveFailures).to.equal(4);
    tracker.record(ok(3000));
    expect(tracker.healthy).to.equal(true);
  });

  it('refuses a threshold that is not a positive integer', () => {
    expect(() => new HealthTracker(0)).to.throw(/positive integer/);
  });
});
