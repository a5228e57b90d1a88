/**
 * The ExecutionGraph of one job (Flink's name): the job status and, per subtask, the state of its
 * current execution attempt — attempt number, task state, TaskManager, start/end times and what is
 * durable about it — plus the snapshot/restore of that state to and from the stored progress format
 * (`/jobs/<jobId>/progress`, src/store/progress-store.ts).
 *
 * Pure: no ZooKeeper, no timers, no TaskManager calls. The SchedulingJobMaster decides what happens
 * (scheduling, failover, persistence); this class only holds the state and guards its transitions.
 * Every status change goes through the transition tables of src/jobgraph/status.ts: an illegal one is
 * never applied, it is logged as `job.transition.rejected` / `task.transition.rejected`
 * ({from, to, reason}) and the call returns false.
 *
 * Naming: an ExecutionJobVertex is one JobVertex with its subtasks; an ExecutionVertex is one subtask
 * (`subtaskIndex`, 0-based) and its current attempt. Wire and stored formats keep their field names
 * (`subtask` in ExecutionId and reports, `attempts[i]` in progress).
 */
import type { JobGraph, JobVertex } from '../jobgraph';
import { MAX_STORED_TASK_MANAGER_ID_LENGTH, topologicalOrder } from '../jobgraph';
import {
  isLegalJobTransition, isLegalTaskTransition, JobStatus, TaskState, TERMINAL_TASK_STATES,
} from '../jobgraph/status';
import type { ExecutionId } from '../taskmanager/protocol';
import type { VertexProgress } from '../store/progress-store';
import { EventLogger, silentLogger } from '../util/logger';
import type { SubtaskDetail, VertexDetail } from './types';

/** One subtask of a vertex and its current execution attempt. */
export interface ExecutionVertex {
  readonly jobVertex: ExecutionJobVertex;
  readonly subtaskIndex: number;
  /** 0-based, +1 per new attempt (restart, refused deploy, unreconciled after a failover). */
  attempt: number;
  /** Changed only through ExecutionGraph.setTaskState (the transition table). */
  readonly state: TaskState;
  /** Durable: the subtask finished (some attempt of it). */
  finished: boolean;
  /** Durable: the current attempt was handed to a TaskManager and may be running. */
  deployed: boolean;
  /** Recovery: handed out by an earlier term and not yet reported by any TaskManager. */
  unaccounted: boolean;
  /** Failed; the restart strategy's delay runs before it is placed again. */
  waitingRestart: boolean;
  taskManager: string | null;
  /** Epoch ms; -1 when not started (ended). */
  startTime: number;
  endTime: number;
}

/** One JobVertex of the graph with its subtasks. */
export interface ExecutionJobVertex {
  readonly spec: JobVertex;
  readonly inputs: ExecutionJobVertex[];
  readonly subtasks: ExecutionVertex[];
  /** Subtasks with `finished` set: keeps "is this vertex done?" O(1) for large graphs. */
  finishedCount: number;
}

export interface ExecutionGraphOptions {
  /** Epoch ms of the submission: the INITIALIZING timestamp. */
  submittedAt: number;
  /** Epoch ms now (the JobMaster's clock). */
  now: () => number;
  /** Gets `task.status`, `job.transition.rejected` and `task.transition.rejected`. */
  logger?: EventLogger;
}

type MutableExecutionVertex = { -readonly [K in keyof ExecutionVertex]: ExecutionVertex[K] };

export class ExecutionGraph {
  readonly jobId: string;
  /** Topological order: every vertex after all its inputs. */
  readonly vertices: readonly ExecutionJobVertex[];
  private readonly byId = new Map<string, ExecutionJobVertex>();
  private current: JobStatus = 'INITIALIZING';
  private readonly statusTimestamps: Partial<Record<JobStatus, number>> = {};
  private readonly now: () => number;
  private readonly logger: EventLogger;

