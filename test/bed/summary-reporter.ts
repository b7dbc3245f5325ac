/**
 * Mocha's spec output plus one closing line `N passed, N failed` (CI reads that line, not
 * mocha's own summary). Failures include failed hooks, as mocha counts them.
 */

import Mocha from 'mocha';

const { EVENT_RUN_END } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const stats = runner.stats;
      const pending = stats?.pending ?? 0;
      // Spec registered its epilogue on the same event first (in super), so this line comes last.
      const skipped = pending > 0 ? `, ${pending} skipped` : '';
      process.stdout.write(`${stats?.passes ?? 0} passed, ${stats?.failures ?? 0} failed${skipped}\n`);
    });
  }
}

export = SummaryReporter;
