/**
 * Scale: how the leader's costs grow with TaskManagers and with jobs. Simulated TaskManagers (many
 * in the benchmark process, bench/lib/simulated-taskmanagers.ts) speak the real internal protocol to
 * real replicas (a leader and one standby), so nothing but the leader's side of the protocol is measured.
 *
 * TaskManager curve (one cluster; TaskManagers × 8 slots added step by step, no job running between
 * probes): leader CPU per heartbeat (its /proc CPU time over a window divided by the heartbeats the
 * fleet had answered; also net of the idle leader's own CPU, measured first), scheduling latency of a
 * probe batch (submit → every subtask's deploy arrived at a TaskManager), and a handoff (SIGTERM of the
 * leader → the standby answers as leader; → every TaskManager registered with it).
 *
 * Job curve (a fresh cluster; TaskManagers with enough slots that every job runs): N jobs held
 * RUNNING by the simulated TaskManagers, N growing step by step: submit → deployed of the step's
 * batch and of single probe jobs, leader CPU per heartbeat (heartbeats now name every running task),
 * ZooKeeper nodes and bytes under the chroot per job, and a handoff with N running jobs.
 */
import * as crypto from 'node:crypto';
import { BenchCluster, BenchProcess } from '../lib/processes';
import { HttpClient, parseJson } from '../lib/http';
import { processCpuMs, znodeCensus } from '../lib/probes';
import { SimulatedFleet } from '../lib/simulated-taskmanagers';
import { percentile, round } from '../lib/stats';
import { mapLimit, sleep, until } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput } from '../lib/types';

const HEARTBEAT_INTERVAL_MS = 500;

interface Size {
  tmSteps: number[];
  slots: number;
  /** Jobs per TaskManager-curve probe, each of `probeParallelism` subtasks sleeping `probeSleepMs`. */
  probeJobs: number;
  probeParallelism: number;
  probeSleepMs: number;
  windowMs: number;
  jobSteps: number[];
  /** The job curve's fleet: enough slots for every job of the last step plus its probes. */
  jobFleet: { taskManagers: number; slots: number };
  /** Single probe jobs per job step (one at a time). */
  singleProbes: number;
  concurrency: number;
}

const SIZES: Record<'full' | 'large' | 'smoke', Size> = {
  full: {
    tmSteps: [25, 50, 100, 200], slots: 8, probeJobs: 50, probeParallelism: 4, probeSleepMs: 100, windowMs: 4000,
    jobSteps: [100, 1000, 5000], jobFleet: { taskManagers: 50, slots: 128 }, singleProbes: 10, concurrency: 16,
  },
  large: {
    tmSteps: [25, 50, 100, 200, 400], slots: 8, probeJobs: 50, probeParallelism: 4, probeSleepMs: 100, windowMs: 4000,
    jobSteps: [100, 1000, 5000, 20_000], jobFleet: { taskManagers: 100, slots: 256 }, singleProbes: 10, concurrency: 16,
  },
  smoke: {
    tmSteps: [2, 4], slots: 8, probeJobs: 4, probeParallelism: 2, probeSleepMs: 50, windowMs: 1000,
    jobSteps: [10, 30], jobFleet: { taskManagers: 2, slots: 32 }, singleProbes: 2, concurrency: 8,
  },
};

interface Handoff {
  /** SIGTERM → the standby answers `/health` as the ready leader, ms. */
  readyMs: number;
  /** SIGTERM → the last TaskManager registered with the new leader, ms. */
  reRegisteredMs: number;
  /** `leadership.granted` → `dispatcher.ready` in the new leader's log, ms. */
  recoveryMs: number | null;
}

