/**
 * A new leader publishes itself before the JobMasters of recovered jobs have started (docs/ARCHITECTURE.md,
 * "Recovery"), so a TaskManager may register and report a running task of a job whose JobMaster is still
 * waiting its turn. The ResourceManager keeps that report (neither cancels the task nor counts it lost)
 * and hands it to the JobMaster when it registers: the task is adopted, never started a second time.
 *
 * Real replica and TaskManager processes. The recovered JobMaster is held "still starting" through the
 * recovery pool's test lever (HA_DISPATCHER_TEST_RECOVERY_HOLD_FILE, src/dispatcher/recovery-pool.ts):
 * without it, whether the report or the JobMaster's start comes first would be a race. The task runs
 * until the test releases it, so nothing here depends on how long a step takes.
 */
import anyTest, { TestFn } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { call, ExecutionCluster, isAlive, shellTask, startCounts, startPids } from '../helpers/execution-cluster';
import { RECOVERY_HOLD_FILE_ENV } from '../../src/dispatcher/recovery-pool';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);

test('a recovered job whose JobMaster is still starting receives its TaskManager\'s report and adopts the running task (no re-run)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-recovery-adopt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hold = path.join(dir, 'hold-recovery');
  const release = path.join(dir, 'release-task');
  const starts = path.join(dir, 'starts.txt');
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1,
    // Per-job recovery lines (job.recovered, an uneventful job.reconciled) are debug.
    settings: ['taskmanager.orphan-timeout=60000', 'log.level=debug'],
    env: (id) => (id.startsWith('r') ? { [RECOVERY_HOLD_FILE_ENV]: hold } : undefined),
  });
  t.context.clusters.push(cluster);
  try {
    const jobId = await cluster.submit({
      name: 'adopt-while-starting',
      vertices: [{ id: 'work', parallelism: 1, task: shellTask(starts, `while [ ! -f '${release}' ]; do sleep 0.1; done`) }],
      restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
    });
    await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks[0].status === 'RUNNING', 'work/0 RUNNING');
    const oldLeader = await cluster.leader();

    fs.writeFileSync(hold, ''); // from now on, a new leader's recovery steps wait
    await oldLeader.signal('SIGKILL');
    const newLeader = await cluster.leader(60_000, [oldLeader]);
    const epoch = (await call('GET', `${newLeader.url}/health`)).body.epoch as number;

    const [tm] = cluster.taskManagers;
    await eventually('the TaskManager registered with the new leader, reporting its running task',
      () => tm.events('taskmanager.registered').some((e) => e.epoch === epoch && e.running >= 1), 60_000, 100);
    // Its JobMaster has not started: the report reached a job that was only expected.
    t.is((await cluster.job(jobId)).state, 'RECONCILING', 'the job waits for its JobMaster');
    t.false(newLeader.events('job.recovered').some((e) => e.jobId === jobId && e.epoch === epoch), 'its recovery step has not run');
    const [pid] = startPids(starts);
    t.true(isAlive(pid), 'the task was not canceled');

    fs.rmSync(hold);
    const reconciled = await eventually('the JobMaster reconciled', () => newLeader.events('job.reconciled').find((e) => e.jobId === jobId) ?? null, 60_000, 100);
    t.like(reconciled, { adopted: 1, redeploy: 0 });

    fs.writeFileSync(release, '');
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED under the new leader', 60_000);
    t.deepEqual([...startCounts(starts).entries()], [['work/0', 1]], 'the subtask started once');
    t.is(job.vertices[0].subtasks[0].attempt, 0);
    t.is(job.restarts, 0);
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});
