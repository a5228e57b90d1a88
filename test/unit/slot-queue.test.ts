/**
 * Scheduling rules with fakes: the order waiting slot requests are served in (priority, then first
 * come), reserved slots, preemption's choice of victim, and the ResourceManager applying them
 * (TaskManagers registered in memory; a fake TaskManager answers cancels over HTTP).
 */
import test from 'ava';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { SlotQueue, slotReservations } from '../../src/resources/slot-queue';
import { chooseVictim, PreemptionCandidate } from '../../src/resources/preemption';
import { parseDrainDeadline, DrainRecord, DrainRecords } from '../../src/resources/drain';
import { spreadStrategy } from '../../src/resources/allocation';
import { EvictionCause, JobTaskListener, ResourceManager } from '../../src/resources/resource-manager';
import type { ExecutionId, TaskReport } from '../../src/taskmanager/protocol';
import { FakeClock } from '../helpers/fake-clock';
import { eventually } from '../../src/util/poll';

const always = (): boolean => true;

test('a higher priority is served first; within a priority, first come first served; a job never waits behind itself', (t) => {
  const q = new SlotQueue();
  q.wait({ key: 'low/0', jobId: 'low', priority: 0 });
  q.wait({ key: 'normal-a/0', jobId: 'normal-a', priority: 50 });
  q.wait({ key: 'normal-b/0', jobId: 'normal-b', priority: 50 });
  t.deepEqual(q.list().map((r) => r.key), ['normal-a/0', 'normal-b/0', 'low/0']);

  t.is(q.decide({ key: 'low/0', jobId: 'low', priority: 0 }, 1, always), 'behind');
  t.is(q.decide({ key: 'normal-b/0', jobId: 'normal-b', priority: 50 }, 1, always), 'behind', 'normal-a came first');
  t.is(q.decide({ key: 'normal-a/0', jobId: 'normal-a', priority: 50 }, 1, always), 'take');
  t.is(q.decide({ key: 'normal-a/1', jobId: 'normal-a', priority: 50 }, 1, always), 'behind', 'normal-b/0 waited before this new request came');
  const own = new SlotQueue();
  own.wait({ key: 'a/0', jobId: 'a', priority: 0 });
  t.is(own.decide({ key: 'a/1', jobId: 'a', priority: 0 }, 1, always), 'take', 'a job\'s own waiting request holds none of its others back');
  t.is(q.decide({ key: 'urgent/0', jobId: 'urgent', priority: 100 }, 1, always), 'take', 'a new urgent request goes ahead of everyone');
  t.is(q.decide({ key: 'urgent/0', jobId: 'urgent', priority: 100 }, 0, always), 'full');

  q.served('normal-a/0');
  t.is(q.decide({ key: 'normal-b/0', jobId: 'normal-b', priority: 50 }, 1, always), 'take');
  t.true(q.dropJob('normal-b'));
  t.false(q.dropJob('normal-b'));
  t.deepEqual(q.list().map((r) => r.key), ['low/0']);
});

test('waiting requests their job no longer wants are forgotten instead of holding others back', (t) => {
  const q = new SlotQueue();
  q.wait({ key: 'gone/0', jobId: 'gone', priority: 100 });
  t.is(q.decide({ key: 'low/0', jobId: 'low', priority: 0 }, 1, (w) => w.jobId !== 'gone'), 'take');
  t.is(q.size, 0);
});

test('dropJob forgets exactly that job\'s waiting requests, however they left before (served, no longer wanted)', (t) => {
  const q = new SlotQueue();
  const req = (key: string, jobId: string) => ({ key, jobId, priority: 0 });
  for (const [key, job] of [['b1', 'B'], ['b2', 'B'], ['a1', 'A'], ['a2', 'A'], ['c1', 'C']]) q.wait(req(key, job));
  q.served('b1');
  // c1 asks: B's b2 ranks first but is no longer wanted, so it is forgotten on the way to A's a1.
  t.is(q.decide(req('c1', 'C'), 1, (w) => w.key !== 'b2'), 'behind', 'A is still ahead of C');
  t.deepEqual(q.list().map((w) => w.key), ['a1', 'a2', 'c1']);
  t.true(q.dropJob('A'));
  t.false(q.dropJob('A'), 'nothing of A left');
  t.false(q.dropJob('B'), 'B left through served and no-longer-wanted');
  t.deepEqual(q.list().map((w) => w.key), ['c1']);
  t.is(q.size, 1);
  q.wait(req('a3', 'A'));
  t.true(q.dropJob('A'), 'a job that asks again is indexed again');
  t.is(q.size, 1);
});

