/**
 * The client verbs' Flink habits (list -r/-s/-a, info, -m host:port, idempotent cancel, submit -d, the root
 * cause on submit --wait) against a fake cluster: a fetch that answers from a table of routes, no sockets.
 */
import test from 'ava';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT, listed, runClientCommand, withHttpScheme } from '../../src/cli/client-commands';

const JOB_ID = '0123456789abcdef0123456789abcdef';

type Answer = { status?: number; body?: unknown };
/** `METHOD /path` (query included) → the answer, or a function of how often it was asked. */
type Routes = Record<string, Answer | ((calls: number) => Answer)>;

/** A fake fetch over `routes`; unknown routes answer 404 like the REST API. `seen` lists `METHOD url`. */
function fakeCluster(routes: Routes) {
  const seen: string[] = [];
  const calls = new Map<string, number>();
  const fetchImpl: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const key = `${init?.method ?? 'GET'} ${url.pathname}${url.search}`;
    seen.push(`${init?.method ?? 'GET'} ${url.href}`);
    const n = (calls.get(key) ?? 0) + 1;
    calls.set(key, n);
    const route = routes[key];
    const answer = route === undefined ? { status: 404, body: { errors: ['Not Found'] } } : typeof route === 'function' ? route(n) : route;
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body),
      { status: answer.status ?? 200, headers: { 'content-type': 'application/json' } });
  };
  return { fetchImpl, seen };
}

function capture(fetchImpl: typeof fetch) {
  const io = { out: '', err: '', env: {}, fetchImpl, stdout: (s: string) => void (io.out += s), stderr: (s: string) => void (io.err += s) };
  return io;
}

const URL_ARGS = ['--url', 'http://replica.test:8081'];

const JOBS = ['RUNNING', 'RESTARTING', 'CREATED', 'INITIALIZING', 'RECONCILING', 'FINISHED', 'FAILED', 'CANCELED']
  .map((state, i) => ({ jid: String(i).repeat(32), name: `job-${state.toLowerCase()}`, state, 'start-time': -1, 'end-time': -1, duration: -1 }));

async function listStates(argv: string[]): Promise<string[]> {
  const { fetchImpl } = fakeCluster({ 'GET /jobs/overview': { body: { jobs: JOBS } } });
  const io = capture(fetchImpl);
  const code = await runClientCommand('list', [...argv, ...URL_ARGS, '--json'], io);
  if (code !== EXIT.OK) throw new Error(`list ${argv.join(' ')} exited ${code}: ${io.err}`);
  return (JSON.parse(io.out).jobs as Array<{ state: string }>).map((j) => j.state);
}

test('list shows running and scheduled jobs by default; -r, -s, -r -s and -a filter as flink list does', async (t) => {
  t.deepEqual(await listStates([]), ['RUNNING', 'RESTARTING', 'CREATED', 'INITIALIZING', 'RECONCILING']);
  t.deepEqual(await listStates(['-r']), ['RUNNING', 'RESTARTING']);
  t.deepEqual(await listStates(['--scheduled']), ['CREATED', 'INITIALIZING', 'RECONCILING']);
  t.deepEqual(await listStates(['-r', '-s']), await listStates([]));
  t.deepEqual(await listStates(['-a']), JOBS.map((j) => j.state));
  t.deepEqual(await listStates(['--all', '-r']), JOBS.map((j) => j.state));
  t.false(listed(undefined, {}), 'a row without a state is shown only by -a');
});

test('list prints only the filtered jobs in its table', async (t) => {
  const { fetchImpl } = fakeCluster({ 'GET /jobs/overview': { body: { jobs: JOBS } } });
  const io = capture(fetchImpl);

  t.is(await runClientCommand('list', ['-s', ...URL_ARGS], io), EXIT.OK, io.err);
  const lines = io.out.trimEnd().split('\n');
  t.regex(lines[0], /^JOB ID\s+NAME\s+STATE\s+START\s+DURATION$/);
  t.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[2]), ['CREATED', 'INITIALIZING', 'RECONCILING']);
});

const PLAN = {
  jid: JOB_ID, name: 'etl', type: 'BATCH',
  nodes: [
    { id: 'aaaa', parallelism: 2, operator: '', operator_strategy: '', description: 'extract', optimizer_properties: {} },
    { id: 'bbbb', parallelism: 1, operator: '', operator_strategy: '', description: 'load',
      inputs: [{ num: 0, id: 'aaaa', ship_strategy: 'FORWARD', exchange: 'blocking' }], optimizer_properties: {} },
  ],
};

