/**
 * The TaskManager's side of its conversation with the leader: follows `/leader/info` through the
 * leader retrieval service, registers its slots (retrying after 100 ms, doubling up to 2 s and at most
 * the heartbeat interval), heartbeats, and delivers task reports (protocol.ts has the messages).
 *
 * All contact runs one call at a time on a serial queue. Reports are queued by key; a finished
 * outcome stays ours to deliver until a leader acknowledges it, so every heartbeat queues the
 * unacknowledged ones again and every registration carries them. A leader change aborts the call in
 * flight. When no leader has answered for `orphanTimeoutMs` (monotonic time), live tasks are canceled.
 */
import { LeaderInfo } from '../election/leader-info';
import { Clock, TimerHandle } from '../util/clock';
import { EventLogger } from '../util/logger';
import { SerialQueue } from '../util/serial-queue';
import { executionKey, HeartbeatResponse, RegistrationRequest, RegistrationResponse, StatusResponse, TERMINAL_REPORTED } from './protocol';
import { errorText, rpcCall, RpcCallOptions, RpcResponse } from './rpc';
import { TaskTable } from './task-table';
import type { ClientTls } from '../http/client';

export const REGISTER_RETRY_MIN_MS = 100;
export const REGISTER_RETRY_MAX_MS = 2000;
/** Reports may carry many tasks; they get longer than the default RPC timeout. */
const REPORT_TIMEOUT_MS = 15_000;

/** Where the leader is published (the LeaderRetrievalService, or a stub in tests); emits 'change' (LeaderInfo | null). */
export interface LeaderSource {
  readonly current: LeaderInfo | null;
  on(event: 'change', listener: (leader: LeaderInfo | null) => void): unknown;
  off(event: 'change', listener: (leader: LeaderInfo | null) => void): unknown;
  start(): void;
  stop(): void;
}

/** One JSON call to the leader; rejects on transport failure (rpcCall's contract). */
export type LeaderTransport = <T>(method: 'POST', url: string, body: unknown, options: RpcCallOptions) => Promise<RpcResponse<T>>;

/** The leader this TaskManager registered with, as GET /tasks shows it. */
export interface Registration {
  epoch: number;
  rpcUrl: string;
  leaderId: string;
}

export interface LeaderConnectionOptions {
  taskManagerId: string;
  /** Random per process (RegistrationRequest.instanceId). */
  instanceId: string;
  /** Host name sent with the registration. */
  host: string;
  slots: number;
  /** Between heartbeats, ms; also the longest registration back-off. */
  heartbeatIntervalMs: number;
  /** Leader silence after which live tasks are canceled, ms. */
  orphanTimeoutMs: number;
  /** security.internal.token, sent with every call. */
  internalToken?: string;
  /** security.ssl.internal.*: CA to trust and our certificate (naming our id) for https leaders. */
  tls?: ClientTls;
  leaders: LeaderSource;
  tasks: TaskTable;
  clock: Clock;
  logger: EventLogger;
  /** Default: rpcCall. */
  transport?: LeaderTransport;
  /**
   * The leader released this TaskManager (it was drained and holds no task; it is unregistered).
   * Contact has stopped when this is called; the owner stops the process.
   */
  onRelease?: (reason: string) => void;
}

export class LeaderConnection {
  private readonly queue = new SerialQueue();
  private readonly transport: LeaderTransport;
  private readonly tasks: TaskTable;
  private readonly clock: Clock;
  private readonly logger: EventLogger;
  private address = '';
  private current: Registration | null = null;
  /** Monotonic ms of the last answer from a leader (construction counts as one). */
  private lastLeaderContact: number;
  /** Keys whose latest state the current leader has not been told. */
  private readonly unreported = new Set<string>();
  private heartbeatTimer: TimerHandle | null = null;
  /**
   * Aborted when the leader changes: a call to a leader that stood still (SIGSTOP, partition) must not
   * hold the contact queue for its whole timeout, or re-registration with the new leader comes after
   * its reconcile window and adopted tasks run a second time.
   */
  private contact = new AbortController();
  /** Registration retries come sooner than heartbeats: the new leader's reconcile window is short. */
  private registerRetry: TimerHandle | null = null;
  private registerBackoffMs = REGISTER_RETRY_MIN_MS;
  private tickPending = false;
  private ticking = false;
  private heartbeatDue = false;
  private running = false;
  private readonly onLeaderChange = (leader: LeaderInfo | null): void => this.leaderChanged(leader);

  constructor(private readonly options: LeaderConnectionOptions) {
    this.transport = options.transport ?? ((method, url, body, callOptions) => rpcCall(method, url, body, callOptions));
    this.tasks = options.tasks;
    this.clock = options.clock;
    this.logger = options.logger;
    this.lastLeaderContact = this.clock.monotonicNow();
  }

  /** The leader registered with, or null while (re-)registering. */
  get registration(): Registration | null { return this.current; }

