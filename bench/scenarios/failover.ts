/**
 * Failover clock: SIGKILL and SIGTERM of the leader with N jobs stored, for several N (one cluster
 * per N; the graphs are written into the store's layout before the replicas start, as recovery.ts
 * does). Per trial:
 *  - latch: signal → `leadership.granted` in the new leader's own log;
 *  - ready: signal → the new leader's `GET /overview` counts all N jobs (external poll, 5 ms apart;
 *    `/overview` rather than `GET /jobs`, whose unpaginated listing stops at 1,000 jobs);
 *  - recovery: `leadership.granted` → `dispatcher.ready`, both from the new leader's log.
 * The killed replica is restarted (a fresh process, same port and id). Every trial starts from a
 * settled cluster, the steady state a failover drill assumes (hot standbys): the leader logged
 * `recovery.completed` for its epoch (its background JobMaster starts are over) and every standby's
 * mirror is synced with all N graphs (a restarted replica has re-read them). Without that wait, trial
 * k+1 ran while trial k's leader was still starting N JobMasters and the restarted replica was still
 * loading N graphs on the same cores, and measured that contention instead of a failover. How long
 * each settle took is recorded (reported, not a target).
 */
import { NativeZooKeeperClient } from '../../src/zk/client';
import { BenchCluster, BenchProcess } from '../lib/processes';
import { HttpClient, parseJson } from '../lib/http';
import { JobIds, typicalGraph, writeStoredGraphs } from '../lib/jobs';
import { summarize, percentile, round, Summary } from '../lib/stats';
import { sleep } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput, Target, target } from '../lib/types';

interface Case {
  jobs: number;
  sigterm: number;
  sigkill: number;
  /** SIGTERM → ready p95 limit (ms) at this size, if there is a target for it. */
  sigtermLimitMs?: number;
}

const SIZES: Record<'full' | 'smoke', { cases: Case[]; replicas: number; sessionTimeoutMs: number }> = {
  full: {
    cases: [
      { jobs: 100, sigterm: 5, sigkill: 0 },
      { jobs: 1000, sigterm: 10, sigkill: 5, sigtermLimitMs: 300 },
      { jobs: 10_000, sigterm: 5, sigkill: 3, sigtermLimitMs: 500 },
    ],
    replicas: 3, sessionTimeoutMs: 4000,
  },
  smoke: { cases: [{ jobs: 20, sigterm: 1, sigkill: 1, sigtermLimitMs: 300 }], replicas: 2, sessionTimeoutMs: 1500 },
};

/** SIGKILL → ready may exceed the session timeout by this much (the dead session's expiry starts the takeover). */
const SIGKILL_MARGIN_MS = 200;
/** Grant → ready with the most stored jobs may be at most this many times that with the fewest (SIGTERM p50s). */
const GRANT_READY_RATIO_LIMIT = 2;
/** Bound of the wait for a settled cluster before each trial (a restarted replica re-reads every graph). */
const SETTLE_TIMEOUT_MS = 180_000;

interface Trial extends Record<string, unknown> {
  jobs: number;
  kind: 'SIGKILL' | 'SIGTERM';
  trial: number;
  oldLeader: string;
  newLeader: string | null;
  epoch: number | null;
  latchMs: number | null;
  readyMs: number | null;
  readyLogMs: number | null;
  recoveryMs: number | null;
  exitMs: number | null;
  /** How long the wait for a settled cluster before this trial took (ms). */
  settleMs: number;
}

interface CaseSummary {
  jobs: number;
  sigkill: { latchMs: Summary; readyMs: Summary; recoveryMs: Summary };
  sigterm: { latchMs: Summary; readyMs: Summary; recoveryMs: Summary; exitMs: Summary };
  settleMs: Summary;
}

