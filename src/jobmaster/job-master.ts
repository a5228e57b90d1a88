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
 * State: the job status and every subtask's attempt live in the ExecutionGraph (execution-graph.ts),
 * which rejects illegal transitions; this class orchestrates (scheduling, failover, reconciliation)
 * and persists.
 *
 * Recovery: a recovered job loads its progress (src/store/progress-store.ts) and enters RECONCILING. Subtasks
 * that were handed to a TaskManager are adopted when their TaskManager re-registers and reports the
 * current attempt (never started again); finished ones stay finished; what nobody reports within
 * `jobmanager.reconcile-timeout` runs again as a new attempt.
 */
import type { RestartStrategyConfig } from '../jobgraph/types';
import { priorityClassOf } from '../jobgraph/priority';
import { isActiveJobStatus, isTerminalJobStatus, isTerminalTaskState, TerminalJobStatus } from '../jobgraph/status';
import { Clock, systemClock, TimerHandle } from '../util/clock';
import { EventLogger, silentLogger } from '../util/logger';
import { NotLeaderError } from '../http/errors';
import { DeployRefusedError, type EvictionCause, type JobTaskListener, type TaskExecutionService } from '../resources/resource-manager';
import type { ExecutionId, TaskReport } from '../taskmanager/protocol';
import { createRestartStrategy, describeStrategy, RestartStrategy } from './restart-strategy';
import { JobProgress, PROGRESS_FORMAT_VERSION, ProgressStore } from '../store/progress-store';
import { ZnodeTooLargeError } from '../store/bounded-write';
import { ZkError } from '../zk/errors';
import { ExecutionGraph, ExecutionVertex } from './execution-graph';
import type { ExceptionEntry, JobDetails, JobMaster, JobMasterContext, JobStatus } from './types';

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
  /** The default priority class's priority (`scheduler.default-priority-class`), for a graph that names none; default 0. */
  defaultPriority?: number;
  /** `scheduler.priority-classes`, to name the job's class in its details. */
  priorityClasses?: Readonly<Record<string, number>>;
}

/** Characters kept of a failure's stack trace, and of its task names and location. */
const MAX_STACKTRACE_LENGTH = 4000;
const MAX_TASK_NAME_LENGTH = 1000;

