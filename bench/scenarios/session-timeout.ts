/**
 * Session timeout: what each candidate `high-availability.zookeeper.client.session-timeout` costs
 * and buys. For every candidate T, a fresh cluster (leader + one standby, N stored jobs) with T:
 *  - CPU load: B busy-loop processes (more than the cores) run for D seconds while a client polls
 *    the leader; counted: how often the healthy leader lost its leadership (`leadership.revoked` in
 *    its log) during the load;
 *  - stalls (a GC pause, a frozen VM): the leader is stopped (SIGSTOP) for P ms and resumed; lost =
 *    it logged `leadership.revoked` or the standby took over (checked a settle time after the resume);
 *  - the price: SIGKILL of the leader → the standby answers `/health` as the ready leader.
 * A short timeout makes a crash cheap and a pause dangerous; the table shows both sides per T.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { BenchCluster, BenchProcess } from '../lib/processes';
import { HttpClient, parseJson } from '../lib/http';
import { JobIds, typicalGraph } from '../lib/jobs';
import { percentile } from '../lib/stats';
import { submitAll } from '../lib/submit';
import { sleep } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput } from '../lib/types';

const SIZES = {
  full: { timeoutsMs: [2000, 4000, 6000, 10_000], cpuLoadMs: 15_000, burners: 4, pausesMs: [500, 1000, 2000, 3000, 5000], pauseTrials: 2, killTrials: 2, jobs: 100 },
  smoke: { timeoutsMs: [1500], cpuLoadMs: 1000, burners: 2, pausesMs: [200], pauseTrials: 1, killTrials: 1, jobs: 5 },
};

/** After a resume, how long the leader gets to notice a lost session before it is judged. */
const SETTLE_MS = 1500;

interface TimeoutTrial extends Record<string, unknown> {
  sessionTimeoutMs: number;
  cpuLoad: { burners: number; durationMs: number; revocations: number; leaderChanged: boolean };
  /** One entry per pause trial; `expired`: the server also reported the session expired (not only a SUSPENDED connection). */
  pauses: Array<{ pauseMs: number; lost: boolean; expired: boolean }>;
  /** Longest pause the leader kept its leadership through in every trial (null if none). */
  longestSurvivedMs: number | null;
  /** Shortest pause that cost the leadership in any trial (null if none did). */
  shortestLostMs: number | null;
  killReadyMs: number[];
  killReadyP50Ms: number | null;
}

export const sessionTimeout: Scenario = {
  name: 'session-timeout',
  title: 'Session timeout: false failovers against the crash outage',
  budgetMs: (mode) => (mode === 'full' ? 720_000 : 60_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const burners = new Set<ChildProcess>();
    ctx.defer(() => { for (const b of burners) b.kill('SIGKILL'); });
    const trials: TimeoutTrial[] = [];
    for (const timeoutMs of size.timeoutsMs) {
      const cluster = await BenchCluster.create({ connect: ctx.connect, logDir: ctx.logDir, replicas: 2, sessionTimeoutMs: timeoutMs });
      ctx.defer(() => cluster.stop());
      const http = new HttpClient(4, 5_000);
      try {
        await cluster.start();
        await stable(cluster);
        const ids = new JobIds();
        const stored = await submitAll((await cluster.leader()).url, Array.from({ length: size.jobs }, (_, i) => typicalGraph(ids.next(), i)), 8);
        if (stored.accepted !== size.jobs) throw new Error(`only ${stored.accepted} of ${size.jobs} jobs were accepted`);

        const cpuLoad = await cpuLoadProbe(cluster, http, burners, size.burners, size.cpuLoadMs);
        await stable(cluster);
        const pauses: TimeoutTrial['pauses'] = [];
        for (const pauseMs of size.pausesMs) {
          for (let i = 0; i < size.pauseTrials; i++) {
            pauses.push({ pauseMs, ...await pauseProbe(cluster, pauseMs) });
            await stable(cluster);
          }
        }
        const killReadyMs: number[] = [];
        for (let i = 0; i < size.killTrials; i++) {
          killReadyMs.push(await killProbe(cluster, timeoutMs));
          await stable(cluster);
        }
        const lost = pauses.filter((p) => p.lost).map((p) => p.pauseMs);
        const survived = pauses.filter((p) => !lost.includes(p.pauseMs)).map((p) => p.pauseMs);
        const trial: TimeoutTrial = {
          sessionTimeoutMs: timeoutMs, cpuLoad, pauses,
          longestSurvivedMs: survived.length ? Math.max(...survived) : null, shortestLostMs: lost.length ? Math.min(...lost) : null,
          killReadyMs, killReadyP50Ms: percentile(killReadyMs, 50),
        };
        trials.push(trial);
        ctx.log(`session-timeout ${timeoutMs} ms: CPU load → ${cpuLoad.revocations} revocations; pauses ${pauses.map((p) => `${p.pauseMs}:${p.lost ? 'lost' : 'kept'}`).join(' ')}; SIGKILL → ready ${killReadyMs.join(', ')} ms`);
      } finally {
        http.close();
        await cluster.stop();
      }
    }
    return {
      settings: { ...size, replicas: 2, settleMs: SETTLE_MS, tolerateSuspendedConnections: false, burner: 'node -e busy loop, self-ending after the load time' },
      summary: Object.fromEntries(trials.map((t) => [`t${t.sessionTimeoutMs}`, {
        cpuRevocations: t.cpuLoad.revocations, longestSurvivedMs: t.longestSurvivedMs, shortestLostMs: t.shortestLostMs, killReadyP50Ms: t.killReadyP50Ms,
      }])),
      trials,
      targets: [],
      notes: [
        'Pauses are SIGSTOP/SIGCONT of the leader, standing in for a stop-the-world GC pause or a frozen VM; with tolerate-suspended-connections false (the default) the leader gives up its leadership as soon as its ZooKeeper client reports the connection SUSPENDED, which it does after about two thirds of the session timeout without an answer — before the session itself expires.',
      ],
    };
  },
};

