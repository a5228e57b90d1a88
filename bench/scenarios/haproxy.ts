/**
 * HAProxy failover: the shipped recipe (deploy/haproxy/haproxy.cfg, unchanged, started through
 * src/chaos/haproxy.ts as the `haproxy` drill starts it) in front of 3 replicas, a client sending
 * ~50 requests/s through it (GET /jobs and POST /jobs with client-chosen job ids, following 307s), a
 * leader SIGKILL, a settled cluster again (the killed replica restarted, hot standbys), then a SIGTERM.
 * Variants: the leader-only health check (the recipe's default, replicas in rest.standby-mode
 * redirect), and the "any healthy replica" check `/health?standbyok=true` with the replicas in
 * rest.standby-mode redirect — 307s rewritten to the recipe's leader entrance (HAPROXY_LEADER_BIND), and
 * kept pointing at the leader's own URL (HAPROXY_ABSOLUTE_REDIRECTS=1) — and forward.
 *
 * Per variant and phase (steady, after the SIGKILL, the restart, after the SIGTERM; an answer counts in
 * the phase in which it arrived): requests, 2xx, 503 + Retry-After, any other status, connection errors
 * split by hop (through HAProxy; following a 307 to the stopped leader, for requests sent before and
 * after its exit was seen; following a 307 to a live replica), and the error window: first to last failed request (non-2xx final answer or connection
 * error) after the signal, by when the client saw each. At the end every acknowledged job (202/200) is
 * looked up on the leader: a 404 is a lost job.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findHaproxy, HaproxyBalancer } from '../../src/chaos/haproxy';
import { BenchCluster, BenchProcess } from '../lib/processes';
import { HttpClient } from '../lib/http';
import { JobIds, trivialGraph } from '../lib/jobs';
import { mapLimit, sleep, until } from '../lib/wait';
import { BenchContext, BlockedError, Mode, Scenario, ScenarioOutput, Target, target } from '../lib/types';

interface Variant {
  /** Target and trial key (letters and dots). */
  key: string;
  label: string;
  /** HAPROXY_HEALTH_CHECK; undefined: the recipe's default, leader-only `/health`. */
  healthCheck?: string;
  standbyMode: 'redirect' | 'forward';
  absoluteRedirects: boolean;
  /** The recipe's leader entrance: 307s rewritten to it. */
  leaderEntrance?: boolean;
  /**
   * Clients follow 307s to the leader's own URL: a request that follows one received just before a
   * SIGKILL can meet the dying process (counted apart, not held to the zero-error target).
   */
  direct?: boolean;
}

const VARIANTS: Variant[] = [
  { key: 'leaderonly', label: 'leader-only check (/health), standby-mode redirect', standbyMode: 'redirect', absoluteRedirects: false },
  { key: 'standbyok.redirect', label: '/health?standbyok=true, standby-mode redirect, 307s to the leader entrance', healthCheck: '/health?standbyok=true', standbyMode: 'redirect', absoluteRedirects: false, leaderEntrance: true },
  { key: 'standbyok.redirect.direct', label: '/health?standbyok=true, standby-mode redirect, 307s to the leader\'s own URL', healthCheck: '/health?standbyok=true', standbyMode: 'redirect', absoluteRedirects: true, direct: true },
  { key: 'standbyok.forward', label: '/health?standbyok=true, standby-mode forward', healthCheck: '/health?standbyok=true', standbyMode: 'forward', absoluteRedirects: false },
];

interface Size {
  replicas: number;
  sessionTimeoutMs: number;
  /** Requests started per second (open loop; skipped while `maxInFlight` are outstanding). */
  ratePerS: number;
  maxInFlight: number;
  /** Every n-th request is a submission, the others GET /jobs. */
  submitEvery: number;
  /** Traffic before the first signal (ms). */
  steadyMs: number;
  /** Traffic after the new leader first served a request through HAProxy, per signal (ms). */
  afterMs: number;
}

const SIZES: Record<Mode, Size> = {
  full: { replicas: 3, sessionTimeoutMs: 4000, ratePerS: 50, maxInFlight: 32, submitEvery: 4, steadyMs: 5000, afterMs: 5000 },
  smoke: { replicas: 3, sessionTimeoutMs: 1500, ratePerS: 50, maxInFlight: 32, submitEvery: 4, steadyMs: 500, afterMs: 500 },
};

