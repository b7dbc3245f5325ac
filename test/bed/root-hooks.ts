/**
 * Mocha root hooks (loaded with --require): after every test, stop what that test started; after
 * the whole run, whatever is left. Root hooks are run for the root suite, so `afterAll` runs once
 * at the very end, not per file: suites clean up what their `before` hooks started in their own
 * `after`; this is the net under them.
 */

import { enterTest, leaveTest, runCleanups } from './cleanup';

export const mochaHooks = {
  beforeEach(): void {
    enterTest();
  },
  async afterEach(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await leaveTest();
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await runCleanups();
  },
};
