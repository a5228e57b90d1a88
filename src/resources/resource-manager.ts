/**
 * The ResourceManager of one leader term: the TaskManager registry, heartbeat supervision, slot
 * accounting, and the only path by which JobMasters talk to TaskManagers (every command carries the
 * term's epoch). It lives exactly as long as the term; a new term starts with an empty registry that
 * fills as TaskManagers re-register and report the tasks they still run.
 */
import { EventEmitter } from 'node:events';
import { EventLogger, silentLogger } from '../util/logger';
import { Clock, systemClock, TimerHandle } from '../util/clock';
import type { DispatcherMetrics } from '../metrics/metrics';
import {
  DeployRequest, executionKey, ExecutionId, HeartbeatRequest, HeartbeatResponse, parseExecutionKey, RegistrationRequest,
  RegistrationResponse, StatusRequest, StatusResponse, TaskReport, TERMINAL_REPORTED,
} from '../taskmanager/protocol';
import { errorText, rpcCall, RpcCallOptions, RpcError } from '../taskmanager/rpc';
import type { ClientTls } from '../http/client';
import { HttpError } from '../http/errors';
import { StallFence } from '../util/stall-fence';
import { AllocationStrategy, spreadStrategy, TaskManagerLoad } from './allocation';
import { KeptReport, PendingReports } from './pending-reports';

/** How a JobMaster hears about its tasks. */
export interface JobTaskListener {
  /**
   * A TaskManager's report about one of the job's tasks. Resolves once the report is durably noted
   * (so the TaskManager may forget a terminal outcome); 'cancel' when the job does not own that
   * execution (an older attempt, a job that is ending).
   */
  onReport(taskManagerId: string, report: TaskReport): Promise<'ok' | 'cancel'>;
  /** Whether the job still wants this execution to run. */
  owns(id: ExecutionId): boolean;
  /** The TaskManager stopped heartbeating: these executions of the job are gone with it. */
  onTaskManagerLost(taskManagerId: string, tasks: ExecutionId[], cause: string): void;
}

/**
 * The TaskManager answered that it did not run the deploy: it just resumed from a stall, is shutting
 * down, or has seen a newer leader. Nothing runs, so this is no task failure: the work is placed
 * again without counting against the job's restart strategy.
 */
export class DeployRefusedError extends Error {
  override readonly name = 'DeployRefusedError';
}

/** What a JobMaster needs from the resource side (the ResourceManager, or a fake in unit tests). */
export interface TaskExecutionService {
  readonly epoch: number;
  /**
   * Registers the job's listener; reports kept for it while it was expected are delivered to it
   * (asynchronously, oldest first).
   */
  registerJob(jobId: string, listener: JobTaskListener): () => void;
  /**
   * A recovered job whose JobMaster will register later: until it does (or the returned function is
   * called), its TaskManagers' reports are kept for it instead of answered "cancel".
   */
  expectJob(jobId: string): () => void;
  /** Reserves a slot for the execution on the TaskManager the strategy picks; null when none is free. */
  allocate(id: ExecutionId): string | null;
  release(taskManagerId: string, id: ExecutionId): void;
  /** Rejects with DeployRefusedError when the TaskManager answered that it ran nothing. */
  deploy(taskManagerId: string, request: Omit<DeployRequest, 'epoch'>): Promise<void>;
  /** Resolves once the TaskManager has stopped the execution (its processes are gone). */
  cancel(taskManagerId: string, id: ExecutionId): Promise<void>;
  /** Cancels every execution of the job on every registered TaskManager. */
  cancelJob(jobId: string): Promise<void>;
  /** "id (address)", for messages. */
  describe(taskManagerId: string): string;
  onResourcesChanged(listener: () => void): () => void;
}

export interface ResourceManagerOptions {
  epoch: number;
  heartbeatTimeoutMs: number;
  strategy?: AllocationStrategy;
  /** False once the term is over: commands are no longer sent. */
  isActive?: () => boolean;
  logger?: EventLogger;
  metrics?: DispatcherMetrics;
  clock?: Clock;
  /** How long a cancel may take on the TaskManager (its kill grace plus margin). */
  cancelTimeoutMs?: number;
  /** security.internal.token, sent with every command to a TaskManager. */
  internalToken?: string;
  /**
   * A TaskManager holds a leader epoch at or above this term's (it refused a command for it, or
   * registered with it): this term can never command it, so the owner takes a term above `reported`.
   */
  onEpochBehind?: (reported: number) => void;
  /** security.ssl.internal.*: the cluster CA and this replica's certificate, for https TaskManagers. */
  internalTls?: ClientTls;
}

