/**
 * Execution end to end: real replica and TaskManager processes on a real 3-server ensemble.
 * Two clusters share the ensemble; the tests on each cluster run in order (test.serial), so the
 * 2-core machine runs at most one job at a time.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { call, ExecutionCluster, isAlive, shellTask, startCounts, startPids } from '../helpers/execution-cluster';

type Context = ClusterContext<ExecutionCluster>;
const test = anyTest as TestFn<Context>;

ensembleHooks(test);

let single: Promise<ExecutionCluster> | null = null;
let failover: Promise<ExecutionCluster> | null = null;

/** Cluster A: 2 replicas, 2 TaskManagers (4 slots each); no leader changes, so a short orphan timeout. */
function clusterA(t: ExecutionContext<Context>): Promise<ExecutionCluster> {
  single ??= ExecutionCluster.start({ connect: t.context.ensemble.connectString, replicas: 2, settings: ['taskmanager.orphan-timeout=5000'] })
    .then((c) => (t.context.clusters.push(c), c));
  return single;
}

/** Cluster B: 3 replicas (two leader kills), 2 TaskManagers. */
function clusterB(t: ExecutionContext<Context>): Promise<ExecutionCluster> {
  failover ??= ExecutionCluster.start({ connect: t.context.ensemble.connectString, replicas: 3, settings: ['taskmanager.orphan-timeout=60000', 'log.level=debug'] }) // per-job recovery lines are debug
    .then((c) => (t.context.clusters.push(c), c));
  return failover;
}

function withLogs<T>(t: ExecutionContext<Context>, cluster: ExecutionCluster, fn: () => Promise<T>): Promise<T> {
  return fn().catch((err) => {
    t.log(cluster.logs());
    throw err;
  });
}

const subtaskStates = (job: any): string[] => job.vertices.flatMap((v: any) => v.subtasks.map((s: any) => s.status));

test.serial('a 4 → 2 → 1 command job finishes; every subtask ran once; outputs, logs, TaskManagers and slots through REST', async (t) => {
  const cluster = await clusterA(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'happy-starts.txt');
    const jobId = await cluster.submit({
      name: 'three-stages',
      vertices: [
        { id: 'extract', parallelism: 4, task: shellTask(starts, 'echo "extracted $SUBTASK_INDEX of $PARALLELISM for $JOB_ID"') },
        { id: 'transform', parallelism: 2, inputs: ['extract'], task: shellTask(starts, 'echo "transformed $SUBTASK_INDEX"') },
        { id: 'load', parallelism: 1, inputs: ['transform'], task: shellTask(starts, 'echo loaded; echo to-stderr >&2') },
      ],
      restartStrategy: { type: 'none' },
    });
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED');

    const counts = startCounts(starts);
    t.deepEqual([...counts.keys()].sort(), ['extract/0', 'extract/1', 'extract/2', 'extract/3', 'load/0', 'transform/0', 'transform/1']);
    t.true([...counts.values()].every((n) => n === 1), JSON.stringify([...counts]));

    t.deepEqual(job.vertices.map((v: any) => [v.name, v.status, v.subtasks.length]), [['extract', 'FINISHED', 4], ['transform', 'FINISHED', 2], ['load', 'FINISHED', 1]]);
    for (const s of job.vertices.flatMap((v: any) => v.subtasks)) {
      t.is(s.attempt, 0);
      t.regex(String(s.taskmanager), /^tm[12]$/);
      t.true(s['end-time'] >= s['start-time'] && s['start-time'] > 0);
    }
    // Spread allocation: the four extract subtasks landed on both TaskManagers.
    t.is(new Set(job.vertices[0].subtasks.map((s: any) => s.taskmanager)).size, 2);

    const extractLog = await cluster.rest('GET', job.vertices[0].subtasks[2].log);
    t.is(extractLog.status, 200);
    t.true(extractLog.text.includes(`extracted 2 of 4 for ${jobId}`), extractLog.text);
    const loadLog = await cluster.rest('GET', `/jobs/${jobId}/vertices/load/subtasks/0/attempts/0/log`);
    t.regex(loadLog.text, /loaded[\s\S]*to-stderr/);
    t.is((await cluster.rest('GET', `/jobs/${jobId}/vertices/load/subtasks/0/attempts/7/log`)).status, 404);

    const tms = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers;
    t.deepEqual(tms.map((tm: any) => [tm.id, tm.slotsNumber, tm.freeSlots]), [['tm1', 4, 4], ['tm2', 4, 4]]);
    const tm1 = await cluster.rest('GET', '/taskmanagers/tm1');
    t.is(tm1.status, 200);
    t.regex(tm1.body.address, /^http:\/\/127\.0\.0\.1:\d+$/);
    t.is((await cluster.rest('GET', '/taskmanagers/nope')).status, 404);
    const overview = (await cluster.rest('GET', '/overview')).body;
    t.like(overview, { taskmanagers: 2, 'slots-total': 8, 'slots-available': 8, 'jobs-finished': 1 });

    // Structured events: the leader logged registrations and status changes with replicaId/epoch/jobId.
    const leader = await cluster.leader();
    const registered = leader.events('taskmanager.registered');
    t.true(registered.length >= 2 && registered.every((e) => e.replicaId === leader.id && typeof e.epoch === 'number'));
    const statuses = leader.events('job.status').filter((e) => e.jobId === jobId);
    t.true(statuses.some((e) => e.status === 'RUNNING') && statuses.some((e) => e.status === 'FINISHED'));
    t.true(leader.events('task.status').some((e) => e.jobId === jobId && e.status === 'FINISHED' && e.replicaId === leader.id && typeof e.epoch === 'number'));
  });
});

