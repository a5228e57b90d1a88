/**
 * Leader election driver: the only election code that knows ZooKeeper. It owns the latch and
 * `/leader/info`. The latch recipe is hardened the way Curator's LeaderLatch learned to:
 *  - protected creation: the node name carries a per-attempt UUID, so after a connection loss during
 *    create we find our node instead of creating a second one;
 *  - leader = lowest sequence AND owned by our current session (a node of an old session of ours
 *    may still be lowest until the server expires it);
 *  - watch only the immediate predecessor (no herd), and on its deletion list again;
 *  - the leader watches its own node and steps down if it vanishes;
 *  - SUSPENDED revokes at once unless suspended connections are tolerated; LOST forgets the node and
 *    a new one is created with the next session.
 * The driver reports `grant({epoch, latchNode, zkSessionId})` / `revoke(reason)` to one listener.
 * The latch sequence only orders contenders: the epoch (fencing token) comes from the persistent
 * counter `/epoch`, raised with a version-checked write on every grant before the listener hears of
 * it (a lost race grants nothing and the latch is checked again), so it only goes up even when the
 * latch parent is deleted and its sequence restarts (README "Fencing"). `/leader/info` is ephemeral,
 * owned by the session holding the latch, and repaired while the grant lasts. Every failure is retried here (next check, next
 * connection event), so nothing reaches the listener's `handleError` today.
 */
import * as crypto from 'node:crypto';
import { StateChange, ZooKeeperClient } from '../zk/client';
import { ZkError } from '../zk/errors';
import { basename, join, sequenceOf } from '../zk/paths';
import { SerialQueue } from '../util/serial-queue';
import { EventLogger, silentLogger } from '../util/logger';
import { DriverStats, LatchGrant, LeaderElectionDriver, LeaderElectionDriverFactory, LeaderElectionDriverListener } from './driver';
import { LEADER_INFO_PATH, LeaderInfo, leaderInfoJson } from './leader-info';
import { CONTENDER_CONTEXT, EPOCH_CONTEXT, LEADER_INFO_CONTEXT } from './trust';
import { sealOf } from '../zk/sealed';

import { EPOCH_PATH, LATCH_NODE_PROTECTED_PREFIX, LATCH_PATH } from '../zk/layout';
export { LATCH_PATH, EPOCH_PATH };

export interface DriverOptions {
  /**
   * JSON stored in the latch node: who we are, for /replicas and operators. The driver adds
   * `sessionId` (the owning ZooKeeper session, hex; JSON name kept for readers of the latch).
   */
  contenderInfo: Record<string, unknown>;
  tolerateSuspendedConnections?: boolean;
  logger?: EventLogger;
  latchPath?: string;
  /** The epoch counter node (default EPOCH_PATH). */
  epochPath?: string;
}

/** Options of the ZooKeeper driver that do not depend on the contender. */
export type ZooKeeperDriverFactoryOptions = Omit<DriverOptions, 'contenderInfo'>;

/** The factory a `LeaderElectionService` uses to elect through ZooKeeper on `client`. */
export function zooKeeperLeaderElectionDriverFactory(client: ZooKeeperClient, options: ZooKeeperDriverFactoryOptions = {}): LeaderElectionDriverFactory {
  return (listener, contenderInfo) => new ZooKeeperLeaderElectionDriver(client, listener, { ...options, contenderInfo });
}

/** The leader information being kept in `/leader/info`: the grant it belongs to and the exact bytes. */
interface PublishedInfo { readonly grant: LatchGrant; readonly data: string }

const PROTECTED_PREFIX = LATCH_NODE_PROTECTED_PREFIX;

export class ZooKeeperLeaderElectionDriver implements LeaderElectionDriver {
  readonly stats: DriverStats = { watchEvents: 0, childListings: 0, creates: 0 };
  private readonly latchPath: string;
  private readonly epochPath: string;
  /** Latch checks and state changes, one at a time. */
  private readonly queue = new SerialQueue();
  /** Every read and write of `/leader/info`, one at a time (separate: publishing never waits for a latch check). */
  private readonly infoQueue = new SerialQueue();
  private readonly logger: EventLogger;
  private ourNode: string | null = null;
  private ourSession: string | null = null;
  private leaderEpoch: number | null = null;
  /** The latch node `leaderEpoch` was granted for: a later check finding it still lowest grants nothing new. */
  private grantedNode: string | null = null;
  /**
   * The highest epoch this driver knows of (granted here, read from `/epoch`, reported by a
   * TaskManager): the next grant goes above it even if `/epoch` was reset or restored from an old snapshot.
   */
  private epochFloor = -1;
  /** Bumped on every (re)start of the recipe; stale watch callbacks compare against it. */
  private generation = 0;
  private running = false;
  private readonly staleNodes = new Set<string>();
  /** Persistent latch children: no session owns them, so no contender stands behind them. */
  private readonly foreignNodes = new Set<string>();
  /** Kept in `/leader/info` while set; cleared (synchronously) by a revoke, delete or close. */
  private published: PublishedInfo | null = null;
  private readonly onState = (change: StateChange): void => this.handleState(change);
  /** Epoch-ms at which the watched predecessor was seen gone; cleared when a new one is watched. For failover metrics. */
  private predecessorGone: number | null = null;

