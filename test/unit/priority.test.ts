/** Job priorities: the JobGraph's `priority` field and the scheduling configuration keys. */
import test from 'ava';
import { parseJobGraph } from '../../src/jobgraph';
import { JobGraphValidationError } from '../../src/jobgraph/parse';
import { validateConfig, publicConfig, parseYamlProperties } from '../../src/config';

const graph = (extra: object): unknown => ({ vertices: [{ id: 'v', task: { type: 'sleep', ms: 1 } }], ...extra });
const limits = { maxParallelism: 8, priorityClasses: { low: 0, normal: 50, urgent: 100 } };

test('a priority is an integer or a class name, stored as the integer; absent stays absent', (t) => {
  t.is(parseJobGraph(graph({ priority: 'urgent' }), limits).priority, 100);
  t.is(parseJobGraph(graph({ priority: 7 }), limits).priority, 7);
  t.false('priority' in parseJobGraph(graph({}), limits));
});

test('an unknown class or a non-integer is a 400 naming the field and the classes', (t) => {
  for (const priority of ['highest', 1.5, true, 10_000_000]) {
    const err = t.throws(() => parseJobGraph(graph({ priority }), limits), { instanceOf: JobGraphValidationError });
    t.is(err?.status, 400);
    t.regex(err?.message ?? '', /^priority must be one of the priority classes "low" \(0\), "normal" \(50\), "urgent" \(100\) \(scheduler\.priority-classes\) or an integer/);
  }
});

test('scheduling keys: classes and reservations as name:n lists, JSON or YAML maps; cross-checked', (t) => {
  const c = validateConfig({ 'scheduler.priority-classes': 'batch:0, normal:10, urgent:90', 'resourcemanager.reserved-slots': '{"urgent": 2}', 'scheduler.preemption.enabled': 'true' });
  t.deepEqual({ ...c['scheduler.priority-classes'] }, { batch: 0, normal: 10, urgent: 90 });
  t.deepEqual({ ...c['resourcemanager.reserved-slots'] }, { urgent: 2 });
  t.true(c['scheduler.preemption.enabled']);
  t.is(publicConfig(c)['scheduler.priority-classes'], 'batch:0,normal:10,urgent:90');

  const defaults = validateConfig({});
  t.deepEqual({ ...defaults['scheduler.priority-classes'] }, { low: 0, normal: 50, urgent: 100 });
  t.is(defaults['scheduler.default-priority-class'], 'normal');
  t.false(defaults['scheduler.preemption.enabled']);
  t.deepEqual({ ...defaults['resourcemanager.reserved-slots'] }, {});

  const yaml = parseYamlProperties('scheduler:\n  priority-classes:\n    low: 1\n    high: 9\n  default-priority-class: low\n', 'test.yaml');
  t.deepEqual({ ...validateConfig(Object.fromEntries(yaml))['scheduler.priority-classes'] }, { low: 1, high: 9 });

  t.throws(() => validateConfig({ 'scheduler.default-priority-class': 'gold' }), { message: /scheduler\.default-priority-class.*must be one of scheduler\.priority-classes \(low, normal, urgent\)/ });
  t.throws(() => validateConfig({ 'resourcemanager.reserved-slots': 'vip:1' }), { message: /resourcemanager\.reserved-slots.*names vip, not in scheduler\.priority-classes/ });
  t.throws(() => validateConfig({ 'scheduler.priority-classes': 'low:x' }), { message: /low must be an integer/ });
});
