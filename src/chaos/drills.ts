/**
 * Runbook drills (`ha-dispatcher drill NAME`): each runbook in runbooks/ ends with a drill that
 * rehearses its failure against a running cluster and prints what it observed, so an operator knows
 * the procedure works before needing it. Drills that stop a process do so only on this host (they
 * find the pid from the replica's latch data, or a TaskManager's port); elsewhere, or with
 * --no-kill, they ask the operator to do it and watch. Every wait is bounded.
 *
 * Drills connect like the client verbs (--url list, --token-file, --ca-file and their environment
 * variables, read by src/client/credentials.ts). The token goes to the replicas named by --url and to
 * the contenders those replicas list in GET /replicas (the cluster's own latch), never elsewhere.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { restToken, trustedCa } from '../client/credentials';
import { parseUrlList, RestClient } from '../client/rest-client';
import { type ClientTls, HttpTransportError, type JsonResponse, requestJson } from '../http/client';
import { generateJobId } from '../jobgraph';
import { LocalEnsemble } from '../ensemble/local-ensemble';
import { NativeZooKeeperClient } from '../zk/client';
import { sleep } from '../util/clock';
import { isTerminalJobStatus } from '../jobgraph/status';
import { jobGraphPath, quarantineNodePath } from '../zk/layout';
import { findHaproxy, HAPROXY_RECIPE, HaproxyBalancer, RECIPE_MAX_REPLICAS } from './haproxy';

export interface DrillOptions {
  /** One replica's REST URL, or several comma-separated: the first that answers is the drill's entry point. */
  url: string;
  noKill: boolean;
  signal: 'SIGTERM' | 'SIGKILL';
  /** Bound of each wait for the cluster (a takeover, a loss being declared), in ms. */
  timeoutMs: number;
  zkDir?: string;
  /** security.rest.token, sent as a bearer token (see the module comment for where). */
  token?: string;
  /** For https replicas: the CA that signed their certificates. */
  tls?: ClientTls;
  /** The `haproxy` program for the haproxy drill; default: found on PATH or in /usr/sbin. */
  haproxy?: string;
  /**
   * The haproxy drill with the recipe's "any healthy replica" pattern (HAPROXY_HEALTH_CHECK=
   * /health?standbyok=true) and its leader entrance (standbys' 307s rewritten to it); default: leader-only checks.
   */
  standbyok?: boolean;
  out: (line: string) => void;
}

interface Drill {
  name: string;
  runbook: string;
  description: string;
  run(o: DrillOptions, check: Checks): Promise<void>;
}

/** Collects expectations: each is printed as it is judged; the drill passes when none failed. */
class Checks {
  failed = 0;
  constructor(private readonly out: (line: string) => void) {}
  expect(ok: boolean, what: string, detail = ''): boolean {
    if (!ok) this.failed++;
    this.out(`  ${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` — ${detail}` : ''}`);
    return ok;
  }
  note(line: string): void {
    this.out(`       ${line}`);
  }
}

interface Contender { replicaId: string; restUrl: string; pid?: number; host?: string; sequence: number }
interface Health { status: number; role?: string; leader?: { replicaId: string; restUrl: string; epoch: number } | null; zookeeper?: { state: string } }

/** One GET of one replica (no redirects, no retries) with the drill's token and CA; null when no answer came within `timeoutMs`. */
function get(o: DrillOptions, url: string, timeoutMs = 3000): Promise<JsonResponse | null> {
  return requestJson('GET', url, undefined, { timeoutMs, token: o.token, tls: o.tls }).catch(() => null);
}

/** The cluster's REST client (redirects followed, 503 retried) over `url`, with the drill's token and CA. */
function restClient(o: DrillOptions, url: string = o.url): RestClient {
  return new RestClient({ url, deadlineMs: o.timeoutMs, token: o.token, tls: o.tls });
}

/** The latch's contenders as the first replica of --url that answers lists them. */
async function contenders(o: DrillOptions): Promise<Contender[]> {
  const answers: string[] = [];
  for (const entry of parseUrlList(o.url).map((u) => u.replace(/\/$/, ''))) {
    const a = await get(o, `${entry}/replicas`);
    if (a?.status === 200) return (a.body.replicas as Contender[]).filter((c) => typeof c.restUrl === 'string');
    answers.push(`${entry}: ${a?.status ?? 'no answer'}`);
  }
  const unauthorized = answers.some((a) => / 40[13]$/.test(a));
  throw new Error(`GET /replicas answered ${answers.join(', ')}; ${unauthorized
    ? 'give the REST token (--token-file or $HA_DISPATCHER_TOKEN_FILE)'
    : 'is a replica serving there? For https replicas give their CA (--ca-file or $HA_DISPATCHER_CA_FILE)'}`);
}

