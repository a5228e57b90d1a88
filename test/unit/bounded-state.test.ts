/**
 * Bounded by design: what a job may ask for (validation), what its stored progress can grow to (the
 * shard layout and its arithmetic), the one size check before every write, reading the format-1
 * progress node, and a JobMaster whose state cannot be stored ending FAILED instead of retrying.
 */
import test from 'ava';
import { parseJobGraph } from '../../src/jobgraph';
import { ValidationError } from '../../src/http/errors';
import {
  DEFAULT_MAX_SUBTASKS_PER_JOB, MAX_JOB_PROGRESS_BYTES, MAX_PROGRESS_SHARD_BYTES, MAX_VERTICES, progressShardBytesBound,
} from '../../src/jobgraph/limits';
import type { JobGraph } from '../../src/jobgraph/types';
import { ExecutionGraph } from '../../src/jobmaster/execution-graph';
import { SchedulingJobMaster } from '../../src/jobmaster/job-master';
import type { JobMasterContext, TerminalOutcome } from '../../src/jobmaster/types';
import type { TaskExecutionService } from '../../src/resources/resource-manager';
import { boundedPayload, writeBounded, ZNODE_WRITE_LIMIT_BYTES, ZnodeTooLargeError } from '../../src/store/bounded-write';
import { JobProgress, ProgressStore, ZkProgressStore, removeJobProgress } from '../../src/store/progress-store';
import { progressPath, vertexProgressPath, vertexProgressShardsPath } from '../../src/zk/layout';
import { FakeZkClient } from '../helpers/fake-zk';
import { eventually } from '../../src/util/poll';

const JOB_ID = 'b'.repeat(32);
const limits = { maxParallelism: 128 };

const sleepVertex = (id: string, parallelism: number, inputs: string[] = []) => ({ id, parallelism, inputs, task: { type: 'sleep', ms: 1 } });

/** The graph found on main: 1,000 vertices × parallelism 128 (128,000 subtasks, a 2.5 MB progress node). */
function hugeGraph(): object {
  return { jobId: JOB_ID, vertices: Array.from({ length: 1000 }, (_, i) => sleepVertex(`v${i}`, 128, i ? [`v${i - 1}`] : [])) };
}

/** Just under every default limit: 1,000 vertices, 10,000 subtasks, the widest at max parallelism 128. */
function graphAtEveryLimit(): object {
  // 70 × 128 + 1 × 111 + 929 × 1 = 10,000 subtasks in 1,000 vertices.
  const vertices = Array.from({ length: MAX_VERTICES }, (_, i) => sleepVertex(`vertex-${String(i).padStart(4, '0')}-${'x'.repeat(50)}`, i < 70 ? 128 : i === 70 ? 111 : 1));
  return { jobId: JOB_ID, vertices };
}

test('the 1,000 × 128 job is rejected with a 400 naming the limit and by how much', (t) => {
  const err = t.throws(() => parseJobGraph(hugeGraph(), limits), { instanceOf: ValidationError })!;
  t.is((err as ValidationError).status, 400);
  t.regex(err.message, /128000 subtasks/);
  t.regex(err.message, /118000 more than the 10000 allowed \(dispatcher\.max-subtasks-per-job\)/);
});

test('a configured vertex or subtask limit is enforced with its key in the message', (t) => {
  const graph = { vertices: Array.from({ length: 5 }, (_, i) => sleepVertex(`v${i}`, 3)) };
  t.regex(t.throws(() => parseJobGraph(graph, { maxParallelism: 8, maxVertices: 4 }))!.message, /at most 4 are allowed \(dispatcher\.max-vertices-per-job\), 1 too many/);
  t.regex(t.throws(() => parseJobGraph(graph, { maxParallelism: 8, maxSubtasks: 14 }))!.message, /15 subtasks .* 1 more than the 14 allowed/);
  t.is(parseJobGraph(graph, { maxParallelism: 8, maxVertices: 5, maxSubtasks: 15 }).vertices.length, 5);
});

test('a parallelism whose progress shard could not be stored is rejected, even when max-parallelism allows it', (t) => {
  const graph = { vertices: [sleepVertex('wide', 4000)] };
  const err = t.throws(() => parseJobGraph(graph, { maxParallelism: 32768, maxSubtasks: 100_000 }))!;
  t.regex(err.message, /vertices\[0\]\.parallelism 4000 implies a progress shard of up to \d+ bytes/);
  t.true(progressShardBytesBound(4000) > MAX_PROGRESS_SHARD_BYTES);
});

