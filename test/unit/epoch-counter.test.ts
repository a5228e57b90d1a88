/**
 * The fencing token comes from `/epoch`, not from the latch sequence (src/election/zk-driver.ts):
 * raised with a version-checked write on every grant, never reset by deleting the latch, raised above
 * what a TaskManager reports, and a lost race grants nothing. Also the Dispatcher's durable cancel.
 */
import test from 'ava';
import { LeaderElectionService, LeadershipTerm } from '../../src/election/service';
import { EPOCH_PATH, parseEpoch, zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { PassiveJobMaster } from '../../src/jobmaster/passive-job-master';
import type { JobStatus } from '../../src/jobmaster/types';
import { canonicalJson, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { cancelRequestPath } from '../../src/zk/layout';
import { ZK_CODES } from '../../src/zk/errors';
import { HttpError } from '../../src/http/errors';
import { FakeZkClient, FakeZkServer } from '../helpers/fake-zk';
import { eventually } from '../helpers/ensemble';

const contender = (replicaId: string) => ({ contenderInfo: { replicaId, restUrl: `http://${replicaId}`, rpcUrl: `http://${replicaId}` } });

function elect(client: FakeZkClient, replicaId = 'r1'): LeaderElectionService {
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), contender(replicaId));
  election.start({ grantLeadership: () => undefined, revokeLeadership: () => undefined, handleError: () => undefined });
  return election;
}

async function storedEpoch(client: FakeZkClient): Promise<number | null> {
  return parseEpoch((await client.get(EPOCH_PATH)).data.toString('utf8'));
}

test('every grant raises /epoch; deleting the latch restarts the sequence, not the epoch', async (t) => {
  const server = new FakeZkServer();
  const client = new FakeZkClient(server);
  const election = elect(client);
  const first = await election.whenLeader();
  t.is(await storedEpoch(client), first.epoch);
  // An operator cleans up: deleteall /leader (the latch and everything under it).
  const admin = new FakeZkClient(server);
  for (const child of await admin.getChildren('/leader/latch')) await admin.delete(`/leader/latch/${child}`);
  await admin.delete('/leader/latch');
  await eventually('a new term', () => (election.currentTerm && election.currentTerm !== first ? election.currentTerm : null), 5000);
  const second = election.currentTerm as LeadershipTerm;
  t.true(second.epoch > first.epoch, `${second.epoch} > ${first.epoch}`);
  t.is(await storedEpoch(client), second.epoch);
  await election.close();
});

test('a counter restored lower (old snapshot) still ends above what a TaskManager reports', async (t) => {
  const server = new FakeZkServer();
  const client = new FakeZkClient(server);
  await client.create(EPOCH_PATH, JSON.stringify({ epoch: 2 }));
  const election = elect(client);
  const term = await election.whenLeader();
  t.is(term.epoch, 3);
  await election.takeTermAbove(term, 9); // a TaskManager answered 409 {epoch: 9}
  const next = await eventually('a term above 9', () => (election.currentTerm && election.currentTerm.epoch > 9 ? election.currentTerm : null), 5000);
  t.is(next.epoch, 10);
  t.is(await storedEpoch(client), 10);
  await election.takeTermAbove(next, 4); // below ours: nothing happens
  t.is(election.currentTerm, next);
  await election.close();
});

test('a lost race on /epoch grants nothing for that check; the next check takes a higher epoch', async (t) => {
  const server = new FakeZkServer();
  const client = new FakeZkClient(server);
  await client.create(EPOCH_PATH, JSON.stringify({ epoch: 5 }));
  client.failNext('set', EPOCH_PATH, ZK_CODES.BADVERSION);
  const granted: number[] = [];
  const election = elect(client);
  election.on('elected', (term: LeadershipTerm) => granted.push(term.epoch));
  const term = await election.whenLeader();
  t.is(term.epoch, 6);
  t.deepEqual(granted, [6], 'no grant for the lost write');
  await election.close();
});

test('an unreadable or implausible /epoch is not trusted: parseEpoch accepts only {"epoch": safe integer >= 0}', (t) => {
  t.is(parseEpoch('{"epoch": 7}'), 7);
  for (const bad of ['7', '{"epoch": -1}', '{"epoch": 1e300}', '{"epoch": "7"}', 'garbage', 'null']) t.is(parseEpoch(bad), null, bad);
});

const LIMITS = { maxParallelism: 64, maxVertices: 64, maxGraphBytes: 1 << 20 } as any;
const JOB = 'c'.repeat(32);

/** A JobMaster whose cancel takes a while (its tasks are being stopped): it stays CANCELLING. */
class SlowCancelJobMaster extends PassiveJobMaster {
  canceled = 0;
  override get status(): JobStatus { return this.canceled > 0 && super.status !== 'SUSPENDED' ? 'CANCELLING' : super.status; }
  override cancel(): void { this.canceled++; }
}

function startDispatcher(client: FakeZkClient): { dispatcher: Dispatcher; election: LeaderElectionService; masters: SlowCancelJobMaster[] } {
  const election = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), contender('r1'));
  const masters: SlowCancelJobMaster[] = [];
  const dispatcher = new Dispatcher({
    client, election, limits: LIMITS, jobstore: { maxCapacity: 10, expirationMs: 60000 },
    jobMasterFactory: (ctx) => { const m = new SlowCancelJobMaster(ctx); masters.push(m); return m; },
  });
  election.start(dispatcher);
  return { dispatcher, election, masters };
}

test('a cancel is recorded before it is acknowledged; a recovering leader cancels the job; unconfirmed writes answer 503', async (t) => {
  const server = new FakeZkServer();
  const seed = new FakeZkClient(server);
  const g = parseJobGraph({ jobId: JOB, name: 'j', vertices: [{ id: 'v', parallelism: 1, task: { type: 'command', argv: ['true'] } }] }, LIMITS);
  await seed.mkdirp('/jobgraphs');
  await seed.create(`/jobgraphs/${JOB}`, JSON.stringify({ formatVersion: 1, submittedAt: new Date().toISOString(), digest: graphDigest(canonicalJson(g)), graph: g }));
  const client = new FakeZkClient(server);
  const first = startDispatcher(client);
  await eventually('leader', () => first.dispatcher.role === 'leader', 5000);
  client.failNext('create', cancelRequestPath(JOB), ZK_CODES.CONNECTIONLOSS);
  const err = await t.throwsAsync(first.dispatcher.cancel(JOB), { instanceOf: HttpError });
  t.is(err?.status, 503, 'not acknowledged while the record is unconfirmed');
  await first.dispatcher.cancel(JOB);
  t.truthy(await client.exists(cancelRequestPath(JOB)), 'recorded before the answer');
  t.is(first.masters[0].canceled, 1, 'the JobMaster was asked once, after the record');
  // The leader steps down before the job ended (its JobMaster is suspended); the next leader finds the record.
  await first.election.close();
  t.is(first.masters[0].status, 'SUSPENDED');
  const next = startDispatcher(new FakeZkClient(server));
  await eventually('the recovered job is being canceled', () => next.masters[0]?.status === 'CANCELLING' || null, 5000);
  t.is(next.masters.length, 1);
  t.is(next.masters[0].canceled, 1, 'recovery asked the JobMaster to cancel');
});
