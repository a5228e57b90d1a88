/**
 * Election test harness: contenders that record every grant, revoke and guarded side effect into one
 * shared timeline, which checks the safety properties ZooKeeper's latch actually guarantees as events
 * happen: no two contenders ever hold the same epoch (a fencing token names one leader), a contender's
 * epochs never go down, and no side effect of a term happens after that term's revoke. Wall-clock
 * overlap of two terms is NOT checked: a revoked leader learns of it late (a suspended connection, a
 * stalled event loop), which is exactly why side effects are fenced by epoch.
 */
import { LeaderElectionService, LeadershipTerm } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { ZooKeeperClient, NativeZooKeeperClient } from '../../src/zk/client';

export interface TimelineEvent { at: number; contender: string; kind: 'grant' | 'revoke' | 'act'; epoch: number; reason?: string }

/** One term as a contender saw it: from its grant callback to its revoke callback (open while null). */
export interface TermInterval { contender: string; epoch: number; grantedAt: number; revokedAt: number | null; acts: number }

export class LeadershipTimeline {
  readonly events: TimelineEvent[] = [];
  readonly violations: string[] = [];
  readonly intervals: TermInterval[] = [];

  grant(contender: string, epoch: number): void {
    this.events.push({ at: Date.now(), contender, kind: 'grant', epoch });
    const other = this.intervals.find((i) => i.epoch === epoch && i.contender !== contender);
    if (other) this.violations.push(`${contender} granted epoch ${epoch}, which ${other.contender} held`);
    // A contender may regain its own epoch (same session and latch node after a tolerated suspension).
    const own = this.intervals.filter((i) => i.contender === contender);
    const last = own[own.length - 1];
    if (last && last.revokedAt === null) this.violations.push(`${contender} granted epoch ${epoch} while its epoch ${last.epoch} was not revoked`);
    if (last && epoch < last.epoch) this.violations.push(`${contender} granted epoch ${epoch} after its epoch ${last.epoch}`);
    this.intervals.push({ contender, epoch, grantedAt: Date.now(), revokedAt: null, acts: 0 });
  }

  revoke(contender: string, epoch: number, reason: string): void {
    this.events.push({ at: Date.now(), contender, kind: 'revoke', epoch, reason });
    const term = this.openTerm(contender, epoch);
    if (!term) this.violations.push(`${contender} revoked epoch ${epoch}, which it did not hold`);
    else term.revokedAt = Date.now();
  }

  /** A side effect of `contender`'s term `epoch` (e.g. it published /leader/info, or a guarded write). */
  act(contender: string, epoch: number, what: string): void {
    this.events.push({ at: Date.now(), contender, kind: 'act', epoch, reason: what });
    const term = this.openTerm(contender, epoch);
    if (!term) this.violations.push(`${contender} acted (${what}) for epoch ${epoch} outside its term (never granted or already revoked)`);
    else term.acts++;
  }

  /** Contenders whose last term is still open. */
  get leaders(): string[] { return [...new Set(this.intervals.filter((i) => i.revokedAt === null).map((i) => i.contender))]; }

  private openTerm(contender: string, epoch: number): TermInterval | undefined {
    return this.intervals.find((i) => i.contender === contender && i.epoch === epoch && i.revokedAt === null);
  }
}

export interface TestContenderOptions {
  connect: string;
  root: string;
  name: string;
  timeline: LeadershipTimeline;
  sessionTimeoutMs?: number;
  /** Leave readiness confirmation to the test. */
  manualConfirm?: boolean;
  /** Wraps the client the election uses (e.g. to inject a fault after a create). */
  wrapClient?: (client: NativeZooKeeperClient) => ZooKeeperClient;
}

export class TestContender {
  readonly grants: LeadershipTerm[] = [];
  readonly revokes: Array<{ term: LeadershipTerm; reason: string }> = [];
  readonly errors: Error[] = [];
  private actTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(readonly name: string, readonly client: NativeZooKeeperClient, readonly service: LeaderElectionService,
    private readonly timeline: LeadershipTimeline) {}

  static async start(options: TestContenderOptions): Promise<TestContender> {
    const client = new NativeZooKeeperClient({ connect: options.connect, chroot: options.root, sessionTimeoutMs: options.sessionTimeoutMs ?? 4000 });
    await client.waitUntilConnected(15000);
    const electionClient = options.wrapClient ? options.wrapClient(client) : client;
    const service = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(electionClient), {
      contenderInfo: { replicaId: options.name, restUrl: `http://127.0.0.1/${options.name}`, rpcUrl: `http://127.0.0.1/${options.name}/rpc` },
    });
    const contender = new TestContender(options.name, client, service, options.timeline);
    service.start({
      grantLeadership: async (term) => {
        contender.grants.push(term);
        options.timeline.grant(options.name, term.epoch);
        if (!options.manualConfirm) await contender.confirm(term);
      },
      revokeLeadership: (term, reason) => {
        contender.revokes.push({ term, reason });
        options.timeline.revoke(options.name, term.epoch, reason);
      },
      handleError: (err) => { contender.errors.push(err); },
    });
    // A guarded side effect ("run if leader") of the last granted term every few ms, as a leader's writes would be.
    contender.actTimer = setInterval(() => {
      const term = contender.grants[contender.grants.length - 1];
      if (term && service.isLeader(term)) options.timeline.act(options.name, term.epoch, 'guarded write');
    }, 20);
    contender.actTimer.unref();
    return contender;
  }

  /** Confirms readiness (publishes /leader/info); recorded as a side effect of the term if it succeeded. */
  async confirm(term: LeadershipTerm): Promise<boolean> {
    const ready = await this.service.confirmLeadership(term);
    if (ready) this.timeline.act(this.name, term.epoch, 'published /leader/info');
    return ready;
  }

  get isLeader(): boolean { return !this.closed && this.service.currentTerm !== null; }
  get epoch(): number | null { return this.service.currentTerm?.epoch ?? null; }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.actTimer) clearInterval(this.actTimer);
    await this.service.close();
    await this.client.close();
  }
}

export async function closeAll(contenders: TestContender[]): Promise<void> {
  await Promise.all(contenders.map((c) => c.close()));
}
