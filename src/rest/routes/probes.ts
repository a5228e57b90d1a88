/**
 * Probes every replica answers itself, never redirected: `/livez` (the process serves HTTP),
 * `/readyz` (connected to ZooKeeper and a ready leader exists here, or elsewhere and answers) and
 * `/health` (role-dependent status codes for load balancers). A standby whose published leader does not
 * answer its liveness probes is not ready: 503 with `leaderReachable: false` on both, whatever
 * `?standbyok=` / `?standbycode=` say, so a balancer stops sending clients there (Vault's 474
 * "standby cannot reach the active node", with a status every balancer treats as down).
 * They are open (no token), so they show roles and states, never ZooKeeper session ids.
 */
import type Router from '@koa/router';
import type { AppDeps } from '../deps';
import { requires } from '../access';
import { leaderAlive, readyLeaderElsewhere } from '../leader-gate';

export function probeRoutes(router: Router, deps: AppDeps): void {
  const { dispatcher, retrieval, client } = deps;

  router.get('/livez', requires('public'), (ctx) => { ctx.body = { status: 'alive', replicaId: deps.replicaId }; });

  router.get('/readyz', requires('public'), (ctx) => {
    const leader = dispatcher.role === 'leader' ? null : readyLeaderElsewhere(deps);
    const leaderReachable = leader ? leaderAlive(deps, leader) : null;
    const ready = client.isConnected && (dispatcher.role === 'leader' || leaderReachable === true);
    ctx.status = ready ? 200 : 503;
    ctx.body = { ready, role: dispatcher.role, zookeeper: client.state, ...(leader ? { leaderReachable } : {}) };
    if (!ready) ctx.set('Retry-After', '1');
  });

  // ?activecode=, ?standbycode= (default 429) and ?standbyok=true choose the leader's and a standby's status.
  router.get('/health', requires('public'), (ctx) => {
    const role = dispatcher.role;
    const leader = role === 'leader' ? null : readyLeaderElsewhere(deps);
    const codes = {
      active: statusParam(ctx.query.activecode, 200),
      standby: ctx.query.standbyok === 'true' ? 200 : statusParam(ctx.query.standbycode, 429),
    };
    // null on the leader and while no leader is published; false: the published leader does not answer.
    const leaderReachable = leader ? leaderAlive(deps, leader) : null;
    ctx.status = !client.isConnected ? 503 : role === 'leader' ? codes.active : leaderReachable ? codes.standby : 503;
    if (ctx.status === 503) ctx.set('Retry-After', '1');
    const info = role === 'leader' ? { replicaId: deps.replicaId, restUrl: retrieval.current?.restUrl ?? null, epoch: dispatcher.epoch } : leader;
    ctx.body = {
      role: role === 'leader' ? 'leader' : role === 'recovering' ? 'recovering' : 'standby',
      replicaId: deps.replicaId,
      epoch: role === 'leader' ? dispatcher.epoch : null,
      leader: info ? { replicaId: info.replicaId, restUrl: info.restUrl, epoch: info.epoch } : null,
      leaderReachable,
      zookeeper: { state: client.state },
      // The standby mirror's state and sizes ('off' on the leader); null when the mirror is disabled.
      mirror: dispatcher.mirror?.status() ?? null,
    };
  });
}

/** An HTTP status from a query parameter, or `fallback` when it is not an integer in 100..599. */
function statusParam(value: unknown, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n >= 100 && n <= 599 ? n : fallback;
}
