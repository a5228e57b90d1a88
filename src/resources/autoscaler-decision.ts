/**
 * The autoscaler's decision (docs/ARCHITECTURE.md, "Autoscaling"): how many TaskManagers the pool
 * should have, from the slot demand that waits in the SlotQueue and the TaskManagers standing idle.
 * Pure: the caller passes the observed pool, a monotonic time and the memory of the previous round
 * (when demand started, since when each TaskManager is idle); it gets the target, the TaskManagers
 * to drain, a reason for the log, and the memory for the next round.
 */

/** One registered TaskManager that takes work (not drained), as the decision sees it. */
export interface PoolMember {
  id: string;
  slots: number;
  /** Subtasks holding one of its slots (reserved, deploying or running). */
  busySlots: number;
  /** Launched by the autoscaler (preferred when draining, so static TaskManagers stay). */
  launched: boolean;
}

export interface ScalingLimits {
  min: number;
  max: number;
  /** Demand beyond the free slots must persist this long (ms) before the pool grows. */
  scaleUpDelayMs: number;
  /** A TaskManager must stand idle this long (ms) before it is drained. */
  scaleDownCooldownMs: number;
  /** Slots of a TaskManager the autoscaler launches (taskmanager.numberOfTaskSlots). */
  slotsPerTaskManager: number;
}

export interface ScalingObservation {
  /** Monotonic ms. */
  now: number;
  /** Slot requests waiting in the SlotQueue. */
  waitingRequests: number;
  /** Registered TaskManagers taking work (drained ones are leaving and do not count). */
  members: readonly PoolMember[];
  /** Launches recorded but not registered yet (within the launch timeout): they count as members to come. */
  pendingLaunches: number;
}

/** What the decision remembers between rounds (monotonic ms). */
export interface ScalingMemory {
  /** Since when waiting demand exceeds the free and coming slots; null: it does not. */
  shortSince: number | null;
  /** Per TaskManager id: since when it holds no task. */
  idleSince: Readonly<Record<string, number>>;
}

export const INITIAL_MEMORY: ScalingMemory = Object.freeze({ shortSince: null, idleSince: Object.freeze({}) });

export type ScalingDecision =
  | { direction: 'none'; current: number; desired: number; reason: string; memory: ScalingMemory }
  | { direction: 'up'; current: number; desired: number; launch: number; reason: string; memory: ScalingMemory }
  | { direction: 'down'; current: number; desired: number; drain: string[]; reason: string; memory: ScalingMemory };

/**
 * Decides one round. The pool is `members + pendingLaunches`. It grows (at once) to `min`, and to
 * cover waiting requests once they exceeded the free slots (of members and coming launches) for
 * `scaleUpDelayMs`, never beyond `max`. It shrinks by draining members idle for `scaleDownCooldownMs`
 * (launched first, then the highest id) while the free slots left still cover the waiting requests,
 * never below `min`; above `max` it drains idle members at once. Busy members are never chosen.
 */
export function decideScaling(limits: ScalingLimits, seen: ScalingObservation, memory: ScalingMemory): ScalingDecision {
  const { now } = seen;
  const current = seen.members.length + seen.pendingLaunches;
  const idleSince: Record<string, number> = {};
  for (const m of seen.members) if (m.busySlots === 0) idleSince[m.id] = memory.idleSince[m.id] ?? now;
  const slots = Math.max(1, limits.slotsPerTaskManager);
  const free = seen.members.reduce((n, m) => n + Math.max(0, m.slots - m.busySlots), 0) + seen.pendingLaunches * slots;
  const shortfall = seen.waitingRequests - free;
  const shortSince = shortfall > 0 ? memory.shortSince ?? now : null;
  const next: ScalingMemory = { shortSince, idleSince };
  const none = (reason: string): ScalingDecision => ({ direction: 'none', current, desired: current, reason, memory: next });

  if (current < limits.min) {
    return { direction: 'up', current, desired: limits.min, launch: limits.min - current, reason: `the pool of ${current} is below resourcemanager.autoscaler.min (${limits.min})`, memory: next };
  }
  if (shortfall > 0 && current < limits.max) {
    if (now - shortSince! < limits.scaleUpDelayMs) return none(`${seen.waitingRequests} slot requests wait beside ${free} free slots, for less than the scale-up delay`);
    const desired = Math.min(limits.max, current + Math.ceil(shortfall / slots));
    return {
      direction: 'up', current, desired, launch: desired - current, memory: { ...next, shortSince: null },
      reason: `${seen.waitingRequests} slot requests waited beside ${free} free slots for ${Math.round(now - shortSince!)} ms (scale-up delay ${limits.scaleUpDelayMs} ms)`,
    };
  }
  // Idle members in drain order: launched ones first, then the highest id (the newest pod of a StatefulSet).
  const idle = seen.members.filter((m) => m.busySlots === 0)
    .sort((a, b) => Number(b.launched) - Number(a.launched) || b.id.localeCompare(a.id, 'en', { numeric: true }));
  if (current > limits.max) {
    const drain = idle.slice(0, current - limits.max).map((m) => m.id);
    if (drain.length === 0) return none(`the pool of ${current} is above resourcemanager.autoscaler.max (${limits.max}) but every TaskManager is busy`);
    return { direction: 'down', current, desired: current - drain.length, drain, reason: `the pool of ${current} is above resourcemanager.autoscaler.max (${limits.max})`, memory: next };
  }
  const cold = idle.filter((m) => now - idleSince[m.id] >= limits.scaleDownCooldownMs);
  const drain: string[] = [];
  let spare = free - Math.max(0, seen.waitingRequests);
  for (const m of cold) {
    if (current - drain.length <= limits.min || spare - m.slots < 0) break;
    drain.push(m.id);
    spare -= m.slots;
  }
  if (drain.length === 0) return none(shortfall > 0 ? `${seen.waitingRequests} slot requests wait; the pool is at resourcemanager.autoscaler.max (${limits.max})` : 'demand is covered');
  return {
    direction: 'down', current, desired: current - drain.length, drain, memory: next,
    reason: `${drain.length} TaskManagers idle for at least the scale-down cooldown (${limits.scaleDownCooldownMs} ms); ${seen.waitingRequests} slot requests wait`,
  };
}
