/**
 * Job priorities (docs/ARCHITECTURE.md, "Priorities, reserved slots, preemption and drain"). A job's
 * `priority` is an integer, or the name of a class from `scheduler.priority-classes`; the JobGraph
 * stores the integer, so a renamed or removed class never makes a stored job unreadable. A job without
 * one runs at the default class's priority (`scheduler.default-priority-class`).
 */

/** Named priorities, e.g. `{low: 0, normal: 50, urgent: 100}`: higher runs first. */
export type PriorityClasses = Readonly<Record<string, number>>;

/** What a job's priority may be when given as a number. */
export const MIN_PRIORITY = -1_000_000;
export const MAX_PRIORITY = 1_000_000;

/** The classes every cluster has unless `scheduler.priority-classes` says otherwise. */
export const DEFAULT_PRIORITY_CLASSES: PriorityClasses = Object.freeze({ low: 0, normal: 50, urgent: 100 });
export const DEFAULT_PRIORITY_CLASS = 'normal';

/** Priority-class names: safe in config strings, REST and logs. */
export const PRIORITY_CLASS_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/**
 * The integer a submitted `priority` means. Throws Error with a message naming the field (`path`) and
 * the known classes when it is neither an integer in [MIN_PRIORITY, MAX_PRIORITY] nor a class name.
 */
export function resolvePriority(value: unknown, classes: PriorityClasses, path = 'priority'): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= MIN_PRIORITY && value <= MAX_PRIORITY) return value;
  if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(classes, value)) return classes[value];
  const known = Object.entries(classes).sort((a, b) => a[1] - b[1]).map(([name, p]) => `"${name}" (${p})`).join(', ');
  throw new Error(`${path} must be one of the priority classes ${known || '(none configured)'} (scheduler.priority-classes) ` +
    `or an integer between ${MIN_PRIORITY} and ${MAX_PRIORITY}, got ${JSON.stringify(value)?.slice(0, 80) ?? 'nothing'}`);
}

/** The name of the class with exactly this priority (the highest-sorting name on ties), or null. */
export function priorityClassOf(priority: number, classes: PriorityClasses): string | null {
  const names = Object.keys(classes).filter((name) => classes[name] === priority).sort();
  return names[0] ?? null;
}
