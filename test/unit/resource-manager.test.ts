/**
 * Allocation strategies and the ResourceManager's bookkeeping (registration, slots, heartbeat
 * timeout, report routing) with a fake clock. Commands to TaskManagers travel over HTTP and are
 * covered by the integration tests.
 */
import test from 'ava';
import { scoreStrategy, spreadStrategy, scoreOf, allocationStrategy, TaskManagerLoad } from '../../src/resources/allocation';
import { JobTaskListener, ResourceManager } from '../../src/resources/resource-manager';
import type { ExecutionId, TaskReport } from '../../src/taskmanager/protocol';
import { HttpError } from '../../src/http/errors';
import { FakeClock } from '../helpers/fake-clock';

const load = (id: string, slots: number, used: number, recentTaskMs: number | null = null, registeredAt = 0): TaskManagerLoad => ({ id, slots, used, recentTaskMs, registeredAt });

test('spread picks the TaskManager with the fewest tasks, then the most free slots, then the oldest', (t) => {
  t.is(spreadStrategy.select([load('a', 4, 2), load('b', 4, 1), load('c', 8, 3)]), 'b');
  t.is(spreadStrategy.select([load('a', 4, 1), load('b', 8, 1)]), 'b');
  t.is(spreadStrategy.select([load('a', 4, 1, null, 5), load('b', 4, 1, null, 3)]), 'b');
});

test('score picks the highest S = R / T: free-slot ratio over recent task duration', (t) => {
  // a: R = 0.5, T = 1 s → 0.5;  b: R = 0.25, T = 0.25 s → 1.0
  t.is(scoreOf(load('a', 4, 2, 1000)), 0.5);
  t.is(scoreOf(load('b', 4, 3, 250)), 1);
  t.is(scoreStrategy.select([load('a', 4, 2, 1000), load('b', 4, 3, 250)]), 'b');
  // Without history a TaskManager counts with the mean of the others.
  t.is(scoreStrategy.select([load('new', 4, 0, null), load('slow', 4, 0, 5000), load('fast', 4, 0, 1000)]), 'fast');
  t.is(allocationStrategy('score'), scoreStrategy);
  t.throws(() => allocationStrategy('random'), { message: /spread or score/ });
});

class Listener implements JobTaskListener {
  reports: Array<[string, TaskReport]> = [];
  lost: Array<[string, ExecutionId[], string]> = [];
  constructor(private readonly owned: (id: ExecutionId) => boolean = () => true) {}
  async onReport(tm: string, r: TaskReport): Promise<'ok' | 'cancel'> {
    this.reports.push([tm, r]);
    return this.owned(r) ? 'ok' : 'cancel';
  }
  owns(id: ExecutionId): boolean { return this.owned(id); }
  onTaskManagerLost(tm: string, ids: ExecutionId[], cause: string): void { this.lost.push([tm, ids, cause]); }
}

const JOB = 'b'.repeat(32);
const id = (vertexId: string, subtask: number, attempt = 0): ExecutionId => ({ jobId: JOB, vertexId, subtask, attempt });
const report = (e: ExecutionId, state: TaskReport['state']): TaskReport => ({ ...e, state, startedAt: 1000, endedAt: state === 'RUNNING' ? undefined : 3000 });

function rm(clock: FakeClock): ResourceManager {
  const r = new ResourceManager({ epoch: 3, heartbeatTimeoutMs: 3000, clock, strategy: spreadStrategy });
  r.start();
  return r;
}

test('registration offers slots; allocation reserves them and spreads; terminal reports free them and are acknowledged', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  const listener = new Listener();
  r.registerJob(JOB, listener);
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 3, tasks: [] });
  await r.register({ taskManagerId: 'tm2', host: 'h', address: 'http://127.0.0.1:2', slots: 1, epoch: 3, tasks: [] });
  t.deepEqual(r.overview(), { taskmanagers: 2, 'slots-total': 3, 'slots-available': 3 });
  const placed = [r.allocate(id('v', 0)), r.allocate(id('v', 1)), r.allocate(id('v', 2)), r.allocate(id('v', 3))];
  t.deepEqual(placed, ['tm1', 'tm2', 'tm1', null]);
  t.is(r.overview()['slots-available'], 0);

  const answer = await r.status({ taskManagerId: 'tm1', epoch: 3, reports: [report(id('v', 0), 'FINISHED')] });
  t.deepEqual(answer, { acknowledged: [`${JOB}/v/0/0`], cancel: [] });
  t.is(r.overview()['slots-available'], 1);
  t.is(listener.reports.length, 1);
  t.like(r.get('tm1'), { slotsNumber: 2, freeSlots: 1, recentTaskMs: 2000 });
  r.release('tm2', id('v', 1));
  t.is(r.overview()['slots-available'], 2);
  r.stop();
});

