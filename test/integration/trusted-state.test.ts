/**
 * Trusted cluster state on real processes and a real ensemble: creator ACLs keep other ZooKeeper
 * identities out of every node the product made; the ensemble itself can refuse unauthenticated
 * sessions (enforce.auth); with an `open` ACL, graphs and leader information written by anyone without
 * the cluster state key are never acted on; a replica restarted at once never redirects to itself.
 */
import anyTest, { TestFn } from 'ava';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { NativeZooKeeperClient, ZK_PERMS } from '../../src/zk/client';
import { ZkError } from '../../src/zk/errors';
import { join } from '../../src/zk/paths';
import { generateStateKey } from '../../src/zk/sealed';
import { generateJobId } from '../../src/jobgraph';
import { connectedClient, eventually, startEnsemble } from '../helpers/ensemble';
import { call, ExecutionCluster, shellTask } from '../helpers/execution-cluster';

interface Context { ensemble: LocalEnsemble }
const test = anyTest as TestFn<Context>;

test.before(async (t) => { t.context.ensemble = await startEnsemble(); });
test.after.always(async (t) => { await t.context.ensemble?.stop({ removeData: true }); });

function stateKeyFile(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-state-key-')), 'state.key');
  fs.writeFileSync(file, `${generateStateKey()}\n`, { mode: 0o600 });
  return file;
}

function chroot(cluster: ExecutionCluster): string {
  return `/ha-dispatcher/${cluster.clusterId}`;
}

/** The ZooKeeper error code of `op`, or 'OK' when it succeeded. */
async function outcome(op: () => Promise<unknown>): Promise<string> {
  try {
    await op();
    return 'OK';
  } catch (err) {
    return err instanceof ZkError ? err.code : String(err);
  }
}

async function withClusters(t: { teardown(fn: () => Promise<void>): void }, cluster: ExecutionCluster): Promise<ExecutionCluster> {
  t.teardown(() => cluster.stop());
  return cluster;
}

test('with acl creator, other identities get NoAuth on every store, graph, result, progress, latch and leader node; no node the product made is world-writable', async (t) => {
  const { ensemble } = t.context;
  const cluster = await withClusters(t, await ExecutionCluster.start({
    connect: ensemble.connectString, replicas: 2, taskManagers: 1,
    settings: ['high-availability.zookeeper.client.digest-auth=ha:s3cret', `high-availability.zookeeper.state-key-file=${stateKeyFile()}`],
  }));
  const finished = await cluster.submit({ name: 'done', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 10 } }] });
  await cluster.waitForJob(finished, (j) => j.state === 'FINISHED', 'first job FINISHED');
  const running = await cluster.submit({ name: 'long', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 120_000 } }] });
  const product = await connectedClient({ connect: ensemble.connectString, chroot: chroot(cluster), digestAuth: 'ha:s3cret' });
  t.teardown(() => product.close());
  await eventually('the running job has progress', () => product.exists(`/jobs/${running}/progress`), 60_000, 100);
  const [latchNode] = await product.getChildren('/leader/latch');
  await eventually('/leader/info published', () => product.exists('/leader/info'), 30_000, 50);

  for (const digestAuth of [undefined, 'mallory:other']) {
    const foreign = await connectedClient({ connect: ensemble.connectString, chroot: chroot(cluster), digestAuth });
    try {
      const who = digestAuth ?? 'unauthenticated';
      const id = generateJobId();
      const attempts: Record<string, () => Promise<unknown>> = {
        'create /jobgraphs child': () => foreign.create(`/jobgraphs/${id}`, '{}'),
        'create /jobresults child': () => foreign.create(`/jobresults/${id}`, '{}'),
        'create /jobs child': () => foreign.create(`/jobs/${id}`, ''),
        'create /quarantine/jobgraphs child': () => foreign.create(`/quarantine/jobgraphs/${id}`, '{}'),
        'create /leader/latch child': () => foreign.create('/leader/latch/_c_x-latch-', '{}', 'ephemeral_sequential'),
        'create /leader child': () => foreign.create('/leader/other', '{}', 'ephemeral'),
        'set a graph': () => foreign.set(`/jobgraphs/${running}`, '{}'),
        'set a result': () => foreign.set(`/jobresults/${finished}`, '{}'),
        'set a progress': () => foreign.set(`/jobs/${running}/progress`, '{}'),
        'set /leader/info': () => foreign.set('/leader/info', '{}'),
        'delete the latch node': () => foreign.delete(`/leader/latch/${latchNode}`),
        'delete /leader/info': () => foreign.delete('/leader/info'),
      };
      for (const [what, op] of Object.entries(attempts)) t.is(await outcome(op), 'NOAUTH', `${who}: ${what}`);
    } finally {
      await foreign.close();
    }
  }

  // Every node under the chroot, and the chroot itself: no world permission beyond READ, and owned by a digest identity.
  const walk = async (p: string): Promise<string[]> => [p, ...(await Promise.all((await product.getChildren(p)).map((c) => walk(join(p, c))))).flat()];
  const nodes = await walk('/');
  t.true(nodes.length >= 10, nodes.join(' '));
  for (const node of nodes) {
    const acl = await product.getACL(node);
    t.false(acl.some((a) => a.scheme === 'world' && (a.perms & ~ZK_PERMS.READ) !== 0), `${node}: ${JSON.stringify(acl)}`);
    t.true(acl.some((a) => a.scheme === 'digest' && a.id.startsWith('ha:') && a.perms === ZK_PERMS.ALL), `${node}: ${JSON.stringify(acl)}`);
  }
});

