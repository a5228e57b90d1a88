/**
 * The cluster's REST client, shared by the CLI verbs, `ha-dispatcher local` and the drills: any of several
 * replicas as entry point (the next one is tried when one is unreachable), 307s to the leader followed,
 * 503/429 and unreachable replicas retried until one deadline. Requests go through the shared JSON client
 * (src/http/client.ts).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { type ClientTls, HttpTransportError, requestJson } from '../http/client';

/**
 * Exit codes of the client verbs. Scripts branch on these, so a code never changes meaning.
 *
 *   0 OK           the request succeeded (for `submit --wait`: the job FINISHED)
 *   1 JOB_FAILED   `submit --wait`: the job ended FAILED or CANCELED
 *   2 USAGE        bad arguments, unreadable file, invalid JSON in the file; nothing was sent
 *   3 REJECTED     the server rejected the request (4xx other than 404); its `errors` are printed
 *   4 NOT_FOUND    404: no such job
 *   5 UNAVAILABLE  no ready leader or no reachable replica before the deadline, a redirect loop, a 5xx,
 *                  an answer the CLI does not understand, or `submit --wait` passed its --wait-timeout
 */
export const EXIT = {
  OK: 0,
  JOB_FAILED: 1,
  USAGE: 2,
  REJECTED: 3,
  NOT_FOUND: 4,
  UNAVAILABLE: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI reports and exits on; `errors` are the server's own messages when it sent any. */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: ExitCode;
  readonly errors: string[];
  readonly status?: number;
  readonly url?: string;
  /** What the user can do about it, e.g. how to start a cluster; printed after the message. */
  readonly hint?: string;
  constructor(exitCode: ExitCode, message: string, opts: { errors?: string[]; status?: number; url?: string; hint?: string } = {}) {
    super(message);
    this.exitCode = exitCode;
    this.errors = opts.errors ?? [];
    this.status = opts.status;
    this.url = opts.url;
    this.hint = opts.hint;
  }
}

export interface RestClientOptions {
  /** Any replicas (an array, or one string of comma-separated URLs); standbys redirect to the leader. */
  url: string | readonly string[];
  /** Budget for one `request()`, including every redirect, retry and back-off, in ms. */
  deadlineMs?: number;
  /**
   * How long (ms) one `request()` keeps retrying while no URL accepted a connection or answered HTTP at all
   * (nothing running there, or a non-HTTP port); default `deadlineMs`. The CLI keeps it short so a missing
   * cluster or a wrong URL fails fast, while 503s during a failover still get the whole deadline.
   */
  unreachableBudgetMs?: number;
  fetchImpl?: typeof fetch;
  /**
   * The cluster's security.rest.token, sent as a bearer token to the origin of `url` and to a leader that
   * replica vouched for (see `RestClient`), never to any other origin.
   */
  token?: string;
  /** For https replicas: the CA to trust (security.ssl.rest.*; the CLI's --ca-file). */
  tls?: ClientTls;
}

export interface RestResponse {
  status: number;
  /** Parsed JSON, the raw text when it is not JSON, or null when empty. */
  body: any;
  /** The URL that gave this answer (after redirects). */
  url: string;
  /** The server's `{"errors": [...]}` messages; empty when it sent none. */
  errors: string[];
  headers: Headers;
}

export const DEFAULT_DEADLINE_MS = 30_000;
export const MAX_REDIRECTS = 5;
const INITIAL_BACKOFF_MS = 200;
const MAX_BACKOFF_MS = 2_000;

/** Errors that mean "nobody answered here right now", e.g. a replica restarting or a host rebooting. */
const RETRYABLE_CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT',
]);

/** What to do when no replica can be reached; the CLI prints it under the error. */
export const UNREACHABLE_HINT = 'is a cluster running? Start one with `npm start`, or point --url (or $HA_DISPATCHER_URL) at ' +
  'replicas\' REST addresses, comma-separated, e.g. http://127.0.0.1:8081,http://127.0.0.1:8082';

/** Why a connection failed, in words: a peer that closes without answering or answers garbage is likely not a replica. */
function describeNetworkFailure(code: string, url: string): string {
  const origin = new URL(url).host;
  if (code === 'UND_ERR_SOCKET' || code.startsWith('HPE_')) {
    return `${code} from ${url}: ${origin} closed the connection without an HTTP answer; is it a replica's rest.port ` +
      '(default 8081)? A ZooKeeper client port (e.g. 2181) or another non-HTTP service answers like this';
  }
  return `${code} from ${url}`;
}

