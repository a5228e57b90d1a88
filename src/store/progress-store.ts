/**
 * Job progress in ZooKeeper, so a new leader never re-runs finished work. Written only by the current
 * leader's JobMaster (guard() before every write). Format version 2 is sharded, so no node grows with
 * the job (a single node of 1,000 vertices × 128 subtasks was 2.5 MB, which ZooKeeper refuses):
 *
 *   /jobs/<jobId>/progress            job-level part, JSON JobLevelProgress, ≤ MAX_JOB_PROGRESS_BYTES:
 *     formatVersion: 2, jobId, epoch, updatedAt (epoch ms)
 *     restarts, restart              the restart strategy's counters (a failover grants no fresh budget;
 *                                    at most MAX_STORED_FAILURE_TIMES failure timestamps)
 *     exceptions                     the newest failure history entries that fit the node
 *   /jobs/<jobId>/vertices/<vertexId> one shard per vertex, JSON VertexShard, ≤ progressShardBytesBound(parallelism):
 *     attempts[i]    current attempt number of subtask i (written before it is deployed)
 *     finished[i]    subtask i finished (written before the TaskManager's report is acknowledged)
 *     deployed[i]    the current attempt was handed to a TaskManager and may still run: a recovering
 *                    leader waits (RECONCILING) for it to be reported
 *     taskManagers[i] where that attempt ran (display only)
 *   A vertex without a shard has not started (every subtask at attempt 0, nothing in flight).
 *
 * Format version 1 (before sharding) kept everything, `vertices` included, in `/jobs/<jobId>/progress`;
 * load() still reads it (shards, once written, win over its `vertices`), and the next save() replaces
 * it with version 2. Every write goes through writeBounded (src/store/bounded-write.ts).
 *
 * `/jobs/<jobId>` is removed by the Dispatcher's cleanup once the job's result is recorded.
 */
import { ZooKeeperClient } from '../zk/client';
import { NoNodeError, NotEmptyError } from '../zk/errors';
import { jobPath, progressPath, vertexProgressPath, vertexProgressShardsPath } from '../zk/layout';
import { emptyRestartState, ExceptionEntry, RestartState } from '../jobgraph/job-state';
import { MAX_JOB_PROGRESS_BYTES, MAX_PROGRESS_SHARD_BYTES, MAX_STORED_FAILURE_TIMES } from '../jobgraph/limits';
import { mapLimit } from '../util/concurrency';
import { serializedSize, writeBounded } from './bounded-write';
import { sealOf } from '../zk/sealed';

/** The format save() writes: 2 = sharded (see above). */
export const PROGRESS_FORMAT_VERSION = 2;
/** The single-node format of earlier versions, still read on recovery. */
export const LEGACY_PROGRESS_FORMAT_VERSION = 1;

/** Shard reads and writes in flight at once (one round trip costs ~1.5 ms on loopback). */
const SHARD_CONCURRENCY = 64;
/** A vertex id as parseJobGraph admits it: the only shard names the product writes. */
const VERTEX_ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface VertexProgress {
  attempts: number[];
  finished: boolean[];
  deployed: boolean[];
  /** Where each subtask's current attempt ran or runs (for REST after a failover). */
  taskManagers?: Array<string | null>;
  /** When each subtask's current attempt started and ended, epoch-ms, -1 unknown (for REST after a failover). */
  startTimes?: number[];
  endTimes?: number[];
}

/** A job's progress as the JobMaster sees it, whatever layout it was stored in. */
export interface JobProgress {
  /** The format it was read from or is written as. */
  formatVersion: number;
  jobId: string;
  /** Epoch of the leader that wrote this version (diagnostics). */
  epoch: number;
  updatedAt: number;
  vertices: Record<string, VertexProgress>;
  restarts: number;
  restart: RestartState;
  exceptions: ExceptionEntry[];
}