export const scale: Scenario = {
  name: 'scale',
  title: 'Scale: TaskManagers and jobs',
  budgetMs: (mode) => (mode === 'full' ? 600_000 : 90_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode === 'full' && ctx.large ? 'large' : ctx.mode];
    const taskManagerCurve = await runTaskManagerCurve(ctx, size);
    const jobCurve = await runJobCurve(ctx, size);
    const perTm = taskManagerCurve.steps;
    const first = perTm[0];
    const last = perTm[perTm.length - 1];
    const firstJobs = jobCurve.steps[0];
    const lastJobs = jobCurve.steps[jobCurve.steps.length - 1];
    return {
      settings: {
        ...size, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, heartbeatTimeoutMs: 5000, sessionTimeoutMs: 4000, replicas: 2,
        taskManagers: 'simulated in the benchmark process (real protocol, no processes spawned)',
        cpu: 'leader process user+system time from /proc/<pid>/stat (10 ms ticks)',
      },
      summary: {
        idleLeaderCpuMsPerS: taskManagerCurve.idleCpuMsPerS,
        cpuPerHeartbeatUs: { atFewest: first.netCpuPerHeartbeatUs, atMost: last.netCpuPerHeartbeatUs, fewest: first.taskManagers, most: last.taskManagers },
        zkBytesPerJob: lastJobs.zkBytesPerJob,
        handoffReadyMs: { atFewestJobs: firstJobs.handoff.readyMs, atMostJobs: lastJobs.handoff.readyMs },
      },
      trials: [...perTm.map((s) => ({ curve: 'taskmanagers', ...s })), ...jobCurve.steps.map((s) => ({ curve: 'jobs', ...s }))],
      targets: [],
      notes: [
        `CPU per heartbeat is net of the idle leader's own CPU (${taskManagerCurve.idleCpuMsPerS} ms/s with no TaskManager); it includes the leader's HTTP, JSON and logging work for the heartbeat, and any background work of the term. With the product's default heartbeat.interval of 10 s a TaskManager sends 1/20 of the heartbeats measured here (500 ms).`,
        'Simulated TaskManagers run in the benchmark process, on the same two cores as the leader and ZooKeeper: at the largest steps their own CPU competes with the leader\'s.',
      ],
    };
  },
};

interface TmStep extends Record<string, unknown> {
  taskManagers: number;
  slots: number;
  heartbeatsPerS: number;
  leaderCpuMsPerS: number | null;
  cpuPerHeartbeatUs: number | null;
  netCpuPerHeartbeatUs: number | null;
  netCpuPerTaskManagerMsPerS: number | null;
  probe: { jobs: number; p50Ms: number | null; p95Ms: number | null; maxMs: number | null };
  handoff: Handoff;
}

async function runTaskManagerCurve(ctx: BenchContext, size: Size): Promise<{ idleCpuMsPerS: number | null; steps: TmStep[] }> {
  const { cluster, fleet, http } = await startCluster(ctx, 'taskmanagers');
  try {
    const idle = await cpuWindow(cluster, fleet, size.windowMs);
    const idleCpuMsPerS = idle.cpuMsPerS;
    ctx.log(`scale: idle leader ${idleCpuMsPerS} ms CPU per s`);
    const steps: TmStep[] = [];
    const ids = jobIds();
    for (const k of size.tmSteps) {
      await fleet.add(k - fleet.members.length, size.slots);
      const leader = await cluster.leader();
      const epoch = await leaderEpoch(http, leader);
      await until(`${k} TaskManagers registered`, async () => fleet.registeredWith(epoch) === k || null, 60_000, 50);
      await sleep(size.windowMs / 2); // let registrations settle into the heartbeat rhythm
      const w = await cpuWindow(cluster, fleet, size.windowMs);
      const net = w.cpuMsPerS === null || idleCpuMsPerS === null ? null : Math.max(0, w.cpuMsPerS - idleCpuMsPerS);
      const graphs = Array.from({ length: size.probeJobs }, () => sleepGraph(ids(), size.probeParallelism, size.probeSleepMs));
      const latencies = await submitAndDeploy(http, leader.url, fleet, graphs, size.concurrency);
      // Every outcome acknowledged by the leader (durably noted) before the handoff.
      await until('probe jobs finished', async () => fleet.unacknowledgedTasks() === 0 || null, 60_000, 20);
      const handoff = await handOff(cluster, fleet, http);
      const step: TmStep = {
        taskManagers: k, slots: k * size.slots, heartbeatsPerS: round(w.heartbeatsPerS, 1),
        leaderCpuMsPerS: w.cpuMsPerS, cpuPerHeartbeatUs: perHeartbeatUs(w.cpuMsPerS, w.heartbeatsPerS), netCpuPerHeartbeatUs: perHeartbeatUs(net, w.heartbeatsPerS),
        netCpuPerTaskManagerMsPerS: net === null ? null : round(net / k, 3),
        probe: { jobs: graphs.length, p50Ms: percentile(latencies, 50), p95Ms: percentile(latencies, 95), maxMs: latencies.length ? Math.max(...latencies) : null },
        handoff,
      };
      steps.push(step);
      ctx.log(`scale: ${k} TaskManagers: ${step.heartbeatsPerS} heartbeats/s, leader ${w.cpuMsPerS} ms CPU/s, ${step.netCpuPerHeartbeatUs} µs per heartbeat (net); probe p50 ${step.probe.p50Ms} ms p95 ${step.probe.p95Ms} ms; handoff ready ${handoff.readyMs} ms, all re-registered ${handoff.reRegisteredMs} ms`);
    }
    return { idleCpuMsPerS, steps };
  } finally {
    await fleet.stop();
    http.close();
    await cluster.stop();
  }
}

