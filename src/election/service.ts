/**
 * Leader election service: turns the driver's grant/revoke into numbered terms, calls the contender
 * in order (one callback at a time), and publishes `/leader/info` only after the contender confirms
 * it is ready (recovered). Side effects are guarded by "is this term still current?" checks.
 */
import { EventEmitter } from 'node:events';
import { ZooKeeperLeaderElectionDriver, DriverStats } from './zk-driver';
import { LeaderInfo } from './leader-info';
import { LEADER_INFO_PATH } from '../zk/layout';
import { ZkClient } from '../zk/client';
import { ZkError } from '../zk/errors';
import { SerialQueue } from '../util/serial-queue';
import { Clock, systemClock } from '../util/clock';
import { EventLogger, silentLogger } from '../util/logger';

export interface LeadershipTerm {
  /** Fencing token: the sequence number of our latch node. */
  readonly epoch: number;
  readonly sessionId: string;
  readonly latchNode: string;
  readonly grantedAt: number;
}

/** The dispatcher's side of election: it only ever sees grant and revoke. */
export interface LeaderContender {
  grantLeadership(term: LeadershipTerm): Promise<void> | void;
  revokeLeadership(term: LeadershipTerm, reason: string): Promise<void> | void;
}

export interface ContenderInfo {
  replicaId: string;
  restUrl: string;
  rpcUrl: string;
  [key: string]: unknown;
}

export interface ElectionServiceOptions {
  contenderInfo: ContenderInfo;
  tolerateSuspendedConnections?: boolean;
  logger?: EventLogger;
  clock?: Clock;
}

export class LeaderElectionService extends EventEmitter {
  private readonly driver: ZooKeeperLeaderElectionDriver;
  private readonly queue = new SerialQueue();
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private contender: LeaderContender | null = null;
  private term: LeadershipTerm | null = null;
  private readyTerm: LeadershipTerm | null = null;
  private running = false;

  constructor(private readonly client: ZkClient, private readonly options: ElectionServiceOptions) {
    super();
    if (!options.contenderInfo?.replicaId) throw new Error('LeaderElectionService needs contenderInfo.replicaId');
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.driver = new ZooKeeperLeaderElectionDriver(client, {
      grant: (epoch, node) => this.onGrant(epoch, node),
      revoke: (reason) => this.onRevoke(reason),
    }, {
      contenderInfo: { ...options.contenderInfo, pid: process.pid, startedAt: new Date(this.clock.now()).toISOString() },
      tolerateSuspendedConnections: options.tolerateSuspendedConnections,
      logger: this.logger,
    });
  }

  get stats(): DriverStats { return this.driver.stats; }
  get currentTerm(): LeadershipTerm | null { return this.isLeader(this.term) ? this.term : null; }
  /** True once the contender confirmed readiness for the current term and /leader/info was written. */
  get isReadyLeader(): boolean { return this.readyTerm !== null && this.readyTerm === this.term && this.isLeader(this.term); }

  start(contender: LeaderContender): void {
    if (this.running) throw new Error('LeaderElectionService already started');
    this.running = true;
    this.contender = contender;
    this.driver.start();
  }

  /** "Run if leader": true only while `term` is the current term and the latch still says so. */
  isLeader(term: LeadershipTerm | null | undefined): boolean {
    return !!term && this.running && term === this.term && this.driver.epoch === term.epoch &&
      (this.client.isConnected || !!this.options.tolerateSuspendedConnections) && this.client.sessionId === term.sessionId;
  }

  /** Resolves with the next term in which this replica is leader. */
  whenLeader(): Promise<LeadershipTerm> {
    if (this.currentTerm) return Promise.resolve(this.currentTerm);
    return new Promise((resolve) => this.once('elected', resolve));
  }

  private onGrant(epoch: number, latchNode: string): void {
    const term: LeadershipTerm = { epoch, latchNode, sessionId: this.client.sessionId ?? '', grantedAt: this.clock.now() };
    this.term = term;
    this.logger.info('leadership.granted', { epoch, latchNode, sessionId: term.sessionId });
    void this.queue.run(async () => {
      if (term !== this.term || !this.running) return;
      this.emit('elected', term);
      try {
        await this.contender?.grantLeadership(term);
      } catch (err) {
        this.logger.error('leadership.grant.failed', { epoch, error: err as Error });
        this.emit('error', err);
      }
    });
  }

  private onRevoke(reason: string): void {
    const term = this.term;
    this.term = null;
    this.readyTerm = null;
    if (!term) return;
    this.logger.warn('leadership.revoked', { epoch: term.epoch, reason });
    void this.queue.run(async () => {
      this.emit('revoked', term, reason);
      try {
        await this.contender?.revokeLeadership(term, reason);
      } catch (err) {
        this.logger.error('leadership.revoke.failed', { epoch: term.epoch, error: err as Error });
      }
      await this.deleteOwnLeaderInfo();
    });
  }