/** Bounds of the waits for the cluster (a new leader, a settled cluster, HAProxy settling), ms. */
const WAIT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 15_000;
const MAX_REDIRECTS = 5;
/** SIGTERM: first to last failed request at most this long (ms). */
const SIGTERM_WINDOW_LIMIT_MS = 500;

type PhaseName = 'steady' | 'SIGKILL' | 'restart' | 'SIGTERM';

/** What the client saw in one phase. */
interface Phase {
  phase: PhaseName;
  /** Epoch-ms the phase began (the signal, for SIGKILL and SIGTERM). */
  startedAt: number;
  requests: number;
  ok: number;
  unavailable: number;
  /** 503 + Retry-After answers by who gave them: the replica's X-HA-Replica-Id, or `haproxy` (no server UP). */
  unavailableBy: Record<string, number>;
  /** Final answers other than 2xx and 503 + Retry-After, by status. */
  other: Record<string, number>;
  /** Connection errors on the hop to HAProxy. */
  errorsThroughHaproxy: number;
  /** Connection errors following a 307 to the stopped leader, of requests sent before its exit was seen (it was being torn down). */
  errorsTo307DyingLeader: number;
  /** Connection errors following a 307 to the stopped leader, of requests sent once its exit was seen. */
  errorsTo307DeadLeader: number;
  /** Connection errors following a 307 to a running replica. */
  errorsTo307Live: number;
  /** Up to 5 distinct error descriptions, for the report. */
  errorSamples: string[];
  /** Epoch-ms each failed request (non-2xx final answer or connection error) was seen. */
  failedAt: number[];
  /** Epoch-ms of each 2xx answer. */
  okAt: number[];
  /** Requests not sent because `maxInFlight` were outstanding. */
  skipped: number;
  /** The replica the phase's signal stopped (its replica id), for SIGKILL and SIGTERM. */
  stopped: string | null;
  /** Epoch-ms another replica answered /health as the ready leader (polled every 20 ms), for SIGKILL and SIGTERM. */
  newLeaderAt: number | null;
}

function newPhase(phase: PhaseName): Phase {
  return { phase, startedAt: Date.now(), requests: 0, ok: 0, unavailable: 0, unavailableBy: {}, other: {}, errorsThroughHaproxy: 0, errorsTo307DyingLeader: 0, errorsTo307DeadLeader: 0, errorsTo307Live: 0, errorSamples: [], failedAt: [], okAt: [], skipped: 0, stopped: null, newLeaderAt: null };
}

/** A connection error on one hop: through HAProxy (`to` null) or following a 307 (received at `redirectedAt`, epoch-ms) to `to`. */
class HopError extends Error {
  constructor(readonly to: string | null, readonly code: string, readonly redirectedAt: number | null) {
    super(`${to ?? 'HAProxy'}: ${code}`);
  }
}

/**
 * The client: requests through HAProxy at a fixed rate, following 307s the way a client of the
 * redirect mode does (to the Location, absolute or relative to the balancer). Acknowledged job ids are kept.
 */
class LoadClient {
  readonly phases: Phase[] = [newPhase('steady')];
  readonly acknowledged: string[] = [];
  /** Epoch-ms of each acknowledgement. */
  private readonly ackedAt: number[] = [];
  /** Origins (`http://127.0.0.1:port`) of replicas stopped and not yet restarted → epoch-ms their exit was seen (Infinity until then). */
  readonly stopped = new Map<string, number>();
  private readonly http: HttpClient;
  private readonly ids = new JobIds();
  private running = true;
  private inFlight = 0;
  private loop: Promise<void> | null = null;
  private readonly outstanding = new Set<Promise<void>>();

  /** `lbUrl`: the balancer's client entrance; `entranceUrl`: its leader entrance, if any (a 307 there is a hop through HAProxy). */
  constructor(private readonly lbUrl: string, private readonly size: Size, private readonly entranceUrl: string | null = null) {
    this.http = new HttpClient(size.maxInFlight, REQUEST_TIMEOUT_MS);
  }

  get current(): Phase { return this.phases[this.phases.length - 1]; }

  /** Starts a phase now: answers from here on count in it. */
  begin(phase: PhaseName): Phase {
    const p = newPhase(phase);
    this.phases.push(p);
    return p;
  }

