/**
 * Regression (found by chaos-short, partition-leader-long): a leader cut from ZooKeeper canceled a job;
 * GET /jobs/<id> answered CANCELED while its result could not be written; the next leader recovered the
 * job and ran it to FINISHED. A terminal status may only be shown once the result is recorded; until then
 * the job shows the step before (CANCELLING, FAILING, RUNNING) and its execution result is IN_PROGRESS.
 */
import test from 'ava';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { PassiveJobMaster } from '../../src/jobmaster/passive-job-master';
import { ZK_CODES } from '../../src/zk/errors';
import { FakeZkClient } from '../helpers/fake-zk';
import { eventually } from '../helpers/ensemble';
import type { EventFields, EventLogger } from '../../src/util/logger';

const JOB = 'e'.repeat(32);
const GRAPH = { jobId: JOB, name: 'to-cancel', vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 1 } }] };

/** Keeps the name of every event logged, so a test can wait for one instead of sleeping. */
function recordingLogger(events: string[]): EventLogger {
  const note = (event: string, _fields?: EventFields): void => { events.push(event); };
  return { debug: note, info: note, warn: note, error: note, child: () => recordingLogger(events) };
}

function leader(client: FakeZkClient, events: string[] = []): Dispatcher {
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' } });
  const dispatcher = new Dispatcher({
    client, election, limits: { maxParallelism: 4 }, jobstore: { maxCapacity: 10, expirationMs: 60000 }, logger: recordingLogger(events),
    jobMasterFactory: (ctx) => new PassiveJobMaster(ctx),
  });
  election.start(dispatcher);
  return dispatcher;
}

test('a canceled job whose result could not be recorded yet is shown CANCELLING, never CANCELED; the write is retried until recorded', async (t) => {
  const client = new FakeZkClient();
  const events: string[] = [];
  const dispatcher = leader(client, events);
  await eventually('leader', () => dispatcher.role === 'leader');
  await dispatcher.submit(GRAPH);
  // Three connection losses in a row (retries after 100, 200 and 400 ms): the session survives them.
  for (let i = 0; i < 3; i++) client.failNext('create', `/jobresults/${JOB}`, ZK_CODES.CONNECTIONLOSS);
  await dispatcher.cancel(JOB);
  await eventually('the dispatcher saw the result write fail', () => events.includes('jobresult.write.retry'), 5000, 5);
  t.deepEqual(dispatcher.listJobs(), [{ id: JOB, status: 'CANCELLING' }]);
  const details = await dispatcher.jobDetails(JOB);
  t.is(details.state, 'CANCELLING');
  t.is(details['end-time'], -1);
  t.is(details.timestamps.CANCELED, undefined);
  t.deepEqual(dispatcher.jobsOverview().map((d) => d.state), ['CANCELLING']);
  t.deepEqual(await dispatcher.executionResult(JOB), { status: { id: 'IN_PROGRESS' } });
  t.is(await client.exists(`/jobresults/${JOB}`), null);

  // The leader kept its session: it records the result itself instead of leaving the job CANCELLING forever.
  await eventually('CANCELED once recorded', async () => (await dispatcher.jobDetails(JOB)).state === 'CANCELED', 10_000, 20);
  t.truthy(await client.exists(`/jobresults/${JOB}`));
  t.is(client.calls.filter((c) => c.op === 'create' && c.path === `/jobresults/${JOB}`).length, 4);
  t.false(events.includes('jobresult.write.failed'));
});

test('a result write that fails with the session gone (not a connection loss) is not retried: the next leader recovers the job', async (t) => {
  const client = new FakeZkClient();
  const events: string[] = [];
  const dispatcher = leader(client, events);
  await eventually('leader', () => dispatcher.role === 'leader');
  await dispatcher.submit({ ...GRAPH, jobId: 'd'.repeat(32) });
  client.failNext('create', `/jobresults/${'d'.repeat(32)}`, ZK_CODES.SESSIONEXPIRED);
  await dispatcher.cancel('d'.repeat(32));
  await eventually('the write failed without a retry', () => events.includes('jobresult.write.failed'), 5000, 5);
  t.false(events.includes('jobresult.write.retry'));
  t.is(await client.exists(`/jobresults/${'d'.repeat(32)}`), null);
});

test('once the result is recorded the terminal status shows', async (t) => {
  const client = new FakeZkClient();
  const dispatcher = leader(client);
  await eventually('leader', () => dispatcher.role === 'leader');
  await dispatcher.submit({ ...GRAPH, jobId: 'f'.repeat(32) });
  await dispatcher.cancel('f'.repeat(32));
  await eventually('CANCELED', async () => (await dispatcher.jobDetails('f'.repeat(32))).state === 'CANCELED');
  t.deepEqual(dispatcher.listJobs(), [{ id: 'f'.repeat(32), status: 'CANCELED' }]);
  t.truthy(await client.exists(`/jobresults/${'f'.repeat(32)}`));
});
