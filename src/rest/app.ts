/**
 * The REST API. `createApp(deps)` builds the Koa app and never listens, so tests can drive
 * `app.callback()` and the replica decides where to bind. One error path: every thrown error is
 * mapped to `{"errors": [...]}` with its own status by `errorMapper`.
 */
import Koa from 'koa';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { Dispatcher } from '../dispatcher/dispatcher';
import { LeaderRetrievalService } from '../election/retrieval';
import { listContenders } from '../election/contenders';
import { ZkClient } from '../zk/client';
import { DispatcherMetrics } from '../metrics/metrics';
import { EventLogger, silentLogger } from '../util/logger';
import { errorMiddleware, HttpError, NotFoundError } from '../http/errors';
import { readJsonBody } from '../http/body';
import { DASHBOARD_HTML } from './dashboard';
import { requireBearerToken } from '../security/bearer-token';
import { withAttemptLogUrls } from './job-urls';

/** Read-only view of the cluster's TaskManagers (the leader's ResourceManager). */
export interface ResourceView {
  overview(): { taskmanagers: number; 'slots-total': number; 'slots-available': number };
  list(): object[];
  get(id: string): object | null;
  /** Absolute path of a task attempt's log file on a TaskManager, read through it. */
  taskLog?(jobId: string, vertexId: string, subtask: number, attempt: number): Promise<string | null>;
}

export interface AppDeps {
  replicaId: string;
  version: string;
  dispatcher: Dispatcher;
  retrieval: LeaderRetrievalService;
  client: ZkClient;
  publicConfig: Record<string, unknown>;
  maxBodyBytes: number;
  resources?: () => ResourceView | null;
  /** Mounts extra routes (the execution backend's internal RPC) ahead of the 404 fallback. */
  install?: (app: Koa) => void;
  metrics?: DispatcherMetrics;
  logger?: EventLogger;
  /** security.rest.token: required of every request but the probes, /metrics and the dashboard page. */
  restToken?: string;
}

