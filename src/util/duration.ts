/** Flink's duration syntax (TimeUtils): an integer amount and an optional unit, e.g. "500 ms", "10 s", "1 min". */
const UNIT_MS = new Map<string, number>();
for (const [ms, names] of [
  [1, ['ms', 'milli', 'millis', 'millisecond', 'milliseconds']],
  [1000, ['s', 'sec', 'secs', 'second', 'seconds']],
  [60_000, ['m', 'min', 'mins', 'minute', 'minutes']],
  [3_600_000, ['h', 'hour', 'hours']],
  [86_400_000, ['d', 'day', 'days']],
] as const) {
  for (const name of names) UNIT_MS.set(name, ms);
}

export const DURATION_EXAMPLES = '"500 ms", "10 s", "1 min", "2 h" or "1 d"';

/**
 * Milliseconds, or undefined when `value` is not a duration. A bare number (or numeric string) is
 * counted in `bareUnitMs`, so keys measured in seconds can keep accepting plain numbers.
 */
export function parseDurationMs(value: unknown, bareUnitMs = 1): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value * bareUnitMs : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+)\s*([a-z]*)$/.exec(value.trim().toLowerCase());
  if (!match) return undefined;
  const unitMs = match[2] === '' ? bareUnitMs : UNIT_MS.get(match[2]);
  if (unitMs === undefined) return undefined;
  const ms = Number(match[1]) * unitMs;
  return Number.isSafeInteger(ms) ? ms : undefined;
}
