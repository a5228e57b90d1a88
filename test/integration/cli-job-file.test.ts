/**
 * The newcomer path on real processes: the README's job file submitted verbatim through the CLI
 * FINISHES, and logs/exceptions/validate work on it; the CLI fails over between the replicas of a
 * comma-separated --url; a replica whose rest.port is taken exits at once naming the key and leaves no
 * ZooKeeper session behind; a TaskManager whose RPC port is taken likewise.
 */
import anyTest, { TestFn } from 'ava';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { fourLetterWord } from '../../src/ensemble/four-letter-word';
import { packageRoot } from '../../src/util/package-root';
import { eventually, startEnsemble } from '../helpers/ensemble';
import { ExecutionCluster, call } from '../helpers/execution-cluster';
import { readmeJobExample } from '../helpers/job-files';

interface Context { ensemble: LocalEnsemble; cluster: ExecutionCluster; dir: string }
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  t.context.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-cli-job-'));
  t.context.ensemble = await startEnsemble();
  t.context.cluster = await ExecutionCluster.start({ connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1 });
});

test.after.always(async (t) => {
  await t.context.cluster?.stop();
  await t.context.ensemble?.stop({ removeData: true });
  if (t.context.dir) fs.rmSync(t.context.dir, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), ...args],
      { timeout: 120_000, env: { ...process.env, HA_DISPATCHER_URL: '', ...env } }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
      });
  });
}

/** A port nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Open client connections over the whole ensemble, from each server's `srvr`. */
async function zkConnections(ensemble: LocalEnsemble): Promise<number> {
  let total = 0;
  for (const s of ensemble.servers) {
    const m = /Connections: (\d+)/.exec(await fourLetterWord('127.0.0.1', s.clientPort, 'srvr').catch(() => ''));
    total += m ? Number(m[1]) : 0;
  }
  return total;
}

test.serial("the README's job file, submitted verbatim with the CLI through a dead first URL, FINISHES; logs and exceptions show it", async (t) => {
  const { cluster, dir } = t.context;
  const file = path.join(dir, 'readme-example.json');
  fs.writeFileSync(file, readmeJobExample());
  t.is((await cli(['validate', file])).code, 0);

  // The first URL refuses connections: the CLI goes on to the next replica at once.
  const urls = [`http://127.0.0.1:${await closedPort()}`, ...cluster.replicas.map((r) => r.url)].join(',');
  const submitted = await cli(['submit', file, '--wait', '--url', urls]);
  t.is(submitted.code, 0, submitted.stderr + submitted.stdout);
  const jobId = submitted.stdout.split('\n')[0];
  t.regex(jobId, /^[0-9a-f]{32}$/);
  t.regex(submitted.stdout, /FINISHED/);

  const logs = await cli(['logs', jobId, 'extract', '--url', urls]);
  t.is(logs.code, 0, logs.stderr);
  t.regex(logs.stdout, /==> extract\[0\] attempt 0 \(FINISHED\) <==\nextracted part 0 of 2/);
  t.regex(logs.stdout, /extracted part 1 of 2/);
  const load = await cli(['logs', jobId, 'load', '0', '--attempt', '0', '--url', urls]);
  t.regex(load.stdout, /loaded into warehouse/);
  const missing = await cli(['logs', jobId, 'nope', '--url', urls]);
  t.is(missing.code, 4);
  t.regex(missing.stderr, /no vertex "nope"; its vertices: extract, transform, load/);

  const exceptions = await cli(['exceptions', jobId, '--url', urls]);
  t.is(exceptions.code, 0, exceptions.stderr);
  t.regex(exceptions.stdout, new RegExp(`job ${jobId} has no exceptions`));
});

test.serial('a job file with several problems is rejected by the cluster with every problem listed (exit 3)', async (t) => {
  const { cluster, dir } = t.context;
  const file = path.join(dir, 'bad.json');
  fs.writeFileSync(file, JSON.stringify({ vertices: [{ id: 'a b', task: { type: 'sleep' } }], restartStrategy: { type: 'none', delay: '1 s' } }));
  const res = await cli(['submit', file, '--url', cluster.replicas[0].url, '--json']);
  t.is(res.code, 3, res.stderr);
  const doc = JSON.parse(res.stdout);
  t.deepEqual(doc.errors.map((e: string) => e.split(' ')[0]), ['vertices[0].id', 'vertices[0].task.ms', 'restartStrategy']);
});

