/**
 * Read models of the leader's jobs for overviews: which job statuses count as running, finished,
 * cancelled or failed. A pure function of what the Dispatcher reports (`jobCounts()`), so the REST
 * layer only formats (per-job rows are src/rest/flink-views.ts).
 */
import type { JobStatus } from '../jobmaster/types';

/**
 * Statuses counted as running in the overview. INITIALIZING (a JobMaster still loading its progress)
 * and SUSPENDED fall in no bucket of `JobCountsByOutcome`; `/overview` has always counted them so.
 */
export const RUNNING_JOB_STATUSES: readonly JobStatus[] = ['RUNNING', 'CREATED', 'RESTARTING', 'RECONCILING', 'FAILING', 'CANCELLING'];

/** Job totals by outcome, for the cluster overview. */
export interface JobCountsByOutcome {
  running: number;
  finished: number;
  cancelled: number;
  failed: number;
}

/** Buckets `counts` (jobs per status, as from `Dispatcher.jobCounts()`) by outcome. */
export function jobCountsByOutcome(counts: Readonly<Record<string, number>>): JobCountsByOutcome {
  return {
    running: RUNNING_JOB_STATUSES.reduce((sum, status) => sum + (counts[status] ?? 0), 0),
    finished: counts.FINISHED ?? 0,
    cancelled: counts.CANCELED ?? 0,
    failed: counts.FAILED ?? 0,
  };
}
