/**
 * The TaskManager process: finds the leader through ZooKeeper (its own session, used only for leader
 * retrieval), registers its slots, heartbeats, runs the tasks the leader deploys and reports every
 * state change. Commands from an epoch below the highest it has seen are rejected (409).
 *
 * A leader change alone never stops a task: the TaskManager re-registers with the new leader and
 * reports what it still runs, plus finished outcomes no leader has acknowledged yet. Only when no
 * leader could be reached for `taskmanager.orphan-timeout` does it stop its tasks.
 *
 * This module composes the parts and owns the lifecycle: the task table (task-table.ts), the leader
 * connection (leader-connection.ts), the RPC server (rpc-server.ts), the stall fence and the reaper;
 * it starts task attempts and feeds their state changes to the table and the connection.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isIP } from 'node:net';
import { DispatcherConfig, isLoopbackAddress, zookeeperNamespace } from '../config';
import { LeaderRetrievalService } from '../election/retrieval';
import { ZooKeeperClient } from '../zk/client';
import { BindError } from '../http/server';
import { Clock, systemClock } from '../util/clock';
import { EventLogger, createLogger } from '../util/logger';
import { RunningTask, startTask, TaskContext, TaskSpec } from './task-runner';
import { CancelRequest, checkExecutionId, DeployRequest, executionKey, ReportedState } from './protocol';
import { Reaper } from './reaper';
import { StallFence } from './stall-fence';
import { TaskTable } from './task-table';
import { LeaderConnection } from './leader-connection';
import { RpcServer, TaskManagerCommands } from './rpc-server';
import { createTaskManagerMetrics } from '../metrics/taskmanager-metrics';
import { VERSION } from '../version';

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
  /** Time source of every timer and duration (heartbeats, orphan timeout, back-offs, stall fence); default the system clock. */
  clock?: Clock;
}

export class TaskManager {
  private readonly tasks = new TaskTable<RunningTask>();
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private readonly leader: LeaderConnection;
  private rpc: RpcServer | null = null;
  private running = false;
  private closing: Promise<void> | null = null;
  private address = '';
  readonly logDir: string;
  private reaper: Reaper | null = null;
  /** A stall shorter than the leader's deploy timeout cannot leave a deploy the leader gave up on. */
  private readonly stallFence: StallFence;
  private readonly metrics = createTaskManagerMetrics({
    slots: () => this.options.slots,
    logDir: () => this.logDir,
    taskStates: () => this.tasks.reports().map((r) => r.state),
    leaderContact: () => {
      const reg = this.leader.registration;
      const ageMs = this.leader.leaderContactAgeMs;
      return reg && ageMs !== null ? { leaderId: reg.leaderId, ageMs } : null;
    },
  }, { version: VERSION });

