import test, { ExecutionContext } from 'ava';
import { JobGraph, canonicalJson, isJobId, parseJobGraph, topologicalOrder } from '../../src/jobgraph';
import { ValidationError } from '../../src/http/errors';

const limits = { maxParallelism: 128 };

/** The example JobGraph of docs/ARCHITECTURE.md ("JobGraph"). */
const example = () => ({
  jobId: '0123456789abcdef0123456789abcdef',
  name: 'nightly-etl',
  vertices: [
    {
      id: 'extract', name: 'Extract', parallelism: 4,
      task: { type: 'command', argv: ['node', 'extract.js'], env: { DAY: '2026-11-20' }, timeoutMs: 60000 },
    },
    { id: 'load', parallelism: 1, inputs: ['extract'], task: { type: 'sleep', ms: 500 } },
  ],
  restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 1000 },
});

const sleepVertex = (id: string, inputs?: string[]) => ({ id, parallelism: 1, ...(inputs ? { inputs } : {}), task: { type: 'sleep', ms: 1 } });
const graphOf = (vertices: unknown[], extra: object = {}) => ({ vertices, ...extra });

/** Asserts a ValidationError whose message contains every fragment. */
function rejects(t: ExecutionContext, input: unknown, ...fragments: string[]): void {
  const err = t.throws(() => parseJobGraph(input, limits), { instanceOf: ValidationError });
  for (const fragment of fragments) t.true(err!.message.includes(fragment), `"${err!.message}" lacks "${fragment}"`);
}

test('the documented example JobGraph parses and is normalized', (t) => {
  const graph = parseJobGraph(example(), limits);
  t.deepEqual(graph, {
    jobId: '0123456789abcdef0123456789abcdef',
    name: 'nightly-etl',
    vertices: [
      {
        id: 'extract', name: 'Extract', parallelism: 4, inputs: [],
        task: { type: 'command', argv: ['node', 'extract.js'], env: { DAY: '2026-11-20' }, timeoutMs: 60000 },
      },
      { id: 'load', name: 'load', parallelism: 1, inputs: ['extract'], task: { type: 'sleep', ms: 500 } },
    ],
    restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 1000 },
  });
  t.deepEqual(parseJobGraph(graph, limits), graph, 'normalizing is idempotent');
});

test('jobId and name are generated when absent; defaults are filled', (t) => {
  const graph = parseJobGraph(graphOf([{ id: 'a', task: { type: 'fail' } }, { id: 'b', task: { type: 'command', argv: ['true'] } }]), limits);
  t.true(isJobId(graph.jobId));
  t.is(graph.name, `job-${graph.jobId.slice(0, 8)}`);
  t.deepEqual(graph.vertices[0], { id: 'a', name: 'a', parallelism: 1, inputs: [], task: { type: 'fail', afterMs: 0 } });
  t.deepEqual(graph.vertices[1].task, { type: 'command', argv: ['true'], env: {} });
  t.is(graph.restartStrategy, undefined);
  t.not(parseJobGraph(graphOf([sleepVertex('a')]), limits).jobId, parseJobGraph(graphOf([sleepVertex('a')]), limits).jobId);
});

test('the body must be an object', (t) => {
  rejects(t, null, 'the job graph must be a JSON object', 'got null');
  rejects(t, [example()], 'the job graph must be a JSON object', 'got an array');
  rejects(t, 'job', 'the job graph must be a JSON object');
});

test('jobId must be 32 lowercase hex characters', (t) => {
  for (const jobId of ['0123456789ABCDEF0123456789ABCDEF', '../../jobresults/x', '0123456789abcdef0123456789abcde', '0123456789abcdef0123456789abcdef0',
    '0123456789abcdef/123456789abcdef', '0123456789abcdef\u00000123456789abcde', '0123456789abcdef0123456789abcdé', '..', 42, null]) {
    rejects(t, { ...example(), jobId }, 'jobId must be 32 lowercase hexadecimal characters');
  }
  rejects(t, { ...example(), jobId: 'a\u0000b' }, '"a\\u0000b"');
});

test('name must be a 1..200 character string', (t) => {
  rejects(t, { ...example(), name: '' }, 'name must be a string of 1 to 200 characters', 'got ""');
  rejects(t, { ...example(), name: 'x'.repeat(201) }, 'name must be a string of 1 to 200 characters');
  rejects(t, { ...example(), name: 7 }, 'name must be a string', 'got 7');
  rejects(t, { ...example(), name: 'two\nlines' }, 'name must not contain control characters');
});

