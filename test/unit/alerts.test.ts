/**
 * The shipped alert rules: syntax (`promtool check rules`) and behaviour (`promtool test rules` runs
 * deploy/prometheus/alerts.test.yml, which checks every alert firing and staying silent). Also
 * checks that every alert is tested, and that every alert has a procedure in runbooks/alerts.md.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../src/util/package-root';

const root = packageRoot();
const rules = path.join(root, 'deploy', 'prometheus', 'alerts.yml');
const tests = path.join(root, 'deploy', 'prometheus', 'alerts.test.yml');

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: root, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is not installed (.ci/setup installs Debian's prometheus): ${r.error.message}`);
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const alertNames = (file: string): string[] => [...fs.readFileSync(file, 'utf8').matchAll(/^\s*-?\s*alert(?:name)?:\s*(\w+)/gm)].map((m) => m[1]);

test('promtool check rules accepts deploy/prometheus/alerts.yml', (t) => {
  const r = promtool('check', 'rules', rules);
  t.is(r.status, 0, r.output);
});

test('promtool test rules: every alert fires and stays silent where its unit test says', (t) => {
  const r = promtool('test', 'rules', tests);
  t.is(r.status, 0, r.output);
  t.regex(r.output, /SUCCESS/);
});

test('every alert has a unit test and a runbook procedure', (t) => {
  const alerts = alertNames(rules);
  t.true(alerts.length >= 10, `alerts found: ${alerts.join(', ')}`);
  const tested = new Set([...fs.readFileSync(tests, 'utf8').matchAll(/alertname:\s*(\w+)/g)].map((m) => m[1]));
  const runbook = fs.readFileSync(path.join(root, 'runbooks', 'alerts.md'), 'utf8');
  for (const alert of alerts) {
    t.true(tested.has(alert), `${alert} has no test in alerts.test.yml`);
    t.true(runbook.includes(`\`${alert}\``), `${alert} is missing from runbooks/alerts.md`);
  }
});
