/** The TaskManager's task table (src/taskmanager/task-table.ts): bookkeeping and epoch fencing, no processes. */
import test from 'ava';
import { MAX_EPOCH_STEP, TaskHandle, TaskTable } from '../../src/taskmanager/task-table';
import type { ExecutionId } from '../../src/taskmanager/protocol';

class StubTask implements TaskHandle {
  cancels = 0;
  cancel(): Promise<void> {
    this.cancels++;
    return Promise.resolve();
  }
}

const JOB = 'a'.repeat(32);
const id = (vertexId: string, subtask = 0, attempt = 0, jobId = JOB): ExecutionId => ({ jobId, vertexId, subtask, attempt });

test('an attempt is added DEPLOYING, its reports change by replacement, and a key is never added twice', (t) => {
  const table = new TaskTable<StubTask>();
  const entry = table.add(id('v'), new StubTask(), 1234);
  t.is(entry.key, `${JOB}/v/0/0`);
  t.deepEqual(entry.report, { ...id('v'), state: 'DEPLOYING', startedAt: 1234, pid: null });
  const before = table.unacknowledged()[0];
  t.like(table.update(entry.key, { state: 'RUNNING', pid: 42 }), { state: 'RUNNING', pid: 42 });
  t.is(before.state, 'DEPLOYING', 'copies handed out earlier do not change');
  t.is(table.update('no/such/0/0', { state: 'FAILED' }), null);
  t.throws(() => table.add(id('v'), new StubTask(), 5), { message: /already on this TaskManager/ });
  t.deepEqual(table.runningKeys(), [entry.key]);
});

test('a newer attempt supersedes live older attempts of the same subtask only', (t) => {
  const table = new TaskTable<StubTask>();
  table.add(id('v', 0, 0), new StubTask(), 1);
  table.add(id('v', 1, 0), new StubTask(), 1);
  table.add(id('w', 0, 0), new StubTask(), 1);
  const finished = table.add(id('v', 0, 1), new StubTask(), 1);
  table.update(finished.key, { state: 'FAILED', error: 'x' });
  t.deepEqual(table.supersededBy(id('v', 0, 2)).map((e) => e.key), [`${JOB}/v/0/0`], 'terminal attempts and other subtasks are left alone');
  t.deepEqual(table.supersededBy(id('v', 0, 0)), []);
});

test('a cancel matches live attempts of the job, narrowed by vertex, subtask and attempt', (t) => {
  const table = new TaskTable<StubTask>();
  table.add(id('v', 0, 0), new StubTask(), 1);
  table.add(id('v', 1, 0), new StubTask(), 1);
  table.add(id('w', 0, 3), new StubTask(), 1);
  table.add(id('v', 0, 0, 'b'.repeat(32)), new StubTask(), 1);
  const done = table.add(id('w', 1, 0), new StubTask(), 1);
  table.update(done.key, { state: 'FINISHED' });
  const keys = (f: Parameters<TaskTable['matching']>[0]): string[] => table.matching(f).map((e) => e.key).sort();
  t.deepEqual(keys({ jobId: JOB }), [`${JOB}/v/0/0`, `${JOB}/v/1/0`, `${JOB}/w/0/3`]);
  t.deepEqual(keys({ jobId: JOB, vertexId: 'v', subtask: 1 }), [`${JOB}/v/1/0`]);
  t.deepEqual(keys({ jobId: JOB, vertexId: 'w', attempt: 2 }), []);
  t.deepEqual(table.liveOf([`${JOB}/w/0/3`, done.key, 'unknown/x/0/0']).map((e) => e.key), [`${JOB}/w/0/3`]);
});

test('only terminal outcomes are acknowledged, and acknowledged ones beyond the history are forgotten oldest first', (t) => {
  const table = new TaskTable<StubTask>({ finishedHistory: 2 });
  const keys = [0, 1, 2, 3].map((s) => table.add(id('v', s), new StubTask(), 1).key);
  for (const k of keys.slice(0, 3)) table.update(k, { state: 'FINISHED', endedAt: 2 });
  t.deepEqual(table.unacknowledgedOutcomes(), keys.slice(0, 3));
  table.acknowledge([keys[3], keys[0]]);
  t.false(table.get(keys[3])!.acknowledged, 'a running task cannot be acknowledged');
  t.true(table.get(keys[0])!.acknowledged);
  t.deepEqual(table.unacknowledged().map((r) => r.subtask), [1, 2, 3], 'what a registration carries: unacknowledged outcomes and live tasks');
  table.acknowledge([keys[1], keys[2]]);
  t.is(table.get(keys[0]), undefined, 'the oldest acknowledged outcome is forgotten');
  t.deepEqual(table.reports().map((r) => r.subtask), [1, 2, 3]);
  t.deepEqual(table.unacknowledgedOutcomes(), []);
});

test('commands below the verified epoch are refused; only registration answers raise it, never lowered', (t) => {
  const table = new TaskTable();
  t.is(table.highestEpoch, -1);
  t.is(table.admitCommand(3), 'admitted');
  t.is(table.highestEpoch, -1, 'a command raises nothing');
  table.verifyEpoch(5);
  table.verifyEpoch(4);
  t.is(table.highestEpoch, 5);
  t.is(table.admitCommand(4), 'stale');
  t.is(table.admitCommand(5), 'admitted', 'the verified leader');
  t.is(table.admitCommand(7), 'admitted', 'a newer leader whose registration answer is on its way');
  t.is(table.highestEpoch, 5, 'commands never move the fence');
});

test('an epoch far ahead of the verified one (a forged 2^53-1) is refused and changes nothing', (t) => {
  const table = new TaskTable();
  table.verifyEpoch(2);
  for (const forged of [Number.MAX_SAFE_INTEGER, 2 + MAX_EPOCH_STEP + 1, 2 ** 60, 1.5]) t.is(table.admitCommand(forged), 'ahead', String(forged));
  table.announceEpoch(Number.MAX_SAFE_INTEGER);
  t.is(table.highestEpoch, 2);
  t.is(table.admitCommand(2), 'admitted', 'the verified leader still commands');
  t.is(table.admitCommand(2 + MAX_EPOCH_STEP + 1), 'ahead', 'announced data never widens the window');
});

test('an announced (unverified) newer leader fences off the replaced one until a registration answer verifies an epoch', (t) => {
  const table = new TaskTable();
  table.verifyEpoch(4);
  table.announceEpoch(6);
  t.is(table.admitCommand(4), 'stale', 'the replaced leader');
  t.is(table.highestEpoch, 4, 'announced epochs are not verified ones');
  table.verifyEpoch(5); // the leader at the published address answered 5: the announcement was wrong
  t.is(table.admitCommand(5), 'admitted');
  t.is(table.highestEpoch, 5);
});
