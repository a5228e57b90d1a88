/**
 * The jobs and cluster-overview routes of createApp through app.callback(), in-process with a fake
 * Dispatcher: submission (202 / 400 / 413 / 415), job reads, cancel, and the overviews whose counting
 * lives in src/dispatcher/views.ts.
 */
import test from 'ava';
import { createApp } from '../../src/rest/app';
import { ConflictError } from '../../src/http/errors';
import { JobDetails, JobStatus, TaskState } from '../../src/jobmaster/types';
import type { TaskManagerView } from '../../src/rest/deps';
import { fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

const JOB_A = 'a'.repeat(32);
const JOB_B = 'b'.repeat(32);
const JSON_TYPE = { 'content-type': 'application/json' };
/** Flink's `tasks` of /jobs/overview: every execution state, lower-case, 0 when none. */
const NO_TASKS = {
  total: 0, created: 0, scheduled: 0, deploying: 0, running: 0, finished: 0, canceling: 0, canceled: 0, failed: 0, reconciling: 0, initializing: 0,
};
const TM_1: TaskManagerView = {
  id: 'tm-1', host: 'h1', address: 'http://127.0.0.1:6121', slotsNumber: 4, freeSlots: 3, registeredAt: 1000, lastHeartbeat: 4000,
  timeSinceLastHeartbeat: 500, recentTaskMs: null, tasks: [{ jobId: JOB_A, vertexId: 'v', subtask: 0, attempt: 0, state: 'RUNNING' }],
};

function serve(f: ReturnType<typeof fakeRestDeps>) {
  const handler = createApp(f.deps).callback();
  return (path: string, init: { method?: string; headers?: Record<string, string>; body?: string; chunked?: boolean } = {}) => inject(handler, { path, ...init });
}

function details(jid: string, state: JobStatus, subtasks: TaskState[][], timestamps: Partial<Record<JobStatus, number>>): JobDetails {
  return {
    jid, name: `job-${jid[0]}`, state, 'start-time': 1000, 'end-time': -1, duration: 500, now: 1500, timestamps, restarts: 0, attempt: 1,
    vertices: subtasks.map((states, v) => ({
      id: `v${v}`, name: `v${v}`, parallelism: states.length, status: states[0], 'start-time': 1000, 'end-time': -1, duration: 500, tasks: {},
      subtasks: states.map((status, i) => ({ subtask: i, status, attempt: 0, taskmanager: null, 'start-time': 1000, 'end-time': -1, duration: 500 })),
    })),
  };
}

// ---- submission ----

test('POST /jobs: 202 with the job URL; a graph without jobId gets a generated one', async (t) => {
  const f = fakeRestDeps();
  const post = serve(f);
  const given = await post('/jobs', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ jobId: JOB_A, name: 'n', vertices: [] }) });
  t.is(given.status, 202);
  t.deepEqual(given.json(), { jobid: JOB_A, jobUrl: `/jobs/${JOB_A}` });

  const generated = await post('/jobs', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ name: 'n' }) });
  t.is(generated.status, 202);
  t.regex(generated.json().jobid, /^[0-9a-f]{32}$/);
  t.is((f.dispatcher.submitted[1] as { jobId: string }).jobId, generated.json().jobid);
  t.is((f.dispatcher.submitted[1] as { name: string }).name, 'n');
});

