/**
 * ExecutionGraph on its own: the job and task transition tables (illegal transitions are logged and
 * not applied), attempt numbering, scheduling order, and snapshot → restore of stored progress.
 */
import test from 'ava';
import { ExecutionGraph } from '../../src/jobmaster/execution-graph';
import { isLegalJobTransition, isTerminalJobStatus, JOB_TRANSITIONS, TERMINAL_JOB_STATUSES } from '../../src/jobgraph/status';
import type { JobGraph } from '../../src/jobgraph/types';
import type { EventFields, EventLogger } from '../../src/util/logger';

const JOB_ID = 'b'.repeat(32);

/** Two vertices, `load` after `extract`, parallelism 2 and 1. */
const GRAPH: JobGraph = {
  jobId: JOB_ID, name: 'etl',
  vertices: [
    { id: 'load', name: 'load', parallelism: 1, inputs: ['extract'], task: { type: 'sleep', ms: 1 } },
    { id: 'extract', name: 'extract', parallelism: 2, inputs: [], task: { type: 'sleep', ms: 1 } },
  ],
};

class RecordingLogger implements EventLogger {
  readonly events: Array<{ event: string } & EventFields> = [];
  debug(event: string, fields?: EventFields): void { this.events.push({ event, ...fields }); }
  info(event: string, fields?: EventFields): void { this.events.push({ event, ...fields }); }
  warn(event: string, fields?: EventFields): void { this.events.push({ event, ...fields }); }
  error(event: string, fields?: EventFields): void { this.events.push({ event, ...fields }); }
  child(): EventLogger { return this; }
  named(name: string): Array<{ event: string } & EventFields> { return this.events.filter((e) => e.event === name); }
}

function graph(now = 1000): { g: ExecutionGraph; log: RecordingLogger } {
  const log = new RecordingLogger();
  let t = now;
  return { g: new ExecutionGraph(GRAPH, { submittedAt: 500, now: () => t++, logger: log }), log };
}

test('legal job transitions are applied with a timestamp and return the previous status', (t) => {
  const { g } = graph();
  t.is(g.status, 'INITIALIZING');
  t.is(g.timestamps.INITIALIZING, 500);
  t.is(g.transition('CREATED'), 'INITIALIZING');
  t.is(g.transition('RUNNING'), 'CREATED');
  t.is(g.transition('RESTARTING'), 'RUNNING');
  t.is(g.transition('RUNNING'), 'RESTARTING');
  t.is(g.transition('FINISHED'), 'RUNNING');
  t.is(g.status, 'FINISHED');
  t.true(typeof g.timestamps.FINISHED === 'number' && g.timestamps.FINISHED >= 1000);
  t.is(g.transition('FINISHED'), null, 'already there: nothing to do');
});

test('an illegal job transition is logged as job.transition.rejected and never applied', (t) => {
  const { g, log } = graph();
  t.is(g.transition('FINISHED'), null, 'INITIALIZING → FINISHED skips running');
  t.is(g.status, 'INITIALIZING');
  g.transition('CREATED');
  g.transition('RUNNING');
  g.transition('CANCELLING');
  t.is(g.transition('RUNNING'), null, 'a cancel is not undone');
  t.is(g.transition('FAILED'), null, 'CANCELLING ends CANCELED, not FAILED');
  g.transition('CANCELED');
  t.is(g.transition('SUSPENDED'), null, 'nothing follows a terminal status');
  t.is(g.status, 'CANCELED');
  t.deepEqual(log.named('job.transition.rejected').map((e) => [e.from, e.to]),
    [['INITIALIZING', 'FINISHED'], ['CANCELLING', 'RUNNING'], ['CANCELLING', 'FAILED'], ['CANCELED', 'SUSPENDED']]);
  t.true(log.named('job.transition.rejected').every((e) => typeof e.reason === 'string' && (e.reason as string).length > 0));
});

test('the job table: terminal statuses and SUSPENDED are final, every non-terminal status may be suspended', (t) => {
  for (const [from, next] of Object.entries(JOB_TRANSITIONS)) {
    if (TERMINAL_JOB_STATUSES.has(from as never) || from === 'SUSPENDED') t.deepEqual(next, [], `${from} is final`);
    else t.true(isLegalJobTransition(from as never, 'SUSPENDED'), `${from} → SUSPENDED`);
  }
  t.true(isTerminalJobStatus('CANCELED'));
  t.false(isTerminalJobStatus('CANCELLING'));
  t.false(isTerminalJobStatus(undefined));
});

test('task states follow the table; an illegal one is logged as task.transition.rejected and not applied', (t) => {
  const { g, log } = graph();
  const s = g.execution({ vertexId: 'extract', subtask: 1 })!;
  t.is(s.subtaskIndex, 1);
  t.false(g.setTaskState(s, 'CANCELING'), 'CREATED → CANCELING: nothing to cancel');
  t.is(s.state, 'CREATED');
  t.true(g.setTaskState(s, 'SCHEDULED'));
  t.true(g.setTaskState(s, 'DEPLOYING'));
  s.startTime = 10;
  t.true(g.setTaskState(s, 'RUNNING'));
  t.true(g.setTaskState(s, 'FINISHED', { endedAt: 42 }));
  t.is(s.endTime, 42, 'a terminal state takes the report\'s end time');
  t.false(g.setTaskState(s, 'CANCELED'), 'FINISHED is final');
  t.false(g.setTaskState(s, 'CREATED'));
  t.is(s.state, 'FINISHED');
  t.deepEqual(log.named('task.transition.rejected').map((e) => [e.vertexId, e.subtask, e.from, e.to]),
    [['extract', 1, 'CREATED', 'CANCELING'], ['extract', 1, 'FINISHED', 'CANCELED'], ['extract', 1, 'FINISHED', 'CREATED']]);
  t.deepEqual(log.named('task.status').map((e) => e.status), ['SCHEDULED', 'DEPLOYING', 'RUNNING', 'FINISHED']);
});

