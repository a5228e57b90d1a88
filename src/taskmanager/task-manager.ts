/**
 * The TaskManager process: finds the leader through ZooKeeper (its own session, used only for leader
 * retrieval), registers its slots, heartbeats, runs the tasks the leader deploys and reports every
 * state change. Commands from an epoch below the highest it has seen are rejected (409).
 *
 * A leader change alone never stops a task: the TaskManager re-registers with the new leader and
 * reports what it still runs, plus finished outcomes no leader has acknowledged yet. Only when no
 * leader could be reached for `taskmanager.orphan-timeout` does it stop its tasks.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInfo, isIP } from 'node:net';
import Koa from 'koa';
import Router from '@koa/router';
import { DispatcherConfig, isLoopbackAddress, zookeeperNamespace } from '../config';
import { LeaderRetrievalService } from '../election/retrieval';
import { LeaderInfo } from '../election/leader-info';
import { ZooKeeperClient } from '../zk/client';
import { EventLogger, createLogger } from '../util/logger';
import { SerialQueue } from '../util/serial-queue';
import { logFilePath, RunningTask, startTask, TaskContext, TaskSpec } from './task-runner';
import {
  CancelRequest, checkExecutionId, DeployRequest, executionKey, ExecutionId, HeartbeatResponse, RegistrationRequest,
  RegistrationResponse, ReportedState, StatusResponse, TaskReport, TERMINAL_REPORTED,
} from './protocol';
import { errorText, INTERNAL_MAX_BODY_BYTES, requireInternalToken, rpcCall, RpcCallOptions } from './rpc';
import { errorMiddleware, HttpError } from '../http/errors';
import { readJsonBody } from '../http/body';
import { Reaper } from './reaper';
import { StallFence } from './stall-fence';

export interface TaskManagerOptions {
  id: string;
  slots: number;
  bindAddress: string;
  rpcPort: number;
  /** What the leader connects to; derived from bindAddress and the bound port when absent. */
  advertisedUrl?: string;
  heartbeatIntervalMs: number;
  orphanTimeoutMs: number;
  /** Task logs go to `<dataDir>/<id>/logs`. */
  dataDir: string;
  zookeeper: { connect: string; root: string; sessionTimeoutMs: number; connectionTimeoutMs: number; digestAuth?: string };
  logger?: EventLogger;
  killGraceMs?: number;
  /** security.internal.token: sent with every call to the leader, required of every command to us. */
  internalToken?: string;
}

interface TaskEntry {
  id: ExecutionId;
  report: TaskReport;
  running: RunningTask;
  /** A terminal outcome a leader has durably noted. */
  acknowledged: boolean;
}

/** Terminal, acknowledged tasks kept for GET /tasks. */
const FINISHED_HISTORY = 500;
const REGISTER_RETRY_MIN_MS = 100;
const REGISTER_RETRY_MAX_MS = 2000;

export class TaskManager {
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly queue = new SerialQueue();
  private readonly logger: EventLogger;
  private highestEpoch = -1;
  private registration: { epoch: number; rpcUrl: string; leaderId: string } | null = null;
  private lastLeaderContact = Date.now();
  /** Keys whose latest state the current leader has not been told. */
  private readonly unreported = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  /**
   * Aborted when the leader changes: a call to a leader that stood still (SIGSTOP, partition) must not
   * hold the contact queue for its whole timeout, or re-registration with the new leader comes after
   * its reconcile window and adopted tasks run a second time.
   */
  private contact = new AbortController();
  /** Registration retries come sooner than heartbeats: the new leader's reconcile window is short. */
  private registerRetry: NodeJS.Timeout | null = null;
  private registerBackoffMs = REGISTER_RETRY_MIN_MS;
  private tickPending = false;
  private ticking = false;
  private heartbeatDue = false;
  private running = false;
  private closing: Promise<void> | null = null;
  private address = '';
  /** Tells the leader this process from an earlier one with the same id and address. */
  private readonly instanceId = randomUUID();
  readonly logDir: string;
  private reaper: Reaper | null = null;
  /** A stall shorter than the leader's deploy timeout cannot leave a deploy the leader gave up on. */
  private readonly stallFence: StallFence;

  private constructor(
    private readonly options: TaskManagerOptions,
    private readonly client: ZooKeeperClient,
    private readonly retrieval: LeaderRetrievalService,
    private readonly server: http.Server,
    logger: EventLogger,
  ) {
    this.logger = logger;
    this.logDir = path.join(options.dataDir, options.id, 'logs');
    this.stallFence = new StallFence({
      thresholdMs: 3000, fenceMs: 1000,
      onStall: (gapMs) => this.logger.warn('taskmanager.stalled', { gapMs, reason: 'the process stood still; deploys that were queued meanwhile are refused' }),
    });
  }

