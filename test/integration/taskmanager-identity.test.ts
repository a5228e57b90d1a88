/**
 * TaskManager identity replayed against real processes with mutual TLS (src/resources/taskmanager-identity.ts):
 * while a job runs on one TaskManager, another TaskManager (with its own valid certificate) spoofs
 * reports on that attempt, claims it in a registration, and a second certificate for the running
 * TaskManager's own id registers from another address. Every attempt is refused, audited, and changes
 * nothing: the job finishes with its one attempt. (Calls without or with a foreign certificate, and a
 * certificate posing as another TaskManager, are covered by tls.test.ts.)
 */
import anyTest, { TestFn } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { ClientTls, requestJson } from '../../src/http/client';
import { generateCertificate } from '../../src/security/certificates';
import { ExecutionCluster, shellTask, startCounts } from '../helpers/execution-cluster';
import { pki } from '../helpers/pki';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;

ensembleHooks(test);

test('a TaskManager cannot report on, claim, or hijack the registration of another TaskManager\'s running attempt', async (t) => {
  const p = await pki();
  const trust: ClientTls = { ca: p.ca.cert };
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 1, taskManagers: 0, settings: await p.settings('replica', 'replicas'), restTls: trust,
  });
  t.teardown(() => cluster.stop());
  try {
    cluster.startTaskManager('tm1', await p.settings('taskmanager', 'tm1'));
    cluster.startTaskManager('tm2', await p.settings('taskmanager', 'tm2'));
    await cluster.waitForTaskManagers(2, 60_000);
    const leader = await cluster.leader();
    const epoch = (await cluster.rest('GET', '/leader')).body.epoch as number;

    // One subtask that runs until the test releases it.
    const starts = path.join(cluster.dir, 'starts.txt');
    const release = path.join(cluster.dir, 'release');
    const jobId = await cluster.submit({ name: 'identity', vertices: [{ id: 'work', parallelism: 1, task: shellTask(starts, `while [ ! -f '${release}' ]; do sleep 0.1; done`) }] });
    const running = await cluster.waitForJob(jobId, (j) => j.vertices?.[0]?.subtasks?.[0]?.status === 'RUNNING', 'the subtask RUNNING', 60_000);
    const owner = running.vertices[0].subtasks[0].taskmanager as string;
    const other = owner === 'tm1' ? 'tm2' : 'tm1';
    const attempt = { jobId, vertexId: 'work', subtask: 0, attempt: 0 };
    const before = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string; address: string }>;
    const ownerAddress = before.find((x) => x.id === owner)!.address;

    const otherPem = await generateCertificate(p.ca, 'taskmanager', other);
    const asOther: ClientTls = { ca: p.ca.cert, cert: otherPem.cert, key: otherPem.key };
    const internal = (route: string, body: unknown, tls: ClientTls) => requestJson('POST', `${leader.url}/internal${route}`, body, { tls });

    // Spoofed reports: the other TaskManager, as itself, on an attempt deployed to `owner`.
    for (const state of ['FAILED', 'FINISHED'] as const) {
      const spoofed = await internal('/tasks/status', { taskManagerId: other, epoch, reports: [{ ...attempt, state, startedAt: 1, endedAt: 2, error: 'spoofed' }] }, asOther);
      t.is(spoofed.status, 403, `a spoofed ${state} report`);
      t.regex(spoofed.body.errors[0], new RegExp(`did not deploy to it: ${jobId}/work/0/0 \\(deployed to ${owner}\\)`));
    }
    // A registration of the other TaskManager (from its own address) claiming the running attempt.
    const otherAddress = before.find((x) => x.id === other)!.address;
    const claim = await internal('/taskmanagers', {
      taskManagerId: other, instanceId: 'claimer', address: otherAddress, slots: 4, epoch, tasks: [{ ...attempt, state: 'FINISHED', startedAt: 1, endedAt: 2 }],
    }, asOther);
    t.is(claim.status, 403, 'a registration claiming another TaskManager\'s attempt');
    t.regex(claim.body.errors[0], new RegExp(`deployed to ${owner}`));
    // Another certificate for the owner's own id (signed by the cluster CA), from another address.
    const secondPem = await generateCertificate(p.ca, 'taskmanager', owner);
    const hijack = await internal('/taskmanagers', { taskManagerId: owner, instanceId: 'hijacker', address: 'https://127.0.0.1:2', slots: 64, epoch, tasks: [] },
      { ca: p.ca.cert, cert: secondPem.cert, key: secondPem.key });
    t.is(hijack.status, 409, 'the same id with another certificate from another address');
    t.regex(hijack.body.errors[0], /registered from https:\/\/127\.0\.0\.1:\d+ with another certificate/);

    await eventually('the refusals audited on the leader', () => (leader.events('taskmanager.report.rejected').length >= 3
      && leader.events('taskmanager.registration.refused').length >= 1) || null, 10_000, 100);
    t.like(leader.events('taskmanager.report.rejected')[0], { taskManagerId: other, kind: 'status', keys: [`${jobId}/work/0/0`], placedOn: [owner] });
    t.like(leader.events('taskmanager.registration.refused')[0], { taskManagerId: owner, address: 'https://127.0.0.1:2' });

    // Nothing changed: the owner keeps its address and the attempt, the subtask still runs its first attempt.
    const after = (await cluster.rest('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string; address: string; tasks: Array<{ jobId: string; state: string }> }>;
    t.is(after.find((x) => x.id === owner)?.address, ownerAddress);
    t.true(after.find((x) => x.id === owner)!.tasks.some((x) => x.jobId === jobId), 'the attempt still holds its slot on the owner');
    t.false(after.find((x) => x.id === other)!.tasks.some((x) => x.jobId === jobId));
    const job = await cluster.job(jobId);
    t.like(job.vertices[0].subtasks[0], { status: 'RUNNING', attempt: 0, taskmanager: owner });
    t.is(job.state, 'RUNNING');

    fs.writeFileSync(release, '');
    const finished = await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED', 60_000);
    t.like(finished.vertices[0].subtasks[0], { status: 'FINISHED', attempt: 0, taskmanager: owner });
    t.deepEqual([...startCounts(starts).entries()], [['work/0', 1]], 'one attempt, never restarted');
    const exceptions = (await cluster.rest('GET', `/jobs/${jobId}/exceptions`)).body;
    t.is(exceptions['root-exception'], null, 'no failure recorded');
    t.deepEqual(exceptions.exceptionHistory.entries, []);
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});