async function health(o: DrillOptions, restUrl: string): Promise<Health> {
  const a = await get(o, `${restUrl}/health?standbyok=true`);
  return a ? { status: a.status, ...(a.body ?? {}) } : { status: 0 };
}

/** Every contender in latch order, with its own /health. */
async function contenderHealths(o: DrillOptions): Promise<Array<{ c: Contender; h: Health }>> {
  const list = await contenders(o);
  return Promise.all(list.map(async (c) => ({ c, h: await health(o, c.restUrl) })));
}

/**
 * Every contender's health and the one that says it leads; records the drill's first check ("a ready
 * leader before the drill") and returns null, ending the drill, when none does.
 */
async function readyLeader(o: DrillOptions, check: Checks): Promise<{ leader: Contender; healths: Array<{ c: Contender; h: Health }> } | null> {
  const healths = await contenderHealths(o);
  const leader = healths.find(({ h }) => h.role === 'leader')?.c;
  if (!check.expect(!!leader, 'a ready leader before the drill', leader ? `${leader.replicaId} at ${leader.restUrl}` : 'none')) return null;
  return { leader: leader!, healths };
}

/** The ready leader as the replica at `url` sees it, polled until `predicate` holds or the time is up. */
async function waitForLeader(o: DrillOptions, url: string, predicate: (l: { replicaId: string; epoch: number; restUrl: string }) => boolean, timeoutMs: number):
  Promise<{ replicaId: string; epoch: number; restUrl: string; at: number } | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const a = await get(o, `${url}/leader`, 2000);
    if (a?.status === 200 && predicate(a.body)) return { ...a.body, at: Date.now() };
    await sleep(100);
  }
  return null;
}

/** What to do to bring a stopped process back, for the `local` cluster and the runbooks' deployments. */
function restartHint(id: string): string {
  return `start ${id} again — under \`ha-dispatcher local\` type "restart ${id}" on its terminal; ` +
    'Compose: docker compose -f docker/compose.yaml start <service>; Kubernetes restarts the pod by itself';
}

function isLocalHost(host: string | undefined): boolean {
  return !!host && (host === os.hostname() || host === 'localhost' || host.startsWith('127.'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid listening on a loopback TCP port, from /proc (Linux); null elsewhere or when not found. */
export function pidListeningOn(port: number): number | null {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== '0A') continue; // 0A = LISTEN
      if (parseInt(cols[1].split(':')[1], 16) === port) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return null;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try { fds = fs.readdirSync(`/proc/${entry}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${entry}/fd/${fd}`));
        if (m && inodes.has(m[1])) return Number(entry);
      } catch { /* gone */ }
    }
  }
  return null;
}

async function waitJob(client: RestClient, jobId: string, done: (state: string, job: any) => boolean, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any = null;
  while (Date.now() < deadline) {
    last = (await client.request('GET', `/jobs/${jobId}`).catch(() => null))?.body ?? last;
    if (last && done(last.state, last)) return last;
    await sleep(250);
  }
  return last;
}


// ---- the drills -------------------------------------------------------------------------------------

