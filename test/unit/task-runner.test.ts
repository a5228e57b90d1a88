import test from 'ava';
import { isProcessAlive as isAlive } from '../../src/util/process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTask, TaskContext, TaskOutcome, TaskSpec } from '../../src/taskmanager/task-runner';
import { eventually } from '../helpers/ensemble';
import { execFileSync } from 'node:child_process';
import { checkSecretFiles, globMatches, INHERITED_ENV, resolveTaskUser, SAFE_PATH, TaskSandbox, TaskUser } from '../../src/taskmanager/task-sandbox';
import { defaultSandbox, deployRefusal, workDirPath } from '../../src/taskmanager/task-runner';
import { sweepLogs } from '../../src/taskmanager/task-log';
import { taskManagerApp, TaskManagerCommands } from '../../src/taskmanager/rpc-server';
import { parseJobGraph } from '../../src/jobgraph';
import type { EnvValue } from '../../src/jobgraph/task-env';
import { ValidationError } from '../../src/http/errors';
import { RecordingLogger } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

function context(overrides: Partial<TaskContext> = {}): TaskContext {
  return {
    jobId: crypto.randomBytes(16).toString('hex'),
    vertexId: 'extract',
    subtaskIndex: 2,
    parallelism: 4,
    attempt: 1,
    // The TaskManager's layout: the attempt work dirs go to the sibling `work`.
    logDir: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-task-')), 'logs'),
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
    PATH: SAFE_PATH, // the task sandbox's, never the TaskManager's
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
  const pidFile = path.join(path.dirname(ctx.logDir), 'grandchild.pid');
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
  const readyFile = path.join(path.dirname(ctx.logDir), 'ready');
  const script = `process.on('SIGTERM', () => {}); require('node:fs').writeFileSync(${JSON.stringify(readyFile)}, 'x'); setInterval(() => {}, 1000);`;
  const task = startTask(node(script), ctx, { killGraceMs: 300 });
  await eventually('SIGTERM handler installed', () => fs.existsSync(readyFile), 10000);
  t.deepEqual(await task.cancel(), { state: 'CANCELED' });
  t.false(isAlive(task.pid!));
});

/**
 * A command whose output pipes outlive its process group: it starts a process in a session of its own
 * (out of reach of the group kill) that inherits stdout and stderr, writes that process's pid, and exits.
 */
function leavesPipesOpen(pidFile: string, then: string): TaskSpec {
  return node(`
    const { spawn } = require('node:child_process');
    const escaped = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: ['ignore', 'inherit', 'inherit'] });
    escaped.unref();
    require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(escaped.pid));
    console.log('started');
    ${then}`);
}

async function escapedPid(pidFile: string): Promise<number> {
  return eventually('escaped pid written', () => {
    const text = fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8') : '';
    return text ? Number(text) : 0;
  }, 10000);
}

test('an attempt ends with its process group even when a process outside the group keeps its output pipes open', async (t) => {
  const ctx = context();
  const pidFile = path.join(path.dirname(ctx.logDir), 'escaped.pid');
  const task = startTask(leavesPipesOpen(pidFile, ''), ctx, { outputDrainMs: 200 });
  const closedAfter: number[] = [];
  task.on('output-closed', (ms: number) => closedAfter.push(ms));
  const escaped = await escapedPid(pidFile);
  t.teardown(() => { try { process.kill(escaped, 'SIGKILL'); } catch { /* gone */ } });
  let outcome: TaskOutcome | null = null;
  void task.done.then((o) => (outcome = o));
  // Before the fix the runner waited for end-of-file on pipes the escaped process held: RUNNING for good.
  await eventually('the attempt ended', () => outcome, 10000);
  t.deepEqual(outcome, { state: 'FINISHED' });
  t.true(isAlive(escaped)); // not the runner's to kill: it left the group
  const log = fs.readFileSync(task.logFile, 'utf8');
  t.regex(log, /^started$/m);
  t.regex(log, /output still open 200 ms after the process group ended/);
  t.deepEqual(closedAfter, [200]);
  t.false(fs.existsSync(workDirPath(ctx, defaultSandbox(ctx.logDir).workRoot)));
});

