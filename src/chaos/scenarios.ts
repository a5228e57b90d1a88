/**
 * Named fault scenarios. Each repeats one kind of fault (inject, hold, heal, let the cluster settle)
 * until its time is up or it reached its iteration bound, recording every injection and healing in
 * the history. Times scale with the session timeout, so "shorter/longer than the session timeout"
 * means what it says whatever the run's settings.
 */
import { sleep } from '../util/clock';
import { NativeZooKeeperClient } from '../zk/client';
import { NoNodeError, NotEmptyError } from '../zk/errors';
import { parent as parentOf } from '../zk/paths';
import * as http from 'node:http';
import * as path from 'node:path';
import { canonicalJson, parseJobGraph } from '../jobgraph';
import { graphDigest } from '../store/jobgraph-store';
import { JOBGRAPHS_PATH, LATCH_PATH, LEADER_INFO_PATH } from '../zk/layout';
import { taskScript, tinyGraph } from './workload';
import { localLaunchedTaskManagers } from '../resources/autoscaler-providers';
import type { ChaosCluster, ChaosClusterOptions, ChaosProcess } from './cluster';
import type { Workload } from './workload';
import type { HistoryRecorder } from './history';
import type { Random } from './random';

export interface ScenarioContext {
  cluster: ChaosCluster;
  recorder: HistoryRecorder;
  random: Random;
  /** Wall-clock time after which no new fault starts. */
  deadline: number;
  /** The running workload, for a scenario's own (recorded) traffic. */
  workload: Workload;
  log(message: string): void;
}

export interface Scenario {
  name: string;
  description: string;
  /** Runs one fault cycle (inject → hold → heal); the runner repeats it until the deadline. */
  step(ctx: ScenarioContext): Promise<void>;
  /** Cycles at most (each run stays bounded even with a long --seconds). */
  maxSteps?: number;
  /** Runs this many times --seconds (the soak). */
  durationFactor?: number;
  /** How the scenario's cluster differs from the default (more settings, a state key). */
  cluster?: Pick<ChaosClusterOptions, 'settings' | 'stateKey'>;
  /** The scenario must cause no leader change; the checker reports any failover as a violation. */
  expectNoFailovers?: boolean;
}

const MAX_STEPS = 50;

function record(ctx: ScenarioContext, phase: 'inject' | 'heal', name: string, target: string, detail?: string): void {
  ctx.recorder.record({ kind: 'fault', t: Date.now(), name, phase, target, ...(detail ? { detail } : {}) });
  ctx.log(`${phase === 'inject' ? 'fault' : 'heal '} ${name} on ${target}${detail ? ` (${detail})` : ''}`);
}

/** After a fault: a ready leader again (bounded), then a little quiet time with the workload running. */
async function settle(ctx: ScenarioContext, quietMs: [number, number] = [1000, 3000]): Promise<void> {
  const leader = await ctx.cluster.waitForLeader(45_000);
  if (!leader) ctx.log('no ready leader within 45 s after healing');
  await sleep(ctx.random.int(quietMs[0], quietMs[1]));
}

async function leaderOrSkip(ctx: ScenarioContext): Promise<ChaosProcess | null> {
  const leader = await ctx.cluster.waitForLeader(30_000);
  if (!leader) ctx.log('no ready leader to inject into; waiting');
  return leader;
}

async function signalLeader(ctx: ScenarioContext, sig: 'SIGKILL' | 'SIGTERM', name: string): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  record(ctx, 'inject', name, leader.id);
  await leader.signal(sig);
  await ctx.cluster.waitForLeader(45_000);
  await sleep(ctx.random.int(200, 1500));
  leader.start();
  record(ctx, 'heal', name, leader.id, 'restarted as a standby');
  await settle(ctx);
}

async function pauseLeader(ctx: ScenarioContext): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  const holdMs = Math.round(ctx.cluster.sessionTimeoutMs * (1.3 + ctx.random.next()));
  record(ctx, 'inject', 'pause-leader', leader.id, `SIGSTOP for ${holdMs} ms`);
  await leader.signal('SIGSTOP');
  await sleep(holdMs);
  await leader.signal('SIGCONT');
  record(ctx, 'heal', 'pause-leader', leader.id, 'SIGCONT');
  await settle(ctx);
}