type SlotState = 'RESERVED' | TaskReport['state'];

/** A registered TaskManager as the leader sees it. Times are epoch-ms; `timeSinceLastHeartbeat` is an age in ms. */
export interface TaskManagerView {
  id: string;
  host: string;
  /** Base URL of its RPC server. */
  address: string;
  slotsNumber: number;
  freeSlots: number;
  registeredAt: number;
  lastHeartbeat: number;
  timeSinceLastHeartbeat: number;
  recentTaskMs: number | null;
  tasks: Array<ExecutionId & { state: SlotState }>;
}

interface TaskManagerRecord {
  id: string;
  instanceId?: string;
  host: string;
  address: string;
  slots: number;
  /** Epoch-ms, for people. */
  registeredAt: number;
  /** Epoch-ms of the last sign of life, for people. */
  lastHeartbeat: number;
  /** Monotonic ms of the last sign of life, or of this leader's resume after a stall: the heartbeat deadline runs from it. */
  heardAt: number;
  /** Executions holding a slot: reserved for a deploy, deploying or running. */
  tasks: Map<string, { id: ExecutionId; state: SlotState; since: number }>;
  recentTaskMs: number | null;
  /**
   * When a command to it last failed in transport (refused, reset, timed out). Until it is heard from
   * again it gets no new work: a crashed TaskManager stays registered until heartbeat.timeout, and
   * every restart placed on it in the meantime would fail again and burn the job's restart budget.
   */
  unreachableSince: number | null;
}

/** A gap this long in the leader's own supervision loop is a stall of the leader, not silence of TaskManagers. */
function stallThresholdMs(heartbeatTimeoutMs: number): number {
  return Math.max(500, Math.min(3000, Math.floor(heartbeatTimeoutMs / 3)));
}

/** Where each recent execution ran, for log reads after it finished. */
const PLACEMENT_MEMORY = 20_000;

export class ResourceManager implements TaskExecutionService {
  readonly epoch: number;
  private readonly tms = new Map<string, TaskManagerRecord>();
  private readonly jobs = new Map<string, JobTaskListener>();
  /** Reports of recovering jobs whose JobMaster has not registered yet (bounded; see pending-reports.ts). */
  private readonly pendingReports = new PendingReports(undefined, ({ taskManagerId, report }, reason) =>
    this.logger.warn('task.report.dropped', { jobId: report.jobId, taskManagerId, execution: executionKey(report), reason }));
  private readonly placements = new Map<string, string>();
  private readonly events = new EventEmitter();
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private readonly strategy: AllocationStrategy;
  private timer: TimerHandle | null = null;
  private stopped = false;
  private epochBehind = false;
  /** Notices this process standing still; heartbeat deadlines then restart from the resume. */
  private readonly stallFence: StallFence;

  constructor(private readonly options: ResourceManagerOptions) {
    this.epoch = options.epoch;
    this.logger = (options.logger ?? silentLogger).child({ epoch: options.epoch, component: 'resourcemanager' });
    this.clock = options.clock ?? systemClock;
    this.strategy = options.strategy ?? spreadStrategy;
    this.events.setMaxListeners(0);
    this.stallFence = new StallFence({
      thresholdMs: stallThresholdMs(options.heartbeatTimeoutMs), fenceMs: 0, clock: this.clock,
      onStall: (gapMs) => this.forgiveSilence(gapMs),
    });
  }

  get active(): boolean {
    return !this.stopped && (this.options.isActive?.() ?? true);
  }

  start(): void {
    const period = Math.max(50, Math.min(1000, Math.floor(this.options.heartbeatTimeoutMs / 4)));
    const loop = (): void => {
      if (this.stopped) return;
      this.checkHeartbeats();
      this.timer = this.clock.setTimeout(loop, period);
      this.timer.unref?.();
    };
    this.timer = this.clock.setTimeout(loop, period);
    this.timer.unref?.();
    this.stallFence.start();
    this.updateGauges();
  }

