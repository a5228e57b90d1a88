/**
 * The shipped deployments' ZooKeeper posture on real processes: replicas and TaskManagers given only
 * high-availability.zookeeper.client.digest-auth-file and state-key-file (as mounted secrets) lock the
 * cluster's nodes to that identity, a TaskManager finds the sealed leader and runs a job, other
 * identities get NoAuth, the password never shows in GET /jobmanager/config, and a TaskManager with
 * another identity cannot read /leader/info.
 */
import anyTest, { TestFn } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { ZkError } from '../../src/zk/errors';
import { generateStateKey } from '../../src/zk/sealed';
import { generateJobId } from '../../src/jobgraph';
import { connectedClient, eventually, startEnsemble } from '../helpers/ensemble';
import { ExecutionCluster } from '../helpers/execution-cluster';

interface Context { ensemble: LocalEnsemble }
const test = anyTest as TestFn<Context>;

test.before(async (t) => { t.context.ensemble = await startEnsemble(); });
test.after.always(async (t) => { await t.context.ensemble?.stop({ removeData: true }); });

const PASSWORD = 'file-only-password-7c1e';

function secretFile(name: string, content: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-secret-')), name);
  fs.writeFileSync(file, `${content}\n`, { mode: 0o600 });
  return file;
}

test('digest-auth-file and state-key-file alone: creator ACLs, a TaskManager runs a job, foreign identities get NoAuth, the password stays secret', async (t) => {
  const { ensemble } = t.context;
  const digestFile = secretFile('zookeeper-digest', `ha:${PASSWORD}`);
  const cluster = await ExecutionCluster.start({
    connect: ensemble.connectString, replicas: 1, taskManagers: 1,
    settings: [`high-availability.zookeeper.client.digest-auth-file=${digestFile}`, `high-availability.zookeeper.state-key-file=${secretFile('state-key', generateStateKey())}`],
  });
  t.teardown(() => cluster.stop());
  const job = await cluster.submit({ name: 'sealed', vertices: [{ id: 'a', parallelism: 1, task: { type: 'sleep', ms: 10 } }] });
  await cluster.waitForJob(job, (j) => j.state === 'FINISHED', 'the job FINISHED on the TaskManager');

  const config = await cluster.rest('GET', '/jobmanager/config');
  const entries = new Map<string, string>(config.body.map((e: { key: string; value: string }) => [e.key, e.value]));
  t.is(entries.get('high-availability.zookeeper.client.digest-auth'), '******');
  t.is(entries.get('high-availability.zookeeper.client.digest-auth-file'), digestFile);
  t.is(entries.get('high-availability.zookeeper.client.acl'), 'creator');
  t.false(JSON.stringify(config.body).includes(PASSWORD));
  for (const p of [...cluster.replicas, ...cluster.taskManagers]) t.false(p.readLog().includes(PASSWORD), `${p.id}: the password is not logged`);

  const chroot = `/ha-dispatcher/${cluster.clusterId}`;
  for (const digestAuth of [undefined, 'mallory:other']) {
    const foreign = await connectedClient({ connect: ensemble.connectString, chroot, digestAuth });
    try {
      const code = await foreign.create(`/jobgraphs/${generateJobId()}`, '{}').then(() => 'OK', (err) => (err instanceof ZkError ? err.code : String(err)));
      t.is(code, 'NOAUTH', `${digestAuth ?? 'unauthenticated'}: create under /jobgraphs`);
      const read = await foreign.get('/leader/info').then(() => 'OK', (err) => (err instanceof ZkError ? err.code : String(err)));
      t.is(read, 'NOAUTH', `${digestAuth ?? 'unauthenticated'}: read /leader/info`);
    } finally {
      await foreign.close();
    }
  }

  // A TaskManager with another identity (same state key file not even needed to show it): /leader/info is unreadable to it.
  const stranger = cluster.startTaskManager('tm-stranger', [
    `high-availability.zookeeper.client.digest-auth-file=${secretFile('zookeeper-digest', 'mallory:other')}`,
    `high-availability.zookeeper.state-key-file=${secretFile('state-key', generateStateKey())}`, 'log.level=debug',
  ]);
  await eventually('the stranger TaskManager fails to read /leader/info with NOAUTH',
    () => stranger.events('leader.retrieval.failed').some((e) => JSON.stringify(e).includes('NOAUTH')), 60_000, 200);
  const registered = await cluster.rest('GET', '/taskmanagers');
  t.deepEqual(registered.body.taskmanagers.map((tm: { id: string }) => tm.id), ['tm1'], 'only the TaskManager with the cluster identity registered');
});