async function partition(ctx: ScenarioContext, who: 'leader' | 'standby', factor: [number, number], mode: 'stall' | 'blackhole' | 'reject', name: string): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  const standbys = ctx.cluster.replicas.filter((r) => r !== leader && r.running);
  const target = who === 'leader' ? leader : standbys.length ? ctx.random.pick(standbys) : null;
  if (!target) return;
  const holdMs = Math.round(ctx.cluster.sessionTimeoutMs * (factor[0] + ctx.random.next() * (factor[1] - factor[0])));
  record(ctx, 'inject', name, target.id, `${mode} ZooKeeper for ${holdMs} ms (session timeout ${ctx.cluster.sessionTimeoutMs} ms)`);
  target.setNetwork(mode);
  await sleep(holdMs);
  target.setNetwork('pass');
  record(ctx, 'heal', name, target.id, 'network restored');
  await settle(ctx);
}

async function zkServerByMode(ctx: ScenarioContext, mode: 'leader' | 'follower'): Promise<number | null> {
  const status = await ctx.cluster.ensemble.status();
  const match = status.filter((s) => s.mode === mode);
  return match.length ? ctx.random.pick(match).id : null;
}

async function killZkServer(ctx: ScenarioContext, mode: 'leader' | 'follower'): Promise<void> {
  const { ensemble } = ctx.cluster;
  await ensemble.waitForQuorum(60_000).catch(() => undefined);
  const id = await zkServerByMode(ctx, mode);
  if (id === null) return;
  const holdMs = ctx.random.int(2000, 6000);
  record(ctx, 'inject', `kill-zk-${mode}`, `zk${id}`, `SIGKILL, down for ${holdMs} ms`);
  await ensemble.killServer(id);
  await sleep(holdMs);
  await ensemble.restartServer(id);
  record(ctx, 'heal', `kill-zk-${mode}`, `zk${id}`, 'restarted');
  await ensemble.waitForQuorum(60_000).catch((err) => ctx.log(`quorum not back: ${(err as Error).message.split('\n')[0]}`));
  await settle(ctx);
}

async function loseQuorum(ctx: ScenarioContext): Promise<void> {
  const { ensemble } = ctx.cluster;
  await ensemble.waitForQuorum(60_000).catch(() => undefined);
  const ids = ensemble.servers.map((s) => s.id);
  const down: number[] = [];
  while (down.length < Math.floor(ids.length / 2) + 1) down.push(ctx.random.pick(ids.filter((id) => !down.includes(id))));
  const holdMs = Math.round(ctx.cluster.sessionTimeoutMs * (0.5 + 1.5 * ctx.random.next()));
  record(ctx, 'inject', 'zk-quorum-loss', down.map((id) => `zk${id}`).join('+'), `SIGKILL, no quorum for ${holdMs} ms`);
  await Promise.all(down.map((id) => ensemble.killServer(id)));
  await sleep(holdMs);
  for (const id of down) await ensemble.restartServer(id);
  record(ctx, 'heal', 'zk-quorum-loss', down.map((id) => `zk${id}`).join('+'), 'restarted');
  await ensemble.waitForQuorum(90_000).catch((err) => ctx.log(`quorum not back: ${(err as Error).message.split('\n')[0]}`));
  await settle(ctx, [2000, 4000]);
}

async function expire(ctx: ScenarioContext): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  const standbys = ctx.cluster.replicas.filter((r) => r !== leader && r.running);
  const target = ctx.random.chance(0.7) || standbys.length === 0 ? leader : ctx.random.pick(standbys);
  record(ctx, 'inject', 'expire-session', target.id, target === leader ? 'the leader' : 'a standby');
  try {
    const session = await ctx.cluster.expireSessionOf(target);
    if (!session) ctx.log(`no session of ${target.id} seen by its proxies`);
  } catch (err) {
    ctx.log(`expiring the session of ${target.id} failed: ${(err as Error).message}`);
  }
  record(ctx, 'heal', 'expire-session', target.id, 'the replica opens a new session by itself');
  await settle(ctx);
}

