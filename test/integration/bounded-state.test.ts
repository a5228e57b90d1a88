/**
 * Bounded by design, end to end on a real ensemble: with the job limits lowered by config (so a job
 * "just under every limit" runs in seconds on a 2-core machine) a job at every limit runs to FINISHED
 * through a leader SIGKILL with its progress sharded (shard znodes listed and measured); a large job
 * cancels without any replica exiting; a graph planted in `/jobgraphs` whose state exceeds the limits
 * ends quarantined with the reason while leadership stays where it is.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import { ClusterContext, connectedClient, ensembleHooks, eventually } from '../helpers/ensemble';
import { ExecutionCluster } from '../helpers/execution-cluster';
import { generateJobId } from '../../src/jobgraph';
import { MAX_JOB_PROGRESS_BYTES, progressShardBytesBound } from '../../src/jobgraph/limits';
import { graphDigest } from '../../src/store/jobgraph-store';
import { canonicalJson } from '../../src/jobgraph';
import { jobGraphPath, progressPath, vertexProgressPath, vertexProgressShardsPath } from '../../src/zk/layout';
import { readJsonLines } from '../../src/util/ha-process';
import type { NativeZooKeeperClient } from '../../src/zk/client';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);

const MAX_VERTICES = 10;
const MAX_PARALLELISM = 64;
const MAX_SUBTASKS = 200;
const LIMITS = [`dispatcher.max-vertices-per-job=${MAX_VERTICES}`, `dispatcher.max-parallelism=${MAX_PARALLELISM}`, `dispatcher.max-subtasks-per-job=${MAX_SUBTASKS}`];
/** 10 vertices, widest at max parallelism, 200 subtasks: at every limit. */
const PARALLELISMS = [64, 64, 32, 16, 8, 8, 4, 2, 1, 1];

let cluster: Promise<ExecutionCluster> | null = null;
let zk: NativeZooKeeperClient | null = null;

function theCluster(t: ExecutionContext<ClusterContext<ExecutionCluster>>): Promise<ExecutionCluster> {
  cluster ??= ExecutionCluster.start({ connect: t.context.ensemble.connectString, replicas: 2, slots: 8, settings: [...LIMITS, 'taskmanager.orphan-timeout=60000'] })
    .then((c) => (t.context.clusters.push(c), c));
  return cluster;
}

/** A session on the cluster's own chroot, to read what the product stored. */
async function zkOf(t: ExecutionContext<ClusterContext<ExecutionCluster>>, c: ExecutionCluster): Promise<NativeZooKeeperClient> {
  zk ??= await connectedClient({ connect: t.context.ensemble.connectString, chroot: `/ha-dispatcher/${c.clusterId}` });
  return zk;
}

test.after.always(async () => {
  await zk?.close();
});

function chain(sleepMs: number, parallelisms = PARALLELISMS): object {
  return {
    name: 'at-every-limit',
    vertices: parallelisms.map((parallelism, i) => ({
      id: `v${i}`, parallelism, ...(i ? { inputs: [`v${i - 1}`] } : {}), task: { type: 'sleep', ms: sleepMs },
    })),
  };
}

function withLogs<T>(t: ExecutionContext<ClusterContext<ExecutionCluster>>, c: ExecutionCluster, fn: () => Promise<T>): Promise<T> {
  return fn().catch((err) => {
    t.log(c.logs());
    throw err;
  });
}

/** `leadership.revoked` events in every replica's log. */
function revocations(c: ExecutionCluster): number {
  return c.replicas.flatMap((r) => readJsonLines(r.logFile())).filter((l) => l.event === 'leadership.revoked').length;
}

test.serial('a job over the configured limits is refused with a 400 naming the limit and the excess', async (t) => {
  const c = await theCluster(t);
  const a = await c.rest('POST', '/jobs', { jobId: generateJobId(), ...chain(5, [...PARALLELISMS.slice(0, 9), 2]) });
  t.is(a.status, 400, a.text);
  t.regex(a.text, /201 subtasks .*1 more than the 200 allowed \(dispatcher\.max-subtasks-per-job\)/);
});

