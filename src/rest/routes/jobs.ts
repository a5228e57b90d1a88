/**
 * The jobs API, leader only (every route sits behind the leader gate): submit a JobGraph, list jobs,
 * the jobs overview, a job's details, exceptions, execution result and task attempt logs, cancel, and
 * the quarantined (unreadable) stored graphs. Job ids are 32 lowercase hex characters.
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { Dispatcher } from '../../dispatcher/dispatcher';
import { jobOverview } from '../../dispatcher/views';
import { HttpError, NotFoundError } from '../../http/errors';
import { readJsonBody } from '../../http/body';
import type { AppDeps } from '../deps';
import { withAttemptLogUrls } from '../job-urls';
import { answerPage, parsePageQuery } from '../pagination';

export function jobRoutes(router: Router, deps: AppDeps, leaderOnly: Middleware): void {
  const { dispatcher } = deps;

  // 202 once the graph is stored in ZooKeeper; 415 / 413 / 400 for a body that is not a readable JSON graph;
  // 429 + Retry-After when admission control refuses a new job (the body names the limit).
  router.post('/jobs', leaderOnly, async (ctx) => {
    const body = await readJsonBody(ctx, deps.maxBodyBytes, { setting: 'rest.max-body-bytes' })
      .catch((err) => { deps.metrics?.submissions.inc({ outcome: 'rejected' }); throw err; });
    const result = await dispatcher.submit(Dispatcher.withJobId(body));
    ctx.status = 202;
    ctx.body = { jobid: result.jobId, jobUrl: `/jobs/${result.jobId}` };
  });

  // Listings: ?limit=&cursor= pages (src/rest/pagination.ts); without them at most 1000 jobs.
  router.get('/jobs', leaderOnly, (ctx) => {
    const query = parsePageQuery(ctx.query);
    answerPage(ctx, 'jobs', query, dispatcher.pageOfJobs(query));
  });

  // Before /jobs/:jobid, which would match these paths too.
  router.get('/jobs/overview', leaderOnly, (ctx) => {
    const query = parsePageQuery(ctx.query);
    const page = dispatcher.pageOfJobsOverview(query);
    answerPage(ctx, 'jobs', query, { ...page, items: page.items.map(jobOverview) });
  });
  router.get('/jobs/quarantined', leaderOnly, (ctx) => { ctx.body = { quarantined: dispatcher.quarantined() }; });

  router.get('/jobs/:jobid', leaderOnly, async (ctx) => { ctx.body = withAttemptLogUrls(await dispatcher.jobDetails(ctx.params.jobid)); });
  router.get('/jobs/:jobid/exceptions', leaderOnly, async (ctx) => { ctx.body = await dispatcher.jobExceptions(ctx.params.jobid); });
  router.get('/jobs/:jobid/execution-result', leaderOnly, async (ctx) => { ctx.body = await dispatcher.executionResult(ctx.params.jobid); });

  router.get('/jobs/:jobid/vertices/:vertex/subtasks/:subtask/attempts/:attempt/log', leaderOnly, async (ctx) => {
    const details = await dispatcher.jobDetails(ctx.params.jobid);
    const res = deps.resources?.();
    const text = res?.taskLog ? await res.taskLog(details.jid, ctx.params.vertex, Number(ctx.params.subtask), Number(ctx.params.attempt)) : null;
    if (text === null) throw new NotFoundError('no log for that task attempt (unknown attempt, or its TaskManager is gone)');
    ctx.type = 'text/plain';
    ctx.body = text;
  });

  // Cancel: 202 once the JobMaster was asked to cancel; the job then passes through CANCELLING.
  router.patch('/jobs/:jobid', leaderOnly, async (ctx) => {
    const mode = ctx.query.mode ?? 'cancel';
    if (mode !== 'cancel') throw new HttpError(400, `unsupported mode ${JSON.stringify(mode)}; use ?mode=cancel`, { code: 'INVALID' });
    await dispatcher.cancel(ctx.params.jobid);
    ctx.status = 202;
    ctx.body = {};
  });
}