/** `/jobs/<jobId>/progress` in format 2. */
export type JobLevelProgress = Omit<JobProgress, 'vertices'>;

/** `/jobs/<jobId>/vertices/<vertexId>` in format 2. */
export interface VertexShard extends VertexProgress {
  formatVersion: number;
  vertexId: string;
}

/** Where a JobMaster keeps its progress (ZooKeeper in production, memory in unit tests). */
export interface ProgressStore {
  load(): Promise<JobProgress | null>;
  /**
   * @throws ZnodeTooLargeError when a node would exceed its bound (deterministic: the job's state
   * cannot be stored); ZkError / NotLeaderError otherwise.
   */
  save(progress: JobProgress): Promise<void>;
}

export class ZkProgressStore implements ProgressStore {
  /** Serialized content last written (or read) per vertex shard: only changed shards are written. */
  private readonly writtenShards = new Map<string, string>();
  /** Job-level content last written, without `updatedAt`/`epoch` (they change on every save). */
  private writtenJobLevel: string | null = null;

  constructor(private readonly client: ZooKeeperClient, private readonly guard: () => void, private readonly jobId: string) {}

  /**
   * Reads `/jobs/<jobId>/progress` and every shard under `/jobs/<jobId>/vertices` (format 1 or 2).
   * Odd content never throws (see sanitizeProgress). Null when the job has no progress yet.
   * @throws ZkError on connection problems (the caller retries).
   */
  async load(): Promise<JobProgress | null> {
    const [jobLevel, shardNames] = await Promise.all([
      this.readJson(progressPath(this.jobId), progressContext(this.jobId)),
      this.client.getChildren(vertexProgressShardsPath(this.jobId)).catch((err) => {
        if (err instanceof NoNodeError) return [] as string[];
        throw err;
      }),
    ]);
    // A child that cannot be a vertex id was not written by the product: ignored.
    const shards = await mapLimit(shardNames.filter((name) => VERTEX_ID.test(name)), SHARD_CONCURRENCY,
      (name) => this.readJson(vertexProgressPath(this.jobId, name), shardContext(this.jobId, name)));
    const progress = sanitizeProgress(jobLevel);
    if (!progress && shards.every((s) => s === undefined)) return null;
    const result = progress ?? { ...emptyProgress(this.jobId) };
    for (const raw of shards) {
      const shard = sanitizeShard(raw);
      if (!shard) continue;
      result.vertices[shard.vertexId] = shard.progress;
      this.writtenShards.set(shard.vertexId, serializeShard(shard.vertexId, shard.progress));
    }
    return result;
  }

  /**
   * Writes the shards whose content changed (and pristine vertices not at all), then the job-level node
   * when its content changed — shards first, so the job-level node never claims more than is stored.
   * @throws ZnodeTooLargeError, ZkError, NotLeaderError (from guard).
   */
  async save(progress: JobProgress): Promise<void> {
    const changed: Array<[string, string]> = [];
    for (const [vertexId, v] of Object.entries(progress.vertices)) {
      const data = serializeShard(vertexId, v);
      const previous = this.writtenShards.get(vertexId);
      if (previous === data || (previous === undefined && isPristine(v))) continue;
      changed.push([vertexId, data]);
    }
    await mapLimit(changed, SHARD_CONCURRENCY, async ([vertexId, data]) => {
      const sealed = sealOf(this.client).seal(shardContext(this.jobId, vertexId), JSON.parse(data) as object);
      await writeBounded(this.client, vertexProgressPath(this.jobId, vertexId), sealed, { op: 'upsert', guard: this.guard }, MAX_PROGRESS_SHARD_BYTES);
      this.writtenShards.set(vertexId, data);
    });
    const jobLevel = fitJobLevel({
      formatVersion: PROGRESS_FORMAT_VERSION, jobId: progress.jobId, epoch: progress.epoch, updatedAt: progress.updatedAt,
      restarts: progress.restarts, restart: progress.restart, exceptions: progress.exceptions,
    });
    const comparable = JSON.stringify({ ...jobLevel, epoch: 0, updatedAt: 0 });
    if (comparable === this.writtenJobLevel) return;
    await writeBounded(this.client, progressPath(this.jobId), sealOf(this.client).seal(progressContext(this.jobId), jobLevel), { op: 'upsert', guard: this.guard }, MAX_JOB_PROGRESS_BYTES);
    this.writtenJobLevel = comparable;
  }