  constructor(
    private readonly client: ZooKeeperClient,
    private readonly listener: LeaderElectionDriverListener,
    private readonly options: DriverOptions,
  ) {
    this.latchPath = options.latchPath ?? LATCH_PATH;
    this.epochPath = options.epochPath ?? EPOCH_PATH;
    this.logger = options.logger ?? silentLogger;
  }

  get isLeader(): boolean { return this.leaderEpoch !== null; }
  get epoch(): number | null { return this.leaderEpoch; }
  /** Name of our latch node (without path), if we currently hold one. */
  get latchNode(): string | null { return this.ourNode; }
  /** Epoch-ms at which the predecessor latch node was last seen to vanish, or null (first election, new session). */
  get predecessorGoneAt(): number | null { return this.predecessorGone; }

  hasLeadership(grant: LatchGrant): boolean {
    return this.running && this.leaderEpoch === grant.epoch &&
      (this.client.isConnected || !!this.options.tolerateSuspendedConnections) && this.client.sessionId === grant.zkSessionId;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.client.on('state', this.onState);
    if (this.client.isConnected) void this.enqueueCheck('start');
  }

  /** Graceful resign: revoke, delete our latch node so a standby takes over at once. */
  async close(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.published = null;
    this.client.off('state', this.onState);
    this.generation++;
    await this.queue.run(async () => {
      this.setNotLeader('closed');
      const node = this.ourNode;
      this.ourNode = null;
      if (node && this.client.isConnected) {
        try {
          await this.client.delete(join(this.latchPath, node));
        } catch (err) {
          this.logger.debug('leadership.latch.delete-failed', { node, error: err as Error });
        }
      }
    });
  }

  private handleState(change: StateChange): void {
    if (!this.running) return;
    switch (change.state) {
      case 'SUSPENDED':
        if (!this.options.tolerateSuspendedConnections) {
          void this.queue.run(() => this.setNotLeader('connection suspended'));
        }
        break;
      case 'LOST':
        void this.queue.run(() => {
          this.setNotLeader(`session lost (${change.reason ?? 'expired'})`);
          if (this.ourNode) this.staleNodes.add(this.ourNode);
          this.ourNode = null;
          this.ourSession = null;
          this.predecessorGone = null;
        });
        break;
      case 'CONNECTED':
      case 'RECONNECTED':
        void this.enqueueCheck(change.state.toLowerCase());
        break;
      default:
        break;
    }
  }

  private enqueueCheck(cause: string): Promise<void> {
    const generation = ++this.generation;
    return this.queue.run(() => this.check(generation, cause));
  }

  /** One pass of the recipe; any failure leaves us not-leader and waits for the next event. */
  private async check(generation: number, cause: string): Promise<void> {
    if (!this.running || generation !== this.generation || !this.client.isConnected) return;
    try {
      await this.client.mkdirp(this.latchPath);
      await this.deleteStaleNodes();
      if (!this.ourNode || this.ourSession !== this.client.sessionId) await this.createLatchNode();
      if (generation !== this.generation) return;
      this.stats.childListings++;
      const children = sortBySequence(await this.client.getChildren(this.latchPath)).filter((c) => !this.foreignNodes.has(c));
      const index = this.ourNode ? children.indexOf(this.ourNode) : -1;
      if (index < 0) {
        // Our node is gone (deleted by an operator, or a stale session): start over with a new one.
        this.setNotLeader('latch node missing');
        this.ourNode = null;
        void this.enqueueCheck('latch node missing');
        return;
      }
      if (index === 0) {
        await this.checkLowest(generation);
      } else {
        this.setNotLeader(`behind ${children[index - 1]}`);
        await this.watchPredecessor(generation, children[index - 1]);
      }
    } catch (err) {
      this.setNotLeader('zookeeper error during election');
      this.logger.warn('leadership.check.failed', { cause, error: err as Error });
      // Connection loss: the next CONNECTED/RECONNECTED event runs the check again. Other errors
      // (unexpected server answers) get one retry soon so the replica never silently stops contending.
      if (!(err instanceof ZkError && (err.isConnectionLoss || err.isSessionGone))) {
        setTimeout(() => { if (this.running && generation === this.generation) void this.enqueueCheck('retry'); }, 500).unref();
      }
    }
  }