test('vertices must be a non-empty array of at most 1000', (t) => {
  rejects(t, { name: 'x' }, 'vertices must be a non-empty array', 'missing');
  rejects(t, graphOf([]), 'vertices must be a non-empty array', 'got an empty array');
  rejects(t, { vertices: {} }, 'vertices must be a non-empty array', 'got an object');
  rejects(t, graphOf(Array.from({ length: 1001 }, (_, i) => sleepVertex(`v${i}`))), 'vertices has 1001 entries; at most 1000');
  t.notThrows(() => parseJobGraph(graphOf(Array.from({ length: 1000 }, (_, i) => sleepVertex(`v${i}`, i ? [`v${i - 1}`] : undefined))), limits));
});

test('vertex ids are safe and unique', (t) => {
  for (const id of ['', 'a/b', '..', 'a.b', 'x'.repeat(65), 'naïve', 3]) {
    rejects(t, graphOf([sleepVertex('ok'), { ...sleepVertex('x'), id }]), 'vertices[1].id must be 1 to 64 letters, digits, "_" or "-"');
  }
  rejects(t, graphOf([sleepVertex('a'), sleepVertex('b'), sleepVertex('a')]), 'vertices[2].id "a" is already the id of vertices[0]');
});

test('inputs must name other existing vertices, once each', (t) => {
  rejects(t, graphOf([sleepVertex('a'), sleepVertex('b', ['c'])]), 'vertices[1].inputs[0] "c" is not the id of any vertex', 'known ids: a, b');
  rejects(t, graphOf([sleepVertex('a', ['a'])]), 'vertices[0].inputs[0] "a" is the vertex itself');
  rejects(t, graphOf([sleepVertex('a'), sleepVertex('b', ['a', 'a'])]), 'vertices[1].inputs[1] "a" is listed twice');
  rejects(t, graphOf([sleepVertex('a'), { ...sleepVertex('b'), inputs: 'a' }]), 'vertices[1].inputs must be an array of vertex ids');
  rejects(t, graphOf([sleepVertex('a'), { ...sleepVertex('b'), inputs: [1] }]), 'vertices[1].inputs[0] must be a vertex id string');
});

test('cycles are rejected with their path', (t) => {
  rejects(t, graphOf([sleepVertex('a', ['b']), sleepVertex('b', ['a'])]), 'cycle: a -> b -> a');
  // Data flows a -> b -> c -> a: b reads a, c reads b, a reads c.
  rejects(t, graphOf([sleepVertex('src'), sleepVertex('a', ['src', 'c']), sleepVertex('b', ['a']), sleepVertex('c', ['b'])]), 'cycle: a -> b -> c -> a');
});

test('parallelism is an integer between 1 and maxParallelism', (t) => {
  for (const parallelism of [0, -1, 129, 1.5, '4', null]) {
    rejects(t, graphOf([sleepVertex('a'), sleepVertex('b'), { ...sleepVertex('c'), parallelism }]), 'vertices[2].parallelism must be an integer between 1 and 128, got');
  }
  rejects(t, graphOf([sleepVertex('a'), sleepVertex('b'), { ...sleepVertex('c'), parallelism: 0 }]), 'vertices[2].parallelism must be an integer between 1 and 128, got 0');
  t.is(parseJobGraph(graphOf([{ ...sleepVertex('a'), parallelism: 128 }]), limits).vertices[0].parallelism, 128);
  t.throws(() => parseJobGraph(graphOf([{ ...sleepVertex('a'), parallelism: 5 }]), { maxParallelism: 4 }), { message: /between 1 and 4, got 5/ });
});

test('unknown fields are rejected so typos are caught', (t) => {
  rejects(t, { ...example(), vertexes: [] }, 'the job graph has unknown field "vertexes"', 'allowed fields: jobId, name, vertices, restartStrategy');
  rejects(t, graphOf([{ ...sleepVertex('a'), paralelism: 2 }]), 'vertices[0] has unknown field "paralelism"');
  rejects(t, graphOf([{ id: 'a', task: { type: 'sleep', ms: 1, millis: 2 } }]), 'vertices[0].task has unknown field "millis"');
  rejects(t, { ...example(), restartStrategy: { type: 'none', attempts: 1 } }, 'restartStrategy has unknown field "attempts"');
  rejects(t, JSON.parse('{"vertices":[{"id":"a","task":{"type":"sleep","ms":1}}],"__proto__":{"x":1}}'), 'unknown field "__proto__"');
});

