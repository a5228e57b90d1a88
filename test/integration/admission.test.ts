/**
 * Bounded by design, end to end on real replica processes and a real 3-server ensemble: admission
 * control under a submission flood, result retention across a failover, and stable pagination.
 * No TaskManagers: accepted jobs wait for slots until they are cancelled, which ends them (CANCELED).
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import * as crypto from 'node:crypto';
import { NativeZooKeeperClient } from '../../src/zk/client';
import { canonicalJson, parseJobGraph } from '../../src/jobgraph';
import { graphDigest } from '../../src/store/jobgraph-store';
import { mapLimit } from '../../src/util/concurrency';
import { ClusterContext, connectedClient, ensembleHooks, eventually } from '../helpers/ensemble';
import { Cluster, http } from '../helpers/cluster';

const test = anyTest as TestFn<ClusterContext<Cluster>>;
ensembleHooks(test);

async function cluster(t: ExecutionContext<ClusterContext<Cluster>>, settings: string[], options: { clusterId?: string; replicas?: number } = {}): Promise<Cluster> {
  const c = await Cluster.start({ connect: t.context.ensemble.connectString, settings, ...options });
  t.context.clusters.push(c);
  t.teardown(() => { if (!t.passed) t.log(c.logs()); });
  return c;
}

function zkFor(t: ExecutionContext<ClusterContext<Cluster>>, clusterId: string): Promise<NativeZooKeeperClient> {
  return connectedClient({ connect: t.context.ensemble.connectString, chroot: `/ha-dispatcher/${clusterId}` });
}

function hexId(n: number): string { return n.toString(16).padStart(32, '0'); }
function graph(n: number): Record<string, unknown> {
  return { jobId: hexId(n), name: `job-${n}`, vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 1 } }] };
}

test.serial('a flood of 3,000 submissions against max-pending-jobs 500: the excess gets 429 + Retry-After, the store stays bounded, every accepted job ends', async (t) => {
  const c = await cluster(t, ['dispatcher.max-pending-jobs=500', 'dispatcher.submission-rate=100000', 'dispatcher.submission-burst=100000'], { replicas: 1 });
  const leader = await c.leader();
  const answers = await mapLimit(Array.from({ length: 3000 }, (_, i) => i + 1), 16, (n) => http('POST', `${leader.url}/jobs`, graph(n)));
  const accepted = answers.filter((a) => a.status === 202);
  const refused = answers.filter((a) => a.status === 429);
  t.is(accepted.length, 500);
  t.is(refused.length, 2500, `other answers: ${JSON.stringify(answers.filter((a) => a.status !== 202 && a.status !== 429).slice(0, 3).map((a) => [a.status, a.text]))}`);
  t.true(refused.every((a) => Number(a.headers.get('retry-after')) >= 1));
  t.true(refused.every((a) => /dispatcher\.max-pending-jobs = 500/.test(a.body.errors[0]) && a.body.limit === 'dispatcher.max-pending-jobs'));
  const zk = await zkFor(t, c.clusterId);
  try {
    t.is((await zk.getChildren('/jobgraphs')).length, 500, 'one stored graph per accepted job, none for the refused');
    const overview = (await http('GET', `${leader.url}/overview`)).body;
    t.like(overview.admission, { 'pending-jobs': 500, 'max-pending-jobs': 500 });
    const metrics = (await http('GET', `${leader.url}/metrics`)).text;
    t.regex(metrics, /ha_dispatcher_admission_rejections_total\{limit="dispatcher.max-pending-jobs"\} 2500/);
    t.regex(metrics, /ha_dispatcher_pending_jobs 500/);
    // A resubmission of an accepted job is still idempotent at the limit.
    t.is((await http('POST', `${leader.url}/jobs`, JSON.parse(JSON.stringify(graph(Number.parseInt(accepted[0].body.jobid, 16)))))).status, 202);
    // Every accepted job ends.
    const ids = accepted.map((a) => a.body.jobid as string);
    await mapLimit(ids, 16, async (id) => t.is((await http('PATCH', `${leader.url}/jobs/${id}?mode=cancel`)).status, 202));
    await eventually('every accepted job CANCELED', async () => {
      const jobs = (await http('GET', `${leader.url}/jobs?limit=1000`)).body.jobs as Array<{ status: string }>;
      return jobs.length === 500 && jobs.every((j) => j.status === 'CANCELED');
    }, 60000, 200);
    await eventually('graphs cleaned up', async () => (await zk.getChildren('/jobgraphs')).length === 0, 30000, 100);
    t.is((await zk.getChildren('/jobresults')).length, 500);
    t.is((await http('POST', `${leader.url}/jobs`, graph(5000))).status, 202, 'room again once jobs ended');
  } finally {
    await zk.close();
  }
});

/** Plants finished results the way the leader writes them (clean, graph gone), ended at `endTime(i)`. */
async function plantResults(zk: NativeZooKeeperClient, ids: number[], endTime: (n: number) => number): Promise<void> {
  await zk.mkdirp('/jobresults');
  await mapLimit(ids, 128, async (n) => {
    const g = parseJobGraph(graph(n), { maxParallelism: 128 });
    const end = endTime(n);
    await zk.create(`/jobresults/${hexId(n)}`, JSON.stringify({
      state: 'clean', jobId: hexId(n), name: `job-${n}`, jobStatus: 'FINISHED', startTime: end - 5, endTime: end, submittedAt: end - 10,
      graphDigest: graphDigest(canonicalJson(g)),
    }));
  });
}