test('POST /jobs: 415 for a non-JSON body, 400 for an empty or malformed one, nothing submitted', async (t) => {
  const f = fakeRestDeps();
  const post = serve(f);
  const text = await post('/jobs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
  t.is(text.status, 415);
  t.regex(text.json().errors[0], /Content-Type: application\/json/);
  t.is((await post('/jobs', { method: 'POST', body: '{}' })).status, 415, 'no Content-Type at all');
  const empty = await post('/jobs', { method: 'POST', headers: JSON_TYPE, body: '' });
  t.is(empty.status, 400);
  t.deepEqual(empty.json(), { errors: ['request body is empty: send a JSON document'] });
  const malformed = await post('/jobs', { method: 'POST', headers: JSON_TYPE, body: '{"jobId":' });
  t.is(malformed.status, 400);
  t.regex(malformed.json().errors[0], /^malformed JSON/);
  t.deepEqual(f.dispatcher.submitted, []);
});

test('POST /jobs: 413 over rest.max-body-bytes, declared or streamed', async (t) => {
  const f = fakeRestDeps({ maxBodyBytes: 64 });
  const post = serve(f);
  const body = JSON.stringify({ name: 'x'.repeat(100) });
  const declared = await post('/jobs', { method: 'POST', headers: JSON_TYPE, body });
  t.is(declared.status, 413);
  t.regex(declared.json().errors[0], /limit of 64 bytes.*rest\.max-body-bytes/);
  const streamed = await post('/jobs', { method: 'POST', headers: JSON_TYPE, body, chunked: true });
  t.is(streamed.status, 413);
  t.deepEqual(f.dispatcher.submitted, []);
});

test('POST /jobs: the Dispatcher\'s refusals keep their status and message', async (t) => {
  const f = fakeRestDeps();
  f.dispatcher.submitError = new ConflictError(`job ${JOB_A} was already submitted with a different graph`);
  const res = await serve(f)('/jobs', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ jobId: JOB_A }) });
  t.is(res.status, 409);
  t.deepEqual(res.json(), { errors: [`job ${JOB_A} was already submitted with a different graph`] });
});

// ---- reads and cancel ----

test('job reads: list, details, exceptions, execution result, quarantined; unknown jobs 404', async (t) => {
  const f = fakeRestDeps();
  f.dispatcher.jobs = [{ id: JOB_A, status: 'RUNNING' }];
  f.dispatcher.details = [details(JOB_A, 'RUNNING', [['RUNNING']], { RUNNING: 1200 })];
  f.dispatcher.quarantine = [{ jobId: 'junk', node: '/jobgraphs-quarantine/junk', reason: 'unreadable', quarantinedAt: '2024-01-01T00:00:00.000Z' }];
  const get = serve(f);
  t.deepEqual((await get('/jobs')).json(), { jobs: [{ id: JOB_A, status: 'RUNNING' }] });
  t.like((await get(`/jobs/${JOB_A}`)).json(), { jid: JOB_A, state: 'RUNNING' });
  t.like((await get(`/jobs/${JOB_A}/exceptions`)).json(), { 'root-exception': null });
  t.deepEqual((await get(`/jobs/${JOB_A}/execution-result`)).json(), { status: { id: 'IN_PROGRESS' } });
  t.deepEqual((await get('/jobs/quarantined')).json(), { quarantined: f.dispatcher.quarantine });
  const unknown = await get(`/jobs/${JOB_B}`);
  t.is(unknown.status, 404);
  t.deepEqual(unknown.json(), { errors: [`job ${JOB_B} not found`] });
});

test('PATCH /jobs/:id cancels with 202; another mode is 400 and cancels nothing', async (t) => {
  const f = fakeRestDeps();
  f.dispatcher.details = [details(JOB_A, 'RUNNING', [], {})];
  const patch = serve(f);
  const bad = await patch(`/jobs/${JOB_A}?mode=stop`, { method: 'PATCH' });
  t.is(bad.status, 400);
  t.deepEqual(bad.json(), { errors: ['unsupported mode "stop"; use ?mode=cancel'] });
  const ok = await patch(`/jobs/${JOB_A}`, { method: 'PATCH' });
  t.is(ok.status, 202);
  t.deepEqual(ok.json(), {});
  t.deepEqual(f.dispatcher.cancelled, [JOB_A]);
});

test('a task attempt\'s log is read through the ResourceManager view; 404 when it has none', async (t) => {
  const asked: unknown[] = [];
  const f = fakeRestDeps({
    resources: () => ({
      overview: () => ({ taskmanagers: 0, 'slots-total': 0, 'slots-available': 0 }),
      list: () => [], get: () => null,
      taskLog: async (...args) => { asked.push(args); return args[2] === 0 ? 'hello\n' : null; },
    }),
  });
  f.dispatcher.details = [details(JOB_A, 'RUNNING', [['RUNNING']], {})];
  const get = serve(f);
  const log = await get(`/jobs/${JOB_A}/vertices/v0/subtasks/0/attempts/2/log`);
  t.is(log.status, 200);
  t.regex(log.headers['content-type'], /^text\/plain/);
  t.is(log.text, 'hello\n');
  t.deepEqual(asked[0], [JOB_A, 'v0', 0, 2]);
  t.is((await get(`/jobs/${JOB_A}/vertices/v0/subtasks/1/attempts/0/log`)).status, 404);
});

