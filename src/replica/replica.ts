/**
 * One dispatcher replica process: the composition root that wires the ZooKeeper session, leader
 * election, leader retrieval, the Dispatcher, the REST server and metrics. `close()` is the graceful
 * resign (docs/ARCHITECTURE.md, "Failure model"): end the term for every write guard, delete
 * /leader/info and the latch node, then suspend JobMasters and close the session.
 */
import type * as http from 'node:http';
import * as os from 'node:os';
import { AddressInfo } from 'node:net';
import { DispatcherConfig, advertisedRestUrl, clusterStateKey, logIgnoredFlinkKeys, publicConfig, restCredentials, zookeeperNamespace } from '../config';
import { AuditLog, createAuditLog } from '../security/audit';
import { StateSeal } from '../zk/sealed';
import { LeaderElectionService, LeadershipTerm } from '../election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../election/zk-driver';
import { LeaderRetrievalService } from '../election/retrieval';
import { LeaderLiveness } from '../election/leader-liveness';
import { LeaderForwarder } from '../rest/forward';
import { NativeZooKeeperClient } from '../zk/client';
import { createMetrics, DispatcherMetrics, sessionEventOf } from '../metrics/metrics';
import { createApp, ResourceView } from '../rest/app';
import type { AppDeps } from '../rest/deps';
import { installProtocolErrorHandlers, requireHostHeader } from '../rest/protocol-errors';
import { EventLogger, createLogger } from '../util/logger';
import { Dispatcher } from '../dispatcher/dispatcher';
import { JobMasterFactory } from '../jobmaster/types';
import { PassiveJobMaster } from '../jobmaster/passive-job-master';
import { VERSION } from '../version';
import { BindError, closeServer, createServer, drainServer, type HttpServer, listen } from '../http/server';
import { checkReplicaTls, clusterTls, type ClusterTls } from '../config/cluster-tls';
import { requireAuthentication } from '../config/secure-defaults';
import { LeadershipHistoryStore, termRecord } from '../store/leadership-history';

export interface ReplicaOptions {
  logger?: EventLogger;
  /** Builds the execution backend from the replica's parts; without one, jobs stay CREATED (PassiveJobMaster). */
  execution?: (parts: ReplicaParts) => ExecutionBackend;
  /** What `DELETE /cluster` does once answered; defaults to `close()` (the CLI raises SIGTERM, which also exits). */
  shutdown?: () => void;
}

/** What an execution backend may use: the replica's session, election, logger and metrics. */
export interface ReplicaParts {
  config: DispatcherConfig;
  /** The TLS material read from security.ssl.* (internalClient: for calls to TaskManagers). */
  tls: ClusterTls;
  client: NativeZooKeeperClient;
  election: LeaderElectionService;
  logger: EventLogger;
  metrics: DispatcherMetrics;
  /** The audit log (security.audit.file, else the process log): TaskManager registrations are recorded there. */
  audit: AuditLog;
}

/** What the leader runs jobs with: a JobMaster factory and a view of the TaskManagers. */
export interface ExecutionBackend {
  jobMasterFactory: JobMasterFactory;
  /**
   * A recovered job whose JobMaster is built later (in the recovery pool, after the leader published
   * itself): its TaskManagers' reports are kept until it registers. Returns the release of that.
   */
  expectRecoveredJob?(term: LeadershipTerm, jobId: string): () => void;
  resources: () => ResourceView | null;
  /** Mounted into the REST app (internal RPC endpoints for TaskManagers). */
  install?(app: import('koa')): void;
  /** Called once a job's result is recorded and its graph removed (e.g. to drop its progress node). */
  cleanupJob?(jobId: string, guard: () => void): Promise<void>;
}

export class Replica {
  private closing: Promise<void> | null = null;
  /** rest.shutdown-drain once started; a replica that never started closes at once. */
  private shutdownDrainMs = 0;

  private constructor(
    readonly replicaId: string,
    readonly restUrl: string,
    readonly client: NativeZooKeeperClient,
    readonly election: LeaderElectionService,
    readonly retrieval: LeaderRetrievalService,
    readonly dispatcher: Dispatcher,
    readonly metrics: DispatcherMetrics,
    readonly liveness: LeaderLiveness,
    private readonly forwarder: LeaderForwarder,
    private readonly server: HttpServer,
    private readonly logger: EventLogger,
    private readonly audit: AuditLog,
    /** The REST app's dependencies: the drain switches forwarding on in them. */
    private readonly restDeps: AppDeps,
  ) {}

