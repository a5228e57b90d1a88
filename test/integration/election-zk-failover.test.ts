/**
 * Election while ZooKeeper servers crash: the server a leader is connected to, a follower, then the
 * ZooKeeper leader. Serial: the servers are killed and restarted on a shared ensemble.
 */
import anyTest, { TestFn } from 'ava';
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { fourLetterWord } from '../../src/ensemble/four-letter-word';
import { StateChange } from '../../src/zk/client';
import { eventually, startEnsemble, uniqueRoot } from '../helpers/ensemble';
import { closeAll, LeadershipTimeline, TestContender } from '../helpers/election';

const test = anyTest as TestFn<{ ensemble: LocalEnsemble }>;

test.before(async (t) => {
  t.context.ensemble = await startEnsemble();
});

test.after.always(async (t) => {
  await t.context.ensemble?.stop({ removeData: true });
});

async function startContenders(connect: string, root: string, timeline: LeadershipTimeline, count: number): Promise<TestContender[]> {
  const contenders: TestContender[] = [];
  for (let i = 0; i < count; i++) contenders.push(await TestContender.start({ connect, root, name: `c${i}`, timeline }));
  return contenders;
}

/** The id of the ZooKeeper server a session is connected to, from each server's `cons` listing. */
async function serverOfSession(ensemble: LocalEnsemble, sessionId: string): Promise<number | null> {
  const pattern = new RegExp(`sid=0x${sessionId.toLowerCase()}[,)]`);
  for (const server of ensemble.servers) {
    const listing = await fourLetterWord('127.0.0.1', server.clientPort, 'cons').catch(() => '');
    if (pattern.test(listing)) return server.id;
  }
  return null;
}

/** Every server serves again (a majority is not enough before the next crash). */
async function waitForAllServing(ensemble: LocalEnsemble): Promise<void> {
  await eventually('every ZooKeeper server serving', async () => {
    const status = await ensemble.status();
    return status.every((s) => s.mode === 'leader' || s.mode === 'follower') && status.filter((s) => s.mode === 'leader').length === 1;
  }, 60000, 100);
}

/** The most contenders that believed they lead at the same instant, sampled while faults happen. */
function sampleLeaders(contenders: TestContender[]): { readonly max: number; stop(): void } {
  let max = 0;
  const timer = setInterval(() => { max = Math.max(max, contenders.filter((c) => c.isLeader).length); }, 5);
  return { get max() { return max; }, stop: () => clearInterval(timer) };
}

async function soleLeader(contenders: TestContender[], what: string): Promise<TestContender> {
  return eventually(what, () => {
    const leaders = contenders.filter((c) => c.isLeader);
    return leaders.length === 1 && leaders[0].client.isConnected ? leaders[0] : null;
  }, 30000);
}

/** What a contender host reports: who leads now (connected), the most leaders ever seen at once, the timeline's verdict. */
interface HostSnapshot { leaders: Array<{ name: string; epoch: number | null }>; maxLeaders: number; violations: string[]; error?: string }

/*
 * Runs the contenders (the same TestContender and LeadershipTimeline) in a child process. Needed while
 * this process restarts ZooKeeper servers: the ZooKeeper C client opens its sockets without
 * close-on-exec, so LocalEnsemble.restartServer() (a plain spawn) hands the new server every ZooKeeper
 * socket this process holds; once a client reconnects and closes its copy, the socket lives on in the
 * server, libuv's epoll set keeps reporting it under the old fd number, the next client socket given
 * that number gets endless spurious "readable" events, and the addon closes that handle as "session
 * expired" after eleven empty reads -- again and again, so no contender ever holds a session.
 * Replicas are separate processes from their ZooKeeper servers in production anyway.
 */
const CONTENDER_HOST = `
const { closeAll, LeadershipTimeline, TestContender } = require(process.env.HA_TEST_ELECTION_HELPERS);
const timeline = new LeadershipTimeline();
const contenders = [];
let maxLeaders = 0;
const sampler = setInterval(() => { maxLeaders = Math.max(maxLeaders, contenders.filter((c) => c.isLeader).length); }, 5);
process.on('disconnect', () => process.exit(0));
process.on('message', async (msg) => {
  try {
    if (msg.op === 'start') {
      for (let i = 0; i < msg.count; i++) contenders.push(await TestContender.start({ connect: msg.connect, root: msg.root, name: 'c' + i, timeline }));
    } else if (msg.op === 'close') {
      clearInterval(sampler);
      await closeAll(contenders);
    }
    const leaders = contenders.filter((c) => c.isLeader && c.client.isConnected).map((c) => ({ name: c.name, epoch: c.epoch }));
    process.send({ id: msg.id, leaders, maxLeaders, violations: timeline.violations });
  } catch (err) {
    process.send({ id: msg.id, error: String((err && err.stack) || err) });
  }
});
`;

