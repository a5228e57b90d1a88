/**
 * The background half of a leader's recovery (docs/ARCHITECTURE.md, "Recovery"): per-job steps (read a
 * recovered job's recorded cancel and start its JobMaster) run here after the leader has published
 * itself, a few at a time, each job on its own: one job's trouble neither blocks nor fails
 * another. The pool only schedules and counts; what a step does, and how it handles its own errors,
 * is the Dispatcher's.
 *
 * Test lever (never set in production): while the file named by the environment variable
 * `HA_DISPATCHER_TEST_RECOVERY_HOLD_FILE` exists, queued steps do not start. A recovered job's JobMaster
 * then stays "still starting" for as long as a test needs, so it can show deterministically that
 * TaskManager reports arriving meanwhile are kept and adopted (test/integration/recovery-adopt.test.ts);
 * no real lever holds one job's start without also holding leadership or timing the race.
 */
import * as fs from 'node:fs';

export const RECOVERY_HOLD_FILE_ENV = 'HA_DISPATCHER_TEST_RECOVERY_HOLD_FILE';
const HOLD_POLL_MS = 50;

/** How one job's recovery ended; 'abandoned' when the term ended first (not counted). */
export type RecoveryOutcome = 'recovered' | 'quarantined' | 'failed' | 'cleaned' | 'abandoned';

export type RecoveryCounts = Record<Exclude<RecoveryOutcome, 'abandoned'>, number>;

export function emptyCounts(): RecoveryCounts {
  return { recovered: 0, quarantined: 0, failed: 0, cleaned: 0 };
}

interface Queued { jobId: string; run: () => Promise<RecoveryOutcome>; settle: (outcome: RecoveryOutcome) => void }

export class RecoveryPool {
  private readonly queue: Queued[] = [];
  /** Jobs queued or running. */
  private readonly jobIds = new Set<string>();
  private running = 0;
  private started = false;
  private stopped = false;

  /**
   * `concurrency`: steps running at once (each may hold many ZooKeeper reads in flight). `holdFile`: the
   * test lever above (default: from the environment).
   */
  constructor(private readonly concurrency: number, private readonly holdFile: string | undefined = process.env[RECOVERY_HOLD_FILE_ENV] || undefined) {}

  /**
   * Queues a job's step; resolves with its outcome ('abandoned' if the pool is stopped first). A job
   * already queued or running is not queued again (resolves 'abandoned'). Never rejects: a step that
   * throws counts as 'failed'.
   */
  add(jobId: string, run: () => Promise<RecoveryOutcome>): Promise<RecoveryOutcome> {
    if (this.stopped || this.jobIds.has(jobId)) return Promise.resolve('abandoned');
    this.jobIds.add(jobId);
    return new Promise((settle) => {
      this.queue.push({ jobId, run, settle });
      this.pump();
    });
  }

  /** True while a step of `jobId` is queued or running. */
  has(jobId: string): boolean {
    return this.jobIds.has(jobId);
  }

  /** Steps queued and not yet running. */
  get backlog(): number {
    return this.queue.length;
  }

  /** Steps run only once started (a new leader starts the pool after publishing itself). */
  start(): void {
    this.started = true;
    this.pump();
  }

  /** The term is over: queued steps are dropped ('abandoned'); running ones finish on their own. */
  stop(): void {
    this.stopped = true;
    for (const q of this.queue.splice(0)) q.settle('abandoned');
    this.jobIds.clear();
  }

  /** Resolves once the hold file (test lever) is gone or the pool is stopped; at once without one. */
  private async held(): Promise<void> {
    while (this.holdFile && !this.stopped && fs.existsSync(this.holdFile)) {
      await new Promise((resolve) => setTimeout(resolve, HOLD_POLL_MS));
    }
  }

  private pump(): void {
    while (this.started && !this.stopped && this.running < this.concurrency && this.queue.length > 0) {
      const q = this.queue.shift()!;
      this.running++;
      const step = this.holdFile ? this.held().then((): Promise<RecoveryOutcome> => (this.stopped ? Promise.resolve('abandoned') : q.run())) : q.run();
      void step.catch((): RecoveryOutcome => 'failed').then((outcome) => {
        this.running--;
        this.jobIds.delete(q.jobId);
        q.settle(outcome);
        this.pump();
      });
    }
  }
}

/** Adds outcomes up. */
export function countOutcomes(outcomes: RecoveryOutcome[]): RecoveryCounts {
  const counts = emptyCounts();
  for (const o of outcomes) if (o !== 'abandoned') counts[o]++;
  return counts;
}
