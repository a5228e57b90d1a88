/**
 * The messages between the leader (ResourceManager, JobMasters) and TaskManagers, both directions,
 * as JSON over HTTP. Every leader → TaskManager command carries the leader's epoch (the fencing token
 * of its term); every TaskManager → leader message names the epoch it registered with, so a replica
 * of another term answers 409 and the TaskManager looks the leader up again.
 *
 *   leader → TaskManager (TaskManager's `address`):
 *     POST /deploy   DeployRequest   → 200 | 409 stale epoch
 *     POST /cancel   CancelRequest   → 200 {canceled: keys} | 409 stale epoch
 *     GET  /tasks                    → {tasks: TaskReport[]}
 *     GET  /logs/:jobId/:vertexId/:subtask/:attempt → text/plain | 404
 *   TaskManager → leader (leader's `rpcUrl`, routes mounted by the ResourceManager):
 *     POST /internal/taskmanagers                 RegistrationRequest → RegistrationResponse
 *     POST /internal/taskmanagers/:id/heartbeat   HeartbeatRequest    → HeartbeatResponse | 404 unknown: register again
 *     POST /internal/tasks/status                 StatusRequest       → StatusResponse   | 404 unknown: register again
 *     Standby or not (yet) leading → 503; leader of another epoch than the message names → 409 {epoch}.
 */
// What one subtask runs is part of the JobGraph model; the deploy command carries it.
import type { TaskSpec } from '../jobgraph/types';
export type { TaskSpec, TaskType, CommandTask, SleepTask, FailTask } from '../jobgraph/types';

/** One attempt of one subtask: the unit a TaskManager runs. */
export interface ExecutionId {
  jobId: string;
  vertexId: string;
  subtask: number;
  /** 0-based, +1 per restart of this subtask (Flink's attempt number). */
  attempt: number;
}

/** Task states as a TaskManager sees them (a subset of the JobMaster's). */
export type ReportedState = 'DEPLOYING' | 'RUNNING' | 'FINISHED' | 'FAILED' | 'CANCELED';

export const TERMINAL_REPORTED: ReadonlySet<ReportedState> = new Set(['FINISHED', 'FAILED', 'CANCELED']);

export interface TaskReport extends ExecutionId {
  state: ReportedState;
  error?: string;
  startedAt: number;
  endedAt?: number;
  pid?: number | null;
}

export interface DeployRequest extends ExecutionId {
  epoch: number;
  parallelism: number;
  task: TaskSpec;
}

/** Without vertexId, cancels every task of the job on that TaskManager. */
export interface CancelRequest {
  epoch: number;
  jobId: string;
  vertexId?: string;
  subtask?: number;
  attempt?: number;
}

export interface RegistrationRequest {
  taskManagerId: string;
  /**
   * Random per TaskManager process. A TaskManager restarted under the same id and address (a fixed
   * port) is another process: what the former one ran is gone, and only this tells the leader so.
   */
  instanceId?: string;
  host: string;
  /** Base URL of the TaskManager's RPC server. */
  address: string;
  slots: number;
  /** Epoch of the leader this registration is meant for (from /leader/info). */
  epoch: number;
  /**
   * The highest epoch a leader verified to this TaskManager (-1 before any). A leader below it
   * cannot command it, so it takes a new term above it instead of registering it.
   */
  highestEpoch?: number;
  /** Tasks still running, plus finished ones whose outcome no leader has acknowledged yet. */
  tasks: TaskReport[];
}

export interface RegistrationResponse {
  epoch: number;
  /** Keys of terminal reports the leader has durably taken note of: the TaskManager may forget them. */
  acknowledged: string[];
  /** Keys of running tasks no JobMaster of this term owns (stale attempt, ended job): stop them. */
  cancel: string[];
}

export interface HeartbeatRequest {
  epoch: number;
  /** Keys of the tasks running right now. */
  running: string[];
}

export interface HeartbeatResponse {
  epoch: number;
  cancel: string[];
  /** Present when the leader released this TaskManager (drained, nothing left on it): why. It is unregistered and should stop. */
  release?: string;
}

export interface StatusRequest {
  taskManagerId: string;
  epoch: number;
  reports: TaskReport[];
}

export interface StatusResponse {
  acknowledged: string[];
  cancel: string[];
}

export function executionKey(id: ExecutionId): string {
  return `${id.jobId}/${id.vertexId}/${id.subtask}/${id.attempt}`;
}

export function parseExecutionKey(key: string): ExecutionId | null {
  const m = /^([^/]+)\/([^/]+)\/(\d+)\/(\d+)$/.exec(key);
  return m ? { jobId: m[1], vertexId: m[2], subtask: Number(m[3]), attempt: Number(m[4]) } : null;
}

/** Validates the ExecutionId part of an incoming message; throws with the field that is wrong. */
export function checkExecutionId(value: unknown, what = 'task'): ExecutionId {
  const v = value as Partial<ExecutionId> | null;
  if (!v || typeof v !== 'object') throw new Error(`${what} must be an object`);
  if (typeof v.jobId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v.jobId)) throw new Error(`${what}.jobId is missing or malformed`);
  if (typeof v.vertexId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(v.vertexId)) throw new Error(`${what}.vertexId is missing or malformed`);
  if (!Number.isInteger(v.subtask) || (v.subtask as number) < 0) throw new Error(`${what}.subtask must be an integer >= 0`);
  if (!Number.isInteger(v.attempt) || (v.attempt as number) < 0) throw new Error(`${what}.attempt must be an integer >= 0`);
  return { jobId: v.jobId, vertexId: v.vertexId, subtask: v.subtask as number, attempt: v.attempt as number };
}

export function checkReport(value: unknown, what = 'report'): TaskReport {
  const id = checkExecutionId(value, what);
  const v = value as Partial<TaskReport>;
  if (!['DEPLOYING', 'RUNNING', 'FINISHED', 'FAILED', 'CANCELED'].includes(v.state as string)) throw new Error(`${what}.state is not a task state`);
  return {
    ...id,
    state: v.state as ReportedState,
    error: typeof v.error === 'string' ? v.error.slice(0, 4000) : undefined,
    startedAt: Number(v.startedAt) || 0,
    endedAt: v.endedAt === undefined ? undefined : Number(v.endedAt) || 0,
    pid: typeof v.pid === 'number' ? v.pid : null,
  };
}
