/**
 * Cluster-wide endpoints. Every replica answers `/leader`, `/replicas`, `/metrics` and the dashboard
 * (`/`, `/dashboard/app.js`, `/dashboard/app.css`); the leader alone answers `/overview`,
 * `/taskmanagers` and `/config` (behind the leader gate).
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { listContenders } from '../../election/contenders';
import { leaderInfoJson } from '../../election/leader-info';
import { jobCountsByOutcome } from '../../dispatcher/views';
import { HttpError, NotFoundError } from '../../http/errors';
import { DASHBOARD_CSP, DASHBOARD_PATHS, dashboardAsset } from '../dashboard';
import type { AppDeps } from '../deps';

const NO_RESOURCES = { taskmanagers: 0, 'slots-total': 0, 'slots-available': 0 };

export function clusterRoutes(router: Router, deps: AppDeps, leaderOnly: Middleware): void {
  const { dispatcher, retrieval, client } = deps;

  // ---- served by every replica ----
  router.get('/leader', (ctx) => {
    const leader = client.isConnected ? retrieval.current : null;
    if (!leader) throw new HttpError(503, 'no ready leader is known right now; retry shortly', { code: 'NO_LEADER', headers: { 'Retry-After': '1' } });
    ctx.body = leaderInfoJson(leader);
  });

  // Reads the latch children (znodes under the election path) in latch order.
  // Without a session the latch cannot be read: an empty list would claim "no replicas", so answer 503.
  router.get('/replicas', async (ctx) => {
    if (!client.isConnected) {
      throw new HttpError(503, 'ZooKeeper is unreachable from this replica, so the replicas cannot be listed; retry shortly',
        { code: 'ZOOKEEPER_UNREACHABLE', headers: { 'Retry-After': '1' } });
    }
    const contenders = await listContenders(client);
    ctx.body = { replicas: contenders.map((c, i) => ({ position: i, node: c.node, sequence: c.sequence, ...(c.info ?? { unreadable: true }) })) };
  });

  router.get('/metrics', async (ctx) => {
    if (!deps.metrics) throw new NotFoundError('metrics are not enabled on this replica');
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });

  for (const assetPath of DASHBOARD_PATHS) {
    router.get(assetPath, (ctx) => {
      const asset = dashboardAsset(assetPath);
      ctx.set('Content-Security-Policy', DASHBOARD_CSP);
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Cache-Control', 'no-cache');
      ctx.type = asset.type;
      ctx.body = asset.body;
    });
  }

  // ---- leader only ----
  router.get('/overview', leaderOnly, (ctx) => {
    const jobs = jobCountsByOutcome(dispatcher.jobCounts());
    ctx.body = {
      ...(deps.resources?.()?.overview() ?? NO_RESOURCES),
      'jobs-running': jobs.running,
      'jobs-finished': jobs.finished,
      'jobs-cancelled': jobs.cancelled,
      'jobs-failed': jobs.failed,
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
}