interface JobStep extends Record<string, unknown> {
  jobs: number;
  batch: { jobs: number; p50Ms: number | null; p95Ms: number | null; wallMs: number };
  probe: { jobs: number; p50Ms: number | null; p95Ms: number | null };
  heartbeatsPerS: number;
  leaderCpuMsPerS: number | null;
  cpuPerHeartbeatUs: number | null;
  /** Above the same fleet's idle heartbeats (no job): what the running jobs add to each heartbeat. */
  extraCpuPerHeartbeatUs: number | null;
  zkNodes: number;
  zkBytes: number;
  zkBytesPerJob: number | null;
  zkBytesByTop: Record<string, { nodes: number; bytes: number }>;
  leaderRssMiB: number | null;
  handoff: Handoff;
}

async function runJobCurve(ctx: BenchContext, size: Size): Promise<{ steps: JobStep[] }> {
  const { cluster, fleet, http } = await startCluster(ctx, 'jobs');
  try {
    fleet.hold = true;
    await fleet.add(size.jobFleet.taskManagers, size.jobFleet.slots, 'sim-big-tm');
    let leader = await cluster.leader();
    const epoch = await leaderEpoch(http, leader);
    await until('the job fleet registered', async () => fleet.registeredWith(epoch) === size.jobFleet.taskManagers || null, 60_000, 50);
    const idle = await cpuWindow(cluster, fleet, size.windowMs);
    const base = await znodeCensus(ctx.connect, cluster.root);
    const ids = jobIds();
    const steps: JobStep[] = [];
    let running = 0;
    for (const n of size.jobSteps) {
      leader = await cluster.leader();
      const batch = Array.from({ length: n - running }, () => sleepGraph(ids(), 1, 3_600_000));
      const t = Date.now();
      const batchLatencies = await submitAndDeploy(http, leader.url, fleet, batch, size.concurrency);
      const wallMs = Date.now() - t;
      running = n;
      const probeLatencies: number[] = [];
      for (let i = 0; i < size.singleProbes; i++) {
        probeLatencies.push(...await submitAndDeploy(http, leader.url, fleet, [sleepGraph(ids(), 1, 3_600_000)], 1));
        running++;
      }
      await sleep(size.windowMs / 2);
      const w = await cpuWindow(cluster, fleet, size.windowMs);
      const net = w.cpuMsPerS === null || idle.cpuMsPerS === null ? null : Math.max(0, w.cpuMsPerS - idle.cpuMsPerS);
      const census = await znodeCensus(ctx.connect, cluster.root);
      const rss = leader.rssBytes();
      const handoff = await handOff(cluster, fleet, http, running);
      const step: JobStep = {
        jobs: running,
        batch: { jobs: batch.length, p50Ms: percentile(batchLatencies, 50), p95Ms: percentile(batchLatencies, 95), wallMs },
        probe: { jobs: probeLatencies.length, p50Ms: percentile(probeLatencies, 50), p95Ms: percentile(probeLatencies, 95) },
        heartbeatsPerS: round(w.heartbeatsPerS, 1), leaderCpuMsPerS: w.cpuMsPerS,
        cpuPerHeartbeatUs: perHeartbeatUs(w.cpuMsPerS, w.heartbeatsPerS), extraCpuPerHeartbeatUs: perHeartbeatUs(net, w.heartbeatsPerS),
        zkNodes: census.nodes, zkBytes: census.bytes, zkBytesPerJob: running ? Math.round((census.bytes - base.bytes) / running) : null,
        zkBytesByTop: census.byTop,
        leaderRssMiB: rss === null ? null : round(rss / 2 ** 20, 1),
        handoff,
      };
      steps.push(step);
      ctx.log(`scale: ${running} running jobs: batch of ${batch.length} p50 ${step.batch.p50Ms} ms p95 ${step.batch.p95Ms} ms; single p50 ${step.probe.p50Ms} ms; ${step.cpuPerHeartbeatUs} µs per heartbeat (${step.extraCpuPerHeartbeatUs} above the idle fleet); ZooKeeper ${census.nodes} nodes ${census.bytes} B (${step.zkBytesPerJob} B per job); handoff ready ${handoff.readyMs} ms, re-registered ${handoff.reRegisteredMs} ms, grant → ready ${handoff.recoveryMs} ms`);
    }
    return { steps };
  } finally {
    fleet.hold = false;
    await fleet.stop();
    http.close();
    await cluster.stop();
  }
}

