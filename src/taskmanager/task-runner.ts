/**
 * Runs one attempt of one subtask on a TaskManager. Commands get their own process group so that a cancel
 * reaches everything they started; they run sandboxed (task-sandbox.ts: clean environment, fresh work
 * directory, optional task user) and their stdout/stderr come through pipes into a rotating log (task-log.ts).
 */
import { ChildProcess } from 'node:child_process';
import { spawnClean } from '../util/clean-spawn';
import { procState } from '../util/process';
import { settlesWithin, sleep } from '../util/clock';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { failWork, sleepWork } from './builtin-tasks';
import { DEFAULT_LOG_LIMITS, LogLimits, RotatingLog } from './task-log';
import { prepareWorkDir, refusal, removeWorkDir, resolveProgram, taskEnvironment, TaskSandbox } from './task-sandbox';

import type { TaskSpec } from '../jobgraph/types';
export type { TaskSpec } from '../jobgraph/types';

export interface TaskContext {
  jobId: string;
  vertexId: string;
  subtaskIndex: number;
  parallelism: number;
  /** 0 for the first execution of a subtask, +1 per restart (Flink's attempt number). */
  attempt: number;
  /** Root directory of task logs; each attempt writes `<logDir>/<jobId>/<vertexId>-<subtaskIndex>-<attempt>.log`. */
  logDir: string;
}

export type TaskOutcome = { state: 'FINISHED' } | { state: 'FAILED'; error: string } | { state: 'CANCELED' };

export interface TaskRunnerOptions {
  /** Time a canceled or timed-out command gets between SIGTERM and SIGKILL. */
  killGraceMs?: number;
  /** Default: work dirs in `<dirname(logDir)>/work`, secrets from /run/secrets, no task user, any program. */
  sandbox?: TaskSandbox;
  /** Cap and rotation of each attempt's log; default DEFAULT_LOG_LIMITS (10 MiB × 3). */
  log?: LogLimits;
  /**
   * How long, once a command's process group is gone, its output pipes may take to reach end-of-file
   * before the runner closes them and ends the attempt anyway (ms; default DEFAULT_OUTPUT_DRAIN_MS).
   */
  outputDrainMs?: number;
}

export const DEFAULT_KILL_GRACE_MS = 5000;
export const DEFAULT_OUTPUT_DRAIN_MS = 2000;

/** The handle a piece of work gets to report on itself. */
export interface TaskControl {
  readonly logFile: string;
  readonly cancelRequested: boolean;
  running(pid: number | null): void;
  /** The output pipes stayed open `drainMs` after the process group ended and were closed (see commandWork). */
  outputClosed(drainMs: number): void;
  finish(outcome: TaskOutcome): void;
}

/** Starts the work and returns how to stop it; the work reports through `ctl`, and never throws. */
export type Work = (ctl: TaskControl) => () => Promise<void>;

/**
 * Emits 'running' (once started; pid known for commands) and 'done' (outcome), each at most once, and
 * 'output-closed' (drain time, ms) before 'done' when a command's pipes had to be closed for it to end.
 */
export class RunningTask extends EventEmitter {
  readonly startedAt = Date.now();
  readonly done: Promise<TaskOutcome>;
  private currentPid: number | null = null;
  private outcome: TaskOutcome | null = null;
  private resolveDone!: (outcome: TaskOutcome) => void;
  private canceling: Promise<TaskOutcome> | null = null;
  private readonly stop: () => Promise<void>;

  constructor(readonly logFile: string, work: Work) {
    super();
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const task = this;
    this.stop = work({
      logFile,
      get cancelRequested() {
        return task.canceling !== null;
      },
      running: (pid) => {
        this.currentPid = pid;
        // Deferred so listeners attached right after startTask() still see it.
        process.nextTick(() => this.emit('running', pid));
      },
      outputClosed: (drainMs) => { this.emit('output-closed', drainMs); },
      finish: (outcome) => this.finish(outcome),
    });
  }

  get pid(): number | null {
    return this.currentPid;
  }

  /** Stops the work and resolves CANCELED; after completion it returns the original outcome. */
  cancel(): Promise<TaskOutcome> {
    if (this.outcome) return this.done;
    this.canceling ??= (async () => {
      await this.stop();
      this.finish({ state: 'CANCELED' });
      return this.done;
    })();
    return this.canceling;
  }

  private finish(outcome: TaskOutcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.resolveDone(outcome);
    process.nextTick(() => this.emit('done', outcome));
  }
}

type RunnerSettings = Required<Pick<TaskRunnerOptions, 'killGraceMs' | 'sandbox' | 'log' | 'outputDrainMs'>>;

