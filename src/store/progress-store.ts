/**
 * Job progress in ZooKeeper, so a new leader never re-runs finished work:
 *
 *   /jobs/<jobId>/progress   persistent, JSON (JobProgress below), written only by the current
 *                            leader's JobMaster (guard() before every write):
 *     vertices.<id>.attempts[i]  current attempt number of subtask i (written before it is deployed)
 *     vertices.<id>.finished[i]  subtask i finished (written before the TaskManager's report is acknowledged)
 *     vertices.<id>.deployed[i]  the current attempt was handed to a TaskManager and may still run:
 *                                a recovering leader waits (RECONCILING) for it to be reported
 *     vertices.<id>.taskManagers[i]  where that attempt ran (display only)
 *     restart                    the restart strategy's counters (a failover grants no fresh budget)
 *     exceptions                 the latest failure history entries
 *
 * `/jobs/<jobId>` is removed by the Dispatcher's cleanup once the job's result is recorded.
 */
import { ZkClient } from '../zk/client';
import { NodeExistsError, NoNodeError, NotEmptyError } from '../zk/errors';
import { jobPath, progressPath } from '../zk/layout';
import type { ExceptionEntry } from '../jobmaster/types';
import { emptyRestartState, RestartState } from '../jobmaster/restart-strategy';
import { sealOf } from '../zk/sealed';

export const PROGRESS_FORMAT_VERSION = 1;

export interface VertexProgress {
  attempts: number[];
  finished: boolean[];
  deployed: boolean[];
  /** Where each subtask's current attempt ran or runs (for REST after a failover). */
  taskManagers?: Array<string | null>;
}

export interface JobProgress {
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

/** Where a JobMaster keeps its progress (ZooKeeper in production, memory in unit tests). */
export interface ProgressStore {
  load(): Promise<JobProgress | null>;
  save(progress: JobProgress): Promise<void>;
}

export class ZkProgressStore implements ProgressStore {
  constructor(private readonly client: ZkClient, private readonly guard: () => void, private readonly jobId: string) {}

  async load(): Promise<JobProgress | null> {
    try {
      const path = progressPath(this.jobId);
      const { data } = await this.client.get(path);
      // Unverifiable progress is no progress: the job's subtasks run again rather than trust it.
      const opened = sealOf(this.client).open(progressContext(this.jobId), path, data);
      return opened.ok ? sanitizeProgress(opened.value) : null;
    } catch (err) {
      if (err instanceof NoNodeError) return null;
      throw err;
    }
  }

  async save(progress: JobProgress): Promise<void> {
    const path = progressPath(this.jobId);
    const data = sealOf(this.client).seal(progressContext(this.jobId), progress);
    this.guard();
    try {
      await this.client.set(path, data);
    } catch (err) {
      if (!(err instanceof NoNodeError)) throw err;
      await this.client.mkdirp(jobPath(this.jobId));
      this.guard();
      try {
        await this.client.create(path, data, 'persistent');
      } catch (e) {
        if (!(e instanceof NodeExistsError)) throw e;
        await this.client.set(path, data);
      }
    }
  }
}

/** What a progress record's MAC binds it to: its job id. */
function progressContext(jobId: string): string {
  return `progress:${jobId}`;
}

/** Removes `/jobs/<jobId>` and its progress; called after the job's result is recorded. */
export async function removeJobProgress(client: ZkClient, guard: () => void, jobId: string): Promise<void> {
  for (const path of [progressPath(jobId), jobPath(jobId)]) {
    guard();
    try {
      await client.delete(path);
    } catch (err) {
      if (!(err instanceof NoNodeError) && !(err instanceof NotEmptyError)) throw err;
    }
  }
}

/**
 * A progress node is only ever written by a leader, but anything can end up in ZooKeeper (an operator,
 * a foreign tool, a half-migrated format). Every leader recovers the job from it, so an odd shape must
 * never throw: keep what is well-formed, drop the rest (those subtasks simply run again); null when
 * nothing is usable.
 */
export function sanitizeProgress(raw: unknown): JobProgress | null {
  const p = raw as Partial<JobProgress> | null;
  if (!isRecord(p) || p.formatVersion !== PROGRESS_FORMAT_VERSION || !isRecord(p.vertices)) return null;
  const vertices: Record<string, VertexProgress> = {};
  for (const [id, v] of Object.entries(p.vertices as Record<string, unknown>)) {
    if (!isRecord(v)) continue;
    const list = <T>(value: unknown, ok: (x: unknown) => x is T): T[] => (Array.isArray(value) ? value.map((x) => (ok(x) ? x : undefined)) as T[] : []);
    vertices[id] = {
      attempts: list(v.attempts, (x): x is number => Number.isInteger(x) && (x as number) >= 0),
      finished: list(v.finished, (x): x is boolean => typeof x === 'boolean'),
      deployed: list(v.deployed, (x): x is boolean => typeof x === 'boolean'),
      taskManagers: list(v.taskManagers, (x): x is string => typeof x === 'string'),
    };
  }
  const restart = isRecord(p.restart) && Array.isArray(p.restart.failureTimes) ? p.restart as unknown as RestartState : emptyRestartState();
  return {
    formatVersion: PROGRESS_FORMAT_VERSION,
    jobId: typeof p.jobId === 'string' ? p.jobId : '',
    epoch: Number(p.epoch) || 0,
    updatedAt: Number(p.updatedAt) || 0,
    vertices,
    restarts: Number.isInteger(p.restarts) ? p.restarts as number : 0,
    restart,
    exceptions: Array.isArray(p.exceptions) ? p.exceptions.filter(isRecord) as unknown as ExceptionEntry[] : [],
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
