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
import { sleep, until } from '../lib/wait';
import { BenchContext, BlockedError, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { jobs: 10_000, capacity: 1000, batch: 1000, taskManagers: 2, slots: 8, concurrency: 32 },
  smoke: { jobs: 30, capacity: 10, batch: 10, taskManagers: 1, slots: 4, concurrency: 8 },
};

const MiB = 2 ** 20;

interface Sample extends Record<string, unknown> { completed: number; rssMiB: number | null; heapUsedMiB: number | null; batchMs: number | null }

export const memory: Scenario = {
  name: 'memory',
  title: 'Leader memory with archived jobs',
  budgetMs: (mode) => (mode === 'full' ? 240_000 : 30_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.create({
      connect: ctx.connect, logDir: ctx.logDir, replicas: 1, sessionTimeoutMs: 4000,
      taskManagers: size.taskManagers, slots: size.slots, settings: [`jobstore.max-capacity=${size.capacity}`],
    });
    ctx.defer(() => cluster.stop());
    try {
      await cluster.start();
    } catch (err) {
      throw new BlockedError(`the execution backend is not usable: ${(err as Error).message}\n${cluster.logs(10)}`);
    }
    const leader = await cluster.leader();
    const heapUsed = async (): Promise<number | null> => {
      const a = await cluster.http.tryRequest('GET', `${leader.url}/metrics`);
      const m = /^ha_dispatcher_process_nodejs_heap_size_used_bytes\s+([0-9.e+]+)/m.exec(a.text);
      return m ? Number(m[1]) : null;
    };
    const sample = async (completed: number, batchMs: number | null): Promise<Sample> => {
      const heap = await heapUsed();
      const rss = leader.rssBytes();
      return { completed, rssMiB: rss === null ? null : round(rss / MiB, 1), heapUsedMiB: heap === null ? null : round(heap / MiB, 1), batchMs };
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
      samples.push(await sample(done, Date.now() - t));
      ctx.log(`memory: ${done} completed, leader RSS ${samples[samples.length - 1].rssMiB} MiB, heap ${samples[samples.length - 1].heapUsedMiB} MiB`);
    }
    await sleep(2000);
    const settled = await sample(done, null);

    // Bounded: once the cache is full, each further 1,000 completed jobs may only add what the
    // always-kept final status costs, not another cache's worth of details.
    const atCapacity = samples.find((s) => s.completed >= Math.max(size.capacity * 2, size.batch)) ?? samples[1];
    const last = samples[samples.length - 1];
    const perThousand = (a: Sample, b: Sample, key: 'rssMiB' | 'heapUsedMiB'): number | null =>
      a[key] === null || b[key] === null || b.completed === a.completed ? null : round(((b[key]! - a[key]!) / (b.completed - a.completed)) * 1000, 2);
    const fillHeapPerK = perThousand(samples[0], atCapacity, 'heapUsedMiB');
    const steadyHeapPerK = perThousand(atCapacity, last, 'heapUsedMiB');
    const steadyRssPerK = perThousand(atCapacity, last, 'rssMiB');
    return {
      settings: { ...size, job: 'one vertex, parallelism 1, built-in sleep 0 ms' },
      summary: {
        rssMiB: { start: samples[0].rssMiB, atCapacity: atCapacity.rssMiB, end: last.rssMiB, settled: settled.rssMiB, max: Math.max(...samples.map((s) => s.rssMiB ?? 0)) },
        heapUsedMiB: { start: samples[0].heapUsedMiB, atCapacity: atCapacity.heapUsedMiB, end: last.heapUsedMiB, settled: settled.heapUsedMiB },
        growthPer1000Jobs: { heapWhileFillingMiB: fillHeapPerK, heapAfterCapacityMiB: steadyHeapPerK, rssAfterCapacityMiB: steadyRssPerK, fromCompleted: atCapacity.completed },
      },
      trials: [...samples, { ...settled, settledAfterMs: 2000 }],
      targets: [target('memory.rss.growth', `leader RSS growth per 1,000 completed jobs once the cache (${size.capacity}) is full`, steadyRssPerK, '<=', 5, 'MiB')],
      notes: ['Every job\'s final status stays in memory (and in the JobResult store) by design; only the details cache is bounded by jobstore.max-capacity.'],
    };
  },
};
