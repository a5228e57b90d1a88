/**
 * TaskManager autoscaling end to end (docs/ARCHITECTURE.md, "Autoscaling"): real replicas with the
 * `local` provider launching real `ha-dispatcher taskmanager` processes on a real 3-server ensemble.
 * Tasks wait for a gate file the test creates, so the demand lasts exactly until the test has seen
 * what it waits for; nothing depends on timing.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterContext, connectedClient, ensembleHooks, eventually } from '../helpers/ensemble';
import { ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';
import { localLaunchedTaskManagers } from '../../src/resources/autoscaler-providers';
import { ZkAutoscalerStore } from '../../src/store/autoscaler-store';
import type { AutoscalerState } from '../../src/resources/autoscaler';

type Context = ClusterContext<ExecutionCluster>;
const test = anyTest as TestFn<Context>;

ensembleHooks(test);

const subtasks = (job: any): any[] => job.vertices.flatMap((v: any) => v.subtasks);

/** A cluster of one TaskManager × 2 slots whose leader autoscales between 1 and 4 with the local provider. */
async function autoscalingCluster(t: ExecutionContext<Context>, replicas: number, extra: string[] = []): Promise<{ cluster: ExecutionCluster; dataDir: string }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-autoscale-'));
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas, taskManagers: 1, slots: 2,
    settings: [
      'resourcemanager.autoscaler.enabled=true', 'resourcemanager.autoscaler.provider=local',
      'resourcemanager.autoscaler.min=1', 'resourcemanager.autoscaler.max=4',
      'resourcemanager.autoscaler.scale-up-delay=500', 'resourcemanager.autoscaler.scale-down-cooldown=3000',
      'resourcemanager.autoscaler.launch-timeout=30000',
      // The replicas' own: the slots of the TaskManagers they launch, where those keep their data.
      'taskmanager.numberOfTaskSlots=2', `taskmanager.data-dir=${dataDir}`,
      'taskmanager.orphan-timeout=60000',
      ...extra,
    ],
  });
  t.context.clusters.push(cluster);
  // Launched TaskManagers are nobody's children once their replica is gone: stopped here.
  t.teardown(() => {
    for (const { pid } of localLaunchedTaskManagers(cluster.clusterId)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  });
  return { cluster, dataDir };
}

function withLogs<T>(t: ExecutionContext<Context>, cluster: ExecutionCluster, dataDir: string, fn: () => Promise<T>): Promise<T> {
  return fn().catch((err) => {
    t.log(cluster.logs());
    for (const f of launchLogs(cluster, dataDir)) t.log(`---- ${path.basename(f)} ----\n${fs.readFileSync(f, 'utf8').split('\n').slice(-15).join('\n')}`);
    throw err;
  });
}

/** The log file of every TaskManager the local provider tried to start for the cluster (one per launch, created just before the start). */
function launchLogs(cluster: ExecutionCluster, dataDir: string): string[] {
  const dir = path.join(dataDir, 'autoscaled', cluster.clusterId);
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.log')).map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

/** Ids of the launched TaskManagers that ever ran (their log has `taskmanager.started`). */
function startedLaunches(cluster: ExecutionCluster, dataDir: string): string[] {
  return launchLogs(cluster, dataDir).filter((f) => fs.readFileSync(f, 'utf8').includes('"taskmanager.started"')).map((f) => path.basename(f, '.log')).sort();
}

async function registered(cluster: ExecutionCluster): Promise<string[]> {
  const a = await cluster.rest('GET', '/taskmanagers');
  return a.status === 200 ? a.body.taskmanagers.map((tm: any) => tm.id).sort() : [];
}

async function storedState(t: ExecutionContext<Context>, cluster: ExecutionCluster): Promise<AutoscalerState | null> {
  const client = await connectedClient({ connect: t.context.ensemble.connectString, chroot: `/ha-dispatcher/${cluster.clusterId}` });
  try {
    return await new ZkAutoscalerStore(client, () => undefined).read();
  } finally {
    await client.close();
  }
}

/** `jobs` jobs of `parallelism` subtasks that record their start and wait for `gate`. */
async function gatedJobs(cluster: ExecutionCluster, starts: string, gate: string, jobs: number, parallelism: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < jobs; i++) {
    ids.push(await cluster.submit({
      name: `burst-${i}`, vertices: [{ id: `v${i}`, parallelism, task: shellTask(starts, `while [ ! -f '${gate}' ]; do sleep 0.1; done`) }],
      restartStrategy: { type: 'none' },
    }));
  }
  return ids;
}