/** A ready leader, and every other running replica a standby that knows it. */
async function stable(cluster: BenchCluster): Promise<BenchProcess> {
  const leader = await cluster.leader(60_000);
  for (const r of cluster.replicas) if (r !== leader && r.running) await cluster.standbyReady(r, 60_000);
  return leader;
}

/** Busy loops beside the cluster for `durationMs`; counts the leader's revocations meanwhile. */
async function cpuLoadProbe(cluster: BenchCluster, http: HttpClient, burners: Set<ChildProcess>, count: number, durationMs: number): Promise<TimeoutTrial['cpuLoad']> {
  const leader = await cluster.leader();
  const from = leader.logSize();
  // Each burner ends itself after the load time, even if this process dies.
  const code = `const end = Date.now() + ${durationMs}; while (Date.now() < end) { /* burn */ }`;
  const started = Array.from({ length: count }, () => {
    const b = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
    burners.add(b);
    return new Promise<void>((resolve) => b.once('exit', () => { burners.delete(b); resolve(); }));
  });
  const end = Date.now() + durationMs;
  while (Date.now() < end) {
    await http.tryRequest('GET', `${leader.url}/overview`);
    await sleep(50);
  }
  await Promise.all(started);
  await sleep(SETTLE_MS);
  const revocations = leader.events('leadership.revoked', from).length;
  const now = await cluster.leader(60_000);
  return { burners: count, durationMs, revocations, leaderChanged: now !== leader };
}

/** Stops the leader for `pauseMs`: did that cost it the leadership, and did its session expire? */
async function pauseProbe(cluster: BenchCluster, pauseMs: number): Promise<{ lost: boolean; expired: boolean }> {
  const leader = await cluster.leader();
  const from = leader.logSize();
  leader.kill('SIGSTOP');
  await sleep(pauseMs);
  leader.kill('SIGCONT');
  await sleep(SETTLE_MS);
  const expired = leader.events('zk.state', from).some((e) => e.reason === 'session expired');
  if (leader.events('leadership.revoked', from).length > 0) return { lost: true, expired };
  for (const r of cluster.replicas) {
    if (r === leader || !r.running) continue;
    if ((await cluster.health(r)).role === 'leader') return { lost: true, expired };
  }
  return { lost: false, expired };
}

/** SIGKILL of the leader → the standby answers `/health` as the ready leader, ms; the killed one returns as a standby. */
async function killProbe(cluster: BenchCluster, timeoutMs: number): Promise<number> {
  const leader = await cluster.leader();
  const standby = cluster.replicas.find((r) => r !== leader && r.running)!;
  const probe = new HttpClient(1, 2_000);
  try {
    await probe.tryRequest('GET', `${standby.url}/livez`);
    const t0 = Date.now();
    leader.kill('SIGKILL');
    for (;;) {
      const a = await probe.tryRequest('GET', `${standby.url}/health`);
      if (a.status === 200 && parseJson<{ role?: string }>(a.text)?.role === 'leader') break;
      if (Date.now() - t0 > timeoutMs + 60_000) throw new Error(`SIGKILL: ${standby.id} did not lead within the session timeout + 60 s`);
      await sleep(5);
    }
    const readyMs = Date.now() - t0;
    await leader.waitForExit(10_000);
    leader.start();
    return readyMs;
  } finally {
    probe.close();
  }
}
