/**
 * Flink compatibility end to end: a cluster configured with a stock Flink HA snippet comes up (one
 * `config.ignored-flink-keys` warning per process), and every served endpoint's JSON matches the
 * Flink schemas (test/schemas/flink) for a running, a finished, a failed and a canceled job, asked
 * of the leader and of a standby (which redirects), with and without `/v1`. Last, `DELETE /cluster`
 * stops the standby it is sent to.
 */
import anyTest, { TestFn } from 'ava';
import * as crypto from 'node:crypto';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { flinkVertexId } from '../../src/rest/flink-views';
import { eventually, startEnsemble } from '../helpers/ensemble';
import { call, ExecutionCluster } from '../helpers/execution-cluster';
import { asSettings, FLINK_HA_IGNORED_KEYS, flinkHaSnippet } from '../helpers/flink-config';
import { clusterEndpoints, jobEndpoints, schemaViolations } from '../helpers/flink-schemas';

interface Context { ensemble: LocalEnsemble; cluster: ExecutionCluster }
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  t.context.ensemble = await startEnsemble();
  const clusterId = `/flink-${crypto.randomBytes(4).toString('hex')}`;
  t.context.cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1,
    // The snippet comes after the helper's own settings, so its quorum and "/..." cluster-id are the ones used.
    settings: asSettings(flinkHaSnippet(t.context.ensemble.connectString, clusterId)),
  });
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
  await t.context.ensemble?.stop({ removeData: true });
});

/** GET, following a standby's 307 to the leader as Flink's clients do. */
async function get(url: string): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  let body: unknown = null;
  try { body = JSON.parse(text); } catch { body = null; }
  return { status: res.status, body, text };
}

test.serial('replicas and TaskManagers started with a stock Flink HA configuration warn once about the ignored Flink keys', async (t) => {
  const { cluster } = t.context;
  for (const p of [...cluster.replicas, ...cluster.taskManagers]) {
    const warnings = await eventually(`${p.id} logged its start-up`, async () => {
      const w = p.events('config.ignored-flink-keys');
      return w.length > 0 ? w : null;
    }, 30_000);
    t.is(warnings.length, 1, p.id);
    t.deepEqual(warnings[0].keys, FLINK_HA_IGNORED_KEYS, p.id);
  }
  const config = (await cluster.rest('GET', '/v1/jobmanager/config')).body as Array<{ key: string; value: string }>;
  const value = (key: string) => config.find((e) => e.key === key)?.value;
  t.regex(String(value('high-availability.cluster-id')), /^flink-[0-9a-f]{8}$/, 'the leading "/" is dropped');
  t.is(value('high-availability.type'), 'zookeeper');
  t.is(value('restart-strategy.type'), 'fixed-delay', 'Flink\'s "fixeddelay" under our name');
  t.is(value('high-availability.storageDir'), undefined, 'ignored keys are not configuration');
});

test.serial('every endpoint answers Flink\'s JSON for running, finished, failed and canceled jobs, via leader and standby, with and without /v1', async (t) => {
  const { cluster } = t.context;
  const leader = await cluster.leader();
  const standby = cluster.replicas.find((r) => r !== leader)!;
  const sleep = (ms: number) => ({ type: 'sleep', ms });
  const finished = await cluster.submit({ name: 'finished', vertices: [
    { id: 'extract', parallelism: 2, task: sleep(100) }, { id: 'load', parallelism: 1, inputs: ['extract'], task: sleep(100) }] });
  const failed = await cluster.submit({ name: 'failed', restartStrategy: { type: 'none' }, vertices: [
    { id: 'extract', parallelism: 1, task: { type: 'fail', afterMs: 50, message: 'disk on fire' } }] });
  const canceled = await cluster.submit({ name: 'canceled', vertices: [{ id: 'extract', parallelism: 1, task: sleep(120_000) }] });
  const running = await cluster.submit({ name: 'running', vertices: [{ id: 'extract', parallelism: 2, task: sleep(120_000) }] });

  await cluster.waitForJob(canceled, (j) => j.state === 'RUNNING', 'the job to cancel RUNNING');
  t.is((await cluster.rest('PATCH', `/v1/jobs/${canceled}?mode=CANCEL`)).status, 202);
  const states = { [finished]: 'FINISHED', [failed]: 'FAILED', [canceled]: 'CANCELED', [running]: 'RUNNING' };
  for (const [jobId, state] of Object.entries(states)) {
    await cluster.waitForJob(jobId, (j) => j.state === state && (state !== 'RUNNING' || j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING')), `job ${state}`);
  }
  t.is((await cluster.rest('PATCH', `/jobs/${canceled}?mode=cancel`)).status, 202, 'cancelling a CANCELED job succeeds');

  const tmId = cluster.taskManagers[0].id;
  let checked = 0;
  for (const [jobId, state] of Object.entries(states)) {
    const endpoints = [...clusterEndpoints(tmId), ...jobEndpoints(jobId, flinkVertexId(jobId, 'extract'))];
    for (const base of [leader.url, standby.url]) {
      for (const prefix of ['', '/v1']) {
        for (const { path, schema } of endpoints) {
          const a = await get(`${base}${prefix}${path}`);
          t.is(a.status, 200, `${state} ${base}${prefix}${path}: ${a.text.slice(0, 300)}`);
          t.deepEqual(schemaViolations(schema, a.body), [], `${state} ${base}${prefix}${path} as ${schema}`);
          checked++;
        }
      }
    }
    const details = (await cluster.rest('GET', `/v1/jobs/${jobId}`)).body;
    t.is(details.state, state);
    t.is(details.vertices[0].id, flinkVertexId(jobId, 'extract'));
    t.is(details.vertices[0].name, 'extract');
  }
  t.true(checked > 100, `${checked} answers checked`);

  const result = async (id: string) => (await cluster.rest('GET', `/jobs/${id}/execution-result`)).body['job-execution-result']['application-status'];
  t.deepEqual([await result(finished), await result(failed), await result(canceled)], ['SUCCEEDED', 'FAILED', 'CANCELED']);
  const history = (await cluster.rest('GET', `/jobs/${failed}/exceptions`)).body.exceptionHistory.entries;
  t.true(history.some((e: any) => /disk on fire/.test(e.stacktrace) && e.taskManagerId === tmId), JSON.stringify(history));

  // A standby's redirect keeps the /v1 the client used.
  const redirect = await fetch(`${standby.url}/v1/jobs/${running}/status?x=1`, { redirect: 'manual' });
  t.is(redirect.status, 307);
  t.is(redirect.headers.get('location'), `${leader.url}/v1/jobs/${running}/status?x=1`);
  t.is((await call('GET', `${standby.url}/v1/jobs/${running}/checkpoints`)).status, 404, 'streaming-only: 404 on any replica');
});

test.serial('DELETE /cluster stops the replica it is sent to, as SIGTERM would', async (t) => {
  const { cluster } = t.context;
  const leader = await cluster.leader();
  const standby = cluster.replicas.find((r) => r !== leader)!;
  const a = await call('DELETE', `${standby.url}/v1/cluster`);
  t.is(a.status, 202);
  await eventually('the standby process exited', async () => (standby.running ? null : true), 30_000);
  t.is(standby.child?.exitCode, 0);
  t.true(standby.events('replica.stopped').length > 0, 'it stopped gracefully');
  t.is((await cluster.leader()).id, leader.id, 'the leader is untouched');
});
