/**
 * Leader election service: turns the driver's grant/revoke into numbered terms and calls the
 * contender in order (one callback at a time, never after `close`). The contender confirms readiness
 * (recovered), then the driver publishes `/leader/info` for that term. Side effects are guarded by
 * "is this term still current?" checks (`isLeader`). The service never touches ZooKeeper: the driver
 * (built by the injected factory, see `zooKeeperLeaderElectionDriverFactory`) does.
 */
import { EventEmitter } from 'node:events';
import { DriverStats, LatchGrant, LeaderElectionDriver, LeaderElectionDriverFactory } from './driver';
import { LeaderInfo } from './leader-info';
import { SerialQueue } from '../util/serial-queue';
import { Clock, systemClock } from '../util/clock';
import { EventLogger, silentLogger } from '../util/logger';

/** One term of leadership: a latch grant (epoch = fencing token from `/epoch`, zkSessionId = owning session) and when it began. */
export interface LeadershipTerm extends LatchGrant {
  /** Epoch-ms at which the service learned of the grant. */
  readonly grantedAt: number;
}

/**
 * The dispatcher's side of election (Flink's LeaderContender). Callbacks are serialized; a term is
 * revoked only after its grant callback returned.
 */
export interface LeaderContender {
  grantLeadership(term: LeadershipTerm): Promise<void> | void;
  revokeLeadership(term: LeadershipTerm, reason: string): Promise<void> | void;
  /** A grant or revoke callback failed, or the driver reported an error it cannot retry. */
  handleError(err: Error): Promise<void> | void;
}

export interface ContenderInfo {
  replicaId: string;
  restUrl: string;
  rpcUrl: string;
  [key: string]: unknown;
}

export interface ElectionServiceOptions {
  contenderInfo: ContenderInfo;
  logger?: EventLogger;
  clock?: Clock;
}

/** Events: 'elected' (term), 'ready' (term), 'revoked' (term, reason). Never 'error': errors go to the contender. */
export class LeaderElectionService extends EventEmitter {
  private readonly driver: LeaderElectionDriver;
  private readonly queue = new SerialQueue();
  private readonly logger: EventLogger;
  private readonly clock: Clock;
  private contender: LeaderContender | null = null;
  private term: LeadershipTerm | null = null;
  private readyTerm: LeadershipTerm | null = null;
  /** The last term handed to the contender: only that one is revoked from it. */
  private deliveredTerm: LeadershipTerm | null = null;
  /** Between start() and close(): every driver callback and queued contender call checks it. */
  private running = false;

