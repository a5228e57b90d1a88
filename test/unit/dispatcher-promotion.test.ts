/**
 * Recovery with a hot standby mirror, attacked while the recovered jobs are still pending (listed
 * RECONCILING, tracked 500 per event-loop turn after ready): a term lost mid-promotion and granted
 * again on the same replica, operator edits to stored graphs while leading, requests naming pending
 * jobs (details, cancel, resubmission, a new submission, pagination) in the promotion window, and the
 * mirror's own bookkeeping of graphs changed while it is stopped. See docs/ARCHITECTURE.md, "Recovery".
 */
import test from 'ava';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { JobMasterFactory } from '../../src/jobmaster/types';
import { canonicalJson, JobGraph, parseJobGraph } from '../../src/jobgraph';
import { graphDigest, JobGraphStore } from '../../src/store/jobgraph-store';
import { JobResultStore } from '../../src/store/jobresult-store';
import { StandbyMirror } from '../../src/store/standby-mirror';
import { FakeZkClient, FakeZkServer } from '../helpers/fake-zk';
import { FakeJobMaster } from '../helpers/fake-job-master';
import { RecordingLogger } from '../helpers/fake-rest-deps';
import { eventually } from '../helpers/ensemble';
import { ZK_CODES } from '../../src/zk/errors';

const LIMITS = { maxParallelism: 16 };
const jobId = (n: number): string => n.toString(16).padStart(32, '0');
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

function graphOf(n: number | string, name = `job-${n}`): JobGraph {
  return parseJobGraph({ jobId: typeof n === 'string' ? n : jobId(n), name, vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] }, LIMITS);
}

function envelope(n: number | string, name = `job-${n}`): string {
  const g = graphOf(n, name);
  return JSON.stringify({ formatVersion: 1, submittedAt: new Date(1_700_000_000_000 + (typeof n === 'number' ? n : 0)).toISOString(), digest: graphDigest(canonicalJson(g)), graph: g });
}

async function seed(server: FakeZkServer, jobs: number[]): Promise<void> {
  const client = new FakeZkClient(server);
  await client.mkdirp('/jobgraphs');
  await client.mkdirp('/jobresults');
  await client.mkdirp('/quarantine/jobgraphs');
  for (const n of jobs) await client.create(`/jobgraphs/${jobId(n)}`, envelope(n));
}

/** A JobMaster that runs as soon as it is started (no ZooKeeper, no tasks). */
class RunningJobMaster extends FakeJobMaster {
  starts = 0;
  async start(): Promise<void> { this.starts++; this.current = 'RUNNING'; }
}

/** A replica with a standby mirror, synced before it contends. Records every JobMaster built and every job expected, by epoch. */
async function mirroredReplica(client: FakeZkClient, graphs: number, factory: JobMasterFactory, onExpected: (epoch: number, id: string) => void,
  extra: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {}) {
  const logger = new RecordingLogger();
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' } });
  const dispatcher = new Dispatcher({ client, election, limits: LIMITS, jobstore: { maxCapacity: 10, expirationMs: 60000 }, jobMasterFactory: factory, logger,
    standbyMirror: true, expectRecoveredJob: (term, id) => { onExpected(term.epoch, id); return () => undefined; }, ...extra });
  await eventually('the standby mirror is synced', () => dispatcher.mirror!.status().state === 'synced' && dispatcher.mirror!.status().graphs === graphs, 20_000);
  return { dispatcher, election, logger };
}

/** Recovered jobs not tracked yet (the Dispatcher's LeaderState.pending less promoted): checks that a test acts inside the promotion window. */
function pendingNow(dispatcher: Dispatcher, id?: string): number {
  const state = (dispatcher as unknown as { state: { pending: ReadonlyMap<string, unknown> | null; promoted: ReadonlySet<string> } | null }).state;
  if (!state?.pending) return 0;
  if (id !== undefined) return state.pending.has(id) && !state.promoted.has(id) ? 1 : 0;
  return state.pending.size - state.promoted.size;
}

/**
 * Runs `act` on the turn after the first chunk of promotion: the election's 'ready' event comes just
 * before the Dispatcher starts promotePending, which tracks 500 jobs and leaves the rest to later turns.
 */
function inPromotionWindow<T>(election: LeaderElectionService, act: () => Promise<T> | T): Promise<T> {
  return new Promise((resolve, reject) => election.once('ready', () => setImmediate(() => { Promise.resolve().then(act).then(resolve, reject); })));
}