  /** Ms since the leader last answered (monotonic clock); null while unregistered. */
  get leaderContactAgeMs(): number | null { return this.current ? this.clock.monotonicNow() - this.lastLeaderContact : null; }

  /** Starts following the leader; `address` is this TaskManager's RPC base URL, sent at registration. */
  start(address: string): void {
    if (this.running) return;
    this.address = address;
    this.running = true;
    this.options.leaders.on('change', this.onLeaderChange);
    this.options.leaders.start();
    this.scheduleHeartbeat();
  }

  /** Stops timers and leader retrieval; a call in flight finishes (see `flushFinal`). */
  stop(): void {
    this.running = false;
    if (this.heartbeatTimer) this.clock.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    if (this.registerRetry) this.clock.clearTimeout(this.registerRetry);
    this.registerRetry = null;
    this.options.leaders.off('change', this.onLeaderChange);
    this.options.leaders.stop();
  }

  /** After `stop`: waits for contact in flight, then delivers queued reports if still registered (errors swallowed). */
  async flushFinal(): Promise<void> {
    await this.queue.drain();
    // Final outcomes reach the leader if it is reachable; the leader fails the rest over anyway.
    if (this.current && this.unreported.size > 0) await this.flushReports().catch(() => undefined);
  }

  /** A task's report changed: queue it for the leader. */
  reportChanged(key: string): void {
    this.unreported.add(key);
    this.tick();
  }

  private scheduleHeartbeat(): void {
    this.heartbeatTimer = this.clock.setTimeout(() => {
      if (!this.running) return;
      this.scheduleHeartbeat();
      this.tick(true);
    }, this.options.heartbeatIntervalMs);
  }

  private leaderChanged(leader: LeaderInfo | null): void {
    this.tasks.announceEpoch(leader?.epoch ?? null); // unverified: fences off the replaced leader, raises nothing
    if (this.current && leader?.epoch === this.current.epoch && leader.rpcUrl === this.current.rpcUrl) return;
    this.current = null;
    this.contact.abort();
    this.contact = new AbortController();
    this.registerBackoffMs = REGISTER_RETRY_MIN_MS;
    this.tick();
  }

  /** One round of leader contact: register when not registered, else heartbeat (when due) and flush reports. */
  private tick(heartbeat = false): void {
    if (!this.running) return;
    if (heartbeat) this.heartbeatDue = true;
    if (this.ticking) {
      this.tickPending = true;
      return;
    }
    this.ticking = true;
    void this.queue.run(async () => {
      try {
        this.checkOrphaned();
        if (!this.current) await this.register();
        else if (this.heartbeatDue) {
          this.heartbeatDue = false;
          await this.heartbeat();
        }
        if (this.current && this.unreported.size > 0) await this.flushReports();
      } catch (err) {
        this.logger.warn('taskmanager.contact.failed', { error: err as Error });
      } finally {
        this.ticking = false;
        if (this.tickPending) {
          this.tickPending = false;
          setImmediate(() => this.tick());
        } else if (!this.current) this.retryRegistration();
      }
    });
  }

  private leaderCall(timeoutMs?: number): RpcCallOptions {
    return { timeoutMs, signal: this.contact.signal, token: this.options.internalToken, tls: this.options.tls };
  }

  /** Unregistered while a leader is published: try again soon, backing off up to the heartbeat interval. */
  private retryRegistration(): void {
    if (!this.running || this.registerRetry || !this.options.leaders.current?.rpcUrl) return;
    const delay = Math.min(this.registerBackoffMs, REGISTER_RETRY_MAX_MS, this.options.heartbeatIntervalMs);
    this.registerBackoffMs = Math.min(this.registerBackoffMs * 2, REGISTER_RETRY_MAX_MS);
    this.registerRetry = this.clock.setTimeout(() => {
      this.registerRetry = null;
      this.tick();
    }, delay);
  }

  private async register(): Promise<void> {
    const current = this.options.leaders.current;
    if (!current || !current.rpcUrl) return;
    let leader = current;
    for (let attempt = 0; attempt < 2; attempt++) {
      const answer = await this.registerWith(leader);
      // Our own view of /leader/info may lag (a flapping session): the replica at that address
      // leads a newer epoch. Registering with it is safe, since every command it sends is fenced.
      if (answer === 'done' || answer === null || answer <= leader.epoch) return;
      leader = { ...leader, epoch: answer };
    }
  }

