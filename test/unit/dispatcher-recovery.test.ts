/**
 * Recovery in the background: a new leader publishes itself once it can list the jobs; recovered jobs
 * show RECONCILING while their JobMasters start a few at a time, one job's failure never blocks or
 * fails the others, recovery logs one `recovery.completed` line, and giving up the term does no
 * per-job ZooKeeper I/O.
 */
import test from 'ava';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { JobMasterFactory } from '../../src/jobmaster/types';
import { SchedulingJobMaster } from '../../src/jobmaster/job-master';
import { ZkProgressStore } from '../../src/store/progress-store';
import type { TaskExecutionService } from '../../src/resources/resource-manager';
import { canonicalJson, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { FakeZkClient, FakeZkServer } from '../helpers/fake-zk';
import { FakeJobMaster } from '../helpers/fake-job-master';
import { RecordingLogger } from '../helpers/fake-rest-deps';
import { eventually } from '../helpers/ensemble';

const LIMITS = { maxParallelism: 16 };
const jobId = (n: number): string => n.toString(16).padStart(32, '0');

function envelope(n: number): string {
  const g = parseJobGraph({ jobId: jobId(n), name: `job-${n}`, vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] }, LIMITS);
  return JSON.stringify({ formatVersion: 1, submittedAt: new Date(1_700_000_000_000 + n).toISOString(), digest: graphDigest(canonicalJson(g)), graph: g });
}

async function seed(server: FakeZkServer, jobs: number[]): Promise<void> {
  const client = new FakeZkClient(server);
  await client.mkdirp('/jobgraphs');
  for (const n of jobs) await client.create(`/jobgraphs/${jobId(n)}`, envelope(n));
}

/** A JobMaster whose start resolves (or rejects) only when the test says so. */
class HeldJobMaster extends FakeJobMaster {
  started = false;
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  private readonly running = new Promise<void>((resolve, reject) => { this.settle = { resolve, reject }; });
  start(): Promise<void> { this.started = true; return this.running; }
  release(): void { this.current = 'RUNNING'; this.settle.resolve(); }
  break(message: string): void { this.settle.reject(new Error(message)); }
}

function startReplica(client: FakeZkClient, jobMasterFactory: JobMasterFactory, logger = new RecordingLogger(),
  extra: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {}, contend = true) {
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' } });
  const dispatcher = new Dispatcher({ client, election, limits: LIMITS, jobstore: { maxCapacity: 10, expirationMs: 60000 }, jobMasterFactory, logger, ...extra });
  if (contend) election.start(dispatcher);
  return { dispatcher, election, logger };
}

test('the leader is ready before recovered JobMasters start; they show RECONCILING and start a bounded number at a time', async (t) => {
  const server = new FakeZkServer();
  const ids = Array.from({ length: 40 }, (_, i) => i + 1);
  await seed(server, ids);
  const masters = new Map<string, HeldJobMaster>();
  const { dispatcher, logger } = startReplica(new FakeZkClient(server), (ctx) => {
    const m = new HeldJobMaster(ctx);
    masters.set(m.jobId, m);
    return m;
  });
  await eventually('the replica serves as leader', () => dispatcher.role === 'leader', 10000);
  t.deepEqual(dispatcher.listJobs().map((j) => j.status), ids.map(() => 'RECONCILING'));
  t.true(masters.size <= 16, `JobMasters are built on their turn in the recovery pool, not before publishing (${masters.size} built)`);
  t.is((await dispatcher.jobDetails(jobId(1))).state, 'RECONCILING');
  t.true((await dispatcher.jobDetails(jobId(1))).timestamps.INITIALIZING !== undefined, 'its timestamps stay its own');
  await eventually('the pool is full', () => [...masters.values()].filter((m) => m.started).length === 16);
  await new Promise((resolve) => setImmediate(resolve));
  t.is([...masters.values()].filter((m) => m.started).length, 16, 'no more than the pool size start at once');
  t.falsy(logger.events.find((e) => e.event === 'recovery.completed'));

  const allRunning = (): boolean => masters.size === ids.length && [...masters.values()].every((m) => m.status === 'RUNNING');
  for (let round = 0; round < 10 && !allRunning(); round++) {
    for (const m of masters.values()) if (m.started && m.status === 'INITIALIZING') m.release();
    await eventually('the next jobs start', () => allRunning() || [...masters.values()].some((m) => m.started && m.status === 'INITIALIZING'));
  }
  t.deepEqual(dispatcher.listJobs().map((j) => j.status), ids.map(() => 'RUNNING'));
  await eventually('recovery.completed is logged', () => logger.events.some((e) => e.event === 'recovery.completed'));
  const completed = logger.events.filter((e) => e.event === 'recovery.completed');
  t.is(completed.length, 1);
  t.like(completed[0], { level: 'info', fields: { recovered: 40, quarantined: 0, failed: 0, cleaned: 0 } });
  for (const k of ['publishMs', 'resumeMs', 'totalMs']) t.is(typeof completed[0].fields[k], 'number', k);
  t.deepEqual(logger.events.filter((e) => e.event === 'job.recovered').map((e) => e.level), ids.map(() => 'debug'), 'per-job lines are debug');
});

