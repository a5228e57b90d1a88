/**
 * The ResourceManager lifecycle of a replica (Flink's ResourceManagerService): one ResourceManager per
 * leader term, created when the term is granted (or first asked for), stopped when the term is revoked.
 * A standby has none. Also mounts the internal RPC routes TaskManagers talk to, which always reach the
 * current term's ResourceManager.
 */
import type Koa from 'koa';
import type { DispatcherConfig } from '../config';
import type { LeaderElectionService, LeadershipTerm } from '../election/service';
import type { DispatcherMetrics } from '../metrics/metrics';
import type { EventLogger } from '../util/logger';
import { ResourceManager } from './resource-manager';
import { allocationStrategy } from './allocation';
import { mountInternalRoutes } from './routes';
import type { AuditLog } from '../security/audit';
import type { ClusterTls } from '../config/cluster-tls';
import { slotReservations } from './slot-queue';
import type { DrainRecords } from './drain';
import { NotLeaderError } from '../http/errors';
import { Autoscaler, AutoscalerStateStore, TaskManagerProvider } from './autoscaler';

export interface ResourceManagerServiceParts {
  config: DispatcherConfig;
  /** security.ssl.internal.*: `internalClient` for commands to TaskManagers. */
  tls?: ClusterTls;
  election: LeaderElectionService;
  logger: EventLogger;
  metrics?: DispatcherMetrics;
  /** Where TaskManager registrations and refused internal calls are audited. */
  audit?: AuditLog;
  /** Where a term's drains are stored (ZooKeeper, src/store/drain-store.ts); `guard` throws NotLeaderError once the term is over. Absent: in memory. */
  drainRecords?: (guard: () => void) => DrainRecords;
  /**
   * With resourcemanager.autoscaler.enabled: the provider (one per replica) and where a term stores the
   * autoscaler's state (`guard` as for drains). Absent: no autoscaling.
   */
  autoscaling?: { provider: TaskManagerProvider; state: (guard: () => void) => AutoscalerStateStore };
}

export class ResourceManagerService {
  private rm: ResourceManager | null = null;
  private rmTerm: LeadershipTerm | null = null;
  private autoscaler: Autoscaler | null = null;

  constructor(private readonly parts: ResourceManagerServiceParts) {
    parts.election.on('elected', (term: LeadershipTerm) => this.resourceManagerFor(term));
    parts.election.on('revoked', (term: LeadershipTerm) => {
      if (this.rmTerm === term) this.stopResourceManager();
    });
  }

  /** The current term's ResourceManager while it is active (ready leader), for REST views; null on a standby. */
  readonly resources = (): ResourceManager | null => (this.rm?.active ? this.rm : null);

  /** Mounts `/internal/*` (TaskManager registration, heartbeats, task reports) on the replica's app. */
  install(app: Koa): void {
    mountInternalRoutes(app, () => this.rm, { token: this.parts.config['security.internal.token'], mutualTls: this.parts.config['security.ssl.internal.enabled'],
      logger: this.parts.logger, audit: this.parts.audit });
  }

  /** The ResourceManager of `term`, started on first use; replaces (stops) the one of an earlier term. */
  resourceManagerFor(term: LeadershipTerm): ResourceManager {
    if (this.rm && this.rmTerm === term) return this.rm;
    this.stopResourceManager();
    const { config, election, logger, metrics } = this.parts;
    const rm = new ResourceManager({
      epoch: term.epoch,
      heartbeatTimeoutMs: config['heartbeat.timeout'],
      strategy: allocationStrategy(config['resourcemanager.allocation-strategy']),
      // TaskManagers are heard only once the term is ready (they look the leader up in /leader/info,
      // written then anyway). Recovered jobs whose JobMaster has not started yet are expected by then,
      // so their reports are kept for them (expectJob), never acknowledged unrecorded or canceled.
      isActive: () => election.isLeader(term) && election.isReadyLeader,
      internalToken: config['security.internal.token'],
      onEpochBehind: (reported) => void election.takeTermAbove(term, reported),
      internalTls: this.parts.tls?.internalClient,
      reservations: slotReservations(config['resourcemanager.reserved-slots'], config['scheduler.priority-classes']),
      preemption: config['scheduler.preemption.enabled'],
      drains: this.parts.drainRecords?.(() => {
        if (!election.isLeader(term)) throw new NotLeaderError(`leader term ${term.epoch} is over; the drain was not stored`);
      }),
      logger,
      metrics,
    });
    rm.start();
    this.rm = rm;
    this.rmTerm = term;
    const autoscaling = this.parts.autoscaling;
    if (autoscaling && config['resourcemanager.autoscaler.enabled']) {
      this.autoscaler = new Autoscaler({
        epoch: term.epoch, resources: rm, provider: autoscaling.provider,
        store: autoscaling.state(() => {
          if (!election.isLeader(term)) throw new NotLeaderError(`leader term ${term.epoch} is over; the autoscaler state was not stored`);
        }),
        min: config['resourcemanager.autoscaler.min'], max: config['resourcemanager.autoscaler.max'],
        scaleUpDelayMs: config['resourcemanager.autoscaler.scale-up-delay'], scaleDownCooldownMs: config['resourcemanager.autoscaler.scale-down-cooldown'],
        launchTimeoutMs: config['resourcemanager.autoscaler.launch-timeout'], slotsPerTaskManager: config['taskmanager.numberOfTaskSlots'],
        // TaskManagers find a new leader and register within a heartbeat timeout: until then the pool only looks small.
        settleMs: config['heartbeat.timeout'], tickMs: Math.max(50, Math.min(1000, Math.floor(config['heartbeat.timeout'] / 4))),
        logger, metrics,
      });
      this.autoscaler.start();
    }
    return rm;
  }

  private stopResourceManager(): void {
    this.autoscaler?.stop();
    this.autoscaler = null;
    this.parts.metrics?.autoscalerDesired.set(0);
    this.parts.metrics?.autoscalerPendingLaunches.set(0);
    this.rm?.stop();
    this.rm = null;
    this.rmTerm = null;
    this.parts.metrics?.taskManagers.set(0);
    this.parts.metrics?.slots.set(0);
    this.parts.metrics?.slotsAvailable.set(0);
  }
}
