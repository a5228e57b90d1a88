/**
 * Memory: the leader's RSS (and V8 heap) while N jobs complete, with `jobstore.max-capacity` C. The
 * jobs are trivial (one built-in 0 ms sleep) and really run on TaskManagers, so each completed job
 * leaves a full JobDetails in the completed-jobs cache. Submitted in batches; after every batch,
 * once all of it finished, the leader's memory is sampled.
 */
import { BenchCluster } from '../lib/processes';
import { parseJson } from '../lib/http';
import { JobIds, trivialGraph } from '../lib/jobs';
import { round } from '../lib/stats';
import { submitAll } from '../lib/submit';
import { until } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { jobs: 10_000, capacity: 1000, batch: 1000, taskManagers: 2, slots: 8, concurrency: 32 },
  smoke: { jobs: 30, capacity: 10, batch: 10, taskManagers: 1, slots: 4, concurrency: 8 },
};

const MiB = 2 ** 20;
/** V8's --trace-gc line for a full GC: "Mark-Compact 38.8 (56.1) -> 27.0 (56.3) MB". */
const MARK_COMPACT = /Mark-Compact(?: \(reduce\))? [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;

interface Sample extends Record<string, unknown> {
  completed: number;
  rssMiB: number | null;
  heapUsedMiB: number | null;
  /** Heap after the most recent full GC (mark-compact) so far: the live set plus little garbage. */
  liveHeapMiB: number | null;
  fullGcs: number;
  batchMs: number | null;
}

export const memory: Scenario = {
  name: 'memory',
  title: 'Leader memory with archived jobs',
  budgetMs: (mode) => (mode === 'full' ? 240_000 : 30_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.launch(ctx, {
      connect: ctx.connect, logDir: ctx.logDir, replicas: 1, sessionTimeoutMs: 4000,
      taskManagers: size.taskManagers, slots: size.slots, settings: [`jobstore.max-capacity=${size.capacity}`],
      replicaNodeFlags: ['--trace-gc'],
    });
    const leader = await cluster.leader();
    const heapUsed = async (): Promise<number | null> => {
      const a = await cluster.http.tryRequest('GET', `${leader.url}/metrics`);
      const m = /^nodejs_heap_size_used_bytes\s+([0-9.e+]+)/m.exec(a.text);
      return m ? Number(m[1]) : null;
    };
    const sample = async (completed: number, batchMs: number | null): Promise<Sample> => {
      const rss = leader.rssBytes();
      const heap = await heapUsed();
      const fullGcs = leader.plainLines().map((l) => MARK_COMPACT.exec(l)).filter((m): m is RegExpExecArray => m !== null);
      const live = fullGcs.length ? Number(fullGcs[fullGcs.length - 1][1]) : null;
      return {
        completed, rssMiB: rss === null ? null : round(rss / MiB, 1), heapUsedMiB: heap === null ? null : round(heap / MiB, 1),
        liveHeapMiB: live, fullGcs: fullGcs.length, batchMs,
      };
    };
    const finished = async (): Promise<number> => {
      const a = await cluster.http.tryRequest('GET', `${leader.url}/overview`);
      return parseJson<any>(a.text)?.['jobs-finished'] ?? -1;
    };

    const ids = new JobIds();
    const samples: Sample[] = [await sample(0, null)];
    let done = 0;
    while (done < size.jobs) {
      const n = Math.min(size.batch, size.jobs - done);
      const t = Date.now();
      const run = await submitAll(leader.url, Array.from({ length: n }, (_, i) => trivialGraph(ids.next(), done + i)), size.concurrency);
      if (run.accepted !== n) throw new Error(`${run.accepted} of ${n} accepted: ${JSON.stringify(run.rejected)}`);
      const target = done + n;
      await until(`${target} finished jobs`, async () => (await finished()) >= target, 120_000, 100);
      done = target;
      const s = await sample(done, Date.now() - t);
      samples.push(s);
      ctx.log(`memory: ${done} completed, leader RSS ${s.rssMiB} MiB, heap ${s.heapUsedMiB} MiB, after last full GC ${s.liveHeapMiB} MiB (${s.fullGcs} full GCs)`);
    }

    // Bounded: once the details cache is full, further completed jobs may only add what the
    // always-kept final status costs (a JobResultEntry), not another cached JobDetails each.
    const atCapacity = samples.find((x) => x.completed >= Math.max(size.capacity * 2, size.batch)) ?? samples[1];
    const last = samples[samples.length - 1];
    const perThousand = (a: Sample, b: Sample, key: 'rssMiB' | 'liveHeapMiB'): number | null =>
      a[key] === null || b[key] === null || b.completed === a.completed ? null : round(((b[key]! - a[key]!) / (b.completed - a.completed)) * 1000, 2);
    const liveGrowth = perThousand(atCapacity, last, 'liveHeapMiB');
    const rssGrowth = perThousand(atCapacity, last, 'rssMiB');
    return {
      settings: { ...size, job: 'one vertex, parallelism 1, built-in sleep 0 ms', liveHeap: 'heap size after the latest mark-compact, from --trace-gc' },
      summary: {
        rssMiB: { start: samples[0].rssMiB, atCapacity: atCapacity.rssMiB, end: last.rssMiB, max: Math.max(...samples.map((x) => x.rssMiB ?? 0)) },
        liveHeapMiB: { atCapacity: atCapacity.liveHeapMiB, end: last.liveHeapMiB },
        growthPer1000Jobs: { liveHeapMiB: liveGrowth, rssMiB: rssGrowth, fromCompleted: atCapacity.completed, toCompleted: last.completed },
      },
      trials: samples,
      targets: [target('memory.live.growth', `live heap growth per 1,000 completed jobs once the cache (${size.capacity}) is full`, liveGrowth, '<=', 1, 'MiB')],
      notes: [
        'Every job\'s final status stays in memory (and in the JobResult store) by design, about 0.6 KiB per job; only the details cache is bounded by jobstore.max-capacity. With the cache unbounded (max-capacity 100,000) the same probe grew the live heap by about 1.5 MiB per 1,000 jobs, hence the 1 MiB limit.',
      ],
    };
  },
};
