/**
 * The "any healthy replica" pattern of deploy/haproxy/haproxy.cfg (HAPROXY_HEALTH_CHECK=
 * /health?standbyok=true), in both standby modes, through a leader SIGKILL and then a SIGTERM. A client
 * hammers HAProxy (20 req/s; in redirect mode following 307s to the leader's own URL) and sees no
 * connection error: a standby learns of the SIGKILL from its liveness connection to the leader closing
 * (and the port then refusing), not from probes failing one interval after another, so it sends no
 * 307 to the dead leader once it heard the close. The one exception is inherent to redirect mode: a
 * request the client sent to the leader itself (following a 307 it got before the leader's exit was
 * seen) may die with the leader; those are told apart by when the 307 arrived, and forward mode has none.
 * "Dead" is checked the way the kernel defines it: once the killed leader's exit was seen (its sockets
 * are closed by then, so its standbys' liveness connections have ended), no request sent from then on
 * is answered with a 307 to it — neither through HAProxy nor to a standby hammered directly. A 307
 * sent between the signal and the exit (the process is being torn down: its port still accepts, then
 * resets) is reported, not failed: no signal exists for it short of a probe per request.
 * Every other failure is 503 + Retry-After, and no acknowledged job is lost. In redirect mode,
 * standbys hammered directly never send a client to the dead leader once they answered 503: every
 * answer is 503 or a 307 to a live leader.
 * Redirect mode through the recipe's leader entrance (HAPROXY_LEADER_BIND, HAPROXY_LEADER_URL): the 307s
 * are rewritten to the entrance, so the client follows them through HAProxy too, and even the request
 * that follows a 307 received just before the SIGKILL gets an answer (a retry elsewhere or 503 +
 * Retry-After): no connection error at all, as in forward mode.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { ExecutionCluster, ManagedProcess } from '../helpers/execution-cluster';
import { freePorts } from '../../src/util/ports';
import { killOnExit, stopChild } from '../../src/util/process';
import { packageRoot } from '../../src/util/package-root';
import { socketErrorCode } from '../../src/http/client';

const test = anyTest as TestFn<ClusterContext<ExecutionCluster>>;
ensembleHooks(test);

const HAPROXY = '/usr/sbin/haproxy';
const CFG = path.join(packageRoot(), 'deploy', 'haproxy', 'haproxy.cfg');

/** redirect: 307s to the leader's own URL; entrance: 307s rewritten to the recipe's leader entrance. */
type Mode = 'redirect' | 'entrance' | 'forward';

/**
 * Answers a client got. `diedUnder`: connection errors of requests the client sent straight to the leader
 * following a 307 it received before the killed leader's exit was seen (the leader may still have lived
 * when the standby answered), cut off by the kill: no server can answer a request its process dies
 * holding. Every other connection error is in `errors`.
 */
interface Tally { ok: number; unavailable: number; bad: string[]; errors: string[]; diedUnder: string[]; redirectedToDying: string[] }

/** A connection error on one hop of a request: through HAProxy, or following a 307 received at `redirectedAt` (epoch-ms). */
class HopError extends Error {
  constructor(readonly to: string, override readonly cause: unknown, readonly redirectedAt: number | null, readonly redirectedBy: string | null = null) {
    super(`${to}: ${(cause as Error).message}`);
  }
}

