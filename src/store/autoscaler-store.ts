/**
 * The autoscaler's desired state in ZooKeeper: `/autoscaler` (src/zk/layout.ts), one small sealed node
 * written by the leader (guarded by its term) before it launches or after it drains, so a new leader
 * adopts launches under way instead of starting them twice (docs/ARCHITECTURE.md, "Autoscaling").
 */
import type { ZooKeeperClient } from '../zk/client';
import { NoNodeError, NodeExistsError } from '../zk/errors';
import { AUTOSCALER_PATH } from '../zk/layout';
import { sealOf } from '../zk/sealed';
import type { AutoscalerState, AutoscalerStateStore, LaunchRecord } from '../resources/autoscaler';
import type { EventLogger } from '../util/logger';
import { silentLogger } from '../util/logger';
import type { WriteGuard } from './jobgraph-store';

const CONTEXT = 'autoscaler';
/** More launches than this in one record is not something this product wrote. */
const MAX_RECORDS = 10_000;

export class ZkAutoscalerStore implements AutoscalerStateStore {
  private readonly logger: EventLogger;

  /** `guard` throws NotLeaderError once the writing term is over. */
  constructor(private readonly client: ZooKeeperClient, private readonly guard: WriteGuard, logger?: EventLogger) {
    this.logger = logger ?? silentLogger;
  }

  /**
   * The stored state; null when `/autoscaler` is missing, or not a valid sealed record (logged as
   * `autoscaler.state.unreadable`, never trusted, never fatal). Rejects with a ZkError on connection trouble.
   */
  async read(): Promise<AutoscalerState | null> {
    let data: Buffer;
    try {
      data = (await this.client.get(AUTOSCALER_PATH)).data;
    } catch (err) {
      if (err instanceof NoNodeError) return null;
      throw err;
    }
    const opened = sealOf(this.client).open<AutoscalerState>(CONTEXT, AUTOSCALER_PATH, data);
    const state = opened.ok ? checkState(opened.value) : null;
    if (!state) this.logger.warn('autoscaler.state.unreadable', { path: AUTOSCALER_PATH, reason: opened.ok ? 'not an autoscaler record' : opened.reason });
    return state;
  }

  /** Creates or replaces `/autoscaler` (guarded before every write). Rejects with NotLeaderError or a ZkError. */
  async write(state: AutoscalerState): Promise<void> {
    const data = sealOf(this.client).seal(CONTEXT, { ...state });
    this.guard();
    try {
      await this.client.set(AUTOSCALER_PATH, data);
      return;
    } catch (err) {
      if (!(err instanceof NoNodeError)) throw err;
    }
    // Never written, or deleted by an operator: created again.
    this.guard();
    try {
      await this.client.create(AUTOSCALER_PATH, data, 'persistent');
    } catch (err) {
      if (!(err instanceof NodeExistsError)) throw err;
      this.guard();
      await this.client.set(AUTOSCALER_PATH, data);
    }
  }
}

function checkState(value: AutoscalerState): AutoscalerState | null {
  const count = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  const id = (s: unknown): s is string => typeof s === 'string' && /^[A-Za-z0-9_.-]{1,128}$/.test(s);
  if (typeof value !== 'object' || value === null || !count(value.desired) || !count(value.updatedAt) || !count(value.epoch)) return null;
  if (!Array.isArray(value.launches) || !Array.isArray(value.draining) || value.launches.length > MAX_RECORDS || value.draining.length > MAX_RECORDS) return null;
  const launches: LaunchRecord[] = [];
  for (const l of value.launches as unknown[]) {
    const r = l as Partial<LaunchRecord> | null;
    if (!r || !id(r.id) || !count(r.launchedAt) || !(r.registeredAt === null || count(r.registeredAt))) return null;
    if (r.host !== undefined && (typeof r.host !== 'string' || r.host.length > 255)) return null;
    launches.push({ id: r.id, launchedAt: r.launchedAt, registeredAt: r.registeredAt, ...(r.host !== undefined ? { host: r.host } : {}) });
  }
  if (!value.draining.every(id)) return null;
  return { desired: value.desired, launches, draining: [...value.draining], updatedAt: value.updatedAt, epoch: value.epoch };
}