test('reserved slots stay free for their class and above; lower classes wait', (t) => {
  const classes = { low: 0, normal: 50, urgent: 100 };
  const reservations = slotReservations({ urgent: 2, normal: 1 }, classes);
  t.deepEqual(reservations.map((r) => [r.className, r.priority, r.slots]), [['urgent', 100, 2], ['normal', 50, 1]]);
  const q = new SlotQueue(reservations);
  t.is(q.reservedAbove(0), 3);
  t.is(q.reservedAbove(50), 2);
  t.is(q.reservedAbove(100), 0);
  t.is(q.decide({ key: 'l', jobId: 'l', priority: 0 }, 3, always), 'reserved');
  t.is(q.decide({ key: 'l', jobId: 'l', priority: 0 }, 4, always), 'take');
  t.is(q.decide({ key: 'n', jobId: 'n', priority: 50 }, 2, always), 'reserved');
  t.is(q.decide({ key: 'n', jobId: 'n', priority: 50 }, 3, always), 'take');
  t.is(q.decide({ key: 'u', jobId: 'u', priority: 100 }, 1, always), 'take');
  t.deepEqual(slotReservations({ unknown: 3 }, classes), [], 'classes that do not exist reserve nothing');
});

test('preemption picks strictly lower priorities only: the lowest first, then the one that started last', (t) => {
  const c = (key: string, priority: number, since: number, state = 'RUNNING'): PreemptionCandidate => ({ taskManagerId: 'tm', key, jobId: key, priority, state, since });
  t.is(chooseVictim([c('same', 100, 5)], 100), null, 'never within a priority');
  t.is(chooseVictim([c('a', 50, 1), c('b', 0, 1), c('c', 0, 9)], 100)?.key, 'c');
  t.is(chooseVictim([c('reserved', 0, 9, 'RESERVED'), c('run', 50, 1)], 100)?.key, 'run', 'a slot about to deploy is left alone');
  t.is(chooseVictim([], 100), null);
});

test('a drain deadline is an optional integer of ms', (t) => {
  t.is(parseDrainDeadline(undefined), null);
  t.is(parseDrainDeadline({}), null);
  t.is(parseDrainDeadline({ deadlineMs: 5000 }), 5000);
  t.throws(() => parseDrainDeadline({ deadlineMs: -1 }), { message: /deadlineMs must be an integer/ });
  t.throws(() => parseDrainDeadline({ deadline: 5 }), { message: /unknown field "deadline"/ });
  t.throws(() => parseDrainDeadline([1]), { message: /JSON object/ });
});

// ---- the ResourceManager applying the rules ---------------------------------------------------------

class Job implements JobTaskListener {
  evicted: Array<[string, ExecutionId, EvictionCause]> = [];
  constructor(readonly jobId: string, readonly priority: number) {}
  async onReport(): Promise<'ok' | 'cancel'> { return 'ok'; }
  owns(): boolean { return true; }
  wantsSlot?: (id: ExecutionId) => boolean;
  onTaskManagerLost(): void {}
  onEvicted(tm: string, id: ExecutionId, cause: EvictionCause): boolean {
    this.evicted.push([tm, id, cause]);
    return true;
  }
  id(subtask: number, attempt = 0): ExecutionId { return { jobId: this.jobId, vertexId: 'v', subtask, attempt }; }
}

const running = (id: ExecutionId): TaskReport => ({ ...id, state: 'RUNNING', startedAt: 1 });

