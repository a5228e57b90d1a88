/**
 * Leader retrieval: watches `/leader/info` and reports every change, including "no leader" when the
 * node disappears. Used by standbys (to redirect) and TaskManagers (to register).
 */
import { EventEmitter } from 'node:events';
import { LeaderInfo, parseLeaderInfo } from './leader-info';
import { LEADER_INFO_PATH } from '../zk/layout';
import { StateChange, ZkClient } from '../zk/client';
import { ZkError } from '../zk/errors';
import { SerialQueue } from '../util/serial-queue';
import { EventLogger, silentLogger } from '../util/logger';

export class LeaderRetrievalService extends EventEmitter {
  private leader: LeaderInfo | null = null;
  private running = false;
  private generation = 0;
  private readonly queue = new SerialQueue();
  private readonly logger: EventLogger;
  private readonly onState = (change: StateChange): void => {
    if (change.state === 'CONNECTED' || change.state === 'RECONNECTED') this.refresh();
  };

  constructor(private readonly client: ZkClient, options: { logger?: EventLogger } = {}) {
    super();
    this.logger = options.logger ?? silentLogger;
  }

  /** The last leader seen (may be stale while disconnected; callers check the connection state). */
  get current(): LeaderInfo | null { return this.leader; }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.client.on('state', this.onState);
    if (this.client.isConnected) this.refresh();
  }

  stop(): void {
    this.running = false;
    this.generation++;
    this.client.off('state', this.onState);
  }

  /** Resolves with the first leader matching `predicate` (default: any leader). */
  waitForLeader(predicate: (l: LeaderInfo) => boolean = () => true): Promise<LeaderInfo> {
    if (this.leader && predicate(this.leader)) return Promise.resolve(this.leader);
    return new Promise((resolve) => {
      const listener = (l: LeaderInfo | null): void => {
        if (l && predicate(l)) { this.off('change', listener); resolve(l); }
      };
      this.on('change', listener);
    });
  }

  private refresh(): void {
    const generation = ++this.generation;
    void this.queue.run(() => this.read(generation));
  }

  private async read(generation: number): Promise<void> {
    if (!this.running || generation !== this.generation) return;
    const watcher = (): void => { if (this.running && generation === this.generation) this.refresh(); };
    try {
      const stat = await this.client.exists(LEADER_INFO_PATH, watcher);
      if (!stat) return this.update(null);
      const { data, stat: current } = await this.client.get(LEADER_INFO_PATH, watcher);
      const info = parseLeaderInfo(data);
      if (!info) this.logger.warn('leader.info.unreadable', { path: LEADER_INFO_PATH, bytes: data.length });
      // A leader's node is ephemeral and owned by the session it names; anything else (a node written by
      // hand or by a foreign tool) must not steer standbys, nor raise the epoch TaskManagers accept.
      if (info && current.ephemeralOwner !== info.zkSessionId) {
        this.logger.warn('leader.info.foreign', { path: LEADER_INFO_PATH, claimed: info.replicaId, claimedEpoch: info.epoch, owner: current.ephemeralOwner });
        return this.update(null);
      }
      this.update(info);
    } catch (err) {
      // Deleted between exists and get: the exists-watch already fired, a new read is queued.
      if (err instanceof ZkError && err.code === 'NONODE') return this.update(null);
      this.logger.debug('leader.retrieval.failed', { error: err as Error });
    }
  }

  private update(info: LeaderInfo | null): void {
    const before = this.leader;
    if (before?.replicaId === info?.replicaId && before?.epoch === info?.epoch && before?.restUrl === info?.restUrl) return;
    this.leader = info;
    this.logger.info('leader.changed', { leader: info?.replicaId ?? null, leaderEpoch: info?.epoch ?? null, restUrl: info?.restUrl ?? null });
    this.emit('change', info);
  }
}
