/**
 * Trusted cluster state, end to end on a real ensemble with real processes: epochs that only go up
 * (latch deleted by an operator, a forged huge epoch), cancels that survive a failover right after
 * their 202, and a stalled leader that does not blame healthy TaskManagers. Timing is never asserted.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { call, ExecutionCluster, ManagedProcess, shellTask, startCounts } from '../helpers/execution-cluster';
import { NativeZooKeeperClient } from '../../src/zk/client';
import { deleteTree } from '../../src/chaos/scenarios';
import { sleep } from '../../src/util/clock';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);

const TOKEN = 'fencing-test-internal-token';

async function startCluster(t: ExecutionContext<ClusterContext<ExecutionCluster>>, options: { replicas?: number; sessionTimeoutMs?: number; settings?: string[] } = {}): Promise<ExecutionCluster> {
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: options.replicas ?? 2, taskManagers: 2, sessionTimeoutMs: options.sessionTimeoutMs,
    settings: [`security.internal.token=${TOKEN}`, 'taskmanager.orphan-timeout=60000', ...(options.settings ?? [])],
  });
  t.context.clusters.push(cluster);
  return cluster;
}

async function withLogs<T>(t: ExecutionContext<unknown>, cluster: ExecutionCluster, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
}

async function epochOf(p: ManagedProcess): Promise<number> {
  return (await call('GET', `${p.url}/health`)).body.epoch as number;
}

/** Every epoch any replica was granted so far (from their `leadership.granted` events). */
function grantedEpochs(cluster: ExecutionCluster): number[] {
  return cluster.replicas.flatMap((r) => r.events('leadership.granted').map((e) => e.epoch as number));
}

async function withZk<T>(t: ExecutionContext<ClusterContext<ExecutionCluster>>, cluster: ExecutionCluster, fn: (zk: NativeZooKeeperClient) => Promise<T>): Promise<T> {
  const zk = new NativeZooKeeperClient({ connect: t.context.ensemble.connectString, chroot: `/ha-dispatcher/${cluster.clusterId}`, sessionTimeoutMs: 30_000 });
  try {
    await zk.waitUntilConnected(30_000);
    return await fn(zk);
  } finally {
    await zk.close();
  }
}

const quickJob = (starts: string, name: string) => ({ name, vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 1') }] });
const allRunning = (j: any): boolean => j.vertices.every((v: any) => v.subtasks.every((s: any) => s.status === 'RUNNING'));

test.serial('deleteall <root>/leader while jobs run: the next epoch is above every earlier one, running and new jobs finish', async (t) => {
  const cluster = await startCluster(t);
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'reset-starts.txt');
    const running = await cluster.submit({ name: 'across-reset', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 4') }] });
    await cluster.waitForJob(running, allRunning, 'the job RUNNING');
    const before = Math.max(...grantedEpochs(cluster));
    await withZk(t, cluster, (zk) => deleteTree(zk, '/leader'));
    await eventually('a leader granted after the reset', async () => grantedEpochs(cluster).length > 1 || null, 60_000, 100);
    const leader = await cluster.leader(60_000);
    const epoch = await epochOf(leader);
    t.true(epoch > before, `epoch ${epoch} after the reset is above ${before} before it`);
    t.true(grantedEpochs(cluster).every((e, _, all) => all.filter((x) => x === e).length === 1), 'no epoch granted twice');
    await cluster.waitForJob(running, (j) => j.state === 'FINISHED', 'the running job FINISHED', 90_000);
    const fresh = await cluster.submit(quickJob(starts, 'after-reset'));
    await cluster.waitForJob(fresh, (j) => j.state === 'FINISHED', 'a new job FINISHED', 90_000);
  });
});

test.serial('a forged /cancel with epoch 2^53-1 sent with the internal token changes nothing; jobs still finish', async (t) => {
  const cluster = await startCluster(t, { replicas: 1 });
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'forged-starts.txt');
    const jobId = await cluster.submit({ name: 'forged', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 3') }] });
    await cluster.waitForJob(jobId, allRunning, 'the job RUNNING');
    const tms = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string; address: string }>;
    for (const tm of tms) {
      const before = (await call('GET', `${tm.address}/tasks`, undefined, 10_000, TOKEN)).body;
      const forged = await call('POST', `${tm.address}/cancel`, { epoch: Number.MAX_SAFE_INTEGER, jobId }, 10_000, TOKEN);
      t.is(forged.status, 409, `${tm.id} refused the forged cancel`);
      const after = (await call('GET', `${tm.address}/tasks`, undefined, 10_000, TOKEN)).body;
      t.is(after.highestEpoch, before.highestEpoch, `${tm.id} kept its epoch`);
      t.false(after.tasks.some((r: any) => r.jobId === jobId && r.state === 'CANCELED'), `${tm.id} canceled nothing`);
    }
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'the job FINISHED', 60_000);
    t.true(job.vertices[0].subtasks.every((s: any) => s.attempt === 0), 'no attempt was lost');
    const next = await cluster.submit(quickJob(starts, 'after-forgery'));
    await cluster.waitForJob(next, (j) => j.state === 'FINISHED', 'a new job FINISHED', 60_000);
  });
});

