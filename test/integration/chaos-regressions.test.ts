/**
 * Regressions for what the chaos runs found, reproduced deterministically on real processes.
 *
 * pause-taskmanager (seed 2026): a deploy sent to a TaskManager frozen by SIGSTOP waited in its socket;
 * the leader's call timed out, the subtask ran elsewhere and the job FINISHED; when the TaskManager
 * resumed it read the old deploy (same epoch) and started work of a job that already had its result.
 *
 * pause-leader (seed 2028): a TaskManager's heartbeat or report call to the frozen leader held its
 * contact queue for the call's whole timeout (5 s, 15 s for reports), so it re-registered with the new
 * leader after that leader's reconcile window: adoptable subtasks ran a second time.
 *
 * A TaskManager restarted at once under the same id and address (a fixed rpc-port, as in docker/
 * with a restart policy) looked to the leader like the old process re-registering: the tasks the old
 * process ran stayed RUNNING in their JobMasters forever, since the new one kept heartbeating.
 */
import anyTest, { TestFn } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTaskFile } from '../../src/chaos/cluster';
import { taskScript } from '../../src/chaos/workload';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { call, ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';
import { freePorts } from '../../src/util/ports';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);

test('a deploy queued at a frozen TaskManager is not executed when it resumes after the job finished elsewhere', async (t) => {
  // Long heartbeat timeout: the frozen TaskManager stays registered, so the deploy goes to it and times out.
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 1, taskManagers: 2, slots: 1, settings: ['heartbeat.timeout=30000'],
  });
  t.context.clusters.push(cluster);
  try {
    const tms = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string; registeredAt: number }>;
    // Spread allocation picks the earliest registered of two idle TaskManagers: freeze that one.
    const first = [...tms].sort((a, b) => a.registeredAt - b.registeredAt)[0].id;
    const frozen = cluster.taskManagers.find((p) => p.id === first)!;
    const taskFile = path.join(cluster.dir, 'regression-tasks.txt');
    fs.writeFileSync(taskFile, '');
    frozen.child!.kill('SIGSTOP');
    const jobId = await cluster.submit({
      name: 'stale-deploy', vertices: [{ id: 'work', parallelism: 1, task: { type: 'command', argv: ['sh', '-c', taskScript(taskFile, '0.1')] } }],
      restartStrategy: { type: 'fixed-delay', attempts: 5, delayMs: 100 },
    });
    // The deploy to the frozen one times out (5 s), attempt 1 runs on the other and the job finishes.
    const done = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED on the other TaskManager', 60_000);
    t.is(done.vertices[0].subtasks[0].attempt, 1);
    frozen.child!.kill('SIGCONT');
    await eventually('the resumed TaskManager noticed its stall', () => frozen.events('taskmanager.stalled').length > 0, 15_000, 100);
    // The deploy queued while it stood still is handled once it resumes: wait for its refusal, not a fixed time.
    await eventually('the queued deploy reached the resumed TaskManager and was refused',
      () => frozen.events('taskmanager.deploy.refused').some((e) => e.reason === 'stalled'), 15_000, 100);
    const starts = readTaskFile(taskFile).filter((e) => e.phase === 'start');
    t.deepEqual(starts.map((e) => `${e.vertexId}[${e.subtask}] attempt ${e.attempt}`), ['work[0] attempt 1'], 'nothing ran after the job ended');
    t.false(frozen.events('task.status').some((e) => e.jobId === jobId), 'the stale deploy was refused');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});

test('a TaskManager whose calls hang on a frozen leader re-registers with the new leader within its reconcile window', async (t) => {
  // Reconcile window (1.5 s) well under the RPC timeouts (5 s heartbeat, 15 s report) that used to hold the TaskManager.
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1, sessionTimeoutMs: 2000,
    // log.level=debug: the per-job recovery lines (job.reconciled) asserted below are debug.
    settings: ['jobmanager.reconcile-timeout=1500', 'taskmanager.orphan-timeout=60000', 'heartbeat.timeout=30000', 'log.level=debug'],
  });
  t.context.clusters.push(cluster);
  try {
    const starts = path.join(cluster.dir, 'pause-starts.txt');
    const jobId = await cluster.submit({
      name: 'frozen-leader', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 8') }],
      restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
    });
    await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'both subtasks RUNNING');
    const frozen = await cluster.leader();
    const frozenEpoch = (await call('GET', `${frozen.url}/health`)).body.epoch as number;
    t.teardown(() => { frozen.child!.kill('SIGCONT'); });
    frozen.child!.kill('SIGSTOP');
    const next = await cluster.leader(30_000, [frozen]);
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED under the new leader', 60_000);
    t.deepEqual([...startCounts(starts).entries()].sort(), [['work/0', 1], ['work/1', 1]], 'each subtask started once');
    t.true(job.vertices[0].subtasks.every((s: any) => s.attempt === 0));
    t.like(next.events('job.reconciled').find((e) => e.jobId === jobId), { adopted: 2, redeploy: 0 });
    const tm = cluster.taskManagers[0];
    t.true(tm.events('taskmanager.registered').some((e) => e.epoch > frozenEpoch && e.running === 2), 'the TaskManager re-registered reporting both tasks');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});

test('a TaskManager restarted at once with the same id and address is a new process: its lost tasks run again', async (t) => {
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 1, taskManagers: 0, settings: ['heartbeat.timeout=30000'],
  });
  t.context.clusters.push(cluster);
  try {
    const [port] = await freePorts(1);
    const tm = cluster.startTaskManager('tm-fixed', [`taskmanager.rpc-port=${port}`]);
    await cluster.waitForTaskManagers(1, 60_000);
    const starts = path.join(cluster.dir, 'restart-starts.txt');
    const jobId = await cluster.submit({
      name: 'tm-restart', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 3') }],
      restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
    });
    await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'both subtasks RUNNING');
    await tm.signal('SIGKILL');
    tm.start(); // same id, same port: well within heartbeat.timeout
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED after the TaskManager restart', 60_000);
    t.deepEqual(job.vertices[0].subtasks.map((s: any) => s.attempt), [1, 1], 'both subtasks ran again as attempt 1');
    t.deepEqual([...startCounts(starts).entries()].sort(), [['work/0', 2], ['work/1', 2]]);
    const exceptions = (await cluster.rest('GET', `/jobs/${jobId}/exceptions`)).body;
    t.regex(JSON.stringify(exceptions), /tm-fixed/, 'the exception history names the restarted TaskManager');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});
