/**
 * Herd: N in-process contenders (each its own ZooKeeper session and LeaderElectionService, like
 * test/helpers/election.ts). On leader exit (its session closed, so its latch node and /leader/info
 * vanish at once), count how many of the remaining contenders issued any ZooKeeper read. The latch
 * recipe watches only the predecessor, so only the successor should read.
 * A second phase adds a LeaderRetrievalService to every contender, as a real replica runs one (a
 * standby must learn the new leader's URL to redirect): those reads are reported apart.
 */
import * as crypto from 'node:crypto';
import { LeaderElectionService } from '../../src/election/service';
import { zooKeeperLeaderElectionDriverFactory } from '../../src/election/zk-driver';
import { LeaderRetrievalService } from '../../src/election/retrieval';
import { CreateMode, StateChange, Stat, Watcher, ZooKeeperClient, NativeZooKeeperClient } from '../../src/zk/client';
import { nowMs, round } from '../lib/stats';
import { sleep, until } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput, target } from '../lib/types';

const SIZES = {
  full: { contenders: 20, trials: 5, retrievalTrials: 2 },
  smoke: { contenders: 3, trials: 1, retrievalTrials: 1 },
};

type Category = 'latch' | 'leaderInfo' | 'other';
interface Counts { reads: Record<Category, number>; writes: number }

/** Delegates to the real client and counts every request by kind and path. */
class CountingClient implements ZooKeeperClient {
  readonly counts: Counts = { reads: { latch: 0, leaderInfo: 0, other: 0 }, writes: 0 };
  constructor(readonly inner: NativeZooKeeperClient) {}
  get state() { return this.inner.state; }
  get isConnected() { return this.inner.isConnected; }
  get sessionId() { return this.inner.sessionId; }
  get sessionTimeoutMs() { return this.inner.sessionTimeoutMs; }
  get chroot() { return this.inner.chroot; }
  on(event: 'state', listener: (change: StateChange) => void): this { this.inner.on(event, listener); return this; }
  off(event: 'state', listener: (change: StateChange) => void): this { this.inner.off(event, listener); return this; }
  private read(path: string): void {
    this.counts.reads[path.startsWith('/leader/latch') ? 'latch' : path === '/leader/info' ? 'leaderInfo' : 'other']++;
  }
  create(path: string, data?: Buffer | string, mode?: CreateMode): Promise<string> { this.counts.writes++; return this.inner.create(path, data, mode); }
  get(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: Stat }> { this.read(path); return this.inner.get(path, watcher); }
  set(path: string, data: Buffer | string, version?: number): Promise<Stat> { this.counts.writes++; return this.inner.set(path, data, version); }
  delete(path: string, version?: number): Promise<void> { this.counts.writes++; return this.inner.delete(path, version); }
  exists(path: string, watcher?: Watcher): Promise<Stat | null> { this.read(path); return this.inner.exists(path, watcher); }
  getChildren(path: string, watcher?: Watcher): Promise<string[]> { this.read(path); return this.inner.getChildren(path, watcher); }
  getChildrenWithStat(path: string, watcher?: Watcher): Promise<{ children: string[]; stat: Stat }> { this.read(path); return this.inner.getChildrenWithStat(path, watcher); }
  sync(path: string): Promise<void> { this.read(path); return this.inner.sync(path); }
  mkdirp(path: string): Promise<void> { this.counts.writes++; return this.inner.mkdirp(path); }
  waitUntilConnected(timeoutMs: number): Promise<void> { return this.inner.waitUntilConnected(timeoutMs); }
  close(): Promise<void> { return this.inner.close(); }
}

class Contender {
  retrieval: LeaderRetrievalService | null = null;
  exited = false;
  private constructor(readonly name: string, readonly client: CountingClient, readonly service: LeaderElectionService) {}

  static async start(connect: string, root: string, name: string): Promise<Contender> {
    const inner = new NativeZooKeeperClient({ connect, chroot: root, sessionTimeoutMs: 4000 });
    await inner.waitUntilConnected(15_000);
    const client = new CountingClient(inner);
    const service = new LeaderElectionService(zooKeeperLeaderElectionDriverFactory(client), { contenderInfo: { replicaId: name, restUrl: `http://127.0.0.1/${name}`, rpcUrl: `http://127.0.0.1/${name}/rpc` } });
    service.start({
      grantLeadership: async (term) => { await service.confirmLeadership(term); },
      revokeLeadership: () => undefined,
      handleError: (err) => { console.error(`herd: contender ${name}:`, err); },
    });
    return new Contender(name, client, service);
  }

  startRetrieval(): void {
    this.retrieval = new LeaderRetrievalService(this.client);
    this.retrieval.start();
  }

  snapshot(): { reads: Record<Category, number>; writes: number; childListings: number; watchEvents: number } {
    return { reads: { ...this.client.counts.reads }, writes: this.client.counts.writes, childListings: this.service.stats.childListings, watchEvents: this.service.stats.watchEvents };
  }

  get ops(): number { const c = this.client.counts; return c.reads.latch + c.reads.leaderInfo + c.reads.other + c.writes; }

  /** Leader exit: the session ends at once, as when a process dies and its connection closes. */
  async exit(): Promise<void> {
    this.exited = true;
    this.retrieval?.stop();
    await this.client.inner.close();
  }

