/**
 * The runbooks against `ha-dispatcher local` (https with its throwaway CA, REST token on), run the way
 * an operator runs them: the CLI with the connection flags local's banner prints, or their environment
 * variables. The health drill passes; the haproxy drill runs deploy/haproxy/haproxy.cfg with the real
 * haproxy in front of the replicas and carries its client through a leader SIGTERM; the runbook's
 * "bring the old leader back" (local's `restart NAME`) makes the cluster whole again; a newcomer's
 * job file, the README's example copied verbatim, runs to FINISHED; and after the ZooKeeper drill
 * restarted a server of local's ensemble, Ctrl-C still stops every process below local's folder.
 */
import anyTest, { TestFn } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { requestJson } from '../../src/http/client';
import { eventually } from '../helpers/ensemble';
import { readmeJobExample } from '../helpers/job-files';
import { isProcessAlive } from '../../src/util/process';
import { cli, commandLine, diagnosis, type LocalRun, startLocal } from '../helpers/local-cluster';

const test = anyTest as TestFn<{ local: LocalRun }>;

const get = (local: LocalRun, url: string) => requestJson('GET', url, undefined, { timeoutMs: 10_000, ...local.access });
/** The variables of the banner's `export …` line, as a user pastes it into a second terminal. */
function bannerEnv(local: LocalRun): Record<string, string> {
  const line = /^ +or: +export (.*); npx ha-dispatcher list$/m.exec(local.output())?.[1];
  if (!line) throw new Error('no "export" line in the banner');
  return Object.fromEntries(line.split(' ').map((kv) => kv.split('=', 2) as [string, string]));
}
const flags = (local: LocalRun): string[] => ['--url', local.urlList, '--ca-file', local.caFile, '--token-file', local.tokenFile];

/**
 * Every replica names the same ready leader and both TaskManagers are registered: the state the drills
 * start from. On a timeout the error carries the last views and local's diagnosis.
 */
