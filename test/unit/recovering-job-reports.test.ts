/**
 * Reports of a recovering job (its JobMaster not registered yet) are kept by the ResourceManager,
 * not answered "cancel", and handed to the JobMaster when it registers, which adopts the running task
 * instead of running it again. Bounded: the oldest kept report is dropped first.
 */
import test from 'ava';
import { ResourceManager } from '../../src/resources/resource-manager';
import { PendingReports } from '../../src/resources/pending-reports';
import { spreadStrategy } from '../../src/resources/allocation';
import { SchedulingJobMaster } from '../../src/jobmaster/job-master';
import type { JobMasterContext, TerminalOutcome } from '../../src/jobmaster/types';
import type { JobProgress, ProgressStore } from '../../src/store/progress-store';
import type { ExecutionId, TaskReport } from '../../src/taskmanager/protocol';
import { FakeClock, settle } from '../helpers/fake-clock';
import { RecordingLogger } from '../helpers/fake-rest-deps';
import { eventually } from '../helpers/ensemble';

const JOB = 'c'.repeat(32);
const OTHER = 'd'.repeat(32);
const exec = (jobId: string, vertexId: string, subtask: number, attempt = 0): ExecutionId => ({ jobId, vertexId, subtask, attempt });
const report = (e: ExecutionId, state: TaskReport['state']): TaskReport => ({ ...e, state, startedAt: 1000, endedAt: state === 'RUNNING' ? undefined : 3000 });
const key = (e: ExecutionId): string => `${e.jobId}/${e.vertexId}/${e.subtask}/${e.attempt}`;

function rm(clock: FakeClock, logger = new RecordingLogger()): ResourceManager {
  const r = new ResourceManager({ epoch: 5, heartbeatTimeoutMs: 60_000, clock, strategy: spreadStrategy, logger });
  r.start();
  return r;
}

/** A progress store whose load waits until `release()`: the JobMaster is still starting meanwhile. */
class HeldProgress implements ProgressStore {
  private open!: () => void;
  private readonly gate = new Promise<void>((resolve) => { this.open = resolve; });
  loads = 0;
  saved: JobProgress | null;
  constructor(initial: JobProgress) { this.saved = initial; }
  release(): void { this.open(); }
  async load(): Promise<JobProgress | null> {
    this.loads++;
    await this.gate;
    return JSON.parse(JSON.stringify(this.saved));
  }
  async save(p: JobProgress): Promise<void> { this.saved = JSON.parse(JSON.stringify(p)); }
}

test('an expected job\'s reports are kept: a running task is not canceled (registration or heartbeat), an outcome not acknowledged', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  r.expectJob(JOB);
  const running = exec(JOB, 'v', 0);
  const finished = exec(JOB, 'v', 1);
  const stray = exec(OTHER, 'v', 0);
  const answer = await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 4, epoch: 5,
    tasks: [report(running, 'RUNNING'), report(finished, 'FINISHED'), report(stray, 'RUNNING')] });
  t.deepEqual(answer.cancel, [key(stray)], 'only the task of a job nobody expects is canceled');
  t.deepEqual(answer.acknowledged, [], 'the outcome is not noted by any JobMaster yet: the TaskManager keeps it');
  t.deepEqual(r.heartbeat('tm1', { epoch: 5, running: [key(running), key(stray)] }).cancel, [key(stray)]);
  t.is(r.get('tm1')!.freeSlots, 2, 'the kept running task holds its slot');

  const heard: Array<[string, TaskReport]> = [];
  r.registerJob(JOB, { onReport: async (tm, rep) => { heard.push([tm, rep]); return 'ok'; }, owns: () => true, onTaskManagerLost: () => undefined });
  t.deepEqual(heard, [], 'delivered after registerJob returns');
  await settle();
  t.deepEqual(heard.map(([tm, rep]) => `${tm}:${key(rep)}:${rep.state}`).sort(), [`tm1:${key(running)}:RUNNING`, `tm1:${key(finished)}:FINISHED`]);
});

test('giving up an expected job drops its kept reports; its running tasks are then told to cancel', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  const giveUp = r.expectJob(JOB);
  const running = exec(JOB, 'v', 0);
  t.deepEqual((await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 5, tasks: [report(running, 'RUNNING')] })).cancel, []);
  giveUp();
  t.deepEqual(r.heartbeat('tm1', { epoch: 5, running: [key(running)] }).cancel, [key(running)]);
  const heard: TaskReport[] = [];
  r.registerJob(JOB, { onReport: async (_tm, rep) => { heard.push(rep); return 'ok'; }, owns: () => true, onTaskManagerLost: () => undefined });
  await settle();
  t.deepEqual(heard, []);
});