async function drill(t: ExecutionContext<ClusterContext<ExecutionCluster>>, mode: Mode): Promise<void> {
  const cluster = await ExecutionCluster.start({
    connect: t.context.ensemble.connectString, replicas: 3, taskManagers: 1, sessionTimeoutMs: 4000,
    settings: [`rest.standby-mode=${mode === 'forward' ? 'forward' : 'redirect'}`],
  });
  t.context.clusters.push(cluster);
  const [lbPort, entrancePort] = await freePorts(2);
  const env = {
    ...process.env,
    HAPROXY_BIND: `127.0.0.1:${lbPort}`,
    HAPROXY_HEALTH_CHECK: '/health?standbyok=true',
    // Redirect mode: 307s go to the leader's advertised URL, the pattern that used to meet dead leaders.
    ...(mode === 'redirect' ? { HAPROXY_ABSOLUTE_REDIRECTS: '1' } : {}),
    ...(mode === 'entrance' ? { HAPROXY_LEADER_BIND: `127.0.0.1:${entrancePort}`, HAPROXY_LEADER_URL: `http://127.0.0.1:${entrancePort}` } : {}),
    ...Object.fromEntries(cluster.replicas.map((r, i) => [`REPLICA${i + 1}`, new URL(r.url).host])),
  };
  const check = spawnSync(HAPROXY, ['-c', '-f', CFG], { env, encoding: 'utf8' });
  t.is(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
  const haproxy = spawn(HAPROXY, ['-f', CFG, '-db'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(haproxy);
  let haproxyLog = '';
  const keep = (d: Buffer): void => { haproxyLog = (haproxyLog + d.toString()).slice(-20_000); };
  haproxy.stdout.on('data', keep);
  haproxy.stderr.on('data', keep);
  t.teardown(() => stopChild(haproxy, 'SIGTERM', 5000));
  const lbUrl = `http://127.0.0.1:${lbPort}`;
  await eventually('HAProxy listens', () => fetch(`${lbUrl}/haproxy-health`).then(() => true, () => false), 30_000, 50);

  /** The leader this drill SIGKILLs, once it did. */
  let killed: ManagedProcess | null = null;
  const deadLeaderUrl = (): string | null => (killed as ManagedProcess | null)?.url ?? null;
  const tally: Tally = { ok: 0, unavailable: 0, bad: [], errors: [], diedUnder: [], redirectedToDying: [] };
  /** Redirect mode: set once every surviving standby answered 503 after the kill (it noticed the dead leader). */
  let detected = mode === 'forward';
  const record = async (res: Response): Promise<void> => {
    await res.arrayBuffer();
    if (res.ok) tally.ok++;
    else if (res.status === 503 && res.headers.get('retry-after')) tally.unavailable++;
    else tally.bad.push(`${res.status} from ${res.headers.get('x-ha-replica-id')}`);
  };
  const acknowledged: string[] = [];
  /** Where the drill is, named in each connection error. */
  let phase = 'before the kill';
  /** Epoch-ms: just before the SIGKILL was sent, and once the killed leader's exit was seen. */
  let killSentAt = Infinity;
  let exitSeenAt = Infinity;
  /** One request as a client makes it: through HAProxy, following 307s (redirect mode) to the leader's own URL. */
  const request = async (init: RequestInit): Promise<Response> => {
    let res = await fetch(`${lbUrl}/jobs`, { ...init, redirect: 'manual' }).catch((err) => { throw new HopError('HAProxy', err, null); });
    for (let hops = 0; res.status === 307 && hops < 5; hops++) {
      const redirectedAt = Date.now(); // the 307's head has arrived
      const location = res.headers.get('location') ?? '';
      const by = res.headers.get('x-ha-replica-id');
      await res.arrayBuffer();
      res = await fetch(location, { ...init, redirect: 'manual' }).catch((err) => { throw new HopError(location, err, redirectedAt, by); });
    }
    return res;
  };
  let hammering = true;
  // GET /jobs at about 20 req/s, every fourth request a submission.
  const hammer = (async () => {
    for (let i = 0; hammering; i++) {
      const submit = i % 4 === 0;
      const jobId = crypto.randomBytes(16).toString('hex');
      const sentAt = Date.now();
      try {
        const res = await request(submit
          ? { method: 'POST', headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(15_000),
            body: JSON.stringify({ jobId, name: 'drill', vertices: [{ id: 'v', parallelism: 1, task: { type: 'sleep', ms: 10 } }] }) }
          : { signal: AbortSignal.timeout(15_000) });
        if (submit && (res.status === 202 || res.status === 200)) acknowledged.push(jobId);
        await record(res);
      } catch (err) {
        const hop = err instanceof HopError ? err : null;
        const code = socketErrorCode(hop?.cause ?? err) ?? `${(err as Error).message}: ${((err as Error).cause as Error | undefined)?.message}`;
        const what = `${phase}, ${submit ? 'POST' : 'GET'} to ${hop?.to ?? '?'}${hop?.redirectedBy ? ` (307 from ${hop.redirectedBy})` : ''}: ${code}, sent ${sentAt - killSentAt} ms after the kill`;
        // Sent to a leader that may still have lived (its 307 came before the exit was seen), cut off by the kill.
        if (hop?.redirectedAt != null && hop.redirectedAt < exitSeenAt && Date.now() >= killSentAt) tally.diedUnder.push(what);
        // A 307 to the killed leader for a request sent before its exit was seen (while the kernel tore
        // the process down): reported. One sent after the exit was seen is a failure (below, `errors`).
        else if (mode === 'redirect' && hop?.redirectedAt != null && deadLeaderUrl() !== null && hop.to.startsWith(deadLeaderUrl()!) && sentAt < exitSeenAt) {
          tally.redirectedToDying.push(what);
        } else {
          const toKilled = deadLeaderUrl() !== null && hop?.to.startsWith(deadLeaderUrl()!) === true;
          tally.errors.push(toKilled && sentAt >= exitSeenAt ? `${what} (sent ${sentAt - exitSeenAt} ms after the killed leader's exit was seen)` : what);
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();

  // Redirect mode: hammer every standby directly, without following, and check where 307s point.
  const redirectViolations: string[] = [];
  const redirectsToKilled = { beforeExitSeen: 0 };
  let probing = mode !== 'forward';
  const direct = (async () => {
    const seen503 = new Set<string>();
    while (probing) {
      for (const r of cluster.replicas) {
        if (r === killed) continue;
        const sentAt = Date.now();
        const res: Response | null = await fetch(`${r.url}/jobs`, { redirect: 'manual', signal: AbortSignal.timeout(5000) }).catch(() => null);
        if (!res) continue; // a replica this test stopped
        await res.arrayBuffer();
        if (res.status === 503) {
          if (killed) seen503.add(r.id);
          if (killed && seen503.size === cluster.replicas.length - 1) detected = true;
          continue;
        }
        if (res.status !== 307) continue;
        const target: ManagedProcess | undefined = cluster.replicas.find((x) => x.url === res.headers.get('location')?.replace(/\/jobs$/, ''));
        if (!target) redirectViolations.push(`${r.id}: 307 to an unknown ${res.headers.get('location')}`);
        else if (target === killed && sentAt >= exitSeenAt) redirectViolations.push(`${r.id}: 307 to the killed leader for a request sent ${sentAt - exitSeenAt} ms after its exit was seen`);
        else if (target === killed && seen503.has(r.id)) redirectViolations.push(`${r.id}: 307 to the killed leader after having answered 503`);
        else if (target === killed) redirectsToKilled.beforeExitSeen++;
      }
      await new Promise((resume) => setTimeout(resume, 20));
    }
  })();

  try {
    const first = await cluster.leader();
    await eventually('some requests answered and jobs acknowledged', () => tally.ok >= 5 && acknowledged.length >= 2, 60_000, 50);
    killed = first;
    phase = 'after the SIGKILL';
    killSentAt = Date.now();
    await first.signal('SIGKILL');
    exitSeenAt = Date.now();
    const second = await cluster.leader(60_000, [first]);
    const [okAtNewLeader, ackedAtNewLeader] = [tally.ok, acknowledged.length];
    await eventually('requests through HAProxy succeed after the SIGKILL failover',
      () => tally.ok > okAtNewLeader + 5 && acknowledged.length > ackedAtNewLeader, 60_000, 50);
    probing = false;
    await direct;

    phase = 'after the SIGTERM';
    await second.signal('SIGTERM');
    await cluster.leader(60_000, [first, second]);
    const [okBefore, ackedBefore] = [tally.ok, acknowledged.length];
    await eventually('requests through HAProxy succeed after the SIGTERM failover',
      () => tally.ok > okBefore + 5 && acknowledged.length > ackedBefore, 60_000, 50);
    hammering = false;
    await hammer;

    t.log({ mode, ...tally, acknowledged: acknowledged.length, redirectsToKilled });
    t.deepEqual(tally.errors, [], 'no connection errors through HAProxy or to a live leader');
    if (mode !== 'redirect') t.deepEqual([...tally.diedUnder, ...tally.redirectedToDying], [], `${mode} mode: clients never talk to the leader themselves`);
    if (mode !== 'forward') t.true(detected, 'every standby answered 503 after the kill');
    t.deepEqual(tally.bad, [], 'every failed answer is 503 + Retry-After');
    t.true(tally.unavailable + tally.ok > 0);
    t.deepEqual(redirectViolations, []);
    t.true(acknowledged.length > 0, 'submissions were acknowledged during the drill');
    const listed = await eventually('the job list', async () => {
      const a = await cluster.rest('GET', '/jobs');
      return a.status === 200 ? new Set((a.body.jobs as Array<{ id: string }>).map((j) => j.id)) : null;
    }, 30_000, 200);
    t.deepEqual(acknowledged.filter((id) => !listed.has(id)), [], 'no acknowledged job lost');
  } catch (err) {
    t.log(`kill sent ${new Date(killSentAt).toISOString()}, exit seen ${new Date(exitSeenAt).toISOString()}`);
    for (const r of cluster.replicas) {
      t.log(`${r.id} leader events:\n${r.events().filter((e) => /^leader\.|^leadership\./.test(String(e.event))).map((e) => JSON.stringify(e)).join('\n')}`);
    }
    t.log(cluster.logs());
    t.log(`---- haproxy ----\n${haproxyLog}`);
    throw err;
  } finally {
    hammering = false;
    probing = false;
    await Promise.all([hammer, direct]);
  }
}

test.serial('standbyok pattern, rest.standby-mode redirect: SIGKILL and SIGTERM of the leader without lost jobs or connection errors through HAProxy; no 307 to the leader once its process exited', (t) => drill(t, 'redirect'));
test.serial('standbyok pattern, rest.standby-mode redirect through the leader entrance: SIGKILL and SIGTERM of the leader without any connection error or lost job', (t) => drill(t, 'entrance'));
test.serial('standbyok pattern, rest.standby-mode forward: SIGKILL and SIGTERM of the leader without connection errors or lost jobs', (t) => drill(t, 'forward'));