  private constructor(
    private readonly options: TaskManagerOptions,
    private readonly client: ZooKeeperClient,
    retrieval: LeaderRetrievalService,
    logger: EventLogger,
  ) {
    this.logger = logger;
    this.clock = options.clock ?? systemClock;
    this.logDir = path.join(options.dataDir, options.id, 'logs');
    this.stallFence = new StallFence({
      thresholdMs: 3000, fenceMs: 1000, clock: this.clock,
      onStall: (gapMs) => this.logger.warn('taskmanager.stalled', { gapMs: Math.round(gapMs), reason: 'the process stood still; deploys that were queued meanwhile are refused' }),
    });
    this.leader = new LeaderConnection({
      taskManagerId: options.id, instanceId: randomUUID(), host: os.hostname(), slots: options.slots,
      heartbeatIntervalMs: options.heartbeatIntervalMs, orphanTimeoutMs: options.orphanTimeoutMs, internalToken: options.internalToken,
      leaders: retrieval, tasks: this.tasks, clock: this.clock, logger,
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

  /**
   * Binds the RPC server, connects to ZooKeeper (waiting up to `zookeeper.connectionTimeoutMs`) and starts
   * following the leader. Throws BindError (naming taskmanager.rpc-port, after closing the ZooKeeper session) when the port cannot be
   * bound, or an Error when ZooKeeper is unreachable in time.
   */
  static async start(options: TaskManagerOptions): Promise<TaskManager> {
    const logger = (options.logger ?? createLogger()).child({ taskManagerId: options.id, component: 'taskmanager' });
    const client = new ZooKeeperClient({
      connect: options.zookeeper.connect, root: options.zookeeper.root, sessionTimeoutMs: options.zookeeper.sessionTimeoutMs,
      digestAuth: options.zookeeper.digestAuth, logger,
    });
    const retrieval = new LeaderRetrievalService(client, { logger });
    const tm = new TaskManager(options, client, retrieval, logger);
    try {
      tm.rpc = await RpcServer.listen(tm.commands(), { bindAddress: options.bindAddress, port: options.rpcPort, internalToken: options.internalToken, logger, metrics: tm.metrics.middleware() });
    } catch (err) {
      // No session may outlive a TaskManager that could not bind: close it before reporting.
      await client.close();
      throw new BindError('taskmanager.rpc-port', options.bindAddress, options.rpcPort, err as NodeJS.ErrnoException);
    }
    const host = ['0.0.0.0', '::'].includes(options.bindAddress) ? os.hostname() : options.bindAddress;
    tm.address = options.advertisedUrl ?? `http://${isIP(host) === 6 ? `[${host}]` : host}:${tm.rpc.port}`;
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
    tm.leader.start(tm.address);
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

  /** What the RPC server delegates to. */
  private commands(): TaskManagerCommands {
    return {
      taskManagerId: this.options.id,
      logDir: this.logDir,
      stalled: () => this.stallFence.fenced,
      highestEpoch: () => this.tasks.highestEpoch,
      admitCommand: (epoch) => this.tasks.admitCommand(epoch),
      accepting: () => this.running,
      deploy: (req) => this.deploy(req),
      cancel: (req) => this.cancel(req),
      status: () => ({
        taskManagerId: this.options.id, highestEpoch: this.tasks.highestEpoch, registeredWith: this.leader.registration, tasks: this.tasks.reports(),
      }),
    };
  }

  private deploy(req: DeployRequest): { key: string; state: ReportedState } {
    const id = checkExecutionId(req);
    const key = executionKey(id);
    const existing = this.tasks.get(key);
    if (existing) return { key, state: existing.report.state }; // a retried deploy never starts a second run
    // The leader moved on to a newer attempt of this subtask: an older one still here is stale.
    for (const t of this.tasks.supersededBy(id)) {
      this.logger.info('task.cancel.superseded', { jobId: id.jobId, task: t.key, by: key });
      void t.handle.cancel();
    }
    const live = this.tasks.live().length;
    if (live >= this.options.slots) this.logger.warn('taskmanager.oversubscribed', { slots: this.options.slots, running: live + 1, task: key });
    const ctx: TaskContext = {
      jobId: id.jobId, vertexId: id.vertexId, subtaskIndex: id.subtask, parallelism: Number(req.parallelism) || 1, attempt: id.attempt, logDir: this.logDir,
    };
    const running = startTask(req.task as TaskSpec, ctx, { killGraceMs: this.options.killGraceMs });
    this.metrics.taskLaunched();
    const entry = this.tasks.add(id, running, running.startedAt);
    this.logger.info('task.status', { jobId: id.jobId, vertexId: id.vertexId, subtask: id.subtask, attempt: id.attempt, status: 'DEPLOYING', epoch: req.epoch });
    running.once('running', (pid: number | null) => {
      if (pid !== null) this.reaper?.track(pid);
      if (entry.report.state !== 'DEPLOYING') return;
      this.update(key, { state: 'RUNNING', pid });
    });
    running.once('done', (outcome) => {
      if (running.pid !== null) this.reaper?.untrack(running.pid);
      this.update(key, { state: outcome.state, error: outcome.state === 'FAILED' ? outcome.error : undefined, endedAt: this.clock.now() });
    });
    return { key, state: 'DEPLOYING' };
  }

  private update(key: string, change: Parameters<TaskTable['update']>[1]): void {
    const report = this.tasks.update(key, change);
    if (!report) return;
    const { jobId, vertexId, subtask, attempt } = report;
    const level = report.state === 'FAILED' ? 'warn' : 'info';
    this.logger[level]('task.status', { jobId, vertexId, subtask, attempt, status: report.state, error: report.error, pid: report.pid });
    this.leader.reportChanged(key);
  }

  private async cancel(req: CancelRequest): Promise<string[]> {
    const matching = this.tasks.matching(req);
    await Promise.all(matching.map((t) => t.handle.cancel()));
    return matching.map((t) => t.key);
  }

  /** Stops contact, cancels every task (a graceful stop leaves nothing behind), closes the session. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.running = false;
      this.leader.stop();
      this.stallFence.stop();
      await Promise.all(this.tasks.all().map((t) => t.handle.cancel()));
      await this.leader.flushFinal();
      await this.client.close();
      this.reaper?.stop();
      await this.rpc?.close();
      this.logger.info('taskmanager.stopped', {});
    })();
    return this.closing;
  }
}
