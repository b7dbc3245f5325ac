/**
 * The keeper (agent/keeper/keeper-main.ts) as a real process around a real child (`sleep`): a
 * guarded keeper kills its child once the deadlines stop, a stream of deadlines keeps it alive,
 * an unguarded keeper never kills for time, and the agent going away (stdin closed) or asking
 * (SIGUSR2) kills the child, with the keeper outliving it. The agent-level proof (a frozen agent
 * never leaves a writable Dolt past its lease) is in agent-failover.test.ts.
 */

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManagedChild, isProcessAlive } from '../../common/child-process';
import { fenceClockMs } from '../../common/fence-clock';
import { keeperEntry } from '../../agent/agent-runtime';
import { formatKeeperLine, formatKeeperMessage, KEEPER_FENCED_EXIT, KEEPER_ORPHANED_EXIT, parentDeathSignalArgs } from '../../agent/keeper/keeper-protocol';
import { registerCleanup, tempDir } from '../bed/cleanup';
import { eventually } from '../bed/eventually';

async function childOf(pid: number): Promise<number> {
  return eventually<number | null>(
    async () => {
      const text = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim();
      if (text === '') return null;
      const child = Number(text.split(/\s+/)[0]);
      // Until setpriv has exec'd the command, its parent-death signal may not be set yet: a test
      // that kills the keeper in that window would see an orphan the kernel was never asked to kill.
      const program = (await readFile(`/proc/${child}/comm`, 'utf8').catch(() => '')).trim();
      return program === 'sleep' ? child : null;
    },
    { within: 5_000, interval: 20, what: `the keeper ${pid} to start its child` },
  ) as Promise<number>;
}

async function startKeeper(dir: string, args: string[]): Promise<{ keeper: ManagedChild; child: number; log: string }> {
  const log = join(dir, `keeper-${Math.random().toString(36).slice(2)}.log`);
  const keeper = new ManagedChild({ command: process.execPath, args: [keeperEntry, ...args, '--', 'sleep', '60'], logFile: log, stdinPipe: true });
  await keeper.start();
  registerCleanup(async () => {
    await keeper.kill9();
  });
  const child = await childOf(keeper.pid as number);
  registerCleanup(() => {
    if (isProcessAlive(child)) process.kill(child, 'SIGKILL');
  });
  return { keeper, child, log };
}

