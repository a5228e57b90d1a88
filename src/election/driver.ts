/**
 * The seam between the election service and the coordination system, split the way Flink's
 * `leaderelection` package splits it: the driver is the only election code that talks to ZooKeeper
 * (the latch and `/leader/info`); the service above it keeps terms and calls the contender. A
 * driver reports to one listener; tests drive the service through a fake driver.
 */
import { LeaderInfo } from './leader-info';

/** What the latch granted: held until the driver calls `revoke`. */
export interface LatchGrant {
  /** Fencing token: the value this grant wrote to the epoch counter (`/epoch`); only goes up. */
  readonly epoch: number;
  /** Name (without path) of the latch node that is lowest. */
  readonly latchNode: string;
  /**
   * The ZooKeeper session (hex) that owns the latch node. Not a fencing token (`epoch` is): it only
   * ties the grant to one session, so a new session never inherits an old session's grant.
   */
  readonly zkSessionId: string;
  /** Epoch-ms at which the predecessor's latch node was seen to vanish (the old leader's last sign of life), if it was. */
  readonly predecessorGoneAt?: number;
}

/** The driver's events, delivered synchronously; the listener queues its own work. */
export interface LeaderElectionDriverListener {
  grant(grant: LatchGrant): void;
  revoke(reason: string): void;
  /** A failure the driver cannot retry by itself. */
  handleError(err: Error): void;
}

/** Counters that tests and benchmarks read to prove the latch recipe has no herd effect. */
export interface DriverStats {
  watchEvents: number;
  childListings: number;
  creates: number;
}

export interface LeaderElectionDriver {
  readonly stats: DriverStats;
  /** Starts contending. */
  start(): void;
  /** True while `grant` is still held: same latch epoch, same session, and connected (or suspension tolerated). */
  hasLeadership(grant: LatchGrant): boolean;
  /**
   * Publishes `info` as `/leader/info` for `grant` and keeps it there (repairs it if overwritten or
   * deleted) until `deleteLeaderInfo`, a revoke or `close`. Rejects with the coordination system's error.
   */
  publishLeaderInfo(grant: LatchGrant, info: LeaderInfo): Promise<void>;
  /** Stops repairing and deletes `/leader/info` if this session owns it. Never rejects. */
  deleteLeaderInfo(): Promise<void>;
  /**
   * Someone holds epoch `reported` (a TaskManager refused our command for it): make sure the next
   * grant, of whichever contender, takes an epoch above it. Never rejects.
   */
  raiseEpochFloor(reported: number): Promise<void>;
  /** Gives up `grant` (revoke follows) and contends again behind the others. No-op if not held. */
  resign(grant: LatchGrant): Promise<void>;
  /** Revokes, leaves the latch so a standby takes over at once. Idempotent. */
  close(): Promise<void>;
}

/**
 * Builds the driver for one service. `contenderInfo` describes this contender (JSON, stored where
 * operators can list the contenders, e.g. in the latch node).
 */
export type LeaderElectionDriverFactory = (listener: LeaderElectionDriverListener, contenderInfo: Record<string, unknown>) => LeaderElectionDriver;
