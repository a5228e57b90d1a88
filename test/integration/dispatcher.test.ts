import anyTest, { TestFn, ExecutionContext } from 'ava';
import { NativeZooKeeperClient } from '../../src/zk/client';
import { canonicalJson, parseJobGraph } from '../../src/jobgraph';
import { ClusterContext, connectedClient, ensembleHooks, eventually } from '../helpers/ensemble';
import { Cluster, http, ReplicaProcess } from '../helpers/cluster';

const test = anyTest as TestFn<ClusterContext<Cluster>>;
ensembleHooks(test);

async function cluster(t: ExecutionContext<ClusterContext<Cluster>>, options: { sessionTimeoutMs?: number } = {}): Promise<Cluster> {
  const c = await Cluster.start({ connect: t.context.ensemble.connectString, ...options });
  t.context.clusters.push(c);
  t.teardown(() => { if (!t.passed) t.log(c.logs()); });
  return c;
}

/** A chroot client looking at the same cluster's ZooKeeper nodes the replicas use; closed when the test ends. */
async function zkFor(t: ExecutionContext<ClusterContext<Cluster>>, c: Cluster): Promise<NativeZooKeeperClient> {
  const zk = await connectedClient({ connect: t.context.ensemble.connectString, chroot: `/ha-dispatcher/${c.clusterId}` });
  t.teardown(() => zk.close());
  return zk;
}

function hexId(n: number): string {
  return n.toString(16).padStart(32, '0');
}

function graph(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    jobId: hexId(n), name: `job-${n}`,
    vertices: [
      { id: 'a', parallelism: 1 + (n % 3), task: { type: 'sleep', ms: 10 + n } },
      { id: 'b', parallelism: 1, inputs: ['a'], task: { type: 'command', argv: ['true'] } },
    ],
    ...extra,
  };
}

test.serial('POST /jobs to a standby answers 307 to the leader, and following it submits the job once', async (t) => {
  const c = await cluster(t);
  const leader = await c.leader();
  const [standby] = await c.standbys(leader);
  const body = graph(1);
  const redirect = await eventually('the standby redirects', async () => {
    const r = await http('POST', `${standby.url}/jobs?from=test`, body);
    return r.status === 503 ? null : r;
  });
  t.is(redirect.status, 307);
  t.is(redirect.headers.get('location'), `${leader.url}/jobs?from=test`);
  t.is(redirect.headers.get('x-ha-leader-id'), leader.id);
  t.truthy(redirect.headers.get('x-ha-leader-epoch'));
  t.is(redirect.body.leader.replicaId, leader.id);
  // Follow it the way curl -L --post307 does: same method, same body.
  const accepted = await http('POST', redirect.headers.get('location')!, body);
  t.is(accepted.status, 202);
  t.deepEqual(accepted.body, { jobid: hexId(1), jobUrl: `/jobs/${hexId(1)}` });
  const again = await http('POST', `${leader.url}/jobs`, body);
  t.is(again.status, 202, 'the same graph again is an idempotent success');
  const list = await http('GET', `${leader.url}/jobs`);
  t.deepEqual(list.body.jobs.map((j: { id: string }) => j.id), [hexId(1)]);
  const conflict = await http('POST', `${leader.url}/jobs`, { ...body, name: 'another-name' });
  t.is(conflict.status, 409);
  t.regex(conflict.body.errors[0], /different graph/);
});

async function submitMany(c: Cluster, leader: ReplicaProcess, count: number): Promise<Map<string, string>> {
  const targets = c.replicas.filter((r) => r.running);
  const submitted = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const body = graph(1000 + i);
    // A standby that has not yet seen the new leader answers 503 + Retry-After: clients retry.
    const res = await eventually(`submission ${i} accepted`, async () => {
      let r = await http('POST', `${targets[i % targets.length].url}/jobs`, body);
      if (r.status === 307) r = await http('POST', r.headers.get('location')!, body);
      if (r.status !== 202 && r.status !== 503) throw new Error(`submission ${i} answered ${r.status}: ${r.text}`);
      return r.status === 202 ? r : null;
    }, 15000, 100);
    submitted.set(res.body.jobid, canonicalJson(parseJobGraph(body, { maxParallelism: 128 })));
  }
  void leader;
  return submitted;
}

