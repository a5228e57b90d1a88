/**
 * The scheduling JobMaster: one per job, for one leader term.
 *
 * Execution graph: every vertex × parallelism is a subtask; a vertex is scheduled when every subtask
 * of all its inputs finished (blocking, batch-style exchanges).
 *
 * Failover scope: only the failed subtasks restart (with attempt + 1). Inputs of a failed subtask have
 * finished and their consumers have not started, so nothing else needs to run again — Flink's region
 * failover where each subtask of a blocking exchange is its own region. One failure event (a task
 * failing, or a lost TaskManager taking several tasks with it) is one restart in the strategy's count.
 * While failed subtasks wait out the restart delay the job is RESTARTING; exhausted restarts →
 * FAILING (every task stopped) → FAILED with the cause.
 *
 * Recovery: a recovered job loads its progress (progress-store.ts) and enters RECONCILING. Subtasks
 * that were handed to a TaskManager are adopted when their TaskManager re-registers and reports the
 * current attempt (never started again); finished ones stay finished; what nobody reports within
 * `jobmanager.reconcile-timeout` runs again as a new attempt.
 */
import type { JobVertex } from '../jobgraph';
import { topologicalOrder } from '../jobgraph';
import type { RestartStrategyConfig } from '../jobgraph/types';
import { Clock, systemClock, TimerHandle } from '../util/clock';
import { EventLogger, silentLogger } from '../util/logger';
import { NotLeaderError } from '../http/errors';
import { DeployRefusedError, type JobTaskListener, type TaskExecutionService } from '../resources/resource-manager';
import type { ExecutionId, TaskReport } from '../taskmanager/protocol';
import { createRestartStrategy, describeStrategy, RestartStrategy } from './restart-strategy';
import { JobProgress, PROGRESS_FORMAT_VERSION, ProgressStore } from './progress-store';
import {
  ExceptionEntry, JobDetails, JobMaster, JobMasterContext, JobStatus, SubtaskDetail, TaskState, TERMINAL_JOB_STATUSES, VertexDetail,
} from './types';

export interface SchedulingJobMasterOptions {
  context: JobMasterContext;
  executor: TaskExecutionService;
  progress: ProgressStore;
  /** The job's own strategy wins; this is the cluster's (`restart-strategy.*`). */
  defaultRestartStrategy: RestartStrategyConfig;
  reconcileTimeoutMs: number;
  logger?: EventLogger;
  clock?: Clock;
  /** Failure history entries kept (and persisted). */
  maxExceptions?: number;
}

interface Subtask {
  vertex: VertexRuntime;
  index: number;
  attempt: number;
  state: TaskState;
  /** Durable: the subtask finished (some attempt of it). */
  finished: boolean;
  /** Durable: the current attempt was handed to a TaskManager and may be running. */
  deployed: boolean;
  /** Recovery: handed out by an earlier term and not yet reported by any TaskManager. */
  unaccounted: boolean;
  waitingRestart: boolean;
  taskManager: string | null;
  startTime: number;
  endTime: number;
}

interface VertexRuntime {
  spec: JobVertex;
  inputs: VertexRuntime[];
  subtasks: Subtask[];
  /** Subtasks with `finished` set: keeps "is this vertex done?" O(1) for large graphs. */
  finishedCount: number;
}

const ACTIVE: ReadonlySet<JobStatus> = new Set(['CREATED', 'RUNNING', 'RESTARTING', 'RECONCILING']);

