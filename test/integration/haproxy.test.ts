/**
 * The shipped load-balancer recipe (deploy/haproxy/haproxy.cfg) against a real cluster with
 * authentication on: HAProxy's leader-only health check sends every request to the leader, a job
 * submitted through it finishes, and after the leader stops (SIGTERM) requests through the same
 * address succeed again once a new leader is ready, with no acknowledged job lost.
 */
import anyTest, { TestFn } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { ExecutionCluster } from '../helpers/execution-cluster';
import { freePorts } from '../../src/util/ports';
import { killOnExit, stopChild } from '../../src/util/process';
import { packageRoot } from '../../src/util/package-root';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);

const HAPROXY = '/usr/sbin/haproxy';
const CFG = path.join(packageRoot(), 'deploy', 'haproxy', 'haproxy.cfg');

interface LbAnswer { status: number; body: any; replicaId: string | null }

test('HAProxy with the leader-only health check routes to the leader and follows a failover without losing acknowledged jobs', async (t) => {
  const token = crypto.randomBytes(24).toString('hex');
  const tokenFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-lb-token-')), 'rest-token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 3, taskManagers: 2,
    settings: [`security.rest.token-file=${tokenFile}`], restToken: token,
  });
  t.context.clusters.push(cluster);

  // The shipped file, parameterised only through its environment variables.
  const [lbPort] = await freePorts(1);
  const env = {
    ...process.env,
    HAPROXY_BIND: `127.0.0.1:${lbPort}`,
    ...Object.fromEntries(cluster.replicas.map((r, i) => [`REPLICA${i + 1}`, new URL(r.url).host])),
  };
  const check = spawnSync(HAPROXY, ['-c', '-f', CFG], { env, encoding: 'utf8' });
  t.is(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
  const haproxy = spawn(HAPROXY, ['-f', CFG, '-db'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(haproxy);
  let haproxyLog = '';
  haproxy.stdout.on('data', (d: Buffer) => { haproxyLog = (haproxyLog + d.toString()).slice(-20_000); });
  haproxy.stderr.on('data', (d: Buffer) => { haproxyLog = (haproxyLog + d.toString()).slice(-20_000); });
  t.teardown(() => stopChild(haproxy, 'SIGTERM', 5000));

  const lbUrl = `http://127.0.0.1:${lbPort}`;
  const lb = async (method: string, pathAndQuery: string, body?: unknown, auth = true): Promise<LbAnswer> => {
    const res = await fetch(`${lbUrl}${pathAndQuery}`, {
      method, redirect: 'manual', signal: AbortSignal.timeout(10_000),
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(auth ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
    return { status: res.status, body: parsed, replicaId: res.headers.get('x-ha-replica-id') };
  };
  /** Retries while HAProxy or the cluster has no ready leader (503); the client-chosen jobId makes it idempotent. */
  const submit = (name: string, ms: number): Promise<string> => {
    const graph = { jobId: crypto.randomBytes(16).toString('hex'), name, vertices: [{ id: 'work', parallelism: 2, task: { type: 'sleep', ms } }] };
    return eventually(`${name} acknowledged through HAProxy`, async () => {
      const a = await lb('POST', '/jobs', graph);
      if (a.status === 503) return null;
      if (a.status !== 202) throw new Error(`POST /jobs answered ${a.status}: ${JSON.stringify(a.body)}`);
      return a.body.jobid as string;
    }, 60_000, 200);
  };
  const finished = (jobId: string): Promise<unknown> => eventually(`job ${jobId} FINISHED through HAProxy`, async () => {
    const a = await lb('GET', `/jobs/${jobId}`);
    if (a.status === 200 && ['FAILED', 'CANCELED'].includes(a.body.state)) throw new Error(`job ended ${a.body.state}`);
    return a.status === 200 && a.body.state === 'FINISHED';
  }, 90_000, 200);

  try {
    const leader = await cluster.leader();
    // Servers start UP in HAProxy until their checks fail; its monitor URI says when only one is left.
    await eventually('HAProxy sees exactly one UP server', async () => (await lb('GET', '/haproxy-health', undefined, false)).status === 200, 30_000, 100);
    const first = await lb('GET', '/health');
    t.is(first.status, 200);
    t.is(first.body.role, 'leader');
    t.is(first.replicaId, leader.id);
    const listed = await lb('GET', '/jobs');
    t.is(listed.status, 200, `a leader-only call is answered directly, not redirected: ${listed.replicaId} ${JSON.stringify(listed.body)}`);
    t.is(listed.replicaId, leader.id);
    t.is((await lb('GET', '/jobs', undefined, false)).status, 401, 'authentication holds through the load balancer');

    const before = await submit('before-failover', 50);
    await finished(before);
    // Acknowledged by the old leader, still running when it stops: the new leader must finish it.
    const inFlight = await submit('in-flight', 3000);

    await leader.signal('SIGTERM');
    const after = await eventually('HAProxy forwards to a new leader', async () => {
      const a = await lb('GET', '/health');
      return a.status === 200 && a.body.role === 'leader' && a.replicaId !== leader.id ? a : null;
    }, 60_000, 100);
    t.not(after.replicaId, leader.id);
    const newLeader = await cluster.leader(30_000, [leader]);
    t.is(after.replicaId, newLeader.id);

    const afterFailover = await submit('after-failover', 50);
    await Promise.all([finished(inFlight), finished(afterFailover)]);
    const jobs = await eventually('the job list through HAProxy', async () => {
      const a = await lb('GET', '/jobs');
      return a.status === 200 ? a.body.jobs as Array<{ id: string; status: string }> : null;
    }, 30_000, 200);
    for (const jobId of [before, inFlight, afterFailover]) {
      t.is(jobs.find((j) => j.id === jobId)?.status, 'FINISHED', `acknowledged job ${jobId} kept and finished`);
    }
  } catch (err) {
    t.log(cluster.logs());
    t.log(`---- haproxy ----\n${haproxyLog}`);
    throw err;
  }
});