  start(): void {
    const interval = 1000 / this.size.ratePerS;
    this.loop = (async () => {
      const t0 = Date.now();
      for (let i = 0; this.running; i++) {
        const wait = t0 + i * interval - Date.now();
        if (wait > 0) await sleep(wait);
        if (!this.running) break;
        if (this.inFlight >= this.size.maxInFlight) { this.current.skipped++; continue; }
        const p = this.one(i).finally(() => { this.outstanding.delete(p); });
        this.outstanding.add(p);
      }
    })();
  }

  /** Stops sending and waits for every outstanding request (each bounded by its timeout). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await Promise.all([...this.outstanding]);
    this.http.close();
  }

  /** 2xx answers seen since `since` (epoch-ms), and acknowledgements among them. */
  servedSince(since: number): { ok: number; acknowledged: number } {
    let ok = 0;
    for (const p of this.phases) ok += p.okAt.filter((t) => t >= since).length;
    return { ok, acknowledged: this.ackedAt.filter((t) => t >= since).length };
  }

  private async one(i: number): Promise<void> {
    this.inFlight++;
    const submit = i % this.size.submitEvery === 0;
    const jobId = submit ? this.ids.next() : null;
    const body = jobId ? JSON.stringify(trivialGraph(jobId, i)) : undefined;
    const method = submit ? 'POST' : 'GET';
    const sentAt = Date.now();
    try {
      const a = await this.follow(method, `${this.lbUrl}/jobs`, body);
      const p = this.current;
      p.requests++;
      const now = Date.now();
      if (a.status >= 200 && a.status < 300) {
        p.ok++;
        p.okAt.push(now);
        if (jobId && (a.status === 202 || a.status === 200)) { this.acknowledged.push(jobId); this.ackedAt.push(now); }
      } else {
        p.failedAt.push(now);
        if (a.status === 503 && a.headers['retry-after']) {
          p.unavailable++;
          const by = String(a.headers['x-ha-replica-id'] ?? 'haproxy');
          p.unavailableBy[by] = (p.unavailableBy[by] ?? 0) + 1;
        } else p.other[a.status] = (p.other[a.status] ?? 0) + 1;
      }
    } catch (err) {
      const p = this.current;
      p.requests++;
      p.failedAt.push(Date.now());
      const hop = err instanceof HopError ? err : new HopError(null, (err as Error).message, null);
      if (hop.to === null) p.errorsThroughHaproxy++;
      else if (this.stopped.has(new URL(hop.to).origin)) {
        if (sentAt >= this.stopped.get(new URL(hop.to).origin)!) p.errorsTo307DeadLeader++;
        else p.errorsTo307DyingLeader++;
      }
      else p.errorsTo307Live++;
      const when = ` (sent ${sentAt - p.startedAt} ms after the phase began${hop.redirectedAt === null ? '' : `, 307 received ${hop.redirectedAt - p.startedAt} ms after`})`;
      const sample = `${method} ${hop.message}${when}`;
      if (p.errorSamples.length < 5 && !p.errorSamples.includes(sample)) p.errorSamples.push(sample);
    } finally {
      this.inFlight--;
    }
  }

  /** One request and the 307s it meets; a connection error is thrown as a HopError naming the hop. */
  private async follow(method: string, url: string, body: string | undefined): Promise<import('../lib/http').Answer> {
    let target = url;
    let a = await this.hop(method, target, body, null, null);
    for (let hops = 0; a.status === 307 && hops < MAX_REDIRECTS; hops++) {
      const redirectedAt = Date.now();
      target = new URL(String(a.headers.location ?? ''), target).toString();
      const origin = new URL(target).origin;
      const throughBalancer = origin === new URL(this.lbUrl).origin || (this.entranceUrl !== null && origin === new URL(this.entranceUrl).origin);
      a = await this.hop(method, target, body, throughBalancer ? null : target, redirectedAt);
    }
    return a;
  }

  private async hop(method: string, url: string, body: string | undefined, to: string | null, redirectedAt: number | null): Promise<import('../lib/http').Answer> {
    try {
      return await this.http.request(method, url, body);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean; localPort?: number };
      const how = `${e.reusedSocket ? ' on a reused keep-alive connection' : ''}${e.localPort ? ` from port ${e.localPort}` : ''}`;
      throw new HopError(to, `${e.code ?? e.message}${how} at ${new Date().toISOString().slice(11, 23)}`, to === null ? null : redirectedAt);
    }
  }
}