async function killTaskManager(ctx: ScenarioContext): Promise<void> {
  const tms = ctx.cluster.taskManagers.filter((t) => t.running);
  if (tms.length === 0) return;
  const tm = ctx.random.pick(tms);
  // Sometimes back at once (well within heartbeat.timeout: only its new instance id tells the leader).
  const downMs = ctx.random.chance(0.4) ? 0 : ctx.random.int(1000, 5000);
  record(ctx, 'inject', 'kill-taskmanager', tm.id, `SIGKILL, restarted after ${downMs} ms on the same port`);
  await tm.signal('SIGKILL');
  await sleep(downMs);
  tm.start();
  record(ctx, 'heal', 'kill-taskmanager', tm.id, 'restarted');
  await settle(ctx, [2000, 4000]);
}

async function pauseTaskManager(ctx: ScenarioContext): Promise<void> {
  const tms = ctx.cluster.taskManagers.filter((t) => t.running && !t.paused);
  if (tms.length === 0) return;
  const tm = ctx.random.pick(tms);
  // Sometimes shorter than heartbeat.timeout (4 s: the leader keeps it), sometimes longer (it is lost, then re-registers).
  const holdMs = ctx.random.pick([2000, 7000, 10_000]);
  record(ctx, 'inject', 'pause-taskmanager', tm.id, `SIGSTOP for ${holdMs} ms`);
  await tm.signal('SIGSTOP');
  await sleep(holdMs);
  await tm.signal('SIGCONT');
  record(ctx, 'heal', 'pause-taskmanager', tm.id, 'SIGCONT');
  await settle(ctx, [2000, 4000]);
}

/**
 * An operator cleans up: `deleteall <root>/leader` (the latch parent, every contender's node and
 * `/leader/info`) while the cluster runs. The latch sequence starts over; epochs must not.
 */
async function latchReset(ctx: ScenarioContext): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  const zk = new NativeZooKeeperClient({ connect: ctx.cluster.ensemble.connectString, chroot: ctx.cluster.namespace, sessionTimeoutMs: 30_000 });
  try {
    await zk.waitUntilConnected(30_000);
    const parent = parentOf(LATCH_PATH);
    record(ctx, 'inject', 'latch-reset', parent, `deleteall while ${leader.id} leads`);
    await deleteTree(zk, parent);
  } catch (err) {
    ctx.log(`latch reset failed: ${(err as Error).message}`);
  } finally {
    await zk.close();
  }
  record(ctx, 'heal', 'latch-reset', parentOf(LATCH_PATH), 'the replicas create the latch again');
  await settle(ctx, [2000, 4000]);
}

/**
 * `deleteall`: children first; nodes that vanish meanwhile (a contender's session ended) are fine, and
 * a node that gains a child meanwhile (a replica re-created the latch) is cleared again, a few times.
 */
export async function deleteTree(zk: NativeZooKeeperClient, path: string, attempts = 5): Promise<void> {
  let children: string[];
  try {
    children = await zk.getChildren(path);
  } catch (err) {
    if (err instanceof NoNodeError) return;
    throw err;
  }
  for (const child of children) await deleteTree(zk, `${path}/${child}`, attempts);
  try {
    await zk.delete(path);
  } catch (err) {
    if (err instanceof NotEmptyError && attempts > 1) return deleteTree(zk, path, attempts - 1);
    if (!(err instanceof NoNodeError) && !(err instanceof NotEmptyError)) throw err;
  }
}

// ---- hostile clients ------------------------------------------------------------------------------