/** Splits `--url`'s comma-separated list; each entry must be an http(s) URL. */
export function parseUrlList(value: string | readonly string[]): string[] {
  const list = (typeof value === 'string' ? value.split(',') : [...value]).map((u) => u.trim()).filter((u) => u !== '');
  if (list.length === 0) throw new CliError(EXIT.USAGE, '--url is empty; give one or more replica URLs, comma-separated');
  return list.map((u) => {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new CliError(EXIT.USAGE, `--url "${u}" is not a URL; use e.g. http://127.0.0.1:8081`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new CliError(EXIT.USAGE, `--url "${u}" must start with http:// or https://`);
    }
    return parsed.toString();
  });
}

/** An answer worth retrying until the deadline; if it is the last one, `summary` and `detail` become the error. */
class Transient {
  constructor(readonly summary: string, readonly detail: string, readonly retryAfterMs?: number, readonly unreachable = false) {}
}

class DeadlineReached extends Error {
  constructor(readonly url: string) {
    super(`deadline reached waiting for ${url}`);
  }
}

/**
 * Talks to the cluster through any of its replicas. Every retry starts again at a configured URL rather than at
 * the last leader it was redirected to: after a failover that replica knows the new leader, the old one may not.
 * An unreachable URL passes the turn to the next one at once; only a full round of failures backs off.
 * Re-sending POST /jobs is safe because submission is idempotent per jobId (docs/ARCHITECTURE.md).
 *
 * The token goes only where the operator pointed us, or where that replica vouched: the configured replica
 * is trusted, and its 307 carrying `X-HA-Leader-Id` and `X-HA-Leader-Epoch` names a leader it verified
 * (src/election/trust.ts), so the token follows that one hop. A redirect from any other origin, or one without
 * those headers, is not followed with the token: the request starts again at the configured replica later.
 */
export class RestClient {
  /** The configured entry points, normalized; `url` is the first. */
  readonly urls: string[];
  readonly deadlineMs: number;
  readonly unreachableBudgetMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly tls: ClientTls | undefined;
  private readonly token: string | undefined;
  /** The entry point that answered last: the next request starts there. */
  private preferred = 0;

