import test from 'ava';
import { isProcessAlive as isAlive } from '../../src/util/process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTask, TaskContext, TaskOutcome, TaskSpec } from '../../src/taskmanager/task-runner';
import { eventually } from '../helpers/ensemble';

function context(overrides: Partial<TaskContext> = {}): TaskContext {
  return {
    jobId: crypto.randomBytes(16).toString('hex'),
    vertexId: 'extract',
    subtaskIndex: 2,
    parallelism: 4,
    attempt: 1,
    logDir: fs.mkdtempSync(path.join(os.tmpdir(), 'ha-task-')),
    ...overrides,
  };
}

function node(script: string, extra: Partial<Extract<TaskSpec, { type: 'command' }>> = {}): TaskSpec {
  return { type: 'command', argv: [process.execPath, '-e', script], ...extra };
}


test('a command that exits 0 finishes, sees its env and logs stdout and stderr to one file', async (t) => {
  const ctx = context();
  const script = `
    const keys = ['JOB_ID', 'VERTEX_ID', 'SUBTASK_INDEX', 'PARALLELISM', 'ATTEMPT', 'DAY', 'PATH'];
    console.log(JSON.stringify(Object.fromEntries(keys.map((k) => [k, process.env[k]]))));
    console.error('to stderr');`;
  const task = startTask(node(script, { env: { DAY: '2026-11-20', JOB_ID: 'not-overridable' } }), ctx);
  const running = new Promise<number | null>((resolve) => task.once('running', resolve));
  t.deepEqual(await task.done, { state: 'FINISHED' });
  t.is(await running, task.pid);
  t.true(typeof task.pid === 'number' && task.pid > 0);

  t.is(task.logFile, path.join(ctx.logDir, ctx.jobId, 'extract-2-1.log'));
  const [envLine, stderrLine] = fs.readFileSync(task.logFile, 'utf8').trim().split('\n');
  t.deepEqual(JSON.parse(envLine), {
    JOB_ID: ctx.jobId,
    VERTEX_ID: 'extract',
    SUBTASK_INDEX: '2',
    PARALLELISM: '4',
    ATTEMPT: '1',
    DAY: '2026-11-20',
    PATH: process.env.PATH,
  });
  t.is(stderrLine, 'to stderr');
});

test('a non-zero exit fails with the code and the last output line', async (t) => {
  const task = startTask(node(`console.log('working'); console.error('boom: disk full'); process.exit(3)`), context());
  const outcome = await task.done;
  t.is(outcome.state, 'FAILED');
  t.regex((outcome as { error: string }).error, /exited with code 3; last output: boom: disk full/);
});

test('death by signal fails naming the signal', async (t) => {
  const task = startTask(node(`process.kill(process.pid, 'SIGKILL')`), context());
  const outcome = await task.done;
  t.is(outcome.state, 'FAILED');
  t.regex((outcome as { error: string }).error, /killed by signal SIGKILL/);
});

test('a command past its timeout is killed and fails', async (t) => {
  const task = startTask(node(`setInterval(() => {}, 1000)`, { timeoutMs: 200 }), context(), { killGraceMs: 2000 });
  t.deepEqual(await task.done, { state: 'FAILED', error: 'timed out after 200 ms' });
  t.false(isAlive(task.pid!));
});

test('a missing program fails without throwing', async (t) => {
  const ctx = context();
  const task = startTask({ type: 'command', argv: ['/nonexistent/definitely-not-a-program'] }, ctx);
  const outcome = await task.done;
  t.is(outcome.state, 'FAILED');
  t.regex((outcome as { error: string }).error, /ENOENT.*program not found/);
  t.is(task.pid, null);
  t.deepEqual(await task.cancel(), outcome);
});

test('an empty argv or an unknown type fails without throwing', async (t) => {
  const empty = await startTask({ type: 'command', argv: [] }, context()).done;
  t.is(empty.state, 'FAILED');
  const unknown = await startTask({ type: 'teleport' } as unknown as TaskSpec, context()).done;
  t.deepEqual(unknown, { state: 'FAILED', error: 'unknown task type "teleport"' });
});