export class SchedulingJobMaster implements JobMaster, JobTaskListener {
  private current: JobStatus = 'INITIALIZING';
  private readonly ctx: JobMasterContext;
  private readonly executor: TaskExecutionService;
  private readonly store: ProgressStore;
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private readonly vertices: VertexRuntime[];
  private readonly byId = new Map<string, VertexRuntime>();
  private readonly timestamps: Partial<Record<JobStatus, number>> = {};
  private readonly timers = new Set<TimerHandle>();
  private readonly maxExceptions: number;
  private exceptionHistory: ExceptionEntry[] = [];
  private strategy: RestartStrategy;
  private restarts = 0;
  private endTime = -1;
  private failure: { message: string; timestamp: number } | undefined;
  private suspended = false;
  private ready: Promise<void> | null = null;
  private loaded = false;
  private unsubscribe: Array<() => void> = [];
  private inflightDeploys = 0;
  private deployLandedWhileStopping = false;
  private stopping: Promise<void> | null = null;
  private terminalSent = false;
  /** While recovering: until when TaskManagers may still report tasks an earlier term handed out. */
  private reconcileDeadline = 0;
  // coalesced progress writes
  private flushing: Promise<void> | null = null;
  private dirty = false;

  constructor(private readonly options: SchedulingJobMasterOptions) {
    this.ctx = options.context;
    this.executor = options.executor;
    this.store = options.progress;
    this.clock = options.clock ?? systemClock;
    this.maxExceptions = options.maxExceptions ?? 50;
    this.logger = (options.logger ?? silentLogger).child({ jobId: this.ctx.graph.jobId, epoch: this.ctx.term.epoch });
    this.strategy = createRestartStrategy(this.restartConfig);
    const order = topologicalOrder(this.ctx.graph);
    const specs = new Map(this.ctx.graph.vertices.map((v) => [v.id, v]));
    this.vertices = order.map((id) => {
      const spec = specs.get(id)!;
      const runtime: VertexRuntime = { spec, inputs: [], subtasks: [], finishedCount: 0 };
      runtime.subtasks = Array.from({ length: spec.parallelism }, (_, index) => ({
        vertex: runtime, index, attempt: 0, state: 'CREATED' as TaskState, finished: false, deployed: false, unaccounted: false,
        waitingRestart: false, taskManager: null, startTime: -1, endTime: -1,
      }));
      this.byId.set(id, runtime);
      return runtime;
    });
    for (const v of this.vertices) v.inputs = (v.spec.inputs ?? []).map((i) => this.byId.get(i)!);
    this.timestamps.INITIALIZING = this.ctx.submittedAt;
  }

  get jobId(): string { return this.ctx.graph.jobId; }
  get status(): JobStatus { return this.current; }
  private get restartConfig(): RestartStrategyConfig { return this.ctx.graph.restartStrategy ?? this.options.defaultRestartStrategy; }

  // ---- lifecycle ------------------------------------------------------------------------------

  start(): void {
    if (this.ready) return;
    this.unsubscribe.push(this.executor.registerJob(this.jobId, this));
    this.unsubscribe.push(this.executor.onResourcesChanged(() => this.schedule()));
    this.ready = this.load();
  }

  private async load(): Promise<void> {
    let progress: JobProgress | null = null;
    if (this.ctx.recovered) {
      for (let attempt = 0; !this.suspended; attempt++) {
        try {
          progress = await this.store.load();
          break;
        } catch (err) {
          this.logger.warn('job.progress.load-failed', { attempt, error: err as Error });
          // Not a tracked timer: suspend() must not leave `ready` pending forever.
          await new Promise<void>((resolve) => this.clock.setTimeout(resolve, Math.min(2000, 200 * 2 ** attempt)));
        }
      }
    }
    if (this.suspended) return;
    if (progress) this.applyProgress(progress);
    this.loaded = true;
    if (this.current !== 'INITIALIZING') return; // canceled while loading
    if (this.ctx.recovered) {
      this.transition('RECONCILING');
      const waiting = this.allSubtasks().filter((s) => s.unaccounted).length;
      this.logger.info('job.reconciling', { inFlight: waiting, reconcileTimeoutMs: this.options.reconcileTimeoutMs,
        finishedSubtasks: this.allSubtasks().filter((s) => s.finished).length });
      if (waiting === 0) this.endReconciliation();
      else {
        this.reconcileDeadline = this.clock.now() + this.options.reconcileTimeoutMs;
        this.after(this.options.reconcileTimeoutMs, () => this.endReconciliation());
      }
    } else {
      this.transition('CREATED');
      this.transition('RUNNING');
      this.schedule();
    }
  }