/** The counts of a Phase, as reported. */
type PhaseCounts = Pick<Phase, 'phase' | 'requests' | 'ok' | 'unavailable' | 'unavailableBy' | 'other' | 'errorsThroughHaproxy' | 'errorsTo307DyingLeader'
  | 'errorsTo307DeadLeader' | 'errorsTo307Live' | 'errorSamples' | 'stopped' | 'skipped'>;

interface PhaseFigures extends PhaseCounts, Record<string, unknown> {
  variant: string;
  otherStatuses: number;
  /** First to last failed request seen in the phase (ms); 0 without failures. */
  errorWindowMs: number;
  /** Signal → the last failed request seen (ms), null without failures or for phases without a signal. */
  signalToLastFailureMs: number | null;
  /** Signal → another replica answered /health as the ready leader (ms), for SIGKILL and SIGTERM. */
  signalToNewLeaderMs: number | null;
}

interface VariantResult {
  phases: PhaseFigures[];
  acknowledged: number;
  lost: number;
  lostSample: string[];
  /** How long the wait for a settled cluster after restarting the killed replica took (ms). */
  settleMs: number;
}

export const haproxy: Scenario = {
  name: 'haproxy',
  title: 'Failover through HAProxy',
  budgetMs: (mode) => (mode === 'full' ? 800_000 : 200_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const binary = findHaproxy();
    if (!binary) throw new BlockedError('no haproxy program on PATH nor in /usr/sbin (Debian: apt-get install haproxy)');
    const size = SIZES[ctx.mode];
    const trials: PhaseFigures[] = [];
    const variants: Record<string, { acknowledged: number; lost: number; lostSample: string[]; settleMs: number }> = {};
    let version = '';
    for (const v of VARIANTS) {
      const r = await runVariant(ctx, binary, v, size, (s) => { version = s; });
      trials.push(...r.phases);
      variants[v.key] = { acknowledged: r.acknowledged, lost: r.lost, lostSample: r.lostSample, settleMs: r.settleMs };
      const term = r.phases.find((p) => p.phase === 'SIGTERM');
      ctx.log(`haproxy: ${v.key}: ${r.phases.map((p) => `${p.phase} ${p.requests} req, ${p.ok} ok, ${p.unavailable} × 503, ${p.otherStatuses} other, ` +
        `${p.errorsThroughHaproxy}+${p.errorsTo307DyingLeader}+${p.errorsTo307DeadLeader}+${p.errorsTo307Live} conn errors`).join('; ')}; SIGTERM window ${term?.errorWindowMs} ms; ` +
        `${r.lost} of ${r.acknowledged} acknowledged jobs lost`);
    }
    const signalled = trials.filter((p) => p.phase === 'SIGKILL' || p.phase === 'SIGTERM');
    const sum = (f: (p: PhaseFigures) => number, of = trials): number => of.reduce((n, p) => n + f(p), 0);
    const termWindows = trials.filter((p) => p.phase === 'SIGTERM').map((p) => p.errorWindowMs);
    const names = VARIANTS.map((v) => v.key).join(', ');
    const direct = new Set(VARIANTS.filter((v) => v.direct).map((v) => v.key));
    const held = trials.filter((p) => !direct.has(p.variant));
    const targets: Target[] = [
      target('haproxy.connection.errors', `connection errors through HAProxy, following a 307 to a live replica, or to the stopped leader once its exit was seen; all phases of ${VARIANTS.length} variants (${names})`,
        sum((p) => p.errorsThroughHaproxy + p.errorsTo307Live + p.errorsTo307DeadLeader), '==', 0, 'errors'),
      target('haproxy.connection.errors.dying', 'connection errors following a 307 to the stopped leader, of requests sent before its exit was seen (the process was being torn down), all variants but the direct-redirect one (reported in the summary)',
        sum((p) => p.errorsTo307DyingLeader, held), '==', 0, 'errors'),
      target('haproxy.other.statuses', 'answers other than 2xx and 503 + Retry-After, all phases and variants', sum((p) => p.otherStatuses), '==', 0, 'answers'),
      target('haproxy.lost', 'acknowledged jobs lost, all variants', Object.values(variants).reduce((n, v) => n + v.lost, 0), '==', 0, 'jobs'),
      target('haproxy.sigterm.window', `SIGTERM: error window (first to last failed request) ≤ ${SIGTERM_WINDOW_LIMIT_MS} ms, worst variant`,
        termWindows.length ? Math.max(...termWindows) : null, '<=', SIGTERM_WINDOW_LIMIT_MS, 'ms'),
    ];
    return {
      settings: {
        replicas: size.replicas, sessionTimeoutMs: size.sessionTimeoutMs, ratePerS: size.ratePerS, maxInFlight: size.maxInFlight,
        submitEvery: size.submitEvery, steadyMs: size.steadyMs, afterMs: size.afterMs, requestTimeoutMs: REQUEST_TIMEOUT_MS,
        recipe: 'deploy/haproxy/haproxy.cfg (unchanged; environment variables only)', haproxy: version,
        variants: VARIANTS.map((v) => ({ key: v.key, label: v.label, healthCheck: v.healthCheck ?? '/health', standbyMode: v.standbyMode, absoluteRedirects: v.absoluteRedirects, leaderEntrance: v.leaderEntrance ?? false })),
      },
      summary: {
        requests: sum((p) => p.requests),
        signalled: { requests: sum((p) => p.requests, signalled), unavailable: sum((p) => p.unavailable, signalled) },
        // Inherent to 307s to the leader's own URL: a 307 answered while the leader lived, followed as it died.
        directRedirectDyingErrors: sum((p) => p.errorsTo307DyingLeader, trials.filter((p) => direct.has(p.variant))),
        variants,
      },
      trials,
      targets,
      notes: [
        'standbyok.redirect.direct (307s to the leader\'s own URL) is reported, not held to the dying-leader target: a standby can only answer a 307 to a leader it sees alive, and a SIGKILL that lands after that 307 and before the client\'s next request leaves the client talking to the dying process. The leader entrance (standbyok.redirect) sends that request through HAProxy, which retries it or answers 503 + Retry-After.',
      ],
    };
  },
};

