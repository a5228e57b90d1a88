/**
 * Autoscaling of the TaskManager pool by the leader (docs/ARCHITECTURE.md, "Autoscaling"). One
 * Autoscaler per leader term, beside the term's ResourceManager: every round it observes the waiting
 * slot requests and the registered TaskManagers, asks `decideScaling` (autoscaler-decision.ts), and
 * grows the pool through a TaskManagerProvider or shrinks it through the ResourceManager's drain
 * (a drained TaskManager is released by the existing mechanism once it holds no task; never killed).
 *
 * Its desired state lives in ZooKeeper (`/autoscaler`, src/store/autoscaler-store.ts): a launch is
 * recorded (id, launchedAt) before the provider starts it, and counts toward the pool until it
 * registers or the launch timeout passes, so a new leader adopts launches under way instead of
 * launching again. Nothing here throws into the replica: every failure is logged and retried next round.
 */
import * as os from 'node:os';
import { EventLogger, silentLogger } from '../util/logger';
import { Clock, systemClock, TimerHandle } from '../util/clock';
import type { DispatcherMetrics } from '../metrics/metrics';
import type { TaskManagerView } from './resource-manager';
import type { SlotRequest } from './slot-queue';
import type { DrainRecord } from './drain';
import { decideScaling, INITIAL_MEMORY, PoolMember, ScalingLimits, ScalingMemory } from './autoscaler-decision';

/** One recorded launch. `launchedAt`/`registeredAt` are epoch-ms (they outlive the leader that wrote them). */
export interface LaunchRecord {
  /** The TaskManager id it was launched with (taskmanager.id). */
  id: string;
  launchedAt: number;
  /** Null until a TaskManager with this id registered. */
  registeredAt: number | null;
  /** Host name of the replica that recorded it (absent in records of other writers). */
  host?: string;
}

/** The provider's desired state as stored in `/autoscaler`. */
export interface AutoscalerState {
  /** The pool size last asked for. */
  desired: number;
  /** Launches not yet released: registered ones (autoscaled members) and ones still coming. */
  launches: LaunchRecord[];
  /** TaskManagers drained to shrink the pool whose release the provider has not been told about yet. */
  draining: string[];
  /** Epoch-ms of the write. */
  updatedAt: number;
  /** The leader epoch that wrote it. */
  epoch: number;
}

/** Where the autoscaler's state survives a failover (src/store/autoscaler-store.ts, or a fake). */
export interface AutoscalerStateStore {
  /** The stored state; null when there is none (never written, deleted, or unreadable: logged). Rejects with a ZkError on connection trouble. */
  read(): Promise<AutoscalerState | null>;
  /** Stores the state (recreating a deleted node); rejects with NotLeaderError once the term is over, a ZkError otherwise. */
  write(state: AutoscalerState): Promise<void>;
}

/** A request to a provider: `id` is the TaskManager's id, `desired` the pool size asked for after it. */
export interface ProviderRequest {
  id: string;
  desired: number;
  /** The call is abandoned after this (ms); a provider should stop what it started by then. */
  deadlineMs: number;
}

/**
 * Starts and gives back TaskManagers: `local` (processes on this host) or `command` (operator
 * commands, e.g. `kubectl scale`); src/resources/autoscaler-providers.ts.
 */
export interface TaskManagerProvider {
  readonly name: string;
  /** True when a launched TaskManager registers under the id it was launched with (then launches are matched by id). */
  readonly namesTaskManagers: boolean;
  /** Starts one TaskManager; rejects when it could not (the launch is forgotten and retried on demand). */
  launch(request: ProviderRequest): Promise<void>;
  /** A TaskManager the autoscaler drained was released, or a launch timed out: give its capacity back. */
  release(request: ProviderRequest): Promise<void>;
  /**
   * Whether the launch `id` still runs, when the provider can tell (`local`: its process); undefined
   * when it cannot. A launch that is known gone before it registered stops counting at once.
   */
  launchAlive?(launch: LaunchRecord): boolean | undefined;
}

/** What the autoscaler needs of the term's ResourceManager. */
export interface ScalableResources {
  readonly active: boolean;
  list(): TaskManagerView[];
  pendingSlotRequests(): SlotRequest[];
  drain(taskManagerId: string, deadlineMs: number | null): Promise<DrainRecord>;
}