  async close(): Promise<void> {
    this.retrieval?.stop();
    if (!this.exited) await this.service.close().catch(() => undefined);
    await this.client.inner.close();
  }
}

export const herd: Scenario = {
  name: 'herd',
  title: 'Herd effect on leader exit',
  budgetMs: (mode) => (mode === 'full' ? 90_000 : 20_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const root = `/ha-dispatcher/bench-herd-${crypto.randomBytes(5).toString('hex')}`;
    const contenders: Contender[] = [];
    ctx.defer(() => Promise.all(contenders.map((c) => c.close())).then(() => undefined));
    let serial = 0;
    const add = async (): Promise<void> => { contenders.push(await Contender.start(ctx.connect, root, `c${++serial}`)); };
    for (let i = 0; i < size.contenders; i++) await add();
    const live = (): Contender[] => contenders.filter((c) => !c.exited);
    const readyLeader = (): Contender | undefined => live().find((c) => c.service.isReadyLeader);
    const quiet = async (): Promise<void> => {
      // Settled when no contender issued a request for 300 ms (bounded).
      const deadline = Date.now() + 10_000;
      let last = -1;
      while (Date.now() < deadline) {
        const total = live().reduce((a, c) => a + c.ops, 0);
        if (total === last) return;
        last = total;
        await sleep(300);
      }
    };
    await until('a ready leader among the contenders', () => readyLeader() ?? null, 30_000, 10);
    await quiet();

    const trials: Array<Record<string, unknown>> = [];
    const runTrials = async (count: number, withRetrieval: boolean): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const leader = readyLeader();
        if (!leader) throw new Error('no ready leader before the trial');
        const others = live().filter((c) => c !== leader);
        const before = new Map(others.map((c) => [c, c.snapshot()]));
        const t0 = nowMs();
        await leader.exit();
        const next = await until('a new ready leader', () => readyLeader() ?? null, 20_000, 2);
        const electedMs = nowMs() - t0;
        if (withRetrieval) await until('every contender knows the new leader', () => others.every((c) => c.retrieval?.current?.replicaId === next.name), 10_000, 5);
        await quiet();
        const deltas = others.map((c) => {
          const b = before.get(c)!;
          const a = c.snapshot();
          return { c, latch: a.reads.latch - b.reads.latch, leaderInfo: a.reads.leaderInfo - b.reads.leaderInfo, other: a.reads.other - b.reads.other,
            childListings: a.childListings - b.childListings, watchEvents: a.watchEvents - b.watchEvents };
        });
        const electionReaders = deltas.filter((d) => d.latch + d.other > 0);
        const anyReaders = deltas.filter((d) => d.latch + d.other + d.leaderInfo > 0);
        trials.push({
          phase: withRetrieval ? 'with leader retrieval' : 'election only',
          trial: i + 1, contenders: others.length + 1, exited: leader.name, newLeader: next.name, electedMs: round(electedMs, 1),
          electionReaders: electionReaders.length,
          electionReadersAreNewLeader: electionReaders.every((d) => d.c === next),
          anyReaders: anyReaders.length,
          electionReads: deltas.reduce((a, d) => a + d.latch + d.other, 0),
          leaderInfoReads: deltas.reduce((a, d) => a + d.leaderInfo, 0),
          childListings: deltas.reduce((a, d) => a + d.childListings, 0),
          watchEvents: deltas.reduce((a, d) => a + d.watchEvents, 0),
        });
        ctx.log(`herd: ${withRetrieval ? 'with retrieval' : 'election only'} #${i + 1}: ${electionReaders.length} replica(s) read election nodes, ${anyReaders.length} read anything; elected in ${round(electedMs, 1)} ms`);
        await add(); // back to full strength; the newcomer queues at the tail
        if (withRetrieval) contenders[contenders.length - 1].startRetrieval();
        await until('the newcomer settled', () => readyLeader() ?? null, 10_000, 10);
        await quiet();
      }
    };
    await runTrials(size.trials, false);
    for (const c of live()) c.startRetrieval();
    await until('every contender knows the leader', () => live().every((c) => c.retrieval?.current?.replicaId === readyLeader()?.name), 10_000, 10);
    await quiet();
    await runTrials(size.retrievalTrials, true);

    const electionOnly = trials.filter((t) => t.phase === 'election only');
    const worstElection = Math.max(...trials.map((t) => t.electionReaders as number));
    const worstAny = Math.max(...electionOnly.map((t) => t.anyReaders as number));
    return {
      settings: { ...size, exit: 'leader session closed (latch node and /leader/info vanish at once)', counted: 'get, exists, getChildren, sync per contender, excluding the exited leader' },
      summary: {
        electionOnlyMaxReaders: worstAny,
        electionReadersMaxAllPhases: worstElection,
        readersAlwaysTheNewLeader: trials.every((t) => t.electionReadersAreNewLeader),
        withRetrievalMaxAnyReaders: Math.max(0, ...trials.filter((t) => t.phase !== 'election only').map((t) => t.anyReaders as number)),
      },
      trials,
      targets: [target('herd.readers', `replicas issuing any ZooKeeper read on leader exit (${size.contenders} contenders, worst trial)`, worstAny, '<=', 1, 'replicas')],
      notes: ['With leader retrieval every standby re-reads /leader/info (its watch fires on deletion and creation): that is how standbys learn where to redirect, not election traffic, and it is reported apart.'],
    };
  },
};
