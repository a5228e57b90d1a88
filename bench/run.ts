/**
 * `npm run bench [-- --smoke] [-- --only failover,herd] [-- --merge] [-- --large] [-- --out FILE]`
 *
 * Starts one local 3-server ZooKeeper ensemble on loopback (the tests' settings), runs the scenarios
 * one after another (each in its own cluster-id, each bounded by its own time budget), writes the
 * results as JSON and, for a full run of every scenario, regenerates the figures in BENCHMARKS.md.
 * `--merge` (full mode) puts the results of a subset into `bench/results/latest.json` in place of
 * the same scenarios' earlier ones (each keeps the date and command of its own run) and regenerates
 * BENCHMARKS.md. `--large` runs the larger steps of scenarios that have them (scale).
 * Smoke mode runs every scenario at a tiny scale so the harness cannot rot; its figures mean nothing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { LocalEnsemble } from '../src/ensemble/local-ensemble';
import { packageRoot } from '../src/util/package-root';
import { describeEnvironment, ENSEMBLE_SETTINGS } from './lib/environment';
import { mergeResults, renderMarkdown, renderConsole, updateBenchmarksMd } from './lib/report';
import { BenchContext, BenchResults, BlockedError, Mode, Scenario, ScenarioName, ScenarioResult, SCENARIOS } from './lib/types';
import { failover } from './scenarios/failover';
import { throughput } from './scenarios/throughput';
import { recovery } from './scenarios/recovery';
import { redirect } from './scenarios/redirect';
import { herd } from './scenarios/herd';
import { memory } from './scenarios/memory';
import { execution } from './scenarios/execution';
import { scale } from './scenarios/scale';
import { sessionTimeout } from './scenarios/session-timeout';
import { haproxy } from './scenarios/haproxy';

const ALL: Record<ScenarioName, Scenario> = { failover, throughput, recovery, redirect, herd, memory, execution, scale, 'session-timeout': sessionTimeout, haproxy };

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      'keep-logs': { type: 'boolean', default: false },
      merge: { type: 'boolean', default: false },
      large: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: npm run bench -- [--smoke] [--only ${SCENARIOS.join(',')}] [--merge] [--large] [--out FILE] [--keep-logs]\n`);
    return 0;
  }
  const mode: Mode = values.smoke ? 'smoke' : 'full';
  const selected = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : [...SCENARIOS];
  for (const s of selected) {
    if (!(SCENARIOS as readonly string[]).includes(s)) {
      process.stderr.write(`bench: unknown scenario ${JSON.stringify(s)}; choose from ${SCENARIOS.join(', ')}\n`);
      return 2;
    }
  }
  const complete = selected.length === SCENARIOS.length;
  if (values.merge && (mode !== 'full' || values.out)) {
    process.stderr.write('bench: --merge takes the figures of a full run into bench/results/latest.json; it does not go with --smoke or --out\n');
    return 2;
  }
  const resultsDir = path.join(packageRoot(), 'bench', 'results');
  // Only a full run of every scenario replaces the committed figures; anything else is scratch (*.tmp).
  const outFile = values.out ? path.resolve(values.out)
    : mode === 'full' && complete ? path.join(resultsDir, 'latest.json')
      : path.join(resultsDir, `${mode}${complete ? '' : `-${selected.join('-')}`}.json.tmp`);

  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-bench-'));
  const say = (m: string): void => { process.stdout.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${m}\n`); };
  const startedAt = new Date();
  say(`${mode} run of ${selected.join(', ')}; logs in ${workDir}`);
  const ensemble = await LocalEnsemble.start({ dir: path.join(workDir, 'zk'), ...ENSEMBLE_SETTINGS });
  let failed = false;
  const results: ScenarioResult[] = [];
  try {
    const environment = await describeEnvironment(ensemble);
    for (const name of selected as ScenarioName[]) {
      const result = await runScenario(ALL[name], mode, values.large ?? false, ensemble, workDir, say);
      if (result.status === 'error') failed = true;
      results.push(result);
      say(`${name}: ${result.status} in ${(result.durationMs / 1000).toFixed(1)} s${result.error ? ` — ${result.error.split('\n')[0]}` : ''}`);
    }
    const finishedAt = new Date();
    const report: BenchResults = {
      schemaVersion: 1, mode, startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      command: `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`,
      environment, scenarios: results,
    };
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
    say(`results written to ${path.relative(process.cwd(), outFile) || outFile}`);
    process.stdout.write(`\n${renderConsole(report)}\n`);
    if (mode === 'full' && complete && !values.out) {
      updateBenchmarksMd(path.join(packageRoot(), 'BENCHMARKS.md'), renderMarkdown(report));
      say('BENCHMARKS.md updated');
    } else if (values.merge) {
      // Only figures that were measured replace earlier ones; a failed scenario's error stays in the .tmp file.
      const ok = { ...report, scenarios: report.scenarios.filter((s) => s.status === 'ok') };
      const latest = path.join(resultsDir, 'latest.json');
      const merged = mergeResults(JSON.parse(fs.readFileSync(latest, 'utf8')) as BenchResults, ok);
      fs.writeFileSync(latest, `${JSON.stringify(merged, null, 2)}\n`);
      updateBenchmarksMd(path.join(packageRoot(), 'BENCHMARKS.md'), renderMarkdown(merged));
      say(`merged into ${path.relative(process.cwd(), latest)}; BENCHMARKS.md updated`);
    }
  } finally {
    await ensemble.stop({ removeData: true });
    if (!failed && !values['keep-logs']) fs.rmSync(workDir, { recursive: true, force: true });
    else say(`process logs kept in ${workDir}`);
  }
  return failed ? 1 : 0;
}

async function runScenario(scenario: Scenario, mode: Mode, large: boolean, ensemble: LocalEnsemble, workDir: string, say: (m: string) => void): Promise<ScenarioResult> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const logDir = path.join(workDir, scenario.name);
  fs.mkdirSync(logDir, { recursive: true });
  const ctx: BenchContext = {
    mode, large, ensemble, connect: ensemble.connectString, logDir,
    log: (m) => say(m),
    defer: (fn) => { cleanups.push(fn); },
  };
  const budget = scenario.budgetMs(mode);
  const started = Date.now();
  const base = { name: scenario.name, title: scenario.title, settings: {}, summary: {}, trials: [], targets: [], notes: [] };
  let timer: NodeJS.Timeout | undefined;
  let result: ScenarioResult;
  try {
    const output = await Promise.race([
      scenario.run(ctx),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`gave up after its budget of ${budget / 1000} s`)), budget); }),
    ]);
    result = { ...base, ...output, status: 'ok', durationMs: Date.now() - started };
  } catch (err) {
    const blocked = err instanceof BlockedError;
    result = { ...base, status: blocked ? 'blocked' : 'error', error: (err as Error).stack ?? String(err), durationMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
  for (const cleanup of cleanups.reverse()) {
    try { await cleanup(); } catch (err) { say(`${scenario.name}: cleanup failed: ${(err as Error).message}`); }
  }
  return result;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