test('cancel kills the command and the children it started', async (t) => {
  const ctx = context();
  const pidFile = path.join(ctx.logDir, 'grandchild.pid');
  const script = `
    const { spawn } = require('node:child_process');
    const grandchild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(grandchild.pid));
    setInterval(() => {}, 1000);`;
  const task = startTask(node(script), ctx, { killGraceMs: 2000 });
  const grandchildPid = await eventually('grandchild pid written', () => {
    const text = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8') : '';
    return text ? Number(text) : 0;
  }, 10000);
  t.true(isAlive(grandchildPid));

  const outcomes: TaskOutcome[] = [];
  task.on('done', (o) => outcomes.push(o));
  t.deepEqual(await task.cancel(), { state: 'CANCELED' });
  t.false(isAlive(task.pid!));
  await eventually('grandchild gone', () => !isAlive(grandchildPid), 10000);
  t.deepEqual(await task.done, { state: 'CANCELED' });
  t.deepEqual(await task.cancel(), { state: 'CANCELED' });
  await eventually('done emitted', () => outcomes.length > 0, 5000);
  t.deepEqual(outcomes, [{ state: 'CANCELED' }]);
});

test('a command ignoring SIGTERM is killed after the grace period', async (t) => {
  const ctx = context();
  const readyFile = path.join(ctx.logDir, 'ready');
  const script = `process.on('SIGTERM', () => {}); require('node:fs').writeFileSync(${JSON.stringify(readyFile)}, 'x'); setInterval(() => {}, 1000);`;
  const task = startTask(node(script), ctx, { killGraceMs: 300 });
  await eventually('SIGTERM handler installed', () => fs.existsSync(readyFile), 10000);
  t.deepEqual(await task.cancel(), { state: 'CANCELED' });
  t.false(isAlive(task.pid!));
});

test('sleep finishes, and cancel after completion keeps the outcome', async (t) => {
  const task = startTask({ type: 'sleep', ms: 20 }, context());
  const events: string[] = [];
  task.on('running', () => events.push('running'));
  task.on('done', (o: TaskOutcome) => events.push(o.state));
  t.deepEqual(await task.done, { state: 'FINISHED' });
  t.deepEqual(await task.cancel(), { state: 'FINISHED' });
  await eventually('done emitted', () => events.length === 2, 5000);
  t.deepEqual(events, ['running', 'FINISHED']);
  t.true(fs.existsSync(task.logFile));
});

test('cancel of a sleep clears its timer and resolves CANCELED', async (t) => {
  const task = startTask({ type: 'sleep', ms: 60_000 }, context());
  const canceling = task.cancel();
  t.is(task.cancel(), canceling);
  t.deepEqual(await canceling, { state: 'CANCELED' });
  t.deepEqual(await task.done, { state: 'CANCELED' });
  t.true(Date.now() - task.startedAt < 60_000);
});

test('the fail task fails while attempt < failAttempts, then finishes', async (t) => {
  const spec: TaskSpec = { type: 'fail', failAttempts: 2, afterMs: 10 };
  const outcomes = [];
  for (const attempt of [0, 1, 2, 3]) outcomes.push(await startTask(spec, context({ attempt })).done);
  t.deepEqual(outcomes, [
    { state: 'FAILED', error: 'deterministic failure (fail task)' },
    { state: 'FAILED', error: 'deterministic failure (fail task)' },
    { state: 'FINISHED' },
    { state: 'FINISHED' },
  ]);
});

test('the fail task without failAttempts always fails with its message', async (t) => {
  for (const attempt of [0, 5]) {
    t.deepEqual(await startTask({ type: 'fail', message: 'drill: broken' }, context({ attempt })).done, {
      state: 'FAILED',
      error: 'drill: broken',
    });
  }
});

test('ids cannot escape the log directory', async (t) => {
  const ctx = context({ jobId: '..', vertexId: '../../etc/passwd' });
  const task = startTask({ type: 'sleep', ms: 0 }, ctx);
  await task.done;
  t.true(path.resolve(task.logFile).startsWith(path.resolve(ctx.logDir) + path.sep));
  t.is(path.dirname(task.logFile), path.join(ctx.logDir, '_..'));
});