// ---- overviews ----

test('/jobs/overview summarises each job: subtasks by state and the latest transition', async (t) => {
  const f = fakeRestDeps();
  f.dispatcher.details = [
    details(JOB_A, 'RUNNING', [['RUNNING', 'RUNNING'], ['DEPLOYING']], { INITIALIZING: 900, CREATED: 1000, RUNNING: 1100 }),
    details(JOB_B, 'CREATED', [], {}),
  ];
  const res = await serve(f)('/jobs/overview');
  t.deepEqual(res.json(), {
    jobs: [
      { jid: JOB_A, name: 'job-a', state: 'RUNNING', 'start-time': 1000, 'end-time': -1, duration: 500, 'last-modification': 1100, tasks: { ...NO_TASKS, total: 3, running: 2, deploying: 1 } },
      { jid: JOB_B, name: 'job-b', state: 'CREATED', 'start-time': 1000, 'end-time': -1, duration: 500, 'last-modification': 1000, tasks: NO_TASKS },
    ],
  });
});

test('/overview counts jobs by outcome (every not-yet-ended status is running) and adds the TaskManagers', async (t) => {
  const f = fakeRestDeps({
    resources: () => ({ overview: () => ({ taskmanagers: 2, 'slots-total': 8, 'slots-available': 5 }), list: () => [TM_1], get: (id) => (id === 'tm-1' ? TM_1 : null) }),
  });
  const statuses: JobStatus[] = ['RUNNING', 'CREATED', 'RESTARTING', 'RECONCILING', 'FAILING', 'CANCELLING', 'FINISHED', 'FINISHED', 'CANCELED', 'FAILED', 'INITIALIZING'];
  f.dispatcher.jobs = statuses.map((status, i) => ({ id: String(i).padStart(32, '0'), status }));
  const get = serve(f);
  t.deepEqual((await get('/overview')).json(), {
    taskmanagers: 2, 'slots-total': 8, 'slots-available': 5,
    'slots-free-and-blocked': 0, 'taskmanagers-blocked': 0,
    'jobs-running': 6, 'jobs-finished': 2, 'jobs-cancelled': 1, 'jobs-failed': 1,
    'flink-version': '9.9.9-test', 'flink-commit': 'DeadD0d0',
    version: '9.9.9-test', 'leader-replica': 'replica-a', epoch: 7,
    admission: {
      'pending-jobs': 11, 'max-pending-jobs': 100, 'stored-jobgraph-bytes': 0, 'max-stored-jobgraph-bytes': 1_000_000,
      'submission-rate': 10, 'submission-burst': 10, 'submission-tokens': 10,
    },
    'job-results': { retained: 0, 'history-loaded': true, 'retention-max-count': 1000, 'retention-max-age': null },
  });
  const [listed] = (await get('/taskmanagers')).json().taskmanagers;
  t.like(listed, { id: 'tm-1', path: 'http://127.0.0.1:6121', dataPort: 6121, timeSinceLastHeartbeat: 4000, heartbeatAgeMs: 500, slotsNumber: 4, freeSlots: 3, blocked: false });
  t.like((await get('/taskmanagers/tm-1')).json(), { id: 'tm-1', allocatedSlots: [{ jobId: JOB_A }] });
  const missing = await get('/taskmanagers/tm-9');
  t.is(missing.status, 404);
  t.deepEqual(missing.json(), { errors: ['taskmanager "tm-9" is not registered'] });
  t.like((await get('/config')).json(), { 'flink-version': '9.9.9-test', features: { 'web-submit': false } });
  t.deepEqual((await get('/jobmanager/config')).json(), [{ key: 'rest.port', value: '8081' }]);
});

test('/overview without an execution backend reports no TaskManagers and no jobs', async (t) => {
  const res = await serve(fakeRestDeps())('/overview');
  t.like(res.json(), { taskmanagers: 0, 'slots-total': 0, 'slots-available': 0, 'jobs-running': 0, 'jobs-finished': 0 });
});