test('info prints the job plan from GET /jobs/:id/plan; --json prints the plan itself', async (t) => {
  const cluster = fakeCluster({ [`GET /jobs/${JOB_ID}/plan`]: { body: { plan: PLAN } } });

  const io = capture(cluster.fetchImpl);
  t.is(await runClientCommand('info', [JOB_ID, ...URL_ARGS], io), EXIT.OK, io.err);
  t.regex(io.out, /^Name:\s+etl$/m);
  t.regex(io.out, /^Type:\s+BATCH$/m);
  t.regex(io.out, /^VERTEX\s+ID\s+PARALLELISM\s+INPUTS$/m);
  t.regex(io.out, /^extract\s+aaaa\s+2\s+-$/m);
  t.regex(io.out, /^load\s+bbbb\s+1\s+extract$/m);

  const json = capture(cluster.fetchImpl);
  t.is(await runClientCommand('info', [JOB_ID, ...URL_ARGS, '--json'], json), EXIT.OK, json.err);
  t.deepEqual(JSON.parse(json.out), PLAN);
  t.deepEqual(cluster.seen, [`GET http://replica.test:8081/jobs/${JOB_ID}/plan`, `GET http://replica.test:8081/jobs/${JOB_ID}/plan`]);
});

test('info of an unknown job exits 4; a bad id is a usage error', async (t) => {
  const cluster = fakeCluster({});
  const missing = capture(cluster.fetchImpl);
  t.is(await runClientCommand('info', [JOB_ID, ...URL_ARGS], missing), EXIT.NOT_FOUND);
  const bad = capture(cluster.fetchImpl);
  t.is(await runClientCommand('info', ['nope', ...URL_ARGS], bad), EXIT.USAGE);
  t.is(cluster.seen.length, 1);
});

test('-m host:port is --url with http:// assumed; -m and --url together are a usage error', async (t) => {
  const cluster = fakeCluster({ 'GET /leader': { body: { replicaId: 'r1' } } });

  const io = capture(cluster.fetchImpl);
  t.is(await runClientCommand('leader', ['-m', 'jm.test:8081', '--json'], io), EXIT.OK, io.err);
  t.is(await runClientCommand('leader', ['--jobmanager', 'https://jm.test:8443', '--json'], capture(cluster.fetchImpl)), EXIT.OK);
  t.deepEqual(cluster.seen, ['GET http://jm.test:8081/leader', 'GET https://jm.test:8443/leader']);

  const both = capture(cluster.fetchImpl);
  t.is(await runClientCommand('leader', ['-m', 'jm.test:8081', '--url', 'http://jm.test:8081'], both), EXIT.USAGE);
  t.regex(both.err, /--jobmanager and --url/);
  t.is(await runClientCommand('leader', ['-m', 'ftp://jm.test:21'], capture(cluster.fetchImpl)), EXIT.USAGE);
  t.is(cluster.seen.length, 2);

  t.is(withHttpScheme('a:1, http://b:2,127.0.0.1:3'), 'http://a:1,http://b:2,http://127.0.0.1:3');
});

test('cancel is idempotent: a job already CANCELED exits 0, also when the server answers 409', async (t) => {
  // The cluster answers 202 for an already CANCELED job.
  const accepted = fakeCluster({ [`PATCH /jobs/${JOB_ID}?mode=cancel`]: { status: 202, body: {} } });
  for (let i = 0; i < 2; i++) {
    const io = capture(accepted.fetchImpl);
    t.is(await runClientCommand('cancel', [JOB_ID, ...URL_ARGS], io), EXIT.OK, io.err);
  }

  const refused = fakeCluster({
    [`PATCH /jobs/${JOB_ID}?mode=cancel`]: { status: 409, body: { errors: ['job already terminal'] } },
    [`GET /jobs/${JOB_ID}`]: { body: { jid: JOB_ID, state: 'CANCELED' } },
  });
  const io = capture(refused.fetchImpl);
  t.is(await runClientCommand('cancel', [JOB_ID, ...URL_ARGS], io), EXIT.OK, io.err);
  t.is(io.out, `job ${JOB_ID} is already CANCELED\n`);
  const json = capture(refused.fetchImpl);
  t.is(await runClientCommand('cancel', [JOB_ID, ...URL_ARGS, '--json'], json), EXIT.OK);
  t.deepEqual(JSON.parse(json.out), { jobid: JOB_ID, state: 'CANCELED' });
});

test('cancel of a FINISHED job is still rejected (exit 3)', async (t) => {
  const cluster = fakeCluster({
    [`PATCH /jobs/${JOB_ID}?mode=cancel`]: { status: 409, body: { errors: ['job already terminal'] } },
    [`GET /jobs/${JOB_ID}`]: { body: { jid: JOB_ID, state: 'FINISHED' } },
  });
  const io = capture(cluster.fetchImpl);
  t.is(await runClientCommand('cancel', [JOB_ID, ...URL_ARGS], io), EXIT.REJECTED);
  t.true(io.err.includes('job already terminal'), io.err);
});

async function graphFile(): Promise<string> {
  const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'cli-flink-')), 'graph.json');
  await fs.writeFile(file, JSON.stringify({ jobId: JOB_ID, name: 'demo', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 1 } }] }));
  return file;
}

