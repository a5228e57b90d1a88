/**
 * The runbook drills against a running cluster of real processes: each prints its observations and
 * passes only when every expectation held. Here on a plain-http cluster without a token;
 * test/integration/local-drills.test.ts runs every drill against `ha-dispatcher local` (TLS and token on).
 */
import anyTest, { TestFn } from 'ava';
import { runDrill } from '../../src/chaos/drills';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { ExecutionCluster } from '../helpers/execution-cluster';

interface Context extends ClusterContext<ExecutionCluster> { cluster: ExecutionCluster }
const test = anyTest as TestFn<Context>;

ensembleHooks(test);
test.before(async (t) => {
  t.context.cluster = await ExecutionCluster.start({ connect: t.context.ensemble.connectString, replicas: 2, taskManagers: 1 });
  t.context.clusters.push(t.context.cluster);
});

async function drill(t: import('ava').ExecutionContext<Context>, name: string, extra: Partial<Parameters<typeof runDrill>[1]> = {}): Promise<string[]> {
  const lines: string[] = [];
  const leader = await t.context.cluster.leader();
  const ok = await runDrill(name, { url: leader.url, noKill: false, signal: 'SIGTERM', timeoutMs: 60_000, out: (l) => lines.push(l), ...extra });
  t.log(lines.join('\n'));
  t.true(ok, `drill ${name} passed`);
  return lines;
}

test.serial('drill health: every expectation holds on a healthy cluster', async (t) => {
  const lines = await drill(t, 'health');
  t.true(lines.some((l) => /ok {3}\S+ redirects leader-only calls — 307/.test(l)));
});

test.serial('drill task-failure: the failed subtasks restart and the job finishes', async (t) => {
  await drill(t, 'task-failure');
});

test.serial('drill corrupt-jobgraph: the leader quarantines a garbage graph and keeps serving', async (t) => {
  await drill(t, 'corrupt-jobgraph');
});

test.serial('drill leader-failover: SIGTERM of the leader, a standby takes over, the probe job finishes', async (t) => {
  const before = await t.context.cluster.leader();
  const lines = await drill(t, 'leader-failover');
  // A graceful stop drains the REST port (rest.shutdown-drain) before the process exits.
  t.true(await eventually('the old leader exited', () => !before.running, 30_000, 50), 'the drill stopped the old leader');
  t.true(lines.some((l) => l.includes('a standby took over with a higher epoch')));
  before.start(); // the runbook's last step
});

test.serial('drill haproxy on a plain-http cluster of two replicas: the recipe routes to the leader and carries its client through a leader SIGTERM', async (t) => {
  await t.context.cluster.waitForStandbys();
  const before = await t.context.cluster.leader();
  const lines = await drill(t, 'haproxy');
  t.true(lines.some((l) => /ok {3}HAProxy serves http:\/\/127\.0\.0\.1:\d+ from the recipe/.test(l)));
  t.true(lines.some((l) => /ok {3}clients through HAProxy saw no connection error/.test(l)));
  // A graceful stop drains the REST port (rest.shutdown-drain) before the process exits.
  t.true(await eventually('the old leader exited', () => !before.running, 30_000, 50), 'the drill stopped the old leader');
  before.start();
});

test.serial('drill haproxy --standbyok: any healthy replica behind the recipe, 307s through the leader entrance, a leader SIGTERM without connection errors', async (t) => {
  await t.context.cluster.waitForStandbys();
  const before = await t.context.cluster.leader();
  const lines = await drill(t, 'haproxy', { standbyok: true });
  t.true(lines.some((l) => /leader entrance http:\/\/127\.0\.0\.1:\d+/.test(l)));
  t.true(lines.some((l) => /ok {3}the leader-only checks leave exactly one server UP at the leader entrance/.test(l)));
  t.true(lines.some((l) => /ok {3}GET \/health through HAProxy answers 200 \(any healthy replica\)/.test(l)));
  t.true(lines.some((l) => /ok {3}clients through HAProxy saw no connection error/.test(l)));
  t.true(await eventually('the old leader exited', () => !before.running, 30_000, 50), 'the drill stopped the old leader');
  before.start();
});

test.serial('an unknown drill is a usage error naming the drills', async (t) => {
  await t.throwsAsync(runDrill('nope', { url: 'http://127.0.0.1:1', noKill: true, signal: 'SIGTERM', timeoutMs: 1000, out: () => undefined }),
    { message: /unknown drill "nope"; drills: health, leader-failover/ });
});
