import test from 'ava';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { PassiveJobMaster } from '../../src/jobmaster/passive-job-master';
import { JobMaster } from '../../src/jobmaster/types';
import { ZK_CODES } from '../../src/zk/errors';
import { canonicalJson, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { HttpError, NotLeaderError } from '../../src/http/errors';
import { FakeZkClient, FakeZkServer } from '../helpers/fake-zk';
import { eventually } from '../helpers/ensemble';

const LIMITS = { maxParallelism: 16 };

function jobId(n: number): string { return n.toString(16).padStart(32, '0'); }
function graph(n: number): Record<string, unknown> {
  return { jobId: jobId(n), name: `job-${n}`, vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] };
}

function envelope(n: number): string {
  const g = parseJobGraph(graph(n), LIMITS);
  return JSON.stringify({ formatVersion: 1, submittedAt: new Date().toISOString(), digest: graphDigest(canonicalJson(g)), graph: g });
}

function startReplica(client: FakeZkClient, onStart?: (jobId: string) => void): { dispatcher: Dispatcher; election: LeaderElectionService; masters: JobMaster[] } {
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' } });
  const masters: JobMaster[] = [];
  const dispatcher = new Dispatcher({
    client, election, limits: LIMITS, jobstore: { maxCapacity: 10, expirationMs: 60000 },
    jobMasterFactory: (ctx) => {
      const m = new PassiveJobMaster(ctx);
      if (onStart) {
        const start = m.start.bind(m);
        m.start = () => { onStart(m.jobId); return start(); };
      }
      masters.push(m);
      return m;
    },
  });
  election.start(dispatcher);
  return { dispatcher, election, masters };
}

test('a recovery that fails (connection loss while listing graphs) is retried while the term lasts, then serves', async (t) => {
  const server = new FakeZkServer();
  const seed = new FakeZkClient(server);
  await seed.mkdirp('/jobgraphs');
  await seed.create(`/jobgraphs/${jobId(1)}`, envelope(1));
  const client = new FakeZkClient(server);
  client.failNext('getChildren', '/jobgraphs', ZK_CODES.CONNECTIONLOSS);
  const { dispatcher, masters } = startReplica(client);
  await eventually('the replica serves as leader', () => dispatcher.role === 'leader', 10000);
  t.is(client.calls.filter((c) => c.op === 'getChildren' && c.path === '/jobgraphs').length >= 2, true, 'listed again after the failure');
  t.deepEqual(dispatcher.listJobs(), [{ id: jobId(1), status: 'CREATED' }]);
  t.is(masters.length, 1, 'the job was started once, by the successful attempt');
});

test('a submission whose write is unconfirmed answers 503 naming the jobId, and the retry is accepted exactly once', async (t) => {
  const client = new FakeZkClient();
  const { dispatcher } = startReplica(client);
  await eventually('leader', () => dispatcher.role === 'leader');
  client.failNext('create', `/jobgraphs/${jobId(2)}`, ZK_CODES.CONNECTIONLOSS);
  const err = await t.throwsAsync(dispatcher.submit(graph(2)));
  t.true(err instanceof HttpError);
  t.is((err as HttpError).status, 503);
  t.regex(err!.message, new RegExp(jobId(2)));
  t.is(await client.exists(`/jobgraphs/${jobId(2)}`), null);
  t.deepEqual(await dispatcher.submit(graph(2)), { jobId: jobId(2), created: true });
  t.deepEqual(await dispatcher.submit(graph(2)), { jobId: jobId(2), created: false });
  t.is(dispatcher.listJobs().length, 1);
});

test('a submission is answered once its graph is stored, with one ZooKeeper request (its create); the job is listed at once and its JobMaster starts after the answer', async (t) => {
  const client = new FakeZkClient();
  const starts: string[] = [];
  const { dispatcher } = startReplica(client, (id) => starts.push(id));
  await eventually('leader with the result history loaded', () => dispatcher.role === 'leader' && dispatcher.resultRetentionStatus().historyLoaded);
  const from = client.calls.length;
  t.deepEqual(await dispatcher.submit(graph(4)), { jobId: jobId(4), created: true });
  // The coalesced /jobgraphs listing (the watch fired by this create) is no part of the submission.
  t.deepEqual(client.calls.slice(from).filter((c) => !(c.op === 'getChildren' && c.path === '/jobgraphs')), [{ op: 'create', path: `/jobgraphs/${jobId(4)}` }]);
  t.truthy(client.server.nodes.get(`/jobgraphs/${jobId(4)}`), 'stored before the answer');
  t.deepEqual(dispatcher.listJobs(), [{ id: jobId(4), status: 'CREATED' }]);
  t.deepEqual(starts, [], 'not started before the answer');
  await eventually('the JobMaster started', () => starts.length === 1);
  t.deepEqual(starts, [jobId(4)]);
  // An identical resubmission answers from the tracked job, without a request.
  const again = client.calls.length;
  t.deepEqual(await dispatcher.submit(graph(4)), { jobId: jobId(4), created: false });
  t.deepEqual(client.calls.slice(again).filter((c) => !(c.op === 'getChildren' && c.path === '/jobgraphs')), []);
});

test('revocation suspends every JobMaster, deletes nothing, and leader-only calls then fail with NotLeaderError', async (t) => {
  const client = new FakeZkClient();
  const { dispatcher, masters } = startReplica(client);
  await eventually('leader', () => dispatcher.role === 'leader');
  await dispatcher.submit(graph(3));
  client.suspend();
  await eventually('suspended', () => masters[0].status === 'SUSPENDED');
  t.not(dispatcher.role, 'leader');
  t.throws(() => dispatcher.listJobs(), { instanceOf: NotLeaderError });
  t.truthy(client.server.nodes.get(`/jobgraphs/${jobId(3)}`), 'the graph stays stored');
  client.reconnect();
  await eventually('leader again', () => dispatcher.role === 'leader');
  t.deepEqual(dispatcher.listJobs(), [{ id: jobId(3), status: 'CREATED' }]);
});

test('a dirty result found on recovery finishes the cleanup and the job is not started again', async (t) => {
  const server = new FakeZkServer();
  const seed = new FakeZkClient(server);
  await seed.mkdirp('/jobgraphs');
  await seed.mkdirp('/jobresults');
  await seed.create(`/jobgraphs/${jobId(4)}`, envelope(4));
  await seed.create(`/jobresults/${jobId(4)}`, JSON.stringify({
    state: 'dirty', jobId: jobId(4), name: 'job-4', jobStatus: 'FINISHED', startTime: 1, endTime: 2, graphDigest: 'x',
  }));
  const client = new FakeZkClient(server);
  const { dispatcher, masters } = startReplica(client);
  await eventually('leader', () => dispatcher.role === 'leader');
  // The cleanup is a recovery step that runs after the leader published itself.
  await eventually('cleaned up', () => JSON.parse(server.nodes.get(`/jobresults/${jobId(4)}`)!.data.toString()).state === 'clean');
  t.is(masters.length, 0);
  t.is(server.nodes.has(`/jobgraphs/${jobId(4)}`), false);
  t.is(JSON.parse(server.nodes.get(`/jobresults/${jobId(4)}`)!.data.toString()).state, 'clean');
  t.is((await dispatcher.jobDetails(jobId(4))).state, 'FINISHED');
});
