/**
 * Recovery: N stored jobs; a standby takes over (SIGTERM of the leader) and recovers them. Measured
 * grant → ready from the new leader's own log (`leadership.granted` → `dispatcher.ready`), against a
 * raw baseline right before each trial: a fresh session of the product's ZooKeeperClient lists
 * `/jobresults` and `/jobgraphs` and reads every graph node, as many in flight as the store uses (256).
 */
import { ZooKeeperClient } from '../../src/zk/client';
import { JOBGRAPHS_PATH, JOBRESULTS_PATH, progressPath } from '../../src/zk/layout';
import { NoNodeError } from '../../src/zk/errors';
import { BenchCluster, BenchProcess } from '../lib/processes';
import { JobIds, typicalGraph, writeStoredGraphs } from '../lib/jobs';
import { nowMs, percentile, round, summarize } from '../lib/stats';
import { mapLimit, until } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { jobs: 10_000, trials: 5, readConcurrency: 256 },
  smoke: { jobs: 100, trials: 1, readConcurrency: 256 },
};

export const recovery: Scenario = {
  name: 'recovery',
  title: 'Recovery against raw reads',
  budgetMs: (mode) => (mode === 'full' ? 240_000 : 30_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.create({ connect: ctx.connect, logDir: ctx.logDir, replicas: 2, sessionTimeoutMs: 4000 });
    ctx.defer(() => cluster.stop());
    // The graphs go straight into the store's layout before any replica runs (same envelopes the store writes).
    const writer = new ZooKeeperClient({ connect: ctx.connect, chroot: cluster.root, sessionTimeoutMs: 4000 });
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
    return {
      settings: { ...size, takeover: 'SIGTERM of the leader; the standby recovers' },
      summary: { recoveryMs: summarize(rec), rawGraphsMs: summarize(rawGraphs), rawAllMs: summarize(rawAll), ratioGraphs, ratioAll },
      trials,
      targets: [
        target('recovery.ratio.graphs', `grant → ready ≤ 1.5 × raw read of the ${size.jobs} graph nodes (medians)`, ratioGraphs, '<=', 1.5, 'ratio'),
        target('recovery.ratio.all', `grant → ready ≤ 1.5 × raw read of every node recovery reads: graphs and per-job progress (medians)`, ratioAll, '<=', 1.5, 'ratio'),
      ],
      notes: ['A recovered JobMaster reads its job\'s progress node (`/jobs/<id>/progress`, absent for jobs that never ran) before the leader publishes /leader/info, so recovery reads two nodes per job; the second baseline reads both.'],
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
  const client = new ZooKeeperClient({ connect, chroot: root, sessionTimeoutMs: 4000 });
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
