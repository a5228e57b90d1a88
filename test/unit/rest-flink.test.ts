/**
 * The Flink-compatible REST surface through `app.callback()`: every served endpoint's JSON validated
 * against test/schemas/flink for running, finished, failed and canceled jobs, with and without the
 * `/v1` prefix; a standby's redirect keeps `/v1`; Flink's cancel, exceptions and execution-result
 * semantics; streaming-only endpoints; DELETE /cluster.
 */
import test from 'ava';
import { createApp } from '../../src/rest/app';
import { ConflictError } from '../../src/http/errors';
import type { ExceptionEntry, JobDetails, JobStatus, TaskState } from '../../src/jobmaster/types';
import type { ResourceView, TaskManagerView } from '../../src/rest/deps';
import { flinkVertexId } from '../../src/rest/flink-views';
import { asStandby, FakeDispatcher, fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';
import { clusterEndpoints, jobEndpoints, schemaViolations } from '../helpers/flink-schemas';

const NOW = Date.now();
const JOBS: Record<'running' | 'finished' | 'failed' | 'canceled', string> = {
  running: '1'.repeat(32), finished: '2'.repeat(32), failed: '3'.repeat(32), canceled: '4'.repeat(32),
};
const STATE: Record<keyof typeof JOBS, JobStatus> = { running: 'RUNNING', finished: 'FINISHED', failed: 'FAILED', canceled: 'CANCELED' };
const TASK: Record<keyof typeof JOBS, TaskState> = { running: 'RUNNING', finished: 'FINISHED', failed: 'FAILED', canceled: 'CANCELED' };

function jobDetails(kind: keyof typeof JOBS): JobDetails {
  const jid = JOBS[kind];
  const ended = kind !== 'running';
  const end = ended ? NOW - 1000 : -1;
  const subtasks = (status: TaskState, n: number) => Array.from({ length: n }, (_, i) => ({
    subtask: i, status, attempt: 0, taskmanager: 'tm-1', 'start-time': NOW - 5000, 'end-time': status === 'RUNNING' ? -1 : end,
    duration: status === 'RUNNING' ? 5000 : 4000, log: `/jobs/${jid}/vertices/extract/subtasks/${i}/attempts/0/log`,
  }));
  return {
    jid, name: `job-${kind}`, state: STATE[kind], 'start-time': NOW - 6000, 'end-time': end, duration: ended ? 5000 : 6000, now: NOW - 1000,
    timestamps: { CREATED: NOW - 6000, RUNNING: NOW - 5500, ...(ended ? { [STATE[kind]]: end } : {}) }, restarts: 0, attempt: 0,
    vertices: [
      { id: 'extract', name: 'Extract', parallelism: 2, status: TASK[kind], 'start-time': NOW - 5000, 'end-time': end, duration: 4000, tasks: { [TASK[kind]]: 2 }, subtasks: subtasks(TASK[kind], 2), inputs: [] },
      { id: 'load', name: 'Load', parallelism: 1, status: 'CREATED', 'start-time': -1, 'end-time': -1, duration: -1, tasks: { CREATED: 1 },
        subtasks: [{ subtask: 0, status: 'CREATED', attempt: 0, taskmanager: null, 'start-time': -1, 'end-time': -1, duration: -1 }], inputs: ['extract'] },
    ],
  };
}

const EXCEPTIONS: ExceptionEntry[] = [
  { timestamp: NOW - 3000, exceptionName: 'TaskFailure', stacktrace: 'first: exit 1', taskName: 'Extract (1/2)', location: 'tm-1 (http://127.0.0.1:6121)' },
  { timestamp: NOW - 2000, exceptionName: 'TaskManagerLost', stacktrace: 'second: tm-1 lost', taskName: 'Extract (2/2)', location: 'tm-1 (http://127.0.0.1:6121)' },
  { timestamp: NOW - 1000, exceptionName: 'JobFailure', stacktrace: 'third: no restarts left' },
];

/** A leader Dispatcher holding one job of each kind, answering as the real one does. */
class FlinkFakeDispatcher extends FakeDispatcher {
  constructor() {
    super();
    this.details = (Object.keys(JOBS) as Array<keyof typeof JOBS>).map(jobDetails);
    this.jobs = this.details.map((d) => ({ id: d.jid, status: d.state }));
  }

  override async cancel(jobId: string): Promise<void> {
    const d = await this.jobDetails(jobId);
    if (d.state !== 'RUNNING') throw new ConflictError(`job ${jobId} already ended with status ${d.state}; nothing to cancel`);
    this.cancelled.push(jobId);
  }

  override async jobExceptions(jobId: string): Promise<{ 'root-exception': string | null; timestamp: number | null; 'exception-history': { entries: ExceptionEntry[] } }> {
    const entries = (await this.jobDetails(jobId)).state === 'FAILED' ? EXCEPTIONS : [];
    return { 'root-exception': entries.at(-1)?.stacktrace ?? null, timestamp: entries.at(-1)?.timestamp ?? null, 'exception-history': { entries } };
  }

  override async executionResult(jobId: string): Promise<any> {
    const d = await this.jobDetails(jobId);
    if (d.state === 'RUNNING') return { status: { id: 'IN_PROGRESS' } };
    return {
      status: { id: 'COMPLETED' },
      'job-execution-result': {
        id: jobId, 'application-status': d.state, 'net-runtime': 5000,
        ...(d.state === 'FAILED' ? { 'failure-cause': { message: 'third: no restarts left', timestamp: NOW - 1000 } } : {}),
      },
    };
  }
}

const TM_1: TaskManagerView = {
  id: 'tm-1', host: 'h1', address: 'http://127.0.0.1:6121', slotsNumber: 4, freeSlots: 2, registeredAt: NOW - 60_000, lastHeartbeat: NOW - 200,
  timeSinceLastHeartbeat: 200, recentTaskMs: 12, tasks: [{ jobId: JOBS.running, vertexId: 'extract', subtask: 0, attempt: 0, state: 'RUNNING' }],
};

function setUp(overrides: Parameters<typeof fakeRestDeps>[0] = {}) {
  const dispatcher = new FlinkFakeDispatcher();
  const logs: Array<[string, string, number, number]> = [];
  const resources: ResourceView = {
    overview: () => ({ taskmanagers: 1, 'slots-total': 4, 'slots-available': 2 }),
    list: () => [TM_1],
    get: (id) => (id === 'tm-1' ? TM_1 : null),
    taskLog: async (jobId, vertexId, subtask, attempt) => { logs.push([jobId, vertexId, subtask, attempt]); return `log of ${vertexId}/${subtask}/${attempt}\n`; },
  };
  const f = fakeRestDeps({ dispatcher, resources: () => resources, publicConfig: { 'rest.port': 8081, 'security.rest.token': '******' }, ...overrides });
  const handler = createApp(f.deps).callback();
  const call = (path: string, method = 'GET', headers: Record<string, string> = {}) => inject(handler, { path, method, headers });
  return { f, dispatcher, call, logs };
}

/** The body without what moves with the clock between two requests (`now`, and durations of running work). */
const withoutNow = (body: any): any => JSON.parse(JSON.stringify(body, (k, v) => (k === 'now' || k === 'duration' ? undefined : v)));

for (const kind of Object.keys(JOBS) as Array<keyof typeof JOBS>) {
  test(`every endpoint of a ${kind} job answers Flink's shape, the same under /v1`, async (t) => {
    const { call } = setUp();
    const vertex = flinkVertexId(JOBS[kind], 'extract');
    for (const { path, schema } of [...clusterEndpoints('tm-1'), ...jobEndpoints(JOBS[kind], vertex)]) {
      const plain = await call(path);
      t.is(plain.status, 200, `${path}: ${plain.text}`);
      t.deepEqual(schemaViolations(schema, plain.json()), [], `${path} as ${schema}`);
      const v1 = await call(`/v1${path}`);
      t.is(v1.status, 200, `/v1${path}`);
      if (schema !== 'dashboard-config') t.deepEqual(withoutNow(v1.json()), withoutNow(plain.json()), `/v1${path} answers as ${path}`);
    }
  });
}

test('job details: 32-hex vertex ids derived from job and vertex, names kept, every status timestamp, now is the request time', async (t) => {
  const { call } = setUp();
  const body = (await call(`/v1/jobs/${JOBS.finished}`)).json();
  t.deepEqual(body.vertices.map((v: any) => [v.id, v.name]), [[flinkVertexId(JOBS.finished, 'extract'), 'Extract'], [flinkVertexId(JOBS.finished, 'load'), 'Load']]);
  t.not(flinkVertexId(JOBS.finished, 'extract'), flinkVertexId(JOBS.running, 'extract'), 'ids differ between jobs');
  t.is(body.timestamps.FINISHED, NOW - 1000);
  t.is(body.timestamps.FAILED, 0, 'states never reached are 0');
  t.true(body.now >= NOW, 'now is not frozen at the end time');
  t.is(body.duration, 5000);
  t.like(body['status-counts'], { FINISHED: 2, CREATED: 1, RUNNING: 0 });
  t.deepEqual(body.plan.nodes[1].inputs, [{ num: 0, id: flinkVertexId(JOBS.finished, 'extract'), ship_strategy: 'FORWARD', exchange: 'blocking' }]);
  t.is(body.isStoppable, false);
  t.is(body.maxParallelism, -1);
  // Our own paths accept the Flink id and the JobGraph's vertex id alike.
  const byName = (await call(`/jobs/${JOBS.finished}/vertices/extract`)).json();
  t.deepEqual(withoutNow(byName), withoutNow((await call(`/jobs/${JOBS.finished}/vertices/${body.vertices[0].id}`)).json()));
  const missing = await call(`/jobs/${JOBS.finished}/vertices/${'f'.repeat(32)}`);
  t.is(missing.status, 404);
  t.deepEqual(schemaViolations('errors', missing.json()), []);
});

test('jobs overview counts every execution state and the total', async (t) => {
  const { call } = setUp();
  const running = (await call('/jobs/overview')).json().jobs.find((j: any) => j.jid === JOBS.running);
  t.deepEqual(running.tasks, { total: 3, created: 1, scheduled: 0, deploying: 0, running: 2, finished: 0, canceling: 0, canceled: 0, failed: 0, reconciling: 0, initializing: 0 });
});

test('execution result: Flink\'s application status and failure cause', async (t) => {
  const { call } = setUp();
  const status = async (kind: keyof typeof JOBS) => (await call(`/jobs/${JOBS[kind]}/execution-result`)).json()['job-execution-result']?.['application-status'];
  t.deepEqual([await status('finished'), await status('failed'), await status('canceled')], ['SUCCEEDED', 'FAILED', 'CANCELED']);
  t.deepEqual((await call(`/jobs/${JOBS.running}/execution-result`)).json(), { status: { id: 'IN_PROGRESS' } });
  const failed = (await call(`/jobs/${JOBS.failed}/execution-result`)).json()['job-execution-result'];
  t.like(failed['failure-cause'], { class: 'JobFailure', 'stack-trace': 'third: no restarts left' });
  t.deepEqual(failed['accumulator-results'], {});
});

test('exceptions: newest first as exceptionHistory, maxExceptions truncates, TaskManager and endpoint split out', async (t) => {
  const { call } = setUp();
  const all = (await call(`/jobs/${JOBS.failed}/exceptions`)).json();
  t.is(all['root-exception'], 'third: no restarts left');
  t.deepEqual(all.exceptionHistory.entries.map((e: any) => e.exceptionName), ['JobFailure', 'TaskManagerLost', 'TaskFailure']);
  t.false(all.truncated);
  t.false('exception-history' in all);
  t.like(all.exceptionHistory.entries[1], { taskName: 'Extract (2/2)', taskManagerId: 'tm-1', endpoint: '127.0.0.1:6121', failureLabels: {}, concurrentExceptions: [] });
  t.deepEqual(all['all-exceptions'].map((e: any) => e.task), ['Extract (2/2)', 'Extract (1/2)']);
  const one = (await call(`/jobs/${JOBS.failed}/exceptions?maxExceptions=1`)).json();
  t.is(one.exceptionHistory.entries.length, 1);
  t.true(one.truncated);
  t.true(one.exceptionHistory.truncated);
  t.is((await call(`/jobs/${JOBS.failed}/exceptions?maxExceptions=lots`)).status, 400);
});

test('PATCH cancel: mode in any case; an already CANCELED job is cancelled (202), a FINISHED one is a conflict', async (t) => {
  const { call, dispatcher } = setUp();
  for (const mode of ['CANCEL', 'Cancel', 'cancel']) t.is((await call(`/v1/jobs/${JOBS.running}?mode=${mode}`, 'PATCH')).status, 202, mode);
  t.is((await call(`/jobs/${JOBS.running}`, 'PATCH')).status, 202, 'no mode means cancel');
  t.deepEqual(dispatcher.cancelled, [JOBS.running, JOBS.running, JOBS.running, JOBS.running]);
  const again = await call(`/jobs/${JOBS.canceled}?mode=cancel`, 'PATCH');
  t.is(again.status, 202);
  t.deepEqual(schemaViolations('empty', again.json()), []);
  t.is((await call(`/jobs/${JOBS.finished}?mode=cancel`, 'PATCH')).status, 409);
  t.is((await call(`/jobs/${JOBS.running}?mode=stop`, 'PATCH')).status, 400);
});

test('a standby redirects /v1 paths to the same /v1 path on the leader', async (t) => {
  const { f, call, dispatcher } = setUp();
  asStandby(f);
  dispatcher.role = 'standby';
  const res = await call(`/v1/jobs/${JOBS.running}/vertices/extract?x=1`);
  t.is(res.status, 307);
  t.is(res.headers.location, `http://b.test:8081/v1/jobs/${JOBS.running}/vertices/extract?x=1`);
  const config = await call('/v1/jobmanager/config');
  t.is(config.status, 200, 'a replica answers about its own configuration');
  t.deepEqual(schemaViolations('jobmanager-config', config.json()), []);
});

test('the configuration is GET /jobmanager/config as key/value strings, secrets redacted; /config is the dashboard\'s', async (t) => {
  const { call } = setUp();
  t.deepEqual((await call('/jobmanager/config')).json(), [{ key: 'rest.port', value: '8081' }, { key: 'security.rest.token', value: '******' }]);
  const dashboard = (await call('/config')).json();
  t.is(dashboard['flink-version'], '9.9.9-test');
  t.false('rest.port' in dashboard);
});

test('streaming-only endpoints answer 404 saying they do not apply, with or without /v1', async (t) => {
  const { call } = setUp();
  const paths = [`/jobs/${JOBS.running}/checkpoints`, `/jobs/${JOBS.running}/checkpoints/config`, `/jobs/${JOBS.running}/savepoints`,
    `/jobs/${JOBS.running}/stop`, `/jobs/${JOBS.running}/rescaling`, `/jobs/${JOBS.running}/vertices/extract/watermarks`,
    `/jobs/${JOBS.running}/vertices/extract/backpressure`, `/jobs/${JOBS.running}/vertices/extract/flamegraph`];
  for (const path of paths) {
    for (const p of [path, `/v1${path}`]) {
      const res = await call(p, p.endsWith('savepoints') || p.endsWith('stop') ? 'POST' : 'GET');
      t.is(res.status, 404, p);
      t.regex(res.json().errors[0], /do not apply here/, p);
    }
  }
});

test('TaskManager logs: attempt logs listed by name and read through the ResourceManager; process logs are not files', async (t) => {
  const { call, logs } = setUp();
  const list = (await call('/v1/taskmanagers/tm-1/logs')).json().logs;
  t.deepEqual(list.map((l: any) => l.name), [`task-${JOBS.running}-${flinkVertexId(JOBS.running, 'extract')}-0-0.log`]);
  const log = await call(`/taskmanagers/tm-1/logs/${list[0].name}`);
  t.is(log.status, 200);
  t.is(log.text, 'log of extract/0/0\n');
  t.deepEqual(logs, [[JOBS.running, 'extract', 0, 0]], 'asked under the JobGraph\'s vertex id');
  t.is((await call('/taskmanagers/tm-1/logs/passwd')).status, 404);
  t.is((await call('/taskmanagers/tm-1/log')).status, 404);
  t.is((await call('/jobmanager/log')).status, 404);
  t.is((await call(`/jobs/${JOBS.running}/vertices/${flinkVertexId(JOBS.running, 'extract')}/subtasks/0/attempts/0/log`)).text, 'log of extract/0/0\n');
  t.is((await call(`/jobs/${JOBS.running}/vertices/extract/subtasks/0/attempts/1`)).status, 404, 'only the current attempt is kept');
  t.is((await call(`/jobs/${JOBS.running}/vertices/extract/subtasks/7`)).status, 404);
});

test('DELETE /cluster: 202, then this replica stops (once the answer is out); the REST token guards it', async (t) => {
  let stops = 0;
  const open = setUp({ shutdown: () => { stops++; } });
  const res = await open.call('/v1/cluster', 'DELETE');
  t.is(res.status, 202);
  t.is(stops, 1);
  t.true(open.f.logger.events.some((e) => e.event === 'replica.shutdown.requested'));

  let guardedStops = 0;
  const guarded = setUp({ shutdown: () => { guardedStops++; }, restToken: 'a3f1c9e07b2d4e6f8a1b' });
  t.is((await guarded.call('/cluster', 'DELETE')).status, 401);
  t.is(guardedStops, 0);
  t.is((await guarded.call('/cluster', 'DELETE', { authorization: 'Bearer a3f1c9e07b2d4e6f8a1b' })).status, 202);
  t.is(guardedStops, 1);
});
