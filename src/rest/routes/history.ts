/**
 * The failover timeline, served by every replica (it reads ZooKeeper, not leader state):
 * `GET /leadership/history` → `{ terms: [{ epoch, replicaId, restUrl, grantedAt, readyAt, recoveryMs,
 * cause, endedAt }], capacity }`, oldest term first, ISO-8601 times, `endedAt` null for the latest term.
 */
import type Router from '@koa/router';
import { LeadershipHistoryStore, MAX_LEADERSHIP_TERMS } from '../../store/leadership-history';
import type { AppDeps } from '../deps';
import { requires } from '../access';

export function historyRoutes(router: Router, deps: Pick<AppDeps, 'client'>): void {
  const store = new LeadershipHistoryStore(deps.client);
  router.get('/leadership/history', requires('viewer'), async (ctx) => {
    ctx.body = { terms: await store.read(), capacity: MAX_LEADERSHIP_TERMS };
  });
}