test('cancel completes even when a process outside the group keeps the output pipes open', async (t) => {
  const ctx = context();
  const pidFile = path.join(path.dirname(ctx.logDir), 'escaped.pid');
  const task = startTask(leavesPipesOpen(pidFile, 'setInterval(() => {}, 1000);'), ctx, { outputDrainMs: 200, killGraceMs: 2000 });
  const escaped = await escapedPid(pidFile);
  t.teardown(() => { try { process.kill(escaped, 'SIGKILL'); } catch { /* gone */ } });
  let outcome: TaskOutcome | null = null;
  void task.cancel().then((o) => (outcome = o));
  await eventually('the cancel completed', () => outcome, 10000);
  t.deepEqual(outcome, { state: 'CANCELED' });
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

// ---- task sandbox ----

const TASK_USER = 'ha-task';

/**
 * The dedicated unprivileged user tests run tasks as (`.ci/setup` creates it). Created here when missing
 * and we are root with useradd; otherwise the test fails: a sandbox test that cannot run must not pass.
 */
function taskUser(): TaskUser {
  try {
    return resolveTaskUser(TASK_USER);
  } catch { /* create it below */ }
  if (process.getuid?.() !== 0) throw new Error(`user ${TASK_USER} is missing and these tests do not run as root; run .ci/setup`);
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', TASK_USER], { stdio: 'inherit' });
  return resolveTaskUser(TASK_USER);
}

function sandboxFor(ctx: TaskContext, extra: Partial<TaskSandbox> = {}): TaskSandbox {
  return { ...defaultSandbox(ctx.logDir), ...extra };
}

test('a command sees a clean environment: none of the TaskManager\'s variables, HOME and TMPDIR in its work dir', async (t) => {
  const marker = `HA_TM_MARKER_${crypto.randomBytes(4).toString('hex')}`;
  process.env[marker] = 'tm-secret';
  t.teardown(() => delete process.env[marker]);
  const ctx = context();
  const task = startTask({ type: 'command', argv: ['env'], env: { DAY: 'monday' } }, ctx);
  t.deepEqual(await task.done, { state: 'FINISHED' });
  const log = fs.readFileSync(task.logFile, 'utf8');
  t.false(log.includes(marker), log);
  t.false(log.includes('tm-secret'));
  const env = Object.fromEntries(log.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const workDir = workDirPath(ctx, defaultSandbox(ctx.logDir).workRoot);
  t.is(env.HOME, workDir);
  t.is(env.TMPDIR, workDir);
  t.is(env.PATH, SAFE_PATH);
  t.is(env.DAY, 'monday');
  // bash's own PWD and SHLVL aside, only the allow-list, the job's env and the TaskManager's fixed names.
  const expected = new Set([...INHERITED_ENV, 'PATH', 'HOME', 'TMPDIR', 'DAY', 'JOB_ID', 'VERTEX_ID', 'SUBTASK_INDEX', 'PARALLELISM', 'ATTEMPT', 'PWD', 'SHLVL']);
  t.deepEqual(Object.keys(env).filter((k) => !expected.has(k)), []);
});

test('forbidden env names are refused at deploy and by the runner, each named', async (t) => {
  const ctx = context();
  const spec: TaskSpec = { type: 'command', argv: ['true'], env: { LD_PRELOAD: '/tmp/x.so', OK: '1', BASH_ENV: '/tmp/rc', NODE_OPTIONS: '--require /tmp/x', PYTHONPATH: '/tmp' } };
  const reason = deployRefusal(spec, ctx, sandboxFor(ctx));
  t.regex(reason ?? '', /forbidden environment variables: task\.env\.LD_PRELOAD, task\.env\.BASH_ENV, task\.env\.NODE_OPTIONS, task\.env\.PYTHONPATH;/);
  const outcome = await startTask(spec, ctx).done;
  t.is(outcome.state, 'FAILED');
  t.regex((outcome as { error: string }).error, /^refused: forbidden environment variables: task\.env\.LD_PRELOAD/);
  t.is(deployRefusal({ type: 'command', argv: ['true'], env: { OK: '1' } }, ctx, sandboxFor(ctx)), null);
});

test('the job graph validator rejects forbidden env names with 400, listing every one with its JSON path', (t) => {
  const graph = {
    vertices: [
      { id: 'a', task: { type: 'command', argv: ['true'], env: { PATH: '/tmp', DAY: 'x' } } },
      { id: 'b', task: { type: 'command', argv: ['true'], env: { LD_LIBRARY_PATH: '/tmp', PERL5LIB: '/tmp' } } },
    ],
  };
  const err = t.throws(() => parseJobGraph(graph, { maxParallelism: 8 }), { instanceOf: ValidationError });
  t.is((err as ValidationError).status, 400);
  t.regex(err!.message, /forbidden environment variables: vertices\[0\]\.task\.env\.PATH, vertices\[1\]\.task\.env\.LD_LIBRARY_PATH, vertices\[1\]\.task\.env\.PERL5LIB;/);
  const ok = parseJobGraph({ vertices: [{ id: 'a', task: { type: 'command', argv: ['true'], env: { DB: { fromFile: '/run/secrets/db' }, TOKEN: { fromEnv: 'TASK_SECRET_TOKEN' } } } }] }, { maxParallelism: 8 });
  t.deepEqual((ok.vertices[0].task as { env: object }).env, { DB: { fromFile: '/run/secrets/db' }, TOKEN: { fromEnv: 'TASK_SECRET_TOKEN' } });
  t.throws(() => parseJobGraph({ vertices: [{ id: 'a', task: { type: 'command', argv: ['true'], env: { DB: { fromFile: 'relative' } } } }] }, { maxParallelism: 8 }),
    { message: /vertices\[0\]\.task\.env\.DB\.fromFile must be an absolute file path/ });
  t.throws(() => parseJobGraph({ vertices: [{ id: 'a', task: { type: 'command', argv: ['true'], env: { DB: { fromEnv: 'ZK_PASSWORD' } } } }] }, { maxParallelism: 8 }),
    { message: /fromEnv must name a TaskManager variable starting with TASK_SECRET_/ });
});

test('the task starts in a fresh work dir that is removed after the attempt', async (t) => {
  const ctx = context();
  const workDir = workDirPath(ctx, defaultSandbox(ctx.logDir).workRoot);
  fs.mkdirSync(workDir, { recursive: true });
  fs.writeFileSync(path.join(workDir, 'stale'), 'from a crashed TaskManager');
  const task = startTask({ type: 'command', argv: ['sh', '-c', 'pwd; ls -A; echo data > out'] }, ctx);
  t.deepEqual(await task.done, { state: 'FINISHED' });
  t.deepEqual(fs.readFileSync(task.logFile, 'utf8').trim().split('\n'), [workDir]);
  t.false(fs.existsSync(workDir));
  t.false(fs.existsSync(path.dirname(workDir)), 'the job directory went with its last attempt');
});

test('as the task user, a relative write outside the work dir fails and the TaskManager\'s token file cannot be read', async (t) => {
  const user = taskUser();
  const ctx = context();
  const root = path.dirname(ctx.logDir);
  fs.chmodSync(root, 0o711); // mkdtemp's 0700 would keep the task user out of its own work dir
  const tokenFile = path.join(root, 'internal.token');
  fs.writeFileSync(tokenFile, 'do-not-print-this-token', { mode: 0o600 });
  const script = `id -u; touch ../escaped || echo escape-refused; touch ../../escaped || echo escape-refused; cat ${tokenFile} || echo token-refused; echo here > ok && echo wrote-own-dir`;
  const task = startTask({ type: 'command', argv: ['sh', '-c', script] }, ctx, { sandbox: sandboxFor(ctx, { user }) });
  t.deepEqual(await task.done, { state: 'FINISHED' });
  const log = fs.readFileSync(task.logFile, 'utf8');
  t.is(log.split('\n')[0], String(user.uid));
  t.is(log.match(/escape-refused/g)?.length, 2, log);
  t.regex(log, /Permission denied/);
  t.regex(log, /token-refused/);
  t.false(log.includes('do-not-print-this-token'));
  t.regex(log, /wrote-own-dir/);
  t.false(fs.existsSync(path.join(root, 'work', ctx.jobId, 'escaped')));
  t.false(fs.existsSync(path.join(root, 'work', 'escaped')));
});

test('secret files the task user could read stop the TaskManager; world-readable ones are reported', (t) => {
  const user = taskUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-secret-'));
  const file = path.join(dir, 'token');
  fs.writeFileSync(file, 'x', { mode: 0o644 });
  fs.chmodSync(file, 0o644);
  const logger = new RecordingLogger();
  t.throws(() => checkSecretFiles([file], user, logger), { message: /readable by taskmanager\.task\.user ha-task/ });
  checkSecretFiles([file], undefined, logger);
  t.deepEqual(logger.events.map((e) => e.event), ['taskmanager.secret-file.readable']);
  fs.chmodSync(file, 0o600);
  checkSecretFiles([file], user, logger);
  t.is(logger.events.length, 1);
});

test('fromFile and fromEnv secrets are resolved at launch; missing ones fail the attempt with a clear message', async (t) => {
  const ctx = context();
  const secretsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-secrets-'));
  fs.writeFileSync(path.join(secretsDir, 'db'), 'db-password\n');
  process.env.TASK_SECRET_API = 'api-key';
  t.teardown(() => delete process.env.TASK_SECRET_API);
  const sandbox = sandboxFor(ctx, { secretsDir });
  const spec = (env: Record<string, EnvValue>): TaskSpec => node(`console.log(process.env.DB + ' ' + process.env.API)`, { env });
  const ok = startTask(spec({ DB: { fromFile: path.join(secretsDir, 'db') }, API: { fromEnv: 'TASK_SECRET_API' } }), ctx, { sandbox });
  t.deepEqual(await ok.done, { state: 'FINISHED' });
  t.is(fs.readFileSync(ok.logFile, 'utf8'), 'db-password api-key\n');

  const missingFile = await startTask(spec({ DB: { fromFile: path.join(secretsDir, 'nope') } }), context(), { sandbox }).done;
  t.regex((missingFile as { error: string }).error, /env DB: cannot read secret file .*nope: ENOENT/);
  const missingVar = await startTask(spec({ API: { fromEnv: 'TASK_SECRET_NOPE' } }), context(), { sandbox }).done;
  t.regex((missingVar as { error: string }).error, /env API: the TaskManager has no variable TASK_SECRET_NOPE/);
  const outside = await startTask(spec({ DB: { fromFile: '/etc/hostname' } }), context(), { sandbox }).done;
  t.regex((outside as { error: string }).error, /is not under taskmanager\.task\.secrets-dir/);
});

test('with taskmanager.command.allowed, a program outside the list is refused with the reason', async (t) => {
  const ctx = context();
  const sandbox = sandboxFor(ctx, { allowedCommands: ['/usr/bin/e*', '/opt/jobs/**'] });
  t.is(deployRefusal({ type: 'command', argv: ['env'] }, ctx, sandbox), null);
  t.regex(deployRefusal({ type: 'command', argv: ['sh', '-c', 'true'] }, ctx, sandbox) ?? '', /program \/usr\/bin\/sh is not allowed on this TaskManager \(taskmanager\.command\.allowed: \/usr\/bin\/e\*, \/opt\/jobs\/\*\*\)/);
  t.regex(deployRefusal({ type: 'command', argv: ['no-such-program-h11'] }, ctx, sandbox) ?? '', /is not on this TaskManager's task PATH/);
  const refused = await startTask({ type: 'command', argv: ['sh', '-c', 'true'] }, ctx, { sandbox }).done;
  t.regex((refused as { error: string }).error, /^refused: program \/usr\/bin\/sh is not allowed/);
  t.deepEqual(await startTask({ type: 'command', argv: ['env'] }, context(), { sandbox }).done, { state: 'FINISHED' });
  t.true(globMatches('/opt/jobs/**', '/opt/jobs/a/b/run'));
  t.false(globMatches('/usr/bin/*', '/usr/bin/x/y'));
});

// ---- bounded logs ----

test('an endless writer is capped: rotation keeps disk use under max-bytes × max-files and the log endpoint says it was cut', async (t) => {
  const ctx = context();
  const limits = { maxBytes: 64 * 1024, maxFiles: 3 };
  const task = startTask({ type: 'command', argv: ['yes', 'a line of endless output'] }, ctx, { log: limits, killGraceMs: 2000 });
  const dropped = `${task.logFile}.dropped`;
  await eventually('several rotations', () => fs.existsSync(dropped) && Number(fs.readFileSync(dropped, 'utf8')) > 1024 * 1024, 20000);
  const files = fs.readdirSync(path.dirname(task.logFile)).filter((f) => f.startsWith(path.basename(task.logFile)) && !f.endsWith('.dropped'));
  t.deepEqual(files.sort(), [path.basename(task.logFile), `${path.basename(task.logFile)}.1`, `${path.basename(task.logFile)}.2`]);
  const used = files.reduce((sum, f) => sum + fs.statSync(path.join(path.dirname(task.logFile), f)).size, 0);
  t.true(used <= limits.maxBytes * limits.maxFiles, `${used} bytes on disk`);
  t.deepEqual(await task.cancel(), { state: 'CANCELED' });

  const owner = { taskManagerId: 'tm-1', logDir: ctx.logDir } as unknown as TaskManagerCommands;
  const app = taskManagerApp(owner, { logger: new RecordingLogger() });
  const res = await inject(app.callback(), { path: `/logs/${ctx.jobId}/${ctx.vertexId}/${ctx.subtaskIndex}/${ctx.attempt}` });
  t.is(res.status, 200);
  t.is(res.headers['x-log-truncated'], 'true');
  const omitted = Number(res.headers['x-log-omitted-bytes']);
  t.true(omitted > 1024 * 1024);
  const [first, second] = res.text.split('\n');
  t.is(first, `[task-runner] output cut: ${omitted} earlier bytes are not shown (rotated away by taskmanager.log.max-bytes/max-files, or before the last 1048576 bytes)`);
  // Rotation splits at the byte boundary: the oldest kept line may be the end of one.
  t.true('a line of endless output'.endsWith(second), second);
  t.true(res.text.length <= used + first.length + 1);
});

test('a short log is served whole, without the truncation header', async (t) => {
  const ctx = context();
  t.deepEqual(await startTask(node(`console.log('hello')`), ctx).done, { state: 'FINISHED' });
  const owner = { taskManagerId: 'tm-1', logDir: ctx.logDir } as unknown as TaskManagerCommands;
  const res = await inject(taskManagerApp(owner, { logger: new RecordingLogger() }).callback(), { path: `/logs/${ctx.jobId}/${ctx.vertexId}/${ctx.subtaskIndex}/${ctx.attempt}` });
  t.is(res.status, 200);
  t.is(res.text, 'hello\n');
  t.false('x-log-truncated' in res.headers);
});

test('the retention sweep deletes every file of attempts last written before the cut-off, not live or recent ones', (t) => {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-logs-'));
  const write = (rel: string, ageMs: number): string => {
    const file = path.join(logDir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'x');
    const at = new Date(Date.now() - ageMs);
    fs.utimesSync(file, at, at);
    return file;
  };
  const hour = 3_600_000;
  write('job1/a-0-0.log', 50 * hour);
  write('job1/a-0-0.log.1', 60 * hour);
  write('job1/a-0-0.log.dropped', 50 * hour);
  const live = write('job2/b-0-0.log', 50 * hour);
  const recent = write('job2/c-0-0.log', hour);
  const deleted = sweepLogs(logDir, Date.now() - 24 * hour, (f) => f === live);
  t.deepEqual(deleted, [path.join(logDir, 'job1/a-0-0.log')]);
  t.false(fs.existsSync(path.join(logDir, 'job1')), 'the emptied job directory is removed');
  t.true(fs.existsSync(live));
  t.true(fs.existsSync(recent));
});
