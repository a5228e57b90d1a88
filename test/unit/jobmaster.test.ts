/**
 * SchedulingJobMaster against a fake TaskExecutionService, an in-memory progress store and a fake
 * clock: scheduling order, every restart strategy end to end, TaskManager loss, recovery and cancel.
 */
import test from 'ava';
import { SchedulingJobMaster } from '../../src/jobmaster/job-master';
import type { JobProgress, ProgressStore } from '../../src/store/progress-store';
import type { JobMasterContext, TerminalOutcome } from '../../src/jobmaster/types';
import type { JobGraph, RestartStrategyConfig } from '../../src/jobgraph/types';
import { DeployRefusedError, type JobTaskListener, type TaskExecutionService } from '../../src/resources/resource-manager';
import { executionKey, ExecutionId, DeployRequest, ReportedState } from '../../src/taskmanager/protocol';
import { NotLeaderError } from '../../src/http/errors';
import { FakeClock, settle } from '../helpers/fake-clock';

const JOB_ID = 'a'.repeat(32);

class FakeExecutor implements TaskExecutionService {
  readonly epoch = 7;
  listener: JobTaskListener | null = null;
  readonly deploys: Array<{ tm: string; req: Omit<DeployRequest, 'epoch'> }> = [];
  readonly canceledJobs: string[] = [];
  private readonly slots = new Map<string, Set<string>>();
  private readonly changed = new Set<() => void>();

  constructor(tms: Record<string, number>) {
    for (const id of Object.keys(tms)) this.slots.set(id, new Set());
    this.capacity = tms;
  }
  private readonly capacity: Record<string, number>;

  registerJob(_jobId: string, listener: JobTaskListener): () => void {
    this.listener = listener;
    return () => { this.listener = null; };
  }
  expectJob(): () => void { return () => undefined; }
  allocate(id: ExecutionId): string | null {
    for (const [tm, used] of this.slots) {
      if (used.size < this.capacity[tm]) {
        used.add(executionKey(id));
        return tm;
      }
    }
    return null;
  }
  release(tm: string, id: ExecutionId): void {
    if (this.slots.get(tm)?.delete(executionKey(id))) this.changed.forEach((f) => f());
  }
  /** Deploys these TaskManagers answer "ran nothing" to (once each), or fail in transport. */
  readonly refuseNext = new Set<string>();
  readonly breakNext = new Set<string>();
  async deploy(tm: string, req: Omit<DeployRequest, 'epoch'>): Promise<void> {
    if (this.refuseNext.delete(tm)) throw new DeployRefusedError(`TaskManager ${tm} refused the deploy without running it: 503`);
    if (this.breakNext.delete(tm)) throw new Error(`${tm}: ECONNRESET`);
    this.deploys.push({ tm, req });
  }
  async cancel(): Promise<void> {}
  async cancelJob(jobId: string): Promise<void> {
    this.canceledJobs.push(jobId);
  }
  describe(tm: string): string { return `${tm} (fake)`; }
  onResourcesChanged(listener: () => void): () => void {
    this.changed.add(listener);
    return () => this.changed.delete(listener);
  }

  /** A TaskManager's report; a terminal one frees the slot like the ResourceManager does. */
  async report(tm: string, id: ExecutionId, state: ReportedState, error?: string): Promise<'ok' | 'cancel'> {
    if (state === 'FINISHED' || state === 'FAILED' || state === 'CANCELED') this.slots.get(tm)?.delete(executionKey(id));
    const verdict = await this.listener!.onReport(tm, { ...id, state, error, startedAt: 1, endedAt: 2 });
    this.changed.forEach((f) => f());
    await settle();
    return verdict;
  }
  lose(tm: string, cause = `TaskManager ${tm} lost: no heartbeat`): void {
    const ids = [...(this.slots.get(tm) ?? [])].map((k) => {
      const [jobId, vertexId, subtask, attempt] = k.split('/');
      return { jobId, vertexId, subtask: Number(subtask), attempt: Number(attempt) };
    });
    this.slots.delete(tm);
    this.listener!.onTaskManagerLost(tm, ids, cause);
  }
  /** Deploys of the given vertex, as "subtask@attempt on tm". */
  deployed(vertexId: string): string[] {
    return this.deploys.filter((d) => d.req.vertexId === vertexId).map((d) => `${d.req.subtask}@${d.req.attempt} on ${d.tm}`);
  }
  idOf(vertexId: string, subtask: number): ExecutionId {
    const d = [...this.deploys].reverse().find((x) => x.req.vertexId === vertexId && x.req.subtask === subtask)!;
    return { jobId: d.req.jobId, vertexId, subtask, attempt: d.req.attempt };
  }
  tmOf(vertexId: string, subtask: number): string {
    return [...this.deploys].reverse().find((x) => x.req.vertexId === vertexId && x.req.subtask === subtask)!.tm;
  }
}

