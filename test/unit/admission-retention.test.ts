/**
 * Admission control, result retention and job listing order, on the real Dispatcher against the
 * in-memory ZooKeeper fake (test/helpers/fake-zk.ts).
 */
import test from 'ava';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { AdmissionController, AdmissionRejectedError } from '../../src/dispatcher/admission';
import { expiredResults, describeRetention } from '../../src/dispatcher/result-retention';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { PassiveJobMaster } from '../../src/jobmaster/passive-job-master';
import { JobMaster } from '../../src/jobmaster/types';
import { JobResultEntry } from '../../src/store/jobresult-store';
import { canonicalJson, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { NotFoundError } from '../../src/http/errors';
import { ZK_CODES } from '../../src/zk/errors';
import { createMetrics } from '../../src/metrics/metrics';
import { FakeZkClient, FakeZkServer } from '../helpers/fake-zk';
import { FakeClock } from '../helpers/fake-clock';
import { validateConfig } from '../../src/config/options';
import { eventually } from '../helpers/ensemble';

const LIMITS = { maxParallelism: 16 };
const UNLIMITED = { maxPendingJobs: 1e9, maxStoredGraphBytes: 1e12, submissionRate: 1e9, submissionBurst: 1e9 };

function jobId(n: number): string { return n.toString(16).padStart(32, '0'); }
function graph(n: number): Record<string, unknown> {
  return { jobId: jobId(n), name: `job-${n}`, vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] };
}
function envelope(n: number): string {
  const g = parseJobGraph(graph(n), LIMITS);
  return JSON.stringify({ formatVersion: 1, submittedAt: new Date(1_000 + n).toISOString(), digest: graphDigest(canonicalJson(g)), graph: g });
}
function result(n: number, endTime: number, state: 'clean' | 'dirty' = 'clean'): JobResultEntry {
  const g = parseJobGraph(graph(n), LIMITS);
  return { state, jobId: jobId(n), name: `job-${n}`, jobStatus: 'FINISHED', startTime: endTime - 10, endTime, graphDigest: graphDigest(canonicalJson(g)), submittedAt: endTime - 20 };
}

function startReplica(client: FakeZkClient, options: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {}): { dispatcher: Dispatcher; masters: JobMaster[] } {
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' } });
  const masters: JobMaster[] = [];
  const dispatcher = new Dispatcher({
    client, election, limits: LIMITS, jobstore: { maxCapacity: 10, expirationMs: 60000 },
    jobMasterFactory: (ctx) => { const m = new PassiveJobMaster(ctx); masters.push(m); return m; },
    ...options,
  });
  election.start(dispatcher);
  return { dispatcher, masters };
}

test('the token bucket admits a burst, then the rate; capacity limits refuse first and spend no token', async (t) => {
  const clock = new FakeClock();
  const admission = new AdmissionController({ maxPendingJobs: 10, maxStoredGraphBytes: 1000, submissionRate: 2, submissionBurst: 3 }, clock);
  const idle = { pendingJobs: 0, storedGraphBytes: 0 };
  for (let i = 0; i < 3; i++) admission.admit(idle, 10);
  const rate = t.throws(() => admission.admit(idle, 10)) as AdmissionRejectedError;
  t.is(rate.status, 429);
  t.is(rate.limit, 'dispatcher.submission-rate');
  t.is(rate.headers['Retry-After'], '1');
  await clock.advance(500);
  admission.admit(idle, 10); // 0.5 s × 2/s = one token
  const pending = t.throws(() => admission.admit({ pendingJobs: 10, storedGraphBytes: 0 }, 10)) as AdmissionRejectedError;
  t.is(pending.limit, 'dispatcher.max-pending-jobs');
  t.regex(pending.message, /dispatcher\.max-pending-jobs = 10/);
  t.truthy(pending.headers['Retry-After']);
  const bytes = t.throws(() => admission.admit({ pendingJobs: 0, storedGraphBytes: 995 }, 10)) as AdmissionRejectedError;
  t.is(bytes.limit, 'dispatcher.max-stored-jobgraph-bytes');
  await clock.advance(500);
  admission.admit(idle, 10); // the refused ones took no token: one was refilled and is there
  t.throws(() => admission.admit(idle, 10), { instanceOf: AdmissionRejectedError });
});