test('every progress node of a job just under every limit stays under its bound in the worst case', async (t) => {
  const graph = parseJobGraph(graphAtEveryLimit(), limits);
  t.is(graph.vertices.reduce((n, v) => n + v.parallelism, 0), DEFAULT_MAX_SUBTASKS_PER_JOB);
  const eg = new ExecutionGraph(graph, { submittedAt: 0, now: () => 0 });
  // Worst case per subtask: the largest attempt number, in flight, on a TaskManager with the longest id.
  for (const s of eg.allExecutions()) {
    s.attempt = Number.MAX_SAFE_INTEGER;
    s.deployed = true;
    s.taskManager = 't'.repeat(128);
  }
  t.is(eg.maxAttempt(), Number.MAX_SAFE_INTEGER);
  const client = new FakeZkClient();
  const store = new ZkProgressStore(client, () => undefined, JOB_ID);
  const hugeEntry = { timestamp: Date.now(), exceptionName: 'TaskFailure', stacktrace: '\u0000'.repeat(4000), taskName: '"'.repeat(1000), location: 'x'.repeat(1000) };
  const progress: JobProgress = {
    formatVersion: 2, jobId: JOB_ID, epoch: 1, updatedAt: Date.now(), vertices: eg.snapshot(), restarts: 5,
    restart: { restarts: 5, failureTimes: Array.from({ length: 5000 }, () => Date.now()), lastFailureAt: Date.now(), lastBackoffMs: 1 },
    exceptions: Array.from({ length: 50 }, () => hugeEntry),
  };
  await store.save(progress);

  const shards = await client.getChildren(vertexProgressShardsPath(JOB_ID));
  t.is(shards.length, MAX_VERTICES, 'one shard per vertex');
  let largest = 0;
  for (const v of graph.vertices) {
    const size = (await client.get(vertexProgressPath(JOB_ID, v.id))).data.length;
    t.true(size <= progressShardBytesBound(v.parallelism), `shard ${v.id}: ${size} B > ${progressShardBytesBound(v.parallelism)} B`);
    largest = Math.max(largest, size);
  }
  t.true(largest <= MAX_PROGRESS_SHARD_BYTES && largest > 128 * 150, `largest shard ${largest} B`);
  const jobLevel = (await client.get(progressPath(JOB_ID))).data;
  t.true(jobLevel.length <= MAX_JOB_PROGRESS_BYTES, `job-level node ${jobLevel.length} B`);
  const stored = JSON.parse(jobLevel.toString('utf8'));
  t.is(stored.formatVersion, 2);
  t.false('vertices' in stored);
  t.true(stored.exceptions.length > 0 && stored.exceptions.length < 50, 'the oldest failure history entries were cut to fit');
  t.is(stored.restart.failureTimes.length, 1000);

  // Reading it back gives the same subtasks.
  const loaded = await new ZkProgressStore(client, () => undefined, JOB_ID).load();
  t.deepEqual(loaded!.vertices[graph.vertices[0].id], progress.vertices[graph.vertices[0].id]);
});

test('only the shards that changed are written, and untouched vertices not at all', async (t) => {
  const graph = parseJobGraph({ jobId: JOB_ID, vertices: [sleepVertex('a', 2), sleepVertex('b', 2, ['a'])] }, limits);
  const eg = new ExecutionGraph(graph, { submittedAt: 0, now: () => 0 });
  const client = new FakeZkClient();
  const store = new ZkProgressStore(client, () => undefined, JOB_ID);
  const save = () => store.save({ formatVersion: 2, jobId: JOB_ID, epoch: 1, updatedAt: Date.now(), vertices: eg.snapshot(), restarts: 0, restart: { restarts: 0, failureTimes: [], lastFailureAt: null, lastBackoffMs: null }, exceptions: [] });
  eg.jobVertexSubtasks('a')[0].deployed = true;
  await save();
  t.deepEqual(await client.getChildren(vertexProgressShardsPath(JOB_ID)), ['a']);
  const writes = () => client.calls.filter((c) => (c.op === 'set' || c.op === 'create') && c.path.startsWith(vertexProgressShardsPath(JOB_ID) + '/')).map((c) => c.path);
  const before = writes().length;
  eg.markFinished(eg.jobVertexSubtasks('a')[0], 'tm1');
  await save();
  t.deepEqual(writes().slice(before), [vertexProgressPath(JOB_ID, 'a')], 'one changed shard, one write');
  const after = client.calls.length;
  await save();
  t.is(client.calls.length, after, 'nothing changed: nothing written');

  await removeJobProgress(client, () => undefined, JOB_ID);
  t.is(await client.exists(vertexProgressShardsPath(JOB_ID)), null);
});

