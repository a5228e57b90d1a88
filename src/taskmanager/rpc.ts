/**
 * JSON over HTTP for the leader ↔ TaskManager messages of protocol.ts: one call helper with a hard
 * timeout (a stalled peer must never pin a heartbeat or a deploy) and the internal token guard.
 */
import type { Middleware } from 'koa';
import { ClientTls, HttpTransportError, requestJson } from '../http/client';
import { requireBearerToken } from '../security/bearer-token';

export interface RpcResponse<T = unknown> {
  status: number;
  body: T;
}

/** Transport failure (refused, reset, timed out, aborted): the peer may or may not have acted. */
export { HttpTransportError as RpcError };

export const DEFAULT_RPC_TIMEOUT_MS = 5000;

export interface RpcCallOptions {
  timeoutMs?: number;
  /** The cluster's security.internal.token, sent as a bearer token. */
  token?: string;
  /** Ends the call early (e.g. the peer stopped being the leader): fails like a timeout. */
  signal?: AbortSignal;
  /** security.ssl.internal.*: the cluster CA to trust and our certificate, for https peers. */
  tls?: ClientTls;
}

/** One RPC through the shared client (src/http/client.ts); throws RpcError (HttpTransportError) when no answer came. */
export async function rpcCall<T = unknown>(method: 'GET' | 'POST', url: string, body?: unknown, options: RpcCallOptions = {}): Promise<RpcResponse<T>> {
  const res = await requestJson<T>(method, url, body, { ...options, timeoutMs: options.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS });
  return { status: res.status, body: res.body };
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
