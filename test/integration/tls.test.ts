/**
 * TLS and secure defaults on real processes with real certificates (a throwaway CA): https end to end
 * (CLI through a standby's redirect, TaskManagers registering, deploys, reports, the dashboard page),
 * plain http refused; mutual TLS on the internal RPC: no or a foreign client certificate cannot
 * register, heartbeat, report or deploy, and a TaskManager's certificate cannot act as another
 * TaskManager (403, audited). A replica or TaskManager bound beyond loopback without authentication
 * refuses to start, naming the keys.
 */
import anyTest, { TestFn } from 'ava';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { ClientTls, HttpTransportError, requestJson } from '../../src/http/client';
import { packageRoot } from '../../src/util/package-root';
import { generateCa, generateCertificate, Pem, writeCertificate } from '../../src/security/certificates';
import { ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;

ensembleHooks(test);

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), ...args], { timeout: 60_000, env: { PATH: process.env.PATH, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

interface Pki { dir: string; caFile: string; ca: Pem; settings(role: 'replica' | 'taskmanager', id: string, signer?: Pem): Promise<string[]> }

async function pki(): Promise<Pki> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-tls-'));
  const ca = await generateCa();
  const caFile = path.join(dir, 'ca.crt');
  fs.writeFileSync(caFile, ca.cert);
  return {
    dir, caFile, ca,
    async settings(role, id, signer = ca) {
      const f = writeCertificate(dir, `${role}-${id}-${signer === ca ? 'ok' : 'foreign'}`, await generateCertificate(signer, role, id), caFile);
      const internal = ['security.ssl.internal.enabled=true', `security.ssl.internal.cert-file=${f.certFile}`, `security.ssl.internal.key-file=${f.keyFile}`,
        `security.ssl.internal.ca-file=${caFile}`];
      return role === 'taskmanager' ? internal
        : [...internal, 'security.ssl.rest.enabled=true', `security.ssl.rest.cert-file=${f.certFile}`, `security.ssl.rest.key-file=${f.keyFile}`];
    },
  };
}

test('with TLS on, https works end to end; mutual TLS keeps TaskManagers without a cluster certificate, or with another\'s, out', async (t) => {
  const p = await pki();
  const trust: ClientTls = { ca: p.ca.cert };
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 0, settings: await p.settings('replica', 'replicas'), restTls: trust,
  });
  t.teardown(() => cluster.stop());
  try {
    cluster.startTaskManager('tm1', await p.settings('taskmanager', 'tm1'));
    const [registered] = await cluster.waitForTaskManagers(1, 60_000) as Array<{ id: string; address: string }>;
    t.regex(registered.address, /^https:\/\/127\.0\.0\.1:\d+$/, 'the TaskManager advertises https');

    // A job through the CLI and a standby: redirect to the https leader, deploys and reports over mutual TLS.
    const leader = await cluster.leader();
    const standby = cluster.replicas.find((r) => r !== leader)!;
    t.regex(standby.url, /^https:/);
    const starts = path.join(cluster.dir, 'starts.txt');
    const job = path.join(p.dir, 'job.json');
    fs.writeFileSync(job, JSON.stringify({ name: 'over-tls', vertices: [{ id: 'work', parallelism: 2, task: shellTask(starts, 'sleep 0.2') }] }));
    const untrusted = await cli(['submit', job, '--url', standby.url]);
    t.not(untrusted.code, 0, 'without the CA the CLI refuses the certificate');
    const submitted = await cli(['submit', job, '--url', standby.url, '--wait', '--json'], { HA_DISPATCHER_CA_FILE: p.caFile });
    t.is(submitted.code, 0, submitted.stderr);
    t.is(JSON.parse(submitted.stdout).state, 'FINISHED');
    t.deepEqual([...startCounts(starts).entries()].sort(), [['work/0', 1], ['work/1', 1]]);
    const listed = await cli(['list', '-a', '--url', standby.url, '--ca-file', p.caFile, '--json']);
    t.is(listed.code, 0, listed.stderr);
    t.is(JSON.parse(listed.stdout).jobs.length, 1);

    // The dashboard page and what it fetches.
    const page = await requestJson('GET', `${leader.url}/`, undefined, { tls: trust });
    t.is(page.status, 200);
    t.regex(page.text, /<html/i);
    t.is((await requestJson('GET', `${standby.url}/health?standbyok=true`, undefined, { tls: trust })).status, 200);

    // Plain http to a TLS port gets no answer.
    const plain = await t.throwsAsync(requestJson('GET', `${leader.url.replace('https:', 'http:')}/livez`, undefined, { timeoutMs: 5000 }), { instanceOf: HttpTransportError });
    t.not(plain!.kind, 'aborted');
    await t.throwsAsync(requestJson('GET', `${registered.address.replace('https:', 'http:')}/livez`, undefined, { timeoutMs: 5000 }), { instanceOf: HttpTransportError });

    // Internal calls without a client certificate, with one of another CA, or with another TaskManager's.
    const epoch = (await cluster.rest('GET', '/leader')).body.epoch as number;
    const tm2Pem = await generateCertificate(p.ca, 'taskmanager', 'tm2');
    const foreignCa = await generateCa('not the cluster CA');
    const foreignTm1 = await generateCertificate(foreignCa, 'taskmanager', 'tm1');
    const asTm2: ClientTls = { ca: p.ca.cert, cert: tm2Pem.cert, key: tm2Pem.key };
    const asForeignTm1: ClientTls = { ca: p.ca.cert, cert: foreignTm1.cert, key: foreignTm1.key };
    const registration = { taskManagerId: 'tm1', instanceId: 'impostor', address: 'https://127.0.0.1:1', slots: 8, epoch, tasks: [] };
    const report = { taskManagerId: 'tm1', epoch, reports: [] };
    const internal = (route: string, body: unknown, tls: ClientTls) => requestJson('POST', `${leader.url}/internal${route}`, body, { tls });
    for (const [what, tls] of [['no client certificate', trust], ['a certificate of another CA', asForeignTm1]] as const) {
      t.is((await internal('/taskmanagers', registration, tls)).status, 401, `register with ${what}`);
      t.is((await internal('/taskmanagers/tm1/heartbeat', { epoch }, tls)).status, 401, `heartbeat with ${what}`);
      t.is((await internal('/tasks/status', report, tls)).status, 401, `report with ${what}`);
    }
    const posing = await internal('/taskmanagers', registration, asTm2);
    t.is(posing.status, 403, 'tm2\'s certificate cannot register as tm1');
    t.regex(posing.body.errors[0], /belongs to TaskManager tm2/);
    t.is((await internal('/taskmanagers/tm1/heartbeat', { epoch }, asTm2)).status, 403);
    t.is((await internal('/tasks/status', report, asTm2)).status, 403);
    await eventually('the refusal audited on the leader', () => leader.events('security.certificate.mismatch').length >= 3 ? true : null, 10_000, 100);
    t.like(leader.events('security.certificate.mismatch')[0], { certificateTaskManagerId: 'tm2', claimedTaskManagerId: 'tm1' });

    // Deploys to tm1 need a replica's certificate.
    const deploy = { jobId: 'c'.repeat(32), vertexId: 'evil', subtask: 0, attempt: 0, epoch, parallelism: 1, task: { type: 'command', argv: ['sh', '-c', `echo ran >> '${starts}'`] } };
    t.is((await requestJson('POST', `${registered.address}/deploy`, deploy, { tls: trust })).status, 401, 'deploy without a client certificate');
    t.is((await requestJson('POST', `${registered.address}/deploy`, deploy, { tls: asForeignTm1 })).status, 401, 'deploy with a foreign certificate');
    t.is((await requestJson('POST', `${registered.address}/deploy`, deploy, { tls: asTm2 })).status, 403, 'deploy with a TaskManager\'s certificate');
    t.is((await requestJson('GET', `${registered.address}/livez`, undefined, { tls: trust })).status, 200, 'liveness stays open');
    t.false(fs.readFileSync(starts, 'utf8').includes('ran'), 'no refused deploy ran');

    // Whole processes: a TaskManager with a foreign certificate, and one using tm2's certificate as "impostor".
    const foreign = cluster.startTaskManager('tm-foreign', await p.settings('taskmanager', 'tm-foreign', foreignCa));
    const impostorCert = await p.settings('taskmanager', 'tm2');
    const impostor = cluster.startTaskManager('impostor', impostorCert);
    await eventually('the foreign TaskManager refused', () => foreign.events('taskmanager.register.refused').some((e) => /^401/.test(String(e.reason))) || null, 30_000, 100);
    await eventually('the impostor refused', () => impostor.events('taskmanager.register.refused').some((e) => /403: the client certificate belongs to TaskManager tm2/.test(String(e.reason))) || null, 30_000, 100);
    const ids = ((await cluster.rest('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string }>).map((x) => x.id);
    t.deepEqual(ids, ['tm1'], 'only the TaskManager with its own certificate is registered');
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});

test('a replica or TaskManager bound beyond loopback without authentication refuses to start, naming the keys', async (t) => {
  const common = ['-D', `high-availability.zookeeper.quorum=${t.context.ensemble.connectString}`, '-D', 'high-availability.cluster-id=refused'];
  const replica = await cli(['dispatcher', ...common, '-D', 'rest.bind-address=0.0.0.0', '-D', 'rest.port=0']);
  t.is(replica.code, 2, replica.stderr);
  t.regex(replica.stderr, /rest\.bind-address/);
  for (const key of ['security.rest.token-file', 'security.internal.token-file', 'security.ssl.internal.enabled', 'security.allow-unauthenticated-non-loopback']) {
    t.true(replica.stderr.includes(key), `the refusal names ${key}: ${replica.stderr}`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-refused-'));
  const tm = await cli(['taskmanager', ...common, '-D', 'taskmanager.bind-address=0.0.0.0', '-D', `taskmanager.data-dir=${dataDir}`]);
  t.is(tm.code, 2, tm.stderr);
  t.regex(tm.stderr, /taskmanager\.bind-address.*security\.internal\.token-file.*security\.ssl\.internal\.enabled.*security\.allow-unauthenticated-non-loopback/s);
});

test('with TLS on and rest.standby-mode forward, a standby proxies leader-only calls to the https leader (verified with the cluster CA)', async (t) => {
  const p = await pki();
  const trust: ClientTls = { ca: p.ca.cert };
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 0,
    settings: [...await p.settings('replica', 'replicas'), 'rest.standby-mode=forward'], restTls: trust,
  });
  t.teardown(() => cluster.stop());
  const leader = await cluster.leader();
  const standby = cluster.replicas.find((r) => r !== leader)!;
  const submitted = await requestJson('POST', `${standby.url}/jobs`, { name: 'forwarded', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 10 } }] }, { tls: trust });
  t.is(submitted.status, 202, submitted.text);
  const jobId = (submitted.body as { jobid?: string; jobId?: string }).jobid ?? (submitted.body as { jobId?: string }).jobId;
  t.truthy(jobId, submitted.text);
  const listed = await requestJson('GET', `${standby.url}/jobs/${jobId}`, undefined, { tls: trust });
  t.is(listed.status, 200, 'answered through the standby, not redirected');
  const direct = await requestJson('GET', `${leader.url}/jobs/${jobId}`, undefined, { tls: trust });
  t.is(direct.status, 200, 'the leader has the job the standby forwarded');
});