class MemoryProgress implements ProgressStore {
  saved: JobProgress | null = null;
  writes = 0;
  constructor(initial: JobProgress | null = null) { this.saved = initial; }
  async load(): Promise<JobProgress | null> { return this.saved ? JSON.parse(JSON.stringify(this.saved)) : null; }
  async save(p: JobProgress): Promise<void> { this.writes++; this.saved = JSON.parse(JSON.stringify(p)); }
}

function graph(restartStrategy?: RestartStrategyConfig): JobGraph {
  return {
    jobId: JOB_ID, name: 'unit',
    vertices: [
      { id: 'a', name: 'a', parallelism: 2, inputs: [], task: { type: 'sleep', ms: 1 } },
      { id: 'b', name: 'b', parallelism: 1, inputs: ['a'], task: { type: 'sleep', ms: 1 } },
    ],
    ...(restartStrategy ? { restartStrategy } : {}),
  };
}

function setup(options: { strategy?: RestartStrategyConfig; tms?: Record<string, number>; recovered?: boolean; progress?: JobProgress | null; leader?: () => boolean } = {}) {
  const clock = new FakeClock();
  const executor = new FakeExecutor(options.tms ?? { tm1: 2, tm2: 2 });
  const progress = new MemoryProgress(options.progress ?? null);
  const outcomes: TerminalOutcome[] = [];
  const context: JobMasterContext = {
    graph: graph(options.strategy), submittedAt: clock.now(), recovered: options.recovered ?? false,
    term: { epoch: 7, zkSessionId: 's', latchNode: 'n', grantedAt: clock.now() },
    guard: () => { if (options.leader && !options.leader()) throw new NotLeaderError(); },
    onTerminal: (o) => outcomes.push(o),
  };
  const jm = new SchedulingJobMaster({
    context, executor, progress, clock, reconcileTimeoutMs: 5000, defaultRestartStrategy: { type: 'none' },
  });
  return { clock, executor, progress, outcomes, jm };
}

async function finishVertex(executor: FakeExecutor, vertexId: string, parallelism: number): Promise<void> {
  for (let i = 0; i < parallelism; i++) await executor.report(executor.tmOf(vertexId, i), executor.idOf(vertexId, i), 'FINISHED');
}

test('a vertex is deployed only when all its inputs finished; the job finishes with progress persisted first', async (t) => {
  const { executor, progress, outcomes, jm } = setup();
  jm.start();
  await settle();
  t.is(jm.status, 'RUNNING');
  t.deepEqual(executor.deployed('a').sort(), ['0@0 on tm1', '1@0 on tm1']);
  t.deepEqual(executor.deployed('b'), []);
  t.true(progress.saved!.vertices.a.deployed.every(Boolean), 'attempts are durable before deployment');

  await executor.report('tm1', executor.idOf('a', 0), 'RUNNING');
  t.is(jm.details().vertices[0].subtasks[0].status, 'RUNNING');
  await executor.report('tm1', executor.idOf('a', 0), 'FINISHED');
  t.deepEqual(executor.deployed('b'), [], 'b waits for every subtask of a');
  t.deepEqual(progress.saved!.vertices.a.finished, [true, false], 'a finished subtask is durable before its report is acknowledged');
  await executor.report('tm1', executor.idOf('a', 1), 'FINISHED');
  t.is(executor.deployed('b').length, 1);
  await finishVertex(executor, 'b', 1);
  t.is(jm.status, 'FINISHED');
  t.is(outcomes.length, 1);
  t.is(outcomes[0].status, 'FINISHED');
  t.deepEqual(outcomes[0].details.vertices.map((v) => v.status), ['FINISHED', 'FINISHED']);
});

test('waits for a free slot instead of failing when the cluster is full', async (t) => {
  const { executor, jm } = setup({ tms: { tm1: 1 } });
  jm.start();
  await settle();
  t.is(executor.deploys.length, 1);
  t.is(jm.details().vertices[0].subtasks[1].status, 'CREATED');
  await executor.report('tm1', executor.idOf('a', 0), 'FINISHED');
  t.deepEqual(executor.deployed('a'), ['0@0 on tm1', '1@0 on tm1']);
});

