/** Plain-text output helpers for the client verbs; every function returns text ending in a newline. */

/** Columns as wide as their widest cell, two spaces apart, no trailing blanks (so `awk`/`cut` see clean fields). */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  // reduce, not Math.max(...rows): a listing of 100k jobs would overflow the call stack.
  const widths = headers.map((h, i) => rows.reduce((w, r) => Math.max(w, (r[i] ?? '').length), h.length));
  const line = (cells: readonly string[]) =>
    widths.map((w, i) => (cells[i] ?? '').padEnd(w)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** `Key:   value` lines with the values aligned. */
export function formatKeyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = pairs.reduce((w, [k]) => Math.max(w, k.length + 1), 0);
  return pairs.map(([k, v]) => `${(k + ':').padEnd(width)}  ${v}`.trimEnd()).join('\n') + '\n';
}

/** Compact duration: `850ms`, `12.3s`, `2m05s`, `1h02m`, `3d04h`. Negative or missing (Flink's -1) → `-`. */
export function formatDuration(ms: unknown): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/**
 * Epoch milliseconds as UTC ISO-8601 to the second: unambiguous across the replicas' and the user's time zones.
 * Flink reports "not yet" as -1 (or 0); those, and non-numbers, print as `-`.
 */
export function formatTime(epochMs: unknown): string {
  if (typeof epochMs !== 'number' || !Number.isFinite(epochMs) || epochMs <= 0) return '-';
  return new Date(epochMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Any JSON value as one table cell. */
export function cell(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
