/**
 * What the agent tells the keeper beside its Dolt (keeper-main.ts), one line per message on the
 * keeper's stdin. Pure: parsed and formatted here, table-tested in test/unit/keeper-protocol.
 *
 *   until <ms>   Dolt may take writes until <ms> on the fence clock (common/fence-clock.ts), an
 *                absolute time: a line written late by a frozen agent is already in the past.
 *   guard <ms>   From now on guard Dolt, with <ms> as the deadline: sent before a running Dolt is
 *                made writable without a restart (cluster mode's dolt_assume_cluster_role).
 *   unguard      Stop guarding: sent only once the agent has seen Dolt refuse writes again.
 *
 * A line that cannot be parsed is ignored (it never extends the deadline). The command line says
 * whether the keeper guards from the start: read-only roles run unguarded, since a read-only Dolt
 * takes no writes whoever holds the lease.
 */

/** The exit status after the keeper fenced Dolt (EX_TEMPFAIL): the agent's log says why. */
export const KEEPER_FENCED_EXIT = 75;

/** The signal by which the agent asks for SIGKILL of Dolt, with the keeper outliving it. */
export const KEEPER_KILL_SIGNAL = 'SIGUSR2';

export interface KeeperArgs {
  /** Kill Dolt once the deadline passes; false for read-only roles. */
  guarded: boolean;
  /** The first deadline (fence clock ms), given at start; required when guarded. */
  until: number | null;
  /** The command to run (dolt sql-server ...), and its arguments. */
  command: string[];
}

export class KeeperArgsError extends Error {
  readonly code = 'KEEPER_ARGS';
}

export const keeperUsage = 'usage: keeper-main (--until <fence-clock-ms> | --unguarded) -- <command> [args...]';

export function parseKeeperArgs(argv: readonly string[]): KeeperArgs {
  const split = argv.indexOf('--');
  if (split < 0 || split === argv.length - 1) throw new KeeperArgsError(`no command after --; ${keeperUsage}`);
  const options = argv.slice(0, split);
  const command = argv.slice(split + 1);
  if (options.length === 1 && options[0] === '--unguarded') return { guarded: false, until: null, command };
  if (options.length === 2 && options[0] === '--until') {
    const until = Number(options[1]);
    if (!Number.isSafeInteger(until) || until < 0) throw new KeeperArgsError(`--until must be a non-negative integer of milliseconds, got ${JSON.stringify(options[1])}`);
    return { guarded: true, until, command };
  }
  throw new KeeperArgsError(`expected --until <ms> or --unguarded before --; ${keeperUsage}`);
}

export function formatKeeperArgs(args: Omit<KeeperArgs, 'command'>): string[] {
  return args.guarded ? ['--until', String(args.until ?? 0)] : ['--unguarded'];
}

export type KeeperMessage = { kind: 'until'; until: number } | { kind: 'guard'; until: number } | { kind: 'unguard' };

/** What a line says, or null when it says nothing the keeper knows. */
export function parseKeeperMessage(line: string): KeeperMessage | null {
  const text = line.trim();
  if (text === 'unguard') return { kind: 'unguard' };
  const match = /^(until|guard) (\d{1,15})$/.exec(text);
  if (!match) return null;
  return { kind: match[1] as 'until' | 'guard', until: Number(match[2]) };
}

/** The deadline a line sets, or null when the line is not a deadline. */
export function parseKeeperLine(line: string): number | null {
  const message = parseKeeperMessage(line);
  return message !== null && message.kind === 'until' ? message.until : null;
}

export function formatKeeperLine(until: number): string {
  return `until ${Math.max(0, Math.floor(until))}\n`;
}

export function formatKeeperMessage(message: KeeperMessage): string {
  return message.kind === 'unguard' ? 'unguard\n' : `${message.kind} ${Math.max(0, Math.floor(message.until))}\n`;
}

/**
 * The keeper's state after a message. `until` moves the deadline whether guarded or not (an
 * unguarded keeper ignores it until guarded); `guard` arms with its own deadline; `unguard` disarms.
 */
export function applyKeeperMessage(state: { guarded: boolean; until: number | null }, message: KeeperMessage): { guarded: boolean; until: number | null } {
  switch (message.kind) {
    case 'until':
      return { guarded: state.guarded, until: message.until };
    case 'guard':
      return { guarded: true, until: message.until };
    case 'unguard':
      return { guarded: false, until: state.until };
  }
}

/**
 * The keeper's one decision, taken every tick: kill Dolt now? Only a guarded keeper kills, and
 * only once the fence clock has reached the deadline (a deadline of exactly now has expired: the
 * lease margin is what gives Dolt its last moment, not the tick).
 */
export function mustKill(guarded: boolean, until: number | null, now: number): boolean {
  return guarded && (until === null || now >= until);
}

/** Exit status of the wrapper when its parent was no longer the keeper once the signal was armed. */
export const KEEPER_ORPHANED_EXIT = 70;

/**
 * setpriv's arguments to run `command` with SIGKILL as its parent-death signal. setpriv arms the
 * signal and execs a shell, which execs the command only while its parent is still `keeperPid`:
 * had the keeper died before the signal was armed, the kernel would never send it.
 */
export function parentDeathSignalArgs(keeperPid: number, command: readonly string[]): string[] {
  const guard = `[ "$PPID" = "$1" ] || { echo "keeper $1 is gone: not starting $2" >&2; exit ${KEEPER_ORPHANED_EXIT}; }; shift; exec "$@"`;
  return ['--pdeathsig', 'KILL', '--', '/bin/sh', '-c', guard, 'keeper-guard', String(keeperPid), ...command];
}