test('fixed-delay: failed subtasks restart alone after the delay with attempt + 1; exhausted attempts fail the job with the cause', async (t) => {
  const { clock, executor, outcomes, jm } = setup({ strategy: { type: 'fixed-delay', attempts: 2, delayMs: 1000 } });
  jm.start();
  await settle();
  await executor.report('tm1', executor.idOf('a', 1), 'FINISHED');
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'boom 1');
  t.is(jm.status, 'RESTARTING');
  await clock.advance(999);
  t.deepEqual(executor.deployed('a'), ['0@0 on tm1', '1@0 on tm1'], 'nothing before the delay');
  await clock.advance(1);
  t.is(jm.status, 'RUNNING');
  t.deepEqual(executor.deployed('a'), ['0@0 on tm1', '1@0 on tm1', '0@1 on tm1'], 'only the failed subtask runs again');

  t.is(await executor.report('tm1', { ...executor.idOf('a', 0), attempt: 0 }, 'RUNNING'), 'cancel', 'a late report of the failed attempt is stale');
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'boom 2');
  await clock.advance(1000);
  t.is(executor.idOf('a', 0).attempt, 2);
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'boom 3');
  await settle();
  t.is(jm.status, 'FAILED');
  t.is(outcomes[0].status, 'FAILED');
  t.regex(outcomes[0].failure!.message, /boom 3.*fixed-delay.*2 restart attempts/);
  t.is(outcomes[0].details.restarts, 2);
  t.deepEqual(jm.exceptions().map((e) => e.exceptionName), ['TaskFailure', 'TaskFailure', 'TaskFailure']);
  t.deepEqual(executor.canceledJobs, [JOB_ID], 'FAILING stops every remaining task');
});

test('none: the first failure fails the job', async (t) => {
  const { executor, outcomes, jm } = setup({ strategy: { type: 'none' } });
  jm.start();
  await settle();
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'exit 3');
  await settle();
  t.is(outcomes[0]?.status, 'FAILED');
  t.regex(outcomes[0].failure!.message, /exit 3.*"none"/);
});

test('a deploy the TaskManager refused (it ran nothing) is placed again as a new attempt without counting as a failure', async (t) => {
  const { executor, outcomes, jm } = setup({ strategy: { type: 'none' } });
  executor.refuseNext.add('tm1');
  jm.start();
  await settle();
  t.is(jm.status, 'RUNNING', 'restart strategy "none" would have failed the job on a counted failure');
  t.deepEqual(executor.deployed('a').sort(), ['0@1 on tm1', '1@0 on tm1'], 'the refused subtask went out again as attempt 1');
  t.is(jm.details().restarts, 0);
  t.deepEqual(jm.exceptions(), [], 'no failure in the history');
  await finishVertex(executor, 'a', 2);
  await finishVertex(executor, 'b', 1);
  t.is(outcomes[0]?.status, 'FINISHED');

  // A deploy that failed in transport may or may not have run: that one is a failure.
  const second = setup({ strategy: { type: 'none' } });
  second.executor.breakNext.add('tm1');
  second.jm.start();
  await settle();
  t.is(second.outcomes[0]?.status, 'FAILED');
  t.regex(second.outcomes[0].failure!.message, /ECONNRESET/);
});

test('exponential-delay: the delays grow by the multiplier up to the maximum, then attempts run out', async (t) => {
  const { clock, executor, outcomes, jm } = setup({ strategy: { type: 'exponential-delay', initialBackoffMs: 100, maxBackoffMs: 300, backoffMultiplier: 2, attempts: 3 } });
  jm.start();
  await settle();
  const observed: number[] = [];
  for (let i = 0; i < 3; i++) {
    await executor.report('tm1', executor.idOf('a', 0), 'FAILED', `boom ${i}`);
    observed.push(clock.pending[0]);
    await clock.advance(clock.pending[0]);
  }
  t.deepEqual(observed, [100, 200, 300]);
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'last');
  await settle();
  t.is(outcomes[0]?.status, 'FAILED');
  t.regex(outcomes[0].failure!.message, /exponential-delay.*3 restart attempts/);
});