test('task type must be known', (t) => {
  rejects(t, graphOf([{ id: 'a' }]), 'vertices[0].task must be a JSON object with a "type" field', 'missing');
  rejects(t, graphOf([{ id: 'a', task: { type: 'shell' } }]), 'vertices[0].task.type must be one of "command", "sleep", "fail", got "shell"');
});

test('command tasks: argv, env and timeoutMs', (t) => {
  const command = (task: object) => graphOf([{ id: 'a', task: { type: 'command', argv: ['node'], ...task } }]);
  rejects(t, command({ argv: [] }), 'vertices[0].task.argv must be a non-empty array of strings');
  rejects(t, command({ argv: 'node x.js' }), 'vertices[0].task.argv must be a non-empty array of strings');
  rejects(t, command({ argv: ['node', 3] }), 'vertices[0].task.argv[1] must be a string, got 3');
  rejects(t, command({ argv: ['node', 'x'.repeat(4097)] }), 'vertices[0].task.argv[1] is 4097 characters long; at most 4096');
  rejects(t, command({ argv: ['node', 'a\u0000b'] }), 'vertices[0].task.argv[1] contains a NUL character');
  rejects(t, command({ argv: [''] }), 'vertices[0].task.argv[0] must name the program');
  rejects(t, command({ env: ['A=1'] }), 'vertices[0].task.env must be an object');
  rejects(t, command({ env: { '1X': 'y' } }), 'vertices[0].task.env name "1X" is not a valid environment variable name');
  rejects(t, command({ env: { 'A-B': 'y' } }), 'name "A-B" is not a valid');
  rejects(t, command({ env: { A: 1 } }), 'vertices[0].task.env.A must be a string, got 1');
  rejects(t, command({ env: { A: 'x\u0000' } }), 'vertices[0].task.env.A contains a NUL character');
  rejects(t, command({ env: { ATTEMPT: '3' } }), 'vertices[0].task.env.ATTEMPT is set by the TaskManager itself');
  for (const timeoutMs of [0, -5, 1.5, '1000', 2 ** 31]) rejects(t, command({ timeoutMs }), 'vertices[0].task.timeoutMs must be an integer between 1 and 2147483647');
  const env = parseJobGraph(command({ env: JSON.parse('{"__proto__":"x","B":"y"}') }), limits).vertices[0].task;
  t.deepEqual(Object.keys((env as { env: object }).env), ['__proto__', 'B'], '__proto__ stays a plain variable');
});

test('sleep and fail tasks', (t) => {
  for (const ms of [-1, 86_400_001, 0.5, '5', undefined]) {
    rejects(t, graphOf([{ id: 'a', task: { type: 'sleep', ms } }]), 'vertices[0].task.ms must be an integer between 0 and 86400000');
  }
  rejects(t, graphOf([{ id: 'a', task: { type: 'fail', afterMs: -1 } }]), 'vertices[0].task.afterMs must be an integer between 0 and 86400000');
  rejects(t, graphOf([{ id: 'a', task: { type: 'fail', failAttempts: -1 } }]), 'vertices[0].task.failAttempts must be an integer between 0');
  rejects(t, graphOf([{ id: 'a', task: { type: 'fail', message: '' } }]), 'vertices[0].task.message must be a string of 1 to 1000 characters');
  t.deepEqual(parseJobGraph(graphOf([{ id: 'a', task: { type: 'fail', afterMs: 10, message: 'boom', failAttempts: 2 } }]), limits).vertices[0].task,
    { type: 'fail', afterMs: 10, message: 'boom', failAttempts: 2 });
});

