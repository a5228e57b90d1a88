/**
 * Shared-secret bearer tokens for the two HTTP surfaces: the client REST API (`security.rest.token`)
 * and the internal RPC between TaskManagers and the leader (`security.internal.token`). Both can run
 * commands on TaskManagers, so a missing token is 401 and a wrong one 403, each saying what to send;
 * tokens are compared in constant time. No token configured: the surface is open (local use).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';

export interface BearerTokenGuard {
  /** The configured secret; undefined leaves the surface open. */
  token: string | undefined;
  /** The setting an operator must match, named in the refusal. */
  setting: string;
  /** Paths (GET/HEAD) that stay open, e.g. liveness probes. */
  openPaths?: ReadonlySet<string>;
  /** Path prefixes guarded by something else. */
  skipPrefixes?: readonly string[];
}

export function requireBearerToken(guard: BearerTokenGuard): Middleware {
  const expected = guard.token === undefined ? null : digest(guard.token);
  return async (ctx, next) => {
    if (expected === null) return next();
    if ((ctx.method === 'GET' || ctx.method === 'HEAD') && guard.openPaths?.has(ctx.path)) return next();
    if (guard.skipPrefixes?.some((prefix) => ctx.path.startsWith(prefix))) return next();
    // The scheme name is case-insensitive (RFC 7235, section 2.1).
    const match = /^Bearer +(\S+)$/i.exec(ctx.get('authorization'));
    if (!match) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer realm="ha-dispatcher"');
      ctx.body = { errors: [`this endpoint needs a bearer token: send "Authorization: Bearer <token>" with the cluster's ${guard.setting}`] };
      return;
    }
    if (!timingSafeEqual(digest(match[1]), expected)) {
      ctx.status = 403;
      ctx.body = { errors: [`the bearer token is not this cluster's ${guard.setting}`] };
      return;
    }
    return next();
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * `Authorization` header for a call that must carry `token` (none when unset). Throws (without the
 * value: it is secret) when the token holds characters a header cannot carry, e.g. a token file's
 * second line; fetch would otherwise echo the whole header in its error.
 */
export function bearerHeader(token: string | undefined): Record<string, string> {
  if (token === undefined) return {};
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new Error('the bearer token holds spaces, line breaks or other characters an HTTP header cannot carry (a token file must hold one line); value not shown: it is secret');
  }
  return { authorization: `Bearer ${token}` };
}