test('an ensemble with enforce.auth.enabled refuses a session without digest credentials and serves one with them', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-zk-enforce-'));
  const secured = await LocalEnsemble.start({
    dir, servers: 1, tickTime: 100, minSessionTimeoutMs: 400, maxSessionTimeoutMs: 30000,
    serverProperties: { 'enforce.auth.enabled': 'true', 'enforce.auth.schemes': 'digest' },
  });
  t.teardown(() => secured.stop({ removeData: true }));
  const authed = await connectedClient({ connect: secured.connectString, digestAuth: 'ha:s3cret', acl: 'creator' });
  t.teardown(() => authed.close());
  t.is(await outcome(() => authed.create('/ok', 'x')), 'OK');

  const anonymous = new NativeZooKeeperClient({ connect: secured.connectString, sessionTimeoutMs: 4000 });
  t.teardown(() => anonymous.close());
  await anonymous.waitUntilConnected(15_000).catch(() => undefined);
  t.not(await outcome(() => anonymous.create('/anonymous', 'x')), 'OK');
  t.is(await authed.exists('/anonymous'), null);
  t.deepEqual((await authed.getACL('/ok')).map((a) => a.scheme), ['digest']);
});

test('clusters with different identities share path.root: the first one to create it leaves it open to CREATE only, so the second starts', async (t) => {
  const { ensemble } = t.context;
  const root = `/shared-${crypto.randomBytes(4).toString('hex')}`;
  const first = await connectedClient({ connect: ensemble.connectString, chroot: `${root}/a`, digestAuth: 'ha:s3cret', acl: 'creator' });
  t.teardown(() => first.close());
  const second = await connectedClient({ connect: ensemble.connectString, chroot: `${root}/b`, digestAuth: 'other:pw', acl: 'creator' });
  t.teardown(() => second.close());
  const open = await connectedClient({ connect: ensemble.connectString, chroot: `${root}/c` });
  t.teardown(() => open.close());
  t.is(await outcome(() => second.create('/mine', 'x')), 'OK');
  t.is(await outcome(() => open.create('/mine', 'x')), 'OK');
  const admin = await connectedClient({ connect: ensemble.connectString, digestAuth: 'ha:s3cret' });
  t.teardown(() => admin.close());
  const acl = await admin.getACL(root);
  t.deepEqual(acl.filter((a) => a.scheme === 'world').map((a) => a.perms), [ZK_PERMS.CREATE], JSON.stringify(acl));
  // Each chroot is its owner's alone: another identity can neither write it nor delete it from the shared root.
  const other = await connectedClient({ connect: ensemble.connectString, digestAuth: 'other:pw' });
  t.teardown(() => other.close());
  t.is(await outcome(() => other.set(`${root}/a`, 'x')), 'NOAUTH');
  t.is(await outcome(() => other.delete(`${root}/a`)), 'NOAUTH');
});