test.serial('40 waiting subtasks grow the pool from 1 to 4 TaskManagers; every subtask runs once; after the cooldown drains shrink it back to 1', async (t) => {
  const { cluster, dataDir } = await autoscalingCluster(t, 1);
  await withLogs(t, cluster, dataDir, async () => {
    const starts = path.join(cluster.dir, 'starts.txt');
    const gate = path.join(cluster.dir, 'gate');
    const jobs = await gatedJobs(cluster, starts, gate, 10, 4);

    const grown = await eventually('4 registered TaskManagers', async () => {
      const ids = await registered(cluster);
      return ids.length === 4 ? ids : null;
    }, 120_000, 200);
    t.is(grown.filter((id) => id.startsWith('auto-')).length, 3);
    const leader = await cluster.leader();
    const ups = leader.events('autoscaler.scale-up');
    t.true(ups.length >= 1 && ups.every((e) => e.to <= 4 && typeof e.reason === 'string'), JSON.stringify(ups));
    t.is(Math.max(...ups.map((e) => e.to)), 4);
    const metrics = (await cluster.rest('GET', '/metrics')).text;
    t.regex(metrics, /ha_dispatcher_autoscaler_desired_taskmanagers 4/);
    t.regex(metrics, /ha_dispatcher_autoscaler_decisions_total\{direction="up"\} [1-9]/);

    fs.writeFileSync(gate, '');
    for (const id of jobs) {
      const done = await cluster.waitForJob(id, (j) => ['FINISHED', 'FAILED', 'CANCELED'].includes(j.state), `job ${id} ended`, 180_000);
      t.is(done.state, 'FINISHED');
      t.is(done.restarts, 0);
      t.true(subtasks(done).every((s) => s.attempt === 0), 'no subtask ran a second attempt');
    }
    const counts = startCounts(starts);
    t.is(counts.size, 40);
    t.true([...counts.values()].every((n) => n === 1), 'every subtask started exactly once');
    const ranOn = new Set(jobs.length ? (await Promise.all(jobs.map((id) => cluster.job(id)))).flatMap((j) => subtasks(j).map((s) => s.taskmanager)) : []);
    t.true([...ranOn].some((id) => String(id).startsWith('auto-')), 'launched TaskManagers took work');

    // Idle past the cooldown: drained (never killed) down to min, released, and their processes stop.
    const left = await eventually('the pool back at 1 TaskManager', async () => {
      const ids = await registered(cluster);
      return ids.length === 1 ? ids : null;
    }, 120_000, 200);
    await eventually('the released TaskManagers exited', async () => localLaunchedTaskManagers(cluster.clusterId).filter((p) => p.id !== left[0]).length === 0, 60_000, 200);
    const downs = leader.events('autoscaler.scale-down');
    t.deepEqual(downs.flatMap((e) => e.drained).sort(), grown.filter((id) => id !== left[0]).sort(), 'each one drained once');
    t.deepEqual(leader.events('task.evicted'), [], 'no task was taken off a drained TaskManager');
    t.is(leader.events('taskmanager.released').length, 3);
    t.is(launchLogs(cluster, dataDir).length, 3, 'three launches in all');
    t.is(startedLaunches(cluster, dataDir).length, 3);
    const state = await eventually('the releases told to the provider and stored', async () => {
      const s = await storedState(t, cluster);
      return s && s.draining.length === 0 ? s : null;
    }, 60_000, 200);
    t.is(state.desired, 1);
    t.true(state.launches.every((l) => l.id === left[0]), 'only the remaining TaskManager is still a launch on record');
  });
});

test.serial('a leader SIGKILLed in the middle of a scale-up: its successor adopts the recorded launches, none is launched twice', async (t) => {
  const { cluster, dataDir } = await autoscalingCluster(t, 2, ['resourcemanager.autoscaler.scale-down-cooldown=600000']);
  await withLogs(t, cluster, dataDir, async () => {
    const starts = path.join(cluster.dir, 'starts.txt');
    const gate = path.join(cluster.dir, 'gate');
    const oldLeader = await cluster.leader();
    const jobs = await gatedJobs(cluster, starts, gate, 10, 4);

    // The moment the launches are recorded (the event follows the write), before they registered.
    await eventually('the scale-up decided', async () => oldLeader.events('autoscaler.scale-up').length > 0, 120_000, 20);
    oldLeader.kill('SIGKILL');
    const recorded = await eventually('the launches stored', async () => {
      const s = await storedState(t, cluster);
      return s && s.launches.length > 0 ? s : null;
    }, 30_000, 100);
    t.true(recorded.desired > 1);
    const newLeader = await cluster.leader(60_000, [oldLeader]);

    const grown = await eventually('4 registered TaskManagers', async () => {
      const ids = await registered(cluster);
      return ids.length === 4 ? ids : null;
    }, 120_000, 200);
    const state = await eventually('every stored launch registered', async () => {
      const s = await storedState(t, cluster);
      return s && s.launches.length === 3 && s.launches.every((l) => l.registeredAt !== null) ? s : null;
    }, 60_000, 200);
    t.is(state.desired, 4);
    t.true(state.epoch > recorded.epoch, 'written by the new leader since');
    const launched = state.launches.map((l) => l.id).sort();
    t.deepEqual(grown.filter((id) => id.startsWith('auto-')), launched);
    const processes = localLaunchedTaskManagers(cluster.clusterId);
    t.deepEqual(processes.map((p) => p.id).sort(), launched, 'one process per launch');
    t.deepEqual(startedLaunches(cluster, dataDir), launched, 'every TaskManager that ever ran is one of the pool: none was started twice');
    t.true(newLeader.events('autoscaler.launch.adopted').length >= 1);
    // The new leader launched only in place of launches recorded but never started (the old leader was
    // killed between the write and the start): those stop counting (gone, or timed out), then demand replaces them.
    const given = [...newLeader.events('autoscaler.launch.timed-out'), ...newLeader.events('autoscaler.launch.failed')].map((e) => e.taskManagerId);
    for (const id of given) t.false(launched.includes(id), `${id} was given up although it runs`);
    t.is(newLeader.events('autoscaler.scale-up').flatMap((e) => e.launches).length, given.length, 'nothing launched beyond what never started');

    fs.writeFileSync(gate, '');
    for (const id of jobs) t.is((await cluster.waitForJob(id, (j) => ['FINISHED', 'FAILED', 'CANCELED'].includes(j.state), `job ${id} ended`, 180_000)).state, 'FINISHED');
    t.true([...startCounts(starts).values()].every((n) => n >= 1));
  });
});