  /**
   * The contender finished recovery: publish `/leader/info` (ephemeral, owned by the session that
   * holds the latch node). Returns false if leadership was lost meanwhile.
   */
  async confirmLeadership(term: LeadershipTerm): Promise<boolean> {
    if (!this.isLeader(term)) return false;
    const info: LeaderInfo = {
      replicaId: this.options.contenderInfo.replicaId,
      restUrl: this.options.contenderInfo.restUrl,
      rpcUrl: this.options.contenderInfo.rpcUrl,
      epoch: term.epoch,
      sessionId: term.sessionId,
      electedAt: new Date(term.grantedAt).toISOString(),
      readyAt: new Date(this.clock.now()).toISOString(),
    };
    const data = JSON.stringify(info);
    await this.publishLeaderInfo(term, data);
    if (!this.isLeader(term)) {
      await this.deleteOwnLeaderInfo();
      return false;
    }
    this.readyTerm = term;
    this.logger.info('leadership.ready', { epoch: term.epoch, readyInMs: this.clock.now() - term.grantedAt });
    this.emit('ready', term);
    await this.watchLeaderInfo(term, data);
    return true;
  }

  private async publishLeaderInfo(term: LeadershipTerm, data: string): Promise<void> {
    for (let attempt = 0; attempt < 5 && this.isLeader(term); attempt++) {
      try {
        await this.client.create(LEADER_INFO_PATH, data, 'ephemeral');
        return;
      } catch (err) {
        if (!(err instanceof ZkError && err.code === 'NODEEXISTS')) throw err;
        // A previous leader's node: its session may still live (e.g. its latch node was deleted by hand).
        const stat = await this.client.exists(LEADER_INFO_PATH);
        if (stat && stat.ephemeralOwner === term.sessionId) {
          await this.client.set(LEADER_INFO_PATH, data);
          return;
        }
        if (stat) await this.client.delete(LEADER_INFO_PATH, stat.version).catch(() => undefined);
      }
    }
  }

  /**
   * Keeps `/leader/info` ours while the term lasts: if anything overwrites or deletes it (an operator,
   * a foreign tool), standbys would stop redirecting and TaskManagers would lose the leader, so the
   * leader publishes itself again. One exists-watch at a time (it fires on change, deletion and creation),
   * re-armed by every check; checks are serialized with grant/revoke.
   */
  private async watchLeaderInfo(term: LeadershipTerm, data: string): Promise<void> {
    if (this.readyTerm !== term || !this.isLeader(term)) return;
    const recheck = (): void => { void this.queue.run(() => this.watchLeaderInfo(term, data)); };
    try {
      const stat = await this.client.exists(LEADER_INFO_PATH, recheck);
      if (stat && stat.ephemeralOwner === term.sessionId) {
        const { data: current } = await this.client.get(LEADER_INFO_PATH);
        if (current.toString('utf8') === data) return;
      }
      if (this.readyTerm !== term || !this.isLeader(term)) return;
      this.logger.warn('leadership.info.repaired', { epoch: term.epoch, found: stat ? (stat.ephemeralOwner === term.sessionId ? 'changed' : 'foreign node') : 'deleted' });
      await this.publishLeaderInfo(term, data);
    } catch (err) {
      // Connection trouble ends the term or is followed by RECONNECTED; nothing to repair meanwhile.
      this.logger.debug('leadership.info.check-failed', { epoch: term.epoch, error: err as Error });
    }
  }

  private async deleteOwnLeaderInfo(): Promise<void> {
    if (!this.client.isConnected) return;
    try {
      const stat = await this.client.exists(LEADER_INFO_PATH);
      if (stat && stat.ephemeralOwner === this.client.sessionId) await this.client.delete(LEADER_INFO_PATH, stat.version);
    } catch (err) {
      this.logger.debug('leadership.info.delete-failed', { error: err as Error });
    }
  }

  /**
   * Graceful resign: the contender suspends its work (revoke), `/leader/info` and the latch node are
   * deleted, so a standby takes over within one ZooKeeper round trip. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.running) return;
    const term = this.term;
    this.term = null;
    this.readyTerm = null;
    await this.queue.run(async () => {
      if (term) {
        this.logger.info('leadership.revoked', { epoch: term.epoch, reason: 'resigned' });
        try { await this.contender?.revokeLeadership(term, 'resigned'); } catch (err) {
          this.logger.error('leadership.revoke.failed', { epoch: term.epoch, error: err as Error });
        }
        await this.deleteOwnLeaderInfo();
      }
    });
    this.running = false;
    await this.driver.close();
  }
}