  /** The term is over: no more commands, no more supervision. TaskManagers re-register with the next leader. */
  stop(): void {
    this.stopped = true;
    this.stallFence.stop();
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.jobs.clear();
    this.pendingReports.clear();
  }

  // ---- JobMaster side --------------------------------------------------------------------------

  registerJob(jobId: string, listener: JobTaskListener): () => void {
    this.jobs.set(jobId, listener);
    const kept = this.pendingReports.take(jobId);
    // After the caller's registration has returned: the listener may not be set up to answer yet.
    if (kept.length > 0) void Promise.resolve().then(() => this.deliverKept(listener, kept));
    return () => {
      if (this.jobs.get(jobId) === listener) this.jobs.delete(jobId);
    };
  }

  expectJob(jobId: string): () => void {
    if (this.jobs.has(jobId) || this.stopped) return () => undefined;
    return this.pendingReports.expect(jobId);
  }

  /**
   * Hands a newly registered JobMaster the reports kept while it recovered. A running task is offered
   * only while its TaskManager still holds it (a lost one's tasks are gone); a 'cancel' verdict is sent
   * to the TaskManager. Terminal outcomes are not acknowledged here: the TaskManager sends them again.
   */
  private async deliverKept(listener: JobTaskListener, kept: KeptReport[]): Promise<void> {
    await Promise.all(kept.map(async ({ taskManagerId, report }) => {
      const terminal = TERMINAL_REPORTED.has(report.state);
      if (!terminal && !this.tms.get(taskManagerId)?.tasks.has(executionKey(report))) return;
      try {
        const verdict = await listener.onReport(taskManagerId, report);
        if (verdict === 'cancel' && !terminal && this.active) await this.cancel(taskManagerId, report);
      } catch (err) {
        this.logger.debug('task.report.kept.undelivered', { jobId: report.jobId, taskManagerId, error: err as Error });
      }
    }));
  }

  onResourcesChanged(listener: () => void): () => void {
    this.events.on('changed', listener);
    return () => this.events.off('changed', listener);
  }

  allocate(id: ExecutionId): string | null {
    if (!this.active) return null;
    const candidates: TaskManagerLoad[] = [...this.tms.values()]
      .filter((tm) => tm.tasks.size < tm.slots && (tm.unreachableSince === null || tm.heardAt > tm.unreachableSince))
      .map((tm) => ({ id: tm.id, slots: tm.slots, used: tm.tasks.size, recentTaskMs: tm.recentTaskMs, registeredAt: tm.registeredAt }));
    if (candidates.length === 0) return null;
    const chosen = this.tms.get(this.strategy.select(candidates))!;
    const key = executionKey(id);
    chosen.tasks.set(key, { id, state: 'RESERVED', since: this.clock.now() });
    this.placements.set(key, chosen.id);
    this.trimPlacements();
    this.updateGauges();
    return chosen.id;
  }

  release(taskManagerId: string, id: ExecutionId): void {
    const tm = this.tms.get(taskManagerId);
    if (tm?.tasks.delete(executionKey(id))) this.changed();
  }

  async deploy(taskManagerId: string, request: Omit<DeployRequest, 'epoch'>): Promise<void> {
    const tm = this.requireActive(taskManagerId);
    let res;
    try {
      res = await rpcCall('POST', `${tm.address}/deploy`, { ...request, epoch: this.epoch }, { token: this.options.internalToken, tls: this.options.internalTls });
    } catch (err) {
      if (err instanceof RpcError) {
        tm.unreachableSince = this.clock.monotonicNow();
        this.logger.warn('taskmanager.unreachable', { taskManagerId: tm.id, address: tm.address, error: err.message });
      }
      throw err;
    }
    if (res.status === 409) this.checkEpochBehind(res.body);
    if (res.status === 503 || res.status === 409) {
      // No new work for it until it heartbeats again (the stall fence lasts about a second).
      tm.unreachableSince = this.clock.monotonicNow();
      throw new DeployRefusedError(`TaskManager ${this.describe(taskManagerId)} refused the deploy without running it: ${errorText(res)}`);
    }
    if (res.status !== 200) throw new Error(`TaskManager ${this.describe(taskManagerId)} refused the deploy: ${errorText(res)}`);
    const slot = tm.tasks.get(executionKey(request));
    if (slot?.state === 'RESERVED') slot.state = 'DEPLOYING';
  }