  /** A node's verified JSON; undefined when absent, unreadable or (with a state key) not sealed by this cluster. */
  private async readJson(path: string, context: string): Promise<unknown> {
    try {
      const { data } = await this.client.get(path);
      // Unverifiable progress is no progress: those subtasks run again rather than trust it.
      const opened = sealOf(this.client).open(context, path, data);
      return opened.ok ? opened.value : undefined;
    } catch (err) {
      if (err instanceof NoNodeError) return undefined;
      throw err;
    }
  }
}

/** What a progress record's MAC binds it to: its job id (job level) or job and vertex id (shard). */
function progressContext(jobId: string): string {
  return `progress:${jobId}`;
}

function shardContext(jobId: string, vertexId: string): string {
  return `progress:${jobId}:${vertexId}`;
}

/**
 * Removes `/jobs/<jobId>` with its progress node and every vertex shard; called after the job's result
 * is recorded. Absent nodes are fine.
 * @throws ZkError, NotLeaderError (from guard).
 */
export async function removeJobProgress(client: ZooKeeperClient, guard: () => void, jobId: string): Promise<void> {
  const shardsPath = vertexProgressShardsPath(jobId);
  const shards = await client.getChildren(shardsPath).catch((err) => {
    if (err instanceof NoNodeError) return [] as string[];
    throw err;
  });
  const remove = async (path: string): Promise<void> => {
    guard();
    try {
      await client.delete(path);
    } catch (err) {
      if (!(err instanceof NoNodeError) && !(err instanceof NotEmptyError)) throw err;
    }
  };
  await mapLimit(shards, SHARD_CONCURRENCY, (name) => remove(`${shardsPath}/${name}`));
  for (const path of [shardsPath, progressPath(jobId), jobPath(jobId)]) await remove(path);
}

/** The shard's stored JSON (format 2). */
export function serializeShard(vertexId: string, v: VertexProgress): string {
  const shard: VertexShard = {
    formatVersion: PROGRESS_FORMAT_VERSION, vertexId,
    attempts: v.attempts, finished: v.finished, deployed: v.deployed, taskManagers: v.taskManagers ?? [],
    ...(v.startTimes ? { startTimes: v.startTimes } : {}), ...(v.endTimes ? { endTimes: v.endTimes } : {}),
  };
  return JSON.stringify(shard);
}

/**
 * The job-level record cut to its bound: the newest failure timestamps (MAX_STORED_FAILURE_TIMES) and
 * the newest failure history entries that fit MAX_JOB_PROGRESS_BYTES (the history is display only; the
 * restart counters are what recovery needs).
 */
export function fitJobLevel(record: JobLevelProgress): JobLevelProgress {
  const restart = { ...record.restart, failureTimes: (record.restart.failureTimes ?? []).slice(-MAX_STORED_FAILURE_TIMES) };
  const base = serializedSize(JSON.stringify({ ...record, restart, exceptions: [] }));
  let budget = MAX_JOB_PROGRESS_BYTES - base;
  const kept: ExceptionEntry[] = [];
  // Newest first; sizes counted one by one, so a huge entry never needs the whole list serialized twice.
  for (let i = record.exceptions.length - 1; i >= 0; i--) {
    const size = serializedSize(JSON.stringify(record.exceptions[i])) + 1;
    if (size > budget) break;
    budget -= size;
    kept.push(record.exceptions[i]);
  }
  return { ...record, restart, exceptions: kept.reverse() };
}

