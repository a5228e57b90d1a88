/**
 * Recovery: N stored jobs; a standby takes over (SIGTERM of the leader) and recovers them. Measured
 * grant → ready from the new leader's own log (`leadership.granted` → `dispatcher.ready`), against a
 * raw baseline right before each trial: a fresh session of the product's NativeZooKeeperClient lists
 * `/jobresults` and `/jobgraphs` and reads every graph node, as many in flight as the store uses (256).
 *
 * History case, in the same run: two clusters with the same 100 unfinished jobs, one of them also
 * holding 10,000 finished jobs' results (planted straight into `/jobresults`, as the leader writes
 * them, clean, with their graphs gone). Grant → ready of both, and their ratio: recovery must depend on
 * the unfinished jobs, not on the history.
 */
import { NativeZooKeeperClient } from '../../src/zk/client';
import { JOBGRAPHS_PATH, JOBRESULTS_PATH, progressPath } from '../../src/zk/layout';
import { NoNodeError } from '../../src/zk/errors';
import { BenchCluster, BenchProcess } from '../lib/processes';
import { JobIds, typicalGraph, trivialGraph, writeStoredGraphs } from '../lib/jobs';
import { canonicalJson, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { nowMs, percentile, round, summarize } from '../lib/stats';
import { mapLimit, until } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { jobs: 10_000, trials: 5, readConcurrency: 256 },
  smoke: { jobs: 100, trials: 1, readConcurrency: 256 },
};

const HISTORY_SIZES = {
  full: { unfinished: 100, finished: 10_000, trials: 5 },
  smoke: { unfinished: 20, finished: 500, trials: 1 },
};