export interface AutoscalerOptions extends ScalingLimits {
  epoch: number;
  resources: ScalableResources;
  provider: TaskManagerProvider;
  store: AutoscalerStateStore;
  /** A recorded launch that has not registered after this (ms, wall clock) no longer counts. */
  launchTimeoutMs: number;
  /**
   * No decision before this long (ms) into the term: TaskManagers re-register with a new leader within
   * a heartbeat timeout, and a pool that only looks small must not grow.
   */
  settleMs: number;
  /** Period of a round (ms). */
  tickMs: number;
  clock?: Clock;
  logger?: EventLogger;
  metrics?: DispatcherMetrics;
}

/** Event names, stable for dashboards and tests. */
export const AUTOSCALER_EVENTS = {
  scaleUp: 'autoscaler.scale-up',
  scaleDown: 'autoscaler.scale-down',
  launchFailed: 'autoscaler.launch.failed',
  launchRegistered: 'autoscaler.launch.registered',
  launchTimedOut: 'autoscaler.launch.timed-out',
  adopted: 'autoscaler.launch.adopted',
  released: 'autoscaler.released',
  releaseFailed: 'autoscaler.release.failed',
  drainFailed: 'autoscaler.drain.failed',
  stateWriteFailed: 'autoscaler.state.write-failed',
  stateReadFailed: 'autoscaler.state.read-failed',
  roundFailed: 'autoscaler.round.failed',
} as const;

export class Autoscaler {
  private readonly clock: Clock;
  private readonly logger: EventLogger;
  private state: AutoscalerState | null = null;
  private memory: ScalingMemory = INITIAL_MEMORY;
  private timer: TimerHandle | null = null;
  private stopped = false;
  private running = false;
  private readonly startedAt: number;
  private seq = 0;
  /** Ids whose release is being told to the provider (not twice at once). */
  private readonly releasing = new Set<string>();
  /** Failed releases: tried again after a back-off (monotonic ms), 1 s doubling up to 60 s. */
  private readonly releaseRetry = new Map<string, { failures: number; at: number }>();

  constructor(private readonly options: AutoscalerOptions) {
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child({ epoch: options.epoch, component: 'autoscaler' });
    this.startedAt = this.clock.monotonicNow();
  }

  /** Starts the rounds; the stored state is read in the first one (retried each round until read). */
  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** The state as this term knows it (null until read), for views and tests. */
  get current(): AutoscalerState | null {
    return this.state;
  }