describe('keeper (real processes)', function () {
  this.timeout(30_000);
  let dir: string;
  before(async () => {
    dir = await tempDir('keeper');
  });

  it('guarded: kills the child once the deadline passes, and exits with the fenced status', async () => {
    // The deadline leaves room for a node process to start on a loaded machine.
    const until = fenceClockMs() + 4_000;
    const { keeper, child, log } = await startKeeper(dir, ['--until', String(until)]);
    const exit = await keeper.waitForExit();
    const late = fenceClockMs() - until;
    expect(exit?.code).to.equal(KEEPER_FENCED_EXIT);
    expect(isProcessAlive(child)).to.equal(false);
    expect(late, 'killed at the deadline, not before and not long after').to.be.within(-20, 1_000);
    expect(await readFile(log, 'utf8')).to.match(/killing pid \d+: no lease renewal vouched for by the agent/);
  });

  it('guarded: newer deadlines keep the child alive; when they stop, it dies', async () => {
    const { keeper, child } = await startKeeper(dir, ['--until', String(fenceClockMs() + 4_000)]);
    const vouching = setInterval(() => keeper.write(formatKeeperLine(fenceClockMs() + 500)), 100);
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(isProcessAlive(child), 'alive while vouched for, past its first deadline').to.equal(true);
    clearInterval(vouching);
    const exit = await keeper.waitForExit();
    expect(exit?.code).to.equal(KEEPER_FENCED_EXIT);
    expect(isProcessAlive(child)).to.equal(false);
  });

  it('guarded: a late line that carries an old deadline does not revive the guard (deadlines are absolute)', async () => {
    const first = fenceClockMs() + 10_000;
    const { keeper, child } = await startKeeper(dir, ['--until', String(first)]);
    // What a frozen agent would write on waking: the deadline it computed before it froze.
    keeper.write(formatKeeperLine(fenceClockMs() - 1));
    const exit = await keeper.waitForExit();
    expect(exit?.code).to.equal(KEEPER_FENCED_EXIT);
    expect(fenceClockMs(), 'killed at once, not at the first deadline').to.be.below(first - 5_000);
    expect(isProcessAlive(child)).to.equal(false);
  });

  it('guarded: refuses to start a child at all when the deadline has already passed', async () => {
    const log = join(dir, 'refused.log');
    const keeper = new ManagedChild({ command: process.execPath, args: [keeperEntry, '--until', String(fenceClockMs() - 10), '--', 'sleep', '60'], logFile: log, stdinPipe: true });
    await keeper.start();
    registerCleanup(async () => {
    await keeper.kill9();
  });
    expect((await keeper.waitForExit())?.code).to.equal(KEEPER_FENCED_EXIT);
    expect(await readFile(log, 'utf8')).to.match(/not starting sleep: the lease deadline \d+ has passed/);
  });

  it('unguarded, then armed at run time (cluster mode promotes without a restart): kills once the deadlines stop', async () => {
    const { keeper, child, log } = await startKeeper(dir, ['--unguarded']);
    keeper.write(formatKeeperMessage({ kind: 'guard', until: fenceClockMs() + 1_500 }));
    const exit = await keeper.waitForExit();
    expect(exit?.code).to.equal(KEEPER_FENCED_EXIT);
    expect(isProcessAlive(child)).to.equal(false);
    expect(await readFile(log, 'utf8')).to.match(/guarding from now on[\s\S]*killing pid \d+: no lease renewal/);
  });

  it('armed at run time with a deadline already past: kills at once', async () => {
    const { keeper, child } = await startKeeper(dir, ['--unguarded']);
    const sent = fenceClockMs();
    keeper.write(formatKeeperMessage({ kind: 'guard', until: sent - 1 }));
    const exit = await keeper.waitForExit();
    expect(exit?.code).to.equal(KEEPER_FENCED_EXIT);
    expect(fenceClockMs() - sent, 'at once, not at a later tick').to.be.below(1_000);
    expect(isProcessAlive(child)).to.equal(false);
  });

  it('disarmed at run time (Dolt read-only again): the deadlines stopping no longer kill', async () => {
    const { keeper, child } = await startKeeper(dir, ['--until', String(fenceClockMs() + 4_000)]);
    keeper.write(formatKeeperMessage({ kind: 'unguard' }));
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(isProcessAlive(child), 'alive past its first deadline').to.equal(true);
    keeper.signal('SIGUSR2');
    await keeper.waitForExit();
    expect(isProcessAlive(child)).to.equal(false);
  });

  it('unguarded: time never kills the child; SIGUSR2 does, and the keeper exits after it', async () => {
    const { keeper, child } = await startKeeper(dir, ['--unguarded']);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(isProcessAlive(child)).to.equal(true);
    keeper.signal('SIGUSR2');
    await keeper.waitForExit();
    expect(isProcessAlive(child)).to.equal(false);
  });

  it('the agent gone (its end of the pipe closed): the child is killed', async () => {
    const { keeper, child } = await startKeeper(dir, ['--unguarded']);
    // The keeper's stdin is the agent's pipe; an agent's death closes it like this.
    keeper.closeStdin();
    await keeper.waitForExit();
    expect(isProcessAlive(child)).to.equal(false);
  });

  it('the parent-death wrapper execs the command only while its parent is the keeper it names', async () => {
    const run = (keeperPid: number) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        execFile('setpriv', parentDeathSignalArgs(keeperPid, ['echo', 'dolt ran']), (error, out, err) => resolve({ code: error ? (error.code as number) : 0, out, err }));
      });
    const ours = await run(process.pid);
    expect(ours).to.include({ code: 0, out: 'dolt ran\n' });
    // A parent other than the named keeper is what a keeper killed before the signal was armed leaves.
    const orphaned = await run(process.pid + 1_000_000);
    expect(orphaned.code).to.equal(KEEPER_ORPHANED_EXIT);
    expect(orphaned.out).to.equal('');
    expect(orphaned.err).to.match(/keeper \d+ is gone: not starting echo/);
  });

  it('the keeper killed -9: the kernel kills the child (parent-death signal)', async () => {
    const { keeper, child } = await startKeeper(dir, ['--unguarded']);
    await keeper.kill9();
    await eventually(() => !isProcessAlive(child), { within: 2_000, interval: 20, what: 'the child to die with its keeper' });
  });
});
