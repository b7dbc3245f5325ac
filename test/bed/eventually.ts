/**
 * Waiting for a condition instead of sleeping: `eventually` re-runs a check until it stops
 * throwing (or returns a truthy value), and fails with the check's last error when time is up.
 */

export interface EventuallyOptions {
  within: number;
  interval?: number;
  /** Said in the failure message: what we were waiting for. */
  what?: string;
}

export class EventuallyTimeoutError extends Error {
  readonly code = 'EVENTUALLY_TIMEOUT';
}

export async function eventually<T>(check: () => Promise<T> | T, options: EventuallyOptions): Promise<T> {
  const deadline = Date.now() + options.within;
  const interval = options.interval ?? 100;
  let lastError: unknown = undefined;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const result = await check();
      if (result !== false && result !== undefined && result !== null) return result;
      lastError = new Error(`check returned ${String(result)}`);
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
  }
  const detail = lastError instanceof Error ? lastError.message : String(lastError);
  throw new EventuallyTimeoutError(`${options.what ?? 'condition'} not met within ${options.within} ms after ${attempts} attempts: ${detail}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