  static optionsFrom(config: DispatcherConfig, logger?: EventLogger): TaskManagerOptions {
    return {
      id: config['taskmanager.id'],
      slots: config['taskmanager.numberOfTaskSlots'],
      bindAddress: config['taskmanager.bind-address'],
      rpcPort: config['taskmanager.rpc-port'],
      advertisedUrl: config['taskmanager.advertised-url'],
      heartbeatIntervalMs: config['heartbeat.interval'],
      orphanTimeoutMs: config['taskmanager.orphan-timeout'],
      dataDir: config['taskmanager.data-dir'],
      zookeeper: {
        connect: config['high-availability.zookeeper.quorum'],
        root: zookeeperNamespace(config),
        sessionTimeoutMs: config['high-availability.zookeeper.client.session-timeout'],
        connectionTimeoutMs: config['high-availability.zookeeper.client.connection-timeout'],
        digestAuth: config['high-availability.zookeeper.client.digest-auth'],
      },
      logger: logger ?? createLogger({ level: config['log.level'] }),
      internalToken: config['security.internal.token'],
    };
  }

  static async start(options: TaskManagerOptions): Promise<TaskManager> {
    const logger = (options.logger ?? createLogger()).child({ taskManagerId: options.id, component: 'taskmanager' });
    const client = new ZooKeeperClient({
      connect: options.zookeeper.connect, chroot: options.zookeeper.root, sessionTimeoutMs: options.zookeeper.sessionTimeoutMs,
      digestAuth: options.zookeeper.digestAuth, logger,
    });
    const retrieval = new LeaderRetrievalService(client, { logger });
    const server = http.createServer();
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    const tm = new TaskManager(options, client, retrieval, server, logger);
    server.on('request', tm.app().callback());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.rpcPort, options.bindAddress, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const host = ['0.0.0.0', '::'].includes(options.bindAddress) ? os.hostname() : options.bindAddress;
    tm.address = options.advertisedUrl ?? `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
    fs.mkdirSync(tm.logDir, { recursive: true });
    tm.reaper = Reaper.start(logger);
    try {
      await client.waitUntilConnected(options.zookeeper.connectionTimeoutMs);
    } catch (err) {
      await tm.close();
      throw new Error(`cannot reach ZooKeeper at ${options.zookeeper.connect} within ${options.zookeeper.connectionTimeoutMs} ms ` +
        `(high-availability.zookeeper.quorum): ${(err as Error).message}`);
    }
    tm.running = true;
    retrieval.on('change', (leader: LeaderInfo | null) => tm.onLeaderChange(leader));
    retrieval.start();
    tm.timer = setInterval(() => tm.tick(true), options.heartbeatIntervalMs);
    tm.stallFence.start();
    logger.info('taskmanager.started', { address: tm.address, slots: options.slots, logDir: tm.logDir, authenticated: options.internalToken !== undefined });
    if (options.internalToken === undefined && !isLoopbackAddress(options.bindAddress)) {
      logger.warn('security.internal.unauthenticated', { bindAddress: options.bindAddress,
        reason: 'anyone who reaches this TaskManager can deploy commands to it; set security.internal.token-file on every replica and TaskManager' });
    }
    return tm;
  }

  get id(): string { return this.options.id; }
  get rpcAddress(): string { return this.address; }

  // ---- leader contact ------------------------------------------------------------------------

  private onLeaderChange(leader: LeaderInfo | null): void {
    if (leader && leader.epoch > this.highestEpoch) this.highestEpoch = leader.epoch;
    if (this.registration && leader?.epoch === this.registration.epoch && leader.rpcUrl === this.registration.rpcUrl) return;
    this.registration = null;
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
        if (!this.registration) await this.register();
        else if (this.heartbeatDue) {
          this.heartbeatDue = false;
          await this.heartbeat();
        }
        if (this.registration && this.unreported.size > 0) await this.flushReports();
      } catch (err) {
        this.logger.warn('taskmanager.contact.failed', { error: err as Error });
      } finally {
        this.ticking = false;
        if (this.tickPending) {
          this.tickPending = false;
          setImmediate(() => this.tick());
        } else if (!this.registration) this.retryRegistration();
      }
    });
  }

  private leaderCall(timeoutMs?: number): RpcCallOptions {
    return { timeoutMs, signal: this.contact.signal, token: this.options.internalToken };
  }

  /** Unregistered while a leader is published: try again soon, backing off up to the heartbeat interval. */
  private retryRegistration(): void {
    if (!this.running || this.registerRetry || !this.retrieval.current?.rpcUrl) return;
    const delay = Math.min(this.registerBackoffMs, REGISTER_RETRY_MAX_MS, this.options.heartbeatIntervalMs);
    this.registerBackoffMs = Math.min(this.registerBackoffMs * 2, REGISTER_RETRY_MAX_MS);
    this.registerRetry = setTimeout(() => {
      this.registerRetry = null;
      this.tick();
    }, delay);
  }

  private async register(): Promise<void> {
    const current = this.retrieval.current;
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
    const reports = [...this.tasks.values()].filter((t) => !t.acknowledged).map((t) => ({ ...t.report }));
    // Struck off now, not on the answer: a state change during the call (a task finishing) marks the
    // key again and is flushed after it. Should the call fail, the next registration sends it anyway.
    for (const r of reports) this.unreported.delete(executionKey(r));
    const request: RegistrationRequest = {
      taskManagerId: this.options.id, instanceId: this.instanceId, host: os.hostname(), address: this.address, slots: this.options.slots, epoch: leader.epoch, tasks: reports,
    };
    let res;
    try {
      res = await rpcCall<RegistrationResponse>('POST', `${leader.rpcUrl}/internal/taskmanagers`, request, this.leaderCall());
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
    if (body.epoch > this.highestEpoch) this.highestEpoch = body.epoch;
    this.registration = { epoch: body.epoch, rpcUrl: leader.rpcUrl, leaderId: leader.replicaId };
    this.registerBackoffMs = REGISTER_RETRY_MIN_MS;
    this.lastLeaderContact = Date.now();
    this.acknowledge(body.acknowledged);
    this.cancelKeys(body.cancel, 'the leader does not own them');
    this.logger.info('taskmanager.registered', {
      leader: leader.replicaId, epoch: body.epoch, slots: this.options.slots, reported: reports.length,
      running: reports.filter((r) => !TERMINAL_REPORTED.has(r.state)).length,
    });
    return 'done';
  }

  private async heartbeat(): Promise<void> {
    const reg = this.registration!;
    const running = [...this.tasks.values()].filter((t) => !TERMINAL_REPORTED.has(t.report.state)).map((t) => executionKey(t.id));
    let res;
    try {
      res = await rpcCall<HeartbeatResponse>('POST', `${reg.rpcUrl}/internal/taskmanagers/${encodeURIComponent(this.options.id)}/heartbeat`,
        { epoch: reg.epoch, running }, this.leaderCall());
    } catch (err) {
      this.logger.debug('taskmanager.heartbeat.failed', { error: err as Error });
      this.registration = null;
      return;
    }
    if (res.status !== 200) {
      this.logger.info('taskmanager.heartbeat.refused', { leaderEpoch: reg.epoch, reason: errorText(res) });
      this.registration = null;
      this.tickPending = true;
      return;
    }
    this.lastLeaderContact = Date.now();
    this.cancelKeys(res.body.cancel, 'the leader does not own them');
    // Outcomes stay ours to deliver until acknowledged: send them again with every heartbeat, so no
    // slip in the bookkeeping above can leave a job waiting forever for a report (duplicates are harmless).
    for (const [key, t] of this.tasks) if (!t.acknowledged && TERMINAL_REPORTED.has(t.report.state)) this.unreported.add(key);
  }

  private async flushReports(): Promise<void> {
    const reg = this.registration!;
    const keys = [...this.unreported];
    const reports = keys.map((k) => this.tasks.get(k)).filter((t): t is TaskEntry => !!t).map((t) => ({ ...t.report }));
    for (const k of keys) this.unreported.delete(k);
    let res;
    try {
      res = await rpcCall<StatusResponse>('POST', `${reg.rpcUrl}/internal/tasks/status`, { taskManagerId: this.options.id, epoch: reg.epoch, reports },
        this.leaderCall(15_000));
    } catch (err) {
      this.logger.debug('taskmanager.report.failed', { error: err as Error });
      this.registration = null; // re-registration reports everything not acknowledged
      return;
    }
    if (res.status !== 200) {
      this.logger.info('taskmanager.report.refused', { reason: errorText(res) });
      this.registration = null;
      this.tickPending = true;
      return;
    }
    this.lastLeaderContact = Date.now();
    this.acknowledge(res.body.acknowledged);
    this.cancelKeys(res.body.cancel, 'the leader does not own them');
  }

  private acknowledge(keys: string[] | undefined): void {
    for (const key of keys ?? []) {
      const t = this.tasks.get(key);
      if (t && TERMINAL_REPORTED.has(t.report.state)) t.acknowledged = true;
    }
    const done = [...this.tasks.entries()].filter(([, t]) => t.acknowledged);
    for (const [key] of done.slice(0, Math.max(0, done.length - FINISHED_HISTORY))) this.tasks.delete(key);
  }

  private checkOrphaned(): void {
    const silentMs = Date.now() - this.lastLeaderContact;
    if (silentMs < this.options.orphanTimeoutMs) return;
    const live = [...this.tasks.values()].filter((t) => !TERMINAL_REPORTED.has(t.report.state));
    if (live.length === 0) return;
    this.logger.warn('taskmanager.orphaned', { silentMs, tasks: live.length, orphanTimeoutMs: this.options.orphanTimeoutMs });
    for (const t of live) void t.running.cancel();
  }

  // ---- tasks -----------------------------------------------------------------------------------

  private deploy(req: DeployRequest): { key: string; state: ReportedState } {
    const id = checkExecutionId(req);
    const key = executionKey(id);
    const existing = this.tasks.get(key);
    if (existing) return { key, state: existing.report.state }; // a retried deploy never starts a second run
    // The leader moved on to a newer attempt of this subtask: an older one still here is stale.
    for (const t of this.tasks.values()) {
      if (t.id.jobId === id.jobId && t.id.vertexId === id.vertexId && t.id.subtask === id.subtask && t.id.attempt < id.attempt &&
          !TERMINAL_REPORTED.has(t.report.state)) {
        this.logger.info('task.cancel.superseded', { jobId: id.jobId, task: executionKey(t.id), by: key });
        void t.running.cancel();
      }
    }
    const live = [...this.tasks.values()].filter((t) => !TERMINAL_REPORTED.has(t.report.state)).length;
    if (live >= this.options.slots) this.logger.warn('taskmanager.oversubscribed', { slots: this.options.slots, running: live + 1, task: key });
    const ctx: TaskContext = {
      jobId: id.jobId, vertexId: id.vertexId, subtaskIndex: id.subtask, parallelism: Number(req.parallelism) || 1, attempt: id.attempt, logDir: this.logDir,
    };
    const running = startTask(req.task as TaskSpec, ctx, { killGraceMs: this.options.killGraceMs });
    const entry: TaskEntry = { id, running, acknowledged: false, report: { ...id, state: 'DEPLOYING', startedAt: running.startedAt, pid: null } };
    this.tasks.set(key, entry);
    this.logger.info('task.status', { jobId: id.jobId, vertexId: id.vertexId, subtask: id.subtask, attempt: id.attempt, status: 'DEPLOYING', epoch: req.epoch });
    running.once('running', (pid: number | null) => {
      if (pid !== null) this.reaper?.track(pid);
      if (entry.report.state !== 'DEPLOYING') return;
      this.update(entry, { state: 'RUNNING', pid });
    });
    running.once('done', (outcome) => {
      if (running.pid !== null) this.reaper?.untrack(running.pid);
      this.update(entry, { state: outcome.state, error: outcome.state === 'FAILED' ? outcome.error : undefined, endedAt: Date.now() });
    });
    return { key, state: 'DEPLOYING' };
  }

  private update(entry: TaskEntry, change: Partial<TaskReport>): void {
    entry.report = { ...entry.report, ...change };
    const { jobId, vertexId, subtask, attempt } = entry.id;
    const level = entry.report.state === 'FAILED' ? 'warn' : 'info';
    this.logger[level]('task.status', { jobId, vertexId, subtask, attempt, status: entry.report.state, error: entry.report.error, pid: entry.report.pid });
    this.unreported.add(executionKey(entry.id));
    this.tick();
  }

  private async cancel(req: CancelRequest): Promise<string[]> {
    const matching = [...this.tasks.values()].filter((t) => t.id.jobId === req.jobId &&
      (req.vertexId === undefined || t.id.vertexId === req.vertexId) &&
      (req.subtask === undefined || t.id.subtask === req.subtask) &&
      (req.attempt === undefined || t.id.attempt === req.attempt) &&
      !TERMINAL_REPORTED.has(t.report.state));
    await Promise.all(matching.map((t) => t.running.cancel()));
    return matching.map((t) => executionKey(t.id));
  }

  private cancelKeys(keys: string[] | undefined, why: string): void {
    for (const key of keys ?? []) {
      const t = this.tasks.get(key);
      if (!t || TERMINAL_REPORTED.has(t.report.state)) continue;
      this.logger.info('task.cancel.unowned', { task: key, reason: why });
      void t.running.cancel();
    }
  }

  private checkEpoch(epoch: unknown): number {
    if (typeof epoch !== 'number' || !Number.isInteger(epoch)) throw new HttpError(400, 'epoch must be an integer: the sending leader\'s fencing token');
    if (epoch < this.highestEpoch) {
      this.logger.warn('taskmanager.command.rejected', { epoch, highestEpoch: this.highestEpoch });
      throw new HttpError(409, `stale leader epoch ${epoch}: this TaskManager has seen epoch ${this.highestEpoch}; the command was not executed`,
        { extra: { epoch: this.highestEpoch } });
    }
    this.highestEpoch = epoch;
    return epoch;
  }

  // ---- RPC server ------------------------------------------------------------------------------

  private app(): Koa {
    const app = new Koa();
    const router = new Router();
    app.use(errorMiddleware({ logger: this.logger, event: 'taskmanager.rpc.internal-error' }));
    router.get('/livez', (ctx) => { ctx.body = { status: 'alive', taskManagerId: this.options.id }; });
    // Everything else runs or reveals tasks: the cluster's internal token, when one is configured.
    router.use(requireInternalToken(this.options.internalToken, new Set(['/livez'])));
    router.get('/tasks', (ctx) => {
      ctx.body = { taskManagerId: this.options.id, highestEpoch: this.highestEpoch, registeredWith: this.registration, tasks: [...this.tasks.values()].map((t) => t.report) };
    });
    router.post('/deploy', async (ctx) => {
      if (this.stallFence.fenced) {
        throw new HttpError(503, 'this TaskManager just resumed from a stall; a deploy sent meanwhile may be stale (its sender may have placed the work elsewhere), so it was not executed');
      }
      const req = (await readJsonBody(ctx, INTERNAL_MAX_BODY_BYTES)) as DeployRequest;
      this.checkEpoch(req?.epoch);
      if (!this.running) throw new HttpError(503, 'this TaskManager is shutting down; deploy elsewhere');
      try {
        ctx.body = this.deploy(req);
      } catch (err) {
        throw new HttpError(400, (err as Error).message);
      }
    });
    router.post('/cancel', async (ctx) => {
      const req = (await readJsonBody(ctx, INTERNAL_MAX_BODY_BYTES)) as CancelRequest;
      this.checkEpoch(req?.epoch);
      if (typeof req.jobId !== 'string') throw new HttpError(400, 'jobId is required');
      ctx.body = { canceled: await this.cancel(req) };
    });
    router.get('/logs/:jobId/:vertexId/:subtask/:attempt', async (ctx) => {
      const p = ctx.params;
      const file = logFilePath({ jobId: p.jobId, vertexId: p.vertexId, subtaskIndex: Number(p.subtask), attempt: Number(p.attempt), parallelism: 1, logDir: this.logDir });
      const text = await readTail(file, 1024 * 1024);
      if (text === null) throw new HttpError(404, 'no log for that task attempt on this TaskManager');
      ctx.type = 'text/plain';
      ctx.body = text;
    });
    app.use(router.routes());
    app.use((ctx) => { throw new HttpError(404, `no such endpoint: ${ctx.method} ${ctx.path}`); });
    return app;
  }

  /** Stops contact, cancels every task (a graceful stop leaves nothing behind), closes the session. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.running = false;
      if (this.timer) clearInterval(this.timer);
      if (this.registerRetry) clearTimeout(this.registerRetry);
      this.stallFence.stop();
      this.retrieval.stop();
      await Promise.all([...this.tasks.values()].map((t) => t.running.cancel()));
      await this.queue.drain();
      // Final outcomes reach the leader if it is reachable; the leader fails the rest over anyway.
      if (this.registration && this.unreported.size > 0) await this.flushReports().catch(() => undefined);
      await this.client.close();
      this.reaper?.stop();
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeIdleConnections();
        setTimeout(() => this.server.closeAllConnections(), 1000).unref();
      });
      this.logger.info('taskmanager.stopped', {});
    })();
    return this.closing;
  }
}

async function readTail(file: string, maxBytes: number): Promise<string | null> {
  try {
    const handle = await fs.promises.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, maxBytes);
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, size - length);
      return buf.toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
}