/** A TaskManager RPC endpoint that accepts every cancel, recording it. */
async function fakeTaskManager(t: { teardown(fn: () => unknown): void }): Promise<{ address: string; cancels: unknown[] }> {
  const cancels: unknown[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.url === '/cancel') cancels.push(JSON.parse(body));
      res.setHeader('content-type', 'application/json');
      res.end('{"canceled":[]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, cancels };
}

function resourceManager(t: { teardown(fn: () => unknown): void }, options: Partial<ConstructorParameters<typeof ResourceManager>[0]> = {}): ResourceManager {
  const rm = new ResourceManager({ epoch: 1, heartbeatTimeoutMs: 60_000, clock: new FakeClock(), strategy: spreadStrategy, ...options });
  rm.start();
  t.teardown(() => rm.stop());
  return rm;
}

const LOW = 'a'.repeat(32);
const URGENT = 'f'.repeat(32);
const OTHER = 'e'.repeat(32);

test('the ResourceManager serves a waiting urgent request before earlier low ones, and wakes the rest once it is placed', async (t) => {
  const rm = resourceManager(t);
  const low = new Job(LOW, 0);
  const urgent = new Job(URGENT, 100);
  rm.registerJob(LOW, low);
  rm.registerJob(URGENT, urgent);
  await rm.register({ taskManagerId: 'tm', host: 'h', address: 'http://127.0.0.1:1', slots: 1, epoch: 1, tasks: [running(low.id(0))] });
  t.is(rm.allocate(low.id(1), 0), null, 'full: the low request waits');
  t.is(rm.allocate(urgent.id(0), 100), null, 'full: the urgent request waits');
  t.deepEqual(rm.pendingSlotRequests().map((r) => r.jobId), [URGENT, LOW]);

  let wakeups = 0;
  rm.onResourcesChanged(() => { wakeups++; });
  await rm.status({ taskManagerId: 'tm', epoch: 1, reports: [{ ...low.id(0), state: 'FINISHED', startedAt: 1, endedAt: 2 }] });
  t.is(rm.allocate(low.id(1), 0), null, 'the urgent request is ahead');
  t.is(rm.allocate(urgent.id(0), 100), 'tm');
  const before = wakeups;
  await Promise.resolve();
  t.true(wakeups > before, 'the low job is told to look again once the urgent one was placed');
});

test('with reserved slots, low-priority requests leave them free; the reserved class takes them', async (t) => {
  const rm = resourceManager(t, { reservations: slotReservations({ urgent: 2 }, { low: 0, urgent: 100 }) });
  const low = new Job(LOW, 0);
  rm.registerJob(LOW, low);
  rm.registerJob(URGENT, new Job(URGENT, 100));
  await rm.register({ taskManagerId: 'tm', host: 'h', address: 'http://127.0.0.1:1', slots: 3, epoch: 1, tasks: [] });
  t.is(rm.allocate(low.id(0), 0), 'tm');
  t.is(rm.allocate(low.id(1), 0), null, 'two free slots are kept for urgent');
  t.is(rm.allocate({ jobId: URGENT, vertexId: 'v', subtask: 0, attempt: 0 }, 100), 'tm');
  t.is(rm.allocate({ jobId: URGENT, vertexId: 'v', subtask: 1, attempt: 0 }, 100), 'tm');
});

test('with preemption on, a waiting urgent request takes the slot of a lower-priority subtask, never one of its own priority', async (t) => {
  const tm = await fakeTaskManager(t);
  const rm = resourceManager(t, { preemption: true });
  const low = new Job(LOW, 0);
  const peer = new Job(OTHER, 100);
  const urgent = new Job(URGENT, 100);
  rm.registerJob(LOW, low);
  rm.registerJob(OTHER, peer);
  rm.registerJob(URGENT, urgent);
  await rm.register({ taskManagerId: 'tm', host: 'h', address: tm.address, slots: 2, epoch: 1, tasks: [running(peer.id(0)), running(low.id(0))] });

  t.is(rm.allocate(urgent.id(0), 100), null);
  t.is(low.evicted.length, 1);
  t.deepEqual(low.evicted[0][2], { reason: 'preempted', byJobId: URGENT, byPriority: 100 });
  t.is(peer.evicted.length, 0, 'never within a priority');
  t.is(rm.allocate(urgent.id(0), 100), null, 'asked again while the victim stops: no second victim');
  t.is(low.evicted.length, 1);

  let freed = false;
  rm.onResourcesChanged(() => { freed = true; });
  await eventually('the victim stopped and its slot freed', () => freed || null, 10_000);
  t.like(tm.cancels[0], { jobId: LOW, vertexId: 'v', subtask: 0, attempt: 0 });
  t.is(rm.allocate(low.id(0, 1), 0), null, 'the new attempt of the preempted subtask waits behind the urgent request');
  t.is(rm.allocate(urgent.id(0), 100), 'tm');
});

test('a drained TaskManager gets no new work, is shown blocked, and is released in its heartbeat answer once empty', async (t) => {
  const stored = new Map<string, DrainRecord>();
  const store: DrainRecords = {
    list: async () => [...stored.values()],
    record: async (d) => { stored.set(d.taskManagerId, d); },
    remove: async (id) => { stored.delete(id); },
  };
  const rm = resourceManager(t, { drains: store });
  const job = new Job(LOW, 0);
  rm.registerJob(LOW, job);
  await rm.register({ taskManagerId: 'busy', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 1, tasks: [running(job.id(0))] });
  await rm.register({ taskManagerId: 'idle', host: 'h', address: 'http://127.0.0.1:2', slots: 1, epoch: 1, tasks: [running(job.id(1))] });
  await new Promise((resolve) => setImmediate(resolve)); // the stored drains were read

  const drain = await rm.drain('busy', null);
  t.is(drain.deadlineAt, null);
  t.true(stored.has('busy'), 'stored before it takes effect');
  t.like(rm.get('busy'), { blocked: true });
  t.deepEqual(rm.blockedOverview(), { 'taskmanagers-blocked': 1, 'slots-free-and-blocked': 1 });
  t.is(rm.allocate(job.id(2), 0), null, 'its free slot is not offered');
  t.deepEqual(rm.heartbeat('busy', { epoch: 1, running: [`${LOW}/v/0/0`] }).release, undefined, 'not released while it runs a task');

  await rm.status({ taskManagerId: 'busy', epoch: 1, reports: [{ ...job.id(0), state: 'FINISHED', startedAt: 1, endedAt: 2 }] });
  const answer = rm.heartbeat('busy', { epoch: 1, running: [] });
  t.regex(answer.release ?? '', /drained/);
  t.is(rm.get('busy'), null, 'unregistered');
  t.false(stored.has('busy'), 'its drain record is removed');
});

test('a new ResourceManager reads stored drains before it places work', async (t) => {
  const store: DrainRecords = {
    list: async () => [{ taskManagerId: 'tm', requestedAt: 1, deadlineAt: null }],
    record: async () => undefined,
    remove: async () => undefined,
  };
  const rm = resourceManager(t, { drains: store });
  rm.registerJob(LOW, new Job(LOW, 0));
  await rm.register({ taskManagerId: 'tm', host: 'h', address: 'http://127.0.0.1:1', slots: 4, epoch: 1, tasks: [] });
  await new Promise((resolve) => setImmediate(resolve));
  t.like(rm.get('tm'), { blocked: true });
  t.is(rm.allocate({ jobId: LOW, vertexId: 'v', subtask: 0, attempt: 0 }, 0), null);
});

test('past a drain deadline, the tasks still on the TaskManager are evicted as new attempts and stopped', async (t) => {
  const tm = await fakeTaskManager(t);
  const rm = resourceManager(t);
  const job = new Job(LOW, 0);
  rm.registerJob(LOW, job);
  await rm.register({ taskManagerId: 'tm', host: 'h', address: tm.address, slots: 2, epoch: 1, tasks: [running(job.id(0)), running(job.id(1))] });

  const drain = await rm.drain('tm', 0);
  t.is(drain.deadlineAt, drain.requestedAt);
  t.deepEqual(job.evicted.map(([tmId, id, cause]) => [tmId, id.subtask, cause.reason]), [['tm', 0, 'drained'], ['tm', 1, 'drained']]);
  await eventually('the evicted tasks stopped and their slots freed', () => rm.get('tm')?.tasks.length === 0 || null, 10_000);
  t.deepEqual(tm.cancels.map((c: any) => c.subtask).sort(), [0, 1]);
  t.regex(rm.heartbeat('tm', { epoch: 1, running: [] }).release ?? '', /released/);
});

test('a waiting request whose job stopped asking (cancelling, past that attempt) holds nobody back, though the job still owns the execution', async (t) => {
  const rm = resourceManager(t);
  const cancelling = new Job(URGENT, 0);
  let asking = true;
  cancelling.wantsSlot = () => asking;
  const other = new Job(OTHER, 0);
  rm.registerJob(URGENT, cancelling);
  rm.registerJob(OTHER, other);
  await rm.register({ taskManagerId: 'tm', host: 'h', address: 'http://127.0.0.1:1', slots: 1, epoch: 1, tasks: [running(other.id(0))] });
  t.is(rm.allocate(cancelling.id(0), 0), null, 'full: the first request waits');
  await rm.status({ taskManagerId: 'tm', epoch: 1, reports: [{ ...other.id(0), state: 'FINISHED', startedAt: 1, endedAt: 2 }] });
  t.is(rm.allocate(other.id(1), 0), null, 'while the first job still asks, it is ahead');
  asking = false; // e.g. the job was cancelled: its JobMaster never asks again, but owns() stays true until it ends
  t.is(rm.allocate(other.id(1), 0), 'tm');
});
