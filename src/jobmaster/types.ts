/** The contract between the Dispatcher and the JobMaster it runs for each job. */
import type { JobGraph } from '../jobgraph';
import type { LeadershipTerm } from '../election/service';

import type { JobStatus, TaskState, TerminalJobStatus } from '../jobgraph/status';

// Declared once in src/jobgraph/status.ts; re-exported for the JobMaster contract's users.
export type { JobStatus, TaskState, TerminalJobStatus } from '../jobgraph/status';
export { TERMINAL_JOB_STATUSES, isTerminalJobStatus } from '../jobgraph/status';

export interface SubtaskDetail {
  subtask: number;
  status: TaskState;
  attempt: number;
  taskmanager: string | null;
  'start-time': number;
  'end-time': number;
  duration: number;
  /** REST path of the attempt's log: added by the REST layer (src/rest/job-urls.ts), absent here. */
  log?: string;
}

export interface VertexDetail {
  id: string;
  name: string;
  parallelism: number;
  status: TaskState;
  'start-time': number;
  'end-time': number;
  duration: number;
  tasks: Partial<Record<TaskState, number>>;
  subtasks: SubtaskDetail[];
  /** Ids of the vertices this one reads from (the JobGraph's edges), for the dashboard's plan. */
  inputs?: string[];
}

export interface JobDetails {
  jid: string;
  name: string;
  state: JobStatus;
  'start-time': number;
  'end-time': number;
  duration: number;
  now: number;
  timestamps: Partial<Record<JobStatus, number>>;
  vertices: VertexDetail[];
  /** Restarts of the whole job so far (global failover count). */
  restarts: number;
  /** Current execution attempt number of the job. */
  attempt: number;
  /** The principal that submitted the job (set by the Dispatcher, not the JobMaster); absent when none was recorded. */
  submittedBy?: string;
  /** The job's scheduling priority (higher first); absent from jobs that ran before priorities existed. */
  priority?: number;
  /** The name of the `scheduler.priority-classes` class with exactly that priority, if any. */
  priorityClass?: string;
}

export type { ExceptionEntry } from '../jobgraph/job-state';
import type { ExceptionEntry } from '../jobgraph/job-state';

export interface TerminalOutcome {
  status: TerminalJobStatus;
  details: JobDetails;
  failure?: { message: string; timestamp: number };
  /** The job's failure history, kept with its details once it completed. */
  exceptions?: ExceptionEntry[];
}

/** One job under the leader's control. Never touches the JobGraph or JobResult stores itself. */
export interface JobMaster {
  readonly jobId: string;
  readonly status: JobStatus;
  /**
   * Begins (or, after a failover, reconciles and resumes) execution. Resolves once the JobMaster runs:
   * a recovered job's progress is loaded and its reconciliation has begun. Rejects only on a
   * deterministic failure of that (the Dispatcher then fails the job). Idempotent.
   */
  start(): Promise<void>;
  /** Cancels the job; the outcome arrives through `onTerminal`. */
  cancel(): void;
  /** Leadership lost: stop acting locally, leave every task and stored record alone. */
  suspend(): Promise<void>;
  details(): JobDetails;
  exceptions(): ExceptionEntry[];
}

export interface JobMasterContext {
  graph: JobGraph;
  /** The leader term the JobMaster acts in: its epoch fences every TaskManager command. */
  term: LeadershipTerm;
  /** Throws NotLeaderError once the term is over: call before every ZooKeeper write. */
  guard: () => void;
  submittedAt: number;
  /** True when a new leader recovered the job from the store. */
  recovered: boolean;
  /** Called exactly once when the job reaches a terminal state. */
  onTerminal(outcome: TerminalOutcome): void;
}

export type JobMasterFactory = (context: JobMasterContext) => JobMaster;
