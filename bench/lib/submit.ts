/** Submitting many jobs over REST with a fixed number of requests in flight. */
import { HttpClient } from './http';
import { nowMs } from './stats';
import { mapLimit, sleep } from './wait';

export interface SubmitRun {
  /** Per-request latency in ms (accepted requests only). */
  latencies: number[];
  wallMs: number;
  accepted: number;
  /** Non-202 answers, by status (503s were retried). */
  rejected: Record<string, number>;
}

/** POSTs every graph to `${url}/jobs`; a 503 is retried (bounded) as a real client would. */
export async function submitAll(url: string, graphs: ReadonlyArray<Record<string, unknown>>, concurrency: number, http?: HttpClient): Promise<SubmitRun> {
  const client = http ?? new HttpClient(concurrency);
  const latencies: number[] = [];
  const rejected: Record<string, number> = {};
  const started = nowMs();
  try {
    await mapLimit(graphs, concurrency, async (graph) => {
      const body = JSON.stringify(graph);
      for (let attempt = 0; attempt < 20; attempt++) {
        const t = nowMs();
        const a = await client.tryRequest('POST', `${url}/jobs`, body);
        if (a.status === 202) {
          latencies.push(nowMs() - t);
          return;
        }
        if (a.status !== 503 && a.status !== 0) {
          rejected[a.status] = (rejected[a.status] ?? 0) + 1;
          return;
        }
        await sleep(50);
      }
      rejected.gaveUp = (rejected.gaveUp ?? 0) + 1;
    });
  } finally {
    if (!http) client.close();
  }
  return { latencies, wallMs: nowMs() - started, accepted: latencies.length, rejected };
}
