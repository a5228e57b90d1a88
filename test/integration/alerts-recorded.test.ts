/**
 * The shipped alert rules (deploy/prometheus/alerts.yml) against what a real cluster exports: every
 * replica's /metrics is recorded through a quiet period, four graceful leader failovers in a row
 * (SIGTERM, the old leader restarted as a standby) and a SIGKILLed leader whose ZooKeeper session
 * outlives the no-ready-leader alert's `for:` (50 s: the server expires a dead client's session
 * between two thirds of the timeout and all of it after its last ping). The recording becomes the
 * `input_series` of a promtool rule test (1 s steps, `job`/`instance` labels and staleness markers
 * as a real Prometheus stores them) asserting that the no-ready-leader and flapping alerts fire where they must and stay
 * silent before; `promtool test rules` must pass.
 */
import anyTest, { ExecutionContext, TestFn } from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify, parse } from 'yaml';
import { packageRoot } from '../../src/util/package-root';
import { Cluster, ReplicaProcess } from '../helpers/cluster';
import { ClusterContext, ensembleHooks, eventually } from '../helpers/ensemble';
import { inputSeries, parsePromText, RecordedScrape, resampleScrapes, sampleValue } from '../helpers/prom-text';

const test = anyTest as TestFn<ClusterContext<Cluster>>;
// Sessions longer than the test default maximum, so a SIGKILLed leader leaves no ready leader for longer than `for:`.
ensembleHooks(test, { maxSessionTimeoutMs: 60_000 });

const SESSION_TIMEOUT_MS = 50_000;
const STEP_MS = 1000;
const JOB = 'ha-dispatcher';
const RULES = path.join(packageRoot(), 'deploy', 'prometheus', 'alerts.yml');

interface AlertRule { alert: string; expr: string; for?: string; labels: Record<string, string>; annotations: Record<string, string> }
const rules: AlertRule[] = (parse(fs.readFileSync(RULES, 'utf8')).groups as Array<{ rules: AlertRule[] }>).flatMap((g) => g.rules);
const rule = (name: string): AlertRule => rules.find((r) => r.alert === name) ?? (() => { throw new Error(`no rule ${name} in alerts.yml`); })();
/** Metric names the rules read: only these are written to the rule test. */
const ruleMetrics = new Set(rules.flatMap((r) => [...r.expr.matchAll(/\bha_[a-z_]+/g)].map((m) => m[0])));