class ContenderHost {
  private nextId = 0;
  private readonly pending = new Map<number, (snapshot: HostSnapshot) => void>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message: HostSnapshot & { id: number }) => {
      this.pending.get(message.id)?.(message);
      this.pending.delete(message.id);
    });
  }

  static async start(connect: string, root: string, count: number): Promise<ContenderHost> {
    const child = spawn(process.execPath, ['-e', CONTENDER_HOST], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, HA_TEST_ELECTION_HELPERS: path.join(__dirname, '..', 'helpers', 'election.js') },
    });
    const host = new ContenderHost(child);
    await host.request({ op: 'start', connect, root, count });
    return host;
  }

  snapshot(): Promise<HostSnapshot> { return this.request({ op: 'snapshot' }); }

  async soleLeader(what: string): Promise<{ name: string; epoch: number }> {
    return eventually(what, async () => {
      const { leaders } = await this.snapshot();
      return leaders.length === 1 && leaders[0].epoch !== null ? { name: leaders[0].name, epoch: leaders[0].epoch } : null;
    }, 30000);
  }

  /** Closes the contenders gracefully and waits for the process to end (killed if it does not within 20 s). */
  async close(): Promise<HostSnapshot | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return null;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const final = await Promise.race([this.request({ op: 'close' }), exited.then(() => null)]).catch(() => null);
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    await exited;
    clearTimeout(timer);
    return final;
  }

  private request(message: Record<string, unknown>): Promise<HostSnapshot> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`contender host did not answer ${String(message.op)} within 60 s`)); }, 60000);
      this.pending.set(id, (snapshot) => {
        clearTimeout(timer);
        if (snapshot.error) reject(new Error(`contender host failed: ${snapshot.error}`));
        else resolve(snapshot);
      });
      this.child.send({ ...message, id });
    });
  }
}

test.serial('when the ZooKeeper server the leader is connected to dies, the leader fails over and one leader remains', async (t) => {
  const { ensemble } = t.context;
  const root = uniqueRoot('server-dies');
  const timeline = new LeadershipTimeline();
  const contenders = await startContenders(ensemble.connectString, root, timeline, 3);
  const sampler = sampleLeaders(contenders);
  let killed: number | null = null;
  try {
    const leader = await soleLeader(contenders, 'a leader');
    const epoch = leader.epoch!;
    const session = leader.client.sessionId!;
    const states: StateChange[] = [];
    leader.client.on('state', (change) => states.push(change));
    const server = await eventually('the leader\'s server', () => serverOfSession(ensemble, session));

    killed = server;
    await ensemble.killServer(server);

    await eventually('the leader noticed the broken connection', () => states.some((s) => s.state === 'SUSPENDED'));
    const revoke = await eventually('the leader stepped down on suspension', () => leader.revokes.find((r) => r.term.epoch === epoch));
    t.regex(revoke.reason, /suspended/);
    const next = await soleLeader(contenders, 'one leader after the failover');
    // Every grant takes a new epoch from the /epoch counter, even a re-grant to the same session and
    // latch node after a suspension: the old term's commands are fenced either way.
    t.true(next.epoch! > epoch, `a new term has a higher epoch (${next.epoch} > ${epoch})`);
    // The killed server cannot answer `cons`: finding the session proves it moved to a live server.
    await eventually('the leader\'s session on a live server', () => serverOfSession(ensemble, next.client.sessionId!));
    t.is(sampler.max, 1, 'never two leaders at once');
    t.deepEqual(timeline.violations, []);
  } finally {
    sampler.stop();
    await closeAll(contenders);
    // Restarted only once this process holds no ZooKeeper connection (see ContenderHost).
    if (killed !== null) {
      await ensemble.restartServer(killed);
      await waitForAllServing(ensemble);
    }
  }
});

test.serial('killing a ZooKeeper follower, then the ZooKeeper leader, keeps exactly one dispatcher leader', async (t) => {
  const { ensemble } = t.context;
  const host = await ContenderHost.start(ensemble.connectString, uniqueRoot('quorum'), 5);
  let killed: number | null = null;
  try {
    const first = await host.soleLeader('a leader');

    const follower = (await ensemble.status()).find((s) => s.mode === 'follower');
    if (!follower) throw new Error('no ZooKeeper follower to kill');
    killed = follower.id;
    await ensemble.killServer(follower.id);
    await ensemble.waitForQuorum(30000);
    const afterFollower = await host.soleLeader('one leader without the follower');
    t.true(afterFollower.epoch >= first.epoch);

    await ensemble.restartServer(follower.id);
    killed = null;
    await waitForAllServing(ensemble);

    const zkLeader = await ensemble.leaderId();
    if (zkLeader === null) throw new Error('no ZooKeeper leader to kill');
    killed = zkLeader;
    await ensemble.killServer(zkLeader);
    await ensemble.waitForQuorum(30000);
    t.not(await ensemble.leaderId(), null, 'the two remaining servers elected a ZooKeeper leader');
    const afterLeader = await host.soleLeader('one leader after the ZooKeeper leader died');
    t.true(afterLeader.epoch >= afterFollower.epoch);

    const { maxLeaders, violations } = await host.snapshot();
    t.is(maxLeaders, 1, 'never two leaders at once');
    t.deepEqual(violations, []);
  } finally {
    await host.close();
    if (killed !== null) {
      await ensemble.restartServer(killed);
      await waitForAllServing(ensemble);
    }
  }
});