export const failover: Scenario = {
  name: 'failover',
  title: 'Failover clock',
  budgetMs: (mode) => (mode === 'full' ? 1_200_000 : 60_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const trials: Trial[] = [];
    const cases: CaseSummary[] = [];
    const targets: Target[] = [];
    let graphBytes = 0;
    for (const c of size.cases) {
      const cluster = await BenchCluster.create({ connect: ctx.connect, logDir: ctx.logDir, replicas: size.replicas, sessionTimeoutMs: size.sessionTimeoutMs });
      ctx.defer(() => cluster.stop());
      try {
        const ids = new JobIds();
        const graphs = Array.from({ length: c.jobs }, (_, i) => typicalGraph(ids.next(), i));
        graphBytes = JSON.stringify(graphs[0]).length;
        const writer = new NativeZooKeeperClient({ connect: ctx.connect, chroot: cluster.root, sessionTimeoutMs: 4000 });
        try {
          await writer.waitUntilConnected(15_000);
          const t = Date.now();
          await writeStoredGraphs(writer, graphs, 256);
          ctx.log(`failover: ${c.jobs} jobs stored in ${Date.now() - t} ms`);
        } finally {
          await writer.close();
        }
        await cluster.start();
        await readyWithJobs(cluster, c.jobs);
        const mine: Trial[] = [];
        for (const [kind, count] of [['SIGKILL', c.sigkill], ['SIGTERM', c.sigterm]] as const) {
          for (let i = 0; i < count; i++) {
            const t = await runTrial(cluster, kind, i + 1, c.jobs, size.sessionTimeoutMs);
            mine.push(t);
            ctx.log(`failover: ${c.jobs} jobs, ${kind} #${i + 1} (settled in ${t.settleMs} ms): latch ${t.latchMs} ms, ready ${t.readyMs} ms (log ${t.readyLogMs} ms, recovery ${t.recoveryMs} ms)`);
          }
        }
        trials.push(...mine);
        const of = (kind: string, key: keyof Trial): number[] => mine.filter((t) => t.kind === kind).map((t) => t[key]).filter((v): v is number => typeof v === 'number');
        cases.push({
          jobs: c.jobs,
          sigkill: { latchMs: summarize(of('SIGKILL', 'latchMs')), readyMs: summarize(of('SIGKILL', 'readyMs')), recoveryMs: summarize(of('SIGKILL', 'recoveryMs')) },
          sigterm: { latchMs: summarize(of('SIGTERM', 'latchMs')), readyMs: summarize(of('SIGTERM', 'readyMs')), recoveryMs: summarize(of('SIGTERM', 'recoveryMs')), exitMs: summarize(of('SIGTERM', 'exitMs')) },
          settleMs: summarize(mine.map((t) => t.settleMs)),
        });
        const n = c.jobs.toLocaleString('en-US');
        if (c.sigkill > 0) {
          targets.push(target(`failover.sigkill.ready.p95.${c.jobs}`, `SIGKILL, ${n} jobs: kill → ready p95 ≤ session timeout (${size.sessionTimeoutMs} ms) + ${SIGKILL_MARGIN_MS} ms`,
            percentile(of('SIGKILL', 'readyMs'), 95), '<=', size.sessionTimeoutMs + SIGKILL_MARGIN_MS, 'ms'));
        }
        if (c.sigtermLimitMs !== undefined && c.sigterm > 0) {
          targets.push(target(`failover.sigterm.ready.p95.${c.jobs}`, `SIGTERM, ${n} jobs: signal → ready p95 ≤ ${c.sigtermLimitMs} ms`,
            percentile(of('SIGTERM', 'readyMs'), 95), '<=', c.sigtermLimitMs, 'ms'));
        }
      } finally {
        await cluster.stop();
      }
    }
    // Grant → ready against the number of stored jobs (SIGTERM trials, which every case has): the curve, and
    // the p50 with the most jobs over that with the fewest (null with a single case, as in smoke mode).
    const grantReady = cases.filter((c) => c.sigterm.recoveryMs.n > 0)
      .map((c) => ({ jobs: c.jobs, p50Ms: c.sigterm.recoveryMs.p50, p95Ms: c.sigterm.recoveryMs.p95, trials: c.sigterm.recoveryMs.n }));
    const fewest = grantReady[0];
    const most = grantReady[grantReady.length - 1];
    const ratio = grantReady.length >= 2 && fewest.p50Ms && most.p50Ms !== null ? round(most.p50Ms / fewest.p50Ms, 2) : null;
    targets.push(target('failover.sigterm.grantready.ratio',
      `SIGTERM: grant → ready p50 with ${most ? most.jobs.toLocaleString('en-US') : '–'} jobs ÷ with ${fewest && grantReady.length >= 2 ? fewest.jobs.toLocaleString('en-US') : '–'} ≤ ${GRANT_READY_RATIO_LIMIT} (independent of the number of stored jobs)`,
      ratio, '<=', GRANT_READY_RATIO_LIMIT, '×'));
    const reference = cases.find((c) => c.jobs === 1000) ?? cases[cases.length - 1];
    return {
      settings: {
        replicas: size.replicas, sessionTimeoutMs: size.sessionTimeoutMs, cases: size.cases, pollIntervalMs: 5, graphBytes, ready: 'GET /overview counts every stored job',
        settled: 'before each trial: the leader logged recovery.completed for its epoch, every standby answers /health with a synced mirror of every stored graph',
      },
      summary: {
        sessionTimeoutMs: size.sessionTimeoutMs,
        grantReady: { curve: grantReady, ratio },
        // The 1,000-job case under the names earlier runs used.
        jobs: reference.jobs, sigkill: reference.sigkill, sigterm: reference.sigterm,
        cases,
      },
      trials,
      targets,
      notes: [],
    };
  },
};

