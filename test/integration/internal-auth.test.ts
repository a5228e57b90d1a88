/**
 * security.internal.token on real processes: a cluster whose replicas and TaskManagers share a token
 * (from a file) runs a job end to end, and both sides of the internal RPC refuse calls without the
 * token (401) or with another one (403) — without acting on them.
 */
import anyTest, { TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { startEnsemble } from '../helpers/ensemble';
import { ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';

interface Context { ensemble: LocalEnsemble }
const test = anyTest as TestFn<Context>;

test.before(async (t) => { t.context.ensemble = await startEnsemble(); });
test.after.always(async (t) => { await t.context.ensemble?.stop({ removeData: true }); });

async function post(url: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST', signal: AbortSignal.timeout(10_000),
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

test('with security.internal.token the cluster runs jobs, and internal calls without the token (401) or with another (403) are refused', async (t) => {
  const token = crypto.randomBytes(24).toString('hex');
  const tokenFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-token-')), 'internal-token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1, settings: [`security.internal.token-file=${tokenFile}`],
  });
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

    const shown = (await cluster.rest('GET', '/config')).body;
    t.is(shown['security.internal.token'], '******');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  } finally {
    await cluster.stop();
  }
});
