/**
 * The chaos runner (`ha-dispatcher chaos`, `npm run chaos`): for each scenario, a fresh cluster (3
 * replicas, 2 TaskManagers, a new cluster-id) on a shared local ensemble, the workload, the scenario's
 * faults for the given seconds, then: heal everything, let the jobs drain (bounded), read the final
 * state back, collect the processes' logs into the history, and hand the history to the checker.
 * Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalEnsemble } from '../ensemble/local-ensemble';
import { sleep } from '../util/clock';
import { isTerminalJobStatus } from '../jobgraph/status';
import { checkHistory, CheckResult, formatSummary, formatViolation } from './checker';
import { requestJson } from '../http/client';
import { ChaosCluster } from './cluster';
import { HistoryRecorder } from './history';
import { Random } from './random';
import { findScenario, Scenario, ScenarioContext, stepsBound } from './scenarios';
import { Workload } from './workload';

export interface ChaosOptions {
  scenarios: Scenario[];
  /** Fault-injection time per scenario (the drain and checks come on top). */
  seconds: number;
  seed: number;
  /** Where histories and logs go; a temporary folder when absent. */
  dir?: string;
  /** Keep logs of scenarios without violations too. */
  keep?: boolean;
  sessionTimeoutMs?: number;
  /** Upper bound for job submissions per scenario. */
  maxSubmissions?: number;
  /** How long to wait for acknowledged jobs to end after the faults stopped. */
  drainMs?: number;
  out?: (line: string) => void;
}

export interface ScenarioRun extends CheckResult { historyFile: string; dir: string }


export async function runChaos(options: ChaosOptions): Promise<ScenarioRun[]> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const dir = path.resolve(options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ha-chaos-')));
  fs.mkdirSync(dir, { recursive: true });
  out(`chaos: seed ${options.seed}, ${options.scenarios.length} scenarios × ${options.seconds} s, results in ${dir}`);
  const ensemble = await LocalEnsemble.start({ dir: path.join(dir, 'zookeeper'), servers: 3, tickTime: 200, minSessionTimeoutMs: 1000, maxSessionTimeoutMs: 30_000 });
  const runs: ScenarioRun[] = [];
  try {
    for (const [i, scenario] of options.scenarios.entries()) {
      const run = await runScenario(ensemble, scenario, { ...options, out, dir: path.join(dir, scenario.name), seed: options.seed + i });
      runs.push(run);
      if (run.violations.length === 0 && !options.keep) removeLogs(run.dir);
    }
  } finally {
    await ensemble.stop({ removeData: !options.keep });
  }
  out('');
  for (const r of runs) out(formatSummary(r.summary));
  const violations = runs.reduce((n, r) => n + r.violations.length, 0);
  out(`chaos: ${runs.length} scenarios, ${violations} violations (seed ${options.seed})`);
  return runs;
}

export async function runScenario(ensemble: LocalEnsemble, scenario: Scenario, options: ChaosOptions & { dir: string; out: (l: string) => void }): Promise<ScenarioRun> {
  const { out } = options;
  const random = new Random(options.seed);
  fs.mkdirSync(options.dir, { recursive: true });
  const historyFile = path.join(options.dir, 'history.jsonl');
  const recorder = new HistoryRecorder(historyFile);
  const log = (m: string): void => out(`  [${scenario.name} ${new Date().toISOString().slice(11, 19)}] ${m}`);
  const sessionTimeoutMs = options.sessionTimeoutMs ?? 4000;
  recorder.record({ kind: 'scenario', t: Date.now(), name: scenario.name, phase: 'start', seed: options.seed, settings: { seconds: options.seconds, sessionTimeoutMs, ...(scenario.expectNoFailovers ? { expectNoFailovers: true } : {}) } });
  out(`scenario ${scenario.name}: ${scenario.description}`);

  await ensemble.waitForQuorum(90_000);
  const cluster = await ChaosCluster.start({
    ensemble, dir: options.dir, clusterId: `chaos-${scenario.name}-${crypto.randomBytes(3).toString('hex')}`, sessionTimeoutMs, ...scenario.cluster,
  });
  let checked: CheckResult;
  try {
    const workload = new Workload({
      replicas: cluster.replicas.map((r) => r.url), clients: 3, taskFile: cluster.taskFile, recorder, random,
      maxSubmissions: options.maxSubmissions ?? Math.max(30, options.seconds * (scenario.durationFactor ?? 1) * 3), pauseMs: [150, 600], opDeadlineMs: 45_000,
    });
    workload.start();
    await sleep(1500);
    const seconds = options.seconds * (scenario.durationFactor ?? 1);
    const ctx: ScenarioContext = { cluster, recorder, random, workload, deadline: Date.now() + seconds * 1000, log };
    const bound = stepsBound(scenario);
    let steps = 0;
    while (Date.now() < ctx.deadline && steps < bound) {
      steps++;
      await scenario.step(ctx);
    }
    await workload.stop();
    recorder.record({ kind: 'scenario', t: Date.now(), name: scenario.name, phase: 'end' });

    // Heal, then let acknowledged jobs end (bounded), then read the final state back.
    await cluster.heal();
    await ensemble.waitForQuorum(90_000).catch((err) => log(`quorum: ${(err as Error).message.split('\n')[0]}`));
    const leader = await cluster.waitForLeader(60_000);
    if (!leader) log('no ready leader after healing');
    await cluster.waitForTaskManagers(30_000);
    // Every submitted job id (refused ones too: they must have left nothing), and every forged one.
    const submitted = [...new Set(recorder.events.flatMap((e) => (e.kind === 'op' && (e.op === 'submit' || e.op === 'resubmit' || e.op === 'submit-over-limit') && e.jobId ? [e.jobId]
      : e.kind === 'forgery' && e.jobId ? [e.jobId] : [])))];
    const acked = new Set(workload.acked.map((j) => j.jobId));
    const remaining = await drain(cluster, [...acked], options.drainMs ?? 90_000);
    if (remaining > 0) log(`${remaining} acknowledged jobs still not ended after the drain`);
    const jobs = await cluster.finalJobs(submitted);
    recorder.record({ kind: 'final', t: Date.now(), legitimateRunningMs: 30_000, jobs });
  } catch (err) {
    log(`run aborted: ${(err as Error).stack ?? err}`);
    recorder.note('run aborted', { error: String(err) });
  } finally {
    await cluster.stop();
    for (const e of cluster.events()) recorder.record(e);
    checked = checkHistory(recorder.events, scenario.name);
  }
  out(formatSummary(checked.summary));
  for (const v of checked.violations) out(formatViolation(v, scenario.name));
  if (checked.violations.length) out(`  history and logs kept in ${options.dir}`);
  return { ...checked, historyFile, dir: options.dir };
}