const healthDrill: Drill = {
  name: 'health',
  runbook: 'runbooks/cluster-health.md',
  description: 'read-only: one ready leader, every replica agrees on it, standbys redirect, TaskManagers registered, nothing quarantined',
  async run(o, check) {
    const healths = await contenderHealths(o);
    check.expect(healths.length > 0, `${healths.length} contenders in the latch`, healths.map(({ c }) => `${c.replicaId}@${c.restUrl}`).join(', '));
    const leaders = healths.filter(({ h }) => h.role === 'leader');
    check.expect(leaders.length === 1, 'exactly one replica is the ready leader', leaders.map(({ c }) => c.replicaId).join(', ') || 'none');
    const leader = leaders[0]?.c;
    for (const { c, h } of healths) {
      check.expect(h.zookeeper?.state === 'CONNECTED' || h.zookeeper?.state === 'RECONNECTED', `${c.replicaId} is connected to ZooKeeper`, h.zookeeper?.state ?? `no answer (${h.status})`);
      if (leader) check.expect(h.leader?.replicaId === leader.replicaId, `${c.replicaId} names ${leader.replicaId} as the leader`, `it names ${h.leader?.replicaId ?? 'none'} (epoch ${h.leader?.epoch ?? '-'})`);
      if (leader && c !== leader) {
        const a = await get(o, `${c.restUrl}/jobs`);
        const location = a?.headers.get('location') ?? '';
        check.expect(a?.status === 307 && location.startsWith(leader.restUrl), `${c.replicaId} redirects leader-only calls`, `${a?.status ?? 'no answer'} → ${location || '-'}`);
      }
    }
    if (!leader) return;
    const overview = (await get(o, `${leader.restUrl}/overview`))?.body;
    check.expect((overview?.taskmanagers ?? 0) > 0, 'TaskManagers are registered', `${overview?.taskmanagers ?? 0} TaskManagers, ${overview?.['slots-available'] ?? 0}/${overview?.['slots-total'] ?? 0} slots free`);
    const quarantined = ((await get(o, `${leader.restUrl}/jobs/quarantined`))?.body?.quarantined ?? []) as Array<{ jobId: string; reason: string }>;
    check.expect(quarantined.length === 0, 'no quarantined job graphs', quarantined.map((q) => `${q.jobId}: ${q.reason}`).join('; '));
  },
};

const leaderFailoverDrill: Drill = {
  name: 'leader-failover',
  runbook: 'runbooks/leader-failover.md',
  description: 'submit through a standby, stop the leader, measure the takeover, check the job survives',
  async run(o, check) {
    const ready = await readyLeader(o, check);
    if (!ready) return;
    const { leader, healths } = ready;
    const standby = healths.find(({ c, h }) => c !== leader && h.status !== 0)?.c;
    if (!check.expect(!!standby, 'a standby to take over', standby?.replicaId ?? 'none: a failover needs a second replica')) return;
    const before = await waitForLeader(o, standby!.restUrl, () => true, 5000);
    check.note(`leader ${leader.replicaId}, epoch ${before?.epoch ?? '?'}, pid ${leader.pid ?? '?'} on ${leader.host ?? '?'}`);

    const client = restClient(o, standby!.restUrl);
    const jobId = generateJobId();
    const submitted = await client.request('POST', '/jobs', { jobId, name: 'drill-leader-failover', vertices: [{ id: 'probe', parallelism: 1, task: { type: 'sleep', ms: 3000 } }] });
    check.expect(submitted.status === 202, `probe job ${jobId} submitted through standby ${standby!.replicaId}`, `${submitted.status}`);

    const started = Date.now();
    const canKill = !o.noKill && leader.pid !== undefined && isLocalHost(leader.host) && alive(leader.pid);
    if (canKill) {
      process.kill(leader.pid!, o.signal);
      check.note(`${o.signal} sent to ${leader.replicaId} (pid ${leader.pid})`);
    } else {
      o.out(`  >>> stop the leader now: replica ${leader.replicaId} (pid ${leader.pid ?? '?'} on ${leader.host ?? '?'}); waiting up to ${Math.round(o.timeoutMs / 1000)} s`);
    }
    const after = await waitForLeader(o, standby!.restUrl, (l) => l.replicaId !== leader.replicaId && l.epoch > (before?.epoch ?? -1), o.timeoutMs);
    if (!check.expect(!!after, 'a standby took over with a higher epoch', after ? `${after.replicaId}, epoch ${after.epoch}` : 'no new leader in time')) return;
    check.note(`takeover observed ${((after!.at - started) / 1000).toFixed(1)} s after the stop` +
      (o.signal === 'SIGKILL' ? ' (a crash waits for the session timeout)' : ' (a graceful stop hands over at once)'));
    const job = await waitJob(client, jobId, isTerminalJobStatus, 60_000);
    check.expect(job?.state === 'FINISHED', 'the probe job survived the failover and finished', job?.state ?? 'not found');
    o.out(`  next: ${restartHint(leader.replicaId)} (runbook step "bring the old leader back"); it rejoins as a standby`);
  },
};

