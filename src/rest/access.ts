/**
 * Who may call which REST route. Every route declares what it needs where it is registered:
 * `router.get('/jobs', requires('viewer'), ...)`, or `requires('public')` for what load balancers,
 * scrapers and a browser opening the dashboard reach without credentials. One middleware,
 * `authorizeRequests`, runs before routing, the Flink compatibility 404s and the leader gate (so a
 * standby refuses before it redirects or forwards): it matches the request against the router,
 * authenticates the caller (bearer token, else a verified client certificate), checks the role and
 * writes the audit line of refused requests and of declared actions.
 *
 * Refusals: no credentials → 401; a token or certificate that names no principal → 403; a principal
 * without the role → 403 naming the role it needs. Paths no route matches need any principal (an
 * anonymous caller gets 401, not a map of the API). With neither `security.rest.token` nor a
 * credentials file, every caller is "anonymous" with role admin: the open local setup of before.
 */
import { timingSafeEqual } from 'node:crypto';
import type Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../http/errors';
import { AuditAction, AuditLog } from '../security/audit';
import { Credentials, tokenDigest } from '../security/credentials';
import { ANONYMOUS, grants, Principal, REST_TOKEN_PRINCIPAL, Role } from '../security/roles';
import { verifiedPeer } from '../security/tls';

/** What a route needs: a role, or nothing (`public`). */
export type Access = Role | 'public';

/** A route's declaration, as `requires` attaches it to its middleware. */
export interface RouteAccess {
  access: Access;
  /** Audited on every outcome under this name (refusals are audited for every route). */
  action?: AuditAction;
}

const DECLARATION = Symbol('route access');

type DeclaredMiddleware = Middleware & { [DECLARATION]: RouteAccess };

/**
 * The first middleware of a route: declares what the route needs (`action`: audit every call, not
 * only refusals). It also checks the role itself, so a route mounted outside `authorizeRequests` fails
 * closed (403).
 */
export function requires(access: Access, action?: AuditAction): Middleware {
  const check = (async (ctx: Context, next: Next) => {
    if (access !== 'public') {
      const principal = ctx.state.principal as Principal | undefined;
      if (!principal || !grants(principal.role, access)) throw new HttpError(403, `${ctx.method} ${ctx.path} needs role ${access}`, { code: 'FORBIDDEN' });
    }
    return next();
  }) as DeclaredMiddleware;
  check[DECLARATION] = { access, ...(action ? { action } : {}) };
  return check;
}

/** The declaration of a route layer (its first middleware), undefined when it has none. */
export function declaredAccess(layer: { stack: readonly unknown[] }): RouteAccess | undefined {
  const first = layer.stack[0] as Partial<DeclaredMiddleware> | undefined;
  return typeof first === 'function' ? first[DECLARATION] : undefined;
}

/** The principal `authorizeRequests` admitted the request as. */
export function principalOf(ctx: Context): Principal {
  return (ctx.state.principal as Principal | undefined) ?? { name: ANONYMOUS, role: 'viewer' };
}

/** Marks the audit target of the current request (e.g. the job id a submission created). */
export function setAuditTarget(ctx: Context, target: string): void {
  ctx.state.auditTarget = target;
}

export interface RestCredentials {
  /** security.rest.token: the principal `rest-token`, role admin. */
  token?: string;
  /** security.rest.credentials-file, loaded. */
  credentials?: Credentials;
}

/** Whether anything authenticates REST callers (else everyone is anonymous admin). */
export function authenticates(creds: RestCredentials): boolean {
  return creds.token !== undefined || creds.credentials !== undefined;
}

type Identity = { kind: 'principal'; principal: Principal } | { kind: 'none' } | { kind: 'unknown'; what: string };

/**
 * Who the request comes from: its bearer token, else its verified client certificate (SAN URIs, then
 * subject CN, looked up among the credentials file's `certificates`).
 */
export function identify(ctx: Context, creds: RestCredentials): Identity {
  if (!authenticates(creds)) return { kind: 'principal', principal: { name: ANONYMOUS, role: 'admin' } };
  const header = ctx.get('authorization');
  if (header !== '') {
    // The scheme name is case-insensitive (RFC 7235, section 2.1).
    const match = /^Bearer +(\S+)$/i.exec(header);
    if (!match) return { kind: 'none' };
    const digest = tokenDigest(match[1]);
    if (creds.token !== undefined && timingSafeEqual(Buffer.from(digest, 'hex'), Buffer.from(tokenDigest(creds.token), 'hex'))) {
      return { kind: 'principal', principal: { name: REST_TOKEN_PRINCIPAL, role: 'admin' } };
    }
    // Looked up by hash: the lookup's timing tells nothing about any configured token.
    const principal = creds.credentials?.byTokenHash.get(digest);
    return principal ? { kind: 'principal', principal } : { kind: 'unknown', what: 'bearer token' };
  }
  const peer = verifiedPeer(ctx);
  if (peer && creds.credentials) {
    const names = [...peer.uris, ...(peer.commonName !== undefined ? [peer.commonName] : [])];
    for (const name of names) {
      const principal = creds.credentials.byCertificate.get(name);
      if (principal) return { kind: 'principal', principal };
    }
    return { kind: 'unknown', what: 'client certificate' };
  }
  return { kind: 'none' };
}

