/**
 * The documented job file format: every example in examples/ and the README's example pass both the
 * JSON Schema (docs/jobgraph.schema.json) and the product's parser; the README's example is
 * examples/etl.json verbatim. Also the parser's every-problem-at-once report and the JSON locator.
 */
import test from 'ava';
import Ajv from 'ajv';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseJobGraph } from '../../src/jobgraph';
import { JobGraphValidationError } from '../../src/jobgraph/parse';
import { packageRoot } from '../../src/util/package-root';
import { JsonSyntaxError, parseJsonText } from '../../src/cli/json-text';
import { readmeJobExample } from '../helpers/job-files';

const root = packageRoot();
const limits = { maxParallelism: 1024 };
const schema = JSON.parse(fs.readFileSync(path.join(root, 'docs', 'jobgraph.schema.json'), 'utf8'));
const validateSchema = new Ajv({ allErrors: true }).compile(schema);

const examples = fs.readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.json'));

test('there are at least three examples, one of them the README example verbatim', (t) => {
  t.true(examples.length >= 3, examples.join(', '));
  t.is(readmeJobExample(), fs.readFileSync(path.join(root, 'examples', 'etl.json'), 'utf8'));
  t.is(JSON.parse(readmeJobExample()).vertices.length, 3);
});

for (const file of examples) {
  test(`examples/${file} passes the JSON Schema and the parser`, (t) => {
    const graph = JSON.parse(fs.readFileSync(path.join(root, 'examples', file), 'utf8'));
    t.true(validateSchema(graph), JSON.stringify(validateSchema.errors));
    t.notThrows(() => parseJobGraph(graph, limits));
  });
}

test('the schema and the parser both reject what the format forbids', (t) => {
  const ok = JSON.parse(readmeJobExample());
  const cases: Array<[string, (g: any) => void]> = [
    ['unknown top-level field', (g) => { g.nmae = 'x'; }],
    ['vertex id with a space', (g) => { g.vertices[0].id = 'a b'; }],
    ['sleep without ms', (g) => { g.vertices[1].task = { type: 'sleep' }; }],
    ['delay and delayMs together', (g) => { g.restartStrategy = { type: 'fixed-delay', attempts: 1, delay: '1 s', delayMs: 5 }; }],
    ['a duration with an unknown unit', (g) => { g.restartStrategy = { type: 'fixed-delay', attempts: 1, delay: '1 fortnight' }; }],
    ['reserved env name', (g) => { g.vertices[2].task.env = { JOB_ID: 'x' }; }],
  ];
  for (const [what, change] of cases) {
    const graph = structuredClone(ok);
    change(graph);
    t.false(validateSchema(graph), `schema accepts: ${what}`);
    t.throws(() => parseJobGraph(graph, limits), { instanceOf: JobGraphValidationError }, `parser accepts: ${what}`);
  }
});

test('restartStrategy durations are normalized to milliseconds, like the configuration\'s', (t) => {
  const graph = parseJobGraph(JSON.parse(readmeJobExample()), limits);
  t.deepEqual(graph.restartStrategy, { type: 'fixed-delay', attempts: 3, delayMs: 1000 });
  const flaky = parseJobGraph(JSON.parse(fs.readFileSync(path.join(root, 'examples', 'flaky-with-retries.json'), 'utf8')), limits);
  t.deepEqual(flaky.restartStrategy, { type: 'exponential-delay', initialBackoffMs: 200, maxBackoffMs: 5000, backoffMultiplier: 2, attempts: 5 });
});

test('the parser reports every problem at once, each with its JSON path; the 400 body lists them as errors', (t) => {
  const err = t.throws(() => parseJobGraph({
    nam: 'x',
    vertices: [
      { id: 'a b', task: { type: 'sleep' } },
      { id: 'b', inputs: ['a'], parallelism: 0, task: { type: 'command', argv: [] } },
    ],
    restartStrategy: { type: 'fixed-delay', attempts: -1, delayMs: 5 },
  }, limits), { instanceOf: JobGraphValidationError });
  t.deepEqual(err!.issues.map((m) => m.split(' ')[0]), [
    'the', 'vertices[0].id', 'vertices[0].task.ms', 'vertices[1].parallelism', 'vertices[1].task.argv', 'restartStrategy.attempts',
  ]);
  t.deepEqual(err!.extra.errors, err!.issues);
  t.is(err!.status, 400);
  t.regex(err!.message, /^6 problems: the job graph has unknown field "nam"/);
});

test('invalid JSON is located by line and column', (t) => {
  const err = t.throws(() => parseJsonText('{\n  "name": "x",\n  "vertices": [\n    {"id": "a" "task": {}}\n  ]\n}\n'), { instanceOf: JsonSyntaxError });
  t.is(err!.line, 4);
  t.is(err!.column, 16);
  const end = t.throws(() => parseJsonText('{"name": '), { instanceOf: JsonSyntaxError });
  t.regex(end!.message, /^line 1 column 10: the text ends too early/);
  t.deepEqual(parseJsonText('{"a": [1, 2.5e3, "\\u00e9"]}'), { a: [1, 2500, 'é'] });
});
