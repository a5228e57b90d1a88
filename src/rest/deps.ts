/**
 * What the REST API is built from. Narrow views of the Dispatcher and leader retrieval, so unit tests
 * can drive `createApp(deps).callback()` with fakes instead of ZooKeeper.
 */
import type Koa from 'koa';
import type { Dispatcher } from '../dispatcher/dispatcher';
import type { LeaderRetrievalService } from '../election/retrieval';
import type { ZooKeeperClient } from '../zk/client';
import type { DispatcherMetrics } from '../metrics/metrics';
import type { EventLogger } from '../util/logger';
import type { TaskManagerView } from '../resources/resource-manager';
import type { DrainRecord } from '../resources/drain';

export type { TaskManagerView };
import type { LeaderLivenessView } from '../election/leader-liveness';
import type { LeaderForwarder } from './forward';
import type { Credentials } from '../security/credentials';
import type { AuditLog } from '../security/audit';

/** Read-only view of the cluster's TaskManagers (the leader's ResourceManager). */
export interface ResourceView {
  overview(): { taskmanagers: number; 'slots-total': number; 'slots-available': number };
  /** Drained TaskManagers and their free slots (Flink's blocked ones); absent on fakes: none. */
  blockedOverview?(): { 'taskmanagers-blocked': number; 'slots-free-and-blocked': number };
  /**
   * Drains a TaskManager (src/resources/resource-manager.ts `drain`): `deadlineMs` from now, or null.
   * Absent on views that cannot (fakes): the route answers 404.
   */
  drain?(taskManagerId: string, deadlineMs: number | null): Promise<DrainRecord>;
  list(): TaskManagerView[];
  get(id: string): TaskManagerView | null;
  /** Text of a task attempt's log file on a TaskManager, read through it; null when unknown. */
  taskLog?(jobId: string, vertexId: string, subtask: number, attempt: number): Promise<string | null>;
}

/** The Dispatcher as the REST API uses it: its role and the leader-only requests. */
export type RestDispatcher = Pick<Dispatcher,
  'role' | 'epoch' | 'submit' | 'cancel' | 'listJobs' | 'jobsOverview' | 'jobDetails' | 'jobExceptions' |
  'executionResult' | 'quarantined' | 'jobCounts' | 'pageOfJobs' | 'pageOfJobsOverview' | 'admissionStatus' | 'resultRetentionStatus'> &
  // The standby mirror, for /health (absent or null: none).
  Partial<Pick<Dispatcher, 'mirror'>>;

export interface AppDeps {
  replicaId: string;
  version: string;
  dispatcher: RestDispatcher;
  /** The ready leader as published in /leader/info (`current`, null when none is known). */
  retrieval: Pick<LeaderRetrievalService, 'current'>;
  client: ZooKeeperClient;
  /** The configuration by canonical key, secrets redacted (src/config `publicConfig`); `GET /jobmanager/config` lists it. */
  publicConfig: Record<string, unknown>;
  /** rest.max-body-bytes: larger submissions get 413. */
  maxBodyBytes: number;
  resources?: () => ResourceView | null;
  /** Mounts extra routes (the execution backend's internal RPC) ahead of the 404 fallback. */
  install?: (app: Koa) => void;
  metrics?: DispatcherMetrics;
  logger?: EventLogger;
  /** security.rest.token: the principal `rest-token` with role admin. */
  restToken?: string;
  /** security.rest.credentials-file, loaded: principals and roles by token hash and certificate name. */
  restCredentials?: Credentials;
  /** Where submissions, cancels, config reads, DELETE /cluster and every refused request are recorded; silent when absent. */
  audit?: AuditLog;
  /** Asks this replica to stop as SIGTERM would (`DELETE /cluster`); absent: the endpoint answers 404. */
  shutdown?: () => void;
  /** Whether the published leader answers, as this standby probes it; without one every published leader counts as alive. */
  liveness?: Pick<LeaderLivenessView, 'alive'> & Partial<Pick<LeaderLivenessView, 'aliveNow'>>;
  /** rest.standby-mode `forward`: standbys proxy leader-only requests to the leader; without one they redirect (307). */
  forwarder?: Pick<LeaderForwarder, 'forward'>;
  /** web.access-control-allow-origin: the one origin sent as Access-Control-Allow-Origin; absent: no CORS header. */
  allowOrigin?: string;
}
