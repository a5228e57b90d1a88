/**
 * The TaskManager's table of task attempts: what runs here, what finished, the last report of each,
 * which outcomes a leader has acknowledged, and the leader epochs every command is checked against
 * (`admitCommand`; README "Fencing"):
 *  - the highest epoch a leader *verified*: only a registration answer raises it (the leader at the
 *    published address answered with it), never ZooKeeper data nor a command;
 *  - the epoch `/leader/info` announces while not registered: a command below it comes from a leader
 *    that has been replaced and is refused, but it raises nothing (unverified), and the next
 *    registration answer replaces it;
 *  - at most MAX_EPOCH_STEP above the verified epoch: anything further ahead (a forged 2^53−1) is
 *    refused and changes nothing. Pure bookkeeping: it neither starts nor stops processes nor talks to
 * anybody; the TaskManager and its leader connection act on what it answers.
 *
 * Keys are execution keys (`jobId/vertexId/subtask/attempt`, see protocol.ts); entries keep insertion
 * order, so the oldest acknowledged outcomes are forgotten first.
 */
import { CancelRequest, ExecutionId, executionKey, TaskReport, TERMINAL_REPORTED } from './protocol';

/** What the table needs of a running attempt (a RunningTask in the TaskManager, a stub in tests). */
export interface TaskHandle {
  cancel(): Promise<unknown>;
}

export interface TaskEntry<H extends TaskHandle = TaskHandle> {
  readonly id: ExecutionId;
  readonly key: string;
  /** The latest state; replaced (never mutated) on every change, so copies handed out stay as they were. */
  report: TaskReport;
  readonly handle: H;
  /** A terminal outcome a leader has durably noted. */
  acknowledged: boolean;
}

export interface TaskTableOptions {
  /** Terminal, acknowledged attempts kept for GET /tasks (default 500); older ones are forgotten. */
  finishedHistory?: number;
}

/** Which tasks a cancel command means: all of a job, narrowed by vertex, subtask and attempt when given. */
export type CancelFilter = Pick<CancelRequest, 'jobId' | 'vertexId' | 'subtask' | 'attempt'>;

export const DEFAULT_FINISHED_HISTORY = 500;

/**
 * How far above the verified epoch a command may be (a new leader whose registration answer is still
 * on its way). Every grant raises the epoch by one, so a legitimate leader is always close by.
 */
export const MAX_EPOCH_STEP = 1000;

/** The verdict on a command's epoch: run it, or refuse it as from a replaced leader / implausibly far ahead. */
export type EpochVerdict = 'admitted' | 'stale' | 'ahead';

export class TaskTable<H extends TaskHandle = TaskHandle> {
  private readonly entries = new Map<string, TaskEntry<H>>();
  private highest = -1;
  /** The epoch `/leader/info` announced since the last registration answer; null once verified. */
  private announced: number | null = null;
  private readonly finishedHistory: number;

  constructor(options: TaskTableOptions = {}) {
    this.finishedHistory = options.finishedHistory ?? DEFAULT_FINISHED_HISTORY;
  }

  /** The highest leader epoch a registration answer verified; -1 before any. */
  get highestEpoch(): number { return this.highest; }

  /** The epoch below which commands are refused: the verified one, or an announced newer one awaiting registration. */
  get fenceEpoch(): number { return Math.max(this.highest, this.announced ?? -1); }