  private async createLatchNode(): Promise<void> {
    const attempt = crypto.randomUUID();
    const prefix = `${PROTECTED_PREFIX}${attempt}-latch-`;
    const session = this.client.sessionId;
    const data = sealOf(this.client).seal(CONTENDER_CONTEXT, { ...this.options.contenderInfo, sessionId: session });
    this.stats.creates++;
    try {
      const created = await this.client.create(join(this.latchPath, prefix), data, 'ephemeral_sequential');
      this.ourNode = basename(created);
    } catch (err) {
      if (!(err instanceof ZkError && err.isConnectionLoss)) throw err;
      // The create may have reached the server even though its answer was lost: look for our UUID.
      const found = await this.findProtectedNode(attempt);
      if (!found) throw err;
      this.logger.info('leadership.latch.recovered', { node: found });
      this.ourNode = found;
    }
    this.ourSession = session;
    this.logger.info('leadership.latch.created', { node: this.ourNode, zkSessionId: session });
  }

  private async findProtectedNode(attempt: string): Promise<string | null> {
    await this.client.waitUntilConnected(this.client.sessionTimeoutMs);
    const children = await this.client.getChildren(this.latchPath);
    return children.find((c) => c.startsWith(`${PROTECTED_PREFIX}${attempt}-`)) ?? null;
  }

  /** Nodes of an older session of ours would block the latch until the server expires them. */
  private async deleteStaleNodes(): Promise<void> {
    for (const node of [...this.staleNodes]) {
      try {
        await this.client.delete(join(this.latchPath, node));
        this.logger.info('leadership.latch.stale-deleted', { node });
      } catch (err) {
        if (!(err instanceof ZkError && err.code === 'NONODE')) throw err;
      }
      this.staleNodes.delete(node);
    }
  }

  private async checkLowest(generation: number): Promise<void> {
    const node = this.ourNode!;
    const stat = await this.client.exists(join(this.latchPath, node), (event) => {
      this.stats.watchEvents++;
      if (event.type === 'deleted' && generation === this.generation) {
        this.logger.warn('leadership.latch.deleted', { node });
        this.ourNode = null;
        void this.queue.run(() => this.setNotLeader('own latch node deleted'));
        void this.enqueueCheck('own latch node deleted');
      }
    });
    if (!stat) {
      this.ourNode = null;
      void this.enqueueCheck('own latch node vanished');
      return;
    }
    if (stat.ephemeralOwner !== this.client.sessionId) {
      // Lowest, but owned by another (older) session: never lead on someone else's node.
      this.setNotLeader('lowest latch node belongs to another session');
      this.staleNodes.add(node);
      this.ourNode = null;
      void this.enqueueCheck('foreign session owns our node');
      return;
    }
    if (generation !== this.generation || !this.client.isConnected) return;
    if (this.leaderEpoch !== null && this.grantedNode === node) return; // still the same grant
    const epoch = await this.takeEpoch();
    if (generation !== this.generation || !this.client.isConnected) return;
    if (epoch === null) {
      this.logger.info('leadership.epoch.raced', { node, reason: 'another replica wrote the epoch counter first; checking the latch again' });
      void this.enqueueCheck('epoch counter raced');
      return;
    }
    this.setLeader(epoch, node);
  }

  // ---- epoch counter ---------------------------------------------------------------------------

  /** `/epoch` as stored: its value (-1 when unreadable) and version; null when the node does not exist. */
  private async readEpoch(): Promise<{ value: number; version: number } | null> {
    try {
      const { data, stat } = await this.client.get(this.epochPath);
      // A counter not sealed by this cluster (with a state key) is not believed: counting on from what we know.
      const opened = sealOf(this.client).open(EPOCH_CONTEXT, this.epochPath, data);
      const value = opened.ok ? parseEpoch(JSON.stringify(opened.value)) : null;
      if (value === null) this.logger.warn('leadership.epoch.unreadable', { path: this.epochPath, reason: 'not {"epoch": <safe integer>}; counting on from the highest epoch this replica knows' });
      return { value: value ?? -1, version: stat.version };
    } catch (err) {
      if (err instanceof ZkError && err.code === 'NONODE') return null;
      throw err;
    }
  }

