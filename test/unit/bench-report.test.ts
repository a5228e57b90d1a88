/** The benchmark report: merging a subset run into the committed results, and rendering it. */
import test from 'ava';
import { mergeResults, renderMarkdown } from '../../bench/lib/report';
import type { BenchResults, ScenarioResult } from '../../bench/lib/types';

function scenario(name: ScenarioResult['name'], extra: Partial<ScenarioResult> = {}): ScenarioResult {
  return { name, title: `title of ${name}`, status: 'ok', durationMs: 1, settings: {}, summary: {}, trials: [], targets: [], notes: [], ...extra };
}

function results(startedAt: string, scenarios: ScenarioResult[], loadAverage1m = 1): BenchResults {
  return {
    schemaVersion: 1, mode: 'full', startedAt, finishedAt: startedAt, durationMs: 1, command: `npm run bench (${startedAt})`,
    environment: {
      machine: { cpus: 2, cpuModel: 'cpu', memoryGiB: 1, os: 'os', kernel: 'k', loadAverage1m },
      versions: { haDispatcher: '0', node: 'v20', zookeeperServer: '3.8.0', zookeeperNpm: '7', koa: '3' },
      ensemble: { servers: 3, tickTime: 100, minSessionTimeoutMs: 400, maxSessionTimeoutMs: 30000 },
    },
    scenarios,
  };
}

test('mergeResults replaces same-named scenarios, adds new ones in scenario order, and stamps their run', (t) => {
  const base = results('2026-01-01T00:00:00.000Z', [scenario('failover', { durationMs: 10 }), scenario('redirect')]);
  const run = results('2026-02-02T00:00:00.000Z', [scenario('session-timeout'), scenario('failover', { durationMs: 20 })], 7);
  const merged = mergeResults(base, run);
  t.deepEqual(merged.scenarios.map((s) => s.name), ['failover', 'redirect', 'session-timeout']);
  t.is(merged.scenarios[0].durationMs, 20);
  t.deepEqual(merged.scenarios[0].run, { startedAt: run.startedAt, command: run.command, loadAverage1m: 7 });
  t.is(merged.scenarios[1].run, undefined, 'a scenario not in the run keeps its own (the base run\'s) figures');
  t.is(merged.startedAt, base.startedAt, 'the header stays the base run\'s');
});

test('renderMarkdown names the run a merged section came from, and renders the failover cases', (t) => {
  const summary = (n: number) => ({ n, min: 1, p50: 2, p95: 3, p99: 3, max: 4, mean: 2 });
  const failover = scenario('failover', {
    settings: { replicas: 3, pollIntervalMs: 5, ready: 'GET /overview counts every stored job' },
    summary: {
      sessionTimeoutMs: 4000,
      cases: [{ jobs: 10_000, sigkill: { latchMs: summary(1), readyMs: summary(1), recoveryMs: summary(1) }, sigterm: { latchMs: summary(2), readyMs: summary(2), recoveryMs: summary(2), exitMs: summary(2) } }],
    },
    trials: [{ jobs: 10_000, trial: 1, kind: 'SIGKILL', oldLeader: 'r1', newLeader: 'r2', epoch: 1, latchMs: 1, readyMs: 2, readyLogMs: 2, recoveryMs: 1 }],
  });
  const merged = mergeResults(results('2026-01-01T00:00:00.000Z', []), results('2026-02-02T03:04:05.000Z', [failover]));
  const md = renderMarkdown(merged);
  t.true(md.includes('_From a separate run of 2026-02-02 03:04:05 UTC'));
  t.true(md.includes('| 10,000 | SIGKILL |'));
  t.true(md.includes('| 10,000 | SIGTERM |'));
});
