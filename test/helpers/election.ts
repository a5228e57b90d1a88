/**
 * Election test harness: contenders that record every grant/revoke into one shared timeline, which
 * checks the safety invariants as events happen (never two leaders at once, epochs only increase).
 */
import { LeaderElectionService, LeadershipTerm } from '../../src/election/service';
import { ZkClient, ZooKeeperClient } from '../../src/zk/client';

export interface TimelineEvent { at: number; contender: string; kind: 'grant' | 'revoke'; epoch: number; reason?: string }

export class LeadershipTimeline {
  readonly events: TimelineEvent[] = [];
  readonly violations: string[] = [];
  private readonly holders = new Map<string, number>();
  private highestEpoch = -1;
  private highestEpochHolder: string | null = null;

  grant(contender: string, epoch: number): void {
    this.events.push({ at: Date.now(), contender, kind: 'grant', epoch });
    for (const [other, otherEpoch] of this.holders) {
      if (other !== contender) this.violations.push(`${contender} granted epoch ${epoch} while ${other} still leads epoch ${otherEpoch}`);
    }
    // A contender may regain its own epoch after a suspended-then-reconnected connection; nobody else may.
    if (epoch < this.highestEpoch || (epoch === this.highestEpoch && this.highestEpochHolder !== contender)) {
      this.violations.push(`${contender} granted epoch ${epoch}, not above the highest epoch so far (${this.highestEpoch})`);
    }
    if (epoch > this.highestEpoch) {
      this.highestEpoch = epoch;
      this.highestEpochHolder = contender;
    }
    this.holders.set(contender, epoch);
  }

  revoke(contender: string, epoch: number, reason: string): void {
    this.events.push({ at: Date.now(), contender, kind: 'revoke', epoch, reason });
    this.holders.delete(contender);
  }

  get leaders(): string[] { return [...this.holders.keys()]; }
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
  wrapClient?: (client: ZooKeeperClient) => ZkClient;
}

export class TestContender {
  readonly grants: LeadershipTerm[] = [];
  readonly revokes: Array<{ term: LeadershipTerm; reason: string }> = [];
  private closed = false;

  private constructor(readonly name: string, readonly client: ZooKeeperClient, readonly service: LeaderElectionService) {}

  static async start(options: TestContenderOptions): Promise<TestContender> {
    const client = new ZooKeeperClient({ connect: options.connect, chroot: options.root, sessionTimeoutMs: options.sessionTimeoutMs ?? 4000 });
    await client.waitUntilConnected(15000);
    const electionClient = options.wrapClient ? options.wrapClient(client) : client;
    const service = new LeaderElectionService(electionClient, {
      contenderInfo: { replicaId: options.name, restUrl: `http://127.0.0.1/${options.name}`, rpcUrl: `rpc://${options.name}` },
    });
    const contender = new TestContender(options.name, client, service);
    service.start({
      grantLeadership: async (term) => {
        contender.grants.push(term);
        options.timeline.grant(options.name, term.epoch);
        if (!options.manualConfirm) await service.confirmLeadership(term);
      },
      revokeLeadership: (term, reason) => {
        contender.revokes.push({ term, reason });
        options.timeline.revoke(options.name, term.epoch, reason);
      },
    });
    return contender;
  }

  get isLeader(): boolean { return !this.closed && this.service.currentTerm !== null; }
  get epoch(): number | null { return this.service.currentTerm?.epoch ?? null; }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.service.close();
    await this.client.close();
  }
}

export async function closeAll(contenders: TestContender[]): Promise<void> {
  await Promise.all(contenders.map((c) => c.close()));
}
