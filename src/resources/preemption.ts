/**
 * Which running subtask gives way to a job that cannot be placed (`scheduler.preemption.enabled`;
 * docs/ARCHITECTURE.md, "Priorities, reserved slots, preemption and drain"). Pure choice: the
 * ResourceManager carries it out.
 */

/** A subtask holding a slot, as preemption sees it. */
export interface PreemptionCandidate {
  taskManagerId: string;
  /** executionKey of the attempt. */
  key: string;
  jobId: string;
  /** Its job's priority. */
  priority: number;
  state: string;
  /** Monotonic-or-epoch ms the slot was taken (only compared with each other). */
  since: number;
}

/** States a preemption may stop: the process was asked for. A RESERVED slot is about to deploy; it is left alone. */
const PREEMPTIBLE_STATES: ReadonlySet<string> = new Set(['DEPLOYING', 'RUNNING']);

/**
 * The subtask to cancel for a request of `priority`, or null: only subtasks of strictly lower priority
 * (never within a priority), the lowest priority first, then the one that started last (the least
 * work lost), then by key so the choice is deterministic.
 */
export function chooseVictim(candidates: Iterable<PreemptionCandidate>, priority: number): PreemptionCandidate | null {
  let best: PreemptionCandidate | null = null;
  for (const c of candidates) {
    if (c.priority >= priority || !PREEMPTIBLE_STATES.has(c.state)) continue;
    if (best === null || c.priority < best.priority || (c.priority === best.priority && (c.since > best.since || (c.since === best.since && c.key < best.key)))) best = c;
  }
  return best;
}
