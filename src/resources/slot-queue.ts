/**
 * The order in which waiting slot requests are served, and the slots kept free for high priorities
 * (docs/ARCHITECTURE.md, "Priorities, reserved slots, preemption and drain"). Pure bookkeeping: the
 * ResourceManager asks it before it hands out a slot and tells it which requests were served.
 *
 * A request that could not be served waits here. A later request may take a slot only when no waiting
 * request of another job ranks ahead of it: higher priority first, first come first within a priority.
 * A job never waits behind itself (its own subtasks are placed in its own order). Reserved slots: a
 * request of priority p leaves free the slots reserved for classes above p.
 */

/** One slot request: an execution (its key) of a job at a priority. */
export interface SlotRequest {
  /** executionKey of the attempt asking (src/taskmanager/protocol.ts). */
  key: string;
  jobId: string;
  priority: number;
}

/** `resourcemanager.reserved-slots` resolved against the priority classes: `slots` free slots kept for priority ≥ `priority`. */
export interface SlotReservation {
  className: string;
  priority: number;
  slots: number;
}

/**
 * Why a request may or may not take a slot now. `take`: yes. `behind`: another job's waiting request
 * ranks ahead (it is served first). `reserved`: the free slots are kept for higher classes. `full`: no
 * free slot at all.
 */
export type SlotDecision = 'take' | 'behind' | 'reserved' | 'full';

interface Waiting extends SlotRequest {
  seq: number;
  /** The wake-up round in which its job last asked: see `wait`. */
  askedRound: number;
}

/** Resolves `resourcemanager.reserved-slots` (class → slots) with `scheduler.priority-classes` (class → priority); unknown classes are skipped. */
export function slotReservations(reserved: Readonly<Record<string, number>>, classes: Readonly<Record<string, number>>): SlotReservation[] {
  return Object.entries(reserved)
    .filter(([name, slots]) => Object.hasOwn(classes, name) && slots > 0)
    .map(([className, slots]) => ({ className, priority: classes[className], slots }))
    .sort((a, b) => b.priority - a.priority);
}

export class SlotQueue {
  private seq = 0;
  /** Insertion order is arrival order. */
  private readonly waiting = new Map<string, Waiting>();
  /** The keys in `waiting` per job: `dropJob` runs once per JobMaster when a term ends (1,000s at once). */
  private readonly byJob = new Map<string, Set<string>>();

  constructor(private readonly reservations: readonly SlotReservation[] = []) {}

  /** Free slots a request of `priority` must leave untouched: the reservations of every class above it. */
  reservedAbove(priority: number): number {
    let slots = 0;
    for (const r of this.reservations) if (r.priority > priority) slots += r.slots;
    return slots;
  }

  /**
   * Whether `request` may take one of `freeSlots` now. Waiting requests `stillWanted` says no to are
   * forgotten on the way (an attempt that moved on, a job that ended). Does not enqueue: see `wait`.
   */
  decide(request: SlotRequest, freeSlots: number, stillWanted: (waiting: SlotRequest) => boolean): SlotDecision {
    const own = this.waiting.get(request.key);
    const ahead = this.firstAhead(request, own?.seq ?? Number.POSITIVE_INFINITY, stillWanted);
    if (ahead) return 'behind';
    if (freeSlots <= 0) return 'full';
    if (freeSlots - this.reservedAbove(request.priority) < 1) return 'reserved';
    return 'take';
  }

  /**
   * The request waits (idempotent: a request keeps its first place in line). `round` (the caller's
   * count of wake-ups) notes that its job still asks: `askedBefore` tells who stopped asking.
   */
  wait(request: SlotRequest, round = 0): void {
    const waiting = this.waiting.get(request.key);
    if (waiting) waiting.askedRound = round;
    else {
      this.waiting.set(request.key, { ...request, seq: this.seq++, askedRound: round });
      const keys = this.byJob.get(request.jobId);
      if (keys) keys.add(request.key);
      else this.byJob.set(request.jobId, new Set([request.key]));
    }
  }

  /** Whether `w` (a waiting request) was last asked for before wake-up round `round`. */
  askedBefore(w: SlotRequest, round: number): boolean {
    const waiting = this.waiting.get(w.key);
    return !!waiting && waiting.askedRound < round;
  }

  /** The request was served (or withdrawn). */
  served(key: string): void {
    this.remove(key);
  }

  /** Forgets every waiting request of the job; true when there were any. */
  dropJob(jobId: string): boolean {
    const keys = this.byJob.get(jobId);
    if (!keys) return false;
    for (const key of [...keys]) this.remove(key);
    return true;
  }

  /** Waiting requests in service order (highest priority, then first come). */
  list(): SlotRequest[] {
    return [...this.waiting.values()].sort(rank).map(({ key, jobId, priority }) => ({ key, jobId, priority }));
  }

  get size(): number {
    return this.waiting.size;
  }

  private remove(key: string): void {
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    const keys = this.byJob.get(w.jobId);
    keys?.delete(key);
    if (keys?.size === 0) this.byJob.delete(w.jobId);
  }

  private firstAhead(request: SlotRequest, seq: number, stillWanted: (w: SlotRequest) => boolean): Waiting | null {
    for (const [key, w] of this.waiting) {
      if (w.jobId === request.jobId || key === request.key) continue;
      const ahead = w.priority > request.priority || (w.priority === request.priority && w.seq < seq);
      if (!ahead) continue;
      if (!stillWanted(w)) {
        this.remove(key);
        continue;
      }
      return w;
    }
    return null;
  }
}

function rank(a: Waiting, b: Waiting): number {
  return b.priority - a.priority || a.seq - b.seq;
}
