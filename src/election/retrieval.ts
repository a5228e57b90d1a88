/**
 * Leader retrieval: watches `/leader/info` and the latch and reports every change of the trusted
 * leader, including "no leader" when the node disappears or fails the trust check (src/election/trust.ts).
 * Used by standbys (to redirect) and TaskManagers (to register).
 */
import { EventEmitter } from 'node:events';
import { LeaderInfo } from './leader-info';
import { readTrustedLeader } from './trust';
import { StateChange, ZooKeeperClient } from '../zk/client';
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

  private readonly selfRestUrl?: string;
  /** The last reason for "no leader" that was logged: logged again only when it changes. */
  private lastDistrust: string | null = null;

  /**
   * @param options.selfRestUrl this replica's own REST URL (replicas only): a leader record naming it
   *   from another session (an earlier run of this replica) is "no leader yet", never a redirect target.
   */
  constructor(private readonly client: ZooKeeperClient, options: { logger?: EventLogger; selfRestUrl?: string } = {}) {
    super();
    this.logger = options.logger ?? silentLogger;
    this.selfRestUrl = options.selfRestUrl;
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
      const trust = await readTrustedLeader(this.client, { watcher, selfRestUrl: this.selfRestUrl });
      if (generation !== this.generation) return;
      if (trust.trusted) {
        this.lastDistrust = null;
        return this.update(trust.leader);
      }
      // Absent is the normal "no leader"; anything else (forged, stale, unverifiable) is worth a warning.
      if (trust.reason !== this.lastDistrust && trust.reason !== 'no /leader/info') {
        this.logger.warn('leader.info.untrusted', { reason: trust.reason });
      }
      this.lastDistrust = trust.reason;
      this.update(null);
    } catch (err) {
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