async function startCluster(ctx: BenchContext, label: string): Promise<{ cluster: BenchCluster; fleet: SimulatedFleet; http: HttpClient }> {
  const cluster = await BenchCluster.create({
    connect: ctx.connect, logDir: ctx.logDir, replicas: 2, sessionTimeoutMs: 4000,
    // The interval the simulated TaskManagers keep (the leader itself only uses heartbeat.timeout).
    settings: [`heartbeat.interval=${HEARTBEAT_INTERVAL_MS}`],
  });
  ctx.defer(() => cluster.stop());
  await cluster.start();
  const leader = await cluster.leader();
  await cluster.standbyReady(cluster.replicas.find((r) => r !== leader)!, 60_000);
  const fleet = await SimulatedFleet.start({ connect: ctx.connect, root: cluster.root, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS });
  ctx.defer(() => fleet.stop());
  ctx.log(`scale: ${label} cluster ${cluster.clusterId} up`);
  return { cluster, fleet, http: new HttpClient(32) };
}

/** The leader's CPU and the heartbeats the fleet got answered over one window. */
async function cpuWindow(cluster: BenchCluster, fleet: SimulatedFleet, windowMs: number): Promise<{ cpuMsPerS: number | null; heartbeatsPerS: number }> {
  const leader = await cluster.leader();
  const cpu0 = processCpuMs(leader.pid);
  const hb0 = fleet.counters.heartbeats;
  const t0 = performance.now();
  await sleep(windowMs);
  const cpu1 = processCpuMs(leader.pid);
  const seconds = (performance.now() - t0) / 1000;
  const hb = fleet.counters.heartbeats - hb0;
  return { cpuMsPerS: cpu0 === null || cpu1 === null ? null : round((cpu1 - cpu0) / seconds, 1), heartbeatsPerS: hb / seconds };
}

function perHeartbeatUs(cpuMsPerS: number | null, heartbeatsPerS: number): number | null {
  return cpuMsPerS === null || heartbeatsPerS <= 0 ? null : Math.round((cpuMsPerS / heartbeatsPerS) * 1000);
}

function jobIds(): () => string {
  const prefix = crypto.randomBytes(6).toString('hex');
  let n = 0;
  return () => `${prefix}${(n++).toString(16).padStart(20, '0')}`;
}

function sleepGraph(jobId: string, parallelism: number, ms: number): { jobId: string; graph: Record<string, unknown>; parallelism: number } {
  return { jobId, parallelism, graph: { jobId, name: `scale-${jobId.slice(-6)}`, vertices: [{ id: 'work', parallelism, task: { type: 'sleep', ms } }] } };
}

/**
 * Submits every graph (`concurrency` in flight) and waits until each job's subtasks were all deployed
 * to the fleet; answers each job's submit → last deploy, ms.
 */