async function runVariant(ctx: BenchContext, binary: string, v: Variant, size: Size, onVersion: (s: string) => void): Promise<VariantResult> {
  const cluster = await BenchCluster.create({
    connect: ctx.connect, logDir: ctx.logDir, replicas: size.replicas, sessionTimeoutMs: size.sessionTimeoutMs,
    settings: [`rest.standby-mode=${v.standbyMode}`],
  });
  ctx.defer(() => cluster.stop());
  const dir = path.join(ctx.logDir, `haproxy-${v.key.replace(/\./g, '-')}`);
  fs.mkdirSync(dir, { recursive: true });
  let balancer: HaproxyBalancer | null = null;
  let client: LoadClient | null = null;
  try {
    await cluster.start();
    await cluster.settle({ timeoutMs: WAIT_MS });
    const lb = await HaproxyBalancer.start({
      binary, dir, replicas: cluster.replicas.map((r) => new URL(r.url).host),
      healthCheck: v.healthCheck, absoluteRedirects: v.absoluteRedirects, leaderEntrance: v.leaderEntrance,
    });
    balancer = lb;
    onVersion(lb.version);
    ctx.defer(() => lb.stop());
    // Servers start UP until their checks fail: with the leader-only check, wait until only the leader is.
    if (!v.healthCheck) await until('HAProxy with exactly one server UP (GET /haproxy-health: 200)', async () => (await cluster.http.tryRequest('GET', `${lb.url}/haproxy-health`)).status === 200 || null, WAIT_MS, 100);

    const load = new LoadClient(lb.url, size, lb.leaderUrl);
    client = load;
    load.start();
    await until('answers and acknowledged jobs before the first signal', () => {
      const s = load.servedSince(0);
      return (s.ok >= 5 && s.acknowledged >= 2) || null;
    }, WAIT_MS, 50);
    await sleep(size.steadyMs);

    const first = await cluster.leader(WAIT_MS);
    const kill = await signalLeader(cluster, load, first, 'SIGKILL', size);
    load.begin('restart');
    first.start();
    load.stopped.delete(new URL(first.url).origin);
    await cluster.standbyReady(first, WAIT_MS);
    const settleMs = await cluster.settle({ timeoutMs: WAIT_MS });
    const second = await cluster.leader(WAIT_MS);
    const term = await signalLeader(cluster, load, second, 'SIGTERM', size);
    await load.stop();
    client = null;

    const leader = await cluster.leader(WAIT_MS);
    const lost = await lostJobs(cluster, leader, load.acknowledged);
    return {
      phases: load.phases.map((p) => figures(v.key, p, p === kill || p === term)),
      acknowledged: load.acknowledged.length, lost: lost.length, lostSample: lost.slice(0, 5), settleMs,
    };
  } catch (err) {
    throw new Error(`${v.key}: ${(err as Error).message}\n${cluster.logs(8)}${balancer ? `\n---- haproxy ----\n${balancer.logTail(2000)}` : ''}`);
  } finally {
    if (client) await client.stop();
    if (balancer) await balancer.stop();
    await cluster.stop();
  }
}