  private applyProgress(p: JobProgress): void {
    for (const v of this.vertices) {
      const vp = p.vertices[v.spec.id];
      if (!vp) continue;
      for (const s of v.subtasks) {
        s.attempt = Math.max(0, Number(vp.attempts?.[s.index]) || 0);
        s.finished = vp.finished?.[s.index] === true;
        if (s.finished) v.finishedCount++;
        s.deployed = !s.finished && vp.deployed?.[s.index] === true;
        s.unaccounted = s.deployed;
        s.state = s.finished ? 'FINISHED' : s.deployed ? 'DEPLOYING' : 'CREATED';
        // Where it ran (finished) or was last sent (in flight): display only until a TaskManager reports.
        if (s.finished || s.deployed) s.taskManager = vp.taskManagers?.[s.index] ?? null;
      }
    }
    this.restarts = Number(p.restarts) || 0;
    this.exceptionHistory = Array.isArray(p.exceptions) ? p.exceptions.slice(-this.maxExceptions) : [];
    if (p.restart) this.strategy = createRestartStrategy(this.restartConfig, p.restart);
  }

  private endReconciliation(): void {
    if (this.current !== 'RECONCILING' || this.suspended) return;
    const missing = this.allSubtasks().filter((s) => s.unaccounted);
    if (missing.length > 0) {
      const names = missing.map((s) => this.taskName(s));
      this.recordException({
        timestamp: this.clock.now(), exceptionName: 'TaskNotReconciled',
        stacktrace: `no TaskManager reported ${names.join(', ')} within jobmanager.reconcile-timeout (${this.options.reconcileTimeoutMs} ms) after the leader change; running them again as new attempts`,
        taskName: names.join(', '),
      });
      for (const s of missing) {
        s.unaccounted = false;
        s.deployed = false;
        s.attempt++;
        s.state = 'CREATED';
        s.taskManager = null;
      }
      this.persistInBackground();
    }
    this.logger.info('job.reconciled', { adopted: this.allSubtasks().filter((s) => s.state === 'RUNNING' || s.state === 'DEPLOYING').length, redeploy: missing.length });
    this.transition(this.allSubtasks().some((s) => s.waitingRestart) ? 'RESTARTING' : 'RUNNING');
    this.schedule();
  }

  cancel(): void {
    if (TERMINAL_JOB_STATUSES.has(this.current) || this.current === 'CANCELLING' || this.current === 'FAILING' || this.suspended) return;
    this.transition('CANCELLING');
    void this.stopAllTasks().then(() => this.finish('CANCELED'));
  }

  async suspend(): Promise<void> {
    if (this.suspended) return;
    this.suspended = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    if (!TERMINAL_JOB_STATUSES.has(this.current)) this.transition('SUSPENDED');
  }

  // ---- scheduling -----------------------------------------------------------------------------

  private schedule(): void {
    if (this.suspended || !this.loaded || (this.current !== 'RUNNING' && this.current !== 'RESTARTING')) return;
    if (this.vertices.every(done)) {
      this.finish('FINISHED');
      return;
    }
    for (const v of this.vertices) {
      if (done(v) || !v.inputs.every(done)) continue;
      for (const s of v.subtasks) {
        if (s.state !== 'CREATED' || s.waitingRestart || s.finished) continue;
        const tm = this.executor.allocate(this.executionId(s));
        if (tm === null) return; // wait for a slot: resources-changed calls schedule() again
        s.state = 'SCHEDULED';
        s.taskManager = tm;
        s.startTime = -1;
        s.endTime = -1;
        this.logTask(s, 'SCHEDULED');
        void this.deploy(s, tm);
      }
    }
  }