export const recovery: Scenario = {
  name: 'recovery',
  title: 'Recovery against raw reads',
  budgetMs: (mode) => (mode === 'full' ? 360_000 : 45_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.create({ connect: ctx.connect, logDir: ctx.logDir, replicas: 2, sessionTimeoutMs: 4000 });
    ctx.defer(() => cluster.stop());
    // The graphs go straight into the store's layout before any replica runs (same envelopes the store writes).
    const writer = new NativeZooKeeperClient({ connect: ctx.connect, chroot: cluster.root, sessionTimeoutMs: 4000 });
    ctx.defer(() => writer.close());
    await writer.waitUntilConnected(15_000);
    const ids = new JobIds();
    const t = nowMs();
    await writeStoredGraphs(writer, Array.from({ length: size.jobs }, (_, i) => typicalGraph(ids.next(), i)), 256);
    ctx.log(`recovery: ${size.jobs} graphs stored in ${Math.round(nowMs() - t)} ms`);
    await writer.close();

    const [first, second] = cluster.replicas;
    first.start();
    await readyLeader(cluster, first, size.jobs);
    second.start();
    await cluster.standbyReady(second, 60_000);

    const trials: Array<Record<string, unknown>> = [];
    for (let i = 0; i < size.trials; i++) {
      const raw = await rawRecoveryRead(ctx.connect, cluster.root, size.readConcurrency, size.jobs);
      const leader = await cluster.leader();
      const next = cluster.replicas.find((r) => r !== leader)!;
      const from = next.logSize();
      await leader.stop('SIGTERM');
      await readyLeader(cluster, next, size.jobs);
      const granted = next.events('leadership.granted', from)[0];
      const ready = next.events('dispatcher.ready', from)[0];
      if (!granted || !ready) throw new Error(`trial ${i + 1}: ${next.id} logged no leadership.granted / dispatcher.ready`);
      if (ready.jobs !== size.jobs) throw new Error(`trial ${i + 1}: ready with ${ready.jobs} jobs, expected ${size.jobs}`);
      const recoveryMs = ready.at - granted.at;
      const rawGraphsMs = round(raw.graphsMs, 1);
      const rawAllMs = round(raw.allMs, 1);
      trials.push({ trial: i + 1, replica: next.id.replace(/^.*-/, ''), recoveryMs, recoveryMsReported: ready.recoveryMs, rawGraphsMs, rawAllMs,
        ratioGraphs: round(recoveryMs / rawGraphsMs, 3), ratioAll: round(recoveryMs / rawAllMs, 3) });
      ctx.log(`recovery: trial ${i + 1}: grant → ready ${recoveryMs} ms, raw read of graphs ${rawGraphsMs} ms, of graphs and progress ${rawAllMs} ms`);
      leader.start();
      await cluster.standbyReady(leader, 60_000);
    }
    const rec = trials.map((t) => t.recoveryMs as number);
    const rawGraphs = trials.map((t) => t.rawGraphsMs as number);
    const rawAll = trials.map((t) => t.rawAllMs as number);
    const ratioGraphs = round(percentile(rec, 50)! / percentile(rawGraphs, 50)!, 3);
    const ratioAll = round(percentile(rec, 50)! / percentile(rawAll, 50)!, 3);
    await cluster.stop();

    const hsize = HISTORY_SIZES[ctx.mode];
    const without = await historyCase(ctx, hsize.unfinished, 0, hsize.trials);
    const withHistory = await historyCase(ctx, hsize.unfinished, hsize.finished, hsize.trials);
    const ratioHistory = round(percentile(withHistory, 50)! / percentile(without, 50)!, 3);
    return {
      settings: { ...size, takeover: 'SIGTERM of the leader; the standby recovers', history: hsize },
      summary: {
        recoveryMs: summarize(rec), rawGraphsMs: summarize(rawGraphs), rawAllMs: summarize(rawAll), ratioGraphs, ratioAll,
        history: {
          unfinished: hsize.unfinished, finished: hsize.finished, withoutHistoryMs: summarize(without), withHistoryMs: summarize(withHistory), ratio: ratioHistory,
          trials: without.map((w, i) => ({ trial: i + 1, withoutHistoryMs: w, withHistoryMs: withHistory[i] })),
        },
      },
      trials,
      targets: [
        target('recovery.ratio.graphs', `grant → ready ≤ 1.5 × raw read of the ${size.jobs} graph nodes (medians)`, ratioGraphs, '<=', 1.5, 'ratio'),
        target('recovery.ratio.all', `grant → ready ≤ 1.5 × raw read of every node recovery reads: graphs and per-job progress (medians)`, ratioAll, '<=', 1.5, 'ratio'),
        target('recovery.history.ratio', `${hsize.unfinished} unfinished jobs: grant → ready with ${hsize.finished} finished jobs' results ≤ 1.5 × without (medians)`, ratioHistory, '<=', 1.5, 'ratio'),
      ],
      notes: [
        'A recovered JobMaster reads its job\'s progress node (`/jobs/<id>/progress`, absent for jobs that never ran) before the leader publishes /leader/info, so recovery reads two nodes per job; the second baseline reads both.',
        `History case: the ${hsize.finished} results are planted straight into /jobresults (clean, graphs gone, as the leader leaves them); job-result-store.retention.max-count is raised above them so the history stays whole across the trials.`,
      ],
    };
  },
};

async function readyLeader(cluster: BenchCluster, replica: BenchProcess, jobs: number): Promise<void> {
  await until(`${replica.id} ready with ${jobs} jobs`, async () => {
    const h = await cluster.health(replica);
    return h.status === 200 && h.role === 'leader';
  }, 120_000, 20);
}

/**
 * What recovery must read, done directly: list results and graphs, read every graph (`graphsMs`),
 * then every job's progress node, which a recovered JobMaster reads before it acts (`allMs`).
 */
