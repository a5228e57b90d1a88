/**
 * The TaskManager process: finds the leader through ZooKeeper (its own session, used only for leader
 * retrieval), registers its slots, heartbeats, runs the tasks the leader deploys and reports every
 * state change. Commands from an epoch below the highest a leader verified to it (or far above it) are
 * rejected (409, task-table.ts has the rules).
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
import { DispatcherConfig, clusterStateKey, zookeeperNamespace } from '../config';
import { StateSeal } from '../zk/sealed';
import type { ClientTls } from '../http/client';
import { clusterTls } from '../config/cluster-tls';
import { OPT_OUT_KEY, requireAuthentication } from '../config/secure-defaults';
import type { ServerTls } from '../security/tls';
import { AuditLog, createAuditLog, silentAuditLog } from '../security/audit';
import { LeaderRetrievalService } from '../election/retrieval';
import { NativeZooKeeperClient } from '../zk/client';
import { BindError, schemeOf } from '../http/server';
import { Clock, systemClock } from '../util/clock';
import { EventLogger, createLogger } from '../util/logger';
import { deployRefusal, RunningTask, startTask, TaskContext, TaskSpec } from './task-runner';
import { checkSecretFiles, resolveTaskUser, TaskSandbox } from './task-sandbox';
import { DEFAULT_LOG_LIMITS, LogLimits, sweepLogs } from './task-log';
import { CancelRequest, checkExecutionId, DeployRequest, executionKey, ReportedState } from './protocol';
import { Reaper } from './reaper';
import { StallFence } from '../util/stall-fence';
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
  /** `stateKey`: the cluster state key; leader information that does not verify under it is no leader. */
  zookeeper: { connect: string; root: string; sessionTimeoutMs: number; connectionTimeoutMs: number; digestAuth?: string; stateKey?: Buffer | null };
  logger?: EventLogger;
  killGraceMs?: number;
  /** security.internal.token: sent with every call to the leader, required of every command to us. */
  internalToken?: string;
  /** security.ssl.internal.*: `server` for our RPC server (https, client certificates required), `client` for calls to the leader. */
  tls?: { server?: ServerTls; client?: ClientTls };
  /** security.allow-unauthenticated-non-loopback: start bound beyond loopback without authentication. */
  allowUnauthenticated?: boolean;
  /** Time source of every timer and duration (heartbeats, orphan timeout, back-offs, stall fence); default the system clock. */
  clock?: Clock;
  /** The leader released this TaskManager (drained): how to stop. Default: close() (the process then has nothing keeping it alive). */
  onReleased?: () => void;
  /** taskmanager.task.user: run commands as this system user (the TaskManager must run as root). */
  taskUser?: string;
  /** taskmanager.command.allowed: absolute paths or globs of the programs tasks may run; absent: any. */
  allowedCommands?: string[];
  /** taskmanager.task.secrets-dir; default /run/secrets. */
  secretsDir?: string;
  /** taskmanager.log.max-bytes / max-files; default 10 MiB × 3. */
  log?: LogLimits;
  /** taskmanager.log.retention, ms: logs of attempts that ended longer ago are swept; default 7 days. */
  logRetentionMs?: number;
  /** The config and token files: checked at start-up (not readable by tasks) and never handed to a task as a secret. */
  secretFiles?: string[];
  /** security.audit.file: where refused RPC requests are audited (JSON lines, created 0600); unset: the process log, event `audit`. */
  auditFile?: string;
}

const DEFAULT_LOG_RETENTION_MS = 7 * 86_400_000;
/** How often the log retention sweep runs at most; a shorter retention sweeps at a quarter of it. */
const MAX_SWEEP_INTERVAL_MS = 10 * 60_000;