  static async start(config: DispatcherConfig, options: ReplicaOptions = {}): Promise<Replica> {
    const replicaId = config['replica.id'];
    const logger = (options.logger ?? createLogger({ level: config['log.level'] })).child({ replicaId, component: 'dispatcher' });
    // Before anything connects or listens: an open port that runs commands for anyone is a reason not to start.
    checkReplicaTls(config);
    requireAuthentication('rest.bind-address', config['rest.bind-address'], [
      { name: 'the REST API', authenticated: config['security.rest.token'] !== undefined || config['security.rest.credentials-file'] !== undefined,
        keys: ['security.rest.token-file', 'security.rest.credentials-file'] },
      { name: 'the internal RPC under /internal', authenticated: config['security.internal.token'] !== undefined || config['security.ssl.internal.enabled'],
        keys: ['security.internal.token-file', 'security.ssl.internal.enabled'] },
    ], config['security.allow-unauthenticated-non-loopback'], logger);
    const tls = clusterTls(config);
    const credentials = restCredentials(config);
    const audit = createAuditLog({ file: config['security.audit.file'], logger, fields: { replicaId } });
    const metrics = createMetrics({ defaultMetrics: true, version: VERSION, replicaId });
    const server = createServer(tls.restServer, { requireHostHeader: false });
    // Slow or stalled request bodies must not pin a replica's sockets forever.
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    server.keepAliveTimeout = 5_000;
    // Same events on a TLS server (tls.Server emits clientError, connect and upgrade alike).
    installProtocolErrorHandlers(server as http.Server);
    // Bind before opening a ZooKeeper session: a replica whose port is taken must exit at once, not
    // stay connected (a contender in the election) while serving nothing.
    try {
      await listen(server, config['rest.port'], config['rest.bind-address']);
    } catch (err) {
      throw new BindError('rest.port', config['rest.bind-address'], config['rest.port'], err as NodeJS.ErrnoException);
    }
    const port = (server.address() as AddressInfo).port;
    const restUrl = advertisedRestUrl(config, port);

    const seal = new StateSeal(clusterStateKey(config), {
      logger, onInvalid: ({ context }) => metrics.stateMacInvalid.inc({ kind: context.split(':')[0] }),
    });
    const client = new NativeZooKeeperClient({
      acl: config['high-availability.zookeeper.client.acl'],
      worldReadable: config['high-availability.zookeeper.client.acl-world-read'],
      seal,
      connect: config['high-availability.zookeeper.quorum'],
      chroot: zookeeperNamespace(config),
      sessionTimeoutMs: config['high-availability.zookeeper.client.session-timeout'],
      digestAuth: config['high-availability.zookeeper.client.digest-auth'],
      logger,
      onOperation: (op, ms, error) => metrics.zkOperationSeconds.observe({ op, outcome: error ? error.code : 'ok' }, ms / 1000),
    });
    client.on('state', (change) => {
      metrics.zkConnected.set(change.state === 'CONNECTED' || change.state === 'RECONNECTED' ? 1 : 0);
      const event = sessionEventOf(change.state);
      if (event) metrics.zkSessionEvents.inc({ event });
    });

    const driverFactory = zooKeeperLeaderElectionDriverFactory(client, {
      tolerateSuspendedConnections: config['high-availability.zookeeper.client.tolerate-suspended-connections'],
      logger,
    });
    const election = new LeaderElectionService(driverFactory, {
      contenderInfo: { replicaId, restUrl, rpcUrl: restUrl, host: os.hostname(), version: VERSION },
      logger,
    });
    // The failover timeline: informational, so a failed append is logged and never retried.
    election.on('ready', (term: LeadershipTerm) => void new LeadershipHistoryStore(client).append(termRecord(term, replicaId, restUrl, Date.now()))
      .catch((err) => logger.warn('leadership.history.append-failed', { epoch: term.epoch, error: err as Error })));
    const retrieval = new LeaderRetrievalService(client, { logger, selfRestUrl: restUrl });
    // Standbys never send a client to a leader that stopped answering (its node outlives it by a session timeout).
    const liveness = new LeaderLiveness(retrieval, { selfId: replicaId, logger, tls: tls.replicaClient });
    // Forward mode forwards as a standby; every mode forwards while draining after a graceful stop (close()).
    const forwarder = new LeaderForwarder({ replicaId, liveness, tls: tls.replicaClient });
    const execution = options.execution?.({ config, tls, client, election, logger, metrics, audit });
    const dispatcher = new Dispatcher({
      client, election, metrics, logger,
      jobMasterFactory: execution?.jobMasterFactory ?? ((ctx) => new PassiveJobMaster(ctx)),
      limits: {
        maxParallelism: config['dispatcher.max-parallelism'],
        maxVertices: config['dispatcher.max-vertices-per-job'],
        maxSubtasks: config['dispatcher.max-subtasks-per-job'],
        priorityClasses: config['scheduler.priority-classes'],
      },
      jobstore: { maxCapacity: config['jobstore.max-capacity'], expirationMs: config['jobstore.expiration-time'] * 1000 },
      admission: {
        maxPendingJobs: config['dispatcher.max-pending-jobs'], maxStoredGraphBytes: config['dispatcher.max-stored-jobgraph-bytes'],
        submissionRate: config['dispatcher.submission-rate'], submissionBurst: config['dispatcher.submission-burst'],
      },
      retention: { maxCount: config['job-result-store.retention.max-count'], maxAgeMs: config['job-result-store.retention.max-age'] },
      expectRecoveredJob: execution?.expectRecoveredJob ? (term, jobId) => execution.expectRecoveredJob!(term, jobId) : undefined,
      onJobCleanup: execution?.cleanupJob ? (jobId, guard) => execution.cleanupJob!(jobId, guard) : undefined,
      predecessorLastSeenAt: (epoch) => liveness.lastSeenAt(epoch),
      // While standby, keep graphs, results and quarantine mirrored: a grant then reads only what changed.
      standbyMirror: true,
    });
    const restDeps: AppDeps = {
      replicaId, version: VERSION, dispatcher, retrieval, client, metrics, logger,
      publicConfig: publicConfig(config),
      maxBodyBytes: config['rest.max-body-bytes'],
      resources: execution?.resources,
      install: execution?.install ? (koa) => execution.install!(koa) : undefined,
      restToken: config['security.rest.token'],
      restCredentials: credentials, audit,
      shutdown: () => (options.shutdown ? options.shutdown() : void replica.close()),
      liveness, forwarder: config['rest.standby-mode'] === 'forward' ? forwarder : undefined,
      allowOrigin: config['web.access-control-allow-origin'],
    };
    const app = createApp(restDeps);
    server.on('request', requireHostHeader(app.callback()));
    metrics.bindDispatcher(dispatcher);
    metrics.trackReadyLeader(() => {
      const leader = dispatcher.role === 'leader' ? { replicaId, epoch: dispatcher.epoch } : client.isConnected ? retrieval.current : null;
      return { known: leader !== null, identity: leader ? `${leader.replicaId}@${leader.epoch}` : null };
    });
    const noteLeaderView = (): void => metrics.noteLeaderView();
    client.on('state', noteLeaderView);
    retrieval.on('change', noteLeaderView);
    election.on('ready', noteLeaderView).on('revoked', noteLeaderView);

    const replica = new Replica(replicaId, restUrl, client, election, retrieval, dispatcher, metrics, liveness, forwarder, server, logger, audit, restDeps);
    logger.info('replica.starting', { restUrl, zookeeper: config['high-availability.zookeeper.quorum'], namespace: zookeeperNamespace(config) });
    logIgnoredFlinkKeys(config, logger);
    if (!seal.authenticated) {
      logger.warn('security.state.unauthenticated', {
        reason: 'job graphs, results, progress and leader information in ZooKeeper carry no MAC: anyone who can write the cluster\'s nodes can make the leader run commands; set high-availability.zookeeper.state-key-file (and digest-auth with the creator ACL)' });
    }
    try {
      await client.waitUntilConnected(config['high-availability.zookeeper.client.connection-timeout']);
    } catch (err) {
      await replica.close();
      throw new Error(`cannot reach ZooKeeper at ${config['high-availability.zookeeper.quorum']} within ` +
        `${config['high-availability.zookeeper.client.connection-timeout']} ms (high-availability.zookeeper.quorum): ${(err as Error).message}`);
    }
    retrieval.start();
    liveness.start();
    election.start(dispatcher);
    replica.shutdownDrainMs = config['rest.shutdown-drain'];
    logger.info('replica.started', { restUrl, sessionId: client.sessionId });
    return replica;
  }

  /** Graceful stop: a standby takes over within about one ZooKeeper round trip. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.logger.info('replica.stopping', {});
      await this.election.close();
      this.dispatcher.close();
      // Lame duck: for rest.shutdown-drain the replica answers as a standby that forwards, whatever
      // rest.standby-mode says — a client (or a load balancer whose checks have not marked it down yet)
      // is served by the new leader as soon as one is published, 503 + Retry-After until then, and every
      // answer closes its connection. Not a 307: behind a balancer that makes redirects relative (the
      // recipe), it would lead back here until the checks mark this replica down. The session, leader
      // retrieval and liveness stay for that; they close after the drain.
      this.restDeps.forwarder = this.forwarder;
      if (this.shutdownDrainMs > 0) this.logger.info('replica.draining', { drainMs: this.shutdownDrainMs });
      await drainServer(this.server, this.shutdownDrainMs);
      this.liveness.stop();
      this.retrieval.stop();
      await this.client.close();
      await closeServer(this.server);
      this.forwarder.close();
      await this.audit.close();
      this.logger.info('replica.stopped', {});
    })();
    return this.closing;
  }
}
