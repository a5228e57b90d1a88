/**
 * Shapes of a job's runtime state that are both kept by the JobMaster and persisted by the progress
 * store (so they sit below both): the restart strategy's counters and the failure history entries.
 */

/** A restart strategy's counters, persisted with a job's progress so a new leader continues them. */
export interface RestartState {
  /** Restarts granted so far (since the last backoff reset for exponential-delay). */
  restarts: number;
  /** Failure times inside the failure-rate window, epoch-ms. */
  failureTimes: number[];
  /** Epoch-ms of the last failure. */
  lastFailureAt: number | null;
  /** exponential-delay: the delay granted last, ms. */
  lastBackoffMs: number | null;
}

export function emptyRestartState(): RestartState {
  return { restarts: 0, failureTimes: [], lastFailureAt: null, lastBackoffMs: null };
}

/** One entry of a job's failure history (Flink's exception history); `timestamp` is epoch-ms. */
export interface ExceptionEntry {
  timestamp: number;
  exceptionName: string;
  stacktrace: string;
  taskName?: string;
  location?: string;
}