export class TaskManager {
  private readonly tasks = new TaskTable<RunningTask>();
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private readonly leader: LeaderConnection;
  private rpc: RpcServer | null = null;
  private audit: AuditLog = silentAuditLog;
  private running = false;
  private closing: Promise<void> | null = null;
  private address = '';
  readonly logDir: string;
  /** Root of the per-attempt work directories, `<dataDir>/<id>/work`. */
  readonly workRoot: string;
  private sandbox!: TaskSandbox;
  private sweepTimer: ReturnType<Clock['setTimeout']> | null = null;
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
    private readonly client: NativeZooKeeperClient,
    retrieval: LeaderRetrievalService,
    logger: EventLogger,
  ) {
    this.logger = logger;
    this.clock = options.clock ?? systemClock;
    this.logDir = path.join(options.dataDir, options.id, 'logs');
    this.workRoot = path.join(options.dataDir, options.id, 'work');
    this.stallFence = new StallFence({
      thresholdMs: 3000, fenceMs: 1000, clock: this.clock,
      onStall: (gapMs) => this.logger.warn('taskmanager.stalled', { gapMs: Math.round(gapMs), reason: 'the process stood still; deploys that were queued meanwhile are refused' }),
    });
    this.leader = new LeaderConnection({
      taskManagerId: options.id, instanceId: randomUUID(), host: os.hostname(), slots: options.slots,
      heartbeatIntervalMs: options.heartbeatIntervalMs, orphanTimeoutMs: options.orphanTimeoutMs, internalToken: options.internalToken, tls: options.tls?.client,
      leaders: retrieval, tasks: this.tasks, clock: this.clock, logger,
      onRelease: () => (options.onReleased ? options.onReleased() : void this.close()),
    });
  }

  /** `files.configFile`: the config file the process was started with, checked like the token files. */
  static optionsFrom(config: DispatcherConfig, logger?: EventLogger, files: { configFile?: string } = {}): TaskManagerOptions {
    const secretFiles = [files.configFile, config['security.internal.token-file'], config['security.rest.token-file'],
      config['high-availability.zookeeper.client.digest-auth-file'], config['high-availability.zookeeper.state-key-file'],
      config['security.ssl.internal.key-file'], config['security.ssl.rest.key-file']]
      .filter((f): f is string => f !== undefined).map((f) => path.resolve(f));
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
        stateKey: clusterStateKey(config),
      },
      logger: logger ?? createLogger({ level: config['log.level'] }),
      internalToken: config['security.internal.token'],
      tls: (({ internalServer, internalClient }) => ({ server: internalServer, client: internalClient }))(clusterTls(config)),
      allowUnauthenticated: config[OPT_OUT_KEY],
      taskUser: config['taskmanager.task.user'],
      allowedCommands: config['taskmanager.command.allowed']?.split(','),
      secretsDir: config['taskmanager.task.secrets-dir'],
      log: { maxBytes: config['taskmanager.log.max-bytes'], maxFiles: config['taskmanager.log.max-files'] },
      logRetentionMs: config['taskmanager.log.retention'],
      secretFiles,
      auditFile: config['security.audit.file'],
    };
  }

  /**
   * Binds the RPC server, connects to ZooKeeper (waiting up to `zookeeper.connectionTimeoutMs`) and starts
   * following the leader. Throws BindError (naming taskmanager.rpc-port, after closing the ZooKeeper session) when the port cannot be
   * bound; an Error when ZooKeeper is unreachable in time, when the task user does not exist, when a secret
   * file is readable by the task user, or when the audit file cannot be opened.
   */
  static async start(options: TaskManagerOptions): Promise<TaskManager> {
    const logger = (options.logger ?? createLogger()).child({ taskManagerId: options.id, component: 'taskmanager' });
    requireAuthentication('taskmanager.bind-address', options.bindAddress, [{
      name: 'the TaskManager RPC (deploys commands)', authenticated: options.internalToken !== undefined || options.tls?.server?.clientCa !== undefined,
      keys: ['security.internal.token-file', 'security.ssl.internal.enabled'],
    }], options.allowUnauthenticated ?? false, logger);
    // Before anything listens: a sandbox that cannot hold is a reason not to start at all.
    const user = options.taskUser === undefined ? undefined : resolveTaskUser(options.taskUser);
    checkSecretFiles(options.secretFiles ?? [], user, logger);
    if (user === undefined && process.getuid?.() === 0) {
      logger.warn('taskmanager.task.runs-as-root', { reason: 'tasks run as root, like this TaskManager; set taskmanager.task.user (e.g. ha-task) to run them as an unprivileged user' });
    }
    // Before the session: an audit file that cannot be opened stops the start with nothing to clean up.
    const audit = createAuditLog({ file: options.auditFile, logger, fields: { taskManagerId: options.id } });
    const client = new NativeZooKeeperClient({
      connect: options.zookeeper.connect, chroot: options.zookeeper.root, sessionTimeoutMs: options.zookeeper.sessionTimeoutMs,
      digestAuth: options.zookeeper.digestAuth, logger, seal: new StateSeal(options.zookeeper.stateKey ?? null, { logger }),
    });
    const retrieval = new LeaderRetrievalService(client, { logger });
    const tm = new TaskManager(options, client, retrieval, logger);
    tm.audit = audit;
    try {
      tm.rpc = await RpcServer.listen(tm.commands(), { bindAddress: options.bindAddress, port: options.rpcPort, internalToken: options.internalToken, tls: options.tls?.server, logger,
        metrics: tm.metrics.middleware(), audit });
    } catch (err) {
      // No session may outlive a TaskManager that could not bind: close it before reporting.
      await client.close();
      await audit.close();
      throw new BindError('taskmanager.rpc-port', options.bindAddress, options.rpcPort, err as NodeJS.ErrnoException);
    }
    const host = ['0.0.0.0', '::'].includes(options.bindAddress) ? os.hostname() : options.bindAddress;
    tm.address = options.advertisedUrl ?? `${schemeOf(options.tls?.server)}://${isIP(host) === 6 ? `[${host}]` : host}:${tm.rpc.port}`;
    tm.sandbox = {
      workRoot: tm.workRoot, user, allowedCommands: options.allowedCommands, secretsDir: options.secretsDir ?? '/run/secrets',
      protectedFiles: options.secretFiles,
    };
    fs.mkdirSync(tm.logDir, { recursive: true, mode: 0o700 });
    // Work dirs of a former process under this id: its tasks died with it (the reaper), so nothing uses them.
    fs.rmSync(tm.workRoot, { recursive: true, force: true });
    fs.mkdirSync(tm.workRoot, { recursive: true, mode: 0o711 });
    tm.reaper = Reaper.start(logger);
    tm.scheduleLogSweep();
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
    logger.info('taskmanager.started', { address: tm.address, slots: options.slots, logDir: tm.logDir,
      authenticated: options.internalToken !== undefined || options.tls?.server?.clientCa !== undefined, tls: options.tls?.server !== undefined });
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
    const refused = deployRefusal(req.task as TaskSpec, ctx, this.sandbox);
    if (refused) {
      this.logger.warn('task.deploy.refused', { jobId: id.jobId, task: key, reason: refused });
      throw new Error(refused); // answered 400: the JobMaster fails the attempt with this reason
    }
    const running = startTask(req.task as TaskSpec, ctx, { killGraceMs: this.options.killGraceMs, sandbox: this.sandbox, log: this.options.log ?? DEFAULT_LOG_LIMITS });
    this.metrics.taskLaunched();
    const entry = this.tasks.add(id, running, running.startedAt);
    this.logger.info('task.status', { jobId: id.jobId, vertexId: id.vertexId, subtask: id.subtask, attempt: id.attempt, status: 'DEPLOYING', epoch: req.epoch });
    running.once('running', (pid: number | null) => {
      if (pid !== null) this.reaper?.track(pid);
      if (entry.report.state !== 'DEPLOYING') return;
      this.update(key, { state: 'RUNNING', pid });
    });
    running.once('output-closed', (drainMs: number) => {
      this.logger.warn('task.output.closed', { jobId: id.jobId, task: key, pid: running.pid, drainMs,
        reason: 'the output pipes were still open after the process group had ended; closed so that the attempt ends' });
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

  /** Deletes logs of attempts no longer here that were last written more than logRetentionMs ago, then re-arms. */
  private scheduleLogSweep(): void {
    const retentionMs = this.options.logRetentionMs ?? DEFAULT_LOG_RETENTION_MS;
    this.sweepTimer = this.clock.setTimeout(() => {
      try {
        const live = new Set(this.tasks.live().map((t) => t.handle.logFile));
        const deleted = sweepLogs(this.logDir, this.clock.now() - retentionMs, (file) => live.has(file));
        if (deleted.length > 0) this.logger.info('taskmanager.logs.swept', { count: deleted.length, retentionMs });
      } catch (err) {
        this.logger.warn('taskmanager.logs.sweep-failed', { error: err as Error });
      }
      if (this.sweepTimer !== null) this.scheduleLogSweep();
    }, Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(1000, Math.floor(retentionMs / 4))));
    this.sweepTimer.unref?.();
  }

  /** Stops contact, cancels every task (a graceful stop leaves nothing behind), closes the session. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.running = false;
      if (this.sweepTimer !== null) this.clock.clearTimeout(this.sweepTimer);
      this.sweepTimer = null;
      this.leader.stop();
      this.stallFence.stop();
      await Promise.all(this.tasks.all().map((t) => t.handle.cancel()));
      await this.leader.flushFinal();
      await this.client.close();
      this.reaper?.stop();
      await this.rpc?.close();
      await this.audit.close();
      this.logger.info('taskmanager.stopped', {});
    })();
    return this.closing;
  }
}
