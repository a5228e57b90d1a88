/**
 * Forwarding (`rest.standby-mode: forward`): a standby proxies a leader-only request to the leader it
 * verified alive and streams the answer back, so clients only ever talk to the address they chose (a
 * load balancer's, a Kubernetes Service's) and never need the leader's advertised URL.
 *
 * Sent on: method, path and query, the body as a stream, end-to-end headers (hop-by-hop ones dropped,
 * `Host` set to the leader's). `Authorization` goes along: the target comes from this replica's own
 * leader retrieval, i.e. the leader of the same cluster, which checks the same `security.rest.token` and
 * credentials file again (a client certificate does not go along: the standby is the TLS peer).
 * Answered back: status, end-to-end headers, the body as a stream. When no answer head arrives within
 * the deadline (leader died, froze, refused), the client gets 503 + `Retry-After` and the liveness
 * tracker counts a failure (a refused connection marks the leader down at once); once the head was sent, a broken stream ends the client's connection.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Context } from 'koa';
import { type ClientTls, socketErrorCode } from '../http/client';
import { HttpError } from '../http/errors';
import { keptAliveAgents, LeaderLivenessView, LeaderTarget } from '../election/leader-liveness';

/** RFC 9110 §7.6.1 connection-specific headers, plus `host` (set per target). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

export interface LeaderForwarderOptions {
  /** Deadline for the leader's answer head (status and headers), in ms. Default 10 000. */
  deadlineMs?: number;
  /** Idle time allowed while the answer body streams, in ms. Default 30 000. */
  idleMs?: number;
  /** Connections kept per leader. Default 16. */
  maxSockets?: number;
  /** Told about every answer and every failure, so forwarding keeps the liveness signal current. */
  liveness?: Pick<LeaderLivenessView, 'recordSuccess' | 'recordFailure'>;
  /** This replica, named in `X-HA-Forwarded-By`. */
  replicaId: string;
  /** For an https leader: the CA(s) its REST certificate chains to (default: the system's CAs). */
  tls?: ClientTls;
}

export class LeaderForwarder {
  private readonly agents: { http: http.Agent; https: https.Agent };
  private readonly deadlineMs: number;
  private readonly idleMs: number;

  constructor(private readonly options: LeaderForwarderOptions) {
    this.agents = keptAliveAgents(options.maxSockets ?? 16, options.tls);
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.idleMs = options.idleMs ?? 30_000;
  }

  /**
   * Proxies `ctx`'s request to `leader` and sets `ctx.status`, the answer's headers and `ctx.body` (a stream).
   * The request body must not have been read yet.
   * @throws HttpError 503 `LEADER_UNREACHABLE` with `Retry-After: 1` when no answer head arrives in time.
   */
  async forward(ctx: Context, leader: LeaderTarget): Promise<void> {
    const url = new URL(atLeader(leader.restUrl, ctx.originalUrl));
    const secure = url.protocol === 'https:';
    const headers: http.OutgoingHttpHeaders = endToEnd(ctx.req.headers);
    headers['x-forwarded-for'] = [ctx.req.headers['x-forwarded-for'], ctx.req.socket.remoteAddress].filter(Boolean).join(', ');
    headers['x-ha-forwarded-by'] = this.options.replicaId;

    const upstream = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = (secure ? https : http).request(url, { method: ctx.method, headers, agent: secure ? this.agents.https : this.agents.http });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.deadlineMs} ms`)), this.deadlineMs);
      req.on('response', (res) => { clearTimeout(timer); resolve(res); });
      req.on('error', (err) => { clearTimeout(timer); reject(err); });
      // The client went away: stop the upstream exchange too.
      ctx.res.on('close', () => { if (!ctx.res.writableFinished) req.destroy(new Error('the client went away')); });
      ctx.req.pipe(req);
    }).catch((err: Error) => {
      // Refused: nothing listens on the leader's port any more; the tracker takes it as down at once.
      this.options.liveness?.recordFailure(leader, socketErrorCode(err) === 'ECONNREFUSED' ? 'refused' : 'failed');
      throw new HttpError(503, `the leader ${leader.replicaId} did not answer the forwarded request (${err.message}); retry shortly`,
        { code: 'LEADER_UNREACHABLE', headers: { 'Retry-After': '1' } });
    });
    this.options.liveness?.recordSuccess(leader);

    upstream.setTimeout(this.idleMs, () => upstream.destroy(new Error(`the answer stalled for ${this.idleMs} ms`)));
    ctx.status = upstream.statusCode ?? 502;
    for (const [name, value] of Object.entries(endToEnd(upstream.headers))) {
      if (value !== undefined) ctx.set(name, value as string | string[]);
    }
    if (ctx.method === 'HEAD' || ctx.status === 204 || ctx.status === 304) {
      upstream.resume(); // nothing to send; drain so the kept-alive connection is reused
      return;
    }
    ctx.body = upstream;
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

/** `headers` minus hop-by-hop ones, including those the `Connection` header names. */
export function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(String(headers.connection ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean));
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The same request at the leader: `restUrl` (e.g. `https://replica-2:8081`) + the path and query of
 * `originalUrl`. A request target in absolute form (`GET http://elsewhere/jobs`, RFC 9112 §3.2.2)
 * keeps only its path and query, so neither a 307's Location nor a forwarded request can be pointed
 * at another host through it.
 */
export function atLeader(restUrl: string, originalUrl: string): string {
  let pathAndQuery = originalUrl;
  if (!pathAndQuery.startsWith('/')) {
    try {
      const target = new URL(pathAndQuery);
      pathAndQuery = `${target.pathname}${target.search}`;
    } catch {
      pathAndQuery = '/'; // `*` (OPTIONS *) or garbage
    }
  }
  return `${restUrl.replace(/\/$/, '')}${pathAndQuery}`;
}
