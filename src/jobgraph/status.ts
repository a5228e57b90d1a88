/**
 * Job and task (execution) status names, their terminal sets, and the legal transitions between them.
 * The one place these are declared: the JobMaster, the Dispatcher, the stores and the chaos
 * checker all import from here (this package sits below all of them and imports nothing above it).
 */

/** Flink's JobStatus names, plus RECONCILING (a recovered job waiting for TaskManagers to report). */
export type JobStatus =
  | 'INITIALIZING' | 'CREATED' | 'RUNNING' | 'FAILING' | 'FAILED' | 'CANCELLING' | 'CANCELED'
  | 'FINISHED' | 'RESTARTING' | 'SUSPENDED' | 'RECONCILING';

/** A job status nothing follows: the job's result is (or is about to be) recorded. */
export type TerminalJobStatus = 'FINISHED' | 'FAILED' | 'CANCELED';

/** Flink's ExecutionState names used here: the state of one attempt of one subtask. */
export type TaskState = 'CREATED' | 'SCHEDULED' | 'DEPLOYING' | 'RUNNING' | 'FINISHED' | 'CANCELING' | 'CANCELED' | 'FAILED';

export type TerminalTaskState = 'FINISHED' | 'CANCELED' | 'FAILED';

export const TERMINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['FINISHED', 'FAILED', 'CANCELED']);

/** Statuses in which a JobMaster schedules, adopts and restarts tasks (not ending, not ended). */
export const ACTIVE_JOB_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>(['CREATED', 'RUNNING', 'RESTARTING', 'RECONCILING']);

export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set<TaskState>(['FINISHED', 'CANCELED', 'FAILED']);

/** Accepts any string (REST bodies, history records): true only for FINISHED, FAILED, CANCELED. */
export function isTerminalJobStatus(status: string | undefined | null): status is TerminalJobStatus {
  return typeof status === 'string' && (TERMINAL_JOB_STATUSES as ReadonlySet<string>).has(status);
}

export function isActiveJobStatus(status: JobStatus): boolean {
  return ACTIVE_JOB_STATUSES.has(status);
}

export function isTerminalTaskState(state: string | undefined | null): state is TerminalTaskState {
  return typeof state === 'string' && (TERMINAL_TASK_STATES as ReadonlySet<string>).has(state);
}

/**
 * Legal job status transitions (from → allowed next statuses). SUSPENDED (leadership lost) may follow
 * any non-terminal status; nothing follows a terminal status or SUSPENDED (the next leader's JobMaster
 * starts again from INITIALIZING).
 */
export const JOB_TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  INITIALIZING: ['CREATED', 'RECONCILING', 'CANCELLING', 'SUSPENDED'],
  CREATED: ['RUNNING', 'CANCELLING', 'FAILING', 'SUSPENDED'],
  RECONCILING: ['RUNNING', 'RESTARTING', 'CANCELLING', 'FAILING', 'SUSPENDED'],
  RUNNING: ['RESTARTING', 'FINISHED', 'CANCELLING', 'FAILING', 'SUSPENDED'],
  RESTARTING: ['RUNNING', 'FINISHED', 'CANCELLING', 'FAILING', 'SUSPENDED'],
  CANCELLING: ['CANCELED', 'SUSPENDED'],
  FAILING: ['FAILED', 'SUSPENDED'],
  FINISHED: [],
  FAILED: [],
  CANCELED: [],
  SUSPENDED: [],
};

/**
 * Legal task (execution) state transitions. CREATED again after SCHEDULED, DEPLOYING or FAILED is a new
 * attempt of the subtask (a refused deploy, a restart, nobody reported it after a failover). A
 * CANCELED by preemption or a drain deadline is followed by CREATED (a new attempt, not a failure). A
 * TaskManager's report may skip states (DEPLOYING → FINISHED) and, for an ending job, overrides FAILED
 * or CANCELED with what the task really did. FINISHED is final: the outcome is durable.
 * (A recovered subtask starts in DEPLOYING or FINISHED: that is a restore, not a transition.)
 */
export const TASK_TRANSITIONS: Readonly<Record<TaskState, readonly TaskState[]>> = {
  CREATED: ['SCHEDULED', 'DEPLOYING', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELED'],
  SCHEDULED: ['CREATED', 'DEPLOYING', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELING', 'CANCELED'],
  DEPLOYING: ['CREATED', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELING', 'CANCELED'],
  RUNNING: ['DEPLOYING', 'FINISHED', 'FAILED', 'CANCELING', 'CANCELED'],
  CANCELING: ['FINISHED', 'CANCELED'],
  FAILED: ['CREATED', 'FINISHED', 'CANCELED'],
  // CREATED: a new attempt after the slot was taken away (preempted, drained past its deadline).
  CANCELED: ['FINISHED', 'CREATED'],
  FINISHED: [],
};

export function isLegalJobTransition(from: JobStatus, to: JobStatus): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

export function isLegalTaskTransition(from: TaskState, to: TaskState): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}
