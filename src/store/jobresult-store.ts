
/**
 * JobResult store: `/jobresults/<jobId>` records a job's terminal outcome. A job with a result is
 * never run again. The entry is written "dirty" before the job is cleaned up (progress, then graph)
 * and marked "clean" after, so a leader that dies in between finishes the cleanup on recovery: a dirty
 * result whose graph still exists is found through `/jobgraphs`, so recovery never lists the history.
 * Results are kept for a bounded retention and then removed (`remove`) by the leader.
 */
import { ZkClient } from '../zk/client';
import { NodeExistsError, NoNodeError } from '../zk/errors';
import { join } from '../zk/paths';
import { jobResultPath, JOBRESULTS_PATH } from '../zk/layout';
import { isTerminalJobStatus, TerminalJobStatus } from '../jobgraph/status';
import { WriteGuard } from './jobgraph-store';
import { mapLimit } from '../util/concurrency';
import { writeBounded } from './bounded-write';

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
  /** Epoch-ms the job was first stored (orders job listings); absent in results written before it existed. */
  submittedAt?: number;
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
      await writeBounded(this.client, jobResultPath(entry.jobId), JSON.stringify(record), { op: 'create' });
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
    const entry = JSON.parse(data.toString('utf8')) as JobResultEntry;
    if (entry.state === 'clean') return;
    await writeBounded(this.client, path, JSON.stringify({ ...entry, state: 'clean' }), { op: 'set', version: stat.version });
  }

  async get(jobId: string): Promise<StoredResult | null> {
    try {
      const { data } = await this.client.get(jobResultPath(jobId));
      return decode(jobId, data);
    } catch (err) {
      if (err instanceof NoNodeError) return null;
      throw err;
    }
  }

  /** Deletes `/jobresults/<jobId>` (retention); a missing node is fine. Guarded like every write. */
  async remove(jobId: string): Promise<void> {
    this.guard();
    try {
      await this.client.delete(jobResultPath(jobId));
    } catch (err) {
      if (!(err instanceof NoNodeError)) throw err;
    }
  }

  /** Names of every `/jobresults` child: one round trip, but its answer grows with the history. */
  listIds(): Promise<string[]> {
    return this.client.getChildren(JOBRESULTS_PATH);
  }

  /** Every stored result. Costs one read per job ever kept: recovery must not use it (see `getMany`). */
  async readAll(concurrency = 256): Promise<StoredResult[]> {
    return this.getMany(await this.listIds(), concurrency);
  }

  /** Reads the results of `jobIds` with up to `concurrency` reads in flight; absent ones are left out. */
  async getMany(jobIds: readonly string[], concurrency = 256): Promise<StoredResult[]> {
    const results = await mapLimit(jobIds, concurrency, async (id) => {
      try {
        const { data } = await this.client.get(join(JOBRESULTS_PATH, id));
        return decode(id, data);
      } catch (err) {
        if (err instanceof NoNodeError) return null;
        throw err;
      }
    });
    return results.filter((r): r is StoredResult => r !== null);
  }
}

function decode(jobId: string, data: Buffer): StoredResult {
  try {
    const entry = JSON.parse(data.toString('utf8')) as JobResultEntry;
    if ((entry.state !== 'dirty' && entry.state !== 'clean') || !isTerminalJobStatus(entry.jobStatus)) {
      return { ok: false, jobId, reason: 'not a job result record' };
    }
    return { ok: true, entry: { ...entry, jobId } };
  } catch (err) {
    return { ok: false, jobId, reason: `not JSON: ${(err as Error).message}` };
  }
}