/** Scrapes every replica's /metrics about every 250 ms until stopped; failed scrapes are recorded as such. */
class ScrapeRecorder {
  readonly scrapes: RecordedScrape[] = [];
  readonly startedAt = Date.now();
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly replicas: ReplicaProcess[]) {
    this.loop = (async () => {
      while (this.running) {
        const round = Date.now();
        await Promise.all(this.replicas.map((r) => this.scrape(r)));
        await new Promise((res) => setTimeout(res, Math.max(0, 250 - (Date.now() - round))));
      }
    })();
  }

  private async scrape(r: ReplicaProcess): Promise<void> {
    const sent = Date.now();
    const text = await fetch(`${r.url}/metrics`, { signal: AbortSignal.timeout(1000) })
      .then((res) => (res.status === 200 ? res.text() : null), () => null);
    this.scrapes.push({ instance: new URL(r.url).host, at: (sent + Date.now()) / 2, samples: text === null ? null : parsePromText(text) });
  }

  /** Answered scrapes of `r` taken at or after `since` (epoch-ms). */
  answered(r: ReplicaProcess, since: number): RecordedScrape[] {
    const instance = new URL(r.url).host;
    return this.scrapes.filter((s) => s.instance === instance && s.at >= since && s.samples !== null);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

/** Waits until the recorder holds answers of `r` showing `ready` for at least 1.5 s, so every 1 s resampling keeps one. */
async function recorded(rec: ScrapeRecorder, r: ReplicaProcess, since: number, ready: (s: RecordedScrape) => boolean, what: string): Promise<void> {
  await eventually(what, () => {
    const seen = rec.answered(r, since).filter(ready);
    return seen.length >= 2 && seen[seen.length - 1].at - seen[0].at >= 1500;
  }, 30_000, 50);
}

const isLeaderIn = (s: RecordedScrape): boolean => sampleValue(s.samples ?? [], 'ha_dispatcher_leader') === 1;

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is not installed (.ci/setup installs Debian's prometheus): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

async function start(t: ExecutionContext<ClusterContext<Cluster>>): Promise<Cluster> {
  const c = await Cluster.start({ connect: t.context.ensemble.connectString, replicas: 3, sessionTimeoutMs: SESSION_TIMEOUT_MS });
  t.context.clusters.push(c);
  return c;
}

test.serial('recorded failovers: promtool finds the flapping and no-ready-leader alerts where the recording puts them', async (t) => {
  t.timeout(8 * 60_000);
  const c = await start(t);
  let leader = await c.leader(60_000);
  const rec = new ScrapeRecorder(c.replicas);

  // Quiet period: a leader and two standbys, at least 15 s recorded.
  await eventually('15 s of quiet recorded', () => Date.now() - rec.startedAt >= 15_000 && rec.answered(leader, 0).some(isLeaderIn), 60_000, 100);
  const events: Array<{ what: string; at: number }> = [];

  // Four graceful failovers in a row; each old leader comes back as a standby before the next.
  for (let i = 0; i < 4; i++) {
    events.push({ what: `SIGTERM ${leader.id}`, at: Date.now() });
    await leader.signal('SIGTERM');
    const next = await c.leader(60_000, [leader]);
    const readyAt = Date.now();
    leader.start();
    const restarted = leader;
    await eventually(`${restarted.id} serves again`, async () => (await restarted.health()) !== null, 60_000, 100);
    await recorded(rec, next, readyAt, isLeaderIn, `the recorder saw ${next.id} lead`);
    leader = next;
  }

  // No ready leader: the SIGKILLed leader's session lives on for SESSION_TIMEOUT_MS, the standbys answer 0.
  const killedAt = Date.now();
  events.push({ what: `SIGKILL ${leader.id}`, at: killedAt });
  await leader.signal('SIGKILL');
  const last = await c.leader(SESSION_TIMEOUT_MS + 60_000, [leader]);
  await recorded(rec, last, Date.now(), isLeaderIn, `the recorder saw ${last.id} lead after the outage`);
  await rec.stop();

  // The recording on 1 s steps, and where its phases lie (step k is promtool's time k s).
  const t0 = rec.startedAt;
  // The grid ends at the last scrape (not at "now", up to a step later): each step takes the nearest
  // scrape, so ending at "now" could leave the new leader's last 1.5 s of samples after the final step
  // and the recording without the outage's end.
  const lastScrapeAt = Math.max(...rec.scrapes.map((s) => s.at));
  const steps = Math.floor((lastScrapeAt - t0) / STEP_MS) + 1;
  const grid = resampleScrapes(rec.scrapes, t0, STEP_MS, steps);
  t.is(grid.size, 3, 'every replica was recorded');
  const leaders = Array.from({ length: steps }, (_, k) =>
    [...grid.values()].reduce((n, row) => n + (sampleValue(row[k] ?? [], 'ha_dispatcher_leader') ?? 0), 0));
  const stepOf = (at: number): number => Math.floor((at - t0) / STEP_MS);
  const quietEnd = stepOf(events[0].at) - 1;
  const killStep = stepOf(killedAt);
  const outageStart = leaders.findIndex((n, k) => k >= killStep && n === 0);
  const outageEnd = leaders.findIndex((n, k) => k > outageStart && n >= 1);
  t.log({ steps, quietEnd, killStep, outageStart, outageEnd, events: events.map((e) => `${stepOf(e.at)}s ${e.what}`) });
  t.true(quietEnd >= 10 && leaders.slice(0, quietEnd + 1).every((n) => n === 1), `one leader through the quiet period: ${leaders.join('')}`);
  t.true(outageStart > 0 && outageEnd > outageStart, `the recording shows the outage and its end: ${leaders.join('')}`);

  const noLeader = rule('HaDispatcherNoReadyLeader');
  const flapping = rule('HaDispatcherLeadershipFlapping');
  const forSeconds = Number(/^(\d+)s$/.exec(noLeader.for ?? '')?.[1]);
  t.true(forSeconds > 0, `HaDispatcherNoReadyLeader has a for: in seconds (${noLeader.for})`);
  const silent = (at: number, alertname: string) => ({ eval_time: `${at}s`, alertname, exp_alerts: [] });
  const alert_rule_test: unknown[] = [
    // Quiet period: nothing about leadership fires.
    ...['HaDispatcherNoReadyLeader', 'HaDispatcherLeadershipFlapping', 'HaDispatcherMultipleLeaders', 'HaDispatcherReplicaWithoutLeader']
      .map((a) => silent(quietEnd, a)),
    // Normal failovers stay below `for:`; the last one before the kill is where flapping is firing.
    ...Array.from({ length: Math.floor((killStep - quietEnd) / 5) }, (_, i) => silent(quietEnd + 5 * (i + 1), 'HaDispatcherNoReadyLeader')),
    silent(killStep - 1, 'HaDispatcherNoReadyLeader'),
    silent(steps - 1, 'HaDispatcherMultipleLeaders'),
    silent(outageEnd, 'HaDispatcherNoReadyLeader'),
  ];
  const promql_expr_test: unknown[] = [
    // The no-ready-leader expression holds from the first step without a leader to the last.
    { expr: `count(${noLeader.expr})`, eval_time: `${outageStart}s`, exp_samples: [{ labels: '{}', value: 1 }] },
    { expr: `count(${noLeader.expr})`, eval_time: `${outageEnd - 1}s`, exp_samples: [{ labels: '{}', value: 1 }] },
    { expr: `count(${noLeader.expr})`, eval_time: `${killStep - 1}s`, exp_samples: [] },
    // Flapping: its summary renders the extrapolated increase, so firing is read from ALERTS.
    { expr: `ALERTS{alertname="${flapping.alert}"}`, eval_time: `${quietEnd}s`, exp_samples: [] },
    { expr: `ALERTS{alertname="${flapping.alert}",alertstate="firing"}`, eval_time: `${killStep - 1}s`,
      exp_samples: [{ labels: `ALERTS{alertname="${flapping.alert}",alertstate="firing",severity="${flapping.labels.severity}"}`, value: 1 }] },
  ];
  // The session timeout outlasts `for:`, so the alert must be pending just before it and firing at the end.
  const outageSteps = outageEnd - outageStart;
  t.true(outageSteps > forSeconds + 1, `the recorded outage (${outageSteps} s) outlasted for: ${forSeconds}s`);
  alert_rule_test.push(
    silent(outageStart + forSeconds - 2, noLeader.alert),
    { eval_time: `${outageEnd - 1}s`, alertname: noLeader.alert, exp_alerts: [{ exp_labels: noLeader.labels, exp_annotations: noLeader.annotations }] },
  );

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-alerts-recorded-'));
  const file = path.join(dir, 'recorded.test.yml');
  fs.writeFileSync(file, stringify({
    rule_files: [RULES],
    evaluation_interval: `${STEP_MS / 1000}s`,
    tests: [{
      name: 'recorded failovers',
      interval: `${STEP_MS / 1000}s`,
      input_series: inputSeries(grid, JOB, (name) => ruleMetrics.has(name)),
      alert_rule_test,
      promql_expr_test,
    }],
  }, { lineWidth: 0 }));
  const r = promtool('test', 'rules', file);
  t.is(r.status, 0, `promtool test rules ${file}:\n${r.output}`);
  t.regex(r.output, /SUCCESS/);
});