async function assertAllRecovered(t: ExecutionContext<ClusterContext<Cluster>>, c: Cluster, newLeader: ReplicaProcess, submitted: Map<string, string>): Promise<void> {
  const list = await http('GET', `${newLeader.url}/jobs`);
  const ids = list.body.jobs.map((j: { id: string }) => j.id).sort();
  t.deepEqual(ids, [...submitted.keys()].sort(), 'every acknowledged job is listed exactly once');
  const zk = await zkFor(t, c);
  for (const [id, canonical] of submitted) {
    const { data } = await zk.get(`/jobgraphs/${id}`);
    const envelope = JSON.parse(data.toString('utf8'));
    t.is(canonicalJson(envelope.graph), canonical, `graph of ${id} is intact`);
  }
}

test.serial('100 jobs survive a SIGKILL of the leader: the new leader lists all of them with the same graphs', async (t) => {
  const c = await cluster(t);
  const leader = await c.leader();
  const submitted = await submitMany(c, leader, 100);
  const oldEpoch = (await leader.health())!.body.epoch;
  await leader.signal('SIGKILL');
  const next = await c.leader(30000, [leader]);
  const health = await next.health();
  t.true(health!.body.epoch > oldEpoch);
  await assertAllRecovered(t, c, next, submitted);
});

test.serial('100 jobs survive a SIGTERM of the leader, and the takeover needs no session expiry', async (t) => {
  // A session timeout far longer than the wait below: a takeover in time proves the old session
  // was closed and its latch node deleted, not left to expire.
  const c = await cluster(t, { sessionTimeoutMs: 30000 });
  const leader = await c.leader();
  const submitted = await submitMany(c, leader, 100);
  await leader.signal('SIGTERM');
  t.is(leader.child?.exitCode, 0, 'graceful stop exits 0');
  const next = await c.leader(15000, [leader]);
  await assertAllRecovered(t, c, next, submitted);
});

test.serial('a cancelled job stays CANCELED across two further failovers and is never recovered as runnable', async (t) => {
  const c = await cluster(t);
  let leader = await c.leader();
  const body = graph(7);
  t.is((await http('POST', `${leader.url}/jobs`, body)).status, 202);
  t.is((await http('PATCH', `${leader.url}/jobs/${hexId(7)}?mode=cancel`)).status, 202);
  await eventually('job canceled', async () => (await http('GET', `${leader.url}/jobs/${hexId(7)}`)).body?.state === 'CANCELED');
  for (let round = 0; round < 2; round++) {
    await leader.signal('SIGKILL');
    const previous = leader;
    leader = await c.leader(30000, [previous]);
    const detail = await http('GET', `${leader.url}/jobs/${hexId(7)}`);
    t.is(detail.body.state, 'CANCELED', `still CANCELED after failover ${round + 1}`);
    const result = await http('GET', `${leader.url}/jobs/${hexId(7)}/execution-result`);
    t.is(result.body['job-execution-result']['application-status'], 'CANCELED');
    const resubmit = await http('POST', `${leader.url}/jobs`, body);
    t.is(resubmit.status, 202, 'resubmitting the identical graph reports the job, it does not run it');
    t.is((await http('GET', `${leader.url}/jobs/${hexId(7)}`)).body.state, 'CANCELED');
    previous.start(); // keep three replicas for the next round
  }
  const zk = await zkFor(t, c);
  t.is(await zk.exists(`/jobgraphs/${hexId(7)}`), null, 'the graph was cleaned up');
  // A leader killed between removing the graph and marking the result clean leaves it dirty; the
  // next leader finishes that once its result history is loaded, in the background after ready.
  const stored = await eventually('the result marked clean', async () => {
    const entry = JSON.parse((await zk.get(`/jobresults/${hexId(7)}`)).data.toString());
    return entry.state === 'clean' ? entry : null;
  }, 30_000, 100);
  t.is(stored.jobStatus, 'CANCELED');
});