test('a TaskManager re-registering reports what it runs: owned tasks are adopted, others are to be canceled', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  r.registerJob(JOB, new Listener((e) => e.attempt === 1));
  const other = { ...id('x', 0), jobId: 'c'.repeat(32) };
  const answer = await r.register({
    taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 4, epoch: 3,
    tasks: [report(id('v', 0, 1), 'RUNNING'), report(id('v', 1, 0), 'RUNNING'), report(other, 'RUNNING'), report(id('v', 2, 1), 'FINISHED')],
  });
  t.deepEqual(answer.cancel.sort(), [`${JOB}/v/1/0`, `${'c'.repeat(32)}/x/0/0`].sort());
  t.deepEqual(answer.acknowledged, [`${JOB}/v/2/1`]);
  t.is(r.overview()['slots-available'], 1, 'running tasks hold slots until they stop');
  t.deepEqual(r.heartbeat('tm1', { epoch: 3, running: [`${JOB}/v/0/1`, `${JOB}/v/1/0`] }).cancel, [`${JOB}/v/1/0`]);
  r.stop();
});

test('no heartbeat for heartbeat.timeout → the TaskManager is lost and each job hears which of its tasks went with it', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  const listener = new Listener();
  r.registerJob(JOB, listener);
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 3, tasks: [] });
  await r.register({ taskManagerId: 'tm2', host: 'h', address: 'http://127.0.0.1:2', slots: 2, epoch: 3, tasks: [] });
  r.allocate(id('v', 0));
  let changes = 0;
  r.onResourcesChanged(() => changes++);
  for (let i = 0; i < 6; i++) {
    await clock.advance(500);
    r.heartbeat('tm2', { epoch: 3, running: [] });
  }
  t.deepEqual(listener.lost, [], 'not before the timeout');
  await clock.advance(1000);
  t.is(listener.lost.length, 1);
  const [tm, ids, cause] = listener.lost[0];
  t.is(tm, 'tm1');
  t.deepEqual(ids, [id('v', 0)]);
  t.regex(cause, /TaskManager tm1 \(http:\/\/127\.0\.0\.1:1\) lost: no heartbeat for \d+ ms/);
  t.true(changes > 0);
  t.deepEqual(r.list().map((x: any) => x.id), ['tm2']);
  t.throws(() => r.heartbeat('tm1', { epoch: 3, running: [] }), { instanceOf: HttpError, message: /register again/ });
  r.stop();
});

test('a TaskManager re-registering from a new address (restarted process) loses what the old process ran', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  const listener = new Listener();
  r.registerJob(JOB, listener);
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 3, tasks: [] });
  r.allocate(id('v', 0));
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:9', slots: 2, epoch: 3, tasks: [] });
  t.is(listener.lost.length, 1);
  t.like(r.get('tm1'), { address: 'http://127.0.0.1:9', freeSlots: 2 });
  r.stop();
});

test('a stall of the leader itself restarts heartbeat deadlines: healthy TaskManagers are not blamed, silent ones still are', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  const listener = new Listener();
  r.registerJob(JOB, listener);
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 3, tasks: [report(id('v', 0), 'RUNNING')] });
  clock.stall(3600); // SIGSTOP for 1.2 x heartbeat.timeout: nobody could be heard meanwhile
  await clock.advance(1);
  t.deepEqual(listener.lost, [], 'not lost for the leader\'s own silence');
  r.heartbeat('tm1', { epoch: 3, running: [] } as any);
  await clock.advance(2000);
  t.deepEqual(listener.lost, []);
  await clock.advance(3000); // now really silent for longer than heartbeat.timeout
  t.is(listener.lost.length, 1);
  r.stop();
});

test('heartbeat ages are monotonic: wall-clock jumps neither lose nor keep a TaskManager', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  const listener = new Listener();
  r.registerJob(JOB, listener);
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 3, tasks: [report(id('v', 0), 'RUNNING')] });
  clock.jumpWallClock(60_000);
  await clock.advance(1000);
  t.deepEqual(listener.lost, [], '+60 s on the wall clock loses nobody');
  clock.jumpWallClock(-3_600_000);
  await clock.advance(4000);
  t.is(listener.lost.length, 1, '-1 h on the wall clock does not keep a silent TaskManager');
  r.stop();
});

test('a TaskManager holding a higher epoch is not registered: 409 with ours, and the owner is asked once for a term above it', async (t) => {
  const clock = new FakeClock();
  const behind: number[] = [];
  const r = new ResourceManager({ epoch: 3, heartbeatTimeoutMs: 3000, clock, onEpochBehind: (e) => behind.push(e) });
  r.start();
  const request = { taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 3, highestEpoch: 7, tasks: [] };
  const err = await t.throwsAsync(r.register(request), { instanceOf: HttpError });
  t.is(err?.status, 409);
  await t.throwsAsync(r.register(request), { instanceOf: HttpError });
  t.deepEqual(behind, [7]);
  t.is(r.overview().taskmanagers, 0);
  await r.register({ ...request, taskManagerId: 'tm2', highestEpoch: 3 });
  t.is(r.overview().taskmanagers, 1, 'a TaskManager at our epoch registers');
  r.stop();
});