const taskFailureDrill: Drill = {
  name: 'task-failure',
  runbook: 'runbooks/taskmanager-loss.md',
  description: 'a task that fails once: the restart strategy reruns only that subtask, the exception history names the cause',
  async run(o, check) {
    const client = restClient(o);
    const overview = (await client.request('GET', '/overview')).body;
    if (!check.expect(overview.taskmanagers > 0, 'TaskManagers are registered', `${overview.taskmanagers}`)) return;
    const jobId = generateJobId();
    await client.request('POST', '/jobs', {
      jobId, name: 'drill-task-failure',
      vertices: [
        { id: 'flaky', parallelism: 2, task: { type: 'fail', afterMs: 300, failAttempts: 1, message: 'drill: planned failure' } },
        { id: 'after', inputs: ['flaky'], task: { type: 'sleep', ms: 200 } },
      ],
      restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 500 },
    });
    check.note(`job ${jobId} submitted`);
    const job = await waitJob(client, jobId, isTerminalJobStatus, 60_000);
    check.expect(job?.state === 'FINISHED', 'the job finished after restarting the failed subtasks', job?.state ?? 'not found');
    check.expect((job?.restarts ?? 0) >= 1, 'restarts were counted', `${job?.restarts ?? 0} restarts`);
    const exceptions = (await client.request('GET', `/jobs/${jobId}/exceptions`)).body;
    const entries = (exceptions.exceptionHistory?.entries ?? []) as Array<{ stacktrace: string }>;
    check.expect(entries.some((e) => e.stacktrace.includes('drill: planned failure')), 'the exception history names the cause', `${entries.length} entries`);
  },
};

const taskManagerLossDrill: Drill = {
  name: 'taskmanager-loss',
  runbook: 'runbooks/taskmanager-loss.md',
  description: 'stop a TaskManager running a job: it is declared lost, its tasks restart elsewhere, the job finishes',
  async run(o, check) {
    const client = restClient(o);
    const tms = (await client.request('GET', '/taskmanagers')).body.taskmanagers as Array<{ id: string; address: string; slotsNumber: number }>;
    if (!check.expect(tms.length >= 2, 'at least two TaskManagers', `${tms.length}`)) return;
    const jobId = generateJobId();
    await client.request('POST', '/jobs', {
      jobId, name: 'drill-taskmanager-loss', vertices: [{ id: 'work', parallelism: 2, task: { type: 'sleep', ms: 8000 } }],
      restartStrategy: { type: 'fixed-delay', attempts: 5, delayMs: 500 },
    });
    const running = await waitJob(client, jobId, (_s, j) => (j.vertices?.[0]?.subtasks ?? []).every((x: { status: string }) => x.status === 'RUNNING'), 30_000);
    const subtasks = (running?.vertices?.[0]?.subtasks ?? []) as Array<{ taskmanager: string | null; status: string }>;
    const victimId = subtasks.find((s) => s.taskmanager)?.taskmanager;
    const victim = tms.find((t) => t.id === victimId);
    if (!check.expect(!!victim, 'the job runs on a TaskManager', victimId ?? 'no placement seen')) return;
    const url = new URL(victim!.address);
    const pid = !o.noKill && isLocalHost(url.hostname) ? pidListeningOn(Number(url.port)) : null;
    const started = Date.now();
    if (pid) {
      process.kill(pid, 'SIGKILL');
      check.note(`SIGKILL sent to TaskManager ${victim!.id} (pid ${pid})`);
    } else {
      o.out(`  >>> stop TaskManager ${victim!.id} (${victim!.address}) now; waiting up to ${Math.round(o.timeoutMs / 1000)} s`);
    }
    const lostDeadline = Date.now() + o.timeoutMs;
    let lost = false;
    while (!lost && Date.now() < lostDeadline) {
      const list = (await client.request('GET', '/taskmanagers').catch(() => null))?.body?.taskmanagers as Array<{ id: string }> | undefined;
      lost = !!list && !list.some((t) => t.id === victim!.id);
      if (!lost) await sleep(250);
    }
    check.expect(lost, `${victim!.id} was declared lost`, lost ? `after ${((Date.now() - started) / 1000).toFixed(1)} s (heartbeat.timeout)` : 'still registered');
    const job = await waitJob(client, jobId, isTerminalJobStatus, 90_000);
    check.expect(job?.state === 'FINISHED', 'the job finished on the remaining TaskManagers', job?.state ?? 'not found');
    const entries = ((await client.request('GET', `/jobs/${jobId}/exceptions`)).body.exceptionHistory?.entries ?? []) as Array<{ exceptionName: string }>;
    check.expect(entries.some((e) => e.exceptionName === 'TaskManagerLost'), 'the exception history records TaskManagerLost', `${entries.length} entries`);
    o.out(`  next: ${restartHint(victim!.id)}; it registers with the leader by itself`);
  },
};