  constructor(private readonly graph: JobGraph, options: ExecutionGraphOptions) {
    this.jobId = graph.jobId;
    this.now = options.now;
    this.logger = options.logger ?? silentLogger;
    const specs = new Map(graph.vertices.map((v) => [v.id, v]));
    this.vertices = topologicalOrder(graph).map((id) => {
      const spec = specs.get(id)!;
      const jobVertex: ExecutionJobVertex = { spec, inputs: [], subtasks: [], finishedCount: 0 };
      for (let subtaskIndex = 0; subtaskIndex < spec.parallelism; subtaskIndex++) {
        jobVertex.subtasks.push({
          jobVertex, subtaskIndex, attempt: 0, state: 'CREATED', finished: false, deployed: false, unaccounted: false,
          waitingRestart: false, taskManager: null, startTime: -1, endTime: -1,
        });
      }
      this.byId.set(id, jobVertex);
      return jobVertex;
    });
    for (const v of this.vertices) for (const i of v.spec.inputs ?? []) v.inputs.push(this.byId.get(i)!);
    this.statusTimestamps.INITIALIZING = options.submittedAt;
  }

  // ---- job status -----------------------------------------------------------------------------

  get status(): JobStatus { return this.current; }

  /** Epoch ms at which the job last entered each status. */
  get timestamps(): Partial<Record<JobStatus, number>> { return { ...this.statusTimestamps }; }

  /**
   * Moves the job to `to` if the job transition table allows it. Returns the previous status when the
   * status changed; null when it already was `to` (nothing to do) or the transition is illegal (logged
   * as `job.transition.rejected`, not applied).
   */
  transition(to: JobStatus, reason?: string): JobStatus | null {
    const from = this.current;
    if (from === to) return null;
    if (!isLegalJobTransition(from, to)) {
      this.logger.warn('job.transition.rejected', { from, to, reason: reason ?? `${from} → ${to} is not a legal job status transition` });
      return null;
    }
    this.current = to;
    this.statusTimestamps[to] = this.now();
    return from;
  }

  // ---- subtasks -------------------------------------------------------------------------------

  /** The subtask an ExecutionId (or report) names, whatever its attempt; undefined for an unknown vertex or index. */
  execution(id: { vertexId: string; subtask: number }): ExecutionVertex | undefined {
    return this.byId.get(id.vertexId)?.subtasks[id.subtask];
  }

  /** The subtasks of one vertex in index order; [] for an unknown vertex. */
  jobVertexSubtasks(vertexId: string): readonly ExecutionVertex[] {
    return this.byId.get(vertexId)?.subtasks ?? [];
  }

  /** Every subtask; O(subtasks) — never spread it into a call (the stack overflows at ~100k arguments). */
  allExecutions(): ExecutionVertex[] {
    return this.vertices.flatMap((v) => v.subtasks);
  }

  /** Every subtask of the vertex finished. */
  isVertexDone(v: ExecutionJobVertex): boolean {
    return v.finishedCount === v.subtasks.length;
  }

  isFinished(): boolean {
    return this.vertices.every((v) => this.isVertexDone(v));
  }

  /** Subtasks that may be placed now: CREATED, not finished, not waiting out a restart delay, all inputs done. */
  *schedulable(): Generator<ExecutionVertex> {
    for (const v of this.vertices) {
      if (this.isVertexDone(v) || !v.inputs.every((i) => this.isVertexDone(i))) continue;
      for (const s of v.subtasks) {
        if (s.state === 'CREATED' && !s.waitingRestart && !s.finished) yield s;
      }
    }
  }

  /**
   * Moves a subtask's current attempt to `to` if the task transition table allows it and logs
   * `task.status`. A terminal state sets the end time (the report's `endedAt`, else now); CREATED and
   * SCHEDULED clear start and end. Returns false when it already was `to`, or when the transition is
   * illegal (logged as `task.transition.rejected`, not applied).
   */
  setTaskState(s: ExecutionVertex, to: TaskState, report?: { endedAt?: number; error?: string }): boolean {
    const from = s.state;
    if (from === to) return false;
    if (!isLegalTaskTransition(from, to)) {
      this.logger.warn('task.transition.rejected', { ...this.logFields(s), from, to, reason: `${from} → ${to} is not a legal task state transition` });
      return false;
    }
    const m = s as MutableExecutionVertex;
    m.state = to;
    if (TERMINAL_TASK_STATES.has(to)) m.endTime = report?.endedAt ?? this.now();
    if (to === 'CREATED' || to === 'SCHEDULED') { m.startTime = -1; m.endTime = -1; }
    this.logger[to === 'FAILED' ? 'warn' : 'info']('task.status', { ...this.logFields(s), status: to, taskManagerId: s.taskManager, ...(report?.error ? { error: report.error } : {}) });
    return true;
  }