test('with acl open and a state key, a graph written by a foreign identity and a tampered running graph are quarantined, never run', async (t) => {
  const { ensemble } = t.context;
  const cluster = await withClusters(t, await ExecutionCluster.start({
    connect: ensemble.connectString, replicas: 2, taskManagers: 1,
    settings: ['high-availability.zookeeper.client.acl=open', `high-availability.zookeeper.state-key-file=${stateKeyFile()}`],
  }));
  const foreign = await connectedClient({ connect: ensemble.connectString, chroot: chroot(cluster) });
  t.teardown(() => foreign.close());
  const marker = path.join(cluster.dir, 'forged-ran');
  const evil = (jobId: string): string => JSON.stringify({
    formatVersion: 1, submittedAt: new Date().toISOString(), digest: 'x',
    graph: { jobId, name: 'evil', vertices: [{ id: 'evil', parallelism: 1, task: { type: 'command', argv: ['sh', '-c', `touch '${marker}'`] } }] },
  });

  const forged = generateJobId();
  await foreign.create(`/jobgraphs/${forged}`, evil(forged));
  const quarantined = async (jobId: string): Promise<any> => eventually(`${jobId} quarantined`, async () => {
    const a = await cluster.rest('GET', '/jobs/quarantined');
    return (a.body?.quarantined as any[] | undefined)?.find((q) => q.jobId === jobId) ?? null;
  }, 60_000, 100);
  t.regex((await quarantined(forged)).reason, /MAC/);

  const starts = path.join(cluster.dir, 'starts.txt');
  const running = await cluster.submit({ name: 'honest', vertices: [{ id: 'a', parallelism: 1, task: shellTask(starts, 'sleep 120') }] });
  await cluster.waitForJob(running, (j) => j.vertices[0].subtasks.every((s: any) => s.status === 'RUNNING'), 'honest job RUNNING');
  await foreign.set(`/jobgraphs/${running}`, evil(running));
  const leader = await cluster.leader();
  await leader.signal('SIGKILL');
  await cluster.leader(60_000, [leader]);
  t.regex((await quarantined(running)).reason, /MAC/);
  t.false(fs.existsSync(marker), 'a forged vertex ran');
});

