/**
 * The leader gate: requests only the ready leader can answer (jobs, cluster overview, config) pass on
 * the leader; a standby answers 307 to the ready leader's REST URL, and 503 + `Retry-After` when no
 * ready leader is known or this replica is still recovering after its election.
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../http/errors';
import type { AppDeps } from './deps';
import { isSafeLeaderUrl } from '../election/trust';

/** Identity of a ready leader as standbys redirect to it. */
export interface LeaderRef { replicaId: string; restUrl: string; epoch: number }

/**
 * Koa middleware for leader-only routes. On a standby with a ready leader elsewhere: 307 with
 * `Location` (the leader's REST URL + the original path and query), `X-HA-Leader-Id`,
 * `X-HA-Leader-Epoch` and a `{redirect: true, leader}` body.
 * @throws HttpError 503 `NO_LEADER` with `Retry-After: 1` when there is nowhere to redirect to.
 */
export function leaderGate(deps: Pick<AppDeps, 'dispatcher' | 'retrieval' | 'client' | 'replicaId' | 'metrics'>): Middleware {
  const { dispatcher, metrics } = deps;
  return async (ctx: Context, next: Next): Promise<void> => {
    if (dispatcher.role === 'leader') return next();
    const leader = dispatcher.role === 'recovering' ? null : readyLeaderElsewhere(deps);
    if (leader) {
      metrics?.redirects.inc({ outcome: 'redirect' });
      ctx.status = 307;
      ctx.set('Location', `${leader.restUrl.replace(/\/$/, '')}${ctx.originalUrl}`);
      ctx.set('X-HA-Leader-Id', leader.replicaId);
      ctx.set('X-HA-Leader-Epoch', String(leader.epoch));
      ctx.body = { redirect: true, leader: { replicaId: leader.replicaId, restUrl: leader.restUrl, epoch: leader.epoch } };
      return;
    }
    metrics?.redirects.inc({ outcome: 'unavailable' });
    throw new HttpError(503, dispatcher.role === 'recovering'
      ? 'this replica was just elected leader and is recovering jobs; retry shortly'
      : 'no ready leader is known right now; retry shortly', { code: 'NO_LEADER', headers: { 'Retry-After': '1' } });
  };
}

/**
 * A ready leader other than this replica, as published in /leader/info and trusted by leader retrieval
 * (src/election/trust.ts: which also drops a record naming this replica's own URL from an earlier run),
 * null while disconnected. The URL is checked again here: it becomes a `Location` header.
 */
export function readyLeaderElsewhere(deps: Pick<AppDeps, 'retrieval' | 'client' | 'replicaId'>): LeaderRef | null {
  const leader = deps.client.isConnected ? deps.retrieval.current : null;
  if (!leader || leader.replicaId === deps.replicaId || !isSafeLeaderUrl(leader.restUrl)) return null;
  return leader;
}