test('one job whose JobMaster fails to start or cannot be built ends FAILED alone; the others run and the leader stays', async (t) => {
  const server = new FakeZkServer();
  await seed(server, [1, 2, 3]);
  await new FakeZkClient(server).create(`/jobgraphs/${'e'.repeat(32)}`, 'not json');
  const masters = new Map<string, HeldJobMaster>();
  const { dispatcher, logger } = startReplica(new FakeZkClient(server), (ctx) => {
    if (ctx.graph.jobId === jobId(3)) throw new Error('cannot build this one');
    const m = new HeldJobMaster(ctx);
    masters.set(m.jobId, m);
    return m;
  });
  await eventually('leader', () => dispatcher.role === 'leader', 10000);
  await eventually('both buildable jobs start', () => masters.size === 2 && [...masters.values()].every((m) => m.started));
  masters.get(jobId(1))!.break('progress cannot be restored');
  masters.get(jobId(2))!.release();
  await eventually('recovery.completed', () => logger.events.some((e) => e.event === 'recovery.completed'));
  t.like(logger.events.find((e) => e.event === 'recovery.completed'), { fields: { recovered: 1, quarantined: 1, failed: 2 } });
  t.is(dispatcher.role, 'leader');
  t.is((await dispatcher.jobDetails(jobId(2))).state, 'RUNNING');
  for (const n of [1, 3]) {
    const failed = await dispatcher.jobDetails(jobId(n));
    t.is(failed.state, 'FAILED', `job ${n}`);
    t.false(server.nodes.has(`/jobgraphs/${jobId(n)}`), `job ${n} is cleaned up`);
  }
  t.deepEqual(dispatcher.quarantined().map((q) => q.jobId), ['e'.repeat(32)]);
});

test('giving up the term suspends every JobMaster, started or still waiting, without any ZooKeeper I/O', async (t) => {
  const server = new FakeZkServer();
  const ids = Array.from({ length: 30 }, (_, i) => i + 1);
  await seed(server, ids);
  const client = new FakeZkClient(server);
  const executor: TaskExecutionService = {
    epoch: 1, registerJob: () => () => undefined, expectJob: () => () => undefined, allocate: () => null, release: () => undefined,
    deploy: async () => undefined, cancel: async () => undefined, cancelJob: async () => undefined, describe: (tm) => tm, onResourcesChanged: () => () => undefined,
  };
  const masters: SchedulingJobMaster[] = [];
  const { dispatcher, election } = startReplica(client, (ctx) => {
    const m = new SchedulingJobMaster({ context: ctx, executor, progress: new ZkProgressStore(client, ctx.guard, ctx.graph.jobId),
      defaultRestartStrategy: { type: 'none' }, reconcileTimeoutMs: 60_000 });
    masters.push(m);
    return m;
  });
  await eventually('leader', () => dispatcher.role === 'leader', 10000);
  await eventually('some JobMasters run', () => masters.some((m) => m.status === 'RUNNING'));
  const term = election.currentTerm!;
  const before = client.calls.length;
  await dispatcher.revokeLeadership(term, 'graceful stop');
  t.deepEqual(client.calls.slice(before), [], 'no ZooKeeper operation while suspending');
  t.is(masters.length, ids.length);
  t.true(masters.every((m) => m.status === 'SUSPENDED'));
  await election.close();
});

test('a dirty result whose graph is already gone (the last leader died before marking it clean) is marked clean once the history loads', async (t) => {
  const server = new FakeZkServer();
  const seedClient = new FakeZkClient(server);
  await seedClient.mkdirp('/jobresults');
  await seedClient.create(`/jobresults/${jobId(9)}`, JSON.stringify({ state: 'dirty', jobId: jobId(9), name: 'job-9', jobStatus: 'CANCELED', startTime: 1, endTime: 2, graphDigest: 'x' }));
  const { dispatcher } = startReplica(new FakeZkClient(server), (ctx) => new HeldJobMaster(ctx));
  await eventually('leader', () => dispatcher.role === 'leader', 10000);
  await eventually('marked clean', () => JSON.parse(server.nodes.get(`/jobresults/${jobId(9)}`)!.data.toString()).state === 'clean');
  t.is((await dispatcher.jobDetails(jobId(9))).state, 'CANCELED');
});

