import { sleep } from './clock';

/**
 * Polls `check` until it returns a truthy value, or throws naming `what` once `timeoutMs` passed.
 * Errors thrown by `check` count as "not yet" (the last one is reported). Tests, benchmarks and
 * drills wait with this instead of fixed sleeps.
 */
export async function eventually<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20000, intervalMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
}
