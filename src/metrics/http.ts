/**
 * Koa middleware counting REST requests by route template (`/jobs/:jobid`, never the raw path, so
 * label cardinality stays bounded), method and status code. Install it first, so it sees the status
 * the error middleware settled on.
 */
import type { Middleware } from 'koa';
import type { Counter, Histogram } from 'prom-client';

export interface HttpMetrics {
  httpRequests: Counter;
  httpRequestSeconds: Histogram;
}

/** Requests no router matched share one label value. */
export const UNMATCHED_ROUTE = 'unmatched';

/** A pass-through middleware when `metrics` is undefined. */
export function httpMetricsMiddleware(metrics: HttpMetrics | undefined): Middleware {
  if (!metrics) return (_ctx, next) => next();
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const route = (ctx as unknown as { _matchedRoute?: unknown })._matchedRoute;
      const labels = { route: typeof route === 'string' ? route : UNMATCHED_ROUTE, method: ctx.method, code: String(ctx.status) };
      metrics.httpRequests.inc(labels);
      metrics.httpRequestSeconds.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}
