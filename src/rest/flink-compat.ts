/**
 * Request-side Flink compatibility: the `/v1` prefix Flink's REST clients always send, and the
 * streaming-only endpoints that cannot apply to the batch jobs run here.
 */
import type { Middleware } from 'koa';
import { NotFoundError } from '../http/errors';

/**
 * Serves every route under `/v1/` too: strips the prefix before routing. `ctx.originalUrl` keeps it,
 * so a standby's 307 `Location` sends the client to the same `/v1/...` path on the leader.
 */
export function v1Prefix(): Middleware {
  return async (ctx, next) => {
    if (ctx.path === '/v1' || ctx.path.startsWith('/v1/')) ctx.path = ctx.path.slice(3) || '/';
    await next();
  };
}

/** Job-level and vertex-level paths of Flink features that exist only for streaming jobs. */
const STREAMING_ONLY: ReadonlyArray<[RegExp, string]> = [
  [/^\/jobs\/[^/]+\/(checkpoints|savepoints|stop|rescaling)(\/|$)/, 'checkpoints, savepoints, stop-with-savepoint and rescaling'],
  [/^\/jobs\/[^/]+\/vertices\/[^/]+\/(watermarks|backpressure|flamegraph)(\/|$)/, 'watermarks, back pressure and flame graphs'],
  [/^\/savepoint-disposal(\/|$)/, 'savepoints'],
];

/**
 * 404 with an explanation for Flink's streaming-only endpoints, on every replica and before the
 * leader gate: the answer does not depend on who leads.
 */
export function streamingOnlyEndpoints(): Middleware {
  return async (ctx, next) => {
    const hit = STREAMING_ONLY.find(([re]) => re.test(ctx.path));
    if (hit) {
      throw new NotFoundError(`${ctx.method} ${ctx.path}: ${hit[1]} do not apply here; jobs are batch JobGraphs of commands without state, ` +
        'so there is nothing to checkpoint, rescale or sample');
    }
    await next();
  };
}