test.serial('restart strategies on real TaskManagers: a flaky task recovers with attempt 1; exhausted attempts end FAILED with the cause', async (t) => {
  const cluster = await clusterA(t);
  await withLogs(t, cluster, async () => {
    const flaky = await cluster.submit({
      name: 'flaky', restartStrategy: { type: 'fixed-delay', attempts: 2, delayMs: 100 },
      vertices: [{ id: 'once', parallelism: 1, task: { type: 'fail', afterMs: 50, failAttempts: 1, message: 'first attempt breaks' } }],
    });
    const doomed = await cluster.submit({
      name: 'doomed', restartStrategy: { type: 'exponential-delay', initialBackoffMs: 50, maxBackoffMs: 100, backoffMultiplier: 2, attempts: 2 },
      vertices: [{ id: 'always', parallelism: 1, task: { type: 'fail', afterMs: 10, message: 'disk on fire' } }],
    });
    const ok = await cluster.waitForJob(flaky, (j) => j.state === 'FINISHED', 'flaky job FINISHED');
    t.like(ok.vertices[0].subtasks[0], { status: 'FINISHED', attempt: 1 });
    t.is(ok.restarts, 1);
    const failed = await cluster.waitForJob(doomed, (j) => j.state === 'FAILED', 'doomed job FAILED');
    t.is(failed.restarts, 2);
    t.is(failed.vertices[0].subtasks[0].attempt, 2);
    const result = (await cluster.rest('GET', `/jobs/${doomed}/execution-result`)).body;
    t.is(result['job-execution-result']['application-status'], 'FAILED');
    t.regex(result['job-execution-result']['failure-cause'].message, /disk on fire.*exponential-delay.*2 restart attempts/);
    const history = (await cluster.rest('GET', `/jobs/${doomed}/exceptions`)).body.exceptionHistory.entries;
    t.is(history.length, 3);
    t.true(history.every((e: any) => e.exceptionName === 'TaskFailure' && /disk on fire/.test(e.stacktrace)));
  });
});