  private async deploy(s: Subtask, tm: string): Promise<void> {
    const attempt = s.attempt;
    const id = this.executionId(s);
    this.inflightDeploys++;
    try {
      s.deployed = true;
      await this.persist(); // the attempt is durable before it can run anywhere
      if (this.suspended) return;
      if (s.attempt !== attempt || s.state !== 'SCHEDULED' || !ACTIVE.has(this.current)) {
        this.executor.release(tm, id);
        return;
      }
      s.state = 'DEPLOYING';
      s.startTime = this.clock.now();
      this.logTask(s, 'DEPLOYING');
      await this.executor.deploy(tm, { ...id, parallelism: s.vertex.spec.parallelism, task: s.vertex.spec.task });
      if (this.stopping) this.deployLandedWhileStopping = true;
    } catch (err) {
      if (this.suspended || !this.termActive()) return;
      if (s.attempt === attempt && (s.state === 'SCHEDULED' || s.state === 'DEPLOYING')) {
        this.executor.release(tm, id);
        if (err instanceof DeployRefusedError) this.placeAgain(s, tm, err.message);
        else {
          this.handleFailure([s], `deploying ${this.taskName(s)} to TaskManager ${this.executor.describe(tm)} failed: ${(err as Error).message}`,
            { exceptionName: 'DeploymentFailure', location: this.executor.describe(tm) });
        }
      }
    } finally {
      this.inflightDeploys--;
    }
  }

  /**
   * The TaskManager ran nothing: a new attempt (the refused one stays unused) goes wherever there is
   * a slot, now or when resources change. Not a failure, so the restart strategy does not count it.
   */
  private placeAgain(s: Subtask, tm: string, reason: string): void {
    this.logger.info('task.deploy.refused', { vertexId: s.vertex.spec.id, subtask: s.index, attempt: s.attempt, taskManagerId: tm, reason });
    s.attempt++;
    s.deployed = false;
    s.taskManager = null;
    this.setTaskState(s, 'CREATED');
    this.persistInBackground();
    this.schedule();
  }

  // ---- reports from TaskManagers (through the ResourceManager) ---------------------------------

  owns(id: ExecutionId): boolean {
    if (!this.loaded) return true; // not known yet: never kill what recovery may adopt
    const s = this.subtask(id);
    return !!s && ACTIVE.has(this.current) && !s.finished && id.attempt === s.attempt;
  }

  async onReport(taskManagerId: string, r: TaskReport): Promise<'ok' | 'cancel'> {
    await this.ready;
    // A suspended JobMaster cannot note anything durably; answering 'ok' would let the TaskManager
    // forget a finished outcome no leader recorded, and the next term would run that subtask again.
    if (this.suspended) throw new NotLeaderError('the job was suspended (leadership lost); report again to the next leader');
    const s = this.subtask(r);
    const terminalReport = r.state === 'FINISHED' || r.state === 'FAILED' || r.state === 'CANCELED';
    if (!s) return terminalReport ? 'ok' : 'cancel';
    if (r.attempt < s.attempt) return terminalReport ? 'ok' : 'cancel';
    if (r.attempt > s.attempt) {
      // Progress is written before every deploy, so this only happens after a lost write: trust the TaskManager.
      if (s.finished) return terminalReport ? 'ok' : 'cancel';
      this.logger.warn('task.attempt.ahead', { task: this.taskName(s), known: s.attempt, reported: r.attempt, taskManagerId });
      s.attempt = r.attempt;
      s.deployed = true;
    }
    if (s.finished) return terminalReport ? 'ok' : 'cancel';
    s.unaccounted = false;
    if (!ACTIVE.has(this.current)) {
      // Ending (CANCELLING/FAILING) or ended: everything must stop.
      if (terminalReport && s.state !== 'FINISHED') this.setTaskState(s, r.state === 'FINISHED' ? 'FINISHED' : 'CANCELED', r);
      return terminalReport ? 'ok' : 'cancel';
    }
    switch (r.state) {
      case 'DEPLOYING':
      case 'RUNNING':
        if (s.waitingRestart) return 'cancel';
        if (s.state !== r.state || s.taskManager !== taskManagerId) {
          s.taskManager = taskManagerId;
          s.deployed = true;
          if (s.startTime < 0) s.startTime = r.startedAt || this.clock.now();
          this.setTaskState(s, r.state, r);
        }
        this.checkReconciled();
        return 'ok';
      case 'FINISHED': {
        s.finished = true;
        s.vertex.finishedCount++;
        s.deployed = false;
        s.taskManager = taskManagerId;
        this.setTaskState(s, 'FINISHED', r);
        await this.persist(); // durable before the TaskManager may forget the outcome
        this.checkReconciled();
        this.schedule();
        return 'ok';
      }
      case 'FAILED':
      case 'CANCELED': {
        if (s.waitingRestart) return 'ok';
        const how = r.state === 'FAILED' ? `failed: ${r.error ?? 'no reason given'}` : 'was canceled by its TaskManager (orphaned or shutting down)';
        this.handleFailure([s], `task ${this.taskName(s)} attempt ${r.attempt} on TaskManager ${this.executor.describe(taskManagerId)} ${how}`,
          { exceptionName: r.state === 'FAILED' ? 'TaskFailure' : 'TaskCanceled', location: this.executor.describe(taskManagerId) });
        await this.persist().catch(() => undefined);
        this.checkReconciled();
        return 'ok';
      }
    }
  }