  constructor(driverFactory: LeaderElectionDriverFactory, private readonly options: ElectionServiceOptions) {
    super();
    if (!options.contenderInfo?.replicaId) throw new Error('LeaderElectionService needs contenderInfo.replicaId');
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.driver = driverFactory({
      grant: (grant) => this.onGrant(grant),
      revoke: (reason) => this.onRevoke(reason),
      handleError: (err) => this.onDriverError(err),
    }, { ...options.contenderInfo, pid: process.pid, startedAt: new Date(this.clock.now()).toISOString() });
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

  /** "Run if leader": true only while `term` is the current term and the driver still holds its grant. */
  isLeader(term: LeadershipTerm | null | undefined): boolean {
    return !!term && this.running && term === this.term && this.driver.hasLeadership(term);
  }

  /** Resolves with the next term in which this replica is leader. */
  whenLeader(): Promise<LeadershipTerm> {
    if (this.currentTerm) return Promise.resolve(this.currentTerm);
    return new Promise((resolve) => this.once('elected', resolve));
  }

  /** Debug record of an event that changes nothing, with why (event `leadership.event.ignored`). */
  private ignored(event: string, reason: string, epoch?: number): void {
    this.logger.debug('leadership.event.ignored', { event, reason, epoch: epoch ?? null });
  }

  private onGrant(grant: LatchGrant): void {
    if (!this.running) return this.ignored('grant', 'service stopped', grant.epoch);
    if (this.term) {
      if (this.term.epoch === grant.epoch && this.term.zkSessionId === grant.zkSessionId) return this.ignored('grant', 'already leading this term', grant.epoch);
      // The driver moved on without a revoke: end the old term first, so the contender never holds two.
      this.onRevoke(`superseded by epoch ${grant.epoch}`);
    }
    const term: LeadershipTerm = { ...grant, grantedAt: this.clock.now() };
    this.term = term;
    this.logger.info('leadership.granted', { epoch: term.epoch, latchNode: term.latchNode, zkSessionId: term.zkSessionId });
    void this.queue.run(async () => {
      if (!this.running) return this.ignored('grant', 'service stopped', term.epoch);
      if (term !== this.term) return this.ignored('grant', 'stale term', term.epoch);
      this.deliveredTerm = term;
      this.emit('elected', term);
      try {
        await this.contender?.grantLeadership(term);
      } catch (err) {
        this.logger.error('leadership.grant.failed', { epoch: term.epoch, error: err as Error });
        await this.reportError(err);
      }
    });
  }

  private onRevoke(reason: string): void {
    if (!this.running) return this.ignored('revoke', 'service stopped');
    const term = this.term;
    this.term = null;
    this.readyTerm = null;
    if (!term) return this.ignored('revoke', 'not leading');
    this.logger.warn('leadership.revoked', { epoch: term.epoch, reason });
    void this.queue.run(async () => {
      if (!this.running) return this.ignored('revoke', 'service stopped', term.epoch);
      if (term === this.deliveredTerm) {
        this.emit('revoked', term, reason);
        await this.revokeContender(term, reason);
      } else {
        this.ignored('revoke', 'term never reached the contender', term.epoch);
      }
      await this.driver.deleteLeaderInfo();
    });
  }

  private onDriverError(err: Error): void {
    if (!this.running) return this.ignored('error', 'service stopped');
    this.logger.error('leadership.driver.failed', { epoch: this.term?.epoch ?? null, error: err });
    void this.queue.run(async () => {
      if (!this.running) return this.ignored('error', 'service stopped');
      await this.reportError(err);
    });
  }

  private async revokeContender(term: LeadershipTerm, reason: string): Promise<void> {
    this.deliveredTerm = null;
    try {
      await this.contender?.revokeLeadership(term, reason);
    } catch (err) {
      this.logger.error('leadership.revoke.failed', { epoch: term.epoch, error: err as Error });
      await this.reportError(err);
    }
  }

  /** Hands `err` to the contender; a failing handler is logged, never thrown (nothing above would catch it). */
  private async reportError(err: unknown): Promise<void> {
    const error = err instanceof Error ? err : new Error(String(err));
    try {
      await this.contender?.handleError(error);
    } catch (handlerErr) {
      this.logger.error('leadership.error.unhandled', { error: handlerErr as Error, cause: error });
    }
  }

  /**
   * The contender finished recovery: the driver publishes `/leader/info` for `term` (ephemeral,
   * owned by the session holding the latch) and keeps it. Returns false, and publishes nothing or
   * deletes what it published, if `term` is not (or no longer) current. Rejects with the driver's
   * (ZooKeeper) error.
   */
  async confirmLeadership(term: LeadershipTerm): Promise<boolean> {
    if (!this.isLeader(term)) {
      this.ignored('confirm', this.running ? 'stale term' : 'service stopped', term.epoch);
      return false;
    }
    const info: LeaderInfo = {
      replicaId: this.options.contenderInfo.replicaId,
      restUrl: this.options.contenderInfo.restUrl,
      rpcUrl: this.options.contenderInfo.rpcUrl,
      epoch: term.epoch,
      zkSessionId: term.zkSessionId,
      electedAt: new Date(term.grantedAt).toISOString(),
      readyAt: new Date(this.clock.now()).toISOString(),
    };
    await this.driver.publishLeaderInfo(term, info);
    if (!this.isLeader(term)) {
      this.ignored('confirm', 'leadership lost while publishing', term.epoch);
      await this.driver.deleteLeaderInfo();
      return false;
    }
    this.readyTerm = term;
    this.logger.info('leadership.ready', { epoch: term.epoch, readyInMs: this.clock.now() - term.grantedAt });
    this.emit('ready', term);
    return true;
  }

  /**
   * Gives up `term` while keeping on contending (e.g. the contender cannot serve it): the driver
   * leaves the latch, the revoke follows as usual, and a later grant is a new term with a higher
   * epoch. Ignored if `term` is not current.
   */
  async resign(term: LeadershipTerm): Promise<void> {
    if (!this.isLeader(term)) return this.ignored('resign', this.running ? 'stale term' : 'service stopped', term.epoch);
    this.logger.warn('leadership.resigning', { epoch: term.epoch });
    await this.driver.resign(term);
  }

  /**
   * A TaskManager refused a command of `term` because it holds epoch `reported` ≥ ours (the epoch
   * counter was reset or restored from an old snapshot): retrying would be refused forever, so the
   * counter is raised to at least `reported` and `term` is resigned; the next grant (here or on a
   * standby) takes an epoch above it. Ignored when `term` is not current or `reported` is below it
   * (or not a safe integer).
   */
  async takeTermAbove(term: LeadershipTerm, reported: number): Promise<void> {
    if (!this.isLeader(term) || !Number.isSafeInteger(reported) || reported < term.epoch) {
      return this.ignored('raise-epoch', this.isLeader(term) ? `reported epoch ${reported} is not above ours` : 'stale term', term.epoch);
    }
    this.logger.warn('leadership.epoch.behind', { epoch: term.epoch, reported, action: 'raise the epoch counter above it and resign this term' });
    await this.driver.raiseEpochFloor(reported);
    await this.resign(term);
  }

  /**
   * Graceful stop: the term ends for every guard at once, `/leader/info` and the latch node are
   * deleted (in parallel), so a standby takes over within one ZooKeeper round trip, and only then does
   * the contender suspend its work (revoke). Idempotent.
   */
  async close(): Promise<void> {
    if (!this.running) return;
    const term = this.term;
    this.term = null;
    this.readyTerm = null;
    this.running = false; // driver events from here on (the close's own revoke) are ignored as "service stopped"
    await this.queue.run(async () => {
      if (term && term === this.deliveredTerm) {
        this.logger.info('leadership.revoked', { epoch: term.epoch, reason: 'resigned' });
        // Hand over first, suspend after: with `this.term` cleared every write guard of the term
        // already refuses (isLeader), so its JobMasters can neither write progress nor deploy, and a
        // standby need not wait while a thousand of them are suspended. Both deletes check ownership.
        await Promise.all([this.driver.deleteLeaderInfo(), this.driver.close()]);
        await this.revokeContender(term, 'resigned');
      }
    });
    await this.driver.close();
  }
}