  /** One round now (tests drive it with a fake clock); never rejects. */
  async round(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      await this.step();
    } catch (err) {
      this.logger.warn(AUTOSCALER_EVENTS.roundFailed, { error: err as Error });
    } finally {
      this.running = false;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => void this.round().finally(() => this.schedule()), this.options.tickMs);
    this.timer.unref?.();
  }

  private async step(): Promise<void> {
    const { resources } = this.options;
    if (!resources.active) return;
    if (!this.state && !(await this.load())) return;
    const state = this.state!;
    const now = this.clock.now();
    const settled = this.clock.monotonicNow() - this.startedAt >= this.options.settleMs;
    const views = resources.list();
    const registered = new Map(views.map((v) => [v.id, v]));
    let dirty = false;

    // Launches: registered, timed out, or gone.
    const named = this.options.provider.namesTaskManagers;
    const members = views.filter((v) => !v.blocked);
    for (const launch of [...state.launches]) {
      const tm = registered.get(launch.id);
      if (tm && launch.registeredAt === null) {
        launch.registeredAt = now;
        dirty = true;
        this.logger.info(AUTOSCALER_EVENTS.launchRegistered, { taskManagerId: launch.id, afterMs: Math.max(0, now - launch.launchedAt) });
      } else if (!tm && launch.registeredAt !== null && settled) {
        // Registered once, gone now (released, lost, or not back after the failover): no longer a member.
        state.launches.splice(state.launches.indexOf(launch), 1);
        dirty = true;
      } else if (!tm && launch.registeredAt === null) {
        const unnamedArrived = !named && members.length >= state.desired;
        // Past a grace (a leader that lost its term may still be starting it), a launch known gone is over.
        const gone = now - launch.launchedAt >= LAUNCH_GONE_GRACE_MS && this.options.provider.launchAlive?.(launch) === false;
        if (gone) {
          state.launches.splice(state.launches.indexOf(launch), 1);
          state.desired = Math.max(0, state.desired - 1);
          dirty = true;
          this.logger.warn(AUTOSCALER_EVENTS.launchFailed, { taskManagerId: launch.id, provider: this.options.provider.name, reason: 'its process is gone and it never registered' });
          this.options.metrics?.autoscalerLaunchFailures.inc();
        } else if (unnamedArrived || now - launch.launchedAt >= this.options.launchTimeoutMs) {
          state.launches.splice(state.launches.indexOf(launch), 1);
          dirty = true;
          if (!unnamedArrived) {
            state.desired = Math.max(0, state.desired - 1);
            this.logger.warn(AUTOSCALER_EVENTS.launchTimedOut, { taskManagerId: launch.id, launchedAt: launch.launchedAt, launchTimeoutMs: this.options.launchTimeoutMs,
              reason: 'it did not register in time; it no longer counts toward the pool' });
            this.release(launch.id, state.desired, 'launch timed out');
          }
        }
      }
    }
    // Drained ones that are gone: tell the provider (once it succeeded, forgotten).
    for (const id of state.draining) {
      if (!registered.has(id) && settled) this.release(id, state.desired, 'drained and released');
    }

    if (!settled) {
      if (dirty) await this.save();
      return;
    }
    const launched = new Set(state.launches.map((l) => l.id));
    const pool: PoolMember[] = members.map((v) => ({ id: v.id, slots: v.slotsNumber, busySlots: v.slotsNumber - v.freeSlots, launched: launched.has(v.id) }));
    const pendingLaunches = state.launches.filter((l) => l.registeredAt === null && !registered.has(l.id)).length;
    const decision = decideScaling(this.options, {
      now: this.clock.monotonicNow(), waitingRequests: resources.pendingSlotRequests().length, members: pool,
      pendingLaunches: named ? pendingLaunches : Math.min(pendingLaunches, Math.max(0, state.desired - members.length)),
    }, this.memory);
    this.memory = decision.memory;
    this.options.metrics?.autoscalerPendingLaunches.set(pendingLaunches);

    if (decision.direction === 'none') {
      if (dirty) await this.save();
      this.options.metrics?.autoscalerDesired.set(state.desired);
      return;
    }
    if (decision.direction === 'up') {
      const ids = Array.from({ length: decision.launch }, () => `${LAUNCH_ID_PREFIX}${this.options.epoch}-${++this.seq}`);
      const records: LaunchRecord[] = ids.map((id) => ({ id, launchedAt: now, registeredAt: null, host: os.hostname() }));
      state.launches.push(...records);
      const before = state.desired;
      state.desired = decision.desired;
      // Recorded before anything starts: a leader killed from here on leaves launches its successor adopts.
      if (!(await this.save())) {
        state.launches = state.launches.filter((l) => !ids.includes(l.id));
        state.desired = before;
        return;
      }
      this.logger.info(AUTOSCALER_EVENTS.scaleUp, { from: decision.current, to: decision.desired, reason: decision.reason, launches: ids, provider: this.options.provider.name });
      this.options.metrics?.autoscalerDecisions.inc({ direction: 'up' });
      this.options.metrics?.autoscalerDesired.set(state.desired);
      await Promise.all(ids.map((id) => this.launch(id, decision.desired)));
      return;
    }
    const drained: string[] = [];
    for (const id of decision.drain) {
      try {
        await resources.drain(id, null);
        drained.push(id);
      } catch (err) {
        this.logger.warn(AUTOSCALER_EVENTS.drainFailed, { taskManagerId: id, error: err as Error });
      }
    }
    if (drained.length === 0) return;
    state.desired = decision.current - drained.length;
    state.draining.push(...drained.filter((id) => !state.draining.includes(id)));
    this.logger.info(AUTOSCALER_EVENTS.scaleDown, { from: decision.current, to: state.desired, reason: decision.reason, drained });
    this.options.metrics?.autoscalerDecisions.inc({ direction: 'down' });
    this.options.metrics?.autoscalerDesired.set(state.desired);
    await this.save();
  }

  /** Reads the stored state (a new leader adopts the launches under way); false on ZooKeeper trouble. */
  private async load(): Promise<boolean> {
    let stored: AutoscalerState | null;
    try {
      stored = await this.options.store.read();
    } catch (err) {
      this.logger.warn(AUTOSCALER_EVENTS.stateReadFailed, { error: err as Error });
      return false;
    }
    this.state = stored ?? { desired: 0, launches: [], draining: [], updatedAt: this.clock.now(), epoch: this.options.epoch };
    const coming = this.state.launches.filter((l) => l.registeredAt === null).map((l) => l.id);
    if (stored && (stored.launches.length > 0 || stored.draining.length > 0)) {
      this.logger.info(AUTOSCALER_EVENTS.adopted, { desired: stored.desired, launches: stored.launches.map((l) => l.id), coming, draining: stored.draining, fromEpoch: stored.epoch });
    }
    this.options.metrics?.autoscalerDesired.set(this.state.desired);
    return true;
  }

  /** Writes the state; false (logged) when the term is over or ZooKeeper failed: nothing is started then. */
  private async save(): Promise<boolean> {
    const state = this.state!;
    state.updatedAt = this.clock.now();
    state.epoch = this.options.epoch;
    try {
      await this.options.store.write({ ...state, launches: state.launches.map((l) => ({ ...l })), draining: [...state.draining] });
      return true;
    } catch (err) {
      this.logger.warn(AUTOSCALER_EVENTS.stateWriteFailed, { error: err as Error, reason: 'nothing is launched or forgotten until the state is stored' });
      return false;
    }
  }

  private async launch(id: string, desired: number): Promise<void> {
    try {
      await withDeadline(this.options.provider.launch({ id, desired, deadlineMs: this.options.launchTimeoutMs }), this.options.launchTimeoutMs, `launching ${id}`);
    } catch (err) {
      this.logger.warn(AUTOSCALER_EVENTS.launchFailed, { taskManagerId: id, provider: this.options.provider.name, error: err as Error });
      this.options.metrics?.autoscalerLaunchFailures.inc();
      const state = this.state!;
      state.launches = state.launches.filter((l) => l.id !== id);
      state.desired = Math.max(0, state.desired - 1);
      await this.save();
    }
  }

  /** Tells the provider in the background; a drained id is forgotten once that succeeded, a failure is retried after a back-off. */
  private release(id: string, desired: number, why: string): void {
    const retry = this.releaseRetry.get(id);
    if (this.releasing.has(id) || (retry && this.clock.monotonicNow() < retry.at)) return;
    this.releasing.add(id);
    const deadlineMs = this.options.launchTimeoutMs;
    void withDeadline(this.options.provider.release({ id, desired, deadlineMs }), deadlineMs, `releasing ${id}`)
      .then(async () => {
        this.releaseRetry.delete(id);
        this.logger.info(AUTOSCALER_EVENTS.released, { taskManagerId: id, desired, reason: why });
        const state = this.state;
        if (state?.draining.includes(id) && !this.stopped) {
          state.draining = state.draining.filter((d) => d !== id);
          await this.save();
        }
      })
      .catch((err) => {
        const failures = (this.releaseRetry.get(id)?.failures ?? 0) + 1;
        const backoffMs = Math.min(60_000, 1000 * 2 ** (failures - 1));
        this.releaseRetry.set(id, { failures, at: this.clock.monotonicNow() + backoffMs });
        this.logger.warn(AUTOSCALER_EVENTS.releaseFailed, { taskManagerId: id, provider: this.options.provider.name, error: err as Error, retryInMs: backoffMs });
      })
      .finally(() => this.releasing.delete(id));
  }
}

/** A launch the provider reports gone is dropped only this long (ms, wall clock) after it was recorded. */
export const LAUNCH_GONE_GRACE_MS = 10_000;

/** Ids of launched TaskManagers: `auto-<epoch>-<n>`, unique across leaders (each term has its own epoch). */
export const LAUNCH_ID_PREFIX = 'auto-';

/** Rejects after `ms` unless `work` settled first; the work itself is not stopped (providers bound their own). */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