test('expiredResults keeps the newest max-count and drops what is older than max-age; kept ids always stay', (t) => {
  const entries = [5, 1, 4, 2, 3].map((n) => result(n, n * 1000));
  t.deepEqual(expiredResults(entries, { maxCount: 3 }, 10_000), [jobId(1), jobId(2)]);
  t.deepEqual(expiredResults(entries, { maxCount: 10, maxAgeMs: 6500 }, 10_000), [jobId(1), jobId(2), jobId(3)]);
  t.deepEqual(expiredResults(entries, { maxCount: 3 }, 10_000, new Set([jobId(1)])), [jobId(2), jobId(3)]);
  t.regex(describeRetention({ maxCount: 1000, maxAgeMs: 7 * 86_400_000 }), /last 1000 jobs.*7 d/);
});

test('over max-pending-jobs a new job gets 429 while a resubmission of a stored one stays idempotent; the metrics count it', async (t) => {
  const metrics = createMetrics();
  const client = new FakeZkClient();
  const { dispatcher } = startReplica(client, { metrics, admission: { ...UNLIMITED, maxPendingJobs: 2 } });
  await eventually('leader', () => dispatcher.role === 'leader');
  await dispatcher.submit(graph(1));
  await dispatcher.submit(graph(2));
  const err = await t.throwsAsync(dispatcher.submit(graph(3))) as AdmissionRejectedError;
  t.is(err.status, 429);
  t.deepEqual(err.extra, { limit: 'dispatcher.max-pending-jobs' });
  t.deepEqual(await dispatcher.submit(graph(1)), { jobId: jobId(1), created: false });
  t.is(await client.exists(`/jobgraphs/${jobId(3)}`), null);
  t.like(dispatcher.admissionStatus(), { pendingJobs: 2 });
  t.true(dispatcher.admissionStatus().storedGraphBytes > 0);
  await dispatcher.cancel(jobId(1));
  await eventually('a slot freed', () => dispatcher.admissionStatus().pendingJobs === 1);
  t.deepEqual(await dispatcher.submit(graph(3)), { jobId: jobId(3), created: true });
  metrics.bindDispatcher(dispatcher);
  const text = await metrics.registry.metrics();
  t.regex(text, /ha_dispatcher_admission_rejections_total\{limit="dispatcher.max-pending-jobs"\} 1/);
  t.regex(text, /ha_dispatcher_pending_jobs 2/);
  t.regex(text, /ha_dispatcher_admission_limit\{limit="dispatcher.max-pending-jobs"\} 2/);
});

test('recovery reads the results of stored graphs only; the history is loaded and trimmed after ready; forgotten jobs answer 404 naming the retention', async (t) => {
  const server = new FakeZkServer();
  const seed = new FakeZkClient(server);
  await seed.mkdirp('/jobresults');
  await seed.mkdirp('/jobgraphs');
  for (let n = 1; n <= 30; n++) await seed.create(`/jobresults/${jobId(n)}`, JSON.stringify(result(n, n * 1000)));
  // Job 40 ended but its cleanup did not finish: dirty result, graph still there. Job 41 is unfinished.
  await seed.create(`/jobresults/${jobId(40)}`, JSON.stringify(result(40, 40_000, 'dirty')));
  await seed.create(`/jobgraphs/${jobId(40)}`, envelope(40));
  await seed.create(`/jobgraphs/${jobId(41)}`, envelope(41));
  const client = new FakeZkClient(server);
  const { dispatcher, masters } = startReplica(client, { retention: { maxCount: 10 } });
  await eventually('leader', () => dispatcher.role === 'leader');
  // Readiness is published in /leader/info: everything before that write is recovery.
  const published = client.calls.findIndex((c) => c.path === '/leader/info' && c.op !== 'exists' && c.op !== 'get');
  t.true(published > 0);
  const recovery = client.calls.slice(0, published).filter((c) => c.path.startsWith('/jobresults'));
  t.deepEqual([...new Set(recovery.filter((c) => c.op === 'get').map((c) => c.path))].sort(), [`/jobresults/${jobId(40)}`, `/jobresults/${jobId(41)}`],
    'recovery read the results of the stored graphs only');
  t.false(recovery.some((c) => c.op === 'getChildren'), 'recovery did not list the history');
  t.deepEqual(masters.map((m) => m.jobId), [jobId(41)], 'the dirty job is never run again');
  t.is(await client.exists(`/jobgraphs/${jobId(40)}`), null, 'its cleanup was finished');
  await eventually('history trimmed to 10', async () => (await client.getChildren('/jobresults')).length === 10);
  t.true(dispatcher.resultRetentionStatus().historyLoaded);
  // Newest 10 by end time: 22..30 and 40.
  t.deepEqual((await client.getChildren('/jobresults')).sort(), [...Array.from({ length: 9 }, (_, i) => jobId(22 + i)), jobId(40)].sort());
  t.is((await dispatcher.jobDetails(jobId(30))).state, 'FINISHED');
  const gone = await t.throwsAsync(dispatcher.jobDetails(jobId(3)));
  t.true(gone instanceof NotFoundError);
  t.regex(gone!.message, /kept for the last 10 jobs \(job-result-store\.retention\.max-count\)/);
});