  /** 'done' when registered, else the epoch a 409 named (or null). */
  private async registerWith(leader: LeaderInfo): Promise<'done' | number | null> {
    const reports = this.tasks.unacknowledged();
    // Struck off now, not on the answer: a state change during the call (a task finishing) marks the
    // key again and is flushed after it. Should the call fail, the next registration sends it anyway.
    for (const r of reports) this.unreported.delete(executionKey(r));
    const { taskManagerId, instanceId, host, slots } = this.options;
    const request: RegistrationRequest = {
      taskManagerId, instanceId, host, address: this.address, slots, epoch: leader.epoch, highestEpoch: this.tasks.highestEpoch, tasks: reports,
    };
    let res;
    try {
      res = await this.transport<RegistrationResponse>('POST', `${leader.rpcUrl}/internal/taskmanagers`, request, this.leaderCall());
    } catch (err) {
      this.logger.debug('taskmanager.register.unreachable', { leader: leader.replicaId, error: err as Error });
      return null;
    }
    if (res.status !== 200) {
      this.logger.info('taskmanager.register.refused', { leader: leader.replicaId, leaderEpoch: leader.epoch, reason: errorText(res) });
      const epoch = (res.body as { epoch?: unknown } | null)?.epoch;
      return res.status === 409 && typeof epoch === 'number' ? epoch : null;
    }
    const body = res.body;
    this.tasks.verifyEpoch(body.epoch); // the leader at the published address answered: verified
    this.current = { epoch: body.epoch, rpcUrl: leader.rpcUrl, leaderId: leader.replicaId };
    this.registerBackoffMs = REGISTER_RETRY_MIN_MS;
    this.lastLeaderContact = this.clock.monotonicNow();
    this.tasks.acknowledge(body.acknowledged);
    this.cancelUnowned(body.cancel);
    this.logger.info('taskmanager.registered', {
      leader: leader.replicaId, epoch: body.epoch, slots, reported: reports.length,
      running: reports.filter((r) => !TERMINAL_REPORTED.has(r.state)).length,
    });
    return 'done';
  }

  private async heartbeat(): Promise<void> {
    const reg = this.current!;
    let res;
    try {
      res = await this.transport<HeartbeatResponse>('POST', `${reg.rpcUrl}/internal/taskmanagers/${encodeURIComponent(this.options.taskManagerId)}/heartbeat`,
        { epoch: reg.epoch, running: this.tasks.runningKeys() }, this.leaderCall());
    } catch (err) {
      this.logger.debug('taskmanager.heartbeat.failed', { error: err as Error });
      this.current = null;
      return;
    }
    if (res.status !== 200) {
      this.logger.info('taskmanager.heartbeat.refused', { leaderEpoch: reg.epoch, reason: errorText(res) });
      this.current = null;
      this.tickPending = true;
      return;
    }
    this.lastLeaderContact = this.clock.monotonicNow();
    this.cancelUnowned(res.body.cancel);
    if (typeof res.body.release === 'string') {
      // Drained and unregistered: registering again would only bring new work back here.
      this.logger.info('taskmanager.released', { leaderEpoch: reg.epoch, reason: res.body.release.slice(0, 500) });
      this.stop();
      this.options.onRelease?.(res.body.release);
      return;
    }
    // Outcomes stay ours to deliver until acknowledged: send them again with every heartbeat, so no
    // slip in the bookkeeping above can leave a job waiting forever for a report (duplicates are harmless).
    for (const key of this.tasks.unacknowledgedOutcomes()) this.unreported.add(key);
  }

  private async flushReports(): Promise<void> {
    const reg = this.current!;
    const keys = [...this.unreported];
    const reports = keys.map((k) => this.tasks.get(k)?.report).filter((r) => r !== undefined).map((r) => ({ ...r }));
    for (const k of keys) this.unreported.delete(k);
    let res;
    try {
      res = await this.transport<StatusResponse>('POST', `${reg.rpcUrl}/internal/tasks/status`,
        { taskManagerId: this.options.taskManagerId, epoch: reg.epoch, reports }, this.leaderCall(REPORT_TIMEOUT_MS));
    } catch (err) {
      this.logger.debug('taskmanager.report.failed', { error: err as Error });
      this.current = null; // re-registration reports everything not acknowledged
      return;
    }
    if (res.status !== 200) {
      this.logger.info('taskmanager.report.refused', { reason: errorText(res) });
      this.current = null;
      this.tickPending = true;
      return;
    }
    this.lastLeaderContact = this.clock.monotonicNow();
    this.tasks.acknowledge(res.body.acknowledged);
    this.cancelUnowned(res.body.cancel);
  }

  /** Running tasks no JobMaster of the leader's term owns (stale attempt, ended job). */
  private cancelUnowned(keys: string[] | undefined): void {
    for (const t of this.tasks.liveOf(keys ?? [])) {
      this.logger.info('task.cancel.unowned', { task: t.key, reason: 'the leader does not own them' });
      void t.handle.cancel();
    }
  }

  private checkOrphaned(): void {
    const silentMs = this.clock.monotonicNow() - this.lastLeaderContact;
    if (silentMs < this.options.orphanTimeoutMs) return;
    const live = this.tasks.live();
    if (live.length === 0) return;
    this.logger.warn('taskmanager.orphaned', { silentMs: Math.round(silentMs), tasks: live.length, orphanTimeoutMs: this.options.orphanTimeoutMs });
    for (const t of live) void t.handle.cancel();
  }
}