  async cancel(taskManagerId: string, id: ExecutionId): Promise<void> {
    const tm = this.requireActive(taskManagerId);
    const res = await rpcCall('POST', `${tm.address}/cancel`, { epoch: this.epoch, ...id }, this.cancelCall());
    if (res.status === 409) this.checkEpochBehind(res.body);
    if (res.status !== 200) throw new Error(`TaskManager ${this.describe(taskManagerId)} refused the cancel: ${errorText(res)}`);
  }

  async cancelJob(jobId: string): Promise<void> {
    if (!this.active) return;
    await Promise.all([...this.tms.values()].map(async (tm) => {
      try {
        const res = await rpcCall('POST', `${tm.address}/cancel`, { epoch: this.epoch, jobId }, this.cancelCall());
        if (res.status === 409) this.checkEpochBehind(res.body);
        if (res.status !== 200) this.logger.warn('task.cancel.refused', { jobId, taskManagerId: tm.id, reason: errorText(res) });
      } catch (err) {
        this.logger.warn('task.cancel.failed', { jobId, taskManagerId: tm.id, error: err as Error });
      }
    }));
  }

  /** A 409 naming an epoch at or above ours: this term can never command that TaskManager. */
  private checkEpochBehind(body: unknown): void {
    const reported = (body as { epoch?: unknown } | null)?.epoch;
    if (typeof reported !== 'number' || !Number.isSafeInteger(reported) || reported <= this.epoch || !this.active || this.epochBehind) return;
    this.epochBehind = true; // once per term: the term is being given up
    this.logger.warn('resourcemanager.epoch.behind', { reported, reason: 'a TaskManager holds a leader epoch at or above this term\'s; taking a new term above it' });
    this.options.onEpochBehind?.(reported);
  }

  /**
   * This process stood still for `gapMs` (SIGSTOP, a frozen VM): nobody's heartbeat could be heard
   * meanwhile, so every deadline restarts from now instead of blaming healthy TaskManagers.
   */
  private forgiveSilence(gapMs: number): void {
    const now = this.clock.monotonicNow();
    for (const tm of this.tms.values()) tm.heardAt = Math.max(tm.heardAt, now);
    this.logger.warn('resourcemanager.stalled', { gapMs: Math.round(gapMs), taskManagers: this.tms.size, reason: 'this leader stood still; heartbeat deadlines restart from now' });
  }

  private cancelCall(): RpcCallOptions {
    return { timeoutMs: this.options.cancelTimeoutMs ?? 15_000, token: this.options.internalToken, tls: this.options.internalTls };
  }

  describe(taskManagerId: string): string {
    const tm = this.tms.get(taskManagerId);
    return tm ? `${tm.id} (${tm.address})` : taskManagerId;
  }

  private requireActive(taskManagerId: string): TaskManagerRecord {
    if (!this.active) throw new Error(`leader term ${this.epoch} is over; the command was not sent`);
    const tm = this.tms.get(taskManagerId);
    if (!tm) throw new Error(`TaskManager ${taskManagerId} is not registered`);
    return tm;
  }

  // ---- TaskManager side (internal RPC) -------------------------------------------------------

