/**
 * The keeper: a small process between the agent and its `dolt sql-server` that kills Dolt when
 * the agent stops vouching for the leader lease. It is the fence that still acts when the agent
 * cannot (a SIGSTOP, a long GC pause, a hung event loop): Patroni's watchdog idea, one level down.
 *
 *   agent ──stdin "until <ms>"──▶ keeper ──spawns──▶ setpriv --pdeathsig KILL dolt sql-server
 *
 * Contract:
 * - Guarded (a writable role): once the fence clock (common/fence-clock.ts) reaches the newest
 *   deadline the agent sent, Dolt gets SIGKILL and the keeper exits with KEEPER_FENCED_EXIT. The
 *   agent sends deadlines that end a fence margin before its lease does, so Dolt is gone before
 *   etcd can give the leader key to anyone else (design.md safety 1).
 * - Unguarded (read-only roles): deadlines are ignored. `guard <ms>` arms a running keeper (a Dolt
 *   made writable without a restart), `unguard` disarms it (keeper-protocol.ts).
 * - The agent gone (stdin closed): Dolt gets SIGKILL. The keeper gone: the kernel kills Dolt
 *   (parent-death signal through setpriv, which execs dolt, so Dolt's PID is the child's PID).
 *   The signal is armed only once setpriv runs, so a keeper killed between the fork and that
 *   moment would leave an orphaned Dolt (perhaps writable) with no signal coming: after arming
 *   it, a shell checks that its parent is still this keeper and refuses to exec Dolt otherwise.
 * - SIGTERM or SIGINT: passed on to Dolt as SIGTERM (the agent's graceful stop); SIGUSR2: Dolt
 *   gets SIGKILL (the agent's fence). Either way the keeper exits only once Dolt has exited, so
 *   the agent that waits for the keeper knows Dolt's port and files are free.
 * Everything it does is logged to its stdout, which the agent points at the node's Dolt log.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fenceClockMs } from '../../common/fence-clock';
import { applyKeeperMessage, KEEPER_FENCED_EXIT, KEEPER_KILL_SIGNAL, mustKill, parentDeathSignalArgs, parseKeeperArgs, parseKeeperMessage } from './keeper-protocol';
/** How often the deadline is checked; far below the fence margin it enforces. */
const TICK_MS = 20;

function say(line: string): void {
  process.stdout.write(`${new Date().toISOString()} doltgate-keeper[${process.pid}]: ${line}\n`);
}

/** One keeper: the newest deadline, the child, and whether it was fenced. */
class Keeper {
  private until: number | null;
  private guarded: boolean;
  private fenced = false;
  private child: ChildProcess | null = null;

  constructor(guarded: boolean, first: number | null, private readonly command: string[]) {
    this.guarded = guarded;
    this.until = first;
  }

  /** Listens to the agent, then starts the child on the next turn (see start). */
  run(): void {
    createInterface({ input: process.stdin }).on('line', (line) => {
      const message = parseKeeperMessage(line);
      if (message === null) return;
      const next = applyKeeperMessage({ guarded: this.guarded, until: this.until }, message);
      if (next.guarded !== this.guarded) say(next.guarded ? `guarding from now on, until ${next.until}` : 'no longer guarding: Dolt refuses writes');
      this.guarded = next.guarded;
      this.until = next.until;
      // A guard whose deadline has already passed kills now, not at the next tick.
      this.check();
    });
    process.stdin.once('close', () => this.kill('the agent closed its end of the pipe (the agent is gone)'));
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => this.child?.kill('SIGTERM'));
    process.on(KEEPER_KILL_SIGNAL, () => this.kill('the agent fences this node'));
    // Deadlines the agent sent while this process was still starting (Node can take a second to
    // start on a loaded machine) are read in this turn's poll, before the child starts.
    setImmediate(() => this.start());
  }

  private start(): void {
    const [program] = this.command;
    // A guarded Dolt whose deadline has passed must not take one write: it is not started.
    if (mustKill(this.guarded, this.until, fenceClockMs())) {
      say(`not starting ${program}: the lease deadline ${this.until} has passed (fence clock ${fenceClockMs()})`);
      process.exit(KEEPER_FENCED_EXIT);
    }
    const child = spawn('setpriv', parentDeathSignalArgs(process.pid, this.command), { stdio: ['ignore', 'inherit', 'inherit'] });
    this.child = child;
    child.once('error', (error) => {
      say(`could not start ${program}: ${error.message}`);
      process.exit(1);
    });
    say(`started ${program} as pid ${child.pid} (${this.guarded ? `guarded until ${this.until}` : 'unguarded'})`);
    const timer = setInterval(() => this.check(), TICK_MS);
    child.once('exit', (code, signal) => {
      clearInterval(timer);
      say(`pid ${child.pid} exited (${signal ?? `code ${code}`})`);
      process.exit(this.fenced ? KEEPER_FENCED_EXIT : code === 0 ? 0 : 1);
    });
  }

  private check(): void {
    const now = fenceClockMs();
    if (this.fenced || !mustKill(this.guarded, this.until, now)) return;
    this.fenced = true;
    this.kill(`no lease renewal vouched for by the agent: deadline ${this.until} passed ${now - (this.until ?? now)} ms ago (fence clock ${now})`);
  }

  private kill(why: string): void {
    const child = this.child;
    if (child === null) process.exit(KEEPER_FENCED_EXIT);
    if (child.exitCode !== null || child.signalCode !== null) return;
    say(`killing pid ${child.pid}: ${why}`);
    child.kill('SIGKILL');
  }
}

function main(): void {
  try {
    const args = parseKeeperArgs(process.argv.slice(2));
    new Keeper(args.guarded, args.until, args.command).run();
  } catch (error) {
    process.stderr.write(`doltgate keeper: ${(error as Error).message}\n`);
    process.exit(2);
  }
}

main();
