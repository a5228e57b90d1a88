/**
 * Used by the TaskManager (refuses deploys just after a stall) and the leader's ResourceManager
 * (restarts heartbeat deadlines after its own stall, so it never blames TaskManagers for its silence).
 *
 * Notices that this process stood still — SIGSTOP, a frozen VM, a very long GC pause — and, for a
 * moment after it resumes, tells command handlers that what arrives may be stale.
 *
 * Why: a deploy sent while the TaskManager stood still waits in its socket. The leader's call times
 * out meanwhile, it runs that subtask elsewhere (same epoch, so the epoch fence does not help), and
 * the job may even finish. When the process resumes it reads the old deploy first thing; starting
 * it would run work of a job that already has its result. Requests queued during the stall are all
 * read within moments of resuming, so refusing deploys briefly after a stall is enough; the leader
 * treats a refusal like any failed deploy and places the work again.
 *
 * Gaps are measured on the clock's monotonic reading: a wall-clock step (NTP, an operator setting the
 * time) is not a stall, and a stall is seen even if the wall clock was set back meanwhile.
 */
import { Clock, systemClock, TimerHandle } from './clock';

export interface StallFenceOptions {
  /** A gap in the beat at least this long counts as a stall (keep it under the leader's RPC timeout). */
  thresholdMs: number;
  /** How long after a detected stall commands are refused. */
  fenceMs: number;
  /** Interval of the regular beat, ms (default 100). */
  beatMs?: number;
  /** Default: the system clock. */
  clock?: Clock;
  /** Called once per detected stall with the gap in ms. */
  onStall?: (gapMs: number) => void;
}

export class StallFence {
  private lastBeat: number;
  private fencedUntil = -Infinity;
  private timer: TimerHandle | null = null;
  private readonly clock: Clock;

  constructor(private readonly options: StallFenceOptions) {
    this.clock = options.clock ?? systemClock;
    this.lastBeat = this.now();
  }

  start(): void {
    if (this.timer) return;
    this.lastBeat = this.now();
    this.scheduleBeat();
  }

  stop(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private scheduleBeat(): void {
    this.timer = this.clock.setTimeout(() => {
      this.beat();
      if (this.timer) this.scheduleBeat();
    }, this.options.beatMs ?? 100);
    this.timer.unref?.();
  }

  private now(): number {
    return this.clock.monotonicNow();
  }

  /**
   * The regular beat; also called by handlers, because after a resume the event loop may serve the
   * queued request before the overdue timer runs.
   */
  beat(): void {
    const now = this.now();
    const gap = now - this.lastBeat;
    this.lastBeat = now;
    if (gap >= this.options.thresholdMs) {
      this.fencedUntil = now + this.options.fenceMs;
      this.options.onStall?.(gap);
    }
  }

  /** True while commands that arrive may have been sent before or during a stall. */
  get fenced(): boolean {
    this.beat();
    return this.now() < this.fencedUntil;
  }
}