/** A forger's leader URL: anything that contacts it trusted forged state (recorded as `forgery-trusted`). */
async function startTrap(ctx: ScenarioContext): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    ctx.recorder.record({ kind: 'forgery-trusted', t: Date.now(), how: 'trap-contacted', detail: `${req.method} ${req.url} from ${req.socket.remotePort}` });
    res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' }).end('{"errors":["forged leader"]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function forgedLeaderInfo(url: string, sessionId: string): string {
  const now = new Date().toISOString();
  return JSON.stringify({ replicaId: 'forger', restUrl: url, rpcUrl: url, epoch: 9_000_000_000_000, sessionId, electedAt: now, readyAt: now });
}

/** Replaces `/leader/info` with the forger's (the real leader may win the race: a few tries). */
async function forgeLeaderInfo(zk: NativeZooKeeperClient, data: string, mode: 'ephemeral' | 'persistent'): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    await zk.delete(LEADER_INFO_PATH).catch(() => undefined);
    try {
      await zk.create(LEADER_INFO_PATH, data, mode);
      return true;
    } catch {
      await sleep(50);
    }
  }
  return false;
}

/**
 * A hostile ZooKeeper client (open ACL, no credentials, no state key) races the leader: forged
 * JobGraphs whose task would leave a marker file, then one of a forged ephemeral `/leader/info`
 * (huge epoch, the trap's URL), a persistent one (`sessionId` "0"), or a deleted latch node (a new
 * election, so a recovery reads the forged graphs). Held past the session timeout while the forged
 * jobs are probed through REST; then the forger cleans up and closes its session.
 */
async function forger(ctx: ScenarioContext): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  const trap = await startTrap(ctx);
  const zk = new NativeZooKeeperClient({ connect: ctx.cluster.ensemble.connectString, chroot: ctx.cluster.namespace, sessionTimeoutMs: 30_000 });
  const forgedJobs: string[] = [];
  let persistentInfo: string | null = null;
  const what = ctx.random.pick(['leader-info-ephemeral', 'leader-info-persistent', 'latch-delete'] as const);
  try {
    await zk.waitUntilConnected(30_000);
    record(ctx, 'inject', 'forger', leader.id, `forged job graphs, then ${what}`);
    for (let i = 0; i < ctx.random.int(1, 2); i++) {
      const jobId = ctx.random.hex(32);
      const graph = {
        jobId, name: `forged-${jobId.slice(0, 6)}`,
        vertices: [{ id: 'evil', parallelism: 1, task: { type: 'command', argv: ['sh', '-c', `touch '${path.join(ctx.cluster.markerDir, jobId)}'`] } }],
      };
      // A flawless envelope, digest included: only the MAC is missing.
      const envelope = { formatVersion: 1, submittedAt: new Date().toISOString(), digest: graphDigest(canonicalJson(parseJobGraph(graph, { maxParallelism: 128 }))), graph };
      const p = `${JOBGRAPHS_PATH}/${jobId}`;
      await zk.create(p, JSON.stringify(envelope), 'persistent');
      forgedJobs.push(jobId);
      ctx.recorder.record({ kind: 'forgery', t: Date.now(), what: 'jobgraph', path: p, jobId });
    }
    if (what === 'latch-delete') {
      const nodes = await zk.getChildren(LATCH_PATH).catch(() => [] as string[]);
      if (nodes.length) {
        // Mostly the leader's node (the lowest sequence): a new election, whose recovery reads the forged graphs.
        const bySequence = [...nodes].sort((a, b) => a.slice(-10).localeCompare(b.slice(-10)));
        const node = `${LATCH_PATH}/${ctx.random.chance(0.8) ? bySequence[0] : ctx.random.pick(nodes)}`;
        await zk.delete(node).catch((err) => ctx.log(`deleting ${node}: ${(err as Error).message}`));
        ctx.recorder.record({ kind: 'forgery', t: Date.now(), what, path: node });
      }
    } else {
      const data = forgedLeaderInfo(trap.url, what === 'leader-info-ephemeral' ? zk.sessionId ?? '0' : '0');
      if (await forgeLeaderInfo(zk, data, what === 'leader-info-ephemeral' ? 'ephemeral' : 'persistent')) {
        if (what === 'leader-info-persistent') persistentInfo = data;
        ctx.recorder.record({ kind: 'forgery', t: Date.now(), what, path: LEADER_INFO_PATH, url: trap.url });
      } else {
        ctx.log('the leader kept /leader/info; no forged leader information this time');
      }
    }
    // Let replicas, TaskManagers and clients meet the forgeries; look at the forged jobs meanwhile.
    const until = Date.now() + Math.round(ctx.cluster.sessionTimeoutMs * (1.2 + ctx.random.next()));
    while (Date.now() < until) {
      for (const jobId of forgedJobs) await ctx.workload.status('forger', jobId);
      await sleep(500);
    }
  } catch (err) {
    ctx.log(`forger: ${(err as Error).message}`);
  } finally {
    if (persistentInfo) {
      // Only our own node: the leader may have replaced it meanwhile.
      const current = await zk.get(LEADER_INFO_PATH).then((r) => r.data.toString('utf8')).catch(() => null);
      if (current === persistentInfo) await zk.delete(LEADER_INFO_PATH).catch(() => undefined);
    }
    await zk.close();
    await trap.close();
  }
  record(ctx, 'heal', 'forger', leader.id, 'the forger cleaned up its leader information and closed its session');
  await settle(ctx, [2000, 4000]);
  for (const jobId of forgedJobs) await ctx.workload.status('forger', jobId);
}

