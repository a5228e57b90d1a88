/**
 * The JobGraph JSON model. These are the shapes `parseJobGraph` returns: normalized, with
 * defaults filled and no extra fields, so the same graph always serialises the same way.
 */

import type { TaskSpec } from '../taskmanager/protocol';

export interface JobGraph {
  /** 32 lowercase hex characters (Flink's JobID form); safe to use as a ZooKeeper node name. */
  jobId: string;
  name: string;
  vertices: JobVertex[];
  /** Absent: the cluster's `restart-strategy.*` configuration applies. */
  restartStrategy?: RestartStrategyConfig;
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

// What a subtask runs: declared with the TaskManager protocol (the deploy command carries it).
export type { TaskSpec, TaskType, CommandTask, SleepTask, FailTask } from '../taskmanager/protocol';

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
}