  /** A leader answered our registration with `epoch`: verified, it raises the fence (never lowers it). */
  verifyEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch)) return;
    if (epoch > this.highest) this.highest = epoch;
    this.announced = null;
  }

  /** `/leader/info` now announces `epoch` (unverified; null when no leader is published). Implausible ones are ignored. */
  announceEpoch(epoch: number | null): void {
    if (epoch !== null && this.plausible(epoch) && epoch > this.highest) this.announced = epoch;
  }

  private plausible(epoch: number): boolean {
    return Number.isSafeInteger(epoch) && epoch <= Math.max(this.highest, 0) + MAX_EPOCH_STEP;
  }

  /** Fencing of a leader command carrying `epoch`; notes nothing whatever the verdict. */
  admitCommand(epoch: number): EpochVerdict {
    if (!this.plausible(epoch)) return 'ahead';
    if (epoch < this.fenceEpoch) return 'stale';
    return 'admitted';
  }

  get(key: string): TaskEntry<H> | undefined { return this.entries.get(key); }

  /** Every attempt still here, oldest first. */
  all(): TaskEntry<H>[] { return [...this.entries.values()]; }

  /** Attempts not in a terminal state (DEPLOYING or RUNNING). */
  live(): TaskEntry<H>[] { return this.all().filter((t) => !isTerminal(t)); }

  /** The latest report of every attempt, for GET /tasks. */
  reports(): TaskReport[] { return this.all().map((t) => t.report); }

  /**
   * Live, older attempts of the same subtask as `id`: the leader moved on to a newer attempt, so these
   * are stale and should be canceled.
   */
  supersededBy(id: ExecutionId): TaskEntry<H>[] {
    return this.live().filter((t) => t.id.jobId === id.jobId && t.id.vertexId === id.vertexId && t.id.subtask === id.subtask && t.id.attempt < id.attempt);
  }

  /**
   * Records a freshly started attempt as DEPLOYING (`startedAt` epoch-ms, pid unknown yet).
   * Throws when the key is already present: a retried deploy must never start a second run.
   */
  add(id: ExecutionId, handle: H, startedAt: number): TaskEntry<H> {
    const key = executionKey(id);
    if (this.entries.has(key)) throw new Error(`task ${key} is already on this TaskManager`);
    const entry: TaskEntry<H> = { id, key, handle, acknowledged: false, report: { ...id, state: 'DEPLOYING', startedAt, pid: null } };
    this.entries.set(key, entry);
    return entry;
  }

  /** Applies a state change to an attempt's report; the new report, or null for an unknown key. */
  update(key: string, change: Partial<Omit<TaskReport, keyof ExecutionId>>): TaskReport | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    entry.report = { ...entry.report, ...change };
    return entry.report;
  }

  /** Live attempts a cancel command matches. */
  matching(filter: CancelFilter): TaskEntry<H>[] {
    return this.live().filter((t) => t.id.jobId === filter.jobId &&
      (filter.vertexId === undefined || t.id.vertexId === filter.vertexId) &&
      (filter.subtask === undefined || t.id.subtask === filter.subtask) &&
      (filter.attempt === undefined || t.id.attempt === filter.attempt));
  }

  /** The live attempts among `keys` (unknown and finished keys are skipped). */
  liveOf(keys: readonly string[]): TaskEntry<H>[] {
    return keys.map((k) => this.entries.get(k)).filter((t): t is TaskEntry<H> => !!t && !isTerminal(t));
  }

  /** Keys of the live attempts, for heartbeats. */
  runningKeys(): string[] { return this.live().map((t) => t.key); }

  /** Copies of every report a leader has not acknowledged: live attempts and unacknowledged outcomes. */
  unacknowledged(): TaskReport[] {
    return this.all().filter((t) => !t.acknowledged).map((t) => ({ ...t.report }));
  }

  /** Keys of terminal attempts whose outcome no leader has acknowledged yet. */
  unacknowledgedOutcomes(): string[] {
    return this.all().filter((t) => !t.acknowledged && isTerminal(t)).map((t) => t.key);
  }

  /**
   * Marks outcomes a leader durably noted (keys of live or unknown attempts are ignored: only a
   * terminal report can be acknowledged), then forgets the oldest acknowledged ones beyond the history.
   */
  acknowledge(keys: readonly string[] | undefined): void {
    for (const key of keys ?? []) {
      const t = this.entries.get(key);
      if (t && isTerminal(t)) t.acknowledged = true;
    }
    const done = this.all().filter((t) => t.acknowledged);
    for (const t of done.slice(0, Math.max(0, done.length - this.finishedHistory))) this.entries.delete(t.key);
  }
}

function isTerminal(t: TaskEntry<TaskHandle>): boolean {
  return TERMINAL_REPORTED.has(t.report.state);
}