/**
 * The job-level node (format 2) or a whole format-1 node, sanitized: a progress node is only ever written
 * by a leader, but anything can end up in ZooKeeper (an operator, a foreign tool, a half-migrated format).
 * Every leader recovers the job from it, so an odd shape must never throw: keep what is well-formed,
 * drop the rest (those subtasks simply run again); null when nothing is usable.
 */
export function sanitizeProgress(raw: unknown): JobProgress | null {
  const p = raw as Partial<JobProgress> | null;
  if (!isRecord(p)) return null;
  const version = p.formatVersion;
  if (version === LEGACY_PROGRESS_FORMAT_VERSION) {
    if (!isRecord(p.vertices)) return null;
  } else if (version !== PROGRESS_FORMAT_VERSION) return null;
  const vertices: Record<string, VertexProgress> = {};
  if (version === LEGACY_PROGRESS_FORMAT_VERSION) {
    for (const [id, v] of Object.entries(p.vertices as Record<string, unknown>)) {
      const vp = sanitizeVertex(v);
      if (vp) vertices[id] = vp;
    }
  }
  const restart = isRecord(p.restart) && Array.isArray(p.restart.failureTimes) ? p.restart as unknown as RestartState : emptyRestartState();
  return {
    formatVersion: version,
    jobId: typeof p.jobId === 'string' ? p.jobId : '',
    epoch: Number(p.epoch) || 0,
    updatedAt: Number(p.updatedAt) || 0,
    vertices,
    restarts: Number.isInteger(p.restarts) ? p.restarts as number : 0,
    restart,
    exceptions: Array.isArray(p.exceptions) ? p.exceptions.filter(isRecord) as unknown as ExceptionEntry[] : [],
  };
}

/** A format-2 vertex shard, sanitized like sanitizeProgress; null when unusable. */
export function sanitizeShard(raw: unknown): { vertexId: string; progress: VertexProgress } | null {
  if (!isRecord(raw) || raw.formatVersion !== PROGRESS_FORMAT_VERSION || typeof raw.vertexId !== 'string') return null;
  const progress = sanitizeVertex(raw);
  return progress ? { vertexId: raw.vertexId, progress } : null;
}

const isEpochMs = (x: unknown): x is number => Number.isInteger(x) && ((x as number) >= 0 || x === -1) && (x as number) < 1e13;

function sanitizeVertex(v: unknown): VertexProgress | null {
  if (!isRecord(v)) return null;
  const list = <T>(value: unknown, ok: (x: unknown) => x is T): T[] => (Array.isArray(value) ? value.map((x) => (ok(x) ? x : undefined)) as T[] : []);
  return {
    attempts: list(v.attempts, (x): x is number => Number.isInteger(x) && (x as number) >= 0),
    finished: list(v.finished, (x): x is boolean => typeof x === 'boolean'),
    deployed: list(v.deployed, (x): x is boolean => typeof x === 'boolean'),
    taskManagers: list(v.taskManagers, (x): x is string => typeof x === 'string'),
    // Absent in format 1 and in shards of earlier format-2 writers: unknown times.
    ...(Array.isArray(v.startTimes) ? { startTimes: list(v.startTimes, isEpochMs) } : {}),
    ...(Array.isArray(v.endTimes) ? { endTimes: list(v.endTimes, isEpochMs) } : {}),
  };
}

/** No subtask has moved: attempt 0, nothing finished or in flight (the state a missing shard means). */
function isPristine(v: VertexProgress): boolean {
  return v.attempts.every((a) => !a) && !v.finished.some(Boolean) && !v.deployed.some(Boolean);
}

function emptyProgress(jobId: string): JobProgress {
  return { formatVersion: PROGRESS_FORMAT_VERSION, jobId, epoch: 0, updatedAt: 0, vertices: {}, restarts: 0, restart: emptyRestartState(), exceptions: [] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