/**
 * Sends `signal` to `leader` and keeps the traffic going until another replica is the ready leader and
 * clients were served through HAProxy for `afterMs` (at least 5 answers and one acknowledged submission
 * after it became ready). Returns the phase.
 */
async function signalLeader(cluster: BenchCluster, load: LoadClient, leader: BenchProcess, signal: 'SIGKILL' | 'SIGTERM', size: Size): Promise<Phase> {
  const phase = load.begin(signal);
  phase.stopped = leader.id.replace(/^.*-/, '');
  const origin = new URL(leader.url).origin;
  load.stopped.set(origin, Infinity);
  leader.kill(signal);
  const exited = leader.waitForExit(20_000).then(() => { load.stopped.set(origin, Date.now()); });
  // A SIGTERM'd leader hands over before it exits: look for the successor meanwhile.
  await until(`a new ready leader after the ${signal}`, async () => {
    for (const r of cluster.replicas) {
      if (r === leader || !r.running) continue;
      const h = await cluster.health(r);
      if (h.status === 200 && h.role === 'leader') return true;
    }
    return null;
  }, WAIT_MS, 20);
  phase.newLeaderAt = Date.now();
  await exited;
  await until(`answers through HAProxy after the ${signal}`, () => {
    const s = load.servedSince(phase.newLeaderAt!);
    return (s.ok >= 5 && s.acknowledged >= 1) || null;
  }, WAIT_MS, 20);
  await sleep(size.afterMs);
  return phase;
}

function figures(variant: string, p: Phase, signalled: boolean): PhaseFigures {
  const signalAt = signalled ? p.startedAt : null;
  const failed = p.failedAt;
  const first = failed.length ? Math.min(...failed) : null;
  const last = failed.length ? Math.max(...failed) : null;
  return {
    variant, phase: p.phase, requests: p.requests, ok: p.ok, unavailable: p.unavailable, unavailableBy: p.unavailableBy,
    otherStatuses: Object.values(p.other).reduce((n, x) => n + x, 0), other: p.other,
    errorsThroughHaproxy: p.errorsThroughHaproxy, errorsTo307DyingLeader: p.errorsTo307DyingLeader, errorsTo307DeadLeader: p.errorsTo307DeadLeader, errorsTo307Live: p.errorsTo307Live,
    errorSamples: p.errorSamples,
    errorWindowMs: first !== null && last !== null ? last - first : 0,
    signalToLastFailureMs: signalAt !== null && last !== null ? last - signalAt : null,
    signalToNewLeaderMs: signalAt !== null && p.newLeaderAt !== null ? p.newLeaderAt - signalAt : null,
    stopped: p.stopped,
    skipped: p.skipped,
  };
}

/** The acknowledged job ids the leader does not know (404 on GET /jobs/:id), 8 lookups in flight. */
async function lostJobs(cluster: BenchCluster, leader: BenchProcess, ids: string[]): Promise<string[]> {
  const lost: string[] = [];
  const http = new HttpClient(8);
  try {
    await mapLimit(ids, 8, async (id) => {
      const status = await until(`GET /jobs/${id} on the leader answers 200 or 404`, async () => {
        const a = await http.tryRequest('GET', `${leader.url}/jobs/${id}`);
        return a.status === 200 || a.status === 404 ? a.status : null;
      }, WAIT_MS, 100);
      if (status === 404) lost.push(id);
    });
  } finally {
    http.close();
  }
  return lost;
}
