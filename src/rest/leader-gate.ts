/**
 * The leader gate: requests only the ready leader can answer (jobs, cluster overview, config) pass on
 * the leader. A standby first picks the target (the ready leader published elsewhere), then checks that
 * the target is alive (leader liveness, src/election/leader-liveness.ts: `aliveNow`, after the I/O that
 * arrived with the request was heard), then either redirects (307 to
 * the leader's REST URL, `rest.standby-mode: redirect`) or forwards the request there (`forward`,
 * src/rest/forward.ts). 503 + `Retry-After` when no ready leader is known, this replica is still
 * recovering after its election, or the published leader does not answer: a client is never sent to a
 * dead leader.
 */
import type { Context, Middleware, Next } from 'koa';
import { HttpError } from '../http/errors';
import type { AppDeps } from './deps';
import { isSafeLeaderUrl } from '../election/trust';
import { atLeader } from './forward';

/** Identity of a ready leader as standbys redirect to it. */
export interface LeaderRef { replicaId: string; restUrl: string; epoch: number }

type GateDeps = Pick<AppDeps, 'dispatcher' | 'retrieval' | 'client' | 'replicaId' | 'metrics' | 'liveness' | 'forwarder'>;

/**
 * Koa middleware for leader-only routes. On a standby with a live ready leader elsewhere: forwarded
 * when `deps.forwarder` is set, else 307 with `Location` (the leader's REST URL + the original path and
 * query), `X-HA-Leader-Id`, `X-HA-Leader-Epoch` and a `{redirect: true, leader}` body.
 * @throws HttpError 503 `NO_LEADER` with `Retry-After: 1` when there is no ready leader to send to;
 *   503 `LEADER_UNREACHABLE` with `Retry-After: 1` when the published leader does not answer.
 */
export function leaderGate(deps: GateDeps): Middleware {
  const { dispatcher, metrics } = deps;
  return async (ctx: Context, next: Next): Promise<void> => {
    if (dispatcher.role === 'leader') return next();
    // A replica just elected (recovering) sends nobody elsewhere.
    const target = (): LeaderRef | null => (dispatcher.role === 'recovering' ? null : readyLeaderElsewhere(deps));
    let leader = target();
    let alive = leader ? await leaderAliveNow(deps, leader) : false;
    if (leader) {
      // The verdict took an event-loop turn: the published leader may have changed meanwhile. When its
      // node vanished with its session, the tracker stops following it and would call it alive (it knows
      // nothing of an untracked leader), so the target is read again and a new one judged as it stands
      // (this replica itself just elected: 503, retry).
      const now = target();
      if (!now || !sameLeaderRef(now, leader)) {
        leader = now;
        alive = now ? leaderAlive(deps, now) : false;
      }
    }
    if (leader && !alive) {
      metrics?.redirects.inc({ outcome: 'unavailable' });
      throw new HttpError(503, `the leader ${leader.replicaId} does not answer; a new one is elected once its ZooKeeper session expires; retry shortly`,
        { code: 'LEADER_UNREACHABLE', headers: { 'Retry-After': '1' } });
    }
    if (leader && deps.forwarder) {
      metrics?.redirects.inc({ outcome: 'forward' });
      return deps.forwarder.forward(ctx, leader);
    }
    if (leader) {
      metrics?.redirects.inc({ outcome: 'redirect' });
      ctx.status = 307;
      ctx.set('Location', atLeader(leader.restUrl, ctx.originalUrl));
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

function sameLeaderRef(a: LeaderRef, b: LeaderRef): boolean {
  return a.replicaId === b.replicaId && a.epoch === b.epoch && a.restUrl === b.restUrl;
}

/**
 * Whether `leader` answers, judged after pending I/O of this replica was heard (`aliveNow`: a leader
 * whose death arrived together with this request is not alive); as `leaderAlive` without it.
 */
export async function leaderAliveNow(deps: Pick<AppDeps, 'liveness'>, leader: LeaderRef): Promise<boolean> {
  const liveness = deps.liveness;
  if (!liveness) return true;
  return liveness.aliveNow ? liveness.aliveNow(leader) : liveness.alive(leader);
}

/** Whether `leader` answers as far as this replica knows (always true without a liveness tracker). */
export function leaderAlive(deps: Pick<AppDeps, 'liveness'>, leader: LeaderRef): boolean {
  return deps.liveness?.alive(leader) ?? true;
}