  /** The subtask finished on `taskManagerId`: durable (`finished`), no longer in flight. */
  markFinished(s: ExecutionVertex, taskManagerId: string, report?: { endedAt?: number }): void {
    if (!s.finished) s.jobVertex.finishedCount++;
    s.finished = true;
    s.deployed = false;
    s.taskManager = taskManagerId;
    this.setTaskState(s, 'FINISHED', report);
  }

  /**
   * The current attempt is abandoned (refused deploy, nobody reported it after a failover): attempt + 1,
   * in no TaskManager, back to CREATED. A late report of the old attempt is then stale.
   */
  startNewAttempt(s: ExecutionVertex): void {
    s.attempt++;
    s.deployed = false;
    s.unaccounted = false;
    s.taskManager = null;
    this.setTaskState(s, 'CREATED');
  }

  /** A failed subtask restarts after the restart delay: attempt + 1 now (late reports of the failed one are stale). */
  awaitRestart(s: ExecutionVertex): void {
    s.attempt++;
    s.deployed = false;
    s.waitingRestart = true;
  }

  /** The restart delay is over: the subtask can be placed again. */
  endRestartWait(s: ExecutionVertex): void {
    s.waitingRestart = false;
    s.taskManager = null;
    this.setTaskState(s, 'CREATED');
  }

  executionId(s: ExecutionVertex): ExecutionId {
    return { jobId: this.jobId, vertexId: s.jobVertex.spec.id, subtask: s.subtaskIndex, attempt: s.attempt };
  }

  /** `name (i+1/parallelism)`, Flink's task name form, for failure history and messages. */
  taskName(s: ExecutionVertex): string {
    const spec = s.jobVertex.spec;
    return `${spec.name ?? spec.id} (${s.subtaskIndex + 1}/${spec.parallelism})`;
  }

  /** Highest attempt number of any subtask (the job's "attempt" in REST). */
  maxAttempt(): number {
    // A loop, not Math.max(...): 128k subtasks spread into one call overflowed the stack (and killed the leader).
    let max = 0;
    for (const v of this.vertices) for (const s of v.subtasks) if (s.attempt > max) max = s.attempt;
    return max;
  }

  // ---- progress snapshot / restore ------------------------------------------------------------

  /** Per vertex id: attempts, finished, deployed (in flight and not finished), taskManagers — the stored progress format. */
  snapshot(): Record<string, VertexProgress> {
    const vertices: Record<string, VertexProgress> = {};
    for (const v of this.vertices) {
      vertices[v.spec.id] = {
        attempts: v.subtasks.map((s) => s.attempt),
        finished: v.subtasks.map((s) => s.finished),
        deployed: v.subtasks.map((s) => s.deployed && !s.finished),
        taskManagers: v.subtasks.map((s) => storableTaskManagerId(s.taskManager)),
        startTimes: v.subtasks.map((s) => s.startTime),
        endTimes: v.subtasks.map((s) => s.endTime),
      };
    }
    return vertices;
  }

  /**
   * Loads stored progress into a fresh graph (a recovered job, before it runs): finished subtasks are
   * FINISHED, in-flight ones DEPLOYING and `unaccounted` until a TaskManager reports them, the rest
   * CREATED. Vertices the progress does not know stay as they are; odd entries count as absent.
   * Not a transition: nothing ran in this term yet.
   */
  restore(vertices: Record<string, VertexProgress>): void {
    for (const v of this.vertices) {
      const vp = vertices[v.spec.id];
      if (!vp) continue;
      for (const s of v.subtasks) {
        const m = s as MutableExecutionVertex;
        const i = s.subtaskIndex;
        m.attempt = Math.max(0, Number(vp.attempts?.[i]) || 0);
        if (m.finished) v.finishedCount--;
        m.finished = vp.finished?.[i] === true;
        if (m.finished) v.finishedCount++;
        m.deployed = !m.finished && vp.deployed?.[i] === true;
        m.unaccounted = m.deployed;
        m.state = m.finished ? 'FINISHED' : m.deployed ? 'DEPLOYING' : 'CREATED';
        // Where it ran (finished) or was last sent (in flight): display only until a TaskManager reports.
        m.taskManager = m.finished || m.deployed ? vp.taskManagers?.[i] ?? null : null;
        m.startTime = m.finished || m.deployed ? vp.startTimes?.[i] ?? -1 : -1;
        m.endTime = m.finished ? vp.endTimes?.[i] ?? -1 : -1;
      }
    }
  }

