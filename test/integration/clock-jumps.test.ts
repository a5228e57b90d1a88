/**
 * Wall-clock jumps (±1 h) on the leader and on a TaskManager change nothing: both run under Debian's
 * libfaketime (LD_PRELOAD, the shift read from a file at run time, monotonic time left alone), so only
 * their wall clock moves. Every duration is measured on the monotonic clock: no TaskManager is lost,
 * no job fails, and a TaskManager that really dies is still declared lost. Timing is never asserted.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

/** libfaketime's environment for a process whose wall-clock shift is read from `file` (re-read every second). */
function faketimeEnv(file: string): Record<string, string> {
  return { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

const allRunning = (j: any): boolean => j.vertices.every((v: any) => v.subtasks.every((s: any) => s.status === 'RUNNING'));

test.serial('±1 h wall-clock jumps on the leader and a TaskManager: nothing lost, jobs finish; a killed TaskManager is still declared lost', async (t: ExecutionContext<ClusterContext<ExecutionCluster>>) => {
  t.true(fs.existsSync(LIBFAKETIME), `libfaketime at ${LIBFAKETIME} (Debian package faketime; .ci/setup installs it)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-faketime-'));
  const shift = { r1: path.join(dir, 'r1.faketime'), tm1: path.join(dir, 'tm1.faketime') };
  for (const file of Object.values(shift)) fs.writeFileSync(file, '+0\n');
  const jump = (offset: string): void => { for (const file of Object.values(shift)) fs.writeFileSync(file, `${offset}\n`); };
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 1, taskManagers: 2, sessionTimeoutMs: 6000,
    settings: ['heartbeat.timeout=3000', 'taskmanager.orphan-timeout=60000'],
    env: (id) => (id === 'r1' || id === 'tm1' ? faketimeEnv(shift[id]) : undefined),
  });
  t.context.clusters.push(cluster);
  const [leader] = cluster.replicas;
  const [, tm2] = cluster.taskManagers;
  try {
    for (const offset of ['+1h', '-1h']) {
      const starts = path.join(cluster.dir, `jump${offset}-starts.txt`);
      const jobId = await cluster.submit({ name: `jump${offset}`, vertices: [{ id: 'work', parallelism: 4, task: shellTask(starts, 'sleep 5') }] });
      await cluster.waitForJob(jobId, allRunning, 'the job RUNNING', 60_000);
      jump(offset);
      const job = await cluster.waitForJob(jobId, (j) => ['FINISHED', 'FAILED', 'CANCELED'].includes(j.state), `the job ended after the ${offset} jump`, 90_000);
      t.is(job.state, 'FINISHED', `the job finished across the ${offset} jump`);
      t.true(job.vertices[0].subtasks.every((s: any) => s.attempt === 0), `no task ran again after the ${offset} jump`);
      t.deepEqual([...startCounts(starts).values()], [1, 1, 1, 1]);
      t.deepEqual(leader.events('taskmanager.lost'), [], `no TaskManager declared lost after the ${offset} jump`);
      t.is((await cluster.waitForTaskManagers(2, 30_000)).length, 2);
    }
    // The wall clock still an hour behind on the leader: a TaskManager that dies is still noticed.
    await tm2.signal('SIGKILL');
    const lost = await eventually('tm2 declared lost', async () => leader.events('taskmanager.lost').find((e) => e.taskManagerId === 'tm2') ?? null, 60_000, 200);
    t.truthy(lost);
    t.deepEqual(leader.events('taskmanager.lost').map((e) => e.taskManagerId), ['tm2'], 'only the killed TaskManager');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