test.serial('a cancel answered 202 through a standby survives SIGTERM or SIGKILL of the leader right after: CANCELED, no new attempt', async (t) => {
  const cluster = await startCluster(t, { replicas: 3, sessionTimeoutMs: 3000, settings: ['jobmanager.reconcile-timeout=3000'] });
  await withLogs(t, cluster, async () => {
    const rounds = 10;
    for (let round = 0; round < rounds; round++) {
      const signal = round % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      const strategy = round % 4 < 2 ? { type: 'fixed-delay', attempts: 100, delayMs: 100 } : { type: 'none' };
      const starts = path.join(cluster.dir, `cancel-${round}-starts.txt`);
      const jobId = await cluster.submit({ name: `cancel-${round}`, vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 120') }], restartStrategy: strategy });
      await cluster.waitForJob(jobId, allRunning, 'the job RUNNING', 60_000);
      const leader = await cluster.leader();
      // A standby that knows the ready leader (one restarted in an earlier round may still be starting).
      const redirect = await eventually('a standby redirecting the cancel', async () => {
        for (const r of cluster.replicas.filter((x) => x !== leader && x.running)) {
          const a = await call('PATCH', `${r.url}/jobs/${jobId}?mode=cancel`, undefined, 5000).catch(() => null);
          if (a?.status === 307) return a;
        }
        return null;
      }, 60_000, 200);
      t.is(redirect.status, 307, `round ${round}: the standby redirects to the leader`);
      const answer = await call('PATCH', redirect.headers.get('location')!);
      t.is(answer.status, 202, `round ${round}: the leader acknowledged the cancel`);
      await leader.signal(signal);
      const job = await cluster.waitForJob(jobId, (j) => j.state === 'CANCELED' || j.state === 'FAILED' || j.state === 'FINISHED',
        `round ${round}: the job ended under the next leader`, 90_000);
      t.is(job.state, 'CANCELED', `round ${round} (${signal}, restart ${strategy.type}): the acknowledged cancel held`);
      t.true(job.vertices[0].subtasks.every((s: any) => s.attempt === 0), `round ${round}: no new attempt`);
      t.deepEqual([...startCounts(starts).values()], [1, 1], `round ${round}: each subtask started once`);
      leader.start();
    }
  });
});

test.serial('a leader paused for 1.2 x heartbeat.timeout (under the session timeout) declares no TaskManager lost; no task restarts', async (t) => {
  const heartbeatTimeoutMs = 3000;
  const cluster = await startCluster(t, { replicas: 1, sessionTimeoutMs: 10_000, settings: [`heartbeat.timeout=${heartbeatTimeoutMs}`] });
  await withLogs(t, cluster, async () => {
    const starts = path.join(cluster.dir, 'pause-starts.txt');
    const jobId = await cluster.submit({ name: 'paused-leader', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 8') }] });
    await cluster.waitForJob(jobId, allRunning, 'the job RUNNING');
    const leader = await cluster.leader();
    const epoch = await epochOf(leader);
    const from = leader.logSize();
    leader.kill('SIGSTOP');
    await sleep(heartbeatTimeoutMs * 1.2); // holding the fault itself, not waiting for a condition
    leader.kill('SIGCONT');
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'the job FINISHED', 60_000);
    t.is(await epochOf(leader), epoch, 'the same replica stayed leader in the same term');
    t.deepEqual(leader.events('taskmanager.lost', from), [], 'no TaskManager declared lost');
    t.true(job.vertices[0].subtasks.every((s: any) => s.attempt === 0), 'no task restarted');
    t.deepEqual([...startCounts(starts).values()], [1, 1]);
  });
});

test.serial('ZooKeeper restored from an older snapshot: the leader ends above every epoch a TaskManager holds; a new job finishes', async (t) => {
  // Runs last: it rewinds this file's ensemble. Earlier clusters are done with.
  await Promise.all(t.context.clusters.splice(0).map((c) => c.stop()));
  const { ensemble } = t.context;
  const cluster = await startCluster(t, { replicas: 2, sessionTimeoutMs: 4000 });
  await withLogs(t, cluster, async () => {
    const stopAll = async (): Promise<void> => { for (const s of ensemble.servers) await ensemble.stopServer(s.id); };
    const startAll = async (): Promise<void> => {
      for (const s of ensemble.servers) await ensemble.restartServer(s.id);
      await ensemble.waitForQuorum(90_000);
    };
    await stopAll();
    for (const s of ensemble.servers) fs.cpSync(s.dataDir, `${s.dataDir}.snapshot`, { recursive: true });
    await startAll();
    // Two more terms after the snapshot; the TaskManagers register with each.
    for (let i = 0; i < 2; i++) {
      const leader = await cluster.leader(90_000);
      await leader.signal('SIGTERM');
      leader.start();
      await cluster.leader(90_000);
      await cluster.waitForTaskManagers(2, 90_000);
    }
    const held = Math.max(...cluster.taskManagers.flatMap((tm) => tm.events('taskmanager.registered').map((e) => e.epoch as number)));
    await stopAll();
    for (const s of ensemble.servers) {
      fs.rmSync(s.dataDir, { recursive: true, force: true });
      fs.renameSync(`${s.dataDir}.snapshot`, s.dataDir);
    }
    await startAll();
    const leader = await eventually(`a leader above epoch ${held}`, async () => {
      const l = await cluster.leader(5_000).catch(() => null);
      return l && (await epochOf(l)) > held ? l : null;
    }, 180_000, 500);
    t.true((await epochOf(leader)) > held);
    await cluster.waitForTaskManagers(2, 90_000);
    const starts = path.join(cluster.dir, 'restored-starts.txt');
    const jobId = await cluster.submit(quickJob(starts, 'after-restore'));
    await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'a new job FINISHED', 90_000);
  });
});