test('forged /leader/info (foreign ephemeral, persistent "0", huge epoch, javascript: URL) never gets a registration or a redirect; jobs finish', async (t) => {
  const { ensemble } = t.context;
  const cluster = await withClusters(t, await ExecutionCluster.start({
    connect: ensemble.connectString, replicas: 2, taskManagers: 1,
    settings: ['high-availability.zookeeper.client.acl=open', `high-availability.zookeeper.state-key-file=${stateKeyFile()}`],
  }));
  const hits: string[] = [];
  const trap = http.createServer((req, res) => { hits.push(`${req.method} ${req.url}`); res.statusCode = 500; res.end(); });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => { trap.closeAllConnections(); trap.close(() => resolve()); }));
  const trapUrl = `http://127.0.0.1:${(trap.address() as AddressInfo).port}`;
  const foreign = await connectedClient({ connect: ensemble.connectString, chroot: chroot(cluster) });
  t.teardown(() => foreign.close());
  const leader = await cluster.leader();
  const standby = cluster.replicas.find((r) => r !== leader)!;

  const forgeries = [
    { restUrl: trapUrl, epoch: 1, sessionId: foreign.sessionId!, mode: 'ephemeral' as const },
    { restUrl: trapUrl, epoch: 1, sessionId: '0', mode: 'persistent' as const },
    { restUrl: trapUrl, epoch: 2 ** 50, sessionId: foreign.sessionId!, mode: 'ephemeral' as const },
    { restUrl: 'javascript:alert(1)//', epoch: 2 ** 50, sessionId: foreign.sessionId!, mode: 'ephemeral' as const },
  ];
  const answers: Array<{ status: number; location: string | null }> = [];
  let forging = true;
  const forger = (async () => {
    for (let i = 0; forging; i++) {
      const f = forgeries[i % forgeries.length];
      const info = { replicaId: 'ghost', restUrl: f.restUrl, rpcUrl: f.restUrl, epoch: f.epoch, sessionId: f.sessionId, electedAt: new Date().toISOString(), readyAt: new Date().toISOString() };
      await foreign.delete('/leader/info').catch(() => undefined);
      await foreign.create('/leader/info', JSON.stringify(info), f.mode).catch(() => undefined);
      for (let k = 0; k < 4 && forging; k++) {
        const a = await call('GET', `${standby.url}/jobs`, undefined, 5000).catch(() => null);
        if (a) answers.push({ status: a.status, location: a.headers.get('location') });
      }
    }
  })();
  const jobs: string[] = [];
  try {
    for (let i = 0; i < 3; i++) jobs.push(await cluster.submit({ name: `during-${i}`, vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 50 } }] }));
    await eventually('a few standby answers under forgery', () => answers.length >= 20, 60_000, 100);
  } finally {
    forging = false;
    await forger;
  }
  await foreign.delete('/leader/info').catch(() => undefined);
  jobs.push(await cluster.submit({ name: 'after', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 50 } }] }));
  for (const jobId of jobs) await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', `${jobId} FINISHED`);
  t.deepEqual(hits, [], 'the forged leader was contacted');
  const bad = answers.filter((a) => a.status === 307 && !a.location?.startsWith(leader.url));
  t.deepEqual(bad, [], 'a standby redirected somewhere other than the leader');
  t.true(answers.every((a) => a.status === 307 || a.status === 503), JSON.stringify(answers.slice(0, 5)));
});

test('a leader killed and restarted at once with a generated replica.id: no replica redirects to itself; 503 + Retry-After until a leader is ready', async (t) => {
  const { ensemble } = t.context;
  const cluster = await withClusters(t, await ExecutionCluster.start({
    connect: ensemble.connectString, replicas: 2, taskManagers: 1, generatedReplicaIds: true,
    settings: [`high-availability.zookeeper.state-key-file=${stateKeyFile()}`],
  }));
  const leader = await cluster.leader();
  await leader.signal('SIGKILL');
  leader.start();
  const seen: Array<{ replica: string; status: number; location: string | null; retryAfter: string | null }> = [];
  await eventually('a ready leader after the restart', async () => {
    let ready = false;
    for (const r of cluster.replicas) {
      const a = await call('GET', `${r.url}/jobs`, undefined, 2000).catch(() => null);
      if (!a) continue;
      seen.push({ replica: r.url, status: a.status, location: a.headers.get('location'), retryAfter: a.headers.get('retry-after') });
      if (a.status === 200) ready = true;
    }
    return ready;
  }, 90_000, 50);
  const selfRedirects = seen.filter((s) => s.status === 307 && s.location !== null && new URL(s.location).origin === new URL(s.replica).origin);
  t.deepEqual(selfRedirects, []);
  const unavailable = seen.filter((s) => s.status === 503);
  t.true(unavailable.length > 0, 'the failover window was observed');
  t.true(unavailable.every((s) => s.retryAfter !== null));
  const jobId = await cluster.submit({ name: 'after-restart', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 50 } }] });
  await cluster.waitForJob(jobId, (j) => j.state === 'FINISHED', 'job FINISHED');
});
