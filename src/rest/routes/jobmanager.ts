/**
 * Flink's JobManager and TaskManager housekeeping endpoints: this replica's configuration
 * (`/jobmanager/config`, served by every replica about itself), its logs, the task attempt logs a
 * TaskManager holds (leader only: only the leader's ResourceManager knows the TaskManagers), and
 * `DELETE /cluster`, which stops the replica that answers it.
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { NotFoundError } from '../../http/errors';
import type { AppDeps } from '../deps';
import { requires } from '../access';
import { configEntries, findVertex, parseTaskLogName, taskLogName } from '../flink-views';

const NO_LOG_FILES = 'this process writes its log as JSON lines to stderr, not to files; read it where its supervisor keeps it (journald, kubectl logs, docker logs)';

export function jobManagerRoutes(router: Router, deps: AppDeps, leaderOnly: Middleware): void {
  // ---- served by every replica, about itself ----
  router.get('/jobmanager/config', requires('admin', 'config.read'), (ctx) => { ctx.body = configEntries(deps.publicConfig); });
  router.get('/jobmanager/logs', requires('viewer'), (ctx) => { ctx.body = { logs: [] }; });
  router.get('/jobmanager/log', requires('viewer'), () => { throw new NotFoundError(NO_LOG_FILES); });
  router.get('/jobmanager/stdout', requires('viewer'), () => { throw new NotFoundError(NO_LOG_FILES); });

  /**
   * Flink shuts the whole cluster down. Here it stops this replica only, gracefully, as SIGTERM does:
   * it resigns leadership (a standby takes over within about one ZooKeeper round trip) and exits.
   * The REST token guards it like every other endpoint when one is configured.
   */
  router.delete('/cluster', requires('admin', 'cluster.shutdown'), (ctx) => {
    const shutdown = deps.shutdown;
    if (!shutdown) throw new NotFoundError('this replica cannot be stopped over REST');
    deps.logger?.warn('replica.shutdown.requested', { via: 'DELETE /cluster', remote: ctx.ip });
    ctx.status = 202;
    ctx.body = {};
    ctx.res.once('finish', () => shutdown());
  });

  // ---- leader only: TaskManagers ----
  router.get('/taskmanagers/:id/logs', requires('viewer'), leaderOnly, (ctx) => {
    const tm = deps.resources?.()?.get(ctx.params.id);
    if (!tm) throw new NotFoundError(`taskmanager ${JSON.stringify(ctx.params.id.slice(0, 80))} is not registered`);
    // The attempt logs of the tasks it holds now; sizes are not known without reading them (-1).
    ctx.body = { logs: tm.tasks.map((t) => ({ name: taskLogName(t), size: -1, mtime: -1 })) };
  });

  router.get('/taskmanagers/:id/logs/:name', requires('viewer'), leaderOnly, async (ctx) => {
    const res = deps.resources?.();
    const tm = res?.get(ctx.params.id);
    if (!res || !tm) throw new NotFoundError(`taskmanager ${JSON.stringify(ctx.params.id.slice(0, 80))} is not registered`);
    const parsed = parseTaskLogName(ctx.params.name);
    if (!parsed) throw new NotFoundError('no such log; names are task-<jobid>-<vertexid>-<subtask>-<attempt>.log as listed by GET /taskmanagers/:id/logs');
    const vertex = findVertex(await deps.dispatcher.jobDetails(parsed.jobId), parsed.vertexHexId);
    const text = vertex && res.taskLog ? await res.taskLog(parsed.jobId, vertex.id, parsed.subtask, parsed.attempt) : null;
    if (text === null) throw new NotFoundError('no such log (unknown attempt, or its TaskManager is gone)');
    ctx.type = 'text/plain';
    ctx.body = text;
  });

  router.get('/taskmanagers/:id/log', requires('viewer'), leaderOnly, () => { throw new NotFoundError(NO_LOG_FILES); });
  router.get('/taskmanagers/:id/stdout', requires('viewer'), leaderOnly, () => { throw new NotFoundError(NO_LOG_FILES); });
}