  private epochData(epoch: number): string {
    return sealOf(this.client).seal(EPOCH_CONTEXT, { epoch, replicaId: this.options.contenderInfo.replicaId ?? null, updatedAt: new Date().toISOString() });
  }

  /**
   * Takes the next epoch: max(`/epoch`, every epoch this driver knows of) + 1, written with a
   * version-checked set (or create). Null when another replica wrote `/epoch` in between (then this
   * grant does not happen). Rejects with other ZkErrors (the check's error path retries).
   */
  private async takeEpoch(): Promise<number | null> {
    const stored = await this.readEpoch();
    const next = Math.max(stored?.value ?? -1, this.epochFloor) + 1;
    try {
      if (stored) await this.client.set(this.epochPath, this.epochData(next), stored.version);
      else await this.client.create(this.epochPath, this.epochData(next), 'persistent');
    } catch (err) {
      if (err instanceof ZkError && (err.code === 'BADVERSION' || err.code === 'NODEEXISTS')) return null;
      throw err;
    }
    this.epochFloor = next;
    return next;
  }

  /**
   * A TaskManager holds epoch `reported`, at or above ours: `/epoch` is raised to at least
   * `reported` (version-checked, a few attempts), so whichever replica is granted next takes an epoch
   * above it. Never rejects (failures are logged; this driver's own next grant goes above it anyway).
   */
  async raiseEpochFloor(reported: number): Promise<void> {
    if (!Number.isSafeInteger(reported)) return;
    this.epochFloor = Math.max(this.epochFloor, reported);
    const floor = this.epochFloor;
    await this.queue.run(() => this.writeEpochAtLeast(floor));
  }

  private async writeEpochAtLeast(epoch: number): Promise<void> {
    for (let attempt = 0; attempt < 3 && this.client.isConnected; attempt++) {
      try {
        const stored = await this.readEpoch();
        if (stored && stored.value >= epoch) return;
        if (stored) await this.client.set(this.epochPath, this.epochData(epoch), stored.version);
        else await this.client.create(this.epochPath, this.epochData(epoch), 'persistent');
        this.logger.warn('leadership.epoch.raised', { epoch, from: stored?.value ?? null });
        return;
      } catch (err) {
        if (!(err instanceof ZkError && (err.code === 'BADVERSION' || err.code === 'NODEEXISTS'))) {
          this.logger.warn('leadership.epoch.raise-failed', { epoch, error: err as Error });
          return;
        }
      }
    }
  }

  private async watchPredecessor(generation: number, predecessor: string): Promise<void> {
    this.predecessorGone = null;
    const stat = await this.client.exists(join(this.latchPath, predecessor), (event) => {
      this.stats.watchEvents++;
      if (event.type === 'deleted' && generation === this.generation) {
        this.predecessorGone = Date.now();
        void this.enqueueCheck(`predecessor ${predecessor} deleted`);
      }
    });
    // Gone between listing and watching: list again rather than assume we are next.
    if (!stat && generation === this.generation) {
      this.predecessorGone = Date.now();
      void this.enqueueCheck(`predecessor ${predecessor} already gone`);
    }
    if (stat && stat.ephemeralOwner === '0') {
      // A persistent node (written by hand or by a foreign tool) would block the latch forever: every
      // contender's node is ephemeral, so this one stands for nobody. Report it and order without it.
      this.foreignNodes.add(predecessor);
      this.logger.warn('leadership.latch.foreign', { node: predecessor, reason: 'persistent node in the latch folder; no contender owns it, ignored' });
      if (generation === this.generation) void this.enqueueCheck(`predecessor ${predecessor} is not a contender`);
    }
  }

  private setLeader(epoch: number, node: string): void {
    if (this.leaderEpoch === epoch) return;
    this.leaderEpoch = epoch;
    this.grantedNode = node;
    this.listener.grant({ epoch, latchNode: node, zkSessionId: this.client.sessionId ?? '', predecessorGoneAt: this.predecessorGone ?? undefined });
  }

  private setNotLeader(reason: string): void {
    if (this.leaderEpoch === null) return;
    this.leaderEpoch = null;
    this.grantedNode = null;
    this.published = null;
    this.listener.revoke(reason);
  }

  /**
   * Deletes our latch node while it grants `grant`: the revoke follows at once, and the next check
   * creates a new node behind every other contender's. Connection trouble is logged (the session's
   * end or the next check sorts it out).
   */
  async resign(grant: LatchGrant): Promise<void> {
    await this.queue.run(async () => {
      if (!this.hasLeadership(grant) || !this.ourNode) return;
      const node = this.ourNode;
      this.generation++; // our own node's deletion watch is now stale: this is no operator's doing
      this.ourNode = null;
      this.setNotLeader('resigned; contending again');
      try {
        await this.client.delete(join(this.latchPath, node));
      } catch (err) {
        this.logger.warn('leadership.latch.delete-failed', { node, error: err as Error });
        if (!(err instanceof ZkError && err.code === 'NONODE')) this.staleNodes.add(node);
      }
    });
    if (this.running) void this.enqueueCheck('resigned');
  }

