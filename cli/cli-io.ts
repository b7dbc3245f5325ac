/**
 * How a `doltgate` control subcommand meets the world: where its output goes (an injectable
 * `CliIo`, so tests read exactly what a person would see), the exit codes scripts rely on, and
 * the one error class that carries an exit code to the top. `runCommand` is the single place
 * that turns a thrown CliError into a message on stderr (and, with --json, an error object on
 * stdout) plus the exit code.
 *
 * Exit codes (stable; documented in `doltgate <command> --help`):
 *   0 ok · 1 the operation failed (or ended unclear) · 2 usage error, including a missing or
 *   rejected token · 3 refused, with its reason · 4 etcd or every agent unreachable ·
 *   5 unknown node.
 */

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  refused: 3,
  unreachable: 4,
  unknownNode: 5,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** The words --json error objects use for each exit code. */
export const exitKind: Readonly<Record<ExitCodeValue, string>> = {
  0: 'ok',
  1: 'failed',
  2: 'usage',
  3: 'refused',
  4: 'unreachable',
  5: 'unknown-node',
};

export class CliError extends Error {
  readonly code = 'CLI_ERROR';
  constructor(readonly exitCode: ExitCodeValue, message: string) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(ExitCode.usage, message);
  }
}

export interface CliIo {
  /** stdout: the answer (tables, JSON). Each call is one or more whole lines, without the final newline. */
  out(text: string): void;
  /** stderr: progress, warnings and errors. */
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => {
    process.stdout.write(text + '\n');
  },
  err: (text) => {
    process.stderr.write(text + '\n');
  },
};

/** Collects output in memory; for tests. */
export function memoryIo(): CliIo & { stdout: string[]; stderr: string[]; text(): string } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (text) => {
      stdout.push(text);
    },
    err: (text) => {
      stderr.push(text);
    },
    text: () => [...stdout, ...stderr].join('\n'),
  };
}

/**
 * Runs one subcommand body. Errors become `doltgate <command>: <message>` on stderr and their
 * exit code; with `json`, also `{"error": {"exitCode", "kind", "message"}}` on stdout, so a
 * script that parses stdout always gets JSON.
 */
export async function runCommand(name: string, io: CliIo, json: () => boolean, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const failure = error instanceof CliError ? error : new CliError(ExitCode.failed, error instanceof Error ? error.message : String(error));
    io.err(`doltgate ${name}: ${failure.message}`);
    if (failure instanceof UsageError) io.err(`run 'doltgate ${name} --help' for its options`);
    if (json()) io.out(JSON.stringify({ error: { exitCode: failure.exitCode, kind: exitKind[failure.exitCode], message: failure.message } }));
    return failure.exitCode;
  }
}
