/**
 * Allocation strategies: which TaskManager gets the next task. `resourcemanager.allocation-strategy`
 * selects one; both only ever see TaskManagers with a free slot.
 */

/** What a strategy knows about one TaskManager. */
export interface TaskManagerLoad {
  id: string;
  slots: number;
  /** Slots taken by reserved, deploying or running tasks. */
  used: number;
  /** Moving average of recent task run times on this TaskManager (ms), null before the first one finished. */
  recentTaskMs: number | null;
  registeredAt: number;
}

export interface AllocationStrategy {
  readonly name: string;
  /** The chosen TaskManager's id; `candidates` is non-empty and every candidate has a free slot. */
  select(candidates: readonly TaskManagerLoad[]): string;
}

/** Fewest tasks first, so load spreads evenly; ties go to the most free slots, then the oldest registration. */
export const spreadStrategy: AllocationStrategy = {
  name: 'spread',
  select(candidates) {
    return best(candidates, (a, b) => a.used - b.used || (b.slots - b.used) - (a.slots - a.used) || a.registeredAt - b.registeredAt || cmp(a.id, b.id));
  },
};

/**
 * The scheduling score of the seed documents, S = R / T: R is the TaskManager's free-slot ratio and
 * T its recent task duration (seconds), so an idle, fast TaskManager scores highest. A TaskManager
 * without history counts with the cluster's mean duration (or 1 s when nobody has any).
 */
export const scoreStrategy: AllocationStrategy = {
  name: 'score',
  select(candidates) {
    const known = candidates.map((c) => c.recentTaskMs).filter((ms): ms is number => ms !== null);
    const fallbackMs = known.length > 0 ? known.reduce((a, b) => a + b, 0) / known.length : 1000;
    const score = (c: TaskManagerLoad): number => scoreOf(c, fallbackMs);
    return best(candidates, (a, b) => score(b) - score(a) || a.used - b.used || cmp(a.id, b.id));
  },
};

export function scoreOf(c: TaskManagerLoad, fallbackMs = 1000): number {
  const r = (c.slots - c.used) / c.slots;
  // A floor keeps instant tasks (T ≈ 0) from turning every score into infinity.
  const t = Math.max(c.recentTaskMs ?? fallbackMs, 10) / 1000;
  return r / t;
}

export function allocationStrategy(name: string): AllocationStrategy {
  switch (name) {
    case 'spread': return spreadStrategy;
    case 'score': return scoreStrategy;
    default: throw new Error(`unknown allocation strategy ${JSON.stringify(name)}; use spread or score (resourcemanager.allocation-strategy)`);
  }
}

function best(candidates: readonly TaskManagerLoad[], order: (a: TaskManagerLoad, b: TaskManagerLoad) => number): string {
  return [...candidates].sort(order)[0].id;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
