/**
 * One status-carrying error for every HTTP surface (client REST, the leader's internal RPC, the
 * TaskManager's RPC server), in the style of Koa's own errors: `status`, `code`, `expose`. Domain code
 * throws these; `errorMiddleware` maps them to the one error body `{"errors": [message], ...extra}`.
 */
import type { Context, Next } from 'koa';
import type { EventLogger } from '../util/logger';

export interface HttpErrorOptions {
  /** A stable machine-readable name, e.g. `NO_LEADER`. */
  code?: string;
  /** Whether the message is written for the client (default: status < 500, or any 503). */
  expose?: boolean;
  /** Response headers, e.g. `{"Retry-After": "1"}`. */
  headers?: Record<string, string>;
  /** Extra fields merged into the JSON error body, e.g. `{epoch: 7}` for a fencing refusal. */
  extra?: Record<string, unknown>;
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;
  constructor(status: number, message: string, opts: HttpErrorOptions = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = opts.code ?? `HTTP_${status}`;
    this.expose = opts.expose ?? (status < 500 || status === 503);
    this.headers = opts.headers ?? {};
    this.extra = opts.extra ?? {};
  }
}

export class ValidationError extends HttpError {
  constructor(message: string) {
    super(400, message, { code: 'INVALID' });
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends HttpError {
  constructor(message: string) {
    super(404, message, { code: 'NOT_FOUND' });
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends HttpError {
  constructor(message: string) {
    super(409, message, { code: 'CONFLICT' });
    this.name = 'ConflictError';
  }
}

/** Raised when an operation needs leadership this replica does not (or no longer) hold. */
export class NotLeaderError extends HttpError {
  constructor(message = 'this replica is not the ready leader; retry against the leader') {
    super(503, message, { code: 'NOT_LEADER', headers: { 'Retry-After': '1' } });
    this.name = 'NotLeaderError';
  }
}

export interface ErrorMiddlewareOptions {
  logger: EventLogger;
  /** Stable event name logged for unexpected (5xx other than 503) errors, e.g. `rest.internal-error`. */
  event: string;
}

/**
 * Koa middleware: the one error path of an HTTP surface. An `HttpError` (or any error carrying a
 * 4xx/5xx `status`, such as @koa/router's 405) answers with its status, headers and message; anything
 * else answers 500 with a message that hides internals and is logged as `opts.event`. A 503 always
 * carries `Retry-After` (1 s unless the error set one).
 */
export function errorMiddleware(opts: ErrorMiddlewareOptions) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
    } catch (err) {
      const e = err as Error & { status?: number; statusCode?: number; expose?: boolean; headers?: Record<string, string> };
      const raw = e.status ?? e.statusCode ?? 500;
      ctx.status = Number.isInteger(raw) && raw >= 400 && raw <= 599 ? raw : 500;
      for (const [k, v] of Object.entries(e.headers ?? {})) ctx.set(k, v);
      if (ctx.status === 503 && !ctx.response.get('Retry-After')) ctx.set('Retry-After', '1');
      const expose = e instanceof HttpError ? e.expose : ctx.status < 500 || e.expose === true;
      const extra = e instanceof HttpError ? e.extra : {};
      ctx.body = { errors: [expose ? e.message : 'internal error; see the server log'], ...extra };
      if (ctx.status >= 500 && ctx.status !== 503) opts.logger.error(opts.event, { method: ctx.method, path: ctx.path, error: e });
    }
  };
}
