/**
 * REST principals, roles and the audit log on real processes: a cluster with security.rest.token (the
 * admin the helpers use), a credentials file (viewer, two submitters, an operator; hashes printed by
 * `ha-dispatcher hash-token`) and security.audit.file. A viewer reads but may not submit or cancel, a
 * submitter cancels its own job but not another's, an operator cancels any; a standby refuses before it
 * redirects; every one of these and every 401 leaves an audit line, and no token reaches a log.
 */
import anyTest, { TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { ClusterContext, ensembleHooks } from '../helpers/ensemble';
import { call, ExecutionCluster } from '../helpers/execution-cluster';
import { packageRoot } from '../../src/util/package-root';
import { eventually } from '../../src/util/poll';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;

ensembleHooks(test);

function cli(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), ...args], { timeout: 60_000, env: { PATH: process.env.PATH, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    child.stdin?.end(stdin ?? '');
  });
}

interface AuditLine { event: string; principal: string; action: string; target: string; outcome: string; status: number; remoteAddress: string; timestamp: string }

function auditLines(file: string): AuditLine[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditLine);
}

test('roles: a viewer reads but cannot submit or cancel, a submitter cancels only its own jobs, an operator any; each is audited without tokens', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-roles-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const token = (): string => crypto.randomBytes(24).toString('hex');
  const tokens = { admin: token(), viewer: token(), alice: token(), bob: token(), ops: token() };
  const hash = async (secret: string): Promise<string> => {
    const out = await cli(['hash-token'], {}, `${secret}\n`);
    if (out.code !== 0) throw new Error(`hash-token: ${out.stderr}`);
    return out.stdout.trim();
  };
  const credentialsFile = path.join(dir, 'credentials.yaml');
  fs.writeFileSync(credentialsFile, [
    'principals:',
    `  - { name: viewer, roles: [viewer], token-sha256: [${await hash(tokens.viewer)}] }`,
    `  - { name: alice, roles: [submitter], token-sha256: [${await hash(tokens.alice)}] }`,
    `  - { name: bob, roles: [viewer, submitter], token-sha256: [${await hash(tokens.bob)}] }`,
    `  - { name: ops, roles: [operator], token-sha256: [${await hash(tokens.ops)}] }`,
  ].join('\n'));
  const tokenFile = path.join(dir, 'admin.token');
  fs.writeFileSync(tokenFile, `${tokens.admin}\n`, { mode: 0o600 });
  const auditFile = path.join(dir, 'audit.jsonl');

  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1, restToken: tokens.admin,
    settings: [`security.rest.token-file=${tokenFile}`, `security.rest.credentials-file=${credentialsFile}`, `security.audit.file=${auditFile}`],
  });
  t.teardown(() => cluster.stop());
  try {
    await cluster.waitForTaskManagers(1);
    const leader = await cluster.leader();
    const standby = cluster.replicas.find((r) => r !== leader)!;
    const graph = (name: string): object => ({ jobId: crypto.randomBytes(16).toString('hex'), name, vertices: [{ id: 'work', parallelism: 1, task: { type: 'sleep', ms: 600_000 } }] });
    const as = (who: keyof typeof tokens, method: string, url: string, body?: unknown) => call(method, url, body, 30_000, tokens[who]);

    // A viewer lists and reads; it may not submit, on the leader or (refused before the redirect) on a standby.
    t.is((await as('viewer', 'GET', `${leader.url}/jobs`)).status, 200);
    t.is((await as('viewer', 'GET', `${leader.url}/jobs/overview`)).status, 200);
    for (const replica of [leader, standby]) {
      const refused = await as('viewer', 'POST', `${replica.url}/jobs`, graph('by-viewer'));
      t.is(refused.status, 403, `${replica.id}: ${refused.text}`);
      t.regex(refused.body.errors[0], /needs role submitter/);
    }
    t.is((await as('viewer', 'GET', `${leader.url}/jobmanager/config`)).status, 403, 'the configuration is for admins');

    // alice submits through the CLI on the standby (it redirects, the CLI follows with her token).
    const jobFile = path.join(dir, 'alice.json');
    const aliceGraph = graph('alice-job') as { jobId: string };
    fs.writeFileSync(jobFile, JSON.stringify(aliceGraph));
    const submitted = await cli(['submit', jobFile, '--url', standby.url, '--json'], { HA_DISPATCHER_TOKEN: tokens.alice });
    t.is(submitted.code, 0, submitted.stderr);
    const aliceJob = aliceGraph.jobId;
    const details = await as('viewer', 'GET', `${leader.url}/jobs/${aliceJob}`);
    t.is(details.body['submitted-by'], 'alice');
    const row = (await as('viewer', 'GET', `${leader.url}/jobs/overview`)).body.jobs.find((j: { jid: string }) => j.jid === aliceJob);
    t.is(row['submitted-by'], 'alice', 'the job list shows the submitter');

    // Cancels: a viewer never, bob (a submitter) not alice's job, ops (an operator) any.
    const byViewer = await as('viewer', 'PATCH', `${leader.url}/jobs/${aliceJob}?mode=cancel`);
    t.is(byViewer.status, 403);
    t.regex(byViewer.body.errors[0], /needs role submitter/);
    const byBob = await as('bob', 'PATCH', `${leader.url}/jobs/${aliceJob}?mode=cancel`);
    t.is(byBob.status, 403, byBob.text);
    t.regex(byBob.body.errors[0], /submitted by "alice".*needs role operator/);
    const byBobOnStandby = await as('bob', 'PATCH', `${standby.url}/jobs/${aliceJob}?mode=cancel`);
    t.is(byBobOnStandby.status, 307, 'the standby checked the role (submitter) and redirects; the leader checks ownership');
    t.is((await as('ops', 'PATCH', `${leader.url}/jobs/${aliceJob}?mode=cancel`)).status, 202);
    await cluster.waitForJob(aliceJob, (j) => j.state === 'CANCELED', 'alice\'s job CANCELED');

    // bob cancels his own job.
    const bobGraph = graph('bob-job') as { jobId: string };
    t.is((await as('bob', 'POST', `${leader.url}/jobs`, bobGraph)).status, 202);
    t.is((await as('bob', 'PATCH', `${leader.url}/jobs/${bobGraph.jobId}?mode=cancel`)).status, 202);

    // Without credentials: 401 on both replicas; a token no principal has: 403.
    for (const replica of [leader, standby]) t.is((await call('GET', `${replica.url}/jobs`)).status, 401);
    t.is((await call('POST', `${leader.url}/jobs`, graph('nobody'), 30_000, 'an-unknown-token-of-enough-length')).status, 403);

    // The audit file: one line per action and refusal, with principal, action, target and outcome.
    const expected: Array<Partial<AuditLine>> = [
      { principal: 'viewer', action: 'job.submit', outcome: 'denied', status: 403, target: '/jobs' },
      { principal: 'viewer', action: 'config.read', outcome: 'denied', status: 403 },
      { principal: 'alice', action: 'job.submit', outcome: 'allowed', status: 202, target: aliceJob },
      { principal: 'viewer', action: 'job.cancel', outcome: 'denied', status: 403, target: aliceJob },
      { principal: 'bob', action: 'job.cancel', outcome: 'denied', status: 403, target: aliceJob },
      { principal: 'bob', action: 'job.cancel', outcome: 'allowed', status: 307, target: aliceJob },
      { principal: 'ops', action: 'job.cancel', outcome: 'allowed', status: 202, target: aliceJob },
      { principal: 'bob', action: 'job.cancel', outcome: 'allowed', status: 202, target: bobGraph.jobId },
      { principal: 'anonymous', action: 'GET /jobs', outcome: 'denied', status: 401, target: '/jobs' },
      { principal: 'anonymous', action: 'job.submit', outcome: 'denied', status: 403 },
      { action: 'taskmanager.register', outcome: 'allowed', status: 200 },
    ];
    const lines = await eventually('every expected audit line', async () => {
      const all = auditLines(auditFile);
      const missing = expected.filter((e) => !all.some((l) => Object.entries(e).every(([k, v]) => l[k as keyof AuditLine] === v)));
      return missing.length === 0 ? all : null;
    }, 15_000, 100).catch((err) => { t.log(auditLines(auditFile)); throw err; });
    t.is(lines.filter((l) => l.principal === 'anonymous' && l.status === 401).length, 2, 'one 401 line per replica');
    for (const line of lines) {
      t.is(line.event, 'audit');
      t.false(Number.isNaN(Date.parse(line.timestamp)), 'ISO timestamp');
      t.truthy(line.remoteAddress, 'remote address');
    }

    // No token in the audit file or any process log.
    const logs = fs.readdirSync(cluster.dir).filter((f) => f.endsWith('.log')).map((f) => fs.readFileSync(path.join(cluster.dir, f), 'utf8'));
    t.true(logs.length >= 3, 'the replicas\' and the TaskManager\'s logs were read');
    for (const [who, secret] of Object.entries(tokens)) {
      t.false(fs.readFileSync(auditFile, 'utf8').includes(secret), `${who}'s token is not in the audit file`);
      t.false(logs.some((l) => l.includes(secret)), `${who}'s token is not in the logs`);
    }
  } catch (err) {
    t.log(cluster.logs());
    throw err;
  }
});
