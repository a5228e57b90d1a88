/**
 * Acknowledged cancel requests: `/jobs/<jobId>/cancel` (src/zk/layout.ts), written by the leader's
 * Dispatcher before it answers 202, so a cancel survives any failover that follows: a recovering
 * leader that finds the node cancels the job instead of running it on. Removed with the job's other
 * runtime nodes once its result is recorded. Its own node (not a field of the progress node), so the
 * JobMaster's progress writes never race with it.
 */
import { ZooKeeperClient } from '../zk/client';
import { NodeExistsError, NoNodeError } from '../zk/errors';
import { cancelRequestPath, jobPath } from '../zk/layout';
import { WriteGuard } from './jobgraph-store';

export class CancelRequestStore {
  constructor(private readonly client: ZooKeeperClient, private readonly guard: WriteGuard) {}

  /**
   * Records that `jobId` is to be canceled (idempotent: an existing record stays). Resolves once it is
   * in ZooKeeper. Throws NotLeaderError (from the guard) when the term is over, a ZkError when the
   * write could not be confirmed (it may or may not have landed: asking again is safe).
   */
  async record(jobId: string, epoch: number, requestedAt: number): Promise<void> {
    const data = JSON.stringify({ jobId, requestedAt: new Date(requestedAt).toISOString(), epoch });
    this.guard();
    await this.client.mkdirp(jobPath(jobId));
    this.guard();
    try {
      await this.client.create(cancelRequestPath(jobId), data, 'persistent');
    } catch (err) {
      if (!(err instanceof NodeExistsError)) throw err;
    }
  }

  /** True when a cancel of `jobId` was recorded. Rejects with a ZkError on connection trouble. */
  async isRecorded(jobId: string): Promise<boolean> {
    return (await this.client.exists(cancelRequestPath(jobId))) !== null;
  }

  /** Removes the record (after the job's result is recorded); a missing one is fine. */
  async remove(jobId: string): Promise<void> {
    this.guard();
    try {
      await this.client.delete(cancelRequestPath(jobId));
    } catch (err) {
      if (!(err instanceof NoNodeError)) throw err;
    }
  }
}