test('failure-rate: restarts while the rate holds, fails once it is exceeded', async (t) => {
  const { clock, executor, outcomes, jm } = setup({ strategy: { type: 'failure-rate', maxFailuresPerInterval: 2, failureRateIntervalMs: 10_000, delayMs: 10 } });
  jm.start();
  await settle();
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'one');
  await clock.advance(10);
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'two');
  await clock.advance(10_000); // both earlier failures leave the window
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'three');
  await clock.advance(10);
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'four');
  await clock.advance(10);
  t.is(jm.status, 'RUNNING');
  t.is(executor.idOf('a', 0).attempt, 4);
  await executor.report('tm1', executor.idOf('a', 0), 'FAILED', 'five');
  await settle();
  t.is(outcomes[0]?.status, 'FAILED');
  t.regex(outcomes[0].failure!.message, /five.*failure-rate.*3 failures within 10000 ms/);
});

test('a lost TaskManager is one failure event: all its subtasks restart elsewhere, the history names it', async (t) => {
  const { clock, executor, jm } = setup({ strategy: { type: 'fixed-delay', attempts: 1, delayMs: 50 }, tms: { tm1: 2, tm2: 2 } });
  jm.start();
  await settle();
  t.deepEqual(executor.deployed('a'), ['0@0 on tm1', '1@0 on tm1']);
  executor.lose('tm1');
  await clock.advance(50);
  t.deepEqual(executor.deployed('a').slice(2).sort(), ['0@1 on tm2', '1@1 on tm2']);
  t.is(jm.details().restarts, 1);
  const [entry] = jm.exceptions();
  t.is(entry.exceptionName, 'TaskManagerLost');
  t.regex(entry.stacktrace, /TaskManager tm1 lost/);
  t.is(entry.location, 'tm1 (fake)');
  t.is(jm.status, 'RUNNING');
});

test('recovery: reported tasks of the current attempt are adopted, finished work is not repeated, unreported ones run again after the reconcile timeout', async (t) => {
  const progress: JobProgress = {
    formatVersion: 1, jobId: JOB_ID, epoch: 6, updatedAt: 0, restarts: 1,
    restart: { restarts: 1, failureTimes: [], lastFailureAt: 0, lastBackoffMs: null },
    exceptions: [{ timestamp: 0, exceptionName: 'TaskFailure', stacktrace: 'earlier' }],
    vertices: {
      a: { attempts: [0, 1], finished: [true, false], deployed: [false, true] },
      b: { attempts: [0], finished: [false], deployed: [false] },
    },
  };
  const { executor, outcomes, jm } = setup({ recovered: true, progress, strategy: { type: 'fixed-delay', attempts: 1, delayMs: 0 } });
  jm.start();
  await settle();
  t.is(jm.status, 'RECONCILING');
  t.deepEqual(executor.deploys, []);
  t.is(jm.details().restarts, 1);
  t.is(jm.exceptions().length, 1);

  // A stale attempt is refused, the current one adopted (never deployed again).
  t.is(await executor.report('tm2', { jobId: JOB_ID, vertexId: 'a', subtask: 1, attempt: 0 }, 'RUNNING'), 'cancel');
  t.is(await executor.report('tm2', { jobId: JOB_ID, vertexId: 'a', subtask: 1, attempt: 1 }, 'RUNNING'), 'ok');
  t.is(jm.status, 'RUNNING', 'every in-flight subtask is accounted for');
  t.deepEqual(executor.deploys, []);
  t.like(jm.details().vertices[0].subtasks[1], { status: 'RUNNING', attempt: 1, taskmanager: 'tm2' });
  t.is(await executor.report('tm2', { jobId: JOB_ID, vertexId: 'a', subtask: 0, attempt: 0 }, 'RUNNING'), 'cancel', 'finished subtasks never run again');

  await executor.report('tm2', { jobId: JOB_ID, vertexId: 'a', subtask: 1, attempt: 1 }, 'FINISHED');
  t.deepEqual(executor.deployed('a'), []);
  t.is(executor.deployed('b').length, 1);
  await finishVertex(executor, 'b', 1);
  t.is(outcomes[0]?.status, 'FINISHED');
});

