/**
 * Priorities, reserved slots, preemption and drain end to end (docs/ARCHITECTURE.md, "Priorities,
 * reserved slots, preemption and drain"): real replica and TaskManager processes on a real 3-server
 * ensemble. Tasks wait for gate files the test creates, so which subtask holds a slot is decided by
 * the test, never by timing; the order of starts is read from the order of lines in a starts file.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { ExecutionCluster, shellTask } from '../helpers/execution-cluster';

type Context = ClusterContext<ExecutionCluster>;
const test = anyTest as TestFn<Context>;

ensembleHooks(test);

function withLogs<T>(t: ExecutionContext<Context>, cluster: ExecutionCluster, fn: () => Promise<T>): Promise<T> {
  return fn().catch((err) => {
    t.log(cluster.logs());
    throw err;
  });
}

/** A task that records its start in `starts`, then waits until `gate` exists. */
const gated = (starts: string, gate: string): ReturnType<typeof shellTask> => shellTask(starts, `while [ ! -f '${gate}' ]; do sleep 0.1; done`);

/** "vertex subtask attempt" of every start, in the order they happened. */
function startLines(starts: string): string[] {
  try {
    return fs.readFileSync(starts, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').slice(0, 3).join(' '));
  } catch {
    return [];
  }
}

const subtasks = (job: any): any[] => job.vertices.flatMap((v: any) => v.subtasks);

test.serial('an urgent job is placed before 20 queued low-priority subtasks; low priorities leave the reserved slot free', async (t) => {
  // One TaskManager with 3 slots, one of them kept for urgent jobs.
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 1, taskManagers: 1, slots: 3,
    settings: ['resourcemanager.reserved-slots=urgent:1'],
  });
  t.context.clusters.push(cluster);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'priority-starts.txt');
    const lowGate = path.join(cluster.dir, 'low-gate');
    const urgentGate = path.join(cluster.dir, 'urgent-gate');

    const rejected = await cluster.rest('POST', '/jobs', { vertices: [{ id: 'v', task: { type: 'sleep', ms: 1 } }], priority: 'highest' });
    t.is(rejected.status, 400);
    t.regex(rejected.body.errors.join(' '), /priority must be one of the priority classes "low" \(0\), "normal" \(50\), "urgent" \(100\)/);

    const low = await cluster.submit({ name: 'low', priority: 'low', vertices: [{ id: 'low', parallelism: 22, task: gated(starts, lowGate) }], restartStrategy: { type: 'none' } });
    await cluster.waitForJob(low, (j) => subtasks(j).filter((s) => s.status === 'RUNNING').length === 2, 'two low subtasks running');
    const tms = await cluster.waitForTaskManagers(1);
    t.is(tms[0].freeSlots, 1, 'the reserved slot stays free while 20 low subtasks wait');
    const lowJob = await cluster.job(low);
    t.is(lowJob.priority, 0);
    t.is(lowJob['priority-class'], 'low');
    t.is(subtasks(lowJob).filter((s) => s.status === 'CREATED').length, 20);

    const urgent = await cluster.submit({ name: 'urgent', priority: 'urgent', vertices: [{ id: 'urgent', parallelism: 2, task: gated(starts, urgentGate) }], restartStrategy: { type: 'none' } });
    // The reserved slot takes the first urgent subtask at once; the second waits ahead of every low one.
    await cluster.waitForJob(urgent, (j) => subtasks(j)[0].status === 'RUNNING', 'the first urgent subtask running in the reserved slot');
    fs.writeFileSync(lowGate, '');
    await cluster.waitForJob(urgent, (j) => subtasks(j).every((s) => s.status === 'RUNNING'), 'both urgent subtasks running');
    fs.writeFileSync(urgentGate, '');
    await cluster.waitForJob(urgent, (j) => j.state === 'FINISHED', 'urgent FINISHED');
    await cluster.waitForJob(low, (j) => j.state === 'FINISHED', 'low FINISHED', 120_000);

    const order = startLines(starts);
    const secondUrgent = order.indexOf('urgent 1 0');
    const firstQueuedLow = order.findIndex((l) => /^low ([2-9]|1\d|2\d) /.test(l));
    t.true(secondUrgent >= 0 && firstQueuedLow > secondUrgent, order.join(', '));
    const overview = (await cluster.rest('GET', '/jobs/overview')).body.jobs;
    t.deepEqual(overview.map((j: any) => [j.name, j.priority]).sort(), [['low', 0], ['urgent', 100]]);
  });
});

let elastic: Promise<ExecutionCluster> | null = null;

/** Two replicas (a failover during a drain), two TaskManagers of 2 slots, preemption on. */
function preemptionCluster(t: ExecutionContext<Context>): Promise<ExecutionCluster> {
  elastic ??= ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 2, slots: 2,
    settings: ['scheduler.preemption.enabled=true', 'taskmanager.orphan-timeout=60000'],
  }).then((c) => (t.context.clusters.push(c), c));
  return elastic;
}

