/**
 * The JobGraph JSON model (docs/ARCHITECTURE.md, "JobGraph"). These are the shapes `parseJobGraph` returns: normalized, with
 * defaults filled and no extra fields, so the same graph always serialises the same way.
 */

import type { EnvValue } from './task-env';

export interface JobGraph {
  /** 32 lowercase hex characters (Flink's JobID form); safe to use as a ZooKeeper node name. */
  jobId: string;
  name: string;
  vertices: JobVertex[];
  /** Absent: the cluster's `restart-strategy.*` configuration applies. */
  restartStrategy?: RestartStrategyConfig;
  /**
   * Higher is served first (src/jobgraph/priority.ts). Submitted as an integer or a class name of
   * `scheduler.priority-classes`, stored as the integer; absent: the default class's priority.
   */
  priority?: number;
}

export interface JobVertex {
  id: string;
  /** Filled with `id` by parseJobGraph when absent. */
  name?: string;
  parallelism: number;
  /** Vertices whose every subtask must finish before this vertex starts; filled with [] when absent. */
  inputs?: string[];
  task: TaskSpec;
}

export type TaskSpec = CommandTask | SleepTask | FailTask;
export type TaskType = TaskSpec['type'];

/**
 * Runs argv with the vertex's env plus JOB_ID, VERTEX_ID, SUBTASK_INDEX, PARALLELISM and ATTEMPT, in a clean
 * environment (no TaskManager variables; see task-env.ts for the names a job may not set).
 */
export interface CommandTask {
  type: 'command';
  argv: string[];
  /** Filled with {} when absent. Secrets as `{fromFile}` / `{fromEnv}`, resolved on the TaskManager at launch. */
  env?: Record<string, EnvValue>;
  timeoutMs?: number;
}

export interface SleepTask {
  type: 'sleep';
  ms: number;
}

/**
 * A deterministic drill task: after `afterMs` it fails while the attempt number (0-based, as Flink's)
 * is below `failAttempts`, then succeeds. Without `failAttempts` it always fails.
 */
export interface FailTask {
  type: 'fail';
  /** Filled with 0 when absent. */
  afterMs?: number;
  message?: string;
  failAttempts?: number;
}

/** Flink's restart strategies, with the same names. */
export type RestartStrategyConfig =
  | { type: 'none' }
  | { type: 'fixed-delay'; attempts: number; delayMs: number }
  | { type: 'exponential-delay'; initialBackoffMs: number; maxBackoffMs: number; backoffMultiplier: number; attempts?: number }
  | { type: 'failure-rate'; maxFailuresPerInterval: number; failureRateIntervalMs: number; delayMs: number };

export type RestartStrategyType = RestartStrategyConfig['type'];

/** What one job may ask for (src/jobgraph/limits.ts explains the progress-size arithmetic). */
export interface JobGraphLimits {
  /** `dispatcher.max-parallelism`: subtasks of one vertex. */
  maxParallelism: number;
  /** `dispatcher.max-vertices-per-job`; default and ceiling MAX_VERTICES. */
  maxVertices?: number;
  /** `dispatcher.max-subtasks-per-job`: sum of every vertex's parallelism; default DEFAULT_MAX_SUBTASKS_PER_JOB. */
  maxSubtasks?: number;
  /** `scheduler.priority-classes`: the names a submitted `priority` may use; default DEFAULT_PRIORITY_CLASSES. */
  priorityClasses?: Readonly<Record<string, number>>;
}