  onTaskManagerLost(taskManagerId: string, ids: ExecutionId[], cause: string): void {
    if (this.suspended || !ACTIVE.has(this.current)) return;
    const affected = ids.map((id) => this.subtask(id))
      .filter((s): s is Subtask => !!s && !s.finished && !s.waitingRestart && s.taskManager === taskManagerId && ids.some((i) => i.attempt === s.attempt && i.vertexId === s.vertex.spec.id && i.subtask === s.index));
    if (affected.length === 0) return;
    this.handleFailure(affected, `${cause}; tasks lost with it: ${affected.map((s) => `${this.taskName(s)} attempt ${s.attempt}`).join(', ')}`,
      { exceptionName: 'TaskManagerLost', location: this.executor.describe(taskManagerId) });
  }

  private checkReconciled(): void {
    if (this.current === 'RECONCILING' && !this.allSubtasks().some((s) => s.unaccounted)) this.endReconciliation();
  }

  // ---- failures -------------------------------------------------------------------------------

  private handleFailure(failed: Subtask[], cause: string, meta: { exceptionName: string; location?: string }): void {
    if (this.suspended || !ACTIVE.has(this.current)) return;
    const now = this.clock.now();
    this.recordException({ timestamp: now, exceptionName: meta.exceptionName, stacktrace: cause, taskName: failed.map((s) => this.taskName(s)).join(', '), location: meta.location });
    for (const s of failed) {
      if (s.taskManager) this.executor.release(s.taskManager, this.executionId(s));
      s.unaccounted = false;
      this.setTaskState(s, 'FAILED');
    }
    const decision = this.strategy.onFailure(now);
    if (!decision.restart) {
      this.logger.warn('job.restart.exhausted', { cause, reason: decision.reason, restarts: this.restarts });
      this.failJob(`${cause} — not restarted: ${decision.reason}`);
      return;
    }
    this.restarts++;
    for (const s of failed) {
      s.attempt++; // a late report of the failed attempt is now stale and gets canceled
      s.deployed = false;
      s.waitingRestart = true;
    }
    this.logger.info('job.restart.scheduled', { delayMs: decision.delayMs, restarts: this.restarts, strategy: describeStrategy(this.restartConfig), tasks: failed.length });
    if (this.current === 'RUNNING') this.transition('RESTARTING');
    this.persistInBackground();
    this.after(decision.delayMs, () => {
      if (this.suspended || !ACTIVE.has(this.current)) return;
      for (const s of failed) {
        s.waitingRestart = false;
        s.taskManager = null;
        this.setTaskState(s, 'CREATED');
      }
      if (this.current === 'RESTARTING' && !this.allSubtasks().some((s) => s.waitingRestart)) this.transition('RUNNING');
      this.schedule();
    });
  }

  private failJob(message: string): void {
    this.failure = { message, timestamp: this.clock.now() };
    this.transition('FAILING');
    void this.stopAllTasks().then(() => this.finish('FAILED'));
  }

