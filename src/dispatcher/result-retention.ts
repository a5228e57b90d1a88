/**
 * Retention of job results (`/jobresults/<jobId>`), in the spirit of Flink's JobResultStore: the final
 * status of a job stays queryable for `job-result-store.retention.max-count` jobs and, when set,
 * `job-result-store.retention.max-age`; older results are deleted by the ready leader in the background,
 * in bounded batches. Recovery does not wait for any of it: after the leader is ready, `loadHistory`
 * reads the retained results into the leader's index (so listings show them again), then sweeps.
 */
import type { JobResultEntry, JobResultStore, StoredResult } from '../store/jobresult-store';
import type { Clock, TimerHandle } from '../util/clock';
import type { EventLogger } from '../util/logger';

export interface ResultRetention {
  maxCount: number;
  /** ms; undefined = no age limit. */
  maxAgeMs?: number;
}

/** Results read or deleted per batch; the next batch waits for the previous one (bounded ZooKeeper load). */
export const RETENTION_BATCH = 200;
/** After a result is recorded, a sweep runs at most this often (ms). */
const SWEEP_COALESCE_MS = 1000;
/** Wait before retrying a failed pass (ms). */
const RETRY_MS = 5000;
/** Longest wait between sweeps when an age limit is set (ms). */
const MAX_AGE_SWEEP_INTERVAL_MS = 60_000;

/** "results are kept for the last 1000 jobs and for 7 d": for 404 messages and logs. */
export function describeRetention(r: ResultRetention): string {
  const count = `the last ${r.maxCount} jobs (job-result-store.retention.max-count)`;
  return r.maxAgeMs === undefined ? count : `${count} and at most ${formatAge(r.maxAgeMs)} after they end (job-result-store.retention.max-age)`;
}

function formatAge(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size} ${unit}`;
  }
  return `${ms} ms`;
}

/**
 * Ids of the results to delete, oldest first: everything beyond the newest `maxCount` (by end time,
 * then job id) and everything that ended more than `maxAgeMs` before `now` (epoch-ms). `keep` names
 * results that must stay whatever their age (unreadable ones, kept as evidence).
 */
export function expiredResults(entries: Iterable<JobResultEntry>, r: ResultRetention, now: number, keep: ReadonlySet<string> = new Set()): string[] {
  const candidates = [...entries].filter((e) => !keep.has(e.jobId))
    .sort((a, b) => a.endTime - b.endTime || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
  const excess = Math.max(0, candidates.length + keep.size - r.maxCount);
  const cutoff = r.maxAgeMs === undefined ? -Infinity : now - r.maxAgeMs;
  return candidates.filter((e, i) => i < excess || e.endTime < cutoff).map((e) => e.jobId);
}

/** What the sweeper needs of one leadership term. */
export interface RetentionTerm {
  store: JobResultStore;
  /** The term's index of results (jobId → entry); the sweeper adds loaded results and drops deleted ones. */
  results: Map<string, JobResultEntry>;
  /** Unreadable results: never deleted. */
  unreadable: Set<string>;
  /** True while this term is the ready leader; checked before every batch. */
  active(): boolean;
  /** Adds a result read from the store (the dispatcher decides how unreadable ones are shown). */
  adopt(stored: StoredResult): void;
  /** Finishes the cleanup of a dirty result's job (idempotent), so deleting the result cannot revive it. */
  cleanUp(jobId: string): Promise<void>;
  onDeleted?(count: number): void;
}

/**
 * The background worker of one term: loads the retained history once, then keeps the store within
 * the retention. Every write goes through the store's guard (fenced by the term).
 */
export class ResultSweeper {
  private loaded = false;
  private stopped = false;
  private timer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private again = false;

  constructor(private readonly term: RetentionTerm, private readonly retention: ResultRetention, private readonly clock: Clock, private readonly logger: EventLogger) {}

  /** True once every stored result is in the term's index (so an unknown id has no result). */
  get historyLoaded(): boolean { return this.loaded; }

  /** Starts loading the history and sweeping; call once the term is ready. */
  start(): void {
    this.kick();
  }

  /** A result was recorded: sweep soon (coalesced). */
  noteRecorded(): void {
    if (this.term.results.size > this.retention.maxCount) this.schedule(SWEEP_COALESCE_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** Resolves when the current pass (if any) ends; for tests and benchmarks. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = this.clock.setTimeout(() => { this.timer = null; this.kick(); }, ms);
    this.timer.unref?.();
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    let failed = false;
    this.running = this.pass()
      .catch((err) => { failed = true; this.logger.warn('jobresult.retention.failed', { error: err as Error, retryInMs: RETRY_MS }); })
      .finally(() => {
        this.running = null;
        if (failed) { this.schedule(RETRY_MS); return; }
        if (this.again) { this.again = false; this.kick(); return; }
        if (this.retention.maxAgeMs !== undefined) this.schedule(Math.min(MAX_AGE_SWEEP_INTERVAL_MS, Math.max(1000, Math.floor(this.retention.maxAgeMs / 10))));
      });
  }

  private live(): boolean {
    return !this.stopped && this.term.active();
  }

  private async pass(): Promise<void> {
    if (!this.loaded) await this.loadHistory();
    if (this.loaded) await this.sweep();
  }

  /** Reads every stored result not yet in the index, one batch at a time. */
  private async loadHistory(): Promise<void> {
    const started = this.clock.monotonicNow();
    const ids = await this.term.store.listIds();
    const missing = ids.filter((id) => !this.term.results.has(id));
    for (let i = 0; i < missing.length; i += RETENTION_BATCH) {
      if (!this.live()) return;
      for (const stored of await this.term.store.getMany(missing.slice(i, i + RETENTION_BATCH))) {
        const id = stored.ok ? stored.entry.jobId : stored.jobId;
        if (!this.term.results.has(id)) this.term.adopt(stored);
      }
    }
    if (!this.live()) return;
    this.loaded = true;
    this.logger.info('jobresult.history.loaded', { results: ids.length, read: missing.length, ms: Math.round(this.clock.monotonicNow() - started) });
  }

  private async sweep(): Promise<void> {
    const expired = expiredResults(this.term.results.values(), this.retention, this.clock.now(), this.term.unreadable);
    let deleted = 0;
    for (let i = 0; i < expired.length; i += RETENTION_BATCH) {
      if (!this.live()) break;
      const batch = expired.slice(i, i + RETENTION_BATCH);
      await Promise.all(batch.map(async (id) => {
        const entry = this.term.results.get(id);
        if (!entry) return;
        if (entry.state === 'dirty') await this.term.cleanUp(id);
        await this.term.store.remove(id);
        this.term.results.delete(id);
        deleted++;
      }));
    }
    if (deleted > 0) {
      this.term.onDeleted?.(deleted);
      this.logger.info('jobresult.retention.deleted', { deleted, kept: this.term.results.size, retention: describeRetention(this.retention) });
    }
  }
}