  /**
   * Registers (or re-registers) a TaskManager with its slots and tasks. Throws HttpError 409 `{epoch}`
   * when the TaskManager already holds an epoch at or above this term's (and asks for a term above it).
   */
  async register(req: RegistrationRequest): Promise<RegistrationResponse> {
    if (typeof req.highestEpoch === 'number' && req.highestEpoch > this.epoch) {
      this.checkEpochBehind({ epoch: req.highestEpoch });
      throw new HttpError(409, `TaskManager ${req.taskManagerId} holds leader epoch ${req.highestEpoch}, above this leader's ${this.epoch}; a new term above it is being taken, register again`,
        { extra: { epoch: this.epoch } });
    }
    const now = this.clock.now();
    const mono = this.clock.monotonicNow();
    const previous = this.tms.get(req.taskManagerId);
    if (previous && previous.address !== req.address) {
      // Same id, new process: whatever the old one ran is gone with it.
      this.lose(previous, `TaskManager ${previous.id} re-registered from a new address ${req.address}; its former process at ${previous.address} is gone`);
    } else if (previous && req.instanceId !== undefined && previous.instanceId !== req.instanceId) {
      this.lose(previous, `TaskManager ${previous.id} (${previous.address}) re-registered as a new process (restarted); its former process is gone`);
    }
    const tm: TaskManagerRecord = this.tms.get(req.taskManagerId) ?? {
      id: req.taskManagerId, instanceId: req.instanceId, host: req.host, address: req.address, slots: req.slots, registeredAt: now, lastHeartbeat: now, heardAt: mono, tasks: new Map(), recentTaskMs: null, unreachableSince: null,
    };
    tm.slots = req.slots;
    tm.host = req.host;
    tm.lastHeartbeat = now;
    tm.heardAt = mono;
    this.tms.set(tm.id, tm);
    const { acknowledged, cancel } = await this.applyReports(tm, req.tasks);
    this.logger.info('taskmanager.registered', {
      taskManagerId: tm.id, address: tm.address, slots: tm.slots, reported: req.tasks.length, running: tm.tasks.size, again: !!previous,
    });
    this.changed();
    return { epoch: this.epoch, acknowledged, cancel };
  }

  heartbeat(taskManagerId: string, req: HeartbeatRequest): HeartbeatResponse {
    const tm = this.tms.get(taskManagerId);
    if (!tm) throw new HttpError(404, `TaskManager ${taskManagerId} is not registered with leader epoch ${this.epoch}; register again`);
    this.heard(tm);
    if (tm.unreachableSince !== null) {
      // Heard from again: it takes new work, and jobs waiting for a slot should look now.
      tm.unreachableSince = null;
      this.changed();
    }
    const cancel: string[] = [];
    for (const key of Array.isArray(req.running) ? req.running : []) {
      const id = parseExecutionKey(String(key));
      if (!id) continue;
      const listener = this.jobs.get(id.jobId);
      if (listener ? !listener.owns(id) : !this.pendingReports.isExpected(id.jobId)) cancel.push(key);
    }
    return { epoch: this.epoch, cancel };
  }

  async status(req: StatusRequest): Promise<StatusResponse> {
    const tm = this.tms.get(req.taskManagerId);
    if (!tm) throw new HttpError(404, `TaskManager ${req.taskManagerId} is not registered with leader epoch ${this.epoch}; register again`);
    this.heard(tm);
    const result = await this.applyReports(tm, req.reports);
    this.changed();
    return result;
  }

  private async applyReports(tm: TaskManagerRecord, reports: TaskReport[]): Promise<StatusResponse> {
    const acknowledged: string[] = [];
    const cancel: string[] = [];
    await Promise.all(reports.map(async (report) => {
      const key = executionKey(report);
      const listener = this.jobs.get(report.jobId);
      this.placements.set(key, tm.id);
      const kept = !listener && this.pendingReports.isExpected(report.jobId);
      if (kept) this.pendingReports.keep(tm.id, report); // its recovering JobMaster gets it on registration
      if (TERMINAL_REPORTED.has(report.state)) {
        tm.tasks.delete(key);
        if (report.state === 'FINISHED' && report.endedAt && report.startedAt) {
          const ms = Math.max(0, report.endedAt - report.startedAt);
          tm.recentTaskMs = tm.recentTaskMs === null ? ms : 0.7 * tm.recentTaskMs + 0.3 * ms;
        }
        if (kept) return; // not noted yet: the TaskManager keeps the outcome and sends it again
        if (listener) await listener.onReport(tm.id, report);
        acknowledged.push(key);
        return;
      }
      tm.tasks.set(key, { id: report, state: report.state, since: this.clock.now() });
      const verdict = listener ? await listener.onReport(tm.id, report) : kept ? 'ok' : 'cancel';
      if (verdict === 'cancel') cancel.push(key);
    }));
    this.trimPlacements();
    return { acknowledged, cancel };
  }

  private heard(tm: TaskManagerRecord): void {
    tm.lastHeartbeat = this.clock.now();
    tm.heardAt = this.clock.monotonicNow();
  }

