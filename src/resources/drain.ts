/**
 * Draining TaskManagers (Flink's "blocked" TaskManagers; docs/ARCHITECTURE.md, "Priorities, reserved
 * slots, preemption and drain"). A drained TaskManager gets no new deploys; its tasks run to their end
 * (past `deadlineAt` the rest are canceled and run again elsewhere as new attempts); once it holds no
 * task it is released: told to stop in its next heartbeat answer and unregistered. The records live in
 * ZooKeeper (src/store/drain-store.ts), so a new leader keeps draining what the last one drained.
 */

/** One drain as stored and shown. Times are epoch-ms. */
export interface DrainRecord {
  taskManagerId: string;
  requestedAt: number;
  /** After this, tasks still on it are canceled and placed elsewhere; null: they may take as long as they need. */
  deadlineAt: number | null;
}

/** Where drains are kept across leaders: ZooKeeper (src/store/drain-store.ts) or a fake. */
export interface DrainRecords {
  /** Every stored drain; rejects with a ZkError on connection trouble. */
  list(): Promise<DrainRecord[]>;
  /** Stores (or replaces) a drain; rejects with NotLeaderError when the term is over, a ZkError otherwise. */
  record(drain: DrainRecord): Promise<void>;
  /** Removes a drain (released); a missing one is fine. */
  remove(taskManagerId: string): Promise<void>;
}

/** The deadline is over: its remaining tasks are to be canceled and placed elsewhere. */
export function drainOverdue(drain: DrainRecord, nowEpochMs: number): boolean {
  return drain.deadlineAt !== null && nowEpochMs >= drain.deadlineAt;
}

/** Validates a drain request body `{deadlineMs?}`: a positive integer of ms up to a day, or absent. Throws Error naming the field. */
export function parseDrainDeadline(body: unknown): number | null {
  if (body === undefined || body === null) return null;
  if (typeof body !== 'object' || Array.isArray(body)) throw new Error('the body must be a JSON object such as {"deadlineMs": 60000}, or empty');
  const unknown = Object.keys(body).filter((k) => k !== 'deadlineMs');
  if (unknown.length > 0) throw new Error(`unknown field ${JSON.stringify(unknown[0])}; the only field is deadlineMs`);
  const value = (body as { deadlineMs?: unknown }).deadlineMs;
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DRAIN_DEADLINE_MS) {
    throw new Error(`deadlineMs must be an integer number of ms between 0 and ${MAX_DRAIN_DEADLINE_MS}, got ${JSON.stringify(value)?.slice(0, 40)}`);
  }
  return value;
}

/** One day. */
export const MAX_DRAIN_DEADLINE_MS = 86_400_000;