test('attempt numbering: a new attempt and a restart each add one; ExecutionIds carry the current attempt', (t) => {
  const { g } = graph();
  const s = g.execution({ vertexId: 'extract', subtask: 0 })!;
  t.deepEqual(g.executionId(s), { jobId: JOB_ID, vertexId: 'extract', subtask: 0, attempt: 0 });
  s.taskManager = 'tm-1';
  g.setTaskState(s, 'SCHEDULED');
  s.deployed = true;
  g.startNewAttempt(s); // refused deploy
  t.like(s, { attempt: 1, state: 'CREATED', deployed: false, taskManager: null });
  g.setTaskState(s, 'SCHEDULED');
  g.setTaskState(s, 'DEPLOYING');
  g.setTaskState(s, 'FAILED');
  g.awaitRestart(s);
  t.like(s, { attempt: 2, state: 'FAILED', waitingRestart: true });
  t.deepEqual([...g.schedulable()].map((x) => x.subtaskIndex), [1], 'a subtask waiting out its restart delay is not placed');
  g.endRestartWait(s);
  t.like(s, { attempt: 2, state: 'CREATED', waitingRestart: false, startTime: -1, endTime: -1 });
  t.is(g.executionId(s).attempt, 2);
  t.is(g.maxAttempt(), 2);
  t.is(g.taskName(s), 'extract (1/2)');
});

test('a vertex is schedulable only once all its inputs finished', (t) => {
  const { g } = graph();
  t.deepEqual([...g.schedulable()].map((s) => `${s.jobVertex.spec.id}/${s.subtaskIndex}`), ['extract/0', 'extract/1']);
  for (const s of g.jobVertexSubtasks('extract')) g.markFinished(s, 'tm-1');
  t.deepEqual([...g.schedulable()].map((s) => `${s.jobVertex.spec.id}/${s.subtaskIndex}`), ['load/0']);
  t.false(g.isFinished());
  g.markFinished(g.execution({ vertexId: 'load', subtask: 0 })!, 'tm-2');
  t.true(g.isFinished());
});

test('snapshot → restore: finished stays finished, in-flight attempts are awaited (DEPLOYING, unaccounted), the rest starts over', (t) => {
  const { g } = graph();
  const [e0, e1] = g.jobVertexSubtasks('extract');
  g.markFinished(e0, 'tm-1');
  g.startNewAttempt(e1);
  e1.taskManager = 'tm-2';
  g.setTaskState(e1, 'SCHEDULED');
  e1.deployed = true;
  const snapshot = g.snapshot();
  t.true(e0.endTime > 0, 'a finished subtask has its end time');
  t.deepEqual(snapshot, {
    extract: {
      attempts: [0, 1], finished: [true, false], deployed: [false, true], taskManagers: ['tm-1', 'tm-2'],
      startTimes: [e0.startTime, e1.startTime], endTimes: [e0.endTime, -1],
    },
    load: { attempts: [0], finished: [false], deployed: [false], taskManagers: [null], startTimes: [-1], endTimes: [-1] },
  });

  const { g: restored } = graph();
  restored.restore(JSON.parse(JSON.stringify(snapshot)));
  const [r0, r1] = restored.jobVertexSubtasks('extract');
  t.like(r0, { attempt: 0, state: 'FINISHED', finished: true, deployed: false, unaccounted: false, taskManager: 'tm-1', startTime: e0.startTime, endTime: e0.endTime });
  t.like(r1, { attempt: 1, state: 'DEPLOYING', finished: false, deployed: true, unaccounted: true, taskManager: 'tm-2' });
  t.like(restored.execution({ vertexId: 'load', subtask: 0 }), { attempt: 0, state: 'CREATED', taskManager: null });
  t.deepEqual(restored.snapshot(), snapshot, 'round trip');
  t.deepEqual([...restored.schedulable()], [], 'load waits for extract/1, which is in flight');
});

test('restore keeps what is well-formed and treats the rest as absent', (t) => {
  const { g } = graph();
  g.restore({ extract: { attempts: [3, -1 as number], finished: [false], deployed: [] }, unknown: { attempts: [9], finished: [true], deployed: [] } });
  const [e0, e1] = g.jobVertexSubtasks('extract');
  t.like(e0, { attempt: 3, state: 'CREATED', finished: false });
  t.like(e1, { attempt: 0, state: 'CREATED', finished: false });
  t.like(g.execution({ vertexId: 'load', subtask: 0 }), { attempt: 0, state: 'CREATED' });
  t.is(g.execution({ vertexId: 'unknown', subtask: 0 }), undefined);
});

test('vertex details follow the JobGraph order with Flink\'s aggregate status and task counts', (t) => {
  const { g } = graph();
  const [e0] = g.jobVertexSubtasks('extract');
  g.setTaskState(e0, 'SCHEDULED');
  g.setTaskState(e0, 'DEPLOYING');
  e0.startTime = 100;
  g.setTaskState(e0, 'RUNNING');
  const details = g.vertexDetails(150);
  t.deepEqual(details.map((v) => v.id), ['load', 'extract']);
  t.like(details[1], { status: 'RUNNING', tasks: { RUNNING: 1, CREATED: 1 }, 'start-time': 100, 'end-time': -1, duration: 50 });
  t.like(details[1].subtasks[0], { subtask: 0, status: 'RUNNING', attempt: 0, duration: 50 });
  t.is(details[1].subtasks[0].log, undefined, 'log URLs are the REST layer\'s');
});
