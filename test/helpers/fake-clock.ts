/**
 * A manual clock for unit tests: time moves only through `advance`, which fires due timers in order.
 * `jumpWallClock` moves only the wall clock (someone set the system time), never `monotonicNow`.
 */
import type { Clock, TimerHandle } from '../../src/util/clock';

interface Timer extends TimerHandle { at: number; seq: number; fn: () => void; cancelled: boolean }

export class FakeClock implements Clock {
  private current: number;
  private readonly origin: number;
  private wallOffset = 0;
  private seq = 0;
  private timers: Timer[] = [];

  constructor(start = 1_700_000_000_000) {
    this.current = start;
    this.origin = start;
  }

  now(): number { return this.current + this.wallOffset; }

  /** Time since this clock was made, ms; timers and `advance` move it, `jumpWallClock` does not. */
  monotonicNow(): number { return this.current - this.origin; }

  /** Sets the wall clock forward (or back, with a negative `ms`) without any time passing. */
  jumpWallClock(ms: number): void {
    this.wallOffset += ms;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false, unref() {} };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    (handle as Timer).cancelled = true;
  }

  /**
   * The process stood still for `ms` (SIGSTOP): time passes, no timer fires meanwhile; the overdue
   * ones fire on the next `advance`, as after a resume.
   */
  stall(ms: number): void {
    this.current += ms;
  }

  /** Pending timers, for assertions. */
  get pending(): number[] {
    return this.timers.filter((t) => !t.cancelled).map((t) => t.at - this.current).sort((a, b) => a - b);
  }

  /** Moves time forward, firing every timer due on the way (with promise callbacks settled in between). */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    for (;;) {
      await settle();
      const due = this.timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.fn();
    }
    this.current = end;
    await settle();
  }
}

/** Lets queued promise callbacks and immediates run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
