/**
 * Runs one attempt of one subtask on a TaskManager. Commands get their own process group so that a cancel
 * reaches everything they started, and write straight into a log file so their output outlives this process.
 */
import { ChildProcess } from 'node:child_process';
import { spawnClean } from '../util/clean-spawn';
import { procState } from '../util/process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { failWork, sleepWork } from './builtin-tasks';

import type { TaskSpec } from './protocol';
export type { TaskSpec } from './protocol';

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
}

export const DEFAULT_KILL_GRACE_MS = 5000;

/** The handle a piece of work gets to report on itself. */
export interface TaskControl {
  readonly logFile: string;
  readonly cancelRequested: boolean;
  running(pid: number | null): void;
  finish(outcome: TaskOutcome): void;
}

/** Starts the work and returns how to stop it; the work reports through `ctl`, and never throws. */
export type Work = (ctl: TaskControl) => () => Promise<void>;

/** Emits 'running' (once started; pid known for commands) and 'done' (outcome), each at most once. */
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

export function startTask(spec: TaskSpec, ctx: TaskContext, options: TaskRunnerOptions = {}): RunningTask {
  const logFile = logFilePath(ctx);
  let work: Work;
  try {
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    work = workFor(spec, ctx, options.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
  } catch (err) {
    work = failedWork(`cannot prepare the task: ${(err as Error).message}`);
  }
  return new RunningTask(logFile, work);
}

export function logFilePath(ctx: TaskContext): string {
  return path.join(ctx.logDir, safeName(ctx.jobId), `${safeName(ctx.vertexId)}-${ctx.subtaskIndex}-${ctx.attempt}.log`);
}

function workFor(spec: TaskSpec, ctx: TaskContext, killGraceMs: number): Work {
  switch (spec?.type) {
    case 'command':
      return commandWork(spec, ctx, killGraceMs);
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

function commandWork(spec: Extract<TaskSpec, { type: 'command' }>, ctx: TaskContext, killGraceMs: number): Work {
  return (ctl) => {
    const argv = spec.argv;
    if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
      return failedWork('a command task needs argv: a non-empty list of strings')(ctl);
    }
    let child: ChildProcess;
    try {
      const fd = fs.openSync(ctl.logFile, 'a');
      try {
        child = spawnClean(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], env: taskEnv(spec, ctx) });
      } finally {
        fs.closeSync(fd); // the child holds its own copy
      }
    } catch (err) {
      // spawn() itself throws only on malformed input (e.g. a NUL byte); missing programs arrive as 'error'.
      return failedWork(`cannot start ${argv[0]}: ${(err as Error).message}`)(ctl);
    }

    const pid = child.pid ?? null;
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    let timedOut = false;
    let killing: Promise<void> | null = null;
    const kill = (): Promise<void> => (killing ??= pid === null ? exited : killGroup(pid, exited, killGraceMs));
    const timer = spec.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          void kill();
        }, spec.timeoutMs)
      : null;

    child.once('spawn', () => ctl.running(pid));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      const hint = err.code === 'ENOENT' ? ' (program not found; check argv[0] and PATH)' : '';
      const error = `cannot start ${argv[0]}: ${err.message}${hint}`;
      fs.appendFile(ctl.logFile, `[task-runner] ${error}\n`, () => {});
      ctl.finish({ state: 'FAILED', error });
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (timer) clearTimeout(timer);
      if (ctl.cancelRequested) ctl.finish({ state: 'CANCELED' });
      else if (timedOut) ctl.finish({ state: 'FAILED', error: `timed out after ${spec.timeoutMs} ms` });
      else if (code === 0) ctl.finish({ state: 'FINISHED' });
      else {
        const how = signal ? `was killed by signal ${signal}` : `exited with code ${code}`;
        const last = lastLine(ctl.logFile);
        ctl.finish({ state: 'FAILED', error: `command ${how}${last ? `; last output: ${last}` : ''}` });
      }
    });
    // A cancel that arrives while the timeout kill is under way just waits for the same kill.
    return kill;
  };
}

function taskEnv(spec: Extract<TaskSpec, { type: 'command' }>, ctx: TaskContext): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...spec.env,
    JOB_ID: ctx.jobId,
    VERTEX_ID: ctx.vertexId,
    SUBTASK_INDEX: String(ctx.subtaskIndex),
    PARALLELISM: String(ctx.parallelism),
    ATTEMPT: String(ctx.attempt),
  };
}

/** SIGTERM to the whole group, SIGKILL to whatever is left after the grace period, then wait for the leader. */
async function killGroup(pgid: number, exited: Promise<void>, graceMs: number): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const deadline = performance.now() + graceMs; // monotonic: a wall-clock step neither cuts nor stretches the grace
  // Children the command started may outlive it, so the group, not the leader, decides when we are done.
  while (groupAlive(pgid) && performance.now() < deadline) await delay(Math.min(50, Math.max(1, deadline - performance.now())));
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

function lastLine(file: string, maxBytes = 4096): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, maxBytes);
      const buf = Buffer.alloc(length);
      fs.readSync(fd, buf, 0, length, size - length);
      const lines = buf.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
      return (lines[lines.length - 1] ?? '').slice(0, 500);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** Ids come from submitted graphs; keep them from escaping the log directory. */
function safeName(id: string): string {
  const name = String(id).replace(/[^A-Za-z0-9._-]/g, '_');
  return /^\.*$/.test(name) ? `_${name}` : name;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
