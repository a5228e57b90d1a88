import anyTest, { TestFn } from 'ava';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../src/util/package-root';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { Cluster } from '../helpers/cluster';

const test = anyTest as TestFn<ClusterContext<Cluster> & { cluster: Cluster }>;

ensembleHooks(test);
test.before(async (t) => {
  t.context.cluster = await Cluster.start({ connect: t.context.ensemble.connectString });
  t.context.clusters.push(t.context.cluster);
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), ...args], { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test.serial('the CLI submits through a standby, lists, shows status and cancels; --json output parses', async (t) => {
  const { cluster } = t.context;
  const leader = await cluster.leader();
  const [standby] = await cluster.standbys(leader);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-cli-')), 'job.json');
  fs.writeFileSync(file, JSON.stringify({ name: 'cli-job', vertices: [{ id: 'only', parallelism: 2, task: { type: 'sleep', ms: 60000 } }] }));

  const submitted = await cli(['submit', file, '--url', standby.url, '--json']);
  t.is(submitted.code, 0, submitted.stderr);
  const jobId = JSON.parse(submitted.stdout).jobid as string;
  t.regex(jobId, /^[0-9a-f]{32}$/);

  const listed = await cli(['list', '--url', standby.url, '--json']);
  t.is(listed.code, 0, listed.stderr);
  t.true(JSON.parse(listed.stdout).jobs.some((j: { jid: string }) => j.jid === jobId));
  const table = await cli(['list', '--url', standby.url]);
  t.regex(table.stdout, /cli-job/);

  const status = await cli(['status', jobId, '--url', standby.url, '--json']);
  t.is(status.code, 0, status.stderr);
  t.is(JSON.parse(status.stdout).jid, jobId);

  const leaderInfo = await cli(['leader', '--url', standby.url, '--json']);
  t.is(JSON.parse(leaderInfo.stdout).replicaId, leader.id);

  const cancelled = await cli(['cancel', jobId, '--url', standby.url]);
  t.is(cancelled.code, 0, cancelled.stderr);
  await eventually('job canceled', async () => {
    const s = await cli(['status', jobId, '--url', standby.url, '--json']);
    return JSON.parse(s.stdout).state === 'CANCELED';
  });

  const overview = await cli(['overview', '--url', standby.url, '--json']);
  t.is(JSON.parse(overview.stdout)['jobs-cancelled'], 1);

  const missing = await cli(['status', '0'.repeat(32), '--url', standby.url]);
  t.is(missing.code, 4, 'unknown job → exit code 4');
  const usage = await cli(['status', 'not-an-id', '--url', standby.url]);
  t.is(usage.code, 2, 'invalid job id → exit code 2');
});

test.serial('an invalid configuration fails at start-up with a message naming the key', async (t) => {
  const res = await cli(['dispatcher', '-D', 'heartbeat.timeout=10', '-D', 'heartbeat.interval=1000']);
  t.is(res.code, 2);
  t.regex(res.stderr, /heartbeat\.timeout/);
  const typo = await cli(['dispatcher', '-D', 'rest.prot=8081']);
  t.is(typo.code, 2);
  t.regex(typo.stderr, /rest\.prot/);
});