test.serial('an urgent job preempts a low one; the preempted subtask runs again as a new attempt without touching its restart budget', async (t) => {
  const cluster = await preemptionCluster(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'preempt-starts.txt');
    const lowGate = path.join(cluster.dir, 'preempt-low-gate');
    // No restarts allowed: a preemption counted as a failure would fail the job.
    const low = await cluster.submit({ name: 'low', priority: 0, vertices: [{ id: 'low', parallelism: 4, task: gated(starts, lowGate) }], restartStrategy: { type: 'fixed-delay', attempts: 0, delayMs: 0 } });
    await cluster.waitForJob(low, (j) => subtasks(j).every((s) => s.status === 'RUNNING'), 'all four low subtasks running (every slot taken)');

    const urgent = await cluster.submit({ name: 'urgent', priority: 'urgent', vertices: [{ id: 'urgent', parallelism: 1, task: shellTask(starts, 'echo urgent done') }], restartStrategy: { type: 'none' } });
    await cluster.waitForJob(urgent, (j) => j.state === 'FINISHED', 'urgent FINISHED');
    const preempted = await cluster.waitForJob(low, (j) => subtasks(j).some((s) => s.attempt === 1 && s.status === 'RUNNING'), 'the preempted low subtask running again as attempt 1');
    t.is(preempted.state, 'RUNNING');
    t.is(preempted.restarts, 0);
    const again = subtasks(preempted).find((s) => s.attempt === 1);

    const leader = await cluster.leader();
    const events = leader.events('task.preempted');
    t.true(events.some((e: any) => e.jobId === low && e.preemptedBy === urgent && e.subtask === again.subtask && e.attempt === 0), JSON.stringify(events));

    fs.writeFileSync(lowGate, '');
    const done = await cluster.waitForJob(low, (j) => j.state === 'FINISHED', 'low FINISHED');
    t.is(done.restarts, 0);
    t.deepEqual(subtasks(done).map((s) => s.attempt).sort(), [0, 0, 0, 1]);
    t.true(startLines(starts).includes(`low ${again.subtask} 1`));
    t.deepEqual((await cluster.rest('GET', `/jobs/${low}/exceptions`)).body.exceptionHistory.entries, [], 'no failure recorded');
  });
});

test.serial('a drained TaskManager finishes its tasks, gets nothing new, stays draining across a failover, and is released', async (t) => {
  const cluster = await preemptionCluster(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'drain-starts.txt');
    const gate = path.join(cluster.dir, 'drain-gate');
    const busy = await cluster.submit({ name: 'busy', vertices: [{ id: 'busy', parallelism: 2, task: gated(starts, gate) }], restartStrategy: { type: 'none' } });
    const running = await cluster.waitForJob(busy, (j) => subtasks(j).every((s) => s.status === 'RUNNING'), 'both busy subtasks running');
    t.deepEqual(subtasks(running).map((s) => s.taskmanager).sort(), ['tm1', 'tm2'], 'spread: one on each TaskManager');

    const bad = await cluster.rest('POST', '/taskmanagers/tm1/drain', { deadline: 5 });
    t.is(bad.status, 400);
    t.is((await cluster.rest('POST', '/taskmanagers/nope/drain', {})).status, 404);
    const drained = await cluster.rest('POST', '/taskmanagers/tm1/drain', {});
    t.is(drained.status, 202, drained.text);
    t.like(drained.body, { taskmanager: 'tm1', blocked: true, 'deadline-at': null });

    const blockedViews = async (): Promise<void> => {
      await eventually('tm1 shown blocked', async () => {
        const tms = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers ?? [];
        return tms.find((tm: any) => tm.id === 'tm1')?.blocked === true && tms.find((tm: any) => tm.id === 'tm2')?.blocked === false;
      }, 60_000, 100);
      const overview = (await cluster.rest('GET', '/overview')).body;
      t.is(overview['taskmanagers-blocked'], 1);
      t.is(overview['slots-free-and-blocked'], 1);
    };
    await blockedViews();

    const quick = async (name: string): Promise<void> => {
      const id = await cluster.submit({ name, vertices: [{ id: name, parallelism: 2, task: shellTask(starts) }], restartStrategy: { type: 'none' } });
      // tm2 has one free slot: the two subtasks run one after the other there, never on tm1's free slot.
      const job = await cluster.waitForJob(id, (j) => j.state === 'FINISHED', `${name} FINISHED`);
      t.deepEqual(subtasks(job).map((s) => s.taskmanager), ['tm2', 'tm2'], name);
    };
    await quick('before-failover');

    const oldLeader = await cluster.leader();
    oldLeader.kill('SIGKILL');
    await cluster.leader(60_000, [oldLeader]);
    await blockedViews();
    await quick('after-failover');

    fs.writeFileSync(gate, '');
    const finished = await cluster.waitForJob(busy, (j) => j.state === 'FINISHED', 'busy FINISHED');
    t.deepEqual(subtasks(finished).map((s) => s.attempt), [0, 0], 'its tasks finished where they ran');
    await eventually('tm1 released (unregistered)', async () => {
      const tms = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers ?? [];
      return tms.length === 1 && tms[0].id === 'tm2';
    }, 60_000, 100);
    const tm1 = cluster.taskManagers.find((p) => p.id === 'tm1')!;
    await tm1.waitForExit(30_000);
    t.false(tm1.running, 'the released TaskManager stopped');
    t.true(tm1.events('taskmanager.released').length === 1);
    t.is((await cluster.rest('GET', '/overview')).body['taskmanagers-blocked'], 0);
  });
});