test('with a hot mirror the grant tracks no job one by one: all are listed RECONCILING at ready, leftovers and suspects are settled first, a request names a job before its turn', async (t) => {
  const server = new FakeZkServer();
  const ids = Array.from({ length: 1200 }, (_, i) => i + 1);
  await seed(server, ids);
  const writer = new FakeZkClient(server);
  await writer.create(`/jobgraphs/${'e'.repeat(32)}`, 'not json'); // unreadable: quarantined
  await writer.create('/jobgraphs/not-a-job-id', envelope(5000)); // a name that is no job id: quarantined
  await writer.mkdirp('/jobresults'); // job 7 ended before its cleanup finished: cleaned up, never run
  const g7 = parseJobGraph({ jobId: jobId(7), name: 'job-7', vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] }, LIMITS);
  await writer.create(`/jobresults/${jobId(7)}`, JSON.stringify({ state: 'dirty', jobId: jobId(7), name: 'job-7', jobStatus: 'FINISHED', startTime: 1, endTime: 2, graphDigest: graphDigest(canonicalJson(g7)) }));
  const masters = new Map<string, HeldJobMaster>();
  const expected: string[] = [];
  const { dispatcher, election, logger } = startReplica(new FakeZkClient(server), (ctx) => {
    const m = new HeldJobMaster(ctx);
    masters.set(m.jobId, m);
    return m;
  }, new RecordingLogger(), { standbyMirror: true, expectRecoveredJob: (_term, id) => { expected.push(id); return () => undefined; } }, false);
  await eventually('the standby mirror is synced', () => dispatcher.mirror!.status().state === 'synced' && dispatcher.mirror!.status().graphs === ids.length + 2, 20_000);
  election.start(dispatcher);
  await eventually('the replica serves as leader', () => dispatcher.role === 'leader', 10_000);

  // At ready: every recovered job is listed and counted, none of them tracked one by one yet.
  const listed = dispatcher.listJobs();
  const running = ids.filter((n) => n !== 7).map(jobId);
  t.deepEqual(listed.filter((j) => j.status === 'RECONCILING').map((j) => j.id).sort(), [...running].sort());
  t.like(listed.find((j) => j.id === jobId(7)), { status: 'FINISHED' });
  t.is(dispatcher.jobCounts().RECONCILING, running.length);
  t.deepEqual(dispatcher.quarantined().map((q) => q.jobId).sort(), ['e'.repeat(32), 'not-a-job-id']);
  t.false(server.nodes.has(`/jobgraphs/${jobId(7)}`), 'the leftover was cleaned up before ready');
  const ready = logger.events.find((e) => e.event === 'dispatcher.ready')!;
  t.like(ready.fields, { jobs: running.length });

  // A request naming a job before its turn tracks it there and then.
  const last = jobId(1200);
  t.is((await dispatcher.jobDetails(last)).state, 'RECONCILING');
  t.true(masters.has(last), 'its JobMaster was built for the view');
  t.deepEqual(await dispatcher.submit(JSON.parse(envelope(1199)).graph), { jobId: jobId(1199), created: false }, 'a resubmission of a job not tracked yet is a duplicate');
  await dispatcher.cancel(jobId(1198));
  t.true(masters.get(jobId(1198))?.started, 'a cancel starts a job not tracked yet');

  // Everything is tracked in the background, reports kept for each, each JobMaster started once.
  await eventually('every job tracked and expected', () => new Set(expected).size === running.length, 20_000);
  t.is(expected.length, running.length, 'each recovered job is expected once');
  for (let round = 0; round < 200 && !(masters.size === running.length && [...masters.values()].every((m) => m.status === 'RUNNING')); round++) {
    for (const m of masters.values()) if (m.started && m.status === 'INITIALIZING') m.release();
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.is(masters.size, running.length);
  await eventually('recovery.completed', () => logger.events.some((e) => e.event === 'recovery.completed'), 20_000);
  t.like(logger.events.find((e) => e.event === 'recovery.completed')!.fields, { recovered: running.length, quarantined: 2, cleaned: 1, failed: 0 });
  t.deepEqual(dispatcher.listJobs().filter((j) => j.status !== 'RUNNING' && j.status !== 'CANCELLING').map((j) => j.id), [jobId(7)]);
});
