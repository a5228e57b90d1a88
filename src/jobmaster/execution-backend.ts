/**
 * The execution backend a replica runs jobs with: one ResourceManager per leader term (created when
 * the term is granted, stopped when it ends), a SchedulingJobMaster per job, the internal RPC routes
 * TaskManagers talk to, and cleanup of a job's progress node once its result is recorded.
 */
import type Koa from 'koa';
import { clusterRestartStrategy, DispatcherConfig } from '../config';
import type { LeaderElectionService, LeadershipTerm } from '../election/service';
import type { ZkClient } from '../zk/client';
import type { DispatcherMetrics } from '../metrics/metrics';
import { EventLogger } from '../util/logger';
import { ResourceManager } from '../resources/resource-manager';
import { allocationStrategy } from '../resources/allocation';
import { mountInternalRoutes } from '../resources/routes';
import { SchedulingJobMaster } from './job-master';
import { removeJobProgress, ZkProgressStore } from './progress-store';
import type { JobMaster, JobMasterContext } from './types';

export interface ExecutionParts {
  config: DispatcherConfig;
  client: ZkClient;
  election: LeaderElectionService;
  logger: EventLogger;
  metrics?: DispatcherMetrics;
}

export class ExecutionBackendImpl {
  private rm: ResourceManager | null = null;
  private rmTerm: LeadershipTerm | null = null;

  constructor(private readonly parts: ExecutionParts) {
    parts.election.on('elected', (term: LeadershipTerm) => this.resourceManagerFor(term));
    parts.election.on('revoked', (term: LeadershipTerm) => {
      if (this.rmTerm === term) this.stopResourceManager();
    });
  }

  readonly jobMasterFactory = (ctx: JobMasterContext): JobMaster => {
    const { config, client, logger } = this.parts;
    return new SchedulingJobMaster({
      context: ctx,
      executor: this.resourceManagerFor(ctx.term),
      progress: new ZkProgressStore(client, ctx.guard, ctx.graph.jobId),
      defaultRestartStrategy: clusterRestartStrategy(config),
      reconcileTimeoutMs: config['jobmanager.reconcile-timeout'],
      logger: logger.child({ component: 'jobmaster' }),
    });
  };

  /** The current term's ResourceManager, for REST views (null on a standby). */
  readonly resources = (): ResourceManager | null => (this.rm?.active ? this.rm : null);

  install(app: Koa): void {
    mountInternalRoutes(app, () => this.rm, this.parts.config['security.internal.token']);
  }

  /** After the Dispatcher recorded a job's result: its progress is no longer needed. */
  async cleanupJob(jobId: string, guard: () => void): Promise<void> {
    await removeJobProgress(this.parts.client, guard, jobId);
  }

  private resourceManagerFor(term: LeadershipTerm): ResourceManager {
    if (this.rm && this.rmTerm === term) return this.rm;
    this.stopResourceManager();
    const { config, election, logger, metrics } = this.parts;
    const rm = new ResourceManager({
      epoch: term.epoch,
      heartbeatTimeoutMs: config['heartbeat.timeout'],
      strategy: allocationStrategy(config['resourcemanager.allocation-strategy']),
      // TaskManagers are heard only once the term is ready: before recovery has started every JobMaster,
      // a terminal report would find no job to note it and be acknowledged unrecorded (and the subtask
      // would run again). TaskManagers look the leader up in /leader/info, written at readiness, anyway.
      isActive: () => election.isLeader(term) && election.isReadyLeader,
      internalToken: config['security.internal.token'],
      logger,
      metrics,
    });
    rm.start();
    this.rm = rm;
    this.rmTerm = term;
    return rm;
  }

  private stopResourceManager(): void {
    this.rm?.stop();
    this.rm = null;
    this.rmTerm = null;
    this.parts.metrics?.taskManagers.set(0);
    this.parts.metrics?.slots.set(0);
    this.parts.metrics?.slotsAvailable.set(0);
  }
}

export function createExecutionBackend(parts: ExecutionParts): ExecutionBackendImpl {
  return new ExecutionBackendImpl(parts);
}
