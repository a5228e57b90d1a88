/**
 * Recorded Prometheus scrapes for tests: a small parser of the text exposition format (the
 * `name{labels} value` lines prom-client writes; comments and timestamps are not needed) and the
 * conversion of scrapes recorded at irregular times into promtool `input_series` on a fixed step,
 * with what a real Prometheus stores: an `up` series per target, the target's labels (`job`,
 * `instance`) on every series, and a staleness marker when a series or its whole target disappears.
 */

/** One sample line of an exposition. */
export interface PromSample { name: string; labels: Record<string, string>; value: number }

/**
 * The sample lines of a text exposition. Label values are taken as written between quotes (our
 * exporters never escape quotes in them); `NaN`, `+Inf` and `-Inf` parse as numbers.
 */
export function parsePromText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The first sample named `name` whose labels include `labels`; undefined when none. */
export function sampleValue(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

/** One scrape of one target: `at` in epoch-ms; `samples` null when the scrape failed (target down). */
export interface RecordedScrape { instance: string; at: number; samples: PromSample[] | null }

/** For each step k (time `startMs + k * stepMs`) and each instance: the samples of its nearest scrape (null: failed). */
export type ScrapeGrid = Map<string, Array<PromSample[] | null>>;

/**
 * Resamples recorded scrapes onto `steps` steps of `stepMs` ms from `startMs` (epoch-ms), taking for
 * each instance and step the scrape nearest in time. Instances without any scrape are left out.
 */
export function resampleScrapes(scrapes: RecordedScrape[], startMs: number, stepMs: number, steps: number): ScrapeGrid {
  const byInstance = new Map<string, RecordedScrape[]>();
  for (const s of scrapes) byInstance.set(s.instance, [...(byInstance.get(s.instance) ?? []), s]);
  const grid: ScrapeGrid = new Map();
  for (const [instance, list] of byInstance) {
    list.sort((a, b) => a.at - b.at);
    const row: Array<PromSample[] | null> = [];
    let i = 0;
    for (let k = 0; k < steps; k++) {
      const t = startMs + k * stepMs;
      while (i + 1 < list.length && Math.abs(list[i + 1].at - t) <= Math.abs(list[i].at - t)) i++;
      row.push(list[i].samples);
    }
    grid.set(instance, row);
  }
  return grid;
}

/** A series selector in promtool's notation, labels sorted: `name{a="1",b="2"}`. */
export function seriesName(name: string, labels: Record<string, string>): string {
  const body = Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',');
  return `${name}{${body}}`;
}

/** One promtool `input_series` entry: `values` is space-separated, `_` for no sample, `stale` for a staleness marker. */
export interface InputSeries { series: string; values: string }

/**
 * promtool `input_series` from a grid: every series of the instances' samples whose metric name
 * `keep` accepts, with labels `job` and `instance` added, plus `up{job,instance}` (1 when the scrape
 * answered, else 0). Like Prometheus, a series that was present and is missing from the next
 * step (failed scrape, or no longer exported) gets one staleness marker, then no samples.
 */
export function inputSeries(grid: ScrapeGrid, job: string, keep: (name: string) => boolean): InputSeries[] {
  const out: InputSeries[] = [];
  for (const [instance, row] of grid) {
    const target = { job, instance };
    out.push({ series: seriesName('up', target), values: row.map((s) => (s ? '1' : '0')).join(' ') });
    const keys = new Map<string, (samples: PromSample[]) => number | undefined>();
    for (const samples of row) {
      for (const s of samples ?? []) {
        if (!keep(s.name)) continue;
        const key = seriesName(s.name, { ...s.labels, ...target });
        const own = seriesName(s.name, s.labels);
        if (!keys.has(key)) keys.set(key, (list) => list.find((x) => seriesName(x.name, x.labels) === own)?.value);
      }
    }
    for (const [key, valueIn] of keys) {
      let present = false;
      const values = row.map((samples) => {
        const v = samples ? valueIn(samples) : undefined;
        if (v !== undefined) { present = true; return formatValue(v); }
        if (present) { present = false; return 'stale'; }
        return '_';
      });
      out.push({ series: key, values: values.join(' ') });
    }
  }
  return out;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
