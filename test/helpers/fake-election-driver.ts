/**
 * A LeaderElectionDriver without ZooKeeper, for unit tests of the election service: the test plays
 * the latch (`grant`, `revoke`, `fail`) and reads what was published. Holds one grant at a time, like
 * the ZooKeeper driver.
 */
import { DriverStats, LatchGrant, LeaderElectionDriver, LeaderElectionDriverFactory, LeaderElectionDriverListener } from '../../src/election/driver';
import { LeaderInfo } from '../../src/election/leader-info';

export class FakeElectionDriver implements LeaderElectionDriver {
  readonly stats: DriverStats = { watchEvents: 0, childListings: 0, creates: 0 };
  /** Every publish, in order, with the grant it was made for. */
  readonly publications: Array<{ grant: LatchGrant; info: LeaderInfo }> = [];
  /** What `/leader/info` would hold now. */
  leaderInfo: LeaderInfo | null = null;
  held: LatchGrant | null = null;
  started = false;
  closed = false;
  resigned: LatchGrant[] = [];
  listener!: LeaderElectionDriverListener;
  contenderInfo: Record<string, unknown> = {};
  /** Set to make the next publish reject with it. */
  publishError: Error | null = null;

  /** The factory to hand to `new LeaderElectionService(...)`; `driver.listener` is set when it is called. */
  get factory(): LeaderElectionDriverFactory {
    return (listener, contenderInfo) => { this.listener = listener; this.contenderInfo = contenderInfo; return this; };
  }

  // ---- the test plays the latch ----
  grant(epoch: number, zkSessionId = 's1'): LatchGrant {
    this.held = { epoch, latchNode: `_c_x-latch-${String(epoch).padStart(10, '0')}`, zkSessionId };
    this.listener.grant(this.held);
    return this.held;
  }

  revoke(reason: string): void {
    this.held = null;
    this.listener.revoke(reason);
  }

  fail(err: Error): void { this.listener.handleError(err); }

  // ---- LeaderElectionDriver ----
  start(): void { this.started = true; }

  hasLeadership(grant: LatchGrant): boolean {
    return !this.closed && this.held !== null && this.held.epoch === grant.epoch && this.held.zkSessionId === grant.zkSessionId;
  }

  async publishLeaderInfo(grant: LatchGrant, info: LeaderInfo): Promise<void> {
    await Promise.resolve();
    if (this.publishError) { const err = this.publishError; this.publishError = null; throw err; }
    if (!this.hasLeadership(grant)) return;
    this.publications.push({ grant, info });
    this.leaderInfo = info;
  }

  async deleteLeaderInfo(): Promise<void> { this.leaderInfo = null; }

  /** Epochs handed to raiseEpochFloor, in order. */
  readonly raisedFloors: number[] = [];

  async raiseEpochFloor(reported: number): Promise<void> { this.raisedFloors.push(reported); }

  async resign(grant: LatchGrant): Promise<void> {
    if (!this.hasLeadership(grant)) return;
    this.resigned.push(grant);
    this.revoke('resigned; contending again');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.held) this.revoke('closed');
    this.closed = true;
  }
}