  /** Stops every task of the job on every TaskManager and waits until they are gone. */
  private async stopAllTasks(): Promise<void> {
    this.stopping ??= (async () => {
      for (const t of this.timers) this.clock.clearTimeout(t);
      this.timers.clear();
      await this.ready;
      // Canceled while recovering: give TaskManagers the rest of the reconcile window to re-register,
      // so "CANCELED" means their processes are gone too (later ones are told to stop on registration).
      while (!this.suspended && this.allSubtasks().some((s) => s.unaccounted) && this.clock.now() < this.reconcileDeadline) {
        await new Promise<void>((resolve) => this.after(50, resolve));
      }
      for (const s of this.allSubtasks()) {
        if (!s.finished && (s.state === 'RUNNING' || s.state === 'DEPLOYING' || s.state === 'SCHEDULED')) this.setTaskState(s, 'CANCELING');
      }
      for (let round = 0; round < 5 && !this.suspended; round++) {
        this.deployLandedWhileStopping = false;
        await this.executor.cancelJob(this.jobId);
        while (this.inflightDeploys > 0 && !this.suspended) await new Promise<void>((resolve) => setTimeout(resolve, 20));
        if (!this.deployLandedWhileStopping) break;
      }
      for (const s of this.allSubtasks()) {
        if (!s.finished && s.state !== 'FAILED' && s.state !== 'CREATED') this.setTaskState(s, 'CANCELED');
      }
    })();
    return this.stopping;
  }

  private finish(status: 'FINISHED' | 'FAILED' | 'CANCELED'): void {
    if (this.suspended || this.terminalSent) return;
    this.terminalSent = true;
    this.endTime = this.clock.now();
    this.transition(status);
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    this.ctx.onTerminal({ status, details: this.details(), failure: status === 'FAILED' ? this.failure : undefined, exceptions: this.exceptions() });
  }

  // ---- progress -------------------------------------------------------------------------------