async function rawRecoveryRead(connect: string, root: string, concurrency: number, expected: number): Promise<{ graphsMs: number; allMs: number }> {
  const client = new NativeZooKeeperClient({ connect, chroot: root, sessionTimeoutMs: 4000 });
  try {
    await client.waitUntilConnected(15_000);
    const started = nowMs();
    const results = await client.getChildren(JOBRESULTS_PATH);
    await mapLimit(results, concurrency, (id) => client.get(`${JOBRESULTS_PATH}/${id}`));
    const ids = await client.getChildren(JOBGRAPHS_PATH);
    const graphs = await mapLimit(ids, concurrency, (id) => client.get(`${JOBGRAPHS_PATH}/${id}`));
    const graphsMs = nowMs() - started;
    await mapLimit(ids, concurrency, (id) => client.get(progressPath(id)).catch((err) => {
      if (!(err instanceof NoNodeError)) throw err;
    }));
    const allMs = nowMs() - started;
    if (graphs.length !== expected) throw new Error(`raw read found ${graphs.length} graphs, expected ${expected}`);
    return { graphsMs, allMs };
  } finally {
    await client.close();
  }
}

/**
 * One cluster with `unfinished` stored graphs and `finished` planted results; `trials` SIGTERM
 * takeovers; grant → ready (ms) of each from the new leader's log.
 */
async function historyCase(ctx: BenchContext, unfinished: number, finished: number, trials: number): Promise<number[]> {
  const cluster = await BenchCluster.create({
    connect: ctx.connect, logDir: ctx.logDir, replicas: 2, sessionTimeoutMs: 4000,
    settings: [`job-result-store.retention.max-count=${finished + 1000}`],
  });
  try {
    const writer = new NativeZooKeeperClient({ connect: ctx.connect, chroot: cluster.root, sessionTimeoutMs: 4000 });
    try {
      await writer.waitUntilConnected(15_000);
      const ids = new JobIds();
      await writeStoredGraphs(writer, Array.from({ length: unfinished }, (_, i) => typicalGraph(ids.next(), i)), 256);
      await plantResults(writer, Array.from({ length: finished }, (_, i) => trivialGraph(ids.next(), i)));
    } finally {
      await writer.close();
    }
    const [first, second] = cluster.replicas;
    first.start();
    await readyLeader(cluster, first, unfinished);
    second.start();
    await cluster.standbyReady(second, 60_000);
    const out: number[] = [];
    for (let i = 0; i < trials; i++) {
      const leader = await cluster.leader();
      const next = cluster.replicas.find((r) => r !== leader)!;
      const from = next.logSize();
      await leader.stop('SIGTERM');
      await readyLeader(cluster, next, unfinished);
      const granted = next.events('leadership.granted', from)[0];
      const ready = next.events('dispatcher.ready', from)[0];
      if (!granted || !ready) throw new Error(`history trial ${i + 1}: ${next.id} logged no leadership.granted / dispatcher.ready`);
      if (ready.jobs !== unfinished) throw new Error(`history trial ${i + 1}: ready with ${ready.jobs} jobs, expected ${unfinished}`);
      out.push(ready.at - granted.at);
      ctx.log(`recovery: history ${finished}: trial ${i + 1}: grant → ready ${ready.at - granted.at} ms`);
      leader.start();
      await cluster.standbyReady(leader, 60_000);
    }
    return out;
  } finally {
    await cluster.stop();
  }
}

/** Writes clean results the way the leader leaves them, ended an hour ago and before. */
async function plantResults(client: NativeZooKeeperClient, graphs: Array<Record<string, unknown>>): Promise<void> {
  await client.mkdirp(JOBRESULTS_PATH);
  const end = Date.now() - 3_600_000;
  await mapLimit(graphs, 256, async (g, i) => {
    const parsed = parseJobGraph(g, { maxParallelism: 128 });
    await client.create(`${JOBRESULTS_PATH}/${parsed.jobId}`, JSON.stringify({
      state: 'clean', jobId: parsed.jobId, name: parsed.name, jobStatus: 'FINISHED', startTime: end + i - 5, endTime: end + i, submittedAt: end + i - 10,
      graphDigest: graphDigest(canonicalJson(parsed)),
    }), 'persistent');
  });
}
