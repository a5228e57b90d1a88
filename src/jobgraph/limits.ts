/** Bounds every job graph must respect; the REST layer and the docs quote them. */
export const MAX_VERTICES = 1000;
export const MAX_NAME_LENGTH = 200;
export const MAX_ARG_LENGTH = 4096;
export const MAX_ENV_VALUE_LENGTH = 32768;
export const MAX_FAIL_MESSAGE_LENGTH = 1000;
export const MAX_SLEEP_MS = 86_400_000;
/** Node's timers overflow above 2^31-1 ms and fire at once, so no delay or timeout may exceed it. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Flink users write Integer.MAX_VALUE to mean "retry forever"; accept it, nothing larger. */
export const MAX_ATTEMPTS = 2_147_483_647;
/** Environment variables the TaskManager sets itself; a graph must not shadow them. */
export const RESERVED_ENV_NAMES: readonly string[] = ['JOB_ID', 'VERTEX_ID', 'SUBTASK_INDEX', 'PARALLELISM', 'ATTEMPT'];

// ---- what a job's stored state may grow to (src/store/progress-store.ts) ---------------------------
//
// Progress is sharded: one node per vertex (`/jobs/<id>/vertices/<vertexId>`) holds that vertex's
// subtasks, one node (`/jobs/<id>/progress`) the job-level part. A vertex shard's worst case, per
// subtask, in its JSON arrays:
//   attempts      ≤ 16 digits (Number.MAX_SAFE_INTEGER) + ","       17 B
//   finished      "false" + ","                                         6 B
//   deployed      "false" + ","                                         6 B
//   taskManagers  '"' + id (≤ 128 chars of [A-Za-z0-9_.:-]) + '",'   131 B   (other ids are stored as null)
//   startTimes    epoch-ms (13 digits) or -1, + ","                    14 B
//   endTimes      epoch-ms (13 digits) or -1, + ","                    14 B
// = PROGRESS_SUBTASK_MAX_BYTES (188 B), plus PROGRESS_SHARD_OVERHEAD_BYTES for keys and the vertex id.
// With MAX_PROGRESS_SHARD_BYTES = 512 KiB a vertex may have up to 2,786 subtasks; the default
// `dispatcher.max-parallelism` (128) needs at most 24,416 B per shard.

/** Longest TaskManager id stored in progress (as `taskmanager.id` allows); longer or odd ids are stored as null. */
export const MAX_STORED_TASK_MANAGER_ID_LENGTH = 128;
/** Worst-case bytes one subtask adds to its vertex's progress shard (see the arithmetic above). */
export const PROGRESS_SUBTASK_MAX_BYTES = 188;
/** Worst-case bytes of a vertex shard besides its subtasks: keys, format version, a 64-char vertex id, the state MAC (~90 B). */
export const PROGRESS_SHARD_OVERHEAD_BYTES = 352;
/** Largest vertex progress shard validation admits: half a znode, far from jute.maxbuffer (1 MiB). */
export const MAX_PROGRESS_SHARD_BYTES = 524_288;
/** Largest job-level progress node (restart counters, failure history); the history is cut to fit. */
export const MAX_JOB_PROGRESS_BYTES = 262_144;
/** Failure timestamps of the failure-rate strategy kept in the job-level node (the newest ones). */
export const MAX_STORED_FAILURE_TIMES = 1000;

/** Worst-case bytes of the progress shard of a vertex with `parallelism` subtasks. */
export function progressShardBytesBound(parallelism: number): number {
  return PROGRESS_SHARD_OVERHEAD_BYTES + PROGRESS_SUBTASK_MAX_BYTES * parallelism;
}

/** Default of `dispatcher.max-vertices-per-job` and the most it may be set to. */
export const DEFAULT_MAX_VERTICES_PER_JOB = MAX_VERTICES;
/**
 * Default of `dispatcher.max-subtasks-per-job` (sum of parallelism). Every node stays bounded whatever
 * the total (per-vertex shards); the total bounds what one job costs everyone: ZooKeeper keeps all data
 * in memory, a recovering leader reads it all, and REST serves every subtask in job details.
 * 10,000 × 188 B + 1,000 × 352 B ≈ 2.2 MB of progress in at most 1,001 nodes per job, at most.
 */
export const DEFAULT_MAX_SUBTASKS_PER_JOB = 10_000;
/** Upper bound of `dispatcher.max-subtasks-per-job`. */
export const MAX_SUBTASKS_PER_JOB = 1_000_000;
