/**
 * Cluster-wide endpoints. Every replica answers `/leader`, `/replicas`, `/metrics`, the dashboard
 * (`/`, `/dashboard/app.js`, `/dashboard/app.css`) and its configuration `/config`; the leader alone
 * answers `/overview` and `/taskmanagers` (behind the leader gate), in Flink's shapes (../flink-views.ts).
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { listContenders } from '../../election/contenders';
import { leaderInfoJson } from '../../election/leader-info';
import { jobCountsByOutcome } from '../../dispatcher/views';
import { HttpError, NotFoundError, ValidationError } from '../../http/errors';
import { readJsonBody } from '../../http/body';
import { parseDrainDeadline } from '../../resources/drain';
import { DASHBOARD_CSP, DASHBOARD_PATHS, dashboardAsset } from '../dashboard';
import { clusterOverview, dashboardConfig, taskManagerDetails, taskManagerInfo } from '../flink-views';
import type { AppDeps } from '../deps';
import { requires } from '../access';

const NO_RESOURCES = { taskmanagers: 0, 'slots-total': 0, 'slots-available': 0 };

export function clusterRoutes(router: Router, deps: AppDeps, leaderOnly: Middleware): void {
  const { dispatcher, retrieval, client } = deps;

  // ---- served by every replica ----
  router.get('/leader', requires('viewer'), (ctx) => {
    const leader = client.isConnected ? retrieval.current : null;
    if (!leader) throw new HttpError(503, 'no ready leader is known right now; retry shortly', { code: 'NO_LEADER', headers: { 'Retry-After': '1' } });
    ctx.body = leaderInfoJson(leader);
  });

  // Reads the latch children (znodes under the election path) in latch order.
  // Without a session the latch cannot be read: an empty list would claim "no replicas", so answer 503.
  router.get('/replicas', requires('viewer'), async (ctx) => {
    if (!client.isConnected) {
      throw new HttpError(503, 'ZooKeeper is unreachable from this replica, so the replicas cannot be listed; retry shortly',
        { code: 'ZOOKEEPER_UNREACHABLE', headers: { 'Retry-After': '1' } });
    }
    const contenders = await listContenders(client);
    ctx.body = { replicas: contenders.map((c, i) => ({ position: i, node: c.node, sequence: c.sequence, ...(c.info ?? { unreadable: true }) })) };
  });

  router.get('/metrics', requires('public'), async (ctx) => {
    if (!deps.metrics) throw new NotFoundError('metrics are not enabled on this replica');
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });

  for (const assetPath of DASHBOARD_PATHS) {
    router.get(assetPath, requires('public'), (ctx) => {
      const asset = dashboardAsset(assetPath);
      ctx.set('Content-Security-Policy', DASHBOARD_CSP);
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Cache-Control', 'no-cache');
      ctx.type = asset.type;
      ctx.body = asset.body;
    });
  }

  // ---- leader only ----
  router.get('/overview', requires('viewer'), leaderOnly, (ctx) => {
    const jobs = jobCountsByOutcome(dispatcher.jobCounts());
    ctx.body = {
      ...clusterOverview(resourcesOverview(deps), jobs, deps.version),
      version: deps.version,
      'leader-replica': deps.replicaId,
      epoch: dispatcher.epoch,
      ...admissionOverview(dispatcher),
    };
  });

  router.get('/taskmanagers', requires('viewer'), leaderOnly, (ctx) => { ctx.body = { taskmanagers: (deps.resources?.()?.list() ?? []).map(taskManagerInfo) }; });
  // Flink's aggregated TaskManager metrics; before /taskmanagers/:id, which would match it too. None are aggregated here.
  router.get('/taskmanagers/metrics', requires('viewer'), leaderOnly, (ctx) => { ctx.body = []; });

  // Drain (Flink's "blocked" TaskManager): no new deploys, its tasks finish (or past deadlineMs are placed
  // elsewhere as new attempts), then it is released. Stored in ZooKeeper before the answer, so a failover keeps it draining.
  router.post('/taskmanagers/:id/drain', requires('operator', 'taskmanager.drain'), leaderOnly, async (ctx) => {
    const resources = deps.resources?.();
    if (!resources?.drain) throw new NotFoundError('this replica runs no ResourceManager, so it cannot drain TaskManagers');
    let deadlineMs: number | null;
    try {
      deadlineMs = parseDrainDeadline((ctx.request.length ?? 0) > 0 || ctx.get('transfer-encoding') ? await readJsonBody(ctx, 4096) : undefined);
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new ValidationError((err as Error).message);
    }
    const drain = await resources.drain(ctx.params.id, deadlineMs);
    ctx.status = 202;
    ctx.body = { taskmanager: drain.taskManagerId, blocked: true, 'requested-at': drain.requestedAt, 'deadline-at': drain.deadlineAt };
  });

  router.get('/taskmanagers/:id', requires('viewer'), leaderOnly, (ctx) => {
    const tm = deps.resources?.()?.get(ctx.params.id);
    if (!tm) throw new NotFoundError(`taskmanager ${JSON.stringify(ctx.params.id.slice(0, 80))} is not registered`);
    ctx.body = taskManagerDetails(tm);
  });

  // Flink's dashboard configuration; the configuration itself is GET /jobmanager/config.
  router.get('/config', requires('viewer', 'config.read'), (ctx) => { ctx.body = dashboardConfig(deps.version, new Date()); });
}

/** The ResourceManager's counts for `/overview`, with drained (blocked) TaskManagers; zeros on a replica without one. */
function resourcesOverview(deps: AppDeps): Parameters<typeof clusterOverview>[0] {
  const resources = deps.resources?.();
  if (!resources) return NO_RESOURCES;
  return { ...resources.overview(), ...resources.blockedOverview?.() };
}

/**
 * The fields `/overview` adds for admission control and result retention (none collides with Flink's
 * overview). Limits that are not set show as null; bytes are bytes, max-age is ms.
 */
function admissionOverview(dispatcher: AppDeps['dispatcher']): Record<string, unknown> {
  const a = dispatcher.admissionStatus();
  const r = dispatcher.resultRetentionStatus();
  const finite = (n: number): number | null => (Number.isFinite(n) ? n : null);
  return {
    admission: {
      'pending-jobs': a.pendingJobs,
      'max-pending-jobs': finite(a.limits.maxPendingJobs),
      'stored-jobgraph-bytes': a.storedGraphBytes,
      'max-stored-jobgraph-bytes': finite(a.limits.maxStoredGraphBytes),
      'submission-rate': finite(a.limits.submissionRate),
      'submission-burst': finite(a.limits.submissionBurst),
      'submission-tokens': finite(Math.floor(a.submissionTokens)),
    },
    'job-results': {
      retained: r.results,
      'history-loaded': r.historyLoaded,
      'retention-max-count': r.retention.maxCount,
      'retention-max-age': r.retention.maxAgeMs ?? null,
    },
  };
}