test.serial('with retention of 1,000 results, 5,000 finished jobs leave at most 1,000 nodes; a job inside the window survives a failover, one outside answers 404 naming the retention', async (t) => {
  const clusterId = `c-${crypto.randomBytes(5).toString('hex')}`;
  const zk = await zkFor(t, clusterId);
  try {
    // 4,990 planted (old) results plus 10 real jobs that end after them: 5,000 finished jobs.
    const base = Date.now() - 3_600_000;
    await plantResults(zk, Array.from({ length: 4990 }, (_, i) => 10_000 + i), (n) => base + n);
    const c = await cluster(t, ['job-result-store.retention.max-count=1000', 'dispatcher.submission-rate=100000', 'dispatcher.submission-burst=100000'], { clusterId });
    let leader = await c.leader();
    const real = Array.from({ length: 10 }, (_, i) => 1 + i);
    for (const n of real) t.is((await http('POST', `${leader.url}/jobs`, graph(n))).status, 202);
    for (const n of real) t.is((await http('PATCH', `${leader.url}/jobs/${hexId(n)}?mode=cancel`)).status, 202);
    await eventually('the real jobs ended', async () => {
      const states = await Promise.all(real.map(async (n) => (await http('GET', `${leader.url}/jobs/${hexId(n)}`)).body.state));
      return states.every((s) => s === 'CANCELED');
    }, 30000, 100);
    await eventually('results trimmed to the retention', async () => (await zk.getChildren('/jobresults')).length <= 1000, 60000, 200);
    const kept = await zk.getChildren('/jobresults');
    t.true(kept.length <= 1000 && kept.length >= 990, `${kept.length} results kept`);
    for (const n of real) t.true(kept.includes(hexId(n)), `real job ${n} is inside the window`);
    t.false(kept.includes(hexId(10_000)), 'the oldest planted result was deleted');

    // Listing: more than 1,000 jobs known → the unpaginated form is cut with a header and a cursor.
    for (const n of [20, 21]) t.is((await http('POST', `${leader.url}/jobs`, graph(n))).status, 202);
    const all = await eventually('the history is loaded', async () => {
      const r = await http('GET', `${leader.url}/jobs`);
      return r.headers.get('x-result-truncated') === 'true' ? r : null;
    }, 30000, 200);
    t.is(all.body.jobs.length, 1000);
    t.deepEqual(Object.keys(all.body), ['jobs'], 'the unpaginated shape is kept');
    const rest = await http('GET', `${leader.url}/jobs?cursor=${all.headers.get('x-next-cursor')}`);
    t.is(rest.status, 200);
    t.true(rest.body.jobs.length >= 2);
    t.is(new Set([...all.body.jobs, ...rest.body.jobs].map((j: { id: string }) => j.id)).size, all.body.jobs.length + rest.body.jobs.length);

    await leader.signal('SIGKILL');
    leader = await c.leader(30000, [leader]);
    const inside = await http('GET', `${leader.url}/jobs/${hexId(real[0])}`);
    t.is(inside.status, 200);
    t.is(inside.body.state, 'CANCELED');
    t.is((await http('GET', `${leader.url}/jobs/${hexId(real[0])}/execution-result`)).body['job-execution-result']['application-status'], 'CANCELED');
    const outside = await http('GET', `${leader.url}/jobs/${hexId(10_000)}`);
    t.is(outside.status, 404);
    t.regex(outside.body.errors[0], /kept for the last 1000 jobs/);
    const overview = (await http('GET', `${leader.url}/overview`)).body;
    t.like(overview['job-results'], { 'retention-max-count': 1000 });
  } finally {
    await zk.close();
  }
});

test.serial('pages of GET /jobs and /jobs/overview: stable order, no duplicates or gaps while jobs are added', async (t) => {
  const c = await cluster(t, [], { replicas: 1 });
  const leader = await c.leader();
  for (let n = 1; n <= 40; n++) t.is((await http('POST', `${leader.url}/jobs`, graph(n))).status, 202);
  for (const path of ['/jobs', '/jobs/overview']) {
    const seen: string[] = [];
    let cursor: string | null = null;
    let added = 0;
    do {
      const r = await http('GET', `${leader.url}${path}?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      t.is(r.status, 200);
      seen.push(...r.body.jobs.map((j: { id?: string; jid?: string }) => j.id ?? j.jid));
      cursor = r.body.next;
      if (cursor) t.is(r.headers.get('x-next-cursor'), cursor);
      // Jobs added between pages come after the cursor.
      const n = 100 + (path === '/jobs' ? 0 : 50) + added++;
      t.is((await http('POST', `${leader.url}/jobs`, graph(n))).status, 202);
    } while (cursor);
    t.is(new Set(seen).size, seen.length, `${path}: no duplicates`);
    for (let n = 1; n <= 40; n++) t.true(seen.includes(hexId(n)), `${path}: job ${n} listed`);
    t.deepEqual(seen.slice(0, 40), Array.from({ length: 40 }, (_, i) => hexId(i + 1)), `${path}: submission order`);
  }
  t.is((await http('GET', `${leader.url}/jobs?limit=0`)).status, 400);
  t.is((await http('GET', `${leader.url}/jobs?cursor=bogus`)).status, 400);
});