/** What load balancers, orchestrators, scrapers and a browser opening the dashboard reach without a token. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/livez', '/readyz', '/health', '/metrics', '/']);

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  const logger = deps.logger ?? silentLogger;
  const router = new Router();
  const { dispatcher, retrieval, client } = deps;

  app.use(errorMiddleware({ logger, event: 'rest.internal-error' }));
  app.use(async (ctx, next) => {
    ctx.set('X-HA-Replica-Id', deps.replicaId);
    ctx.set('Access-Control-Allow-Origin', '*');
    await next();
  });
  // A submitted job runs commands on TaskManagers. Checked before any redirect, so a standby refuses
  // too; /internal/* carries its own token (security.internal.token).
  app.use(requireBearerToken({ token: deps.restToken, setting: 'security.rest.token', openPaths: OPEN_PATHS, skipPrefixes: ['/internal/'] }));

  // ---- served by every replica ----
  router.get('/livez', (ctx) => { ctx.body = { status: 'alive', replicaId: deps.replicaId }; });

  router.get('/readyz', (ctx) => {
    const ready = client.isConnected && (dispatcher.role === 'leader' || readyLeaderElsewhere(deps) !== null);
    ctx.status = ready ? 200 : 503;
    ctx.body = { ready, role: dispatcher.role, zookeeper: client.state };
    if (!ready) ctx.set('Retry-After', '1');
  });

  router.get('/health', (ctx) => {
    const role = dispatcher.role;
    const leader = role === 'leader' ? null : readyLeaderElsewhere(deps);
    const codes = {
      active: intParam(ctx.query.activecode, 200),
      standby: ctx.query.standbyok === 'true' ? 200 : intParam(ctx.query.standbycode, 429),
    };
    ctx.status = !client.isConnected ? 503 : role === 'leader' ? codes.active : leader ? codes.standby : 503;
    if (ctx.status === 503) ctx.set('Retry-After', '1');
    const info = role === 'leader' ? { replicaId: deps.replicaId, restUrl: retrieval.current?.restUrl ?? null, epoch: dispatcher.epoch } : leader;
    ctx.body = {
      role: role === 'leader' ? 'leader' : role === 'recovering' ? 'recovering' : 'standby',
      replicaId: deps.replicaId,
      epoch: role === 'leader' ? dispatcher.epoch : null,
      leader: info ? { replicaId: info.replicaId, restUrl: info.restUrl, epoch: info.epoch } : null,
      zookeeper: { state: client.state, sessionId: client.sessionId },
    };
  });

  router.get('/leader', (ctx) => {
    const leader = client.isConnected ? retrieval.current : null;
    if (!leader) {
      ctx.set('Retry-After', '1');
      throw new HttpError(503, 'no ready leader is known right now; retry shortly', { code: 'NO_LEADER', headers: { 'Retry-After': '1' } });
    }
    ctx.body = leader;
  });

  router.get('/replicas', async (ctx) => {
    const contenders = await listContenders(client);
    ctx.body = { replicas: contenders.map((c, i) => ({ position: i, node: c.node, sequence: c.sequence, ...(c.info ?? { unreadable: true }) })) };
  });

  router.get('/metrics', async (ctx) => {
    if (!deps.metrics) throw new NotFoundError('metrics are not enabled on this replica');
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });

  router.get('/', (ctx) => { ctx.type = 'html'; ctx.body = DASHBOARD_HTML; });

  // ---- leader only: standbys redirect ----
  const leaderOnly = async (ctx: Context, next: Next): Promise<void> => {
    if (dispatcher.role === 'leader') return next();
    const leader = dispatcher.role === 'recovering' ? null : readyLeaderElsewhere(deps);
    if (leader) {
      deps.metrics?.redirects.inc({ outcome: 'redirect' });
      ctx.status = 307;
      ctx.set('Location', `${leader.restUrl.replace(/\/$/, '')}${ctx.originalUrl}`);
      ctx.set('X-HA-Leader-Id', leader.replicaId);
      ctx.set('X-HA-Leader-Epoch', String(leader.epoch));
      ctx.body = { redirect: true, leader: { replicaId: leader.replicaId, restUrl: leader.restUrl, epoch: leader.epoch } };
      return;
    }
    deps.metrics?.redirects.inc({ outcome: 'unavailable' });
    throw new HttpError(503, dispatcher.role === 'recovering'
      ? 'this replica was just elected leader and is recovering jobs; retry shortly'
      : 'no ready leader is known right now; retry shortly', { code: 'NO_LEADER', headers: { 'Retry-After': '1' } });
  };

  router.post('/jobs', leaderOnly, async (ctx) => {
    const body = await readJsonBody(ctx, deps.maxBodyBytes, { setting: 'rest.max-body-bytes' });
    const result = await dispatcher.submit(Dispatcher.withJobId(body));
    ctx.status = 202;
    ctx.body = { jobid: result.jobId, jobUrl: `/jobs/${result.jobId}` };
  });
  router.get('/jobs', leaderOnly, (ctx) => { ctx.body = { jobs: dispatcher.listJobs() }; });
  router.get('/jobs/overview', leaderOnly, (ctx) => {
    ctx.body = {
      jobs: dispatcher.jobsOverview().map((d) => ({
        jid: d.jid, name: d.name, state: d.state, 'start-time': d['start-time'], 'end-time': d['end-time'], duration: d.duration,
        'last-modification': Math.max(0, ...Object.values(d.timestamps).map(Number)),
        tasks: countTasks(d.vertices.flatMap((v) => v.subtasks.map((s) => s.status))),
      })),
    };
  });
  router.get('/jobs/quarantined', leaderOnly, (ctx) => { ctx.body = { quarantined: dispatcher.quarantined() }; });
  router.get('/jobs/:jobid', leaderOnly, (ctx) => { ctx.body = withAttemptLogUrls(dispatcher.jobDetails(ctx.params.jobid)); });
  router.get('/jobs/:jobid/exceptions', leaderOnly, (ctx) => { ctx.body = dispatcher.jobExceptions(ctx.params.jobid); });
  router.get('/jobs/:jobid/execution-result', leaderOnly, (ctx) => { ctx.body = dispatcher.executionResult(ctx.params.jobid); });
  router.get('/jobs/:jobid/vertices/:vertex/subtasks/:subtask/attempts/:attempt/log', leaderOnly, async (ctx) => {
    const details = dispatcher.jobDetails(ctx.params.jobid);
    const res = deps.resources?.();
    const text = res?.taskLog ? await res.taskLog(details.jid, ctx.params.vertex, Number(ctx.params.subtask), Number(ctx.params.attempt)) : null;
    if (text === null) throw new NotFoundError('no log for that task attempt (unknown attempt, or its TaskManager is gone)');
    ctx.type = 'text/plain';
    ctx.body = text;
  });
  router.patch('/jobs/:jobid', leaderOnly, (ctx) => {
    const mode = ctx.query.mode ?? 'cancel';
    if (mode !== 'cancel') throw new HttpError(400, `unsupported mode ${JSON.stringify(mode)}; use ?mode=cancel`, { code: 'INVALID' });
    dispatcher.cancel(ctx.params.jobid);
    ctx.status = 202;
    ctx.body = {};
  });
  router.get('/overview', leaderOnly, (ctx) => {
    const counts = dispatcher.jobCounts();
    const res = deps.resources?.()?.overview() ?? { taskmanagers: 0, 'slots-total': 0, 'slots-available': 0 };
    ctx.body = {
      ...res,
      'jobs-running': (counts.RUNNING ?? 0) + (counts.CREATED ?? 0) + (counts.RESTARTING ?? 0) + (counts.RECONCILING ?? 0) + (counts.FAILING ?? 0) + (counts.CANCELLING ?? 0),
      'jobs-finished': counts.FINISHED ?? 0,
      'jobs-cancelled': counts.CANCELED ?? 0,
      'jobs-failed': counts.FAILED ?? 0,
      version: deps.version,
      'leader-replica': deps.replicaId,
      epoch: dispatcher.epoch,
    };
  });
  router.get('/taskmanagers', leaderOnly, (ctx) => { ctx.body = { taskmanagers: deps.resources?.()?.list() ?? [] }; });
  router.get('/taskmanagers/:id', leaderOnly, (ctx) => {
    const tm = deps.resources?.()?.get(ctx.params.id);
    if (!tm) throw new NotFoundError(`taskmanager ${JSON.stringify(ctx.params.id.slice(0, 80))} is not registered`);
    ctx.body = tm;
  });
  router.get('/config', leaderOnly, (ctx) => { ctx.body = deps.publicConfig; });

  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));
  deps.install?.(app);
  app.use((ctx) => {
    throw new NotFoundError(`no such endpoint: ${ctx.method} ${ctx.path}`);
  });
  app.on('error', (err: Error) => logger.error('rest.error', { error: err }));
  return app;
}

/** A ready leader other than this replica, as published in /leader/info (null while disconnected). */
function readyLeaderElsewhere(deps: AppDeps): { replicaId: string; restUrl: string; epoch: number } | null {
  const leader = deps.client.isConnected ? deps.retrieval.current : null;
  if (!leader || leader.replicaId === deps.replicaId) return null;
  return leader;
}

function intParam(value: unknown, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 100 && n <= 599 ? n : fallback;
}

function countTasks(states: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of states) counts[s.toLowerCase()] = (counts[s.toLowerCase()] ?? 0) + 1;
  return counts;
}
