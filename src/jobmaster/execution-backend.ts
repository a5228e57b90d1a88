/**
 * The execution backend a replica runs jobs with: a SchedulingJobMaster per job, on the current term's
 * ResourceManager (src/resources/resource-manager-service.ts owns that per-term lifecycle and the
 * internal RPC routes), and cleanup of a job's progress node once its result is recorded.
 */
import type Koa from 'koa';
import { clusterRestartStrategy, DispatcherConfig } from '../config';
import type { LeaderElectionService, LeadershipTerm } from '../election/service';
import type { ZooKeeperClient } from '../zk/client';
import type { DispatcherMetrics } from '../metrics/metrics';
import { EventLogger } from '../util/logger';
import type { ResourceManager } from '../resources/resource-manager';
import { ResourceManagerService } from '../resources/resource-manager-service';
import { removeJobProgress, ZkProgressStore } from '../store/progress-store';
import { ZkDrainStore } from '../store/drain-store';
import { ZkAutoscalerStore } from '../store/autoscaler-store';
import { autoscalingProvider } from '../resources/autoscaler-providers';
import { SchedulingJobMaster } from './job-master';
import type { JobMaster, JobMasterContext } from './types';

export interface ExecutionParts {
  config: DispatcherConfig;
  client: ZooKeeperClient;
  election: LeaderElectionService;
  logger: EventLogger;
  metrics?: DispatcherMetrics;
}

export class ExecutionBackendImpl {
  private readonly resourceManagers: ResourceManagerService;

  constructor(private readonly parts: ExecutionParts) {
    const provider = parts.config['resourcemanager.autoscaler.enabled'] ? autoscalingProvider(parts.config) : null;
    this.resourceManagers = new ResourceManagerService({
      ...parts, drainRecords: (guard) => new ZkDrainStore(parts.client, guard, parts.logger),
      autoscaling: provider ? { provider, state: (guard) => new ZkAutoscalerStore(parts.client, guard, parts.logger) } : undefined,
    });
  }

  readonly jobMasterFactory = (ctx: JobMasterContext): JobMaster => {
    const { config, client, logger } = this.parts;
    return new SchedulingJobMaster({
      context: ctx,
      executor: this.resourceManagers.resourceManagerFor(ctx.term),
      progress: new ZkProgressStore(client, ctx.guard, ctx.graph.jobId),
      defaultRestartStrategy: clusterRestartStrategy(config),
      reconcileTimeoutMs: config['jobmanager.reconcile-timeout'],
      defaultPriority: config['scheduler.priority-classes'][config['scheduler.default-priority-class']] ?? 0,
      priorityClasses: config['scheduler.priority-classes'],
      logger: logger.child({ component: 'jobmaster' }),
    });
  };

  /** Keeps `jobId`'s TaskManager reports on `term`'s ResourceManager until its JobMaster registers (recovery). */
  readonly expectRecoveredJob = (term: LeadershipTerm, jobId: string): (() => void) => this.resourceManagers.resourceManagerFor(term).expectJob(jobId);

  /** The current term's ResourceManager, for REST views (null on a standby). */
  readonly resources = (): ResourceManager | null => this.resourceManagers.resources();

  install(app: Koa): void {
    this.resourceManagers.install(app);
  }

  /** After the Dispatcher recorded a job's result: its progress (`/jobs/<jobId>`) is no longer needed. */
  async cleanupJob(jobId: string, guard: () => void): Promise<void> {
    await removeJobProgress(this.parts.client, guard, jobId);
  }
}

export function createExecutionBackend(parts: ExecutionParts): ExecutionBackendImpl {
  return new ExecutionBackendImpl(parts);
}
