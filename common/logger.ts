/**
 * Structured JSON logs, one object per line on stderr (stdout stays free for CLI output).
 * Every record has `time`, `level`, `component` and `msg`; callers add fields, never secrets.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string, fields?: Record<string, unknown>): Logger;
}

export type LogSink = (line: string) => void;

const stderrSink: LogSink = (line) => {
  process.stderr.write(line + '\n');
};

function minimumLevel(): LogLevel {
  const fromEnv = process.env.DOLTGATE_LOG_LEVEL as LogLevel | undefined;
  return fromEnv && fromEnv in levelRank ? fromEnv : 'info';
}

export function createLogger(component: string, base: Record<string, unknown> = {}, sink: LogSink = stderrSink, level: LogLevel = minimumLevel()): Logger {
  const threshold = levelRank[level];
  const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (levelRank[lvl] < threshold) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, component, msg, ...base, ...fields };
    for (const [key, value] of Object.entries(record)) {
      if (value instanceof Error) record[key] = { message: value.message, code: (value as { code?: unknown }).code };
    }
    sink(JSON.stringify(record));
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (sub, fields) => createLogger(`${component}.${sub}`, { ...base, ...fields }, sink, level),
  };
}

/** A logger that drops everything; for tests that do not read logs. */
export const silentLogger: Logger = createLogger('silent', {}, () => undefined, 'error');