  /** Heartbeat deadlines on the monotonic clock: a wall-clock step neither loses nor keeps a TaskManager. */
  private checkHeartbeats(): void {
    this.stallFence.beat(); // a stall of our own restarts every deadline before any is judged
    const now = this.clock.monotonicNow();
    for (const tm of [...this.tms.values()]) {
      const silentMs = Math.round(now - tm.heardAt);
      if (silentMs > this.options.heartbeatTimeoutMs) {
        this.lose(tm, `TaskManager ${tm.id} (${tm.address}) lost: no heartbeat for ${silentMs} ms (heartbeat.timeout ${this.options.heartbeatTimeoutMs} ms)`);
        this.changed();
      }
    }
  }

  private lose(tm: TaskManagerRecord, cause: string): void {
    if (this.tms.get(tm.id) !== tm) return;
    this.tms.delete(tm.id);
    const byJob = new Map<string, ExecutionId[]>();
    for (const { id } of tm.tasks.values()) {
      const list = byJob.get(id.jobId) ?? [];
      list.push(id);
      byJob.set(id.jobId, list);
    }
    this.options.metrics?.taskManagersLost.inc();
    this.logger.warn('taskmanager.lost', { taskManagerId: tm.id, address: tm.address, cause, tasks: tm.tasks.size, jobIds: [...byJob.keys()] });
    for (const [jobId, ids] of byJob) {
      try {
        this.jobs.get(jobId)?.onTaskManagerLost(tm.id, ids, cause);
      } catch (err) {
        this.logger.error('taskmanager.lost.handler-failed', { jobId, error: err as Error });
      }
    }
  }

  private changed(): void {
    this.updateGauges();
    if (!this.stopped) this.events.emit('changed');
  }

  private updateGauges(): void {
    const m = this.options.metrics;
    if (!m || this.stopped) return;
    const o = this.overview();
    m.taskManagers.set(o.taskmanagers);
    m.slots.set(o['slots-total']);
    m.slotsAvailable.set(o['slots-available']);
  }

  private trimPlacements(): void {
    while (this.placements.size > PLACEMENT_MEMORY) this.placements.delete(this.placements.keys().next().value as string);
  }

  // ---- views (REST) --------------------------------------------------------------------------

  overview(): { taskmanagers: number; 'slots-total': number; 'slots-available': number } {
    let total = 0;
    let free = 0;
    for (const tm of this.tms.values()) {
      total += tm.slots;
      free += Math.max(0, tm.slots - tm.tasks.size);
    }
    return { taskmanagers: this.tms.size, 'slots-total': total, 'slots-available': free };
  }

  list(): TaskManagerView[] {
    return [...this.tms.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((tm) => this.view(tm));
  }

  get(id: string): TaskManagerView | null {
    const tm = this.tms.get(id);
    return tm ? this.view(tm) : null;
  }

  private view(tm: TaskManagerRecord): TaskManagerView {
    const now = this.clock.now();
    return {
      id: tm.id, host: tm.host, address: tm.address,
      slotsNumber: tm.slots, freeSlots: Math.max(0, tm.slots - tm.tasks.size),
      registeredAt: tm.registeredAt, lastHeartbeat: tm.lastHeartbeat, timeSinceLastHeartbeat: Math.round(this.clock.monotonicNow() - tm.heardAt),
      recentTaskMs: tm.recentTaskMs === null ? null : Math.round(tm.recentTaskMs),
      tasks: [...tm.tasks.values()].map(({ id, state }) => ({ ...id, state })),
    };
  }

  async taskLog(jobId: string, vertexId: string, subtask: number, attempt: number): Promise<string | null> {
    if (!Number.isInteger(subtask) || !Number.isInteger(attempt) || subtask < 0 || attempt < 0) return null;
    const key = executionKey({ jobId, vertexId, subtask, attempt });
    const first = this.placements.get(key);
    const order = [...this.tms.values()].sort((a) => (a.id === first ? -1 : 0));
    for (const tm of order) {
      try {
        const res = await rpcCall<string>('GET', `${tm.address}/logs/${encodeURIComponent(jobId)}/${encodeURIComponent(vertexId)}/${subtask}/${attempt}`,
          undefined, { token: this.options.internalToken, tls: this.options.internalTls });
        if (res.status === 200) return typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
      } catch (err) {
        this.logger.debug('task.log.unreachable', { taskManagerId: tm.id, error: err as Error });
      }
    }
    return null;
  }
}