function failingJob(extra: Routes): Routes {
  return {
    'POST /jobs': { status: 202, body: { jobid: JOB_ID, jobUrl: `/jobs/${JOB_ID}` } },
    [`GET /jobs/${JOB_ID}`]: (n) => ({ body: { jid: JOB_ID, state: n === 1 ? 'RUNNING' : 'FAILED' } }),
    ...extra,
  };
}

test('submit --wait prints the root cause from /exceptions when the job FAILED', async (t) => {
  const cluster = fakeCluster(failingJob({
    [`GET /jobs/${JOB_ID}/exceptions`]: { body: { 'root-exception': 'TaskFailure: exit code 3\n  at a[0]', timestamp: 1 } },
  }));
  const io = capture(cluster.fetchImpl);

  t.is(await runClientCommand('submit', [await graphFile(), '--wait', ...URL_ARGS], io), EXIT.JOB_FAILED);
  t.is(io.err, `job ${JOB_ID} ended FAILED\nroot cause:\n    TaskFailure: exit code 3\n      at a[0]\n`);
  t.false(cluster.seen.some((s) => s.includes('execution-result')));
});

test('submit --wait falls back to the execution result\'s failure-cause; --json keeps stdout one document', async (t) => {
  const cluster = fakeCluster(failingJob({
    [`GET /jobs/${JOB_ID}/exceptions`]: { body: { 'root-exception': null } },
    [`GET /jobs/${JOB_ID}/execution-result`]: {
      body: { status: { id: 'COMPLETED' }, 'job-execution-result': { id: JOB_ID, 'application-status': 'FAILED',
        'failure-cause': { class: 'JobFailure', 'stack-trace': 'restart strategy exhausted', message: 'restart strategy exhausted', timestamp: 1 } } },
    },
  }));
  const io = capture(cluster.fetchImpl);

  t.is(await runClientCommand('submit', [await graphFile(), '--wait', '--json', ...URL_ARGS], io), EXIT.JOB_FAILED);
  t.like(JSON.parse(io.out), { jid: JOB_ID, state: 'FAILED' });
  t.regex(io.err, /root cause:\n {4}restart strategy exhausted\n$/);
});

test('submit --wait without any recorded cause still exits 1 and says how the job ended', async (t) => {
  const cluster = fakeCluster(failingJob({}));
  const io = capture(cluster.fetchImpl);

  t.is(await runClientCommand('submit', [await graphFile(), '--wait', ...URL_ARGS], io), EXIT.JOB_FAILED);
  t.is(io.err, `job ${JOB_ID} ended FAILED\n`);
});

test('submit -d returns after the 202 (the default); -d with --wait is a usage error', async (t) => {
  const cluster = fakeCluster(failingJob({}));
  const io = capture(cluster.fetchImpl);
  t.is(await runClientCommand('submit', [await graphFile(), '-d', ...URL_ARGS], io), EXIT.OK, io.err);
  t.is(io.out, `${JOB_ID}\n`);
  t.deepEqual(cluster.seen, ['POST http://replica.test:8081/jobs']);

  const both = capture(cluster.fetchImpl);
  t.is(await runClientCommand('submit', [await graphFile(), '--detached', '--wait', ...URL_ARGS], both), EXIT.USAGE);
  t.is(cluster.seen.length, 1);
});

test('logs names vertices by their JobGraph id (vertexId) though the details carry Flink vertex ids; exceptions reads exceptionHistory', async (t) => {
  const cluster = fakeCluster({
    [`GET /jobs/${JOB_ID}`]: { body: { jid: JOB_ID, state: 'FINISHED', vertices: [
      { id: 'f'.repeat(32), vertexId: 'extract', subtasks: [{ subtask: 0, attempt: 0, status: 'FINISHED' }] },
    ] } },
    [`GET /jobs/${JOB_ID}/vertices/extract/subtasks/0/attempts/0/log`]: { body: 'extracted\n' },
    [`GET /jobs/${JOB_ID}/exceptions`]: { body: { 'root-exception': 'boom', exceptionHistory: { entries: [
      { exceptionName: 'TaskFailure', stacktrace: 'boom', timestamp: 1_700_000_000_000, taskName: 'extract', location: null },
    ], truncated: false } } },
  });

  const logs = capture(cluster.fetchImpl);
  t.is(await runClientCommand('logs', [JOB_ID, 'extract', ...URL_ARGS], logs), EXIT.OK, logs.err);
  t.is(logs.out, '==> extract[0] attempt 0 (FINISHED) <==\nextracted\n');
  const missing = capture(cluster.fetchImpl);
  t.is(await runClientCommand('logs', [JOB_ID, 'nope', ...URL_ARGS], missing), EXIT.NOT_FOUND);
  t.regex(missing.err, /its vertices: extract$/m);

  const exceptions = capture(cluster.fetchImpl);
  t.is(await runClientCommand('exceptions', [JOB_ID, ...URL_ARGS], exceptions), EXIT.OK, exceptions.err);
  t.regex(exceptions.out, /^2023-11-14T22:13:20Z {2}TaskFailure {2}extract\n {4}boom$/m);
});