const zookeeperFollowerDrill: Drill = {
  name: 'zookeeper-follower-loss',
  runbook: 'runbooks/zookeeper-outage.md',
  description: 'stop one ZooKeeper follower of a local ensemble (--zk-dir): the cluster keeps serving; restart it',
  async run(o, check) {
    if (!check.expect(!!o.zkDir, 'a local ensemble folder (--zk-dir)', o.zkDir ?? 'missing: e.g. --zk-dir <local --dir>/zookeeper')) return;
    const ensemble = LocalEnsemble.attach(o.zkDir!);
    const status = await ensemble.status();
    const follower = status.find((s) => s.mode === 'follower');
    if (!check.expect(!!follower, 'a serving follower', status.map((s) => `${s.id}:${s.mode}`).join(' '))) return;
    const client = restClient(o);
    const leaderBefore = (await client.request('GET', '/leader')).body;
    await ensemble.killServer(follower!.id);
    check.note(`ZooKeeper server ${follower!.id} (follower, port ${follower!.clientPort}) killed`);
    try {
      const jobIds: string[] = [];
      for (let i = 0; i < 3; i++) {
        const jobId = generateJobId();
        const a = await client.request('POST', '/jobs', { jobId, name: `drill-zk-follower-${i}`, vertices: [{ id: 'probe', task: { type: 'sleep', ms: 200 } }] });
        if (a.status === 202) jobIds.push(jobId);
      }
      check.expect(jobIds.length === 3, 'submissions are accepted with one follower down', `${jobIds.length}/3`);
      const leaderDuring = (await client.request('GET', '/leader')).body;
      check.expect(leaderDuring.replicaId === leaderBefore.replicaId, 'the dispatcher leader did not change', `${leaderBefore.replicaId} → ${leaderDuring.replicaId}`);
      const done = await Promise.all(jobIds.map((id) => waitJob(client, id, isTerminalJobStatus, 60_000)));
      check.expect(done.every((j) => j?.state === 'FINISHED'), 'the probe jobs finished', done.map((j) => j?.state).join(', '));
    } finally {
      await ensemble.restartServer(follower!.id);
      check.note(`ZooKeeper server ${follower!.id} restarted`);
    }
    await ensemble.waitForQuorum(60_000).then(() => check.expect(true, 'the ensemble is whole again'), (err) => check.expect(false, 'the ensemble is whole again', (err as Error).message.split('\n')[0]));
  },
};

const corruptJobGraphDrill: Drill = {
  name: 'corrupt-jobgraph',
  runbook: 'runbooks/corrupt-state.md',
  description: 'write an unreadable graph under /jobgraphs: the leader quarantines and reports it and keeps serving; the drill removes its record',
  async run(o, check) {
    const client = restClient(o);
    const entries = (await client.request('GET', '/jobmanager/config')).body as Array<{ key: string; value: string }>;
    const config = Object.fromEntries(entries.map((e) => [e.key, e.value]));
    const root = `${String(config['high-availability.zookeeper.path.root']).replace(/\/$/, '')}/${config['high-availability.cluster-id']}`;
    const zk = new NativeZooKeeperClient({ connect: config['high-availability.zookeeper.quorum'], chroot: root, sessionTimeoutMs: 30_000, digestAuth: process.env.HA_DISPATCHER_ZK_DIGEST });
    try {
      await zk.waitUntilConnected(15_000);
      const jobId = generateJobId();
      await zk.create(jobGraphPath(jobId), '{"formatVersion":1, "drill": "this is not a job graph"');
      check.note(`wrote an unreadable ${jobGraphPath(jobId)} under ${root}`);
      const deadline = Date.now() + 30_000;
      let entry: { jobId: string; node: string; reason: string } | undefined;
      while (!entry && Date.now() < deadline) {
        const q = (await client.request('GET', '/jobs/quarantined')).body.quarantined as Array<{ jobId: string; node: string; reason: string }>;
        entry = q.find((x) => x.jobId === jobId);
        if (!entry) await sleep(250);
      }
      check.expect(!!entry, 'the leader quarantined it and reports it on GET /jobs/quarantined', entry ? `${entry.node}: ${entry.reason}` : 'not reported');
      check.expect(!(await zk.exists(jobGraphPath(jobId))), 'the unreadable node left /jobgraphs');
      const probe = generateJobId();
      const a = await client.request('POST', '/jobs', { jobId: probe, name: 'drill-corrupt-jobgraph', vertices: [{ id: 'probe', task: { type: 'sleep', ms: 100 } }] });
      check.expect(a.status === 202, 'the leader keeps accepting jobs', `${a.status}`);
      if (entry) {
        await zk.delete(quarantineNodePath(entry.node)).catch(() => undefined);
        check.note(`removed the drill's quarantine record ${quarantineNodePath(entry.node)} (the leader lists it until its next term)`);
      }
    } finally {
      await zk.close();
    }
  },
};

