/**
 * JSON over HTTP for the leader ↔ TaskManager messages of protocol.ts: one call helper with a hard
 * timeout (a stalled peer must never pin a heartbeat or a deploy), and one request-body reader.
 */
import type { Middleware } from 'koa';
import { bearerHeader, requireBearerToken } from '../security/bearer-token';

export interface RpcResponse<T = unknown> {
  status: number;
  body: T;
}

/** Transport failure (refused, reset, timed out): the peer may or may not have acted. */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(readonly url: string, message: string) {
    super(`${url}: ${message}`);
  }
}

export const DEFAULT_RPC_TIMEOUT_MS = 5000;

export interface RpcCallOptions {
  timeoutMs?: number;
  /** The cluster's security.internal.token, sent as a bearer token. */
  token?: string;
  /** Ends the call early (e.g. the peer stopped being the leader): fails like a timeout. */
  signal?: AbortSignal;
}

export async function rpcCall<T = unknown>(method: 'GET' | 'POST', url: string, body?: unknown, options: RpcCallOptions = {}): Promise<RpcResponse<T>> {
  const deadline = callDeadline(options.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS, options.signal);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...bearerHeader(options.token),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: deadline.signal,
    });
  } catch (err) {
    deadline.done();
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new RpcError(url, cause ?? (err as Error).message);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw new RpcError(url, `reading the answer: ${(err as Error).message}`);
  } finally {
    deadline.done();
  }
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, body: parsed as T };
}

/** First error message of a `{"errors": [...]}` body, else the status. */
export function errorText(res: RpcResponse): string {
  const errors = (res.body as { errors?: unknown } | null)?.errors;
  return Array.isArray(errors) && typeof errors[0] === 'string' ? `${res.status}: ${errors[0]}` : `HTTP ${res.status}`;
}

/** Bodies of internal messages are small; a registration carrying every running task stays far below this. */
export const INTERNAL_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Guards internal endpoints with the cluster's security.internal.token (open when none is set). */
export function requireInternalToken(token: string | undefined, openPaths?: ReadonlySet<string>): Middleware {
  return requireBearerToken({ token, setting: 'security.internal.token', openPaths });
}

/**
 * One signal for a call's timeout and its caller's abort. Not `AbortSignal.any([AbortSignal.timeout(),
 * …])`: on Node 20 the combined signal holds its sources weakly, so after a garbage collection the
 * timeout never fires and a call to a peer that never answers hangs for good (a TaskManager went deaf
 * that way in a chaos soak). Here the timer holds the controller.
 */
function callDeadline(timeoutMs: number, caller?: AbortSignal): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  const forward = (): void => controller.abort(caller!.reason);
  if (caller?.aborted) forward();
  else caller?.addEventListener('abort', forward, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      caller?.removeEventListener('abort', forward);
    },
  };
}
