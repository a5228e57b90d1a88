/**
 * Failover clock: SIGKILL and SIGTERM of the leader with N jobs stored. Per trial:
 *  - latch: signal → `leadership.granted` in the new leader's own log;
 *  - ready: signal → the new leader answers `GET /jobs` listing all N jobs (external poll, 5 ms apart);
 *  - recovery: `leadership.granted` → `dispatcher.ready`, both from the new leader's log.
 * The killed replica is restarted (a fresh process, same port and id) and must be a standby that
 * knows the new leader before the next trial starts.
 */
import { BenchCluster, BenchProcess } from '../lib/processes';
import { HttpClient, parseJson } from '../lib/http';
import { JobIds, typicalGraph } from '../lib/jobs';
import { summarize, percentile } from '../lib/stats';
import { submitAll } from '../lib/submit';
import { sleep } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { trials: 10, jobs: 1000, replicas: 3, sessionTimeoutMs: 4000 },
  smoke: { trials: 1, jobs: 20, replicas: 2, sessionTimeoutMs: 1500 },
};

interface Trial extends Record<string, unknown> {
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
}

export const failover: Scenario = {
  name: 'failover',
  title: 'Failover clock',
  budgetMs: (mode) => (mode === 'full' ? 300_000 : 40_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.create({ connect: ctx.connect, logDir: ctx.logDir, replicas: size.replicas, sessionTimeoutMs: size.sessionTimeoutMs });
    ctx.defer(() => cluster.stop());
    await cluster.start();
    {
      const leader = await cluster.leader();
      const ids = new JobIds();
      const graphs = Array.from({ length: size.jobs }, (_, i) => typicalGraph(ids.next(), i));
      const stored = await submitAll(leader.url, graphs, 32);
      if (stored.accepted !== size.jobs) throw new Error(`only ${stored.accepted} of ${size.jobs} jobs were accepted: ${JSON.stringify(stored.rejected)}`);
      ctx.log(`failover: ${size.jobs} jobs stored in ${Math.round(stored.wallMs)} ms`);

      const trials: Trial[] = [];
      for (const kind of ['SIGKILL', 'SIGTERM'] as const) {
        for (let i = 0; i < size.trials; i++) {
          const t = await runTrial(cluster, kind, i + 1, size.jobs, size.sessionTimeoutMs);
          trials.push(t);
          ctx.log(`failover: ${kind} #${i + 1}: latch ${t.latchMs} ms, ready ${t.readyMs} ms (log ${t.readyLogMs} ms, recovery ${t.recoveryMs} ms)`);
        }
      }
      const of = (kind: string, key: keyof Trial): number[] => trials.filter((t) => t.kind === kind).map((t) => t[key]).filter((v): v is number => typeof v === 'number');
      const killReadyP95 = percentile(of('SIGKILL', 'readyMs'), 95);
      const termReadyP95 = percentile(of('SIGTERM', 'readyMs'), 95);
      return {
        settings: { ...size, sessionTimeoutMs: size.sessionTimeoutMs, pollIntervalMs: 5, graphBytes: JSON.stringify(graphs[0]).length },
        summary: {
          sessionTimeoutMs: size.sessionTimeoutMs,
          sigkill: { latchMs: summarize(of('SIGKILL', 'latchMs')), readyMs: summarize(of('SIGKILL', 'readyMs')), recoveryMs: summarize(of('SIGKILL', 'recoveryMs')) },
          sigterm: { latchMs: summarize(of('SIGTERM', 'latchMs')), readyMs: summarize(of('SIGTERM', 'readyMs')), recoveryMs: summarize(of('SIGTERM', 'recoveryMs')), exitMs: summarize(of('SIGTERM', 'exitMs')) },
        },
        trials,
        targets: [
          target('failover.sigkill.ready.p95', `SIGKILL: kill → ready p95 ≤ session timeout (${size.sessionTimeoutMs} ms) + 500 ms`, killReadyP95, '<=', size.sessionTimeoutMs + 500, 'ms'),
          target('failover.sigterm.ready.p95', 'SIGTERM: signal → ready p95 ≤ 300 ms', termReadyP95, '<=', 300, 'ms'),
        ],
        notes: [],
      };
    }
  },
};

async function runTrial(cluster: BenchCluster, kind: 'SIGKILL' | 'SIGTERM', n: number, jobs: number, sessionTimeoutMs: number): Promise<Trial> {
  const leader = await cluster.leader();
  const survivors = cluster.replicas.filter((r) => r !== leader && r.running);
  for (const s of survivors) await cluster.standbyReady(s);
  const offsets = new Map(survivors.map((s) => [s, s.logSize()]));
  const poller = new ReadyPoller(survivors, jobs);
  await poller.warm();
  const deadline = Date.now() + sessionTimeoutMs + 30_000;
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
    kind, trial: n, oldLeader: leader.id.replace(/^.*-/, ''), newLeader: ready ? ready.replica.id.replace(/^.*-/, '') : null, epoch,
    latchMs: latchAt !== null ? latchAt - t0 : null,
    readyMs: ready ? ready.at - t0 : null,
    readyLogMs: readyLogAt !== null ? readyLogAt - t0 : null,
    recoveryMs: latchAt !== null && readyLogAt !== null ? readyLogAt - latchAt : null,
    exitMs: kind === 'SIGTERM' ? exitMs : null,
  };
  if (!ready) throw new Error(`${kind} trial ${n}: no replica answered GET /jobs with all ${jobs} jobs before the deadline`);
  // Back to full strength: the old replica returns as a standby of the new leader.
  leader.start();
  await cluster.standbyReady(leader, 60_000);
  return trial;
}

/** Polls `GET /jobs` on every candidate, 5 ms apart, until one lists all jobs. */
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
      const a = await client.tryRequest('GET', `${replica.url}/jobs`);
      const at = Date.now();
      if (a.status === 200) {
        const jobs = parseJson<{ jobs: unknown[] }>(a.text)?.jobs;
        if (Array.isArray(jobs) && jobs.length === this.jobs) {
          if (!this.done) this.done = { replica, at };
          return;
        }
      }
      await sleep(5);
    }
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