/** The limits the hostile-submitter cluster runs with (small enough for 2 TaskManagers × 4 slots). */
const HOSTILE_LIMITS = { maxParallelism: 6, maxSubtasks: 8, maxPendingJobs: 25, rate: 4, burst: 8 };

/**
 * A client at and beyond the dispatcher's limits, next to the normal workload: jobs just under
 * max-parallelism / max-subtasks-per-job, jobs over them (400, nothing stored), and floods of
 * submissions at once (429 with Retry-After past the burst or max-pending-jobs). No leader change.
 */
async function hostileSubmitter(ctx: ScenarioContext): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  const { maxParallelism: p, maxSubtasks: n } = HOSTILE_LIMITS;
  const file = ctx.cluster.taskFile;
  const kind = ctx.random.weighted<'near-limit' | 'over-limit' | 'flood'>([[4, 'near-limit'], [4, 'over-limit'], [2, 'flood']]);
  if (kind === 'near-limit') {
    const shape = ctx.random.pick([[p, n - p - 1], [p - 1, n - p], [p, n - p]]);
    record(ctx, 'inject', 'near-limit', leader.id, `vertices ${shape.join('+')} (limits: parallelism ${p}, ${n} subtasks)`);
    await ctx.workload.submit('hostile', tinyGraph(ctx.random.hex(32), file, shape, 'near-limit'));
  } else if (kind === 'over-limit') {
    const shape = ctx.random.pick([[p + 1], [p, n - p + 1], [p + 1, p + 1]]);
    record(ctx, 'inject', 'over-limit', leader.id, `vertices ${shape.join('+')} (limits: parallelism ${p}, ${n} subtasks)`);
    await ctx.workload.submit('hostile', tinyGraph(ctx.random.hex(32), file, shape, 'over-limit'), 'submit-over-limit');
  } else {
    const count = ctx.random.int(HOSTILE_LIMITS.burst * 2, HOSTILE_LIMITS.maxPendingJobs + 10);
    record(ctx, 'inject', 'flood', leader.id, `${count} submissions at once (burst ${HOSTILE_LIMITS.burst}, ${HOSTILE_LIMITS.rate}/s, ${HOSTILE_LIMITS.maxPendingJobs} pending)`);
    const ops = await Promise.all(Array.from({ length: count }, () => ctx.workload.submit('flood', tinyGraph(ctx.random.hex(32), file, [1], 'flood'))));
    ctx.log(`flood: ${ops.filter((o) => o.outcome === 'ok').length} accepted, ${ops.filter((o) => o.status === 429).length} throttled`);
  }
  record(ctx, 'heal', kind, leader.id, 'done');
  await sleep(ctx.random.int(500, 2000));
}

/** Leadership changes in quick succession while the clients keep submitting through every replica. */
async function repeatedElections(ctx: ScenarioContext): Promise<void> {
  const leader = await leaderOrSkip(ctx);
  if (!leader) return;
  const sig = ctx.random.pick(['SIGTERM', 'SIGKILL'] as const);
  record(ctx, 'inject', 'election', leader.id, sig);
  await leader.signal(sig);
  leader.start();
  record(ctx, 'heal', 'election', leader.id, 'restarted at once');
  await ctx.cluster.waitForLeader(45_000);
  await sleep(ctx.random.int(500, 2000));
}

