/**
 * The one JSON-over-HTTP client of the project: the leader ↔ TaskManager RPC, the CLI's RestClient,
 * the chaos workload and cluster, and the test helpers all send their requests through `requestJson`.
 * Every call has a hard deadline (a stalled or SIGSTOPped peer must never pin a caller) and may be
 * ended early by the caller's AbortSignal. Redirects are never followed: callers that honour 307s
 * (RestClient, the chaos workload) look at them themselves.
 *
 * With `tls` (a CA to trust, and for mutual TLS a client certificate) an https URL goes through
 * `node:https` with a keep-alive agent per ClientTls object: the global fetch cannot take a CA or a
 * client certificate without the undici package. Otherwise the global fetch.
 */
import * as https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { bearerHeader } from '../security/bearer-token';

/** Trust and identity of a TLS client: the CA(s) the server's certificate must chain to, and our certificate for mutual TLS. */
export interface ClientTls {
  ca: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  /** Replaces node's host name check of the server certificate (e.g. to also require the peer's id); an Error refuses the server. */
  checkServerIdentity?: (hostname: string, cert: PeerCertificate) => Error | undefined;
}

export interface JsonRequestOptions {
  /** Deadline of the whole exchange, body included, in ms. Default 30 000. */
  timeoutMs?: number;
  /** Sent as `authorization: Bearer <token>` when set. */
  token?: string;
  /** Ends the call early: it fails with a transport error of kind 'aborted' carrying the signal's reason. */
  signal?: AbortSignal;
  /** Extra request headers (they win over the defaults). */
  headers?: Record<string, string>;
  /** Send `body` as given (a string or Buffer, e.g. deliberately malformed JSON) instead of JSON-encoding it. */
  raw?: boolean;
  /** For tests: a stand-in for the global fetch. */
  fetchImpl?: typeof fetch;
  /** For https URLs: trust this CA (instead of the system's) and present this client certificate. */
  tls?: ClientTls;
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON; the raw text when it is not JSON; null when empty. */
  body: T;
  /** The answer as received. */
  text: string;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Why no answer came: the deadline passed, the caller aborted, or the network failed (refused, reset, ...). */
export type TransportFailure = 'timeout' | 'aborted' | 'network';

/** No HTTP answer (refused, reset, timed out, aborted): the peer may or may not have acted. */
export class HttpTransportError extends Error {
  override readonly name: string = 'HttpTransportError';
  constructor(
    readonly url: string,
    readonly kind: TransportFailure,
    /** The socket error code (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET, ...), when there was one. */
    readonly code: string | undefined,
    /** What went wrong, without the URL: the socket error code, or the abort reason's message. */
    readonly detail: string,
  ) {
    super(`${url}: ${detail}`);
  }
}

/**
 * One request with a JSON body (unless `raw`) and a JSON or text answer. Resolves with any HTTP status,
 * 4xx and 5xx included; throws HttpTransportError only when no complete answer arrived.
 */
export async function requestJson<T = any>(method: string, url: string, body?: unknown, options: JsonRequestOptions = {}): Promise<JsonResponse<T>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const deadline = callDeadline(timeoutMs, options.signal);
  const failure = (err: unknown, what = ''): HttpTransportError => {
    const kind: TransportFailure = deadline.timedOut() ? 'timeout' : options.signal?.aborted ? 'aborted' : 'network';
    const code = socketErrorCode(err);
    return new HttpTransportError(url, kind, code, `${what}${code ?? (err as Error)?.message ?? String(err)}`);
  };
  const payload = body === undefined ? undefined : options.raw ? (body as string | Buffer) : JSON.stringify(body);
  let headers: Record<string, string>;
  try {
    headers = {
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...bearerHeader(options.token),
      ...options.headers,
    };
  } catch (err) {
    deadline.done();
    throw err;
  }
  if (options.tls && url.startsWith('https:')) {
    try {
      const res = await httpsRequest(method, url, headers, payload, options.tls, deadline.signal);
      return { ...res, body: parseBody(res.text) as T };
    } catch (err) {
      throw failure(err);
    } finally {
      deadline.done();
    }
  }
  let res: Response;
  try {
    res = await (options.fetchImpl ?? fetch)(url, {
      method,
      redirect: 'manual',
      headers,
      body: payload,
      signal: deadline.signal,
    });
  } catch (err) {
    deadline.done();
    throw failure(err);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw failure(err, 'reading the answer: ');
  } finally {
    deadline.done();
  }
  return { status: res.status, headers: res.headers, body: parseBody(text) as T, text };
}

const agents = new WeakMap<ClientTls, https.Agent>();

/** One exchange over node:https with `tls`'s agent; rejects on any transport failure (the caller maps it). */
function httpsRequest(method: string, url: string, headers: Record<string, string>, payload: string | Buffer | undefined,
  tls: ClientTls, signal: AbortSignal): Promise<{ status: number; headers: Headers; text: string }> {
  let agent = agents.get(tls);
  if (!agent) {
    agent = new https.Agent({ ca: tls.ca, cert: tls.cert, key: tls.key, keepAlive: true, minVersion: 'TLSv1.2',
      ...(tls.checkServerIdentity ? { checkServerIdentity: tls.checkServerIdentity } : {}) });
    agents.set(tls, agent);
  }
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, agent, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('the answer was cut off'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        const answer = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) answer.append(name, v);
        }
        resolve({ status: res.statusCode ?? 0, headers: answer, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** JSON when the text parses, the text itself when not, null when empty. */
export function parseBody(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** undici hides the socket error under `cause` (an AggregateError when several addresses were tried). */
export function socketErrorCode(err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (typeof e.code === 'string' && !/^\d+$/.test(e.code)) return e.code;
    const nested = Array.isArray(e.errors) ? e.errors.find((x: any) => typeof x?.code === 'string') : undefined;
    if (nested) return nested.code;
  }
  return undefined;
}

/**
 * One signal for a call's timeout and its caller's abort. Not `AbortSignal.any([AbortSignal.timeout(),
 * …])`: on Node 20 the combined signal holds its sources weakly, so after a garbage collection the
 * timeout never fires and a call to a peer that never answers hangs for good (a TaskManager went deaf
 * that way in a chaos soak). Here the timer holds the controller.
 */
function callDeadline(timeoutMs: number, caller?: AbortSignal): { signal: AbortSignal; timedOut(): boolean; done(): void } {
  const controller = new AbortController();
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
  }, timeoutMs);
  const forward = (): void => controller.abort(caller!.reason);
  if (caller?.aborted) forward();
  else caller?.addEventListener('abort', forward, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => fired,
    done: () => {
      clearTimeout(timer);
      caller?.removeEventListener('abort', forward);
    },
  };
}