export interface AuthorizeOptions {
  router: Router;
  credentials: RestCredentials;
  audit: AuditLog;
  /** Path prefixes guarded by something else (the internal RPC under /internal/). */
  skipPrefixes?: readonly string[];
}

/** What the matched routes need: the strictest declaration; undeclared routes count as admin (fail closed). */
function routeAccess(router: Router, path: string, method: string): { access: Access; action?: AuditAction; jobId?: string; route?: string } {
  const layers = router.match(path, method).pathAndMethod;
  if (layers.length === 0) return { access: 'viewer' };
  let access: Access = 'public';
  let action: AuditAction | undefined;
  let jobId: string | undefined;
  for (const layer of layers) {
    const declared = declaredAccess(layer) ?? { access: 'admin' as const };
    if (declared.access !== 'public' && (access === 'public' || grants(declared.access, access))) access = declared.access;
    action ??= declared.action;
    jobId ??= layer.paramNames.some((p) => p.name === 'jobid') ? layer.params(path, layer.captures(path)).jobid : undefined;
  }
  return { access, action, jobId, route: String(layers[0].path) };
}

/**
 * The REST API's one authentication and authorization step; see the module comment. Sets
 * `ctx.state.principal` for the routes (`principalOf`).
 */
export function authorizeRequests(options: AuthorizeOptions): Middleware {
  const { router, credentials, audit } = options;
  const realm = 'Bearer realm="ha-dispatcher"';
  return async (ctx, next) => {
    if (options.skipPrefixes?.some((prefix) => ctx.path.startsWith(prefix))) return next();
    const route = routeAccess(router, ctx.path, ctx.method);
    if (route.access === 'public') return next();
    const action = route.action ?? `${ctx.method} ${route.route ?? ctx.path}`;
    const target = route.jobId ?? ctx.path;
    // Read now: once the body is drained or the client gone, the socket may be detached.
    const remoteAddress = ctx.req.socket?.remoteAddress ?? '';
    const forwardedFor = ctx.get('x-forwarded-for');
    const note = (principal: string, status: number, outcome: 'allowed' | 'denied', finalTarget = target): void => {
      audit.record({ principal, action, target: finalTarget, outcome, status, remoteAddress, ...(forwardedFor ? { forwardedFor } : {}) });
    };
    const who = identify(ctx, credentials);
    if (who.kind === 'none') {
      note(ANONYMOUS, 401, 'denied');
      ctx.status = 401;
      ctx.set('WWW-Authenticate', realm);
      ctx.body = { errors: [`this endpoint needs role ${route.access}: send "Authorization: Bearer <token>" with the cluster's security.rest.token ` +
        'or a token of security.rest.credentials-file' + (credentials.credentials ? ' (or a client certificate it names)' : '')] };
      return;
    }
    if (who.kind === 'unknown') {
      note(ANONYMOUS, 403, 'denied');
      ctx.status = 403;
      ctx.body = { errors: [`the ${who.what} is not this cluster's security.rest.token${credentials.credentials ? ' and names no principal of security.rest.credentials-file' : ''}`] };
      return;
    }
    const { principal } = who;
    if (!grants(principal.role, route.access)) {
      note(principal.name, 403, 'denied');
      ctx.status = 403;
      ctx.body = { errors: [`principal "${principal.name}" has role ${principal.role}; ${ctx.method} ${ctx.path} needs role ${route.access}`] };
      return;
    }
    ctx.state.principal = principal;
    const done = (status: number): void => {
      const refused = status === 401 || status === 403;
      if (route.action !== undefined || refused) note(principal.name, status, refused ? 'denied' : 'allowed', (ctx.state.auditTarget as string | undefined) ?? target);
    };
    try {
      await next();
    } catch (err) {
      // errorMiddleware (outside) turns the error into the answer; its status is the one audited.
      done(typeof (err as HttpError).status === 'number' ? (err as HttpError).status : 500);
      throw err;
    }
    done(ctx.status);
  };
}
