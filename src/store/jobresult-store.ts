/**
 * JobResult store: `/jobresults/<jobId>` records a job's terminal outcome. A job with a result is
 * never run again. The entry is written "dirty" before the graph is cleaned up and marked "clean"
 * after, so a leader that dies in between finishes the cleanup on recovery.
 */
import { ZkClient } from '../zk/client';
import { NodeExistsError, NoNodeError } from '../zk/errors';
import { join } from '../zk/paths';
import { jobResultPath, JOBRESULTS_PATH } from '../zk/layout';
import { isTerminalJobStatus, TerminalJobStatus } from '../jobgraph/status';
import { WriteGuard } from './jobgraph-store';
import { mapLimit } from '../util/concurrency';
import { sealOf, StateSeal } from '../zk/sealed';

export type { TerminalJobStatus } from '../jobgraph/status';

export interface JobResultEntry {
  state: 'dirty' | 'clean';
  jobId: string;
  name: string;
  jobStatus: TerminalJobStatus;
  startTime: number;
  endTime: number;
  /** Digest of the graph that ran: a resubmission with the same id is compared against it. */
  graphDigest: string;
  failure?: { message: string; timestamp: number };
}

export type StoredResult = { ok: true; entry: JobResultEntry } | { ok: false; jobId: string; reason: string };

export class JobResultStore {
  constructor(private readonly client: ZkClient, private readonly guard: WriteGuard) {}

  init(): Promise<void> {
    return this.client.mkdirp(JOBRESULTS_PATH);
  }

  /** Records the terminal result as dirty. An existing result wins (a job ends only once). */
  async createDirty(entry: Omit<JobResultEntry, 'state'>): Promise<JobResultEntry> {
    this.guard();
    const record: JobResultEntry = { ...entry, state: 'dirty' };
    try {
      await this.client.create(jobResultPath(entry.jobId), sealOf(this.client).seal(resultContext(entry.jobId), record), 'persistent');
      return record;
    } catch (err) {
      if (!(err instanceof NodeExistsError)) throw err;
      const existing = await this.get(entry.jobId);
      if (existing?.ok) return existing.entry;
      throw err;
    }
  }

  async markClean(jobId: string): Promise<void> {
    this.guard();
    const path = jobResultPath(jobId);
    const { data, stat } = await this.client.get(path);
    const stored = decode(sealOf(this.client), jobId, path, data);
    if (!stored.ok) throw new Error(`cannot mark the result of job ${jobId} clean: ${stored.reason}`);
    if (stored.entry.state === 'clean') return;
    await this.client.set(path, sealOf(this.client).seal(resultContext(jobId), { ...stored.entry, state: 'clean' }), stat.version);
  }

  async get(jobId: string): Promise<StoredResult | null> {
    try {
      const path = jobResultPath(jobId);
      const { data } = await this.client.get(path);
      return decode(sealOf(this.client), jobId, path, data);
    } catch (err) {
      if (err instanceof NoNodeError) return null;
      throw err;
    }
  }

  listIds(): Promise<string[]> {
    return this.client.getChildren(JOBRESULTS_PATH);
  }

  async readAll(concurrency = 256): Promise<StoredResult[]> {
    const ids = await this.listIds();
    const results = await mapLimit(ids, concurrency, async (id) => {
      try {
        const path = join(JOBRESULTS_PATH, id);
        const { data } = await this.client.get(path);
        return decode(sealOf(this.client), id, path, data);
      } catch (err) {
        if (err instanceof NoNodeError) return null;
        throw err;
      }
    });
    return results.filter((r): r is StoredResult => r !== null);
  }
}

function decode(seal: StateSeal, jobId: string, path: string, data: Buffer): StoredResult {
  const opened = seal.open<JobResultEntry>(resultContext(jobId), path, data);
  if (!opened.ok) return { ok: false, jobId, reason: opened.reason };
  const entry = opened.value;
  if ((entry.state !== 'dirty' && entry.state !== 'clean') || !isTerminalJobStatus(entry.jobStatus)) {
    return { ok: false, jobId, reason: 'not a job result record' };
  }
  return { ok: true, entry: { ...entry, jobId } };
}

/** What a result's MAC binds it to: its job id. */
function resultContext(jobId: string): string {
  return `jobresult:${jobId}`;
}
