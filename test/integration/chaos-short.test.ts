/**
 * The short chaos suite inside the default test command: a few scenarios for a few seconds each, on
 * real processes, checked by the safety checker. The full set runs with `npm run chaos`.
 * Seed: HA_CHAOS_SEED (printed); fault time per scenario: HA_CHAOS_SHORT_SECONDS (default 15).
 */
import anyTest, { TestFn } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ClusterContext, ensembleHooks } from '../helpers/ensemble';
import { formatViolation } from '../../src/chaos/checker';
import { runScenario } from '../../src/chaos/runner';
import { findScenario, SHORT_SCENARIOS } from '../../src/chaos/scenarios';
import { seedFrom } from '../../src/chaos/random';

interface Context extends ClusterContext { dir: string }
const test = anyTest as TestFn<Context>;
const seed = seedFrom(process.env.HA_CHAOS_SEED);
const seconds = Number(process.env.HA_CHAOS_SHORT_SECONDS ?? 15);

// Chaos needs sessions of a second or more: ticks of 200 ms.
ensembleHooks(test, { tickTime: 200, minSessionTimeoutMs: 1000, maxSessionTimeoutMs: 30_000 });

test.before(async (t) => {
  t.context.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-chaos-short-'));
  process.stdout.write(`chaos-short seed ${seed} — replay with HA_CHAOS_SEED=${seed}\n`);
});

for (const [i, name] of SHORT_SCENARIOS.entries()) {
  test.serial(`chaos ${name}: the checker finds no violation`, async (t) => {
    const lines: string[] = [];
    const run = await runScenario(t.context.ensemble, findScenario(name), {
      scenarios: [], seconds, seed: seed + i, dir: path.join(t.context.dir, name), out: (l) => lines.push(l), maxSubmissions: 40, drainMs: 60_000,
    });
    t.log(`seed ${seed + i}: ${lines.find((l) => l.startsWith(`scenario ${name}: `) && l.includes('operations')) ?? ''}`);
    if (run.violations.length) t.log(`${run.violations.map((v) => formatViolation(v, name)).join('\n')}\nhistory: ${run.historyFile}`);
    t.true(run.summary.faults > 0, 'faults were injected');
    t.true(run.summary.submissionsAcknowledged > 0, 'submissions were acknowledged');
    t.deepEqual(run.violations.map((v) => `${v.check}: ${v.message}`), []);
    if (run.violations.length === 0) fs.rmSync(run.dir, { recursive: true, force: true });
  });
}
