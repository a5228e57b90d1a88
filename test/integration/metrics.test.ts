/**
 * Metrics end to end: a real cluster (3 replicas, 2 TaskManagers) on a real ensemble. Every replica's
 * and TaskManager's /metrics passes `promtool check metrics`; a SIGKILLed leader's failover is watched
 * through every replica's /metrics while a polling client measures the outage it sees.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { call, ExecutionCluster, ManagedProcess, shellTask } from '../helpers/execution-cluster';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);
const SESSION_TIMEOUT_MS = 4000;

let shared: Promise<ExecutionCluster> | null = null;
function cluster(t: ExecutionContext<ClusterContext<ExecutionCluster>>): Promise<ExecutionCluster> {
  shared ??= ExecutionCluster.start({ connect: t.context.ensemble.connectString, replicas: 3, sessionTimeoutMs: SESSION_TIMEOUT_MS,
    settings: ['taskmanager.orphan-timeout=60000'] }).then((c) => (t.context.clusters.push(c), c));
  return shared;
}

interface Sample { labels: Record<string, string>; value: number }

/** The samples of one metric in a text exposition (no escaped quotes in our label values). */
function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}
const value = (text: string, name: string, labels: Record<string, string> = {}): number | undefined =>
  samples(text, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

async function scrape(url: string): Promise<string> {
  const a = await call('GET', `${url}/metrics`, undefined, 2000);
  if (a.status !== 200) throw new Error(`GET ${url}/metrics answered ${a.status}`);
  return a.text;
}

function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is not installed (.ci/setup installs Debian's prometheus): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Job counts by status as the REST API tells them. */
async function restJobCounts(c: ExecutionCluster): Promise<Record<string, number>> {
  const a = await c.rest('GET', '/jobs');
  if (a.status !== 200) throw new Error(`GET /jobs answered ${a.status}`);
  const counts: Record<string, number> = {};
  for (const j of a.body.jobs as Array<{ status: string }>) counts[j.status] = (counts[j.status] ?? 0) + 1;
  return counts;
}

const gaugeCounts = (text: string): Record<string, number> =>
  Object.fromEntries(samples(text, 'ha_dispatcher_jobs').filter((s) => s.value > 0).map((s) => [s.labels.state, s.value]));

test.serial('every replica and every TaskManager serves /metrics that promtool check metrics accepts', async (t) => {
  const c = await cluster(t);
  const jobId = await c.submit({ name: 'short', vertices: [{ id: 'v', parallelism: 2, task: shellTask(path.join(c.dir, 'short.txt'), 'echo hi') }] });
  await c.waitForJob(jobId, (j) => j.state === 'FINISHED', 'the short job finished');
  const tms = (await c.waitForTaskManagers(2)) as Array<{ id: string; address: string }>;
  const targets = [...c.replicas.map((r) => ({ id: r.id, url: r.url })), ...tms.map((tm) => ({ id: tm.id, url: tm.address }))];
  t.is(targets.length, 5);
  for (const target of targets) {
    const text = await scrape(target.url);
    const r = promtoolCheck(text);
    t.is(r.status, 0, `${target.id}: ${r.output}`);
    // Standard Node.js metric names, without our prefix.
    t.true(samples(text, 'process_cpu_seconds_total').length === 1, `${target.id} exports process_cpu_seconds_total`);
    t.true(/^nodejs_heap_size_used_bytes /m.test(text), `${target.id} exports nodejs_heap_size_used_bytes`);
  }
  const leader = await c.leader();
  const text = await scrape(leader.url);
  t.is(value(text, 'ha_dispatcher_submissions_total', { outcome: 'accepted' }), 1);
  t.is(value(text, 'ha_dispatcher_jobs', { state: 'FINISHED' }), 1);
  t.true((value(text, 'ha_dispatcher_http_requests_total', { route: '/jobs/:jobid', method: 'GET', code: '200' }) ?? 0) > 0);
  const tmText = await scrape(tms[0].address);
  t.is(value(tmText, 'ha_taskmanager_slots'), 4);
  t.is(samples(tmText, 'ha_taskmanager_leader_heartbeat_age_seconds')[0]?.labels.leader_id, leader.id);
  const launches = await Promise.all(tms.map(async (tm) => value(await scrape(tm.address), 'ha_taskmanager_task_launches_total') ?? 0));
  t.is(launches.reduce((a, b) => a + b, 0), 2, 'two subtasks were launched across the TaskManagers');
});

test.serial('SIGKILL of the leader: never two leaders, counters move on the new leader, job gauges only on the leader, failover time matches the outage', async (t) => {
  const c = await cluster(t);
  const running = await c.submit({ name: 'long', vertices: [{ id: 'v', parallelism: 1, task: shellTask(path.join(c.dir, 'long.txt'), 'sleep 600') }] });
  await c.waitForJob(running, (j) => j.state === 'RUNNING', 'the long job runs');
  const old = await c.leader();
  const survivors = c.replicas.filter((r) => r !== old);
  const before = new Map<ManagedProcess, string>();
  for (const r of survivors) before.set(r, await scrape(r.url));

  // Sample every replica's /metrics at once, over and over, until told to stop.
  let sampling = true;
  let rounds = 0;
  const violations: string[] = [];
  const sampler = (async () => {
    while (sampling) {
      const texts = await Promise.all(c.replicas.map((r) => scrape(r.url).then((text) => ({ r, text }), () => null)));
      let leaders = 0;
      for (const s of texts) {
        if (!s) continue;
        const isLeader = value(s.text, 'ha_dispatcher_leader') ?? NaN;
        leaders += isLeader;
        const leaderOnly = samples(s.text, 'ha_dispatcher_jobs').length + samples(s.text, 'ha_dispatcher_leader_epoch').length;
        if (isLeader !== 1 && leaderOnly > 0) violations.push(`${s.r.id} exported job/epoch gauges while ha_dispatcher_leader=${isLeader}`);
      }
      if (leaders > 1) violations.push(`sum(ha_dispatcher_leader) = ${leaders} in round ${rounds}`);
      rounds++;
    }
  })();

  // A client polling a surviving replica (following redirects) every 50 ms measures the outage it sees:
  // from its first failed request to its first success after it.
  const client = survivors[0];
  let killedAt = 0;
  let firstFailure: number | null = null;
  let recovered: number | null = null;
  const pollDeadline = Date.now() + 120_000;
  const poller = (async () => {
    while (recovered === null && Date.now() < pollDeadline) {
      const at = Date.now();
      const ok = await fetch(`${client.url}/jobs`, { signal: AbortSignal.timeout(1000) }).then((res) => res.status === 200, () => false);
      if (killedAt && !ok && firstFailure === null) firstFailure = at;
      if (firstFailure !== null && ok) recovered = Date.now();
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  await eventually('the sampler ran a few rounds', () => rounds >= 3, 10000, 20);
  killedAt = Date.now();
  await old.signal('SIGKILL');
  const next = await c.leader(60000, [old]);
  await poller;
  t.truthy(firstFailure !== null && recovered !== null, 'the polling client saw the outage end');
  const roundsAtReady = rounds;
  await eventually('the sampler ran past the handover', () => rounds >= roundsAtReady + 3, 10000, 20);
  sampling = false;
  await sampler;
  t.deepEqual(violations, []);

  // Leadership counters exist from start-up and moved on the new leader.
  const prior = before.get(next)!;
  const after = await scrape(next.url);
  t.is(value(prior, 'ha_dispatcher_leadership_changes_total', { change: 'granted' }), 0);
  t.is(value(after, 'ha_dispatcher_leadership_changes_total', { change: 'granted' }), 1);
  t.is(value(after, 'ha_dispatcher_leadership_changes_total', { change: 'ready' }), 1);
  t.is(value(after, 'ha_dispatcher_leader'), 1);
  const health = await call('GET', `${next.url}/health`);
  t.is(value(after, 'ha_dispatcher_leader_epoch', { replica_id: next.id }), health.body.epoch);

  // Job gauges: only the leader exports them, and they equal the REST API's counts.
  for (const r of survivors.filter((s) => s !== next)) {
    const text = await scrape(r.url);
    t.is(value(text, 'ha_dispatcher_leader'), 0);
    t.deepEqual(samples(text, 'ha_dispatcher_jobs'), [], `${r.id} (standby) exports no job gauges`);
    t.deepEqual(samples(text, 'ha_dispatcher_leader_epoch'), [], `${r.id} (standby) exports no epoch`);
    t.true((value(text, 'ha_dispatcher_no_ready_leader_seconds_total') ?? 0) > (value(before.get(r)!, 'ha_dispatcher_no_ready_leader_seconds_total') ?? 0),
      `${r.id} counted seconds without a ready leader`);
  }
  await eventually('sum by (state) of ha_dispatcher_jobs equals the REST job counts', async () => {
    const [rest, text] = await Promise.all([restJobCounts(c), scrape(next.url)]);
    return JSON.stringify(Object.entries(rest).sort()) === JSON.stringify(Object.entries(gaugeCounts(text)).sort()) && rest.RUNNING === 1;
  }, 20000, 200);

  // Failover time: from the old leader's last sign of life (its last answer to the new leader's liveness
  // probes, every 250 ms) to ready. The client's outage starts at its first failed request after the
  // kill (the standby stops redirecting to the dead leader once its liveness connection closes) and ends at its first
  // success, so both measure the same interval, each to within a probe or poll interval.
  const failover = value(after, 'ha_dispatcher_last_failover_seconds')!;
  const recovery = value(after, 'ha_dispatcher_last_recovery_seconds')!;
  const observed = (recovered! - firstFailure!) / 1000;
  t.log({ failover, recovery, observed, sessionTimeoutSeconds: SESSION_TIMEOUT_MS / 1000, rounds });
  t.true(failover >= recovery, 'failover time includes the grant-to-ready time');
  t.true(Math.abs(failover - observed) <= 0.2 * observed, `failover ${failover}s is within 20 % of the outage ${observed}s a polling client saw`);
});