/** ZooKeeper and leadership errors pass (a retry or the next term can succeed); anything else is deterministic. */
function isRetryable(err: unknown): boolean {
  return err instanceof ZkError || err instanceof NotLeaderError;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Where the JobMaster is in its term: loading progress (a recovered job), running (loaded; the job
 * status says how far), or suspended (leadership lost: acts on nothing any more).
 */
type Phase = 'loading' | 'running' | 'suspended';

export class SchedulingJobMaster implements JobMaster, JobTaskListener {
  private readonly graph: ExecutionGraph;
  private phase: Phase = 'loading';
  private readonly ctx: JobMasterContext;
  private readonly executor: TaskExecutionService;
  private readonly store: ProgressStore;
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private readonly timers = new Set<TimerHandle>();
  private readonly maxExceptions: number;
  private exceptionHistory: ExceptionEntry[] = [];
  private strategy: RestartStrategy;
  private restarts = 0;
  private endTime = -1;
  private failure: { message: string; timestamp: number } | undefined;
  private ready: Promise<void> | null = null;
  private unsubscribe: Array<() => void> = [];
  private inflightDeploys = 0;
  private deployLandedWhileStopping = false;
  private stopping: Promise<void> | null = null;
  /** While recovering: until when (monotonic ms) TaskManagers may still report tasks an earlier term handed out. */
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
    this.graph = new ExecutionGraph(this.ctx.graph, { submittedAt: this.ctx.submittedAt, now: () => this.clock.now(), logger: this.logger });
    // Announced before start(): the leader may publish itself (and hear TaskManagers) while this
    // recovered job still waits its turn to start; its tasks' reports are kept for it meanwhile.
    if (this.ctx.recovered) this.unsubscribe.push(this.executor.expectJob(this.jobId));
  }

  get jobId(): string { return this.ctx.graph.jobId; }
  get status(): JobStatus { return this.graph.status; }
  private get suspended(): boolean { return this.phase === 'suspended'; }
  /** Not active (ending, ended, suspended): schedules, adopts and restarts nothing. */
  private get active(): boolean { return isActiveJobStatus(this.graph.status); }
  private get restartConfig(): RestartStrategyConfig { return this.ctx.graph.restartStrategy ?? this.options.defaultRestartStrategy; }
  /** Higher is placed first and may preempt lower (docs/ARCHITECTURE.md, "Priorities, reserved slots, preemption and drain"). */
  get priority(): number { return this.ctx.graph.priority ?? this.options.defaultPriority ?? 0; }
  private get priorityClass(): string | null { return this.options.priorityClasses ? priorityClassOf(this.priority, this.options.priorityClasses) : null; }

  // ---- lifecycle ------------------------------------------------------------------------------

  start(): Promise<void> {
    if (this.ready) return this.ready;
    if (this.suspended) return Promise.resolve();
    this.unsubscribe.push(this.executor.registerJob(this.jobId, this));
    this.unsubscribe.push(this.executor.onResourcesChanged(() => this.schedule()));
    this.ready = this.load();
    return this.ready;
  }

  private async load(): Promise<void> {
    let progress: JobProgress | null = null;
    let unreadable: Error | null = null;
    if (this.ctx.recovered) {
      for (let attempt = 0; !this.suspended; attempt++) {
        try {
          progress = await this.store.load();
          break;
        } catch (err) {
          if (!isRetryable(err)) {
            // Reading again cannot help (a bug or odd content the store could not handle): fail this
            // job with the reason instead of holding the leader's recovery hostage.
            this.logger.error('job.progress.unreadable', { error: err as Error });
            unreadable = err as Error;
            break;
          }
          this.logger.warn('job.progress.load-failed', { attempt, error: err as Error });
          // Not a tracked timer: suspend() must not leave `ready` pending forever.
          await new Promise<void>((resolve) => this.clock.setTimeout(resolve, Math.min(2000, 200 * 2 ** attempt)));
        }
      }
    }
    if (this.suspended) return;
    if (progress) this.applyProgress(progress);
    this.phase = 'running';
    if (this.status !== 'INITIALIZING') {
      // Canceled while loading (e.g. a recovered job whose cancel was recorded): its tasks from the
      // earlier term are stopped, not adopted, and their deaths are no failures (the job is not active).
      // TaskManagers get the reconcile window to re-register, so CANCELED means their processes are gone.
      if (this.ctx.recovered) this.reconcileDeadline = this.clock.monotonicNow() + this.options.reconcileTimeoutMs;
      return;
    }
    if (unreadable) {
      this.transition('CREATED');
      this.recordException({ timestamp: this.clock.now(), exceptionName: 'JobStateNotReadable', stacktrace: unreadable.message });
      this.failJob(`the job's stored progress cannot be read: ${unreadable.message}`);
      return;
    }
    if (this.ctx.recovered) {
      this.transition('RECONCILING');
      const waiting = this.graph.allExecutions().filter((s) => s.unaccounted).length;
      // Per-job recovery lines are debug: the Dispatcher logs one `recovery.completed` for all jobs.
      this.logger.debug('job.reconciling', { inFlight: waiting, reconcileTimeoutMs: this.options.reconcileTimeoutMs,
        finishedSubtasks: this.graph.allExecutions().filter((s) => s.finished).length });
      if (waiting === 0) this.endReconciliation();
      else {
        this.reconcileDeadline = this.clock.monotonicNow() + this.options.reconcileTimeoutMs;
        this.after(this.options.reconcileTimeoutMs, () => this.endReconciliation());
      }
    } else {
      this.transition('CREATED');
      this.transition('RUNNING');
      this.schedule();
    }
  }

  private applyProgress(p: JobProgress): void {
    this.graph.restore(p.vertices);
    this.restarts = Number(p.restarts) || 0;
    this.exceptionHistory = Array.isArray(p.exceptions) ? p.exceptions.slice(-this.maxExceptions) : [];
    if (p.restart) this.strategy = createRestartStrategy(this.restartConfig, p.restart);
  }

  private endReconciliation(): void {
    if (this.status !== 'RECONCILING' || this.suspended) return;
    const missing = this.graph.allExecutions().filter((s) => s.unaccounted);
    if (missing.length > 0) {
      const names = missing.map((s) => this.graph.taskName(s));
      this.recordException({
        timestamp: this.clock.now(), exceptionName: 'TaskNotReconciled',
        stacktrace: `no TaskManager reported ${names.join(', ')} within jobmanager.reconcile-timeout (${this.options.reconcileTimeoutMs} ms) after the leader change; running them again as new attempts`,
        taskName: names.join(', '),
      });
      for (const s of missing) this.graph.startNewAttempt(s);
      this.persistInBackground();
    }
    this.logger[missing.length > 0 ? 'info' : 'debug']('job.reconciled', { adopted: this.graph.allExecutions().filter((s) => s.state === 'RUNNING' || s.state === 'DEPLOYING').length, redeploy: missing.length });
    this.transition(this.graph.allExecutions().some((s) => s.waitingRestart) ? 'RESTARTING' : 'RUNNING');
    this.schedule();
  }

  cancel(): void {
    if (isTerminalJobStatus(this.status) || this.status === 'CANCELLING' || this.status === 'FAILING' || this.suspended) return;
    this.transition('CANCELLING');
    void this.stopAllTasks().then(() => this.finish('CANCELED'));
  }

  async suspend(): Promise<void> {
    if (this.suspended) return;
    this.phase = 'suspended';
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    if (!isTerminalJobStatus(this.status)) this.transition('SUSPENDED');
  }

  // ---- scheduling -----------------------------------------------------------------------------

  private schedule(): void {
    if (this.phase !== 'running' || (this.status !== 'RUNNING' && this.status !== 'RESTARTING')) return;
    if (this.graph.isFinished()) {
      this.finish('FINISHED');
      return;
    }
    for (const s of this.graph.schedulable()) {
      const tm = this.executor.allocate(this.graph.executionId(s), this.priority);
      if (tm === null) return; // wait for a slot: resources-changed calls schedule() again
      s.taskManager = tm;
      this.graph.setTaskState(s, 'SCHEDULED');
      void this.deploy(s, tm);
    }
  }

  private async deploy(s: ExecutionVertex, tm: string): Promise<void> {
    const attempt = s.attempt;
    const id = this.graph.executionId(s);
    this.inflightDeploys++;
    try {
      s.deployed = true;
      await this.persist(); // the attempt is durable before it can run anywhere
      if (this.suspended) return;
      if (s.attempt !== attempt || s.state !== 'SCHEDULED' || !this.active) {
        this.executor.release(tm, id);
        return;
      }
      this.graph.setTaskState(s, 'DEPLOYING');
      s.startTime = this.clock.now();
      const spec = s.jobVertex.spec;
      await this.executor.deploy(tm, { ...id, parallelism: spec.parallelism, task: spec.task });
      if (this.stopping) this.deployLandedWhileStopping = true;
    } catch (err) {
      if (this.suspended || !this.termActive()) return;
      if (s.attempt === attempt && (s.state === 'SCHEDULED' || s.state === 'DEPLOYING')) {
        this.executor.release(tm, id);
        if (err instanceof DeployRefusedError) this.placeAgain(s, tm, err.message);
        else {
          this.handleFailure([s], `deploying ${this.graph.taskName(s)} to TaskManager ${this.executor.describe(tm)} failed: ${(err as Error).message}`,
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
  private placeAgain(s: ExecutionVertex, tm: string, reason: string): void {
    this.logger.info('task.deploy.refused', { vertexId: s.jobVertex.spec.id, subtask: s.subtaskIndex, attempt: s.attempt, taskManagerId: tm, reason });
    this.graph.startNewAttempt(s);
    this.persistInBackground();
    this.schedule();
  }

  // ---- reports from TaskManagers (through the ResourceManager) ---------------------------------

  /** True while schedule() would ask for this execution's slot again (see JobTaskListener.wantsSlot). */
  wantsSlot(id: ExecutionId): boolean {
    if (this.phase !== 'running' || (this.status !== 'RUNNING' && this.status !== 'RESTARTING')) return false;
    const s = this.graph.execution(id);
    return !!s && id.attempt === s.attempt && s.state === 'CREATED' && !s.waitingRestart && !s.finished;
  }

  owns(id: ExecutionId): boolean {
    if (this.phase === 'loading') return true; // not known yet: never kill what recovery may adopt
    const s = this.graph.execution(id);
    return !!s && this.active && !s.finished && id.attempt === s.attempt;
  }

  async onReport(taskManagerId: string, r: TaskReport): Promise<'ok' | 'cancel'> {
    await this.ready;
    // A suspended JobMaster cannot note anything durably; answering 'ok' would let the TaskManager
    // forget a finished outcome no leader recorded, and the next term would run that subtask again.
    if (this.suspended) throw new NotLeaderError('the job was suspended (leadership lost); report again to the next leader');
    const s = this.graph.execution(r);
    const terminalReport = isTerminalTaskState(r.state);
    if (!s) return terminalReport ? 'ok' : 'cancel';
    if (r.attempt < s.attempt) return terminalReport ? 'ok' : 'cancel';
    if (r.attempt > s.attempt) {
      // Progress is written before every deploy, so this only happens after a lost write: trust the TaskManager.
      if (s.finished) return terminalReport ? 'ok' : 'cancel';
      this.logger.warn('task.attempt.ahead', { task: this.graph.taskName(s), known: s.attempt, reported: r.attempt, taskManagerId });
      s.attempt = r.attempt;
      s.deployed = true;
    }
    if (s.finished) return terminalReport ? 'ok' : 'cancel';
    s.unaccounted = false;
    if (!this.active) {
      // Ending (CANCELLING/FAILING) or ended: everything must stop.
      if (terminalReport && s.state !== 'FINISHED') this.graph.setTaskState(s, r.state === 'FINISHED' ? 'FINISHED' : 'CANCELED', r);
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
          this.graph.setTaskState(s, r.state, r);
        }
        this.checkReconciled();
        return 'ok';
      case 'FINISHED': {
        this.graph.markFinished(s, taskManagerId, r);
        await this.persist(); // durable before the TaskManager may forget the outcome
        this.checkReconciled();
        this.schedule();
        return 'ok';
      }
      case 'FAILED':
      case 'CANCELED': {
        if (s.waitingRestart) return 'ok';
        const how = r.state === 'FAILED' ? `failed: ${r.error ?? 'no reason given'}` : 'was canceled by its TaskManager (orphaned or shutting down)';
        this.handleFailure([s], `task ${this.graph.taskName(s)} attempt ${r.attempt} on TaskManager ${this.executor.describe(taskManagerId)} ${how}`,
          { exceptionName: r.state === 'FAILED' ? 'TaskFailure' : 'TaskCanceled', location: this.executor.describe(taskManagerId) });
        await this.persist().catch(() => undefined);
        this.checkReconciled();
        return 'ok';
      }
    }
  }

  /**
   * The ResourceManager takes the slot of an attempt away (preempted by a higher-priority job, or its
   * TaskManager drained past the deadline): the attempt is CANCELED and the subtask goes back in line
   * as a new attempt. No failure: nothing is recorded against the restart strategy. The slot is not
   * released here; the ResourceManager frees it once the TaskManager stopped the old attempt.
   */
  onEvicted(taskManagerId: string, id: ExecutionId, cause: EvictionCause): boolean {
    if (this.suspended || !this.active || this.status === 'RECONCILING') return false;
    const s = this.graph.execution(id);
    if (!s || s.finished || s.waitingRestart || s.attempt !== id.attempt || s.taskManager !== taskManagerId) return false;
    if (s.state !== 'RUNNING' && s.state !== 'DEPLOYING' && s.state !== 'SCHEDULED') return false;
    this.logger.info(cause.reason === 'preempted' ? 'task.preempted' : 'task.evicted', {
      vertexId: s.jobVertex.spec.id, subtask: s.subtaskIndex, attempt: s.attempt, taskManagerId, priority: this.priority,
      ...(cause.reason === 'preempted' ? { preemptedBy: cause.byJobId, preemptedByPriority: cause.byPriority } : { reason: 'drain deadline passed', deadlineAt: cause.deadlineAt }),
    });
    this.graph.setTaskState(s, 'CANCELED');
    this.graph.startNewAttempt(s);
    this.persistInBackground();
    // Not now: this runs inside the ResourceManager's allocation for another job.
    queueMicrotask(() => this.schedule());
    return true;
  }

  onTaskManagerLost(taskManagerId: string, ids: ExecutionId[], cause: string): void {
    if (this.suspended || !this.active) return;
    const affected = ids.map((id) => this.graph.execution(id))
      .filter((s): s is ExecutionVertex => !!s && !s.finished && !s.waitingRestart && s.taskManager === taskManagerId
        && ids.some((i) => i.attempt === s.attempt && i.vertexId === s.jobVertex.spec.id && i.subtask === s.subtaskIndex));
    if (affected.length === 0) return;
    this.handleFailure(affected, `${cause}; tasks lost with it: ${affected.map((s) => `${this.graph.taskName(s)} attempt ${s.attempt}`).join(', ')}`,
      { exceptionName: 'TaskManagerLost', location: this.executor.describe(taskManagerId) });
  }

  private checkReconciled(): void {
    if (this.status === 'RECONCILING' && !this.graph.allExecutions().some((s) => s.unaccounted)) this.endReconciliation();
  }

  // ---- failures -------------------------------------------------------------------------------

  private handleFailure(failed: ExecutionVertex[], cause: string, meta: { exceptionName: string; location?: string }): void {
    if (this.suspended || !this.active) return;
    const now = this.clock.now();
    this.recordException({ timestamp: now, exceptionName: meta.exceptionName, stacktrace: cause, taskName: failed.map((s) => this.graph.taskName(s)).join(', '), location: meta.location });
    for (const s of failed) {
      if (s.taskManager) this.executor.release(s.taskManager, this.graph.executionId(s));
      s.unaccounted = false;
      this.graph.setTaskState(s, 'FAILED');
    }
    const decision = this.strategy.onFailure(now);
    if (!decision.restart) {
      this.logger.warn('job.restart.exhausted', { cause, reason: decision.reason, restarts: this.restarts });
      this.failJob(`${cause} — not restarted: ${decision.reason}`);
      return;
    }
    this.restarts++;
    for (const s of failed) this.graph.awaitRestart(s); // a late report of the failed attempt is now stale and gets canceled
    this.logger.info('job.restart.scheduled', { delayMs: decision.delayMs, restarts: this.restarts, strategy: describeStrategy(this.restartConfig), tasks: failed.length });
    if (this.status === 'RUNNING') this.transition('RESTARTING');
    this.persistInBackground();
    this.after(decision.delayMs, () => {
      if (this.suspended || !this.active) return;
      for (const s of failed) this.graph.endRestartWait(s);
      if (this.status === 'RESTARTING' && !this.graph.allExecutions().some((s) => s.waitingRestart)) this.transition('RUNNING');
      this.schedule();
    });
  }

  /**
   * The job's state cannot be stored (deterministic: retrying the same write fails the same way). Its
   * tasks must not run on unrecorded progress, and a leader must never stall on it: the job FAILS with
   * the reason, and the Dispatcher records the result.
   */
  private failUnstorable(err: Error): void {
    this.logger.error('job.progress.unstorable', { error: err });
    if (!this.active || this.suspended) return;
    this.recordException({ timestamp: this.clock.now(), exceptionName: 'JobStateNotStorable', stacktrace: err.message });
    this.failJob(`the job's state cannot be stored in ZooKeeper: ${err.message}`);
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
      while (!this.suspended && this.graph.allExecutions().some((s) => s.unaccounted) && this.clock.monotonicNow() < this.reconcileDeadline) {
        await new Promise<void>((resolve) => this.after(50, resolve));
      }
      for (const s of this.graph.allExecutions()) {
        if (!s.finished && (s.state === 'RUNNING' || s.state === 'DEPLOYING' || s.state === 'SCHEDULED')) this.graph.setTaskState(s, 'CANCELING');
      }
      for (let round = 0; round < 5 && !this.suspended; round++) {
        this.deployLandedWhileStopping = false;
        await this.executor.cancelJob(this.jobId);
        while (this.inflightDeploys > 0 && !this.suspended) await new Promise<void>((resolve) => setTimeout(resolve, 20));
        if (!this.deployLandedWhileStopping) break;
      }
      for (const s of this.graph.allExecutions()) {
        // FINISHED here: its TaskManager reported it finished while the job was ending; that stays.
        if (!s.finished && s.state !== 'FAILED' && s.state !== 'CREATED' && s.state !== 'FINISHED') this.graph.setTaskState(s, 'CANCELED');
      }
    })();
    return this.stopping;
  }

  /** Reports the terminal status once: a second call (or one after suspend, or an illegal one) does nothing. */
  private finish(status: TerminalJobStatus): void {
    if (this.suspended || isTerminalJobStatus(this.status)) return;
    const endTime = this.clock.now();
    if (!this.transition(status)) return;
    this.endTime = endTime;
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
      } catch (err) {
        if (err instanceof ZnodeTooLargeError) this.failUnstorable(err);
        throw err;
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
    return {
      formatVersion: PROGRESS_FORMAT_VERSION, jobId: this.jobId, epoch: this.ctx.term.epoch, updatedAt: this.clock.now(),
      vertices: this.graph.snapshot(), restarts: this.restarts, restart: this.strategy.snapshot(), exceptions: this.exceptionHistory,
    };
  }

  // ---- helpers --------------------------------------------------------------------------------

  /** Moves the job through the ExecutionGraph's transition table and logs `job.status`; false when not applied. */
  private transition(status: JobStatus): boolean {
    const previous = this.graph.transition(status);
    if (previous === null) return false;
    // Recovery (into and out of RECONCILING without trouble) and suspension happen to every job at once: debug.
    // So does a new job's CREATED: the Dispatcher's `job.submitted` line says it, and RUNNING follows at once.
    const routine = status === 'RECONCILING' || status === 'SUSPENDED' || (previous === 'RECONCILING' && status === 'RUNNING')
      || (previous === 'INITIALIZING' && status === 'CREATED');
    const level = status === 'FAILED' || status === 'FAILING' ? 'warn' : routine ? 'debug' : 'info';
    this.logger[level]('job.status', { status, previous, restarts: this.restarts, ...(status === 'FAILED' ? { failure: this.failure?.message } : {}) });
    return true;
  }

  private recordException(entry: ExceptionEntry): void {
    // Bounded fields: a lost TaskManager's entry names every task it took with it.
    const bounded: ExceptionEntry = { ...entry, stacktrace: clip(entry.stacktrace, MAX_STACKTRACE_LENGTH) };
    if (entry.taskName !== undefined) bounded.taskName = clip(entry.taskName, MAX_TASK_NAME_LENGTH);
    if (entry.location !== undefined) bounded.location = clip(entry.location, MAX_TASK_NAME_LENGTH);
    this.exceptionHistory.push(bounded);
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

  // ---- views ----------------------------------------------------------------------------------

  details(): JobDetails {
    const now = this.clock.now();
    const start = this.ctx.submittedAt;
    return {
      jid: this.jobId, name: this.ctx.graph.name, state: this.status,
      'start-time': start, 'end-time': this.endTime, duration: (this.endTime >= 0 ? this.endTime : now) - start, now,
      timestamps: this.graph.timestamps, vertices: this.graph.vertexDetails(now), restarts: this.restarts,
      attempt: this.graph.maxAttempt(), priority: this.priority,
      ...(this.priorityClass ? { priorityClass: this.priorityClass } : {}),
    };
  }

  exceptions(): ExceptionEntry[] {
    return [...this.exceptionHistory];
  }
}
