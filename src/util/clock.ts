/**
 * Time source behind an interface so unit tests can drive timers deterministically.
 *
 * Two readings: `now()` is wall-clock epoch-ms, for timestamps shown to people or stored (it may jump
 * when the system clock is set); `monotonicNow()` is ms from an arbitrary origin that never jumps, for
 * every duration, age and deadline (heartbeat silence, back-offs, stall detection).
 */
export interface Clock {
  /** Wall-clock time, epoch-ms. */
  now(): number;
  /** Monotonic time in ms (fractional, arbitrary origin): only differences between readings mean anything. */
  monotonicNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  /** Lets the process exit while this timer is pending. */
  unref?(): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonicNow: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True when `promise` settles (either way) within `ms` (ms, a timer: immune to wall-clock steps), false
 * otherwise; leaves no timer behind. The work itself is not stopped.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}