  // ---- views ----------------------------------------------------------------------------------

  /** Per vertex in the JobGraph's order, with Flink's aggregate status, task counts and subtask times (epoch ms, durations ms). */
  vertexDetails(now: number): VertexDetail[] {
    return this.graph.vertices.map((spec) => {
      const v = this.byId.get(spec.id)!;
      const subtasks: SubtaskDetail[] = v.subtasks.map((s) => ({
        subtask: s.subtaskIndex, status: s.state, attempt: s.attempt, taskmanager: s.taskManager,
        'start-time': s.startTime, 'end-time': s.endTime,
        duration: s.startTime < 0 ? -1 : (s.endTime >= 0 ? s.endTime : now) - s.startTime,
      }));
      const counts: Partial<Record<TaskState, number>> = {};
      for (const s of v.subtasks) counts[s.state] = (counts[s.state] ?? 0) + 1;
      // Loops, not Math.min(...array): a spread of a vertex's subtasks overflows the call stack at large parallelism.
      let vStart = -1;
      let vEnd = v.subtasks.length > 0 ? 0 : -1;
      for (const s of v.subtasks) {
        if (s.startTime >= 0 && (vStart < 0 || s.startTime < vStart)) vStart = s.startTime;
        vEnd = vEnd < 0 || s.endTime < 0 ? -1 : Math.max(vEnd, s.endTime);
      }
      return {
        id: spec.id, name: spec.name ?? spec.id, parallelism: spec.parallelism, status: vertexState(v.subtasks.map((s) => s.state)),
        'start-time': vStart, 'end-time': vEnd, duration: vStart < 0 ? -1 : (vEnd >= 0 ? vEnd : now) - vStart,
        tasks: counts, subtasks, inputs: [...(spec.inputs ?? [])],
      };
    });
  }

  private logFields(s: ExecutionVertex): Record<string, unknown> {
    // `subtask`: the log field name runbooks and the chaos history already read.
    return { vertexId: s.jobVertex.spec.id, subtask: s.subtaskIndex, attempt: s.attempt };
  }
}

const STORABLE_TASK_MANAGER_ID = new RegExp(`^[A-Za-z0-9_.:-]{1,${MAX_STORED_TASK_MANAGER_ID_LENGTH}}$`);

/**
 * A TaskManager id as progress may store it: ids are display only there, and one registered with a
 * longer or odd id must not break a shard's size bound (src/jobgraph/limits.ts), so it becomes null.
 */
function storableTaskManagerId(id: string | null): string | null {
  return id !== null && STORABLE_TASK_MANAGER_ID.test(id) ? id : null;
}

/** Flink's aggregate: the "most active" state any subtask is in. */
export function vertexState(states: TaskState[]): TaskState {
  const has = (s: TaskState): boolean => states.includes(s);
  if (states.every((s) => s === 'FINISHED')) return 'FINISHED';
  if (has('FAILED') && !has('RUNNING') && !has('DEPLOYING') && !has('SCHEDULED') && !has('CREATED')) return 'FAILED';
  if (has('CANCELING')) return 'CANCELING';
  if (states.every((s) => s === 'CANCELED' || s === 'FINISHED')) return 'CANCELED';
  if (has('RUNNING')) return 'RUNNING';
  if (has('DEPLOYING')) return 'DEPLOYING';
  if (has('SCHEDULED')) return 'SCHEDULED';
  if (has('FAILED')) return 'FAILED';
  return 'CREATED';
}