test.serial('a replica whose rest.port is taken exits non-zero at once naming rest.port, and leaves no ZooKeeper session', async (t) => {
  const { cluster, ensemble } = t.context;
  const taken = new URL(cluster.replicas[0].url).port;
  const before = await zkConnections(ensemble);
  const res = await cli(['dispatcher', '-D', `high-availability.zookeeper.quorum=${ensemble.connectString}`,
    '-D', `high-availability.cluster-id=${cluster.clusterId}`, '-D', `rest.port=${taken}`, '-D', 'replica.id=intruder']);
  t.not(res.code, 0);
  t.regex(res.stderr, new RegExp(`127\\.0\\.0\\.1:${taken} \\(rest\\.port\\).*already in use`));
  // Neither a contender in the latch nor an open session remains.
  const replicas = await call('GET', `${cluster.replicas[0].url}/replicas`);
  t.is(replicas.status, 200);
  t.false(replicas.body.replicas.some((r: { replicaId?: string }) => r.replicaId === 'intruder'));
  const after = await eventually('the connection count back to where it was', async () => {
    const now = await zkConnections(ensemble);
    return now <= before ? now : null;
  }, 15_000, 100).catch(async () => zkConnections(ensemble));
  t.true(after <= before, `${after} ZooKeeper connections after the intruder exited, ${before} before`);
});

test.serial('a TaskManager whose taskmanager.rpc-port is taken exits non-zero naming the key', async (t) => {
  const { cluster, ensemble } = t.context;
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as net.AddressInfo).port;
  const res = await cli(['taskmanager', '-D', `high-availability.zookeeper.quorum=${ensemble.connectString}`,
    '-D', `high-availability.cluster-id=${cluster.clusterId}`, '-D', `taskmanager.rpc-port=${port}`, '-D', 'taskmanager.id=intruder']);
  t.not(res.code, 0);
  t.regex(res.stderr, /\(taskmanager\.rpc-port\).*already in use/);
});

test.serial('with no cluster at the URLs a client verb fails fast with a hint; a non-HTTP port is named as such', async (t) => {
  const refused = await cli(['list', '--url', `http://127.0.0.1:${await closedPort()},http://127.0.0.1:${await closedPort()}`]);
  t.is(refused.code, 5);
  t.regex(refused.stderr, /no replica reachable after 1\.5 s: ECONNREFUSED from \S+; ECONNREFUSED from /);
  t.regex(refused.stderr, /hint: is a cluster running\? Start one with `npm start`/);

  const zk = await cli(['leader', '--url', `http://127.0.0.1:${t.context.ensemble.servers[0].clientPort}`]);
  t.is(zk.code, 5);
  t.regex(zk.stderr, /closed the connection without an HTTP answer; is it a replica's rest\.port/);
});

test.serial('/replicas answers 503 while the replica has no ZooKeeper session', async (t) => {
  // A replica pointed at a quorum that does not exist never connects.
  const port = await closedPort();
  const rest = await closedPort();
  const { ManagedChild } = await import('../../src/util/managed-child');
  const log = path.join(t.context.dir, 'no-zk.log');
  const child = ManagedChild.spawn(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), 'dispatcher',
    '-D', `high-availability.zookeeper.quorum=127.0.0.1:${port}`, '-D', `rest.port=${rest}`,
    '-D', 'high-availability.zookeeper.client.connection-timeout=60000'], { logFile: log });
  t.teardown(() => child.stop('SIGKILL', 1000));
  const answer = await eventually('the replica answers HTTP', () => call('GET', `http://127.0.0.1:${rest}/replicas`, undefined, 2000).catch(() => null), 30_000, 100);
  t.is(answer.status, 503);
  t.regex(answer.body.errors[0], /ZooKeeper is unreachable/);
});
