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
import { HttpError, NotFoundError, NotLeaderError } from '../http/errors';
import { StallFence } from '../util/stall-fence';
import { AllocationStrategy, spreadStrategy, TaskManagerLoad } from './allocation';
import {
  checkClaimedEpoch, checkReportedAttempts, checkReRegistration, IDENTITY_EVENTS, plausibleEpochClaim, TaskManagerCredential, taskManagerServerTls,
} from './taskmanager-identity';
import { SlotQueue, SlotRequest, SlotReservation } from './slot-queue';
import { chooseVictim, PreemptionCandidate } from './preemption';
import { DrainBook, DrainRecord, DrainRecords, drainOverdue } from './drain';
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
  /**
   * Whether the job still asks for a slot for this execution: it will call `allocate` for it again on
   * the next resources-changed event. A waiting request whose job says no here stops holding others
   * back (a job cancelling, failing or past that attempt never asks again). Absent: `owns`.
   */
  wantsSlot?(id: ExecutionId): boolean;
  /** The TaskManager stopped heartbeating: these executions of the job are gone with it. */
  onTaskManagerLost(taskManagerId: string, tasks: ExecutionId[], cause: string): void;
  /** The job's priority: higher is served first and may preempt lower (src/resources/slot-queue.ts). Absent: 0. */
  readonly priority?: number;
  /**
   * The ResourceManager takes this execution's slot away: preempted by a job of higher priority, or its
   * TaskManager is drained past the deadline. True when the job moved the subtask on to a new attempt
   * (not a failure: the restart strategy does not count it); the ResourceManager then stops the old
   * attempt and frees the slot itself. False when the job no longer runs that attempt.
   */
  onEvicted?(taskManagerId: string, id: ExecutionId, cause: EvictionCause): boolean;
}

/** Why a running execution was taken off its slot. */
export type EvictionCause =
  | { reason: 'preempted'; byJobId: string; byPriority: number }
  | { reason: 'drained'; deadlineAt: number };

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
  /**
   * Reserves a slot for the execution on the TaskManager the strategy picks. Null when it must wait: no
   * free slot, the free ones are reserved for higher priorities, or another job's request ranks ahead
   * (the request then waits in line; resources-changed says when to ask again). `priority` defaults to 0.
   */
  allocate(id: ExecutionId, priority?: number): string | null;
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
  /** resourcemanager.reserved-slots resolved against the priority classes. */
  reservations?: readonly SlotReservation[];
  /** scheduler.preemption.enabled. */
  preemption?: boolean;
  /** Where drains survive a failover (ZooKeeper); absent: kept in memory only. */
  drains?: DrainRecords;
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
  /** Drained: no new deploys; released once its tasks are done. (Optional for fakes: absent means false.) */
  blocked?: boolean;
  drain?: DrainRecord | null;
}

interface TaskManagerRecord {
  id: string;
  instanceId?: string;
  /** Fingerprint of the certificate it registered with (mutual TLS); a new address needs the same one. */
  fingerprint?: string;
  /** Client TLS for commands to it: the server at `address` must present a certificate naming `id` (mutual TLS). */
  tls?: ClientTls;
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
  /** Slot requests waiting for a slot, in service order. */
  private readonly queue: SlotQueue;
  /** Set when a request was turned down because another ranked ahead: the next grant wakes everyone again. */
  private deniedBehind = false;
  private wakePending = false;
  /** resources-changed events so far: waiting jobs ask again in each (slot-queue.ts askedBefore). */
  private wakeRound = 0;
  /** Victim execution key → the waiting request it makes room for (one victim per request at a time). */
  private readonly preempting = new Map<string, string>();
  /** Drained TaskManagers by id (also those not registered yet after a failover); nothing is placed before they are read. */
  private readonly drains: DrainBook;
  private readonly evicting = new Set<string>();

