
/**
 * JobResult store: `/jobresults/<jobId>` records a job's terminal outcome. A job with a result is
 * never run again. The entry is written "dirty" before the job is cleaned up (progress, then graph)
 * and marked "clean" after, so a leader that dies in between finishes the cleanup on recovery: a dirty
 * result whose graph still exists is found through `/jobgraphs`, so recovery never lists the history.
 * Results are kept for a bounded retention and then removed (`remove`) by the leader.
 */
import { Watcher, ZooKeeperClient } from '../zk/client';
import { NodeExistsError, NoNodeError } from '../zk/errors';
import { join } from '../zk/paths';
import { jobResultPath, JOBRESULTS_PATH } from '../zk/layout';
import { isTerminalJobStatus, TerminalJobStatus } from '../jobgraph/status';
import { WriteGuard } from './jobgraph-store';
import { mapLimit } from '../util/concurrency';
import { writeBounded } from './bounded-write';
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
  /** Epoch-ms the job was first stored (orders job listings); absent in results written before it existed. */
  submittedAt?: number;
  /** The principal that submitted the job, when one was recorded with its graph. */
  submittedBy?: string;
}

export type StoredResult = { ok: true; entry: JobResultEntry } | { ok: false; jobId: string; reason: string };

export class JobResultStore {
  constructor(private readonly client: ZooKeeperClient, private readonly guard: WriteGuard) {}

  init(): Promise<void> {
    return this.client.mkdirp(JOBRESULTS_PATH);
  }

  /** Records the terminal result as dirty. An existing result wins (a job ends only once). */
  async createDirty(entry: Omit<JobResultEntry, 'state'>): Promise<JobResultEntry> {
    this.guard();
    const record: JobResultEntry = { ...entry, state: 'dirty' };
    try {
      await writeBounded(this.client, jobResultPath(entry.jobId), sealOf(this.client).seal(resultContext(entry.jobId), record), { op: 'create' });
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
    await writeBounded(this.client, path, sealOf(this.client).seal(resultContext(jobId), { ...stored.entry, state: 'clean' }), { op: 'set', version: stat.version });
  }

  /** The stored result (null when absent); the optional watcher fires once when the node changes or goes. */
  async get(jobId: string, watcher?: Watcher): Promise<StoredResult | null> {
    try {
      const path = jobResultPath(jobId);
      const { data } = await this.client.get(path, watcher);
      return decode(sealOf(this.client), jobId, path, data);
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

  /** Names of every `/jobresults` child: one round trip, but its answer grows with the history. The optional watcher fires once on the next membership change. */
  listIds(watcher?: Watcher): Promise<string[]> {
    return this.client.getChildren(JOBRESULTS_PATH, watcher);
  }

  /** Every stored result. Costs one read per job ever kept: recovery must not use it (see `getMany`). */
  async readAll(concurrency = 256): Promise<StoredResult[]> {
    return this.getMany(await this.listIds(), concurrency);
  }

  /** Reads the results of `jobIds` with up to `concurrency` reads in flight; absent ones are left out. */
  async getMany(jobIds: readonly string[], concurrency = 256): Promise<StoredResult[]> {
    const results = await mapLimit(jobIds, concurrency, async (id) => {
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
