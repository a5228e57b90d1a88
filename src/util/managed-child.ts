/**
 * The one wrapper around a long-lived child process (ZooKeeper-free descendants of the CLI's `local`
 * cluster, chaos runs, integration tests, benchmarks): spawned through spawnClean with its output
 * appended to a log file, SIGKILLed should this process exit first, and stopped the one way that
 * copes with a frozen child (SIGCONT, the signal, SIGKILL after a grace period).
 */
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { spawnClean } from './clean-spawn';
import { killOnExit, stopChild } from './process';
import { settlesWithin } from './clock';

export interface ManagedChildOptions {
  /** stdout and stderr are appended to this file (created when missing); without one they are ignored. */
  logFile?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Own process group: a terminal's Ctrl-C reaches only the parent, which stops its children in order. */
  detached?: boolean;
  /**
   * Not SIGKILLed when this process exits, and not keeping it alive: a TaskManager the leader's
   * autoscaler started runs on through the leader's crash or stop. Implies `detached`.
   */
  outlivesParent?: boolean;
}

/** Grace period of `stop()` before SIGKILL, in ms. */
export const DEFAULT_STOP_GRACE_MS = 20_000;

export class ManagedChild {
  /** True between pause() and resume() (or the exit). */
  paused = false;
  private readonly exited: Promise<void>;

  private constructor(readonly child: ChildProcess, outlivesParent = false) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => { this.paused = false; });
    if (outlivesParent) child.unref();
    else killOnExit(child);
  }

  /** Starts `command args`; throws what spawn throws (an unknown program reports ENOENT as an 'error' event). */
  static spawn(command: string, args: readonly string[], options: ManagedChildOptions = {}): ManagedChild {
    const log = options.logFile ? fs.openSync(options.logFile, 'a') : 'ignore';
    try {
      return new ManagedChild(spawnClean(command, args, {
        stdio: ['ignore', log, log], env: options.env, cwd: options.cwd, detached: options.detached || options.outlivesParent,
      }), options.outlivesParent);
    } finally {
      if (typeof log === 'number') fs.closeSync(log);
    }
  }

  /** The OS pid while it runs; null once it exited. */
  get pid(): number | null { return this.running ? this.child.pid ?? null : null; }
  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /** Sends `signal` without waiting; a no-op once the child exited. */
  kill(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try { this.child.kill(signal); } catch { /* gone meanwhile */ }
    if (signal === 'SIGSTOP') this.paused = true;
    if (signal === 'SIGCONT') this.paused = false;
  }

  /** Freezes the child (SIGSTOP): it keeps its sockets and sessions but answers nothing. */
  pause(): void { this.kill('SIGSTOP'); }
  resume(): void { this.kill('SIGCONT'); }

  /**
   * Ends the child: SIGCONT (a frozen child cannot act on SIGTERM), `signal`, then SIGKILL when it has
   * not exited within `graceMs`. Resolves once it exited; at once when it already had.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    this.paused = false;
    await stopChild(this.child, signal, graceMs);
  }

  /** Waits up to `timeoutMs` for the exit, then SIGKILLs it and waits for that. */
  async waitForExit(timeoutMs: number): Promise<void> {
    if (!this.running) return;
    if (!(await settlesWithin(this.exited, timeoutMs))) await this.stop('SIGKILL');
  }
}
