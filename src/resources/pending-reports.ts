/**
 * TaskManager reports kept for recovering jobs. A new leader publishes itself before every recovered
 * job's JobMaster has started (docs/ARCHITECTURE.md, "Recovery"), so a TaskManager may register and
 * report a task of a job whose JobMaster is not registered yet. Answering "cancel" would kill work the
 * JobMaster is about to adopt; instead the report is kept here until the JobMaster registers (or the
 * job is given up). Bounded per job and in total: the oldest report is dropped first, and a dropped
 * report only costs a re-run after `jobmanager.reconcile-timeout` (terminal outcomes are sent again by
 * the TaskManager until acknowledged anyway).
 */
import { executionKey, TaskReport } from '../taskmanager/protocol';

export interface KeptReport { taskManagerId: string; report: TaskReport }

export interface PendingReportsLimits {
  /** Reports kept for one job. */
  perJob: number;
  /** Reports kept for all jobs together. */
  total: number;
}

export const DEFAULT_PENDING_REPORTS_LIMITS: PendingReportsLimits = { perJob: 1024, total: 16_384 };

export class PendingReports {
  /** Expected job id → its kept reports; a job is expected while it has an entry. */
  private readonly byJob = new Map<string, Set<string>>();
  /** Every kept report, oldest first, by `<taskManagerId>|<executionKey>` (a newer report of the same execution replaces it). */
  private readonly all = new Map<string, { jobId: string } & KeptReport>();

  constructor(
    private readonly limits: PendingReportsLimits = DEFAULT_PENDING_REPORTS_LIMITS,
    /** A report was dropped to stay within the limits. */
    private readonly onDrop: (dropped: KeptReport, reason: 'job limit' | 'total limit') => void = () => undefined,
  ) {}

  /** Marks `jobId` as recovering; the returned function gives it up (and drops what was kept for it). */
  expect(jobId: string): () => void {
    const keys = this.byJob.get(jobId) ?? new Set<string>();
    this.byJob.set(jobId, keys);
    return () => {
      if (this.byJob.get(jobId) === keys) this.take(jobId);
    };
  }

  isExpected(jobId: string): boolean {
    return this.byJob.has(jobId);
  }

  /** Keeps a report of an expected job (ignored for any other job). */
  keep(taskManagerId: string, report: TaskReport): void {
    const keys = this.byJob.get(report.jobId);
    if (!keys) return;
    const key = `${taskManagerId}|${executionKey(report)}`;
    this.all.delete(key); // re-inserted below as the newest, here and in the job's set
    keys.delete(key);
    keys.add(key);
    this.all.set(key, { jobId: report.jobId, taskManagerId, report });
    if (keys.size > this.limits.perJob) this.drop(keys.values().next().value as string, 'job limit');
    if (this.all.size > this.limits.total) this.drop(this.all.keys().next().value as string, 'total limit');
  }

  /** Ends the expectation of `jobId` and hands over its kept reports, oldest first. */
  take(jobId: string): KeptReport[] {
    const keys = this.byJob.get(jobId);
    this.byJob.delete(jobId);
    if (!keys) return [];
    const kept: KeptReport[] = [];
    for (const key of keys) {
      const entry = this.all.get(key);
      this.all.delete(key);
      if (entry) kept.push({ taskManagerId: entry.taskManagerId, report: entry.report });
    }
    return kept;
  }

  /** Reports kept right now (all jobs). */
  get size(): number {
    return this.all.size;
  }

  clear(): void {
    this.byJob.clear();
    this.all.clear();
  }

  private drop(key: string, reason: 'job limit' | 'total limit'): void {
    const entry = this.all.get(key);
    if (!entry) return;
    this.all.delete(key);
    this.byJob.get(entry.jobId)?.delete(key);
    this.onDrop({ taskManagerId: entry.taskManagerId, report: entry.report }, reason);
  }
}