  constructor(private readonly options: ResourceManagerOptions) {
    this.epoch = options.epoch;
    this.logger = (options.logger ?? silentLogger).child({ epoch: options.epoch, component: 'resourcemanager' });
    this.clock = options.clock ?? systemClock;
    this.strategy = options.strategy ?? spreadStrategy;
    this.events.setMaxListeners(0);
    this.queue = new SlotQueue(options.reservations ?? []);
    this.drains = new DrainBook(options.drains, this.logger, (ms) => new Promise<void>((resolve) => this.clock.setTimeout(resolve, ms)));
    this.stallFence = new StallFence({
      thresholdMs: stallThresholdMs(options.heartbeatTimeoutMs), fenceMs: 0, clock: this.clock,
      onStall: (gapMs) => this.forgiveSilence(gapMs),
    });
  }

  get active(): boolean {
    return !this.stopped && (this.options.isActive?.() ?? true);
  }

  start(): void {
    const period = this.tickMs;
    const loop = (): void => {
      if (this.stopped) return;
      this.checkHeartbeats();
      this.checkDrains();
      this.rewakeWaiting();
      this.timer = this.clock.setTimeout(loop, period);
      this.timer.unref?.();
    };
    this.timer = this.clock.setTimeout(loop, period);
    this.timer.unref?.();
    this.stallFence.start();
    this.updateGauges();
    void this.drains.load(() => this.stopped, () => this.changed());
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
      if (this.jobs.get(jobId) !== listener) return;
      this.jobs.delete(jobId);
      // Its waiting requests no longer hold anyone back.
      if (this.queue.dropJob(jobId)) this.wakeSoon();
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

  allocate(id: ExecutionId, priority = 0): string | null {
    if (!this.active || !this.drains.loaded) return null;
    const key = executionKey(id);
    const candidates: TaskManagerLoad[] = [...this.tms.values()]
      .filter((tm) => tm.tasks.size < tm.slots && this.placeable(tm))
      .map((tm) => ({ id: tm.id, slots: tm.slots, used: tm.tasks.size, recentTaskMs: tm.recentTaskMs, registeredAt: tm.registeredAt }));
    const free = candidates.reduce((n, c) => n + c.slots - c.used, 0);
    const request: SlotRequest = { key, jobId: id.jobId, priority };
    const decision = this.queue.decide(request, free, (w) => this.stillWanted(w));
    if (decision !== 'take') {
      this.queue.wait(request, this.wakeRound);
      if (decision === 'behind') this.deniedBehind = true;
      else if (this.options.preemption) this.preemptFor(request);
      return null;
    }
    this.queue.served(key);
    // Someone was turned down for this one: once it is placed, the rest may find room again.
    if (this.deniedBehind) this.wakeSoon();
    const chosen = this.tms.get(this.strategy.select(candidates))!;
    chosen.tasks.set(key, { id, state: 'RESERVED', since: this.clock.now() });
    this.placements.set(key, chosen.id);
    this.trimPlacements();
    this.updateGauges();
    return chosen.id;
  }

  /** Takes new work: heard from since its last transport failure, and not drained. */
  private placeable(tm: TaskManagerRecord): boolean {
    return (tm.unreachableSince === null || tm.heardAt > tm.unreachableSince) && !this.drains.has(tm.id);
  }

  /** A waiting request still counts while its job is registered and still wants that attempt placed. */
  private stillWanted(w: SlotRequest): boolean {
    const listener = this.jobs.get(w.jobId);
    const id = parseExecutionKey(w.key);
    if (!listener || !id || !(listener.wantsSlot ? listener.wantsSlot(id) : listener.owns(id))) return false;
    // Every wake-up (resources-changed) makes each waiting job ask again: one that did not ask in this
    // round or the one before has moved on, and holds nobody back.
    return !this.queue.askedBefore(w, this.wakeRound - 1);
  }

  /** The supervision period (ms): a quarter of heartbeat.timeout, within 50..1000. */
  private get tickMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.options.heartbeatTimeoutMs / 4)));
  }

  /**
   * A request waits while a slot it could take is free: some wake-up was missed (a job that moved on
   * between events). Every waiting job asks again; one that no longer asks goes stale (stillWanted).
   */
  private rewakeWaiting(): void {
    if (this.queue.size === 0) return;
    const free = [...this.tms.values()].some((tm) => tm.tasks.size < tm.slots && this.placeable(tm));
    if (free) this.wakeSoon();
  }

  /** Emits resources-changed once the current call stack is done (coalesced): waiting jobs ask again. */
  private wakeSoon(): void {
    this.deniedBehind = false;
    if (this.wakePending) return;
    this.wakePending = true;
    queueMicrotask(() => {
      this.wakePending = false;
      this.changed();
    });
  }

  /**
   * `request` found no slot it may take: cancel one running subtask of strictly lower priority for it
   * (src/resources/preemption.ts), unless one is already being stopped for it. The victim's job moves
   * it to a new attempt (not counted against its restart strategy); the slot frees once the
   * TaskManager stopped it, and the waiting request, first in line, takes it.
   */
  private preemptFor(request: SlotRequest): void {
    for (const forKey of this.preempting.values()) if (forKey === request.key) return;
    const candidates: Array<PreemptionCandidate & { id: ExecutionId }> = [];
    for (const tm of this.tms.values()) {
      if (!this.placeable(tm)) continue; // its slots would not come back to the pool anyway
      for (const [key, slot] of tm.tasks) {
        const listener = this.jobs.get(slot.id.jobId);
        if (!listener || this.preempting.has(key)) continue;
        candidates.push({ taskManagerId: tm.id, key, jobId: slot.id.jobId, priority: listener.priority ?? 0, state: slot.state, since: slot.since, id: slot.id });
      }
    }
    const cause: EvictionCause = { reason: 'preempted', byJobId: request.jobId, byPriority: request.priority };
    let victim: (PreemptionCandidate & { id: ExecutionId }) | null;
    // A job may decline (e.g. still reconciling after a failover): the next candidate is asked.
    while ((victim = chooseVictim(candidates, request.priority) as (PreemptionCandidate & { id: ExecutionId }) | null)) {
      if (this.jobs.get(victim.jobId)?.onEvicted?.(victim.taskManagerId, victim.id, cause)) break;
      candidates.splice(candidates.indexOf(victim), 1);
    }
    if (!victim) return;
    // The victim's JobMaster logged `task.preempted` (with the job that takes the slot).
    this.preempting.set(victim.key, request.key);
    void this.stopEvicted(victim.taskManagerId, victim.id).finally(() => this.preempting.delete(victim.key));
  }

  /**
   * Stops an evicted attempt on its TaskManager; once it is gone its slot is free. A cancel that fails
   * leaves the slot taken: the TaskManager's report of the stopped attempt (or its loss) frees it.
   */
  private async stopEvicted(taskManagerId: string, id: ExecutionId): Promise<void> {
    const key = executionKey(id);
    try {
      await this.cancel(taskManagerId, id);
    } catch (err) {
      this.logger.warn('task.evict.cancel-failed', { ...id, taskManagerId, error: err as Error });
      return;
    }
    const tm = this.tms.get(taskManagerId);
    if (tm?.tasks.get(key)) tm.tasks.delete(key);
    this.changed();
  }

  // ---- drain ---------------------------------------------------------------------------------

  /**
   * Drains a registered TaskManager: stored first (`/drains/<id>` through the DrainRecords), then no new
   * deploys go to it; its tasks run to their end, or past `deadlineMs` (ms from now; null: no
   * deadline) are canceled and placed elsewhere as new attempts; once empty it is released (told to
   * stop in its next heartbeat answer, and unregistered). Asking again for a draining TaskManager
   * returns the drain already under way. Throws NotLeaderError when the term is over, NotFoundError
   * for an unknown TaskManager, a ZkError when the drain could not be stored.
   */
  async drain(taskManagerId: string, deadlineMs: number | null): Promise<DrainRecord> {
    if (!this.active) throw new NotLeaderError();
    const existing = this.drains.get(taskManagerId);
    if (existing) return existing;
    const tm = this.tms.get(taskManagerId);
    if (!tm) throw new NotFoundError(`taskmanager ${JSON.stringify(taskManagerId.slice(0, 80))} is not registered`);
    const now = this.clock.now();
    const drain = await this.drains.add({ taskManagerId, requestedAt: now, deadlineAt: deadlineMs === null ? null : now + deadlineMs });
    this.logger.info('taskmanager.drain.started', { taskManagerId, deadlineAt: drain.deadlineAt, tasks: tm.tasks.size });
    this.changed();
    this.checkDrains();
    return drain;
  }

  /** Past a drain's deadline, the tasks still on its TaskManager are evicted (new attempts elsewhere, not failures). */
  private checkDrains(): void {
    if (!this.active) return;
    const now = this.clock.now();
    for (const drain of this.drains.values()) {
      const tm = this.tms.get(drain.taskManagerId);
      if (!tm || tm.tasks.size === 0 || !drainOverdue(drain, now) || this.evicting.has(tm.id)) continue;
      this.evicting.add(tm.id);
      const stops: Promise<void>[] = [];
      for (const [key, slot] of [...tm.tasks]) {
        if (this.preempting.has(key)) continue;
        // Its JobMaster logs `task.evicted`; a task no job owns any more is just stopped.
        this.jobs.get(slot.id.jobId)?.onEvicted?.(tm.id, slot.id, { reason: 'drained', deadlineAt: drain.deadlineAt! });
        stops.push(this.stopEvicted(tm.id, slot.id));
      }
      this.logger.info('taskmanager.drain.deadline', { taskManagerId: tm.id, deadlineAt: drain.deadlineAt, canceling: stops.length });
      void Promise.all(stops).finally(() => this.evicting.delete(tm.id));
    }
  }

  /** A drained TaskManager holds nothing any more: unregistered, its drain record removed; the caller tells it to stop. */
  private releaseDrained(tm: TaskManagerRecord): void {
    this.tms.delete(tm.id);
    this.drains.forget(tm.id);
    this.logger.info('taskmanager.released', { taskManagerId: tm.id, address: tm.address, reason: 'drained: it holds no task any more' });
    this.changed();
  }

  release(taskManagerId: string, id: ExecutionId): void {
    const tm = this.tms.get(taskManagerId);
    if (tm?.tasks.delete(executionKey(id))) this.changed();
  }

  async deploy(taskManagerId: string, request: Omit<DeployRequest, 'epoch'>): Promise<void> {
    const tm = this.requireActive(taskManagerId);
    let res;
    try {
      res = await rpcCall('POST', `${tm.address}/deploy`, { ...request, epoch: this.epoch }, { token: this.options.internalToken, tls: this.tlsFor(tm) });
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
    const res = await rpcCall('POST', `${tm.address}/cancel`, { epoch: this.epoch, ...id }, this.cancelCall(tm));
    if (res.status === 409) this.checkEpochBehind(res.body);
    if (res.status !== 200) throw new Error(`TaskManager ${this.describe(taskManagerId)} refused the cancel: ${errorText(res)}`);
  }

  async cancelJob(jobId: string): Promise<void> {
    if (!this.active) return;
    await Promise.all([...this.tms.values()].map(async (tm) => {
      try {
        const res = await rpcCall('POST', `${tm.address}/cancel`, { epoch: this.epoch, jobId }, this.cancelCall(tm));
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
    if (!plausibleEpochClaim(reported, this.epoch)) {
      this.logger.warn(IDENTITY_EVENTS.epochImplausible, { claimed: reported, reason: 'a TaskManager answered with an epoch far above this term\'s; nothing raised' });
      return;
    }
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

  private cancelCall(tm: TaskManagerRecord): RpcCallOptions {
    return { timeoutMs: this.options.cancelTimeoutMs ?? 15_000, token: this.options.internalToken, tls: this.tlsFor(tm) };
  }

  /** TLS for commands to `tm`; with mutual TLS its server certificate must name it (one agent per TaskManager record). */
  private tlsFor(tm: TaskManagerRecord): ClientTls | undefined {
    const base = this.options.internalTls;
    if (!base?.cert) return base;
    return (tm.tls ??= taskManagerServerTls(base, tm.id));
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
   * when the TaskManager already holds an epoch at or above this term's (and asks for a term above it);
   * 409 or 403 when taskmanager-identity.ts refuses it (another certificate from another address,
   * attempts deployed to another TaskManager, an implausible epoch), changing nothing.
   * `credential`: the verified client certificate it came with (mutual TLS).
   */
  async register(req: RegistrationRequest, credential?: TaskManagerCredential): Promise<RegistrationResponse> {
    checkReRegistration(this.tms.get(req.taskManagerId), req.taskManagerId, req.address, credential?.fingerprint, this.logger);
    checkReportedAttempts(req.taskManagerId, 'registration', req.tasks, (key) => this.placements.get(key), (id) => this.tms.has(id), this.logger);
    checkClaimedEpoch(req.taskManagerId, req.highestEpoch, this.epoch, this.logger);
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
    if (credential) tm.fingerprint = credential.fingerprint;
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
    if (this.drains.has(taskManagerId) && tm.tasks.size === 0 && cancel.length === 0 && (!Array.isArray(req.running) || req.running.length === 0)) {
      this.releaseDrained(tm);
      return { epoch: this.epoch, cancel, release: `TaskManager ${taskManagerId} was drained and holds no task: it is released; stop` };
    }
    return { epoch: this.epoch, cancel };
  }

  /** Applies a TaskManager's reports; 404 when it is not registered, 403 (nothing applied) when one is on an attempt not deployed to it. */
  async status(req: StatusRequest): Promise<StatusResponse> {
    const tm = this.tms.get(req.taskManagerId);
    if (!tm) throw new HttpError(404, `TaskManager ${req.taskManagerId} is not registered with leader epoch ${this.epoch}; register again`);
    checkReportedAttempts(tm.id, 'status', req.reports, (key) => (tm.tasks.has(key) ? tm.id : this.placements.get(key)), (id) => this.tms.has(id), this.logger);
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
    this.drains.forget(tm.id); // a drained TaskManager that is gone is released too
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
    this.wakeRound++;
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

  /** Drained (Flink's blocked) registered TaskManagers and their free slots; `slots-available` counts those slots too, as Flink's does. */
  blockedOverview(): { 'taskmanagers-blocked': number; 'slots-free-and-blocked': number } {
    let blocked = 0;
    let freeBlocked = 0;
    for (const tm of this.tms.values()) {
      if (!this.drains.has(tm.id)) continue;
      blocked++;
      freeBlocked += Math.max(0, tm.slots - tm.tasks.size);
    }
    return { 'taskmanagers-blocked': blocked, 'slots-free-and-blocked': freeBlocked };
  }

  /** Slot requests waiting, in service order (highest priority, then first come). */
  pendingSlotRequests(): SlotRequest[] {
    return this.queue.list();
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
      blocked: this.drains.has(tm.id), drain: this.drains.get(tm.id),
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
          undefined, { token: this.options.internalToken, tls: this.tlsFor(tm) });
        if (res.status === 200) return typeof res.body === 'string' ? res.body : JSON.stringify(res.body);
      } catch (err) {
        this.logger.debug('task.log.unreachable', { taskManagerId: tm.id, error: err as Error });
      }
    }
    return null;
  }
}
