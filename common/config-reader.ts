/**
 * One reader for the agent's and the proxy's YAML configs: typed getters that name the field and
 * what was wrong with it ("pool.max_connections_per_node must be an integer from 1 to 100000"),
 * raised through the caller's own error type, so a bad config fails at start-up with the first
 * bad field and never half-applies. Relative file paths resolve against the config's folder.
 */

import { isAbsolute, resolve } from 'node:path';

export type Raw = Record<string, unknown>;

export function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class ConfigReader {
  constructor(
    private readonly failWith: (field: string, detail: string) => Error,
    private readonly baseDir: string = process.cwd(),
  ) {}

  fail(field: string, detail: string): never {
    throw this.failWith(field, detail);
  }

  /** A nested mapping; undefined when absent (or written empty: `key:` is null in YAML). */
  section(raw: Raw, key: string, path: string = key): Raw | undefined {
    const value = raw[key];
    if (value === undefined || value === null) return undefined;
    if (!isRecord(value)) this.fail(path, 'must be a mapping');
    return value;
  }

  string(raw: Raw, key: string, path: string, fallback?: string): string {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'string' || value.length === 0) this.fail(path, 'must be a non-empty string');
    return value;
  }

  optionalString(raw: Raw, key: string, path: string): string | null {
    const value = raw[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string') this.fail(path, 'must be a string');
    return value;
  }

  int(raw: Raw, key: string, path: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.fail(path, `must be an integer from ${min} to ${max}`);
    return value;
  }

  bool(raw: Raw, key: string, path: string, fallback: boolean): boolean {
    const value = raw[key] ?? fallback;
    if (typeof value !== 'boolean') this.fail(path, 'must be true or false');
    return value;
  }

  stringList(raw: Raw, key: string, path: string): string[] {
    const value = raw[key] ?? [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0)) this.fail(path, 'must be a list of non-empty strings');
    return value as string[];
  }

  /** "host:port", or null when absent. */
  address(raw: Raw, key: string, path: string = key): { host: string; port: number } | null {
    const value = raw[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || !/^[^:]+:\d+$/.test(value)) this.fail(path, 'must be "host:port"');
    const [host, port] = value.split(':');
    return { host, port: this.int({ port: Number(port) }, 'port', path, 0, 1, 65535) };
  }

  file(raw: Raw, key: string, path: string): string {
    return this.resolvePath(this.string(raw, key, path));
  }

  resolvePath(value: string): string {
    return isAbsolute(value) ? value : resolve(this.baseDir, value);
  }

  noUnknownKeys(raw: Raw, allowed: readonly string[], path: string): void {
    for (const key of Object.keys(raw)) {
      if (!allowed.includes(key)) this.fail(path === '' ? key : `${path}.${key}`, `is not a known setting (known: ${allowed.join(', ')})`);
    }
  }
}
