/**
 * Mocha root hooks (loaded with --require): after every test, stop what that test started; after
 * the whole run, whatever is left. Root hooks are run for the root suite, so `afterAll` runs once
 * at the very end, not per file: suites clean up what their `before` hooks started in their own
 * `after`; this is the net under them.
 */

import { enterTest, failureReports, leaveTest, runCleanups } from './cleanup';

export const mochaHooks = {
  beforeEach(): void {
    enterTest();
  },
  async afterEach(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    if (this.currentTest?.state === 'failed') {
      const report = await failureReports();
      if (report !== '') process.stderr.write(`\n--- what the failed test "${this.currentTest.title}" left in its logs ---\n${report}\n--- end ---\n`);
    }
    await leaveTest();
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await runCleanups();
  },
};