test('before the history is loaded a finished job is read on demand: queries answer it and a resubmission does not rerun it', async (t) => {
  const server = new FakeZkServer();
  const seed = new FakeZkClient(server);
  await seed.mkdirp('/jobresults');
  await seed.create(`/jobresults/${jobId(7)}`, JSON.stringify(result(7, 7000)));
  const client = new FakeZkClient(server);
  // Hold the history load back: the first listing of /jobresults fails, and the retry waits for the (fake) clock.
  client.failNext('getChildren', '/jobresults', ZK_CODES.CONNECTIONLOSS);
  const clock = new FakeClock();
  const { dispatcher, masters } = startReplica(client, { clock });
  await eventually('leader', () => dispatcher.role === 'leader');
  t.false(dispatcher.resultRetentionStatus().historyLoaded);
  t.deepEqual((await dispatcher.executionResult(jobId(7))), { status: { id: 'COMPLETED' }, 'job-execution-result': { id: jobId(7), 'application-status': 'FINISHED', 'net-runtime': 10 } });
  t.deepEqual(await dispatcher.submit(graph(7)), { jobId: jobId(7), created: false });
  t.is(masters.length, 0);
  t.is(await client.exists(`/jobgraphs/${jobId(7)}`), null);
  await clock.advance(60_000);
  await eventually('the history load was retried', () => dispatcher.resultRetentionStatus().historyLoaded);
  t.is((await dispatcher.jobDetails(jobId(7))).state, 'FINISHED');
});

test('pages list every job once in submission order while jobs are added between pages', async (t) => {
  const clock = new FakeClock();
  const client = new FakeZkClient();
  const { dispatcher } = startReplica(client, { clock });
  await eventually('leader', () => dispatcher.role === 'leader');
  for (let n = 1; n <= 25; n++) { await clock.advance(1); await dispatcher.submit(graph(n)); }
  const seen: string[] = [];
  let page = dispatcher.pageOfJobs({ limit: 10 });
  for (let round = 0; ; round++) {
    seen.push(...page.items.map((j) => j.id));
    if (!page.next) break;
    await clock.advance(1);
    await dispatcher.submit(graph(100 + round)); // added while paging: lands after the cursor
    page = dispatcher.pageOfJobs({ limit: 10, after: page.next });
  }
  const expected = [...Array.from({ length: 25 }, (_, i) => jobId(i + 1)), jobId(100), jobId(101)];
  t.deepEqual(seen, expected);
  t.deepEqual(dispatcher.listJobs().map((j) => j.id), expected);
});

test('admission and retention settings: defaults, parsing, and errors naming the key', (t) => {
  const d = validateConfig({});
  t.like(d, { 'dispatcher.max-pending-jobs': 5000, 'dispatcher.submission-rate': 200, 'dispatcher.submission-burst': 1000, 'job-result-store.retention.max-count': 1000 });
  t.is(d['job-result-store.retention.max-age'], undefined);
  const c = validateConfig({ 'job-result-store.retention.max-age': '7 d', 'dispatcher.submission-rate': '0.5', 'dispatcher.max-stored-jobgraph-bytes': '1000' });
  t.is(c['job-result-store.retention.max-age'], 7 * 86_400_000);
  t.is(c['dispatcher.submission-rate'], 0.5);
  t.is(c['dispatcher.max-stored-jobgraph-bytes'], 1000);
  t.throws(() => validateConfig({ 'dispatcher.submission-rate': 0 }), { message: /dispatcher\.submission-rate/ });
  t.throws(() => validateConfig({ 'dispatcher.max-pending-jobs': 0 }), { message: /dispatcher\.max-pending-jobs/ });
  t.throws(() => validateConfig({ 'job-result-store.retention.max-age': 'soon' }), { message: /job-result-store\.retention\.max-age/ });
});
