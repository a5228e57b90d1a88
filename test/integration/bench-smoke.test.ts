/**
 * The benchmark harness must not rot: `npm run bench -- --smoke` runs every scenario at a tiny scale
 * against a real ensemble, and this test checks that it produced well-formed results for each one.
 * It never looks at timings: performance is judged by the full benchmark, not by tests.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../src/util/package-root';
import { SCENARIOS, ScenarioResult } from '../../bench/lib/types';
import { renderMarkdown } from '../../bench/lib/report';
import type { BenchResults } from '../../bench/lib/types';

/**
 * Scenarios that need the execution backend, or an haproxy program (the haproxy scenario), may report
 * "blocked" (with the reason) instead of running.
 */
const MAY_BE_BLOCKED = new Set(['memory', 'execution', 'haproxy']);

function runSmoke(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'bench', 'run.js'), '--smoke', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 270_000);
    child.once('error', reject);
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

test('npm run bench -- --smoke produces well-formed results for every scenario', async (t) => {
  t.timeout(290_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-bench-smoke-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'smoke.json');
  const { code, output } = await runSmoke(out);
  // On failure, name the scenarios that failed and why (the report, when written), then the output's tail.
  const failures = code === 0 || !fs.existsSync(out) ? [] : (JSON.parse(fs.readFileSync(out, 'utf8')) as BenchResults).scenarios
    .filter((s) => s.status === 'error').map((s) => `${s.name}: ${(s.error ?? '').split('\n').slice(0, 3).join(' | ')}`);
  t.is(code, 0, `${failures.join('\n')}\n${output.slice(-2000)}`);
  const results = JSON.parse(fs.readFileSync(out, 'utf8')) as BenchResults;
  t.is(results.schemaVersion, 1);
  t.is(results.mode, 'smoke');
  t.true(isNumber(results.durationMs));
  t.true(isNumber(results.environment.machine.cpus));
  t.truthy(results.environment.versions.node);
  t.deepEqual(results.scenarios.map((s) => s.name), [...SCENARIOS]);

  for (const s of results.scenarios) {
    const where = `scenario ${s.name}`;
    t.true(isNumber(s.durationMs), where);
    if (s.status === 'blocked' && MAY_BE_BLOCKED.has(s.name)) {
      t.truthy(s.error, `${where} is blocked and says why`);
      t.log(`${s.name} blocked: ${s.error?.split('\n')[0]}`);
      continue;
    }
    t.is(s.status, 'ok', `${where}: ${s.error ?? ''}`);
    t.is(typeof s.settings, 'object', where);
    t.true(Object.keys(s.summary).length > 0, `${where} has a summary`);
    t.true(Array.isArray(s.trials), where);
    for (const target of s.targets) {
      t.regex(target.id, /^[a-z0-9.]+$/, where);
      t.truthy(target.description, where);
      t.true(['<=', '>=', '=='].includes(target.comparison), where);
      t.true(isNumber(target.limit), `${where}: ${target.id} limit`);
      // A figure that could not be measured at this tiny scale is null and then left unjudged.
      t.true(isNumber(target.value) || target.value === null, `${where}: ${target.id} value`);
      t.is(target.met === null, target.value === null, `${where}: ${target.id} is judged exactly when measured`);
      if (target.met !== null) t.is(typeof target.met, 'boolean', `${where}: ${target.id} was judged`);
    }
    checkShape(t, s);
  }
  const markdown = renderMarkdown(results);
  for (const s of results.scenarios) t.true(markdown.includes(s.title), `the report has a section for ${s.name}`);
});

