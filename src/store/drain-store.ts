/**
 * Drained TaskManagers in ZooKeeper: `/drains/<taskManagerId>` (src/zk/layout.ts), one small sealed
 * node per drain, written by the leader before it answers the drain request, so a failover keeps the
 * TaskManager draining. Read by every new leader's ResourceManager before it places work.
 */
import type { ZooKeeperClient } from '../zk/client';
import { NoNodeError, NodeExistsError } from '../zk/errors';
import { drainPath, DRAINS_PATH } from '../zk/layout';
import { sealOf } from '../zk/sealed';
import type { DrainRecord, DrainRecords } from '../resources/drain';
import type { EventLogger } from '../util/logger';
import { silentLogger } from '../util/logger';
import type { WriteGuard } from './jobgraph-store';

const drainContext = (taskManagerId: string): string => `drain:${taskManagerId}`;

export class ZkDrainStore implements DrainRecords {
  private readonly logger: EventLogger;

  /** `guard` throws NotLeaderError once the writing term is over. */
  constructor(private readonly client: ZooKeeperClient, private readonly guard: WriteGuard, logger?: EventLogger) {
    this.logger = logger ?? silentLogger;
  }

  /**
   * Every drain stored under `/drains`. A node that is not a valid sealed record is skipped with a
   * `drain.record.unreadable` event (never trusted, never fatal). Rejects with a ZkError on connection trouble.
   */
  async list(): Promise<DrainRecord[]> {
    let names: string[];
    try {
      names = await this.client.getChildren(DRAINS_PATH);
    } catch (err) {
      if (err instanceof NoNodeError) return [];
      throw err;
    }
    const records: DrainRecord[] = [];
    for (const name of names) {
      let path: string;
      try {
        path = drainPath(name);
      } catch {
        continue;
      }
      let data: Buffer;
      try {
        data = (await this.client.get(path)).data;
      } catch (err) {
        if (err instanceof NoNodeError) continue;
        throw err;
      }
      const opened = sealOf(this.client).open<DrainRecord>(drainContext(name), path, data);
      const record = opened.ok ? checkRecord(opened.value, name) : null;
      if (!record) {
        this.logger.warn('drain.record.unreadable', { path, reason: opened.ok ? 'not a drain record' : opened.reason });
        continue;
      }
      records.push(record);
    }
    return records;
  }

  /** Creates or replaces `/drains/<id>` (guarded). Rejects with NotLeaderError or a ZkError. */
  async record(drain: DrainRecord): Promise<void> {
    const path = drainPath(drain.taskManagerId);
    const data = sealOf(this.client).seal(drainContext(drain.taskManagerId), { ...drain });
    this.guard();
    await this.client.mkdirp(DRAINS_PATH);
    this.guard();
    try {
      await this.client.create(path, data, 'persistent');
    } catch (err) {
      if (!(err instanceof NodeExistsError)) throw err;
      this.guard();
      await this.client.set(path, data);
    }
  }

  /** Deletes `/drains/<id>` (guarded); a missing node is fine. */
  async remove(taskManagerId: string): Promise<void> {
    this.guard();
    try {
      await this.client.delete(drainPath(taskManagerId));
    } catch (err) {
      if (!(err instanceof NoNodeError)) throw err;
    }
  }
}

function checkRecord(value: DrainRecord, name: string): DrainRecord | null {
  const okTime = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (value.taskManagerId !== name || !okTime(value.requestedAt) || (value.deadlineAt !== null && !okTime(value.deadlineAt))) return null;
  return { taskManagerId: value.taskManagerId, requestedAt: value.requestedAt, deadlineAt: value.deadlineAt };
}