test.serial('cancel during RUNNING stops every task process and the job ends CANCELED', async (t) => {
  const cluster = await clusterA(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'cancel-starts.txt');
    const jobId = await cluster.submit({
      name: 'to-cancel',
      vertices: [
        { id: 'work', parallelism: 4, task: shellTask(starts, 'exec sleep 120') },
        { id: 'after', parallelism: 1, inputs: ['work'], task: shellTask(starts) },
      ],
    });
    await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'all work subtasks RUNNING');
    const pids = await eventually('four task pids', () => (startPids(starts).length === 4 ? startPids(starts) : null));
    t.true(pids.every(isAlive));
    t.is((await cluster.rest('PATCH', `/jobs/${jobId}?mode=cancel`)).status, 202);
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'CANCELED', 'job CANCELED', 30000);
    t.deepEqual(pids.filter(isAlive), []);
    t.true(subtaskStates(job).filter((s) => s !== 'CREATED').every((s) => s === 'CANCELED'), JSON.stringify(subtaskStates(job)));
    t.false(startCounts(starts).has('after/0'));
    const overview = await eventually('slots free again', async () => {
      const o = (await cluster.rest('GET', '/overview')).body;
      return o['slots-available'] === 8 ? o : null;
    });
    t.is(overview['jobs-cancelled'], 1);
  });
});

test.serial('SIGKILL of a TaskManager mid-job: its tasks fail over to the other one, the job finishes, exceptions name the lost TaskManager', async (t) => {
  const cluster = await clusterA(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'tmkill-starts.txt');
    const jobId = await cluster.submit({
      name: 'tm-loss',
      vertices: [
        { id: 'slow', parallelism: 4, task: shellTask(starts, 'sleep 6') },
        { id: 'sink', parallelism: 1, inputs: ['slow'], task: shellTask(starts) },
      ],
      restartStrategy: { type: 'fixed-delay', attempts: 2, delayMs: 100 },
    });
    const running = await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'slow subtasks RUNNING');
    const victim = cluster.taskManagers.find((tm) => tm.id === 'tm1')!;
    const onVictim = running.vertices[0].subtasks.filter((s: any) => s.taskmanager === 'tm1').map((s: any) => s.subtask);
    t.true(onVictim.length > 0);
    const victimPids = await eventually('pids of the tasks on tm1', () => {
      const lines = fs.existsSync(starts) ? fs.readFileSync(starts, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')) : [];
      const pids = lines.filter(([v, sub]) => v === 'slow' && onVictim.includes(Number(sub))).map((l) => Number(l[3]));
      return pids.length === onVictim.length ? pids : null;
    });
    await victim.signal('SIGKILL');
    // The reaper stops what the killed TaskManager ran, long before the tasks' own 6 s are up.
    await eventually('the killed TaskManager\'s task processes are gone', () => victimPids.every((pid) => !isAlive(pid)), 3500);

    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED after the TaskManager loss', 60000);
    t.is(job.restarts, 1); // one lost TaskManager = one failure event, whatever it ran
    for (const s of job.vertices[0].subtasks) {
      t.is(s.taskmanager, 'tm2');
      t.is(s.attempt, onVictim.includes(s.subtask) ? 1 : 0);
    }
    const exceptions = (await cluster.rest('GET', `/jobs/${jobId}/exceptions`)).body;
    const entries = exceptions.exceptionHistory.entries;
    t.true(entries.some((e: any) => e.exceptionName === 'TaskManagerLost' && /tm1/.test(e.stacktrace) && /tm1/.test(e.location)), JSON.stringify(entries));
    t.regex(String(exceptions['root-exception']), /TaskManager tm1/);

    const leader = await cluster.leader();
    const lost = leader.events('taskmanager.lost');
    t.true(lost.some((e) => e.taskManagerId === 'tm1' && e.replicaId === leader.id && typeof e.epoch === 'number'));
    const tms = await cluster.waitForTaskManagers(1);
    t.is(tms[0].id, 'tm2');
  });
});