async function submitAndDeploy(http: HttpClient, url: string, fleet: SimulatedFleet,
  graphs: Array<{ jobId: string; graph: Record<string, unknown>; parallelism: number }>, concurrency: number): Promise<number[]> {
  const submittedAt = new Map<string, number>();
  await mapLimit(graphs, concurrency, async (g) => {
    const body = JSON.stringify(g.graph);
    for (let attempt = 0; attempt < 40; attempt++) {
      const t = Date.now();
      const a = await http.tryRequest('POST', `${url}/jobs`, body);
      if (a.status === 202) { submittedAt.set(g.jobId, t); return; }
      if (a.status !== 503 && a.status !== 0) throw new Error(`POST /jobs answered ${a.status}: ${a.text.slice(0, 300)}`);
      await sleep(50);
    }
    throw new Error(`POST /jobs of ${g.jobId} was not accepted after 40 attempts`);
  });
  const deployed = (g: { jobId: string; parallelism: number }): boolean => (fleet.deploysByJob.get(g.jobId)?.count ?? 0) >= g.parallelism;
  await until(`${graphs.length} jobs deployed`, async () => graphs.every(deployed) || null, 120_000 + graphs.length * 20, 10);
  return graphs.map((g) => fleet.deploysByJob.get(g.jobId)!.lastAt - submittedAt.get(g.jobId)!);
}

async function leaderEpoch(http: HttpClient, leader: BenchProcess): Promise<number> {
  // Wrapped: epoch 0 (the first term) is falsy, and `until` waits for a truthy answer.
  const { epoch } = await until('the leader\'s epoch', async () => {
    const a = await http.tryRequest('GET', `${leader.url}/health`);
    const h = parseJson<{ role?: string; epoch?: number }>(a.text);
    return a.status === 200 && h?.role === 'leader' && typeof h.epoch === 'number' ? { epoch: h.epoch } : null;
  }, 30_000, 20);
  return epoch;
}

/**
 * SIGTERM of the leader: → the standby answers `/health` as the ready leader (`jobs` of them listed in
 * `/overview` when given) → every simulated TaskManager registered with it. The old leader then comes
 * back as a standby.
 */
async function handOff(cluster: BenchCluster, fleet: SimulatedFleet, http: HttpClient, jobs?: number): Promise<Handoff> {
  const leader = await cluster.leader();
  const standby = cluster.replicas.find((r) => r !== leader && r.running)!;
  await cluster.standbyReady(standby, 60_000);
  const from = standby.logSize();
  const probe = new HttpClient(1, 5_000);
  try {
    await probe.tryRequest('GET', `${standby.url}/livez`);
    const t0 = Date.now();
    leader.kill('SIGTERM');
    let readyAt = 0;
    for (;;) {
      const a = await probe.tryRequest('GET', `${standby.url}/overview`);
      if (a.status === 200) {
        const o = parseJson<any>(a.text);
        const listed = (o?.['jobs-running'] ?? 0) + (o?.['jobs-finished'] ?? 0) + (o?.['jobs-cancelled'] ?? 0) + (o?.['jobs-failed'] ?? 0);
        if (jobs === undefined || listed >= jobs) { readyAt = Date.now(); break; }
      }
      if (Date.now() - t0 > 120_000) throw new Error(`handoff: ${standby.id} did not become the ready leader within 120 s`);
      await sleep(5);
    }
    const epoch = await leaderEpoch(http, standby);
    const reRegisteredAt = await until('every TaskManager registered with the new leader', async () => fleet.allRegisteredAt(epoch), 120_000, 10);
    const granted = standby.events('leadership.granted', from).find((e) => e.at >= t0 - 5);
    const ready = standby.events('dispatcher.ready', from).find((e) => e.at >= t0 - 5);
    await leader.waitForExit(20_000);
    leader.start();
    await cluster.standbyReady(leader, 60_000);
    return {
      readyMs: readyAt - t0, reRegisteredMs: Math.max(0, reRegisteredAt - t0),
      recoveryMs: granted && ready ? ready.at - granted.at : null,
    };
  } finally {
    probe.close();
  }
}