async function settled(local: LocalRun, replicas = 3): Promise<string> {
  const urls = local.urlList.split(',');
  let last = 'nothing answered yet';
  try {
    return await eventually(`local settled: ${replicas} replicas naming one leader, 2 TaskManagers`, async () => {
      const views = await Promise.all(urls.map((u) => get(local, `${u}/health?standbyok=true`).then((a) => a.body, (e: Error) => ({ error: e.message }))));
      last = `health: ${JSON.stringify(views)}`;
      const answered = views.filter((v) => !v.error);
      const named = new Set(answered.map((v) => v.leader?.replicaId));
      if (answered.length !== replicas || named.size !== 1) return null;
      const leader = [...named][0] as string | undefined;
      const leaderUrl = answered.find((v) => v.role === 'leader')?.leader?.restUrl as string | undefined;
      if (!leader || !leaderUrl) return null;
      const overview = (await get(local, `${leaderUrl}/overview`)).body;
      last += `; overview: ${JSON.stringify(overview)}`;
      return overview.taskmanagers === 2 ? leader : null;
    }, 60_000, 200);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nlast seen: ${last}\n${diagnosis(local)}`);
  }
}

test.before(async (t) => {
  t.context.local = await startLocal(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-local-drills-')), ['--no-demo']);
  await settled(t.context.local);
});

test.after.always(async (t) => {
  await t.context.local?.destroy();
});

test.serial('drill health passes against local with the banner\'s --url, --ca-file and --token-file; without the token it says so', async (t) => {
  const { local } = t.context;
  const run = await cli(['drill', 'health', ...flags(local)], 120_000);
  t.log(run.stdout);
  t.is(run.code, 0, run.stdout + run.stderr);
  t.regex(run.stdout, /ok {3}exactly one replica is the ready leader/);
  t.regex(run.stdout, /ok {3}replica-\d redirects leader-only calls — 307 → https:\/\/127\.0\.0\.1:/);
  t.regex(run.stdout, /ok {3}TaskManagers are registered — 2 TaskManagers/);
  t.regex(run.stdout, /^RESULT: ok/m);

  const anonymous = await cli(['drill', 'health', '--url', local.urlList, '--ca-file', local.caFile], 60_000);
  t.is(anonymous.code, 1, anonymous.stdout + anonymous.stderr);
  t.regex(anonymous.stdout, /FAIL the drill ran to its end — GET \/replicas answered .*401.*--token-file/);
});

test.serial('the README job example, copied verbatim into a file, runs to FINISHED on local', async (t) => {
  const { local } = t.context;
  const file = path.join(local.dir, 'my-first-job.json');
  fs.writeFileSync(file, readmeJobExample());
  const env = bannerEnv(local);
  t.deepEqual(Object.keys(env), ['HA_DISPATCHER_URL', 'HA_DISPATCHER_CA_FILE', 'HA_DISPATCHER_TOKEN_FILE']);
  const run = await cli(['submit', file, '--wait'], 120_000, env);
  t.is(run.code, 0, run.stdout + run.stderr);
  t.regex(run.stdout, /^[0-9a-f]{32}\n/);
  t.regex(run.stdout, /FINISHED/);
});

/**
 * Types "restart NAME" on local's terminal until local says it restarted: it answers "still running"
 * until the stopped process has exited (a replica drains its REST port for rest.shutdown-drain first).
 */
async function restartOnceExited(local: LocalRun, name: string, mark = local.output().length): Promise<void> {
  const restarted = new RegExp(`${name} restarted \\(pid \\d+\\)`);
  await eventually(`local restarted ${name}`, () => {
    if (restarted.test(local.output().slice(mark))) return true;
    local.type(`restart ${name}`);
    return false;
  }, 30_000, 500);
}

test.serial('drill haproxy: the recipe routes to local\'s leader over TLS and carries its client through a leader SIGTERM; "restart NAME" brings the old leader back', async (t) => {
  const { local } = t.context;
  const before = await settled(local);
  // The banner's "export ..." line: the drill reads the same variables as the client verbs.
  const env = bannerEnv(local);
  const run = await cli(['drill', 'haproxy', '--timeout', '60000'], 170_000, env);
  t.log(run.stdout);
  t.is(run.code, 0, run.stdout + run.stderr);
  t.regex(run.stdout, /ok {3}HAProxy serves https:\/\/127\.0\.0\.1:\d+ from the recipe/);
  t.regex(run.stdout, new RegExp(`ok {3}GET /health through HAProxy reaches the leader — 200 from ${before}`));
  t.regex(run.stdout, new RegExp(`ok {3}a leader-only call \\(GET /jobs\\) is answered through HAProxy, not redirected — 200 from ${before}`));
  t.regex(run.stdout, /ok {3}authentication holds through HAProxy \(no token: 401\)/);
  t.regex(run.stdout, /ok {3}a new leader serves through the same address — replica-\d/);
  t.regex(run.stdout, /ok {3}clients through HAProxy saw no connection error/);
  t.regex(run.stdout, /ok {3}every other answer was 503 with Retry-After — [1-9]\d* × 200/);
  t.regex(run.stdout, /ok {3}HAProxy stopped/);
  t.regex(run.stdout, new RegExp(`type "restart ${before}" on its terminal`));

  // The drill stopped the old leader; the runbook's last step, as the drill printed it.
  const first = local.urlList.split(',').find((u) => !u.endsWith(`:${local.base + Number(before.slice(-1)) - 1}`))!;
  await eventually(`${before} left the latch`, async () => (await get(local, `${first}/replicas`)).body.replicas.length === 2, 30_000, 200);
  await restartOnceExited(local, before);
  const leader = await settled(local);
  t.not(leader, before, 'the restarted replica rejoined as a standby');
  const health = await cli(['drill', 'health'], 120_000, env);
  t.is(health.code, 0, health.stdout + health.stderr);
  t.regex(health.stdout, /ok {3}3 contenders in the latch/);
});

test.serial('drill haproxy --standbyok: any healthy replica over TLS, a standby\'s 307 leads through the https leader entrance, a leader SIGTERM without connection errors', async (t) => {
  const { local } = t.context;
  const before = await settled(local);
  const env = bannerEnv(local);
  const run = await cli(['drill', 'haproxy', '--standbyok', '--timeout', '60000'], 170_000, env);
  t.log(run.stdout);
  t.is(run.code, 0, run.stdout + run.stderr);
  t.regex(run.stdout, /leader entrance https:\/\/127\.0\.0\.1:\d+ \(HAPROXY_LEADER_BIND, HAPROXY_LEADER_URL\)/);
  t.regex(run.stdout, /ok {3}the leader-only checks leave exactly one server UP at the leader entrance/);
  t.regex(run.stdout, new RegExp(`ok {3}a leader-only call \\(GET /jobs\\) reaches the leader through HAProxy .* — 200 from ${before}`));
  t.regex(run.stdout, /ok {3}authentication holds through HAProxy \(no token: 401\)/);
  t.regex(run.stdout, /ok {3}clients through HAProxy saw no connection error/);
  const first = local.urlList.split(',').find((u) => !u.endsWith(`:${local.base + Number(before.slice(-1)) - 1}`))!;
  await eventually(`${before} left the latch`, async () => (await get(local, `${first}/replicas`)).body.replicas.length === 2, 30_000, 200);
  await restartOnceExited(local, before);
  t.not(await settled(local), before, 'the restarted replica rejoined as a standby');
});

test.serial('drills task-failure, corrupt-jobgraph, leader-failover and taskmanager-loss pass against local; "restart NAME" brings back what they stopped', async (t) => {
  const { local } = t.context;
  t.timeout(360_000);
  const env = bannerEnv(local);
  for (const name of ['task-failure', 'corrupt-jobgraph', 'leader-failover', 'taskmanager-loss']) {
    await settled(local);
    const mark = local.output().length;
    const run = await cli(['drill', name, '--timeout', '60000'], 170_000, env);
    t.log(run.stdout);
    t.is(run.code, 0, `drill ${name}: ${run.stdout}${run.stderr}`);
    // What the drill stopped, as its "next:" line names it; local's terminal starts it again.
    const stopped = /type "restart ([\w-]+)" on its terminal/.exec(run.stdout)?.[1];
    if (name === 'leader-failover' || name === 'taskmanager-loss') {
      if (!stopped) throw new Error(`drill ${name} named nothing to restart`);
      t.regex(stopped, name === 'leader-failover' ? /^replica-\d$/ : /^taskmanager-\d$/);
      await restartOnceExited(local, stopped, mark);
    }
  }
  await settled(local);
});

test.serial('drill zookeeper-follower-loss with --zk-dir <local --dir>/zookeeper passes; Ctrl-C then stops every process, the restarted server included', async (t) => {
  const { local } = t.context;
  await settled(local);
  const run = await cli(['drill', 'zookeeper-follower-loss', '--zk-dir', path.join(local.dir, 'zookeeper'), ...flags(local)], 170_000);
  t.log(run.stdout);
  t.is(run.code, 0, run.stdout + run.stderr);
  t.regex(run.stdout, /ok {3}the ensemble is whole again/);

  /** Every process whose command line names local's folder: replicas, TaskManagers, ZooKeeper servers. */
  const below = (): number[] => fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number)
    .filter((pid) => pid !== local.child.pid && commandLine(pid).includes(local.dir));
  t.true(below().some((pid) => commandLine(pid).includes('QuorumPeerMain')), 'ZooKeeper servers found by their folder');
  local.child.kill('SIGINT');
  t.deepEqual(await local.exited, { code: 0, signal: null });
  const left = await eventually('no process of local\'s folder left', () => {
    const alive = below().filter(isProcessAlive);
    return alive.length === 0 ? alive : null;
  }, 20_000, 100).catch(() => below().map((pid) => `${pid}: ${commandLine(pid)}`));
  t.deepEqual(left, []);
});