  // ---- /leader/info -------------------------------------------------------------------------

  /**
   * Writes `/leader/info` (ephemeral, so owned by the session holding the latch) and keeps it while
   * `grant` lasts. A node left by a previous leader whose session still lives (e.g. its latch node
   * was deleted by hand) is replaced; up to 5 attempts while the grant is held. Rejects with the
   * ZkError of a failed create/exists/set.
   */
  publishLeaderInfo(grant: LatchGrant, info: LeaderInfo): Promise<void> {
    const entry: PublishedInfo = { grant, data: sealOf(this.client).seal(LEADER_INFO_CONTEXT, leaderInfoJson(info)) };
    return this.infoQueue.run(async () => {
      if (!this.hasLeadership(grant)) return;
      await this.writeLeaderInfo(entry);
      if (!this.hasLeadership(grant)) return;
      this.published = entry;
      // The check arms the watch that repairs a deleted or forged node (two more round trips): queued
      // right behind, so readiness (and the failover clock) does not wait for it.
      void this.infoQueue.run(() => this.checkLeaderInfo(entry));
    });
  }

  async deleteLeaderInfo(): Promise<void> {
    this.published = null;
    await this.infoQueue.run(() => this.deleteOwnLeaderInfo());
  }

  private async writeLeaderInfo({ grant, data }: PublishedInfo): Promise<void> {
    for (let attempt = 0; attempt < 5 && this.hasLeadership(grant); attempt++) {
      try {
        await this.client.create(LEADER_INFO_PATH, data, 'ephemeral');
        return;
      } catch (err) {
        if (!(err instanceof ZkError && err.code === 'NODEEXISTS')) throw err;
        // A previous leader's node: its session may still live (e.g. its latch node was deleted by hand).
        const stat = await this.client.exists(LEADER_INFO_PATH);
        if (stat && stat.ephemeralOwner === grant.zkSessionId) {
          await this.client.set(LEADER_INFO_PATH, data);
          return;
        }
        if (stat) await this.client.delete(LEADER_INFO_PATH, stat.version).catch(() => undefined);
      }
    }
  }

  /**
   * Keeps `/leader/info` ours while the grant lasts: if anything overwrites or deletes it (an operator,
   * a foreign tool), standbys would stop redirecting and TaskManagers would lose the leader, so the
   * leader publishes itself again. One exists-watch at a time (it fires on change, deletion and creation),
   * re-armed by every check; checks are serialized with publish and delete.
   */
  private async checkLeaderInfo(entry: PublishedInfo): Promise<void> {
    const { grant, data } = entry;
    const current = (): boolean => this.published === entry && this.hasLeadership(grant);
    if (!current()) return;
    const recheck = (): void => { void this.infoQueue.run(() => this.checkLeaderInfo(entry)); };
    try {
      const stat = await this.client.exists(LEADER_INFO_PATH, recheck);
      if (stat && stat.ephemeralOwner === grant.zkSessionId) {
        const { data: stored } = await this.client.get(LEADER_INFO_PATH);
        if (stored.toString('utf8') === data) return;
      }
      if (!current()) return;
      this.logger.warn('leadership.info.repaired', { epoch: grant.epoch, found: stat ? (stat.ephemeralOwner === grant.zkSessionId ? 'changed' : 'foreign node') : 'deleted' });
      await this.writeLeaderInfo(entry);
    } catch (err) {
      // Connection trouble ends the grant or is followed by RECONNECTED; nothing to repair meanwhile.
      this.logger.debug('leadership.info.check-failed', { epoch: grant.epoch, error: err as Error });
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
}

/** The epoch in `/epoch`'s JSON, or null when it is not `{"epoch": <non-negative safe integer>}`. */
export function parseEpoch(text: string): number | null {
  try {
    const epoch = (JSON.parse(text) as { epoch?: unknown } | null)?.epoch;
    return typeof epoch === 'number' && Number.isSafeInteger(epoch) && epoch >= 0 ? epoch : null;
  } catch {
    return null;
  }
}

export function sortBySequence(children: string[]): string[] {
  return children
    .filter((c) => Number.isFinite(sequenceOf(c)))
    .sort((a, b) => sequenceOf(a) - sequenceOf(b));
}