test.serial('a TaskManager that reaches no leader for taskmanager.orphan-timeout stops its tasks', async (t) => {
  const cluster = await clusterA(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'orphan-starts.txt');
    const jobId = await cluster.submit({ name: 'orphaned', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'exec sleep 120') }] });
    await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'work subtasks RUNNING');
    const pids = await eventually('two task pids', () => (startPids(starts).length === 2 ? startPids(starts) : null));
    await Promise.all(cluster.replicas.map((r) => r.signal('SIGKILL')));
    await new Promise((r) => setTimeout(r, 2000));
    t.true(pids.every(isAlive), 'a leader change alone (or a short gap) never stops tasks');
    await eventually('the orphaned tasks are stopped', () => pids.every((pid) => !isAlive(pid)), 15000);
    const tm = cluster.taskManagers.find((p) => p.id === 'tm2')!;
    t.true(tm.events('taskmanager.orphaned').length > 0);
  });
});

test.serial('SIGKILL of the leader mid-job: the new leader adopts the running subtasks, finished vertices are not re-run', async (t) => {
  const cluster = await clusterB(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'failover-starts.txt');
    const jobId = await cluster.submit({
      name: 'leader-loss',
      vertices: [
        { id: 'first', parallelism: 2, task: shellTask(starts, 'echo first done') },
        // long/0 finishes while no leader is reachable: its outcome must reach the next leader on re-registration.
        { id: 'long', parallelism: 3, inputs: ['first'], task: shellTask(starts, 'if [ "$SUBTASK_INDEX" = 0 ]; then sleep 1; else sleep 9; fi') },
        { id: 'last', parallelism: 1, inputs: ['long'], task: shellTask(starts) },
      ],
      restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 100 },
    });
    await cluster.waitForJob(jobId, (j) => j.vertices[1].subtasks.every((s: any) => s.status === 'RUNNING'), 'long subtasks RUNNING');
    const oldLeader = await cluster.leader();
    const oldEpoch = (await call('GET', `${oldLeader.url}/health`)).body.epoch as number;
    await oldLeader.signal('SIGKILL');

    const newLeader = await cluster.leader(30000, [oldLeader]);
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED under the new leader', 60000);
    const counts = startCounts(starts);
    t.deepEqual([...counts.entries()].sort(), [['first/0', 1], ['first/1', 1], ['last/0', 1], ['long/0', 1], ['long/1', 1], ['long/2', 1]]);
    t.true(job.vertices.flatMap((v: any) => v.subtasks).every((s: any) => s.attempt === 0));
    t.is(job.restarts, 0);

    const statuses = newLeader.events('job.status').filter((e) => e.jobId === jobId).map((e) => e.status);
    t.deepEqual(statuses.slice(0, 2), ['RECONCILING', 'RUNNING']);
    const reconciled = newLeader.events('job.reconciled').find((e) => e.jobId === jobId);
    t.like(reconciled, { adopted: 2, redeploy: 0 });
    const tmReports = cluster.taskManagers.flatMap((p) => p.events('taskmanager.registered')).filter((e) => e.epoch !== oldEpoch);
    t.true(tmReports.some((e) => e.reported >= 1), 'TaskManagers re-registered reporting their tasks');
    t.true(newLeader.events('job.status').every((e) => e.epoch > oldEpoch));
  });
});

test.serial('a TaskManager rejects deploy and cancel carrying a stale leader epoch (409), and accepts the current one', async (t) => {
  const cluster = await clusterB(t);
  await withLogs(t, cluster, async () => {
    const leader = await cluster.leader();
    const epoch = (await call('GET', `${leader.url}/health`)).body.epoch as number;
    t.true(epoch > 0, 'the previous test changed the leader, so a lower epoch exists');
    const tms = await cluster.waitForTaskManagers(2);
    const address = tms[0].address as string;
    const starts = path.join(cluster.dir, 'stale-starts.txt');
    const jobId = 'f'.repeat(32);
    const deploy = { jobId, vertexId: 'v', subtask: 0, attempt: 0, parallelism: 1, task: shellTask(starts, 'exec sleep 30') };

    const staleDeploy = await call('POST', `${address}/deploy`, { ...deploy, epoch: epoch - 1 });
    t.is(staleDeploy.status, 409);
    t.regex(staleDeploy.body.errors[0], new RegExp(`stale leader epoch ${epoch - 1}.*${epoch}`));
    const staleCancel = await call('POST', `${address}/cancel`, { epoch: epoch - 1, jobId });
    t.is(staleCancel.status, 409);
    t.false(fs.existsSync(starts), 'nothing ran');

    // The current epoch goes through; the leader owns no such job and has the TaskManager stop it again.
    const ok = await call('POST', `${address}/deploy`, { ...deploy, epoch });
    t.is(ok.status, 200);
    const stray = await eventually('the stray task stopped by the leader (no JobMaster owns it)', async () => {
      const tasks = (await call('GET', `${address}/tasks`)).body.tasks as any[];
      return tasks.find((x) => x.jobId === jobId && x.state === 'CANCELED');
    }, 15000);
    t.is(stray.attempt, 0);
    t.true(startPids(starts).every((pid) => !isAlive(pid)));
  });
});