/** What clients through the balancer saw, answer by answer. */
interface Tally { ok: number; unavailable: number; other: string[]; connectionErrors: string[] }

const haproxyDrill: Drill = {
  name: 'haproxy',
  runbook: 'runbooks/load-balancer.md',
  description: 'HAProxy from deploy/haproxy/haproxy.cfg in front of the replicas (leader-only checks, or --standbyok: any healthy replica with the leader entrance): leader-only calls reach the leader; while the leader stops, clients see only answers or 503 + Retry-After',
  async run(o, check) {
    const ready = await readyLeader(o, check);
    if (!ready) return;
    const { leader, healths } = ready;
    if (!check.expect(healths.length <= RECIPE_MAX_REPLICAS, `at most ${RECIPE_MAX_REPLICAS} replicas (the recipe's REPLICA1…${RECIPE_MAX_REPLICAS})`, `${healths.length}`)) return;
    const secure = healths.some(({ c }) => c.restUrl.startsWith('https:'));
    if (secure && !check.expect(!!o.tls, 'the CA of the https replicas', o.tls ? '' : 'missing: --ca-file or $HA_DISPATCHER_CA_FILE')) return;
    const binary = o.haproxy ?? findHaproxy();
    if (!check.expect(!!binary, 'an haproxy program', binary ?? 'not on PATH nor in /usr/sbin: install haproxy or pass --haproxy BIN')) return;

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-drill-haproxy-'));
    let balancer: HaproxyBalancer | undefined;
    const failedBefore = check.failed;
    try {
      balancer = await HaproxyBalancer.start({
        binary: binary!, dir, replicas: healths.map(({ c }) => new URL(c.restUrl).host), replicaCa: secure ? o.tls!.ca : undefined,
        ...(o.standbyok ? { healthCheck: '/health?standbyok=true', leaderEntrance: true } : {}),
      });
      check.expect(true, `HAProxy serves ${balancer.url} from the recipe`, `${HAPROXY_RECIPE} accepted by haproxy -c; ${balancer.version}`);
      if (o.standbyok) check.note(`any healthy replica: HAPROXY_HEALTH_CHECK=/health?standbyok=true; leader entrance ${balancer.leaderUrl} (HAPROXY_LEADER_BIND, HAPROXY_LEADER_URL)`);
      if (secure) check.note('TLS: https to each replica, verified against the cluster CA (HAPROXY_REPLICA_CA_FILE); clients get a throwaway certificate (HAPROXY_TLS_CERT)');
      const lb = balancer;
      /** One request through the balancer (`p` a path, or a URL at the leader entrance): its answer, or the transport error a client would see. */
      const through = (p: string, auth = true): Promise<JsonResponse | HttpTransportError> =>
        requestJson('GET', p.startsWith('/') ? `${lb.url}${p}` : p, undefined, { timeoutMs: 10_000, tls: lb.tls, token: auth ? o.token : undefined })
          .catch((err: unknown) => { if (err instanceof HttpTransportError) return err; throw err; });
      /**
       * As a client does: a 307 back through the balancer (relative, or to the leader entrance) is followed
       * once. A 307 to anywhere else (a replica's own URL) is returned as it is.
       */
      const follow = async (p: string): Promise<JsonResponse | HttpTransportError> => {
        const a = await through(p);
        const location = a instanceof HttpTransportError || a.status !== 307 ? null : a.headers.get('location');
        return location && (location.startsWith('/') || (lb.leaderUrl !== null && location.startsWith(`${lb.leaderUrl}/`))) ? through(location) : a;
      };
      const from = (a: JsonResponse | HttpTransportError): string => (a instanceof HttpTransportError ? `no answer (${a.detail})`
        : `${a.status} from ${a.headers.get('x-ha-replica-id') ?? 'HAProxy'}${a.status === 307 ? ` → ${a.headers.get('location')}` : ''}`);

      // Servers start UP until their checks fail; a monitor URI answers 200 once exactly one (the leader) is
      // left: the client entrance's with leader-only checks, the leader entrance's with --standbyok.
      const monitor = lb.leaderUrl ? `${lb.leaderUrl}/haproxy-health` : '/haproxy-health';
      const settled = await pollUntil(async () => { const a = await through(monitor, false); return !(a instanceof HttpTransportError) && a.status === 200; }, 30_000);
      if (!check.expect(settled, `the leader-only checks leave exactly one server UP${lb.leaderUrl ? ' at the leader entrance' : ''}`,
        settled ? `GET ${monitor}: 200` : `not within 30 s (GET ${monitor})`)) return;
      const h = await through('/health');
      if (o.standbyok) {
        check.expect(!(h instanceof HttpTransportError) && h.status === 200, 'GET /health through HAProxy answers 200 (any healthy replica)', from(h));
      } else {
        check.expect(!(h instanceof HttpTransportError) && h.status === 200 && h.body?.role === 'leader' && h.headers.get('x-ha-replica-id') === leader.replicaId,
          'GET /health through HAProxy reaches the leader', from(h));
      }
      const jobs = await follow('/jobs');
      check.expect(!(jobs instanceof HttpTransportError) && jobs.status === 200 && jobs.headers.get('x-ha-replica-id') === leader.replicaId,
        o.standbyok ? 'a leader-only call (GET /jobs) reaches the leader through HAProxy (a standby\'s 307 leads to the leader entrance)'
          : 'a leader-only call (GET /jobs) is answered through HAProxy, not redirected', from(jobs));
      if (o.token !== undefined) {
        const anonymous = await through('/jobs', false);
        check.expect(!(anonymous instanceof HttpTransportError) && anonymous.status === 401, 'authentication holds through HAProxy (no token: 401)', from(anonymous));
      }
      await failoverThrough(o, check, leader, follow);
    } finally {
      if (balancer) {
        await balancer.stop();
        check.expect(!balancer.running, 'HAProxy stopped');
        if (check.failed > failedBefore) check.note(`HAProxy's log (tail):\n${balancer.logTail(3000).replace(/^/gm, '         ')}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

/**
 * The failover half of the haproxy drill: a client reads GET /jobs through the balancer back to back
 * (following a 307 back through the balancer once, as clients do) while the leader stops, until a new leader answered a
 * few times. Every answer must be a 200 or a 503 with Retry-After; a connection error or any other
 * status is what the recipe exists to prevent.
 */
async function failoverThrough(o: DrillOptions, check: Checks, leader: Contender,
  through: (p: string) => Promise<JsonResponse | HttpTransportError>): Promise<void> {
  const tally: Tally = { ok: 0, unavailable: 0, other: [], connectionErrors: [] };
  let newLeader: { id: string; at: number } | undefined;
  let answersFromNewLeader = 0;
  let reading = true;
  const reader = (async () => {
    while (reading) {
      // `through` follows a 307 back through the balancer, as clients do: from a standby (--standbyok),
      // or from a stopping leader that drains as one.
      const a = await through('/jobs');
      const replica = a instanceof HttpTransportError ? null : a.headers.get('x-ha-replica-id');
      if (a instanceof HttpTransportError) tally.connectionErrors.push(a.detail);
      else if (a.status === 200) tally.ok++;
      else if (a.status === 503 && a.headers.get('retry-after')) tally.unavailable++;
      else tally.other.push(`${a.status} from ${replica ?? 'HAProxy'}`);
      if (!(a instanceof HttpTransportError) && a.status === 200 && replica && replica !== leader.replicaId) {
        newLeader ??= { id: replica, at: Date.now() };
        answersFromNewLeader++;
      }
      await sleep(50);
    }
  })();
  try {
    await pollUntil(() => tally.ok + tally.unavailable > 0 || tally.connectionErrors.length + tally.other.length > 0, 10_000);
    const started = Date.now();
    const canKill = !o.noKill && leader.pid !== undefined && isLocalHost(leader.host) && alive(leader.pid);
    if (canKill) {
      process.kill(leader.pid!, o.signal);
      check.note(`${o.signal} sent to the leader ${leader.replicaId} (pid ${leader.pid}); a client reads GET /jobs through HAProxy meanwhile`);
    } else {
      o.out(`  >>> stop the leader now: replica ${leader.replicaId} (pid ${leader.pid ?? '?'} on ${leader.host ?? '?'}); waiting up to ${Math.round(o.timeoutMs / 1000)} s`);
    }
    // A few answers from the new leader: HAProxy has settled on it, not just passed one check.
    const served = await pollUntil(() => answersFromNewLeader >= 5, o.timeoutMs);
    check.expect(served, 'a new leader serves through the same address',
      newLeader ? `${newLeader.id}, ${((newLeader.at - started) / 1000).toFixed(1)} s after the stop` : 'none in time');
  } finally {
    reading = false;
    await reader;
  }
  check.expect(tally.connectionErrors.length === 0, 'clients through HAProxy saw no connection error',
    tally.connectionErrors.length ? `${tally.connectionErrors.length}: ${[...new Set(tally.connectionErrors)].join('; ')}` : '');
  check.expect(tally.other.length === 0, 'every other answer was 503 with Retry-After',
    `${tally.ok} × 200, ${tally.unavailable} × 503 + Retry-After${tally.other.length ? `, unexpected: ${tally.other.slice(0, 5).join(', ')}` : ''}`);
  o.out(`  next: ${restartHint(leader.replicaId)} (runbooks/leader-failover.md step 4); HAProxy keeps it DOWN while it is a standby`);
}

/** Polls `done` every 100 ms until it holds (true) or `timeoutMs` passed (false). */
async function pollUntil(done: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

export const DRILLS: Drill[] = [healthDrill, leaderFailoverDrill, taskFailureDrill, taskManagerLossDrill, zookeeperFollowerDrill, corruptJobGraphDrill, haproxyDrill];

export const DRILL_USAGE = `ha-dispatcher drill NAME [--url URL[,URL...]] [--token-file FILE] [--ca-file FILE] [--no-kill] [--signal TERM|KILL] [--timeout MS] [--zk-dir DIR] [--haproxy BIN] [--standbyok]
drills: ${DRILLS.map((d) => d.name).join(', ')}  (ha-dispatcher drill --list)
--url defaults to $HA_DISPATCHER_URL, else http://127.0.0.1:8081; the token comes from --token-file, $HA_DISPATCHER_TOKEN_FILE
or $HA_DISPATCHER_TOKEN, the CA of https replicas from --ca-file or $HA_DISPATCHER_CA_FILE (as for the client verbs).`;

export async function runDrill(name: string, options: DrillOptions): Promise<boolean> {
  const drill = DRILLS.find((d) => d.name === name);
  if (!drill) throw Object.assign(new Error(`unknown drill ${JSON.stringify(name)}; drills: ${DRILLS.map((d) => d.name).join(', ')}`), { exitCode: 2 });
  options.out(`drill ${drill.name} against ${options.url} (${drill.runbook})`);
  options.out(`  ${drill.description}`);
  const check = new Checks(options.out);
  const started = Date.now();
  try {
    await drill.run(options, check);
  } catch (err) {
    check.expect(false, 'the drill ran to its end', (err as Error).message);
  }
  options.out(`RESULT: ${check.failed === 0 ? 'ok' : `${check.failed} expectation(s) failed`} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return check.failed === 0;
}

export async function drillCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true,
    options: {
      url: { type: 'string' }, 'no-kill': { type: 'boolean', default: false }, signal: { type: 'string', default: 'TERM' },
      timeout: { type: 'string', default: '120000' }, 'zk-dir': { type: 'string' }, list: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
      'token-file': { type: 'string' }, 'ca-file': { type: 'string' }, haproxy: { type: 'string' }, standbyok: { type: 'boolean', default: false },
    },
  });
  const out = (line: string): void => { process.stdout.write(`${line}\n`); };
  if (values.list) {
    for (const d of DRILLS) out(`${d.name.padEnd(26)} ${d.description} (${d.runbook})`);
    return 0;
  }
  if (values.help || positionals.length !== 1) {
    out(DRILL_USAGE);
    return values.help ? 0 : 2;
  }
  const signal = values.signal.toUpperCase().replace(/^SIG/, '');
  if (signal !== 'TERM' && signal !== 'KILL') throw Object.assign(new Error('--signal must be TERM or KILL'), { exitCode: 2 });
  const timeoutMs = Number(values.timeout);
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1000) throw Object.assign(new Error('--timeout must be a number of milliseconds, at least 1000'), { exitCode: 2 });
  const url = parseUrlList(values.url ?? (env.HA_DISPATCHER_URL || 'http://127.0.0.1:8081')).map((u) => u.replace(/\/$/, '')).join(',');
  const ok = await runDrill(positionals[0], {
    url, noKill: values['no-kill'], signal: `SIG${signal}` as 'SIGTERM' | 'SIGKILL', timeoutMs, zkDir: values['zk-dir'],
    token: restToken(values['token-file'], env), tls: trustedCa(values['ca-file'], env), haproxy: values.haproxy, standbyok: values.standbyok, out,
  });
  return ok ? 0 : 1;
}
