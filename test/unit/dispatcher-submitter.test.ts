/** The submitting principal: stored with the graph, kept across a failover, shown with the job, kept in its result. */
import test from 'ava';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { PassiveJobMaster } from '../../src/jobmaster/passive-job-master';
import { FakeZkClient } from '../helpers/fake-zk';
import { eventually } from '../helpers/ensemble';

const LIMITS = { maxParallelism: 16 };
const JOB = '1'.padStart(32, '0');
const GRAPH = { jobId: JOB, name: 'j', vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] };

function startReplica(client: FakeZkClient, masters: PassiveJobMaster[] = []): Dispatcher {
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' } });
  const dispatcher = new Dispatcher({
    client, election, limits: LIMITS, jobstore: { maxCapacity: 10, expirationMs: 60000 },
    jobMasterFactory: (ctx) => { const m = new PassiveJobMaster(ctx); masters.push(m); return m; },
  });
  election.start(dispatcher);
  return dispatcher;
}

test('the submitter is stored in the graph envelope, survives a new term, and a resubmission by another keeps the first', async (t) => {
  const client = new FakeZkClient();
  const dispatcher = startReplica(client);
  await eventually('leader', () => dispatcher.role === 'leader');
  await dispatcher.submit(GRAPH, 'alice');
  t.is((await dispatcher.jobDetails(JOB)).submittedBy, 'alice');
  t.is(dispatcher.jobsOverview()[0].submittedBy, 'alice');
  const stored = JSON.parse(client.server.nodes.get(`/jobgraphs/${JOB}`)!.data.toString('utf8'));
  t.is(stored.submittedBy, 'alice');

  t.deepEqual(await dispatcher.submit(GRAPH, 'bob'), { jobId: JOB, created: false });
  t.is((await dispatcher.jobDetails(JOB)).submittedBy, 'alice');

  client.suspend();
  await eventually('not leader', () => dispatcher.role !== 'leader');
  client.reconnect();
  await eventually('leader again', () => dispatcher.role === 'leader');
  t.is((await dispatcher.jobDetails(JOB)).submittedBy, 'alice', 'recovered from the stored envelope');
});

test('the result of an ended job keeps its submitter; a job submitted without one shows none', async (t) => {
  const client = new FakeZkClient();
  const dispatcher = startReplica(client);
  await eventually('leader', () => dispatcher.role === 'leader');
  await dispatcher.submit(GRAPH, 'alice');
  await dispatcher.cancel(JOB);
  await eventually('result recorded', () => client.server.nodes.has(`/jobresults/${JOB}`));
  await eventually('ended', async () => (await dispatcher.jobDetails(JOB)).state === 'CANCELED');
  t.is(JSON.parse(client.server.nodes.get(`/jobresults/${JOB}`)!.data.toString('utf8')).submittedBy, 'alice');
  t.is((await dispatcher.jobDetails(JOB)).submittedBy, 'alice');

  const other = '2'.padStart(32, '0');
  await dispatcher.submit({ ...GRAPH, jobId: other });
  t.is((await dispatcher.jobDetails(other)).submittedBy, undefined);
});