  constructor(opts: RestClientOptions) {
    this.token = opts.token;
    this.tls = opts.tls;
    this.urls = parseUrlList(opts.url);
    const deadlineMs = opts.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) {
      throw new CliError(EXIT.USAGE, `the deadline must be a positive number of milliseconds, got ${deadlineMs}`);
    }
    this.deadlineMs = deadlineMs;
    this.unreachableBudgetMs = Math.min(opts.unreachableBudgetMs ?? deadlineMs, deadlineMs);
    this.fetchImpl = opts.fetchImpl ?? fetch;
  }

  get url(): string { return this.urls[0]; }

  /** Resolves with any final answer (including 4xx/5xx); throws CliError only when no usable answer came in time. */
  async request(method: string, path: string, body?: unknown): Promise<RestResponse> {
    const started = Date.now();
    const deadline = started + this.deadlineMs;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const secs = (ms: number): number => Math.round(ms / 100) / 10;
    let backoff = INITIAL_BACKOFF_MS;
    let last: Transient | undefined;
    /** The failure of each URL in the current round, for a message that names every address tried. */
    let round = new Map<string, Transient>();
    let everAnswered = false;
    for (let attempt = 0; ; attempt++) {
      const index = (this.preferred + attempt) % this.urls.length;
      const entry = this.urls[index];
      let outcome: RestResponse | Transient;
      try {
        outcome = await this.followRedirects(entry, method, path, payload, deadline);
      } catch (err) {
        if (!(err instanceof DeadlineReached)) throw err;
        // The retry that ran into the deadline says less about the cause than the answer that made us retry.
        const why = last ? `${last.summary} after ${secs(this.deadlineMs)} s: ${last.detail}` : `no answer from ${method} ${err.url} after ${secs(this.deadlineMs)} s`;
        throw new CliError(EXIT.UNAVAILABLE, why, { url: err.url });
      }
      if (!(outcome instanceof Transient)) {
        this.preferred = index;
        return outcome;
      }
      everAnswered ||= !outcome.unreachable;
      last = outcome;
      round.set(entry, outcome);
      if (round.size < this.urls.length && outcome.unreachable) continue; // try the next replica at once
      const summary = [...round.values()];
      round = new Map();
      const waitMs = outcome.retryAfterMs ?? backoff;
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      const budgetEnd = everAnswered ? deadline : Math.min(deadline, started + this.unreachableBudgetMs);
      // Give up now rather than sleep past the budget only to fail anyway.
      if (Date.now() + waitMs >= budgetEnd) {
        const unreachable = summary.every((t) => t.unreachable);
        const spent = everAnswered ? this.deadlineMs : Math.min(this.deadlineMs, this.unreachableBudgetMs);
        const detail = unreachable ? summary.map((t) => t.detail).join('; ') : outcome.detail;
        throw new CliError(EXIT.UNAVAILABLE, `${outcome.summary} after ${secs(spent)} s: ${detail}`,
          { hint: unreachable ? UNREACHABLE_HINT : undefined });
      }
      await delay(waitMs);
    }
  }

  private async followRedirects(
    entry: string, method: string, path: string, payload: string | undefined, deadline: number,
  ): Promise<RestResponse | Transient> {
    const chain = [new URL(path, entry).toString()];
    // The token goes to the replica the operator named (this entry of the list) and a leader it vouched for.
    const trustedOrigin = new URL(entry).origin;
    /** Origins the token may go to: the configured replica's, and a leader it vouched for. */
    const tokenOrigins = new Set([trustedOrigin]);
    for (;;) {
      const url = chain[chain.length - 1];
      const res = await this.once(method, url, payload, deadline);
      if (res instanceof Transient) return res;
      if (res.status === 503 || res.status === 429) {
        const what = res.status === 503 ? 'no ready leader' : 'still overloaded';
        return new Transient(what, `last answer ${res.status} from ${url}${said(res.errors)}`,
          parseRetryAfter(res.headers.get('retry-after')));
      }
      if (res.status !== 307 && res.status !== 308) return res;
      const location = res.headers.get('location');
      if (!location) {
        throw new CliError(EXIT.UNAVAILABLE, `${res.status} from ${url} without a Location header`, { status: res.status, url });
      }
      const next = new URL(location, url).toString();
      const nextOrigin = new URL(next).origin;
      if (this.token !== undefined && !tokenOrigins.has(nextOrigin)) {
        const vouched = new URL(url).origin === trustedOrigin && res.headers.has('x-ha-leader-id') && res.headers.has('x-ha-leader-epoch');
        if (!vouched) {
          return new Transient('no verified leader', `${res.status} from ${url} to ${nextOrigin}, which ${trustedOrigin} did not name as the cluster's leader; the token is not sent there`);
        }
        tokenOrigins.add(nextOrigin);
      }
      // Only standbys redirect, and only to the ready leader, so a loop or a long chain points at a misconfigured
      // rest.advertised-url rather than a failover in progress (which answers 503): retrying would not help.
      if (chain.includes(next)) {
        throw new CliError(EXIT.UNAVAILABLE, `redirect loop: ${[...chain, next].join(' -> ')}; check rest.advertised-url`, { url });
      }
      if (chain.length > MAX_REDIRECTS) {
        throw new CliError(EXIT.UNAVAILABLE, `more than ${MAX_REDIRECTS} redirects: ${[...chain, next].join(' -> ')}`, { url });
      }
      chain.push(next);
    }
  }

  private async once(method: string, url: string, payload: string | undefined, deadline: number): Promise<RestResponse | Transient> {
    try {
      const res = await requestJson(method, url, payload, {
        raw: true, token: this.token, headers: { accept: 'application/json' }, fetchImpl: this.fetchImpl, tls: this.tls,
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
      return { status: res.status, body: res.body, url, errors: errorsOf(res.status, res.body), headers: res.headers };
    } catch (err) {
      if (!(err instanceof HttpTransportError)) throw err;
      // The budget is spent: a replica that accepted the connection but never answered gets no second chance.
      if (err.kind !== 'network') throw new DeadlineReached(url);
      if (err.code && (RETRYABLE_CONNECT_CODES.has(err.code) || err.code.startsWith('HPE_'))) {
        return new Transient('no replica reachable', describeNetworkFailure(err.code, url), undefined, true);
      }
      throw new CliError(EXIT.UNAVAILABLE, `cannot reach ${url}: ${err.detail}`, { url, hint: UNREACHABLE_HINT });
    }
  }
}

/** The server's `{"errors": [...]}`; a plain-text error body (e.g. from a proxy) counts as one message. */
export function errorsOf(status: number, body: unknown): string[] {
  const list = (body as { errors?: unknown } | null)?.errors;
  if (Array.isArray(list)) return list.map(String);
  if (status >= 400 && typeof body === 'string' && body.trim() !== '') return [body.trim()];
  return [];
}

/** Retry-After in delta-seconds or as an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function said(errors: string[]): string {
  return errors.length ? ` (${errors.join('; ')})` : '';
}