export function startTask(spec: TaskSpec, ctx: TaskContext, options: TaskRunnerOptions = {}): RunningTask {
  const logFile = logFilePath(ctx);
  let work: Work;
  try {
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    work = workFor(spec, ctx, {
      killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
      sandbox: options.sandbox ?? defaultSandbox(ctx.logDir),
      log: options.log ?? DEFAULT_LOG_LIMITS,
      outputDrainMs: options.outputDrainMs ?? DEFAULT_OUTPUT_DRAIN_MS,
    });
  } catch (err) {
    work = failedWork(`cannot prepare the task: ${(err as Error).message}`);
  }
  return new RunningTask(logFile, work);
}

/** The TaskManager's layout: work dirs next to the log dir (`<data-dir>/<tm-id>/{logs,work}`). */
export function defaultSandbox(logDir: string): TaskSandbox {
  return { workRoot: path.join(path.dirname(logDir), 'work'), secretsDir: '/run/secrets' };
}

export function logFilePath(ctx: Pick<TaskContext, 'jobId' | 'vertexId' | 'subtaskIndex' | 'attempt' | 'logDir'>): string {
  return path.join(ctx.logDir, safeName(ctx.jobId), `${safeName(ctx.vertexId)}-${ctx.subtaskIndex}-${ctx.attempt}.log`);
}

/** The attempt's working directory, `<workRoot>/<jobId>/<vertex>-<subtask>-<attempt>`, removed when it ends. */
export function workDirPath(ctx: Pick<TaskContext, 'jobId' | 'vertexId' | 'subtaskIndex' | 'attempt'>, workRoot: string): string {
  return path.join(workRoot, safeName(ctx.jobId), `${safeName(ctx.vertexId)}-${ctx.subtaskIndex}-${ctx.attempt}`);
}

/**
 * Why a TaskManager with `sandbox` refuses to run `spec` (forbidden env name, program not allowed), or
 * null; the deploy is then answered 400 with this reason. Built-in task types are never refused.
 */
export function deployRefusal(spec: TaskSpec, ctx: Pick<TaskContext, 'jobId' | 'vertexId' | 'subtaskIndex' | 'attempt'>, sandbox: TaskSandbox): string | null {
  if (spec?.type !== 'command' || !Array.isArray(spec.argv)) return null;
  return refusal(spec.argv, spec.env, sandbox, workDirPath(ctx, sandbox.workRoot));
}

function workFor(spec: TaskSpec, ctx: TaskContext, settings: RunnerSettings): Work {
  switch (spec?.type) {
    case 'command':
      return commandWork(spec, ctx, settings);
    case 'sleep':
      return sleepWork(spec);
    case 'fail':
      return failWork(spec, ctx);
    default:
      return failedWork(`unknown task type ${JSON.stringify((spec as { type?: unknown })?.type)}`);
  }
}

function failedWork(error: string): Work {
  return (ctl) => {
    ctl.finish({ state: 'FAILED', error });
    return async () => {};
  };
}