/** A ready leader whose `/overview` counts all `jobs`, and every other replica a standby that knows it. */
async function readyWithJobs(cluster: BenchCluster, jobs: number): Promise<void> {
  const leader = await cluster.leader(120_000);
  const http = new HttpClient(1);
  try {
    for (const deadline = Date.now() + 120_000; ;) {
      if (countJobs((await http.tryRequest('GET', `${leader.url}/overview`)).text) >= jobs) break;
      if (Date.now() > deadline) throw new Error(`the leader did not list ${jobs} jobs within 120 s`);
      await sleep(50);
    }
  } finally {
    http.close();
  }
  for (const r of cluster.replicas) if (r !== leader) await cluster.standbyReady(r, 60_000);
}

/** Jobs the `/overview` body counts (all outcomes), -1 if it is not one. */
function countJobs(text: string): number {
  const o = parseJson<Record<string, unknown>>(text);
  if (!o || typeof o['jobs-running'] !== 'number') return -1;
  return ['jobs-running', 'jobs-finished', 'jobs-cancelled', 'jobs-failed'].reduce((n, k) => n + (Number(o[k]) || 0), 0);
}

async function runTrial(cluster: BenchCluster, kind: 'SIGKILL' | 'SIGTERM', n: number, jobs: number, sessionTimeoutMs: number): Promise<Trial> {
  const settleMs = await cluster.settle({ graphs: jobs, timeoutMs: SETTLE_TIMEOUT_MS });
  const leader = await cluster.leader();
  const survivors = cluster.replicas.filter((r) => r !== leader && r.running);
  const offsets = new Map(survivors.map((s) => [s, s.logSize()]));
  const poller = new ReadyPoller(survivors, jobs);
  await poller.warm();
  const deadline = Date.now() + sessionTimeoutMs + 120_000;
  const readyP = poller.run(deadline);
  const t0 = Date.now();
  leader.kill(kind);
  const exitP = leader.waitForExit(20_000).then(() => Date.now() - t0);
  const ready = await readyP;
  const exitMs = await exitP;
  poller.close();

  let latchAt: number | null = null;
  let readyLogAt: number | null = null;
  let epoch: number | null = null;
  if (ready) {
    // The first grant and ready after the signal, from the new leader's own log.
    const from = offsets.get(ready.replica) ?? 0;
    const granted = ready.replica.events('leadership.granted', from).find((e) => e.at >= t0 - 5);
    const readyEvent = ready.replica.events('dispatcher.ready', from).find((e) => e.at >= t0 - 5);
    latchAt = granted?.at ?? null;
    readyLogAt = readyEvent?.at ?? null;
    epoch = typeof granted?.epoch === 'number' ? granted.epoch : null;
  }
  const trial: Trial = {
    jobs, kind, trial: n, oldLeader: leader.id.replace(/^.*-/, ''), newLeader: ready ? ready.replica.id.replace(/^.*-/, '') : null, epoch,
    latchMs: latchAt !== null ? latchAt - t0 : null,
    readyMs: ready ? ready.at - t0 : null,
    readyLogMs: readyLogAt !== null ? readyLogAt - t0 : null,
    recoveryMs: latchAt !== null && readyLogAt !== null ? readyLogAt - latchAt : null,
    exitMs: kind === 'SIGTERM' ? exitMs : null,
    settleMs,
  };
  if (!ready) throw new Error(`${kind} trial ${n}: no replica's GET /overview counted all ${jobs} jobs before the deadline`);
  // Back to full strength: the old replica returns as a standby of the new leader.
  leader.start();
  await cluster.standbyReady(leader, 60_000);
  return trial;
}

/** Polls `GET /overview` on every candidate, 5 ms apart, until one counts all jobs. */
class ReadyPoller {
  private readonly clients: HttpClient[];
  private done: { replica: BenchProcess; at: number } | null = null;

  constructor(private readonly candidates: BenchProcess[], private readonly jobs: number) {
    this.clients = candidates.map(() => new HttpClient(1, 5_000));
  }

  /** Opens the keep-alive connections before the clock starts. */
  async warm(): Promise<void> {
    await Promise.all(this.candidates.map((c, i) => this.clients[i].tryRequest('GET', `${c.url}/livez`)));
  }

  run(deadline: number): Promise<{ replica: BenchProcess; at: number } | null> {
    return Promise.all(this.candidates.map((c, i) => this.poll(c, this.clients[i], deadline))).then(() => this.done);
  }

  private async poll(replica: BenchProcess, client: HttpClient, deadline: number): Promise<void> {
    while (!this.done && Date.now() < deadline) {
      const a = await client.tryRequest('GET', `${replica.url}/overview`);
      const at = Date.now();
      if (a.status === 200 && countJobs(a.text) >= this.jobs) {
        if (!this.done) this.done = { replica, at };
        return;
      }
      await sleep(5);
    }
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

