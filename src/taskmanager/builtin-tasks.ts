/** Built-in task types for demos and drills: no process, just a timer with a known outcome. */
import * as fs from 'node:fs';
import type { TaskContext, TaskOutcome, TaskSpec, Work } from './task-runner';

export const DEFAULT_FAIL_MESSAGE = 'deterministic failure (fail task)';

export function sleepWork(spec: Extract<TaskSpec, { type: 'sleep' }>): Work {
  return timerWork(`sleep ${spec.ms} ms`, spec.ms, () => ({ state: 'FINISHED' }));
}

/** Fails while `attempt < failAttempts` (always, without failAttempts), so a restart drill is reproducible. */
export function failWork(spec: Extract<TaskSpec, { type: 'fail' }>, ctx: TaskContext): Work {
  const fails = spec.failAttempts === undefined || ctx.attempt < spec.failAttempts;
  const error = spec.message ?? DEFAULT_FAIL_MESSAGE;
  const what = fails ? `fail after ${spec.afterMs ?? 0} ms: ${error}` : `finish: attempt ${ctx.attempt} >= failAttempts ${spec.failAttempts}`;
  return timerWork(what, spec.afterMs ?? 0, () => (fails ? { state: 'FAILED', error } : { state: 'FINISHED' }));
}

function timerWork(what: string, ms: number, outcome: () => TaskOutcome): Work {
  return (ctl) => {
    // The log file exists for every task type, so whoever serves logs needs no special case.
    fs.appendFile(ctl.logFile, `[task-runner] built-in task: ${what}\n`, () => {});
    ctl.running(null);
    const timer = setTimeout(() => ctl.finish(outcome()), Math.max(0, Number(ms) || 0));
    return async () => clearTimeout(timer);
  };
}