test.serial('a corrupt /jobgraphs node is quarantined and reported; every other job is recovered and the leader keeps serving', async (t) => {
  const c = await cluster(t);
  const leader = await c.leader();
  for (const n of [11, 12, 13]) t.is((await http('POST', `${leader.url}/jobs`, graph(n))).status, 202);
  const zk = await zkFor(t, c);
  const badId = hexId(99);
  await zk.create(`/jobgraphs/${badId}`, Buffer.from([0xff, 0x00, 0x7b, 0x22, 0x13]));
  await zk.create('/jobgraphs/not-a-job-id', '{"formatVersion":1}');
  await leader.signal('SIGKILL');
  const next = await c.leader(30000, [leader]);
  const ids = (await http('GET', `${next.url}/jobs`)).body.jobs.map((j: { id: string }) => j.id).sort();
  t.deepEqual(ids, [hexId(11), hexId(12), hexId(13)]);
  const quarantined = (await http('GET', `${next.url}/jobs/quarantined`)).body.quarantined;
  t.deepEqual(quarantined.map((q: { jobId: string }) => q.jobId).sort(), [badId, 'not-a-job-id']);
  t.true(quarantined.every((q: { reason: string }) => q.reason.length > 0));
  t.is(await zk.exists(`/jobgraphs/${badId}`), null, 'moved aside, so no recovery trips on it again');
  t.is((await zk.getChildren('/quarantine/jobgraphs')).length, 2);
  const metrics = await http('GET', `${next.url}/metrics`);
  t.regex(metrics.text, /ha_dispatcher_quarantined_jobgraphs 2/);
  t.is((await http('POST', `${next.url}/jobs`, graph(14))).status, 202, 'still serving');
});

test.serial('bad input gets its 4xx with a message, changes no stored state, and the replica stays up', async (t) => {
  const c = await cluster(t);
  const leader = await c.leader();
  const zk = await zkFor(t, c);
  const url = `${leader.url}/jobs`;
  const cases: Array<{ what: string; status: number; send: () => Promise<{ status: number; body: any }>; message: RegExp }> = [
    { what: 'malformed JSON', status: 400, message: /malformed JSON/, send: () => http('POST', url, '{"name": ') },
    { what: 'non-JSON content type', status: 415, message: /Content-Type: application\/json/, send: () => http('POST', url, 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }) },
    { what: 'huge body', status: 413, message: /limit/, send: () => http('POST', url, JSON.stringify({ name: 'x'.repeat(600_000) })) },
    { what: 'bad job id', status: 400, message: /jobId/, send: () => http('POST', url, graph(1, { jobId: '../../leader/info' })) },
    { what: 'uppercase job id', status: 400, message: /jobId/, send: () => http('POST', url, graph(1, { jobId: 'A'.repeat(32) })) },
    { what: 'cycle', status: 400, message: /cycle/, send: () => http('POST', url, { name: 'cyc', vertices: [
      { id: 'a', parallelism: 1, inputs: ['b'], task: { type: 'sleep', ms: 1 } },
      { id: 'b', parallelism: 1, inputs: ['a'], task: { type: 'sleep', ms: 1 } }] }) },
    { what: 'unknown input', status: 400, message: /nope/, send: () => http('POST', url, { name: 'u', vertices: [{ id: 'a', parallelism: 1, inputs: ['nope'], task: { type: 'sleep', ms: 1 } }] }) },
    { what: 'duplicate vertex', status: 400, message: /unique/, send: () => http('POST', url, { name: 'd', vertices: [
      { id: 'a', parallelism: 1, task: { type: 'sleep', ms: 1 } }, { id: 'a', parallelism: 1, task: { type: 'sleep', ms: 1 } }] }) },
    { what: 'parallelism out of bounds', status: 400, message: /parallelism/, send: () => http('POST', url, { name: 'p', vertices: [{ id: 'a', parallelism: 100000, task: { type: 'sleep', ms: 1 } }] }) },
    { what: 'unknown task type', status: 400, message: /type/, send: () => http('POST', url, { name: 't', vertices: [{ id: 'a', parallelism: 1, task: { type: 'rm-rf' } }] }) },
    { what: 'wrong types', status: 400, message: /name must be a string/, send: () => http('POST', url, { name: 7, vertices: 'abc' }) },
    { what: 'array body', status: 400, message: /object/, send: () => http('POST', url, [1, 2, 3]) },
    { what: 'empty body', status: 400, message: /empty/, send: () => http('POST', url, '') },
    { what: 'job id path trick in URL', status: 400, message: /32 lowercase hex/, send: () => http('GET', `${leader.url}/jobs/..%2F..%2Fleader`) },
    { what: 'unknown job', status: 404, message: /not found/, send: () => http('GET', `${leader.url}/jobs/${hexId(424242)}`) },
    { what: 'cancel with a bad mode', status: 400, message: /mode=cancel/, send: () => http('PATCH', `${leader.url}/jobs/${hexId(1)}?mode=stop`) },
  ];
  for (const c of cases) {
    const before = (await zk.getChildren('/jobgraphs')).sort();
    const res = await c.send();
    t.is(res.status, c.status, c.what);
    t.true(Array.isArray(res.body?.errors) && c.message.test(res.body.errors[0]), `${c.what}: ${JSON.stringify(res.body)}`);
    t.deepEqual((await zk.getChildren('/jobgraphs')).sort(), before, `${c.what} stored nothing`);
  }
  t.is((await http('GET', `${leader.url}/livez`)).status, 200);
  t.true(leader.running);
});

