/**
 * Mocha root hooks (loaded with --require): after every test file's suites, stop what they left.
 * Suites should clean up in their own `after`; this is the net under them.
 */

import { runCleanups } from './cleanup';

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60_000);
    await runCleanups();
  },
};
