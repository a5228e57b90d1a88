/**
 * The shared-secret tokens on real processes. security.internal.token: a cluster whose replicas and
 * TaskManagers share a token (from a file) runs a job end to end, and both sides of the internal RPC
 * refuse calls without it (401) or with another (403), acting on nothing. security.rest.token: every
 * replica refuses API calls likewise (a standby before redirecting), probes stay open, the CLI sends it.
 */
import anyTest, { TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks } from '../helpers/ensemble';
import { execFile } from 'node:child_process';
import { packageRoot } from '../../src/util/package-root';
import { call, ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;

ensembleHooks(test);

function newTokenFile(): { token: string; tokenFile: string } {
  const token = crypto.randomBytes(24).toString('hex');
  const tokenFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-token-')), 'token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  return { token, tokenFile };
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), ...args], { timeout: 60_000, env: { PATH: process.env.PATH, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

async function post(url: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST', signal: AbortSignal.timeout(10_000),
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

test('with security.internal.token the cluster runs jobs, and internal calls without the token (401) or with another (403) are refused', async (t) => {
  const { token, tokenFile } = newTokenFile();
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1, settings: [`security.internal.token-file=${tokenFile}`],
  });
  t.teardown(() => cluster.stop());
  try {
    const starts = path.join(cluster.dir, 'auth-starts.txt');
    const jobId = await cluster.submit({ name: 'with-token', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 0.2') }] });
    const job = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED', 60_000);
    t.is(job.state, 'FINISHED');
    t.deepEqual([...startCounts(starts).entries()].sort(), [['work/0', 1], ['work/1', 1]]);

    const leader = await cluster.leader();
    const epoch = (await cluster.rest('GET', '/leader')).body.epoch as number;
    const [tm] = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string; address: string }>;
    const registration = { taskManagerId: 'intruder', address: 'http://127.0.0.1:1', slots: 8, epoch, tasks: [] };

    const anonymous = await post(`${leader.url}/internal/taskmanagers`, registration);
    t.is(anonymous.status, 401);
    t.regex(anonymous.body.errors[0], /security\.internal\.token/);
    t.is((await post(`${leader.url}/internal/taskmanagers`, registration, 'not-the-cluster-token-at-all')).status, 403);
    const listed = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string }>;
    t.deepEqual(listed.map((x) => x.id), [tm.id], 'the refused registration added no TaskManager');

    const deploy = { jobId: 'c'.repeat(32), vertexId: 'evil', subtask: 0, attempt: 0, epoch, parallelism: 1, task: { type: 'command', argv: ['sh', '-c', `echo ran >> '${starts}'`] } };
    t.is((await post(`${tm.address}/deploy`, deploy)).status, 401);
    t.is((await post(`${tm.address}/deploy`, deploy, 'not-the-cluster-token-at-all')).status, 403);
    t.is((await fetch(`${tm.address}/tasks`)).status, 401, 'task listings need the token too');
    t.is((await fetch(`${tm.address}/livez`)).status, 200, 'liveness stays open');
    const tasks = await fetch(`${tm.address}/tasks`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json()) as { tasks: Array<{ jobId: string }> };
    t.false(tasks.tasks.some((x) => x.jobId === deploy.jobId), 'the refused deploy ran nothing');
    t.false(fs.readFileSync(starts, 'utf8').includes('ran'));

    const shown = (await cluster.rest('GET', '/jobmanager/config')).body as Array<{ key: string; value: string }>;
    t.is(shown.find((e) => e.key === 'security.internal.token')?.value, '******');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});

test('with security.rest.token every replica refuses API calls without it (401) or with another (403); probes stay open; the CLI sends it', async (t) => {
  const { token, tokenFile } = newTokenFile();
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1, settings: [`security.rest.token-file=${tokenFile}`], restToken: token,
  });
  t.teardown(() => cluster.stop());
  try {
    const leader = await cluster.leader();
    const standby = cluster.replicas.find((r) => r !== leader)!;
    const graph = { name: 'rest-token', vertices: [{ id: 'work', parallelism: 1, task: { type: 'sleep', ms: 10 } }] };

    for (const replica of [leader, standby]) {
      const anonymous = await call('POST', `${replica.url}/jobs`, graph);
      t.is(anonymous.status, 401, `${replica.id} without a token`);
      t.regex(anonymous.body.errors[0], /security\.rest\.token/);
      t.is((await call('POST', `${replica.url}/jobs`, graph, 30_000, 'not-the-cluster-token-at-all')).status, 403, `${replica.id} with another token`);
      t.is((await call('GET', `${replica.url}/jobs`)).status, 401);
      for (const open of ['/livez', '/readyz', '/health', '/metrics', '/']) {
        t.not((await call('GET', `${replica.url}${open}`)).status, 401, `${open} stays open on ${replica.id}`);
      }
    }
    t.deepEqual((await cluster.rest('GET', '/jobs')).body.jobs, [], 'nothing refused was stored');
    t.is((await call('POST', `${standby.url}/jobs`, graph, 30_000, token)).status, 307, 'a standby redirects a caller with the token');

    const job = path.join(path.dirname(tokenFile), 'job.json');
    fs.writeFileSync(job, JSON.stringify(graph));
    const refused = await cli(['submit', job, '--url', standby.url]);
    t.is(refused.code, 3, refused.stderr);
    t.regex(refused.stderr, /security\.rest\.token/);
    const submitted = await cli(['submit', job, '--url', standby.url, '--wait', '--json'], { HA_DISPATCHER_TOKEN_FILE: tokenFile });
    t.is(submitted.code, 0, submitted.stderr);
    const viaEnv = await cli(['list', '-a', '--url', standby.url, '--json'], { HA_DISPATCHER_TOKEN: token });
    t.is(viaEnv.code, 0, viaEnv.stderr);
    t.is(JSON.parse(viaEnv.stdout).jobs.length, 1);
    t.is(((await cluster.rest('GET', '/jobmanager/config')).body as Array<{ key: string; value: string }>).find((e) => e.key === 'security.rest.token')?.value, '******');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});
