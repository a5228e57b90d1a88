/**
 * Read models of the leader's jobs for overviews: which job statuses count as running, finished,
 * cancelled or failed, and a per-job summary with task counts by execution state. Pure functions of
 * what the Dispatcher reports (`jobsOverview()`, `jobCounts()`), so the REST layer only formats.
 */
import type { JobDetails, JobStatus } from '../jobmaster/types';

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

/** One row of the jobs overview. Times are epoch-ms (`end-time` is -1 while running); `duration` is ms. */
export interface JobOverview {
  jid: string;
  name: string;
  state: JobStatus;
  'start-time': number;
  'end-time': number;
  duration: number;
  /** Latest status transition, epoch-ms (0 when none is known). */
  'last-modification': number;
  /** Subtasks by execution state, lower-case state name → count (e.g. `{"running": 2, "finished": 1}`). */
  tasks: Record<string, number>;
}

/** Summarises one job's details (as from `Dispatcher.jobsOverview()`) for the jobs overview. */
export function jobOverview(details: JobDetails): JobOverview {
  return {
    jid: details.jid, name: details.name, state: details.state,
    'start-time': details['start-time'], 'end-time': details['end-time'], duration: details.duration,
    'last-modification': Math.max(0, ...Object.values(details.timestamps).map(Number)),
    tasks: countByState(details.vertices.flatMap((v) => v.subtasks.map((s) => s.status))),
  };
}

function countByState(states: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of states) counts[s.toLowerCase()] = (counts[s.toLowerCase()] ?? 0) + 1;
  return counts;
}