test.serial('cancel after a leader failover stops every adopted task process and the job ends CANCELED', async (t) => {
  const cluster = await clusterB(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'cancel-failover-starts.txt');
    const jobId = await cluster.submit({ name: 'cancel-after-failover', vertices: [{ id: 'work', parallelism: 3, task: shellTask(starts, 'exec sleep 120') }] });
    await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'work subtasks RUNNING');
    const pids = await eventually('three task pids', () => (startPids(starts).length === 3 ? startPids(starts) : null));
    const oldLeader = await cluster.leader();
    await oldLeader.signal('SIGKILL');
    await cluster.leader(30000, [oldLeader]);
    await cluster.waitForJob(jobId, (j) => j.state === 'RUNNING' && j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING' && s.attempt === 0),
      'job RUNNING with every subtask adopted (attempt 0)', 30000);
    t.true(pids.every(isAlive));
    t.is((await cluster.rest('PATCH', `/jobs/${jobId}?mode=cancel`)).status, 202);
    await cluster.waitForJob(jobId, (j) => j.state === 'CANCELED', 'job CANCELED', 30000);
    t.deepEqual(pids.filter(isAlive), []);
    t.true([...startCounts(starts).values()].every((n) => n === 1));
  });
});

test.serial('SIGTERM of the leader mid-job (graceful stop): the new leader publishes, adopts the running subtasks of every recovered job, and they finish without a second start', async (t) => {
  const cluster = await clusterB(t);
  await withLogs(t, cluster, async () => {
    // Earlier tests killed leaders: bring every replica back, so one can take over from the next.
    for (const r of cluster.replicas) if (!r.running) r.start();
    await cluster.waitForStandbys(60000);
    const starts = path.join(cluster.dir, 'sigterm-starts.txt');
    const jobIds: string[] = [];
    for (const name of ['graceful-a', 'graceful-b']) {
      jobIds.push(await cluster.submit({
        name, vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 6') }, { id: 'last', parallelism: 1, inputs: ['work'], task: shellTask(starts) }],
      }));
    }
    for (const jobId of jobIds) await cluster.waitForJob(jobId, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'work subtasks RUNNING');
    const oldLeader = await cluster.leader();
    await oldLeader.signal('SIGTERM');
    // Its log reaches the file through a pipe: it may land just after the exit.
    await eventually('the old leader logged suspending its JobMasters', () => oldLeader.events('dispatcher.suspended').length > 0);

    const newLeader = await cluster.leader(30000, [oldLeader]);
    for (const jobId of jobIds) {
      const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED under the new leader', 60000);
      t.true(job.vertices.flatMap((v: any) => v.subtasks).every((s: any) => s.attempt === 0), `${jobId}: every subtask at attempt 0`);
    }
    const counts = startCounts(starts);
    t.is(counts.size, 3);
    t.true([...counts.values()].every((n) => n === 2), `each subtask of both jobs started once: ${JSON.stringify([...counts.entries()])}`);
    // The new leader may have led an earlier term of this cluster: its line for this term only.
    const epoch = (await call('GET', `${newLeader.url}/health`)).body.epoch as number;
    const completed = await eventually('recovery.completed', () => newLeader.events('recovery.completed').find((e) => e.epoch === epoch) ?? null);
    t.true(completed.recovered >= jobIds.length);
    t.is(completed.failed, 0);
  });
});