test.serial('while no leader is ready, leader-only endpoints answer 503 with Retry-After and /health codes follow the roles', async (t) => {
  // Hold the lowest latch position with a node that will never publish /leader/info.
  const c0 = `c-blocked-${Date.now().toString(16)}`;
  const blocker = await connectedClient({ connect: t.context.ensemble.connectString, chroot: `/ha-dispatcher/${c0}` });
  t.teardown(() => blocker.close());
  await blocker.mkdirp('/leader/latch');
  const blockNode = await blocker.create('/leader/latch/_c_blocker-latch-', '{"replicaId":"blocker"}', 'ephemeral_sequential');
  const blocked = await startClusterIn(t, c0);
  for (const r of blocked.replicas) {
    const res = await http('GET', `${r.url}/jobs`);
    t.is(res.status, 503);
    t.truthy(res.headers.get('retry-after'));
    t.regex(res.body.errors[0], /no ready leader/);
    const health = await http('GET', `${r.url}/health`);
    t.is(health.status, 503);
    t.is((await http('GET', `${r.url}/readyz`)).status, 503);
    t.is((await http('GET', `${r.url}/livez`)).status, 200);
  }
  await blocker.delete(blockNode);
  const leader = await blocked.leader();
  const standbys = await blocked.standbys(leader);
  await eventually('standbys know the leader', async () => (await http('GET', `${standbys[0].url}/health`)).status === 429);
  t.is((await http('GET', `${leader.url}/health`)).status, 200);
  t.is((await http('GET', `${standbys[0].url}/health?standbyok=true`)).status, 200);
  t.is((await http('GET', `${standbys[0].url}/health?standbycode=473`)).status, 473);
  t.is((await http('GET', `${leader.url}/health?activecode=299`)).status, 299);
  const body = (await http('GET', `${standbys[0].url}/health`)).body;
  t.is(body.role, 'standby');
  t.is(body.leader.replicaId, leader.id);
  t.is(body.zookeeper.state, 'CONNECTED');
  const replicas = (await http('GET', `${leader.url}/replicas`)).body.replicas;
  t.is(replicas[0].replicaId, leader.id, 'the leader is first in latch order');
  t.is(replicas.length, 3);
});

async function startClusterIn(t: ExecutionContext<ClusterContext<Cluster>>, clusterId: string): Promise<Cluster> {
  const c = await Cluster.start({ connect: t.context.ensemble.connectString, clusterId });
  t.context.clusters.push(c);
  t.teardown(() => { if (!t.passed) t.log(c.logs()); });
  return c;
}