test('restart strategies are validated per type', (t) => {
  const withStrategy = (restartStrategy: unknown) => ({ ...example(), restartStrategy });
  rejects(t, withStrategy('fixed-delay'), 'restartStrategy must be a JSON object with a "type" field');
  rejects(t, withStrategy({ type: 'fixeddelay' }), 'restartStrategy.type must be one of "none", "fixed-delay", "exponential-delay", "failure-rate", got "fixeddelay"');
  rejects(t, withStrategy({ type: 'fixed-delay', delayMs: 10 }), 'restartStrategy.attempts must be an integer between 0', 'missing');
  rejects(t, withStrategy({ type: 'fixed-delay', attempts: 1, delayMs: -1 }), 'restartStrategy.delayMs must be an integer between 0 and 2147483647, got -1');
  rejects(t, withStrategy({ type: 'exponential-delay', initialBackoffMs: 100, maxBackoffMs: 50, backoffMultiplier: 2 }), 'restartStrategy.maxBackoffMs must be an integer between 100 and');
  rejects(t, withStrategy({ type: 'exponential-delay', initialBackoffMs: 100, maxBackoffMs: 500, backoffMultiplier: 0.5 }), 'restartStrategy.backoffMultiplier must be a number of at least 1, got 0.5');
  rejects(t, withStrategy({ type: 'failure-rate', maxFailuresPerInterval: 0, failureRateIntervalMs: 1000, delayMs: 0 }), 'restartStrategy.maxFailuresPerInterval must be an integer between 1');
  rejects(t, withStrategy({ type: 'failure-rate', maxFailuresPerInterval: 1, delayMs: 0 }), 'restartStrategy.failureRateIntervalMs');
  const parse = (s: unknown) => parseJobGraph(withStrategy(s), limits).restartStrategy;
  t.deepEqual(parse({ type: 'none' }), { type: 'none' });
  t.deepEqual(parse({ backoffMultiplier: 1.5, maxBackoffMs: 500, initialBackoffMs: 100, type: 'exponential-delay', attempts: 4 }),
    { type: 'exponential-delay', initialBackoffMs: 100, maxBackoffMs: 500, backoffMultiplier: 1.5, attempts: 4 });
  t.deepEqual(parse({ type: 'failure-rate', maxFailuresPerInterval: 3, failureRateIntervalMs: 60000, delayMs: 10 }),
    { type: 'failure-rate', maxFailuresPerInterval: 3, failureRateIntervalMs: 60000, delayMs: 10 });
});

test('canonicalJson ignores key order and spelling of defaults, not content', (t) => {
  const a = parseJobGraph(example(), limits);
  const reordered = JSON.parse(JSON.stringify({
    restartStrategy: { delayMs: 1000, attempts: 3, type: 'fixed-delay' },
    vertices: [
      { task: { timeoutMs: 60000, env: { DAY: '2026-11-20' }, argv: ['node', 'extract.js'], type: 'command' }, parallelism: 4, name: 'Extract', id: 'extract' },
      { task: { ms: 500, type: 'sleep' }, inputs: ['extract'], name: 'load', id: 'load' },
    ],
    name: 'nightly-etl',
    jobId: '0123456789abcdef0123456789abcdef',
  }));
  t.is(canonicalJson(parseJobGraph(reordered, limits)), canonicalJson(a));
  t.is(canonicalJson(a), canonicalJson(JSON.parse(canonicalJson(a)) as JobGraph));

  const different = example();
  different.vertices[1].parallelism = 2;
  t.not(canonicalJson(parseJobGraph(different, limits)), canonicalJson(a));
  const noStrategy: Partial<ReturnType<typeof example>> = example();
  delete noStrategy.restartStrategy;
  t.not(canonicalJson(parseJobGraph(noStrategy, limits)), canonicalJson(a));
  t.regex(canonicalJson(a), /^\{"jobId":.*"name":.*"restartStrategy":.*"vertices":/);
});

test('topologicalOrder puts every vertex after its inputs, ties in declaration order', (t) => {
  const graph = parseJobGraph(graphOf([
    sleepVertex('report', ['join']),
    sleepVertex('join', ['left', 'right']),
    sleepVertex('right'),
    sleepVertex('left', ['source']),
    sleepVertex('source'),
  ]), limits);
  t.deepEqual(topologicalOrder(graph), ['right', 'source', 'left', 'join', 'report']);
  t.deepEqual(topologicalOrder(parseJobGraph(example(), limits)), ['extract', 'load']);
  t.throws(() => topologicalOrder({ vertices: [sleepVertex('a', ['b']), sleepVertex('b', ['a'])] as JobGraph['vertices'] }),
    { instanceOf: ValidationError, message: /cycle: a -> b -> a/ });
});
