import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { settlesWithin } from './clock';

/**
 * Whether a process runs. Zombies count as gone: where PID 1 does not reap (containers), killed
 * orphans stay zombies, and signal 0 alone would call them alive.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return procState(fs.readFileSync(`/proc/${pid}/stat`, 'utf8')).state !== 'Z';
  } catch {
    return true;
  }
}

/** State letter and process group from a /proc/<pid>/stat line ("pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses). */
export function procState(stat: string): { state: string; pgrp: number } {
  const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state, pgrp: Number(pgrp) };
}

const attached = new Set<ChildProcess>();
let exitHookInstalled = false;
/** The child must not outlive this process, even when it exits without cleaning up (tests, benchmarks). */
export function killOnExit(child: ChildProcess): void {
  attached.add(child);
  child.once('exit', () => attached.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of attached) {
      try { c.kill('SIGCONT'); c.kill('SIGKILL'); } catch { /* gone */ }
    }
  });
}

/**
 * Ends a child: wakes it (a SIGSTOPped child cannot act on SIGTERM), sends `signal`, and sends SIGKILL
 * when it has not exited within `graceMs`. Resolves once it exited; at once for one already gone.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try { child.kill('SIGCONT'); child.kill(signal); } catch { /* already gone */ }
  if (!(await settlesWithin(exited, graceMs))) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
    await exited;
  }
}
