/**
 * Submission throughput: N jobs via `POST /jobs` to the leader at concurrency 32 and 1, against a raw
 * baseline in the same run: creates of the same envelope bytes with the product's NativeZooKeeperClient, at
 * the same concurrency, from this process. Both sides get the same unmeasured warm-up first.
 */
import * as crypto from 'node:crypto';
import { NativeZooKeeperClient } from '../../src/zk/client';
import { BenchCluster } from '../lib/processes';
import { HttpClient } from '../lib/http';
import { envelopeBytes, JobIds, typicalGraph } from '../lib/jobs';
import { nowMs, round, summarize } from '../lib/stats';
import { submitAll } from '../lib/submit';
import { mapLimit } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { jobs: 5000, warmup: 300, concurrency: [32, 1] },
  smoke: { jobs: 40, warmup: 5, concurrency: [8, 1] },
};

interface Run { jobsPerSecond: number; latencyMs: ReturnType<typeof summarize>; wallMs: number; accepted: number }

export const throughput: Scenario = {
  name: 'throughput',
  title: 'Submission throughput',
  budgetMs: (mode) => (mode === 'full' ? 180_000 : 30_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.create({ connect: ctx.connect, logDir: ctx.logDir, replicas: 1, sessionTimeoutMs: 4000 });
    ctx.defer(() => cluster.stop());
    await cluster.start();
    const leader = await cluster.leader();
    const raw = new NativeZooKeeperClient({ connect: ctx.connect, chroot: `/ha-dispatcher/bench-raw-${crypto.randomBytes(5).toString('hex')}`, sessionTimeoutMs: 4000 });
    ctx.defer(() => raw.close());
    await raw.waitUntilConnected(15_000);
    await raw.mkdirp('/jobgraphs');
    const ids = new JobIds();
    const graphs = (n: number): Array<Record<string, unknown>> => Array.from({ length: n }, (_, i) => typicalGraph(ids.next(), i));

    const trials: Array<Record<string, unknown>> = [];
    const byConcurrency = new Map<number, { rest: Run; raw: Run }>();
    for (const c of size.concurrency) {
      // Raw baseline: the bytes the store would write, created with the same client class at the same concurrency.
      await rawCreates(raw, graphs(size.warmup), c);
      const rawRun = await rawCreates(raw, graphs(size.jobs), c);
      const http = new HttpClient(c);
      await submitAll(leader.url, graphs(size.warmup), c, http);
      const restGraphs = graphs(size.jobs);
      const rest = await submitAll(leader.url, restGraphs, c, http);
      http.close();
      if (rest.accepted !== size.jobs) throw new Error(`REST at concurrency ${c}: ${rest.accepted} of ${size.jobs} accepted (${JSON.stringify(rest.rejected)})`);
      const restRun: Run = { jobsPerSecond: round(rest.accepted / (rest.wallMs / 1000), 1), latencyMs: summarize(rest.latencies), wallMs: round(rest.wallMs, 1), accepted: rest.accepted };
      byConcurrency.set(c, { rest: restRun, raw: rawRun });
      const ratio = round(restRun.jobsPerSecond / rawRun.jobsPerSecond, 3);
      trials.push({ concurrency: c, rest: restRun, raw: rawRun, ratio });
      ctx.log(`throughput: c=${c}: REST ${restRun.jobsPerSecond}/s (p50 ${restRun.latencyMs.p50}, p99 ${restRun.latencyMs.p99} ms), raw ${rawRun.jobsPerSecond}/s (p50 ${rawRun.latencyMs.p50}, p99 ${rawRun.latencyMs.p99} ms), ratio ${ratio}`);
    }
    const targets = size.concurrency.map((c) => {
      const r = byConcurrency.get(c)!;
      return target(`throughput.c${c}.ratio`, `concurrency ${c}: REST jobs/s ≥ 70% of raw creates/s`, round(r.rest.jobsPerSecond / r.raw.jobsPerSecond, 3), '>=', 0.7, 'ratio');
    });
    return {
      settings: { ...size, envelopeBytes: envelopeBytes(graphs(1)[0]).length, requestBytes: JSON.stringify(graphs(1)[0]).length },
      summary: Object.fromEntries(trials.map((t) => [`c${t.concurrency}`, t])),
      trials,
      targets,
      notes: ['The load generator (HTTP client, or raw ZooKeeper client) runs in the benchmark process on the same machine.'],
    };
  },
};

async function rawCreates(client: NativeZooKeeperClient, graphs: Array<Record<string, unknown>>, concurrency: number): Promise<Run> {
  const payloads = graphs.map((g) => ({ path: `/jobgraphs/${String(g.jobId)}`, bytes: envelopeBytes(g) }));
  const latencies: number[] = [];
  const started = nowMs();
  await mapLimit(payloads, concurrency, async (p) => {
    const t = nowMs();
    await client.create(p.path, p.bytes, 'persistent');
    latencies.push(nowMs() - t);
  });
  const wallMs = nowMs() - started;
  return { jobsPerSecond: round(graphs.length / (wallMs / 1000), 1), latencyMs: summarize(latencies), wallMs: round(wallMs, 1), accepted: graphs.length };
}