/** The autoscaler of the `autoscale` scenario: 2 static TaskManagers × 4 slots are the floor, up to 3 more. */
const AUTOSCALE_SETTINGS = [
  'resourcemanager.autoscaler.enabled=true', 'resourcemanager.autoscaler.provider=local',
  'resourcemanager.autoscaler.min=2', 'resourcemanager.autoscaler.max=5',
  'resourcemanager.autoscaler.scale-up-delay=1000', 'resourcemanager.autoscaler.scale-down-cooldown=3000',
  'resourcemanager.autoscaler.launch-timeout=20000', 'taskmanager.numberOfTaskSlots=4',
];

/**
 * Bursty load while the pool grows and shrinks: a burst of jobs (more subtasks than the static slots),
 * then, while launched TaskManagers come and go, one of: SIGKILL the leader (its successor adopts the
 * launches under way), SIGKILL a launched TaskManager (its tasks fail over; demand launches another),
 * SIGKILL a static one (restarted), or nothing (the pool shrinks through drains after the cooldown).
 */
async function autoscale(ctx: ScenarioContext): Promise<void> {
  const jobs = ctx.random.int(3, 6);
  record(ctx, 'inject', 'burst', 'cluster', `${jobs} jobs × parallelism 4 of 1-2 s tasks`);
  await Promise.all(Array.from({ length: jobs }, () => {
    const jobId = ctx.random.hex(32);
    return ctx.workload.submit('burst', {
      jobId, name: `burst-${jobId.slice(0, 6)}`,
      vertices: [{ id: 'v0', parallelism: 4, task: { type: 'command', argv: ['sh', '-c', taskScript(ctx.cluster.taskFile, ctx.random.pick(['1', '1.5', '2']))] } }],
      restartStrategy: { type: 'fixed-delay', attempts: 1000, delayMs: 200 },
    });
  }));
  await sleep(ctx.random.int(500, 4000));
  const fault = ctx.random.weighted<'kill-leader' | 'kill-launched' | 'kill-static' | 'none'>([[3, 'kill-leader'], [3, 'kill-launched'], [2, 'kill-static'], [2, 'none']]);
  if (fault === 'kill-leader') {
    await signalLeader(ctx, 'SIGKILL', 'kill-leader');
  } else if (fault === 'kill-launched') {
    const launched = localLaunchedTaskManagers(ctx.cluster.options.clusterId);
    if (launched.length === 0) {
      ctx.log('no launched TaskManager to kill yet');
    } else {
      const victim = ctx.random.pick(launched);
      record(ctx, 'inject', 'kill-launched-taskmanager', victim.id, `SIGKILL pid ${victim.pid}; not restarted (the autoscaler replaces it on demand)`);
      try { process.kill(victim.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
      record(ctx, 'heal', 'kill-launched-taskmanager', victim.id, 'left to the autoscaler');
      await settle(ctx, [2000, 4000]);
    }
  } else if (fault === 'kill-static') {
    await killTaskManager(ctx);
  } else {
    await sleep(ctx.random.int(3000, 6000)); // idle past the cooldown: drains shrink the pool
  }
}

export const SCENARIOS: Scenario[] = [
  { name: 'kill-leader', description: 'SIGKILL the leader; restart it as a standby', step: (c) => signalLeader(c, 'SIGKILL', 'kill-leader') },
  { name: 'term-leader', description: 'SIGTERM the leader (graceful resign); restart it', step: (c) => signalLeader(c, 'SIGTERM', 'term-leader') },
  { name: 'pause-leader', description: 'SIGSTOP the leader beyond the session timeout, then SIGCONT', step: pauseLeader },
  {
    // Held packets (TCP rides a short partition out); past 2/3 of the session timeout the client gives
    // up on its connection and reconnects (SUSPENDED, then RECONNECTED within the session).
    name: 'partition-leader-short', description: 'cut the leader from ZooKeeper for less than the session timeout (packets held, then delivered)',
    step: (c) => partition(c, 'leader', [0.3, 0.9], 'stall', 'partition-leader-short'),
  },
  {
    name: 'partition-leader-long', description: 'cut the leader from ZooKeeper for longer than the session timeout (packets lost)',
    step: (c) => partition(c, 'leader', [1.5, 2.5], 'blackhole', 'partition-leader-long'),
  },
  {
    name: 'partition-standby', description: 'cut a standby off from ZooKeeper (connections reset), beyond the session timeout',
    step: (c) => partition(c, 'standby', [1.2, 2.2], 'reject', 'partition-standby'),
  },
  { name: 'kill-zk-follower', description: 'SIGKILL a ZooKeeper follower; restart it', step: (c) => killZkServer(c, 'follower') },
  { name: 'kill-zk-leader', description: 'SIGKILL the ZooKeeper leader; restart it', step: (c) => killZkServer(c, 'leader') },
  { name: 'zk-quorum-loss', description: 'SIGKILL a majority of ZooKeeper servers; restart them', step: loseQuorum, maxSteps: 10 },
  { name: 'expire-session', description: 'expire the ZooKeeper session of the leader (or a standby) from outside', step: expire },
  { name: 'kill-taskmanager', description: 'SIGKILL a TaskManager; restart it on the same port, at once or after up to 5 s', step: killTaskManager },
  { name: 'pause-taskmanager', description: 'SIGSTOP a TaskManager (shorter and longer than heartbeat.timeout), then SIGCONT', step: pauseTaskManager },
  { name: 'elections', description: 'repeated leader changes while 3 clients submit through every replica', step: repeatedElections },
  { name: 'latch-reset', description: 'deleteall of the latch parent (<root>/leader) while the cluster runs, as an operator cleaning up', step: latchReset },
  {
    name: 'forger', description: 'a client without credentials forges job graphs and /leader/info and deletes latch nodes (open ACL, sealed state)',
    step: forger, cluster: { stateKey: true },
  },
  {
    name: 'hostile-submitter', description: 'jobs just under and over the limits, and floods against admission control (400, 429); no failover',
    step: hostileSubmitter, expectNoFailovers: true,
    cluster: {
      settings: [
        `dispatcher.max-parallelism=${HOSTILE_LIMITS.maxParallelism}`, `dispatcher.max-subtasks-per-job=${HOSTILE_LIMITS.maxSubtasks}`,
        `dispatcher.max-pending-jobs=${HOSTILE_LIMITS.maxPendingJobs}`, `dispatcher.submission-rate=${HOSTILE_LIMITS.rate}`,
        `dispatcher.submission-burst=${HOSTILE_LIMITS.burst}`,
      ],
    },
  },
  {
    name: 'autoscale', description: 'bursty load while the autoscaler grows and shrinks the TaskManager pool, with leader kills and TaskManager kills (launched and static)',
    step: autoscale, cluster: { settings: AUTOSCALE_SETTINGS },
  },
];

const SOAK: Scenario = {
  name: 'soak',
  description: 'a random mix of every scenario above that runs on the default cluster',
  step: async (ctx) => {
    const s = ctx.random.pick(SCENARIOS.filter((x) => !x.cluster));
    ctx.log(`soak: ${s.name}`);
    await s.step(ctx);
  },
  maxSteps: 200,
  durationFactor: 4,
};

export const ALL_SCENARIOS: Scenario[] = [...SCENARIOS, SOAK];

/** The subset the default test command runs (a few minutes in total). */
export const SHORT_SCENARIOS = ['kill-leader', 'partition-leader-long', 'expire-session', 'kill-taskmanager'];

export function findScenario(name: string): Scenario {
  const s = ALL_SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown chaos scenario ${JSON.stringify(name)}; known: ${ALL_SCENARIOS.map((x) => x.name).join(', ')}`);
  return s;
}

export function stepsBound(s: Scenario): number {
  return s.maxSteps ?? MAX_STEPS;
}
