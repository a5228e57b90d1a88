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

/**
 * Which TaskManagers are drained, as stored: the ResourceManager's view of `/drains`. Loaded once per
 * term before any work is placed; every change is stored before it takes effect (adding) or after
 * (forgetting: a leftover record only keeps a TaskManager id blocked, it never loses a task).
 */
export class DrainBook {
  private readonly drains = new Map<string, DrainRecord>();
  private isLoaded: boolean;

  /** `store` absent: drains live in memory only (unit tests), and the book counts as loaded. */
  constructor(private readonly store: DrainRecords | undefined, private readonly logger: DrainLogger, private readonly sleep: (ms: number) => Promise<void>) {
    this.isLoaded = !store;
  }

  /** False until the stored drains were read. */
  get loaded(): boolean { return this.isLoaded; }

  has(taskManagerId: string): boolean { return this.drains.has(taskManagerId); }
  get(taskManagerId: string): DrainRecord | null { return this.drains.get(taskManagerId) ?? null; }
  values(): IterableIterator<DrainRecord> { return this.drains.values(); }

  /** Reads the stored drains, retrying ZooKeeper trouble (backing off up to 2 s) until `stopped()`; calls `onLoaded` once read. */
  async load(stopped: () => boolean, onLoaded: () => void): Promise<void> {
    if (!this.store) return;
    for (let attempt = 0; !stopped(); attempt++) {
      try {
        const records = await this.store.list();
        for (const r of records) this.drains.set(r.taskManagerId, r);
        this.isLoaded = true;
        if (records.length > 0) this.logger.info('taskmanager.drain.recovered', { taskManagerIds: records.map((r) => r.taskManagerId) });
        onLoaded();
        return;
      } catch (err) {
        this.logger.warn('taskmanager.drain.load-failed', { attempt, error: err as Error });
        await this.sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  }

  /**
   * Stores `record` and then counts it; a TaskManager already draining keeps its drain (returned).
   * Rejects as the DrainRecords do (NotLeaderError, ZkError): then nothing changed.
   */
  async add(record: DrainRecord): Promise<DrainRecord> {
    const existing = this.drains.get(record.taskManagerId);
    if (existing) return existing;
    await this.store?.record(record);
    const now = this.drains.get(record.taskManagerId) ?? record;
    this.drains.set(record.taskManagerId, now);
    return now;
  }

  /** The TaskManager was released (or lost): forgotten, its record removed in the background (a failure is logged). */
  forget(taskManagerId: string): void {
    if (!this.drains.delete(taskManagerId)) return;
    this.store?.remove(taskManagerId).catch((err) => this.logger.warn('taskmanager.drain.remove-failed', { taskManagerId, error: err as Error }));
  }
}

/** The part of the EventLogger a DrainBook uses. */
export interface DrainLogger {
  info(event: string, fields: Record<string, unknown>): void;
  warn(event: string, fields: Record<string, unknown>): void;
}