test('a kept running report of a TaskManager lost meanwhile is not handed over (its task is gone)', async (t) => {
  const clock = new FakeClock();
  const r = rm(clock);
  r.expectJob(JOB);
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 5, instanceId: 'a', tasks: [report(exec(JOB, 'v', 0), 'RUNNING')] });
  // The same TaskManager id as a new process: whatever the old one ran is gone.
  await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 2, epoch: 5, instanceId: 'b', tasks: [] });
  const heard: TaskReport[] = [];
  r.registerJob(JOB, { onReport: async (_tm, rep) => { heard.push(rep); return 'ok'; }, owns: () => true, onTaskManagerLost: () => undefined });
  await settle();
  t.deepEqual(heard, []);
});

test('kept reports are bounded per job and in total; the oldest is dropped first, with an event', (t) => {
  const dropped: string[] = [];
  const buffer = new PendingReports({ perJob: 2, total: 3 }, ({ report: rep }, reason) => dropped.push(`${key(rep)} (${reason})`));
  buffer.expect(JOB);
  buffer.expect(OTHER);
  buffer.keep('tm1', report(exec(JOB, 'v', 0), 'RUNNING'));
  buffer.keep('tm1', report(exec(JOB, 'v', 1), 'RUNNING'));
  buffer.keep('tm1', report(exec(JOB, 'v', 0), 'FINISHED')); // the same execution again: replaces, no drop
  t.deepEqual(dropped, []);
  buffer.keep('tm1', report(exec(JOB, 'v', 2), 'RUNNING'));
  t.deepEqual(dropped, [`${key(exec(JOB, 'v', 1))} (job limit)`]);
  buffer.keep('tm1', report(exec(OTHER, 'v', 0), 'RUNNING'));
  buffer.keep('tm2', report(exec(OTHER, 'v', 0), 'RUNNING'));
  t.deepEqual(dropped.slice(1), [`${key(exec(JOB, 'v', 0))} (total limit)`]);
  t.is(buffer.size, 3);
  t.deepEqual(buffer.take(JOB).map((k) => `${k.taskManagerId}:${key(k.report)}:${k.report.state}`), [`tm1:${key(exec(JOB, 'v', 2))}:RUNNING`]);
  t.false(buffer.isExpected(JOB));
  buffer.keep('tm1', report(exec(JOB, 'v', 3), 'RUNNING'));
  t.is(buffer.size, 2, 'a job no longer expected keeps nothing');
});

test('a recovered JobMaster still starting receives its TaskManager\'s report on registration and adopts the task (no second start)', async (t) => {
  const clock = new FakeClock();
  const logger = new RecordingLogger();
  const r = rm(clock, logger);
  const progress = new HeldProgress({
    formatVersion: 2, jobId: JOB, epoch: 4, updatedAt: 0, restarts: 0, exceptions: [],
    restart: { restarts: 0, failureTimes: [], lastFailureAt: null, lastBackoffMs: null },
    vertices: { v: { attempts: [0], finished: [false], deployed: [true] } },
  });
  const outcomes: TerminalOutcome[] = [];
  const context: JobMasterContext = {
    graph: { jobId: JOB, name: 'adopt', vertices: [{ id: 'v', name: 'v', parallelism: 1, inputs: [], task: { type: 'sleep', ms: 1 } }] },
    term: { epoch: 5, zkSessionId: 's', latchNode: 'n', grantedAt: 0 }, guard: () => undefined, submittedAt: 0, recovered: true,
    onTerminal: (o) => outcomes.push(o),
  };
  const jm = new SchedulingJobMaster({ context, executor: r, progress, clock, reconcileTimeoutMs: 60_000, defaultRestartStrategy: { type: 'none' } });
  const task = exec(JOB, 'v', 0);
  // The leader is published; the TaskManager registers before this job's turn in the recovery pool.
  const answer = await r.register({ taskManagerId: 'tm1', host: 'h', address: 'http://127.0.0.1:1', slots: 1, epoch: 5, tasks: [report(task, 'RUNNING')] });
  t.deepEqual(answer.cancel, []);

  const started = jm.start();
  t.is(jm.status, 'INITIALIZING', 'still loading its progress');
  progress.release();
  await started;
  await eventually('the reported task is adopted', () => jm.status === 'RUNNING');
  t.like(jm.details().vertices[0].subtasks[0], { status: 'RUNNING', attempt: 0, taskmanager: 'tm1' });
  t.falsy(logger.events.find((e) => e.event === 'job.reconciled' && e.fields.redeploy !== 0), 'nothing redeployed');

  const status = await r.status({ taskManagerId: 'tm1', epoch: 5, reports: [report(task, 'FINISHED')] });
  t.deepEqual(status.acknowledged, [key(task)]);
  await eventually('the job finishes', () => outcomes.length === 1);
  t.is(outcomes[0].status, 'FINISHED');
  t.is(jm.details().attempt, 0, 'the task ran once: attempt 0 was never replaced');
});