/** Waits until every acknowledged job has ended, or the time is up; returns how many are still running. */
async function drain(cluster: ChaosCluster, jobIds: string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let remaining = jobIds.length;
  while (Date.now() < deadline) {
    const leader = await cluster.currentLeader();
    const a = leader ? await requestJson('GET', `${leader.url}/jobs`, undefined, { timeoutMs: 5000 }).catch(() => null) : null;
    if (a?.status === 200) {
      const states = new Map((a.body.jobs as Array<{ id: string; status: string }>).map((j) => [j.id, j.status]));
      remaining = jobIds.filter((id) => !isTerminalJobStatus(states.get(id))).length;
      if (remaining === 0) return 0;
    }
    await sleep(500);
  }
  return remaining;
}

function removeLogs(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    if (name === 'history.jsonl') continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

// ---- command line ---------------------------------------------------------------------------------

export const CHAOS_USAGE = `ha-dispatcher chaos [--scenario NAME[,NAME...]|all|short] [--seconds S] [--seed N] [--dir DIR] [--keep]
ha-dispatcher chaos --check HISTORY.jsonl      run only the checker on a recorded history
ha-dispatcher chaos --list                     list the scenarios`;

export async function chaosCommand(args: string[]): Promise<number> {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({
    args,
    options: {
      scenario: { type: 'string', default: 'all' }, seconds: { type: 'string', default: '30' }, seed: { type: 'string' },
      dir: { type: 'string' }, keep: { type: 'boolean', default: false }, check: { type: 'string' }, list: { type: 'boolean', default: false },
      'session-timeout': { type: 'string' }, help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const { ALL_SCENARIOS, SHORT_SCENARIOS } = await import('./scenarios');
  if (values.help) {
    process.stdout.write(`${CHAOS_USAGE}\n`);
    return 0;
  }
  if (values.list) {
    for (const s of ALL_SCENARIOS) process.stdout.write(`${s.name.padEnd(24)} ${s.description}\n`);
    return 0;
  }
  if (values.check) {
    const { readHistory } = await import('./history');
    const result = checkHistory(readHistory(values.check));
    for (const v of result.violations) process.stdout.write(`${formatViolation(v, result.summary.scenario)}\n`);
    process.stdout.write(`${formatSummary(result.summary)}\n`);
    return result.violations.length ? 1 : 0;
  }
  const names = values.scenario === 'all' ? ALL_SCENARIOS.map((s) => s.name) : values.scenario === 'short' ? SHORT_SCENARIOS : values.scenario.split(',').map((s) => s.trim());
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw Object.assign(new Error(`--seconds must be between 1 and 3600, got ${values.seconds}`), { exitCode: 2 });
  const { seedFrom } = await import('./random');
  const runs = await runChaos({
    scenarios: names.map(findScenario), seconds, seed: seedFrom(values.seed ?? process.env.HA_CHAOS_SEED), dir: values.dir, keep: values.keep,
    sessionTimeoutMs: values['session-timeout'] ? Number(values['session-timeout']) : undefined,
  });
  return runs.some((r) => r.violations.length > 0) ? 1 : 0;
}