test.serial('a graph planted in ZooKeeper whose state exceeds the limits is quarantined with the reason; leadership stays put', async (t) => {
  const c = await theCluster(t);
  await withLogs(t, c, async () => {
    const leader = await c.leader();
    const before = revocations(c);
    const client = await zkOf(t, c);
    // Valid under a larger limit (as an earlier version or configuration accepted it): 300 subtasks.
    const graph = { jobId: generateJobId(), name: 'planted', vertices: [0, 1, 2, 3, 4].map((i) => ({ id: `p${i}`, name: `p${i}`, parallelism: 60, inputs: [], task: { type: 'sleep' as const, ms: 1 } })) };
    const envelope = { formatVersion: 1, submittedAt: new Date().toISOString(), digest: graphDigest(canonicalJson(graph)), graph };
    await client.create(jobGraphPath(graph.jobId), JSON.stringify(envelope), 'persistent');

    const entry = await eventually('the planted graph quarantined', async () => {
      const q = await c.rest('GET', '/jobs/quarantined');
      return q.body.quarantined?.find((e: any) => e.jobId === graph.jobId);
    }, 30000);
    t.regex(entry.reason, /300 subtasks .*100 more than the 200 allowed \(dispatcher\.max-subtasks-per-job\)/);
    t.is(await client.exists(jobGraphPath(graph.jobId)), null, 'no longer in /jobgraphs: no leader recovers it again');
    t.is((await c.leader()).id, leader.id, 'the same replica still leads');
    t.true(c.replicas.every((r) => r.running));
    t.is(revocations(c), before, 'no leadership.revoked event');
  });
});

test.serial('cancelling a large job works and no replica exits', async (t) => {
  const c = await theCluster(t);
  await withLogs(t, c, async () => {
    const leader = await c.leader();
    const jobId = await c.submit(chain(120_000));
    await c.waitForJob(jobId, (j) => j.state === 'RUNNING' && j.vertices[0].tasks.RUNNING > 0, 'first vertex running', 60000);
    t.is((await c.rest('PATCH', `/jobs/${jobId}?mode=cancel`)).status, 202);
    const job = await c.waitForJob(jobId, (j) => j.state === 'CANCELED', 'job CANCELED', 60000);
    t.is(job.vertices.reduce((n: number, v: any) => n + v.subtasks.length, 0), MAX_SUBTASKS);
    t.true(c.replicas.every((r) => r.running), 'every replica is still running');
    t.is((await c.leader()).id, leader.id);
  });
});

test.serial('a job at every limit runs to FINISHED through a leader SIGKILL; its progress is sharded and every node stays under its bound', async (t) => {
  const c = await theCluster(t);
  await withLogs(t, c, async () => {
    const client = await zkOf(t, c);
    const jobId = await c.submit(chain(150));
    await c.waitForJob(jobId, (j) => j.vertices[1].status === 'FINISHED' && j.state === 'RUNNING', 'two vertices finished', 90000);

    // Shards: one node per started vertex, each under the bound its parallelism implies.
    const shards = await client.getChildren(vertexProgressShardsPath(jobId));
    t.true(['v0', 'v1'].every((v) => shards.includes(v)), `shards: ${shards.join(', ')}`);
    for (const name of shards) {
      const { data } = await client.get(vertexProgressPath(jobId, name));
      const shard = JSON.parse(data.toString('utf8'));
      t.is(shard.formatVersion, 2);
      t.true(data.length <= progressShardBytesBound(PARALLELISMS[Number(name.slice(1))]), `${name}: ${data.length} B`);
    }
    const v0 = JSON.parse((await client.get(vertexProgressPath(jobId, 'v0'))).data.toString('utf8'));
    t.true(v0.finished.length === 64 && v0.finished.every(Boolean), 'v0 recorded finished in its shard');
    const jobLevel = (await client.get(progressPath(jobId))).data;
    t.true(jobLevel.length <= MAX_JOB_PROGRESS_BYTES);
    t.false('vertices' in JSON.parse(jobLevel.toString('utf8')), 'the job-level node holds no subtasks');

    const oldLeader = await c.leader();
    await oldLeader.signal('SIGKILL');
    const next = await c.leader(60000, [oldLeader]);
    t.not(next.id, oldLeader.id);
    const job = await c.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED after the failover', 120000);
    t.is(job.vertices.length, MAX_VERTICES);
    t.true(job.vertices[0].subtasks.every((s: any) => s.attempt === 0 && s.status === 'FINISHED'), 'finished work was not re-run');
    await eventually('progress removed after the result was recorded', async () => (await client.exists(`/jobs/${jobId}`)) === null, 30000);
  });
});
