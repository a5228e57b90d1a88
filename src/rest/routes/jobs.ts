/**
 * The jobs API, leader only (every route sits behind the leader gate), in Flink's REST shapes (see
 * ../flink-views.ts): submit a JobGraph, list jobs, the jobs overview, a job's details, status, plan,
 * config, accumulators, exceptions and execution result, its vertices and subtasks, task attempt
 * logs, cancel, and the quarantined (unreadable) stored graphs. Job ids are 32 lowercase hex
 * characters; a vertex is named by its Flink id (32 hex) or by its id in the JobGraph.
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { Dispatcher } from '../../dispatcher/dispatcher';
import type { JobDetails, SubtaskDetail, VertexDetail } from '../../jobmaster/types';
import { ConflictError, HttpError, NotFoundError, ValidationError } from '../../http/errors';
import { readJsonBody } from '../../http/body';
import type { AppDeps, TaskManagerView } from '../deps';
import { principalOf, requires, setAuditTarget } from '../access';
import { ANONYMOUS, grants } from '../../security/roles';
import {
  accumulatorsView, DEFAULT_MAX_EXCEPTIONS, executionResultView, ExecutionResultInput, findVertex, jobConfigView, jobDetailsView,
  jobExceptionsView, jobIdsWithStatus, jobOverviewRow, jobPlan, subtaskAttemptView, subtaskTimesView, vertexDetailsView,
  vertexTaskManagersView,
} from '../flink-views';
import { withAttemptLogUrls } from '../job-urls';
import { answerPage, parsePageQuery } from '../pagination';

export function jobRoutes(router: Router, deps: AppDeps, leaderOnly: Middleware): void {
  const { dispatcher } = deps;
  const taskManagers = (): Map<string, TaskManagerView> => new Map((deps.resources?.()?.list() ?? []).map((tm) => [tm.id, tm]));

  // 202 once the graph is stored in ZooKeeper; 415 / 413 / 400 for a body that is not a readable JSON graph;
  // 429 + Retry-After when admission control refuses a new job (the body names the limit).
  router.post('/jobs', requires('submitter', 'job.submit'), leaderOnly, async (ctx) => {
    const body = await readJsonBody(ctx, deps.maxBodyBytes, { setting: 'rest.max-body-bytes' })
      .catch((err) => { deps.metrics?.submissions.inc({ outcome: 'rejected' }); throw err; });
    const principal = principalOf(ctx);
    const result = await dispatcher.submit(Dispatcher.withJobId(body), principal.name === ANONYMOUS ? undefined : principal.name);
    setAuditTarget(ctx, result.jobId);
    ctx.status = 202;
    ctx.body = { jobid: result.jobId, jobUrl: `/jobs/${result.jobId}` };
  });

  // Listings: ?limit=&cursor= pages (src/rest/pagination.ts); without them at most 1000 jobs, in Flink's shapes.
  router.get('/jobs', requires('viewer'), leaderOnly, (ctx) => {
    const query = parsePageQuery(ctx.query);
    const page = dispatcher.pageOfJobs(query);
    answerPage(ctx, 'jobs', query, { ...page, items: page.items.map((j) => ({ id: j.id, status: j.status })) });
  });

  // Before /jobs/:jobid, which would match these paths too.
  router.get('/jobs/overview', requires('viewer'), leaderOnly, (ctx) => {
    const query = parsePageQuery(ctx.query);
    const page = dispatcher.pageOfJobsOverview(query);
    answerPage(ctx, 'jobs', query, { ...page, items: page.items.map(jobOverviewRow) });
  });
  router.get('/jobs/quarantined', requires('viewer'), leaderOnly, (ctx) => { ctx.body = { quarantined: dispatcher.quarantined() }; });
  // Flink's aggregated job metrics: no job metrics are collected per job here, so none are offered.
  router.get('/jobs/metrics', requires('viewer'), leaderOnly, (ctx) => { ctx.body = []; });

  router.get('/jobs/:jobid', requires('viewer'), leaderOnly, async (ctx) => { ctx.body = jobDetailsView(withAttemptLogUrls((await dispatcher.jobDetails(ctx.params.jobid))), Date.now()); });
  router.get('/jobs/:jobid/status', requires('viewer'), leaderOnly, async (ctx) => { ctx.body = { status: (await dispatcher.jobDetails(ctx.params.jobid)).state }; });
  router.get('/jobs/:jobid/plan', requires('viewer'), leaderOnly, async (ctx) => { ctx.body = { plan: jobPlan((await dispatcher.jobDetails(ctx.params.jobid))) }; });
  router.get('/jobs/:jobid/config', requires('viewer'), leaderOnly, async (ctx) => { ctx.body = jobConfigView((await dispatcher.jobDetails(ctx.params.jobid))); });
  router.get('/jobs/:jobid/accumulators', requires('viewer'), leaderOnly, async (ctx) => {
    (await dispatcher.jobDetails(ctx.params.jobid)); // 400 / 404 for a bad or unknown id
    ctx.body = accumulatorsView();
  });
  router.get('/jobs/:jobid/exceptions', requires('viewer'), leaderOnly, async (ctx) => {
    const max = ctx.query.maxExceptions === undefined ? DEFAULT_MAX_EXCEPTIONS : Number(ctx.query.maxExceptions);
    if (!Number.isSafeInteger(max) || max < 0) throw new ValidationError(`maxExceptions must be a non-negative integer, got ${JSON.stringify(String(ctx.query.maxExceptions).slice(0, 40))}`);
    ctx.body = jobExceptionsView((await dispatcher.jobExceptions(ctx.params.jobid))['exception-history'].entries, max);
  });
  router.get('/jobs/:jobid/execution-result', requires('viewer'), leaderOnly, async (ctx) => {
    ctx.body = executionResultView((await dispatcher.executionResult(ctx.params.jobid)) as ExecutionResultInput);
  });

  // ---- vertices and subtasks ----
  router.get('/jobs/:jobid/vertices/:vertex', requires('viewer'), leaderOnly, async (ctx) => {
    const [details, vertex] = (await vertexOf(ctx));
    ctx.body = vertexDetailsView(details.jid, vertex, Date.now(), taskManagers());
  });
  router.get('/jobs/:jobid/vertices/:vertex/subtasktimes', requires('viewer'), leaderOnly, async (ctx) => {
    const [details, vertex] = (await vertexOf(ctx));
    ctx.body = subtaskTimesView(details.jid, vertex, Date.now(), taskManagers());
  });
  router.get('/jobs/:jobid/vertices/:vertex/taskmanagers', requires('viewer'), leaderOnly, async (ctx) => {
    const [details, vertex] = (await vertexOf(ctx));
    ctx.body = vertexTaskManagersView(details.jid, vertex, Date.now(), taskManagers());
  });
  router.get('/jobs/:jobid/vertices/:vertex/subtasks/:subtask', requires('viewer'), leaderOnly, async (ctx) => {
    ctx.body = subtaskAttemptView((await subtaskOf(ctx))[2], taskManagers());
  });
  // Only the current attempt of a subtask is kept; earlier attempts answer 404.
  router.get('/jobs/:jobid/vertices/:vertex/subtasks/:subtask/attempts/:attempt', requires('viewer'), leaderOnly, async (ctx) => {
    const subtask = (await subtaskOf(ctx))[2];
    if (String(subtask.attempt) !== ctx.params.attempt) {
      throw new NotFoundError(`subtask ${subtask.subtask} is at attempt ${subtask.attempt}; only the current attempt's details are kept`);
    }
    ctx.body = subtaskAttemptView(subtask, taskManagers());
  });

  router.get('/jobs/:jobid/vertices/:vertex/subtasks/:subtask/attempts/:attempt/log', requires('viewer'), leaderOnly, async (ctx) => {
    const [details, vertex] = (await vertexOf(ctx));
    const res = deps.resources?.();
    const text = res?.taskLog ? await res.taskLog(details.jid, vertex.id, Number(ctx.params.subtask), Number(ctx.params.attempt)) : null;
    if (text === null) throw new NotFoundError('no log for that task attempt (unknown attempt, or its TaskManager is gone)');
    ctx.type = 'text/plain';
    ctx.body = text;
  });

  // Cancel (Flink: ?mode=cancel in any case, or none): 202 once the request is recorded in ZooKeeper
  // and the JobMaster was asked to cancel; the job then passes through CANCELLING. A job already
  // CANCELED is cancelled: 202 again. A submitter cancels only the jobs it submitted; any other job
  // needs role operator (403 naming it).
  router.patch('/jobs/:jobid', requires('submitter', 'job.cancel'), leaderOnly, async (ctx) => {
    const mode = String(ctx.query.mode ?? 'cancel');
    if (mode.toLowerCase() !== 'cancel') throw new HttpError(400, `unsupported mode ${JSON.stringify(mode.slice(0, 40))}; use ?mode=cancel`, { code: 'INVALID' });
    const principal = principalOf(ctx);
    if (!grants(principal.role, 'operator')) {
      const owner = (await dispatcher.jobDetails(ctx.params.jobid)).submittedBy;
      if (owner !== principal.name) {
        throw new HttpError(403, `principal "${principal.name}" has role ${principal.role} and may cancel only the jobs it submitted; ` +
          `job ${ctx.params.jobid} was submitted by ${owner === undefined ? 'no recorded principal' : `"${owner}"`}: cancelling it needs role operator`, { code: 'FORBIDDEN' });
      }
    }
    try {
      await dispatcher.cancel(ctx.params.jobid);
    } catch (err) {
      if (!(err instanceof ConflictError) || (await dispatcher.jobDetails(ctx.params.jobid)).state !== 'CANCELED') throw err;
    }
    ctx.status = 202;
    ctx.body = {};
  });

  async function vertexOf(ctx: Context): Promise<[JobDetails, VertexDetail]> {
    const details = await dispatcher.jobDetails(ctx.params.jobid);
    const vertex = findVertex(details, ctx.params.vertex);
    if (!vertex) throw new NotFoundError(`job ${details.jid} has no vertex ${JSON.stringify(String(ctx.params.vertex).slice(0, 80))}`);
    return [details, vertex];
  }

  async function subtaskOf(ctx: Context): Promise<[JobDetails, VertexDetail, SubtaskDetail]> {
    const [details, vertex] = await vertexOf(ctx);
    const subtask = /^\d{1,9}$/.test(ctx.params.subtask) ? vertex.subtasks[Number(ctx.params.subtask)] : undefined;
    if (!subtask) throw new NotFoundError(`vertex ${vertex.name} has no subtask ${JSON.stringify(String(ctx.params.subtask).slice(0, 20))} (parallelism ${vertex.parallelism})`);
    return [details, vertex, subtask];
  }
}