test('a format-1 progress node (the previous version) is read on recovery, and rewritten as format 2', async (t) => {
  const client = new FakeZkClient();
  const v1 = {
    formatVersion: 1, jobId: JOB_ID, epoch: 3, updatedAt: 1, restarts: 1,
    restart: { restarts: 1, failureTimes: [1], lastFailureAt: 1, lastBackoffMs: null },
    exceptions: [{ timestamp: 1, exceptionName: 'TaskFailure', stacktrace: 'earlier' }],
    vertices: { a: { attempts: [0, 2], finished: [true, false], deployed: [false, true], taskManagers: ['tm1', 'tm2'] } },
  };
  await client.mkdirp(`/jobs/${JOB_ID}`);
  await client.create(progressPath(JOB_ID), JSON.stringify(v1));
  const store = new ZkProgressStore(client, () => undefined, JOB_ID);
  const loaded = await store.load();
  t.deepEqual(loaded!.vertices.a, v1.vertices.a);
  t.is(loaded!.restarts, 1);
  t.deepEqual(loaded!.exceptions, v1.exceptions);

  await store.save({ ...loaded!, formatVersion: 2, epoch: 4 });
  const rewritten = JSON.parse((await client.get(progressPath(JOB_ID))).data.toString('utf8'));
  t.is(rewritten.formatVersion, 2);
  t.false('vertices' in rewritten);
  const again = await new ZkProgressStore(client, () => undefined, JOB_ID).load();
  t.deepEqual(again!.vertices.a, v1.vertices.a, 'the subtasks now live in their shard');
});

test('writeBounded refuses an oversized payload before anything is sent, naming the node and size', async (t) => {
  const client = new FakeZkClient();
  const err = await t.throwsAsync(writeBounded(client, '/big', 'x'.repeat(ZNODE_WRITE_LIMIT_BYTES + 1), { op: 'create' }), { instanceOf: ZnodeTooLargeError });
  t.regex(err!.message, new RegExp(`znode /big would hold ${ZNODE_WRITE_LIMIT_BYTES + 1} bytes`));
  t.is(client.calls.length, 0);
  t.throws(() => boundedPayload('/p', 'é'.repeat(6), 11), { instanceOf: ZnodeTooLargeError }, 'UTF-8 bytes, not characters, are counted');
  await writeBounded(client, '/small', 'x'.repeat(10), { op: 'create' });
  t.is((await client.get('/small')).data.length, 10);
});

test('job details and the max attempt of 128,000 subtasks do not overflow the stack', (t) => {
  const graph = hugeGraph() as JobGraph;
  for (const v of graph.vertices) v.name = v.id;
  const eg = new ExecutionGraph(graph, { submittedAt: 0, now: () => 0 });
  eg.allExecutions()[127_999].attempt = 3;
  t.is(eg.maxAttempt(), 3);
  t.is(eg.vertexDetails(1).length, 1000);
});

test('a JobMaster whose progress cannot be stored ends FAILED with the reason instead of retrying', async (t) => {
  const graph = parseJobGraph({ jobId: JOB_ID, vertices: [sleepVertex('a', 2)] }, limits);
  const unstorable: ProgressStore = {
    load: async () => null,
    save: async () => { throw new ZnodeTooLargeError(vertexProgressPath(JOB_ID, 'a'), 2_000_000, MAX_PROGRESS_SHARD_BYTES); },
  };
  const deployed: string[] = [];
  const executor: TaskExecutionService = {
    epoch: 1, registerJob: () => () => undefined, expectJob: () => () => undefined, allocate: () => 'tm1', release: () => undefined,
    deploy: async (_tm, req) => { deployed.push(`${req.vertexId}/${req.subtask}`); }, cancel: async () => undefined,
    cancelJob: async () => undefined, describe: (tm) => tm, onResourcesChanged: () => () => undefined,
  };
  const outcomes: TerminalOutcome[] = [];
  const context: JobMasterContext = {
    graph, submittedAt: Date.now(), recovered: false, guard: () => undefined,
    term: { epoch: 1, zkSessionId: 's', latchNode: 'n', grantedAt: Date.now() }, onTerminal: (o) => outcomes.push(o),
  };
  const jm = new SchedulingJobMaster({ context, executor, progress: unstorable, defaultRestartStrategy: { type: 'fixed-delay', attempts: 1000, delayMs: 0 }, reconcileTimeoutMs: 1000 });
  jm.start();
  await eventually('job failed', () => outcomes.length === 1 || undefined, 5000);
  t.is(outcomes[0].status, 'FAILED');
  t.regex(outcomes[0].failure!.message, /state cannot be stored in ZooKeeper: znode .*vertices\/a would hold 2000000 bytes/);
  t.deepEqual(deployed, [], 'nothing ran on progress that was never recorded');
});
