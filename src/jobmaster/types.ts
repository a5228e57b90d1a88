/** The contract between the Dispatcher and the JobMaster it runs for each job. */
import type { JobGraph } from '../jobgraph';
import type { LeadershipTerm } from '../election/service';

/** Flink's JobStatus names. */
export type JobStatus =
  | 'INITIALIZING' | 'CREATED' | 'RUNNING' | 'FAILING' | 'FAILED' | 'CANCELLING' | 'CANCELED'
  | 'FINISHED' | 'RESTARTING' | 'SUSPENDED' | 'RECONCILING';

/** Flink's ExecutionState names used here. */
export type TaskState = 'CREATED' | 'SCHEDULED' | 'DEPLOYING' | 'RUNNING' | 'FINISHED' | 'CANCELING' | 'CANCELED' | 'FAILED';

export const TERMINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set(['FINISHED', 'FAILED', 'CANCELED']);

export interface SubtaskDetail {
  subtask: number;
  status: TaskState;
  attempt: number;
  taskmanager: string | null;
  'start-time': number;
  'end-time': number;
  duration: number;
  /** REST path of the attempt's log, when a TaskManager ran it. */
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
  /** Ids of the vertices whose every subtask must finish first (the JobGraph's edges). */
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
}

export interface ExceptionEntry {
  timestamp: number;
  exceptionName: string;
  stacktrace: string;
  taskName?: string;
  location?: string;
}

export interface TerminalOutcome {
  status: 'FINISHED' | 'FAILED' | 'CANCELED';
  details: JobDetails;
  failure?: { message: string; timestamp: number };
  /** The job's failure history, kept with its details once it completed. */
  exceptions?: ExceptionEntry[];
}

/** One job under the leader's control. Never touches the JobGraph or JobResult stores itself. */
export interface JobMaster {
  readonly jobId: string;
  readonly status: JobStatus;
  /** Begins (or, after a failover, reconciles and resumes) execution. */
  start(): void;
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