function countBy<T>(items: T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

test('a term lost in the middle of promotion, granted again on the same replica: every stored job recovered once, from the store as it is now', async (t) => {
  const server = new FakeZkServer();
  const ids = range(1200);
  await seed(server, ids);
  const writer = new FakeZkClient(server);
  const client = new FakeZkClient(server);
  const built: Array<{ epoch: number; id: string; master: RunningJobMaster }> = [];
  const expected: Array<{ epoch: number; id: string }> = [];
  const { dispatcher, election, logger } = await mirroredReplica(client, ids.length, (ctx) => {
    const master = new RunningJobMaster(ctx);
    built.push({ epoch: ctx.term.epoch, id: ctx.graph.jobId, master });
    return master;
  }, (epoch, id) => { expected.push({ epoch, id }); });
  // Between two chunks of promotion: an operator removes job 5's graph and replaces job 6's (the
  // mirror is stopped, its watches fire), then the session expires.
  const lost = inPromotionWindow(election, () => {
    const at = { epoch: dispatcher.epoch!, pending: pendingNow(dispatcher) };
    void writer.delete(`/jobgraphs/${jobId(5)}`);
    void writer.set(`/jobgraphs/${jobId(6)}`, envelope(6, 'job-6-replaced'));
    client.expire();
    return at;
  });
  election.start(dispatcher);
  const { epoch: firstEpoch, pending } = await lost;
  t.true(pending > 0 && pending < ids.length, `the first term lost leadership mid-promotion (${pending} of ${ids.length} still pending)`);
  await eventually('a second term is granted and ready', () => dispatcher.role === 'leader' && dispatcher.epoch !== firstEpoch, 20_000);
  const secondEpoch = dispatcher.epoch!;

  const now = ids.filter((n) => n !== 5).map(jobId).sort();
  await eventually('the second term tracked every job', () => pendingNow(dispatcher) === 0, 20_000);
  const listed = dispatcher.listJobs();
  t.deepEqual(listed.map((j) => j.id).sort(), now, 'every stored job listed once; the removed one gone');
  t.is(Object.values(dispatcher.jobCounts()).reduce((a, b) => a + b, 0), now.length);
  t.is(dispatcher.admissionStatus().pendingJobs, now.length);
  t.is((await dispatcher.jobDetails(jobId(6))).name, 'job-6-replaced', 'the replaced graph is the one recovered');

  const ofSecond = expected.filter((e) => e.epoch === secondEpoch);
  t.deepEqual(ofSecond.map((e) => e.id).sort(), now, 'each job expected once by the second term');
  await eventually('every JobMaster of the second term runs', () => built.filter((b) => b.epoch === secondEpoch && b.master.status === 'RUNNING').length === now.length, 20_000);
  const builds = built.filter((b) => b.epoch === secondEpoch);
  t.deepEqual([...countBy(builds, (b) => b.id).values()].filter((c) => c !== 1), [], 'each JobMaster built once');
  t.true(builds.every((b) => b.master.starts === 1), 'each JobMaster started once');

  const readies = logger.events.filter((e) => e.event === 'dispatcher.ready');
  t.like(readies.find((e) => e.fields.epoch === secondEpoch)?.fields, { jobs: now.length, resuming: now.length });
  await eventually('recovery.completed', () => logger.events.some((e) => e.event === 'recovery.completed'), 20_000);
  const completed = logger.events.filter((e) => e.event === 'recovery.completed');
  t.is(completed.length, 1, 'only the second term completes its recovery');
  t.like(completed[0].fields, { recovered: now.length, failed: 0, quarantined: 0, cleaned: 0 });
  await election.close();
  dispatcher.close();
});

test('requests in the promotion window: a cancel of a job whose JobMaster cannot be built, details, a resubmission, a new submission and paging', async (t) => {
  const server = new FakeZkServer();
  const ids = range(1200);
  await seed(server, ids);
  const client = new FakeZkClient(server);
  const built: Array<{ id: string; master: RunningJobMaster }> = [];
  const expected: string[] = [];
  const broken = jobId(1100);
  const { dispatcher, election, logger } = await mirroredReplica(client, ids.length, (ctx) => {
    if (ctx.graph.jobId === broken) throw new Error('cannot build this one');
    const master = new RunningJobMaster(ctx);
    built.push({ id: ctx.graph.jobId, master });
    return master;
  }, (_epoch, id) => { expected.push(id); });
  // Between the first chunk of promotion and the next: 700 jobs still pending.
  const window = inPromotionWindow(election, () => {
      const pendingAtStart = pendingNow(dispatcher);
      const cancel = dispatcher.cancel(broken).then(() => 'accepted', (err: Error) => err);
      const details = dispatcher.jobDetails(jobId(1101));
      const resubmitted = dispatcher.submit(graphOf(1102));
      const submitted = dispatcher.submit(graphOf(5000));
      // Page through every job, 97 at a time, letting promotion advance between pages.
      const pages = (async () => {
        const seen: string[] = [];
        let after;
        for (;;) {
          const page = dispatcher.pageOfJobs({ after, limit: 97 });
          seen.push(...page.items.map((j) => j.id));
          if (!page.next) return seen;
          after = page.next;
          await new Promise((r) => setImmediate(r));
        }
      })();
      return Promise.all([cancel, details, resubmitted, submitted, pages])
        .then(([c, d, r, s, p]) => ({ cancel: c, details: d, resubmitted: r, submitted: s, pendingAtStart, pages: p }));
  });
  election.start(dispatcher);
  const answers = await window;
  t.true(answers.pendingAtStart > 0, `requests came while ${answers.pendingAtStart} jobs were pending`);
  t.is(answers.cancel, 'accepted');
  t.is(answers.details.state, 'RECONCILING');
  t.deepEqual(answers.resubmitted, { jobId: jobId(1102), created: false }, 'a resubmission of a pending job is a duplicate');
  t.deepEqual(answers.submitted, { jobId: jobId(5000), created: true });
  t.is(answers.pages.length, new Set(answers.pages).size, 'no job repeated across pages');
  t.true(ids.every((n) => answers.pages.includes(jobId(n))), 'no recovered job skipped across pages');

  // Every recovered job expected once; the new one is not a recovered job.
  await eventually('every job tracked', () => pendingNow(dispatcher) === 0, 20_000);
  t.deepEqual([...countBy(expected, (id) => id).values()].filter((c) => c !== 1), [], 'each recovered job expected once');
  t.false(expected.includes(jobId(5000)));
  t.is(expected.length, ids.length);

  // The broken job ends FAILED (its cancel was accepted, but it cannot run); every other one runs, started once.
  await eventually('the broken job ended', async () => (await dispatcher.jobDetails(broken)).state === 'FAILED', 20_000);
  await eventually('every other JobMaster runs', () => built.length === ids.length && built.every((b) => b.master.status === 'RUNNING'), 20_000);
  t.deepEqual([...countBy(built, (b) => b.id).values()].filter((c) => c !== 1), [], 'each JobMaster built once (the watch pass adopts no pending job again)');
  t.true(built.every((b) => b.master.starts === 1), 'each JobMaster started once');
  t.false(server.nodes.has(`/jobgraphs/${broken}`), 'the failed job is cleaned up');
  t.is(dispatcher.admissionStatus().pendingJobs, ids.length, '1,199 recovered and running + the new one');
  t.deepEqual(dispatcher.jobCounts(), { RUNNING: ids.length, FAILED: 1 });
  await eventually('recovery.completed', () => logger.events.some((e) => e.event === 'recovery.completed'), 20_000);
  t.like(logger.events.find((e) => e.event === 'recovery.completed')!.fields, { recovered: ids.length - 1, failed: 1, quarantined: 0, cleaned: 0 });
  await election.close();
  dispatcher.close();
});

function mirrorOf(client: FakeZkClient): StandbyMirror<JobGraph> {
  const readOnly = (): void => { throw new Error('read only'); };
  const parse = (raw: unknown): JobGraph => parseJobGraph(raw, LIMITS);
  return new StandbyMirror(client, new JobGraphStore(client, readOnly, parse), new JobResultStore(client, readOnly), undefined, undefined,
    (id) => /^[0-9a-f]{32}$/.test(id));
}

for (const resume of ['start', 'catchUp'] as const) {
  test(`graphs deleted while the mirror is stopped and not re-created are gone after ${resume}(); suspects follow deletions and replacements`, async (t) => {
    const server = new FakeZkServer();
    await seed(server, [1, 2, 3]);
    const writer = new FakeZkClient(server);
    await writer.create(`/jobgraphs/${'e'.repeat(32)}`, 'not json');
    await writer.create('/jobgraphs/not-a-job-id', envelope(9));
    await writer.create(`/jobgraphs/${'d'.repeat(32)}`, 'not json either');
    const mirror = mirrorOf(new FakeZkClient(server));
    mirror.start();
    await eventually('synced', () => mirror.status().state === 'synced' && mirror.status().graphs === 6);
    t.deepEqual([...mirror.snapshot().suspects].sort(), ['d'.repeat(32), 'e'.repeat(32), 'not-a-job-id']);

    const held = await mirror.catchUp(); // what a grant takes over
    mirror.stop();
    await writer.delete(`/jobgraphs/${jobId(2)}`);
    await writer.delete(`/jobgraphs/${'e'.repeat(32)}`);
    await writer.delete('/jobgraphs/not-a-job-id');
    await writer.set(`/jobgraphs/${'d'.repeat(32)}`, envelope('d'.repeat(32))); // repaired
    await writer.set(`/jobgraphs/${jobId(3)}`, 'garbled');
    t.true(held.graphs.has(jobId(2)) && held.suspects.has('e'.repeat(32)), 'held unchanged while stopped');

    let graphs: ReadonlyMap<string, unknown>;
    let suspects: ReadonlySet<string>;
    if (resume === 'start') {
      mirror.start();
      await eventually('synced again', () => mirror.status().state === 'synced');
      ({ graphs, suspects } = mirror.snapshot());
    } else {
      ({ graphs, suspects } = await mirror.catchUp());
    }
    t.deepEqual([...graphs.keys()].sort(), [jobId(1), jobId(3), 'd'.repeat(32)]);
    t.deepEqual([...suspects].sort(), [jobId(3)], 'a deleted suspect is dropped; a repaired one is no suspect; a garbled graph is one');
    // Re-created later with new content: read again, not served from before.
    if (resume === 'catchUp') mirror.start();
    await writer.create(`/jobgraphs/${jobId(2)}`, envelope(2, 'job-2-again'));
    await eventually('the re-created graph is read', () => {
      const g = mirror.snapshot().graphs.get(jobId(2));
      return g?.ok === true && g.envelope.graph.name === 'job-2-again';
    });
    // A graph deleted while stopped and re-created with the same name before the mirror resumes.
    mirror.stop();
    await writer.delete(`/jobgraphs/${jobId(1)}`);
    await writer.create(`/jobgraphs/${jobId(1)}`, envelope(1, 'job-1-again'));
    const caught = await mirror.catchUp();
    const g1 = caught.graphs.get(jobId(1));
    t.true(g1?.ok === true && g1.envelope.graph.name === 'job-1-again');
    mirror.stop();
  });
}

test('a recovered job whose envelope has no valid submission time keeps its place in the job list while it goes from pending to tracked', async (t) => {
  const server = new FakeZkServer();
  const ids = range(1200);
  await seed(server, ids);
  const odd = jobId(600);
  const g = graphOf(600);
  server.nodes.get(`/jobgraphs/${odd}`)!.data = Buffer.from(JSON.stringify({ formatVersion: 1, submittedAt: 'not a time', digest: graphDigest(canonicalJson(g)), graph: g }));
  const client = new FakeZkClient(server);
  const { dispatcher, election } = await mirroredReplica(client, ids.length, (ctx) => new RunningJobMaster(ctx), () => undefined);
  const window = inPromotionWindow(election, async () => {
    // Job 600 is still pending here: the first page is read now, the rest once all are tracked.
    const oddPending = pendingNow(dispatcher, odd) === 1;
    const first = dispatcher.pageOfJobs({ limit: 100 });
    await eventually('all tracked', () => pendingNow(dispatcher) === 0, 20_000);
    return { firstPage: first.items.map((j) => j.id), rest: dispatcher.pageOfJobs({ after: first.next!, limit: Infinity }).items.map((j) => j.id), oddPending };
  });
  election.start(dispatcher);
  const { firstPage, rest, oddPending } = await window;
  t.true(oddPending, 'job 600 was pending when the first page was read');
  const all = [...firstPage, ...rest];
  t.deepEqual(all.filter((id) => id === odd), [odd], 'job 600 listed exactly once across the pages');
  t.is(all.length, ids.length);
  await election.close();
  dispatcher.close();
});

/** A JobMaster that runs once started and ends CANCELED when canceled. */
class CancelableJobMaster extends RunningJobMaster {
  override cancel(): void {
    this.current = 'CANCELED';
    this.ctx.onTerminal({ status: 'CANCELED', details: { ...this.details(), 'end-time': 1 } });
  }
}

test('after a term that changed the store (a submission, an ended job, an operator\'s deletion and replacement), the mirror restarted at revoke is synced with the store', async (t) => {
  const server = new FakeZkServer();
  const ids = range(50);
  await seed(server, ids);
  const writer = new FakeZkClient(server);
  const client = new FakeZkClient(server);
  const { dispatcher, election } = await mirroredReplica(client, ids.length, (ctx) => new CancelableJobMaster(ctx), () => undefined);
  election.start(dispatcher);
  await eventually('leader', () => dispatcher.role === 'leader', 10_000);
  t.is(dispatcher.mirror!.status().state, 'off', 'stopped while leading');
  t.deepEqual(await dispatcher.submit(graphOf(100)), { jobId: jobId(100), created: true });
  await dispatcher.cancel(jobId(7));
  await eventually('job 7 ended and was cleaned up', () => !server.nodes.has(`/jobgraphs/${jobId(7)}`)
    && JSON.parse(server.nodes.get(`/jobresults/${jobId(7)}`)?.data.toString() ?? '{}').state === 'clean', 10_000);
  await writer.delete(`/jobgraphs/${jobId(5)}`);
  await writer.set(`/jobgraphs/${jobId(6)}`, envelope(6, 'job-6-replaced'));
  await election.close(); // revoked: standby again, the mirror resumes

  await eventually('the mirror is synced again', () => dispatcher.mirror!.status().state === 'synced', 10_000);
  const { graphs, results, suspects } = dispatcher.mirror!.snapshot();
  const stored = server.children('/jobgraphs').sort();
  t.deepEqual([...graphs.keys()].sort(), stored);
  t.false(graphs.has(jobId(5)) || graphs.has(jobId(7)), 'the deleted and the ended job are gone');
  t.true(graphs.has(jobId(100)), 'the submitted job is read');
  const g6 = graphs.get(jobId(6));
  t.true(g6?.ok === true && g6.envelope.graph.name === 'job-6-replaced', 'the replaced graph is read again');
  t.is(results.size, 0, 'no stored graph has a result');
  t.is(suspects.size, 0);
  dispatcher.close();
});

test('a metrics scrape right after a failover (jobsOverview) tracks no pending job and builds no JobMaster; it counts every job', async (t) => {
  const server = new FakeZkServer();
  const ids = range(1200);
  await seed(server, ids);
  const client = new FakeZkClient(server);
  let builds = 0;
  const { dispatcher, election } = await mirroredReplica(client, ids.length, (ctx) => { builds++; return new RunningJobMaster(ctx); }, () => undefined);
  // Between two chunks of promotion, as a Prometheus scrape may come (metrics.ts: ha_dispatcher_job_restarts).
  const scrape = inPromotionWindow(election, () => {
    const before = { builds, pending: pendingNow(dispatcher) };
    const overview = dispatcher.jobsOverview();
    return { before, after: { builds, pending: pendingNow(dispatcher) }, overview };
  });
  election.start(dispatcher);
  const { before, after, overview } = await scrape;
  t.true(before.pending > 0, `the scrape came while ${before.pending} jobs were pending`);
  t.is(after.builds, before.builds, 'no JobMaster built by the scrape');
  t.is(after.pending, before.pending, 'no pending job tracked by the scrape');
  t.is(overview.length, ids.length);
  t.true(overview.every((d) => d.restarts === 0 && (d.state === 'RECONCILING' || d.state === 'RUNNING')));
  t.deepEqual(overview.map((d) => d.jid).sort(), ids.map(jobId).sort());
  await election.close();
  dispatcher.close();
});

test('a grant attempt that meets ZooKeeper trouble while settling a suspect is retried from the mirror: every job once, each suspect quarantined once, the leftover cleaned', async (t) => {
  const server = new FakeZkServer();
  const ids = range(300);
  await seed(server, ids);
  const writer = new FakeZkClient(server);
  await writer.create(`/jobgraphs/${'e'.repeat(32)}`, 'not json');
  await writer.create('/jobgraphs/not-a-job-id', envelope(5000));
  const g7 = graphOf(7);
  await writer.create(`/jobresults/${jobId(7)}`, JSON.stringify({ state: 'dirty', jobId: jobId(7), name: 'job-7', jobStatus: 'FINISHED', startTime: 1, endTime: 2, graphDigest: graphDigest(canonicalJson(g7)) }));
  const client = new FakeZkClient(server);
  const expected: Array<{ epoch: number; id: string }> = [];
  const { dispatcher, election, logger } = await mirroredReplica(client, ids.length + 2, (ctx) => new RunningJobMaster(ctx), (epoch, id) => { expected.push({ epoch, id }); });
  client.failNext('delete', '/jobgraphs/not-a-job-id', ZK_CODES.CONNECTIONLOSS);
  election.start(dispatcher);
  await eventually('leader', () => dispatcher.role === 'leader', 20_000);
  t.true(logger.events.some((e) => e.event === 'dispatcher.recovery.failed'), 'the first attempt failed');
  const running = ids.filter((n) => n !== 7).map(jobId).sort();
  const listed = dispatcher.listJobs();
  t.deepEqual(listed.map((j) => j.id).sort(), [...running, jobId(7)].sort());
  t.like(listed.find((j) => j.id === jobId(7)), { status: 'FINISHED' });
  t.deepEqual(dispatcher.quarantined().map((q) => q.jobId).sort(), ['e'.repeat(32), 'not-a-job-id']);
  t.deepEqual(server.children('/jobgraphs').sort(), running, 'the suspects and the leftover are gone from /jobgraphs');
  await eventually('every job tracked', () => expected.length >= running.length, 20_000);
  t.deepEqual(expected.map((e) => e.id).sort(), running, 'each job expected once');
  await eventually('recovery.completed', () => logger.events.some((e) => e.event === 'recovery.completed'), 20_000);
  t.like(logger.events.find((e) => e.event === 'recovery.completed')!.fields, { recovered: running.length, failed: 0, quarantined: 2, cleaned: 1 });
  await election.close();
  dispatcher.close();
});

test('admission in the promotion window counts every recovered job: with room for one more job, of two submissions one is accepted, one refused', async (t) => {
  const server = new FakeZkServer();
  const ids = range(1200);
  await seed(server, ids);
  const client = new FakeZkClient(server);
  const { dispatcher, election } = await mirroredReplica(client, ids.length, (ctx) => new RunningJobMaster(ctx), () => undefined,
    { admission: { maxPendingJobs: ids.length + 1, maxStoredGraphBytes: Infinity, submissionRate: Infinity, submissionBurst: Infinity } });
  const window = inPromotionWindow(election, async () => {
    const pendingAtStart = pendingNow(dispatcher);
    const outcome = (p: Promise<unknown>): Promise<string> => p.then(() => 'accepted', (err: { status?: number }) => String(err.status));
    return { pendingAtStart, outcomes: await Promise.all([outcome(dispatcher.submit(graphOf(5001))), outcome(dispatcher.submit(graphOf(5002)))]) };
  });
  election.start(dispatcher);
  const { pendingAtStart, outcomes } = await window;
  t.true(pendingAtStart > 0, `submitted while ${pendingAtStart} jobs were pending`);
  t.deepEqual(outcomes.sort(), ['429', 'accepted']);
  t.is(dispatcher.admissionStatus().pendingJobs, ids.length + 1);
  await election.close();
  dispatcher.close();
});

test('every pending job is expected (its TaskManagers\' reports kept) by the moment the term is ready, when the ResourceManager starts hearing TaskManagers; each once', async (t) => {
  const server = new FakeZkServer();
  const ids = range(1200);
  await seed(server, ids);
  const client = new FakeZkClient(server);
  const expected: string[] = [];
  let atReady: string[] | null = null;
  const { dispatcher, election } = await mirroredReplica(client, ids.length, (ctx) => new RunningJobMaster(ctx), (_epoch, id) => { expected.push(id); });
  // resource-manager-service.ts: the term's ResourceManager answers TaskManagers once `isReadyLeader`;
  // a report of a job neither registered nor expected is answered 'cancel' (a running task) or acknowledged unnoted.
  election.on('ready', () => { atReady = [...expected]; });
  election.start(dispatcher);
  await eventually('ready', () => atReady !== null, 20_000);
  t.deepEqual([...atReady!].sort(), ids.map(jobId).sort(), 'every recovered job expected when TaskManagers are heard');
  await eventually('every job tracked', () => dispatcher.role === 'leader' && dispatcher.listJobs().every((j) => j.status === 'RUNNING'), 20_000);
  t.deepEqual([...expected].sort(), ids.map(jobId).sort(), 'each expected once');
  await election.close();
  dispatcher.close();
});