function commandWork(spec: Extract<TaskSpec, { type: 'command' }>, ctx: TaskContext, settings: RunnerSettings): Work {
  return (ctl) => {
    const argv = spec.argv;
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
      return failedWork('a command task needs argv: a non-empty list of strings')(ctl);
    }
    const { sandbox } = settings;
    const workDir = workDirPath(ctx, sandbox.workRoot);
    // Refused at deploy already; checked again so no caller can start a task around the sandbox.
    const refused = refusal(argv, spec.env, sandbox, workDir);
    if (refused) return failedWork(`refused: ${refused}`)(ctl);
    const log = new RotatingLog(ctl.logFile, settings.log);
    let child: ChildProcess;
    try {
      prepareWorkDir(workDir, sandbox);
      const env = taskEnvironment(spec.env, fixedEnv(ctx), sandbox, workDir);
      // Resolved here, against the task's PATH and work dir, not the TaskManager's.
      const program = resolveProgram(argv[0], workDir) ?? argv[0];
      child = spawnClean(program, argv.slice(1), {
        detached: true, cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'],
        ...(sandbox.user ? { uid: sandbox.user.uid, gid: sandbox.user.gid } : {}),
      });
    } catch (err) {
      // Secrets that cannot be resolved, a work dir that cannot be made; spawn() itself throws only on
      // malformed input (e.g. a NUL byte); missing programs arrive as 'error'.
      const error = `cannot start ${argv[0]}: ${(err as Error).message}`;
      log.write(`[task-runner] ${error}\n`);
      log.close();
      removeWorkDir(workDir);
      return failedWork(error)(ctl);
    }
    child.stdout?.on('data', (chunk: Buffer) => log.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));

    const pid = child.pid ?? null;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    // 'close' needs end-of-file on both pipes as well as the exit. Once the group is gone nobody in it
    // holds them; a pipe still open then is held by a process that left the group (setsid), or its
    // end-of-file is never reported: the native ZooKeeper client, after a receive timeout, unregisters
    // from epoll the descriptor number of the socket it closed, which a new pipe may have taken by then
    // (docs/ARCHITECTURE.md, failure table). Either way the attempt is over: waiting on would leave it
    // RUNNING for good (and a cancel or TaskManager stop hanging), so the pipes are closed instead.
    const drainOutput = async (): Promise<void> => {
      if (await settlesWithin(closed, settings.outputDrainMs)) return;
      log.write(`[task-runner] output still open ${settings.outputDrainMs} ms after the process group ended; closing it\n`);
      ctl.outputClosed(settings.outputDrainMs);
      child.stdout?.destroy();
      child.stderr?.destroy();
      await closed;
    };
    let timedOut = false;
    let killing: Promise<void> | null = null;
    const kill = (): Promise<void> => (killing ??= pid === null ? closed : killGroup(pid, exited, settings.killGraceMs).then(drainOutput));
    const timer = spec.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          void kill();
        }, spec.timeoutMs)
      : null;
    let ended = false;
    const end = (outcome: TaskOutcome): void => {
      if (ended) return;
      ended = true;
      if (timer) clearTimeout(timer);
      log.close();
      removeWorkDir(workDir);
      ctl.finish(outcome);
    };

    child.once('spawn', () => ctl.running(pid));
    child.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'ENOENT' ? ' (program not found; check argv[0] and PATH)' : '';
      const error = `cannot start ${argv[0]}: ${err.message}${hint}`;
      log.write(`[task-runner] ${error}\n`);
      end({ state: 'FAILED', error });
    });
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      exit = { code, signal };
      // The attempt is over and its work dir about to go: whatever it left running in its group is stopped,
      // which also closes the pipes those leftovers held.
      void kill();
    });
    child.once('close', () => {
      const { code, signal } = exit ?? { code: null, signal: null };
      if (ctl.cancelRequested) end({ state: 'CANCELED' });
      else if (timedOut) end({ state: 'FAILED', error: `timed out after ${spec.timeoutMs} ms` });
      else if (code === 0) end({ state: 'FINISHED' });
      else {
        const how = signal ? `was killed by signal ${signal}` : `exited with code ${code}`;
        const last = log.lastLine();
        end({ state: 'FAILED', error: `command ${how}${last ? `; last output: ${last}` : ''}` });
      }
    });
    // A cancel that arrives while the timeout kill is under way just waits for the same kill.
    return async () => {
      await kill();
      await closed;
    };
  };
}

function fixedEnv(ctx: TaskContext): Record<string, string> {
  return {
    JOB_ID: ctx.jobId,
    VERTEX_ID: ctx.vertexId,
    SUBTASK_INDEX: String(ctx.subtaskIndex),
    PARALLELISM: String(ctx.parallelism),
    ATTEMPT: String(ctx.attempt),
  };
}

/** SIGTERM to the whole group, SIGKILL to whatever is left after the grace period, then wait for the leader's exit. */
async function killGroup(pgid: number, exited: Promise<void>, graceMs: number): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const deadline = performance.now() + graceMs; // monotonic: a wall-clock step neither cuts nor stretches the grace
  // Children the command started may outlive it, so the group, not the leader, decides when we are done.
  while (groupAlive(pgid) && performance.now() < deadline) await sleep(Math.min(50, Math.max(1, deadline - performance.now())));
  signalGroup(pgid, 'SIGKILL');
  await exited;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/**
 * kill(-pgid, 0) also succeeds for zombies, which linger where PID 1 does not reap (containers), so on Linux
 * the group counts as alive only while one of its members is not a zombie.
 */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const { state, pgrp } = procState(fs.readFileSync(`/proc/${name}/stat`, 'utf8'));
      if (pgrp === pgid && state !== 'Z') return true;
    } catch {
      // exited while we looked
    }
  }
  return false;
}

/** Ids come from submitted graphs; keep them from escaping the log directory. */
function safeName(id: string): string {
  const name = String(id).replace(/[^A-Za-z0-9._-]/g, '_');
  return /^\.*$/.test(name) ? `_${name}` : name;
}

