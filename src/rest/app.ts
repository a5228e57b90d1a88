/**
 * The REST API. `createApp(deps)` builds the Koa app and never listens, so tests can drive
 * `app.callback()` and the replica decides where to bind. One error path: every thrown error is
 * mapped to `{"errors": [...]}` with its own status by `errorMiddleware` (src/http/errors.ts).
 */
import Koa from 'koa';
import Router from '@koa/router';
import { silentLogger } from '../util/logger';
import { errorMiddleware, NotFoundError } from '../http/errors';
import { authorizeRequests } from './access';
import { silentAuditLog } from '../security/audit';
import { httpMetricsMiddleware } from '../metrics/http';
import type { AppDeps } from './deps';
import { leaderGate } from './leader-gate';
import { probeRoutes } from './routes/probes';
import { clusterRoutes } from './routes/cluster';
import { jobRoutes } from './routes/jobs';
import { historyRoutes } from './routes/history';
import { jobManagerRoutes } from './routes/jobmanager';
import { streamingOnlyEndpoints, v1Prefix } from './flink-compat';

export type { AppDeps, ResourceView, RestDispatcher } from './deps';

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  const logger = deps.logger ?? silentLogger;

  app.use(httpMetricsMiddleware(deps.metrics));
  app.use(errorMiddleware({ logger, event: 'rest.internal-error' }));
  // Flink's clients send every path under /v1; before the token check, so /v1/livez stays open too.
  app.use(v1Prefix());
  app.use(async (ctx, next) => {
    ctx.set('X-HA-Replica-Id', deps.replicaId);
    // No CORS header by default: any web page an operator opens could otherwise read job data.
    if (deps.allowOrigin !== undefined) {
      ctx.set('Access-Control-Allow-Origin', deps.allowOrigin);
      ctx.vary('Origin');
    }
    await next();
  });
  // A submitted job runs commands on TaskManagers. Every route declares the role it needs
  // (src/security/access.ts); checked before any redirect, so a standby refuses too. /internal/*
  // carries its own token (security.internal.token) and mutual TLS.
  const router = createRouter(deps);
  app.use(authorizeRequests({
    router, credentials: { token: deps.restToken, credentials: deps.restCredentials }, audit: deps.audit ?? silentAuditLog, skipPrefixes: ['/internal/'],
  }));

  app.use(streamingOnlyEndpoints());
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: true }));

  deps.install?.(app);
  app.use((ctx) => {
    throw new NotFoundError(`no such endpoint: ${ctx.method} ${ctx.path}`);
  });
  app.on('error', (err: Error) => logger.error('rest.error', { error: err }));
  return app;
}

/** Every REST route of `createApp`, each declaring the role it needs (`requires`, src/security/access.ts). */
export function createRouter(deps: AppDeps): Router {
  const router = new Router();
  const leaderOnly = leaderGate(deps);
  probeRoutes(router, deps);
  clusterRoutes(router, deps, leaderOnly);
  jobRoutes(router, deps, leaderOnly);
  historyRoutes(router, deps);
  jobManagerRoutes(router, deps, leaderOnly);
  return router;
}