test('recovery: an in-flight subtask nobody reports is redeployed as a new attempt after jobmanager.reconcile-timeout', async (t) => {
  const progress: JobProgress = {
    formatVersion: 1, jobId: JOB_ID, epoch: 6, updatedAt: 0, restarts: 0, restart: { restarts: 0, failureTimes: [], lastFailureAt: null, lastBackoffMs: null }, exceptions: [],
    vertices: { a: { attempts: [0, 0], finished: [true, false], deployed: [false, true] }, b: { attempts: [0], finished: [false], deployed: [false] } },
  };
  const { clock, executor, jm } = setup({ recovered: true, progress });
  jm.start();
  await settle();
  await clock.advance(4999);
  t.is(jm.status, 'RECONCILING');
  await clock.advance(1);
  t.is(jm.status, 'RUNNING');
  t.deepEqual(executor.deployed('a'), ['1@1 on tm1']);
  t.is(jm.exceptions()[0].exceptionName, 'TaskNotReconciled');
  t.is(await executor.report('tm1', { jobId: JOB_ID, vertexId: 'a', subtask: 1, attempt: 0 }, 'RUNNING'), 'cancel', 'the old attempt, should it turn up, is stopped');
});

test('cancel stops every task of the job and ends CANCELED; later reports are told to stop', async (t) => {
  const { executor, outcomes, jm } = setup();
  jm.start();
  await settle();
  await executor.report('tm1', executor.idOf('a', 0), 'RUNNING');
  jm.cancel();
  t.is(jm.status, 'CANCELLING');
  await settle();
  t.deepEqual(executor.canceledJobs, [JOB_ID]);
  t.is(jm.status, 'CANCELED');
  t.is(outcomes.length, 1);
  t.is(outcomes[0].status, 'CANCELED');
  t.false(jm.owns(executor.idOf('a', 0)));
});

test('suspend leaves tasks alone and stops acting; a lost term is never reported as a task failure', async (t) => {
  let leader = true;
  const { clock, executor, outcomes, jm } = setup({ strategy: { type: 'fixed-delay', attempts: 5, delayMs: 10 }, leader: () => leader });
  jm.start();
  await settle();
  leader = false;
  await jm.suspend();
  t.is(jm.status, 'SUSPENDED');
  await clock.advance(1000);
  t.deepEqual(executor.canceledJobs, []);
  t.is(outcomes.length, 0);
  t.is(executor.listener, null, 'unregistered from the ResourceManager');
});

test('cancel while reconciling waits (up to the reconcile timeout) for TaskManagers to re-register, and has their tasks stopped', async (t) => {
  const progress: JobProgress = {
    formatVersion: 1, jobId: JOB_ID, epoch: 6, updatedAt: 0, restarts: 0, restart: { restarts: 0, failureTimes: [], lastFailureAt: null, lastBackoffMs: null }, exceptions: [],
    vertices: { a: { attempts: [0, 0], finished: [false, false], deployed: [true, true] }, b: { attempts: [0], finished: [false], deployed: [false] } },
  };
  const { clock, executor, outcomes, jm } = setup({ recovered: true, progress });
  jm.start();
  await settle();
  jm.cancel();
  await clock.advance(1000);
  t.deepEqual(executor.canceledJobs, [], 'still waiting for the in-flight subtasks');
  t.is(await executor.report('tm1', { jobId: JOB_ID, vertexId: 'a', subtask: 0, attempt: 0 }, 'RUNNING'), 'cancel');
  await clock.advance(100);
  t.deepEqual(executor.canceledJobs, [], 'one subtask is still unaccounted');
  t.is(await executor.report('tm2', { jobId: JOB_ID, vertexId: 'a', subtask: 1, attempt: 0 }, 'RUNNING'), 'cancel');
  await clock.advance(100);
  t.deepEqual(executor.canceledJobs, [JOB_ID]);
  t.is(outcomes[0]?.status, 'CANCELED');
});

test('cancel while reconciling gives up waiting at the reconcile timeout', async (t) => {
  const progress: JobProgress = {
    formatVersion: 1, jobId: JOB_ID, epoch: 6, updatedAt: 0, restarts: 0, restart: { restarts: 0, failureTimes: [], lastFailureAt: null, lastBackoffMs: null }, exceptions: [],
    vertices: { a: { attempts: [0, 0], finished: [false, false], deployed: [true, false] }, b: { attempts: [0], finished: [false], deployed: [false] } },
  };
  const { clock, executor, outcomes, jm } = setup({ recovered: true, progress });
  jm.start();
  await settle();
  jm.cancel();
  await clock.advance(4900);
  t.is(outcomes.length, 0);
  await clock.advance(200);
  t.deepEqual(executor.canceledJobs, [JOB_ID]);
  t.is(outcomes[0]?.status, 'CANCELED');
});