  /** Resolves once a write that includes the current state has completed. */
  private persist(): Promise<void> {
    this.dirty = true;
    this.flushing ??= (async () => {
      try {
        while (this.dirty) {
          this.dirty = false;
          this.ctx.guard();
          await this.store.save(this.snapshot());
        }
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  private persistInBackground(): void {
    this.persist().catch((err) => this.logger.warn('job.progress.write-failed', { error: err as Error }));
  }

  private snapshot(): JobProgress {
    const vertices: JobProgress['vertices'] = {};
    for (const v of this.vertices) {
      vertices[v.spec.id] = {
        attempts: v.subtasks.map((s) => s.attempt),
        finished: v.subtasks.map((s) => s.finished),
        deployed: v.subtasks.map((s) => s.deployed && !s.finished),
        taskManagers: v.subtasks.map((s) => s.taskManager),
      };
    }
    return {
      formatVersion: PROGRESS_FORMAT_VERSION, jobId: this.jobId, epoch: this.ctx.term.epoch, updatedAt: this.clock.now(),
      vertices, restarts: this.restarts, restart: this.strategy.snapshot(), exceptions: this.exceptionHistory,
    };
  }

  // ---- helpers --------------------------------------------------------------------------------

  private transition(status: JobStatus): void {
    if (this.current === status) return;
    const previous = this.current;
    this.current = status;
    this.timestamps[status] = this.clock.now();
    const level = status === 'FAILED' || status === 'FAILING' ? 'warn' : 'info';
    this.logger[level]('job.status', { status, previous, restarts: this.restarts, ...(status === 'FAILED' ? { failure: this.failure?.message } : {}) });
  }

  private setTaskState(s: Subtask, state: TaskState, report?: TaskReport): void {
    if (s.state === state) return;
    s.state = state;
    if (state === 'FINISHED' || state === 'FAILED' || state === 'CANCELED') s.endTime = report?.endedAt ?? this.clock.now();
    if (state === 'CREATED' || state === 'SCHEDULED') { s.startTime = -1; s.endTime = -1; }
    this.logTask(s, state, report?.error);
  }

  private logTask(s: Subtask, status: TaskState, error?: string): void {
    this.logger[status === 'FAILED' ? 'warn' : 'info']('task.status', {
      vertexId: s.vertex.spec.id, subtask: s.index, attempt: s.attempt, status, taskManagerId: s.taskManager, ...(error ? { error } : {}),
    });
  }

  private recordException(entry: ExceptionEntry): void {
    this.exceptionHistory.push({ ...entry, stacktrace: entry.stacktrace.slice(0, 4000) });
    if (this.exceptionHistory.length > this.maxExceptions) this.exceptionHistory.splice(0, this.exceptionHistory.length - this.maxExceptions);
  }

  private after(ms: number, fn: () => void): void {
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(handle);
      fn();
    }, ms);
    this.timers.add(handle);
  }

  private termActive(): boolean {
    try {
      this.ctx.guard();
      return true;
    } catch {
      return false;
    }
  }

  private subtask(id: { vertexId: string; subtask: number }): Subtask | undefined {
    return this.byId.get(id.vertexId)?.subtasks[id.subtask];
  }

  private executionId(s: Subtask): ExecutionId {
    return { jobId: this.jobId, vertexId: s.vertex.spec.id, subtask: s.index, attempt: s.attempt };
  }

  private taskName(s: Subtask): string {
    return `${s.vertex.spec.name ?? s.vertex.spec.id} (${s.index + 1}/${s.vertex.spec.parallelism})`;
  }

  private allSubtasks(): Subtask[] {
    return this.vertices.flatMap((v) => v.subtasks);
  }

  // ---- views ----------------------------------------------------------------------------------

  details(): JobDetails {
    const now = this.clock.now();
    const start = this.ctx.submittedAt;
    const vertices: VertexDetail[] = this.ctx.graph.vertices.map((spec) => {
      const v = this.byId.get(spec.id)!;
      const subtasks: SubtaskDetail[] = v.subtasks.map((s) => ({
        subtask: s.index, status: s.state, attempt: s.attempt, taskmanager: s.taskManager,
        'start-time': s.startTime, 'end-time': s.endTime,
        duration: s.startTime < 0 ? -1 : (s.endTime >= 0 ? s.endTime : now) - s.startTime,
        log: `/jobs/${this.jobId}/vertices/${encodeURIComponent(spec.id)}/subtasks/${s.index}/attempts/${s.attempt}/log`,
      }));
      const counts: Partial<Record<TaskState, number>> = {};
      for (const s of v.subtasks) counts[s.state] = (counts[s.state] ?? 0) + 1;
      const starts = v.subtasks.map((s) => s.startTime).filter((t) => t >= 0);
      const vStart = starts.length ? Math.min(...starts) : -1;
      const vEnd = v.subtasks.every((s) => s.endTime >= 0) ? Math.max(...v.subtasks.map((s) => s.endTime)) : -1;
      return {
        id: spec.id, name: spec.name ?? spec.id, parallelism: spec.parallelism, status: vertexState(v.subtasks.map((s) => s.state)),
        'start-time': vStart, 'end-time': vEnd, duration: vStart < 0 ? -1 : (vEnd >= 0 ? vEnd : now) - vStart,
        tasks: counts, subtasks, inputs: spec.inputs ?? [],
      };
    });
    return {
      jid: this.jobId, name: this.ctx.graph.name, state: this.current,
      'start-time': start, 'end-time': this.endTime, duration: (this.endTime >= 0 ? this.endTime : now) - start, now,
      timestamps: { ...this.timestamps }, vertices, restarts: this.restarts,
      attempt: Math.max(0, ...this.allSubtasks().map((s) => s.attempt)),
    };
  }

  exceptions(): ExceptionEntry[] {
    return [...this.exceptionHistory];
  }
}

function done(v: VertexRuntime): boolean {
  return v.finishedCount === v.subtasks.length;
}

/** Flink's aggregate: the "most active" state any subtask is in. */
function vertexState(states: TaskState[]): TaskState {
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