/** Per scenario: the figures the report is built from are present and numeric (values are not judged). */
function checkShape(t: import('ava').ExecutionContext, s: ScenarioResult): void {
  const trials = s.trials as Array<Record<string, any>>;
  const sum = s.summary as Record<string, any>;
  switch (s.name) {
    case 'failover':
      t.deepEqual([...new Set(trials.map((x) => x.kind))].sort(), ['SIGKILL', 'SIGTERM']);
      for (const x of trials) for (const k of ['jobs', 'latchMs', 'readyMs', 'recoveryMs']) t.true(isNumber(x[k]), `failover ${x.kind} ${k}`);
      t.true(isNumber(sum.sessionTimeoutMs));
      t.true(Array.isArray(sum.cases) && sum.cases.length >= 1, 'failover has a summary per job count');
      t.is(s.targets.length, 3);
      t.true(Array.isArray(sum.grantReady?.curve), 'failover reports the grant → ready curve');
      for (const x of trials) t.true(isNumber(x.settleMs), 'failover: settle wait per trial');
      break;
    case 'haproxy':
      t.deepEqual([...new Set(trials.map((x) => x.phase))].sort(), ['SIGKILL', 'SIGTERM', 'restart', 'steady'], 'haproxy: every phase');
      t.true(trials.length >= 4 && trials.every((x) => isNumber(x.requests) && isNumber(x.errorWindowMs) && isNumber(x.errorsThroughHaproxy)), 'haproxy: per-phase figures');
      t.true(Object.values(sum.variants as Record<string, any>).every((v) => isNumber(v.acknowledged) && isNumber(v.lost)), 'haproxy: acknowledged and lost per variant');
      break;
    case 'scale': {
      const tms = trials.filter((x) => x.curve === 'taskmanagers');
      const jobs = trials.filter((x) => x.curve === 'jobs');
      t.true(tms.length >= 2 && jobs.length >= 2, 'scale has two curves of at least two steps');
      for (const x of tms) {
        t.true(isNumber(x.taskManagers) && isNumber(x.heartbeatsPerS) && x.heartbeatsPerS > 0, 'scale: TaskManagers heartbeat');
        t.true(isNumber(x.probe.p50Ms) && isNumber(x.handoff.readyMs) && isNumber(x.handoff.reRegisteredMs), 'scale: TaskManager step figures');
      }
      for (const x of jobs) {
        t.true(isNumber(x.jobs) && isNumber(x.zkBytes) && x.zkBytes > 0 && isNumber(x.zkBytesPerJob), 'scale: ZooKeeper census');
        t.true(isNumber(x.batch.p50Ms) && isNumber(x.handoff.readyMs), 'scale: job step figures');
      }
      break;
    }
    case 'session-timeout':
      t.true(trials.length >= 1);
      for (const x of trials) {
        t.true(isNumber(x.sessionTimeoutMs) && isNumber(x.cpuLoad.revocations), 'session-timeout: CPU load probe');
        t.true(x.pauses.length >= 1 && x.pauses.every((p: any) => isNumber(p.pauseMs) && typeof p.lost === 'boolean'), 'session-timeout: pause probes');
        t.true(x.killReadyMs.length >= 1 && x.killReadyMs.every(isNumber), 'session-timeout: SIGKILL probes');
      }
      break;
    case 'throughput':
      t.true(trials.length >= 2);
      for (const x of trials) for (const side of ['rest', 'raw']) {
        t.true(isNumber(x[side].jobsPerSecond), `throughput ${side} rate`);
        t.true(isNumber(x[side].latencyMs.p50) && isNumber(x[side].latencyMs.p99), `throughput ${side} latency`);
      }
      break;
    case 'recovery':
      t.true(trials.length >= 1);
      for (const x of trials) t.true(isNumber(x.recoveryMs) && isNumber(x.rawGraphsMs) && isNumber(x.rawAllMs), 'recovery figures');
      break;
    case 'redirect':
      t.true(isNumber(sum.redirect307Ms.p99) && isNumber(sum.leaderMs.p99), 'redirect percentiles');
      break;
    case 'herd':
      t.true(trials.length >= 1);
      for (const x of trials) t.true(isNumber(x.electionReaders) && isNumber(x.anyReaders), 'herd counts');
      break;
    case 'memory':
      t.true(trials.length >= 2);
      for (const x of trials) t.true(isNumber(x.rssMiB), 'memory samples');
      break;
    case 'execution':
      t.true(trials.length >= 1);
      for (const x of trials) t.true(isNumber(x.jobMs) && isNumber(x.directMs), 'execution figures');
      break;
  }
}
