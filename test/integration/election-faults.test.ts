/**
 * Election under network faults between one contender and its ZooKeeper server: a partition that
 * silently loses packets, and a connection reset that loses the answer to the latch create.
 * Serial: the faults are injected on a shared ensemble.
 */
import anyTest, { TestFn } from 'ava';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { LATCH_PATH } from '../../src/election/zk-driver';
import { StateChange, ZooKeeperClient, NativeZooKeeperClient } from '../../src/zk/client';
import { ConnectionLossError, ZK_CODES } from '../../src/zk/errors';
import { join, sequenceOf } from '../../src/zk/paths';
import { connectedClient, eventually, startEnsemble, uniqueRoot } from '../helpers/ensemble';
import { closeAll, LeadershipTimeline, TestContender } from '../helpers/election';
import { FaultProxy } from '../helpers/fault-proxy';
import { RecordingLogger } from '../helpers/fake-rest-deps';

const test = anyTest as TestFn<{ ensemble: LocalEnsemble }>;

test.before(async (t) => {
  t.context.ensemble = await startEnsemble();
});

test.after.always(async (t) => {
  await t.context.ensemble?.stop({ removeData: true });
});

/**
 * Closes a proxy once every client behind it has hung up and pending shutdowns had an I/O turn to
 * finish. FaultProxy answers a FIN with end() and close() resets every socket; on Node 20, resetting
 * a socket whose end() is still in flight fails with EINVAL and leaks the handle (TCPWrap::Reset
 * marks it closing anyway), after which the test process spins forever on exit.
 */
async function closeProxy(proxy: FaultProxy): Promise<void> {
  await eventually('every client behind the proxy hung up', () => proxy.connectionCount === 0, 10000).catch(() => undefined);
  for (let turn = 0; turn < 3; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
  await proxy.close();
}

function proxyTo(ensemble: LocalEnsemble, serverIndex: number): Promise<FaultProxy> {
  return FaultProxy.start({ host: '127.0.0.1', port: ensemble.servers[serverIndex].clientPort });
}

/** Owner session (hex) of every latch node, read through an independent client. */
async function latchOwners(observer: ZooKeeperClient): Promise<Map<string, string>> {
  const children = await observer.getChildren(LATCH_PATH);
  const owners = new Map<string, string>();
  for (const child of children) {
    const stat = await observer.exists(join(LATCH_PATH, child));
    if (stat) owners.set(child, stat.ephemeralOwner);
  }
  return owners;
}

function leadersAmong(contenders: TestContender[]): string[] {
  return contenders.filter((c) => c.isLeader).map((c) => c.name);
}

test.serial('a blackholed leader steps down by itself before any standby is granted, and rejoins as a standby with a new session', async (t) => {
  const { ensemble } = t.context;
  const root = uniqueRoot('blackhole');
  const timeline = new LeadershipTimeline();
  const proxy = await proxyTo(ensemble, 0);
  const observer = await connectedClient({ connect: ensemble.connectString, chroot: root });
  const contenders: TestContender[] = [];
  try {
    const a = await TestContender.start({ connect: proxy.address, root, name: 'A', timeline, sessionTimeoutMs: 4000 });
    contenders.push(a);
    const aStates: StateChange[] = [];
    a.client.on('state', (change) => aStates.push(change));
    await eventually('A leads', () => a.isLeader);
    const oldEpoch = a.epoch!;
    const oldSession = a.client.sessionId!;
    const b = await TestContender.start({ connect: ensemble.connectString, root, name: 'B', timeline });
    const c = await TestContender.start({ connect: ensemble.connectString, root, name: 'C', timeline });
    contenders.push(b, c);
    await eventually('B and C hold latch nodes', async () => (await observer.getChildren(LATCH_PATH)).length === 3);
    t.deepEqual(leadersAmong(contenders), ['A']);

    const eventsBefore = timeline.events.length;
    proxy.blackhole();

    const standby = await eventually('a standby leads after A\'s session expired', () => [b, c].find((x) => x.isLeader), 30000);
    t.true(standby.epoch! > oldEpoch);
    const during = timeline.events.slice(eventsBefore);
    const aRevoke = during.findIndex((e) => e.contender === 'A' && e.kind === 'revoke');
    const nextGrant = during.findIndex((e) => e.kind === 'grant');
    t.true(aRevoke >= 0, 'A revoked its leadership');
    t.true(nextGrant >= 0, 'a standby was granted');
    t.true(aRevoke < nextGrant, `A's revoke precedes the next grant: ${JSON.stringify(during)}`);
    t.regex(during[aRevoke].reason ?? '', /suspended/);
    t.is(during[aRevoke].epoch, oldEpoch);
    t.not(during[nextGrant].contender, 'A');
    t.false(a.isLeader);
    // The server dropped A's ephemeral node with its session: only B's and C's remain.
    const owners = await latchOwners(observer);
    t.false([...owners.values()].includes(oldSession), 'no latch node of A\'s old session remains');

    proxy.pass();
    const newSession = await eventually('A reconnects with a new session', () =>
      a.client.isConnected && a.client.sessionId !== oldSession ? a.client.sessionId : null, 30000);
    await eventually('A holds a latch node of its new session', async () =>
      [...(await latchOwners(observer)).values()].includes(newSession));
    const states = aStates.map((s) => s.state);
    t.true(states.indexOf('SUSPENDED') >= 0 && states.indexOf('SUSPENDED') < states.indexOf('LOST'), `A went SUSPENDED then LOST: ${states.join(' → ')}`);
    t.false(states.includes('RECONNECTED'), 'A never resumed its old session');
    t.false(a.isLeader, 'A rejoined as a standby');
    t.deepEqual(leadersAmong(contenders), [standby.name]);
    t.is((await observer.getChildren(LATCH_PATH)).length, 3, 'one latch node per contender');
    t.false(a.grants.some((g) => g.epoch !== oldEpoch), 'A was never granted again');
    t.deepEqual(timeline.violations, []);
  } finally {
    await closeAll(contenders);
    await observer.close();
    await closeProxy(proxy);
  }
});

/**
 * The election client of a contender whose first latch create reaches the server, after which the
 * connection is reset and the caller sees a connection loss, as if the reply had been lost.
 */
function loseFirstLatchCreateReply(client: NativeZooKeeperClient, proxy: FaultProxy, fired: { count: number }): ZooKeeperClient {
  return new Proxy(client, {
    get(target, prop) {
      if (prop === 'create') {
        return async (path: string, data?: Buffer | string, mode?: Parameters<ZooKeeperClient['create']>[2]): Promise<string> => {
          const created = await target.create(path, data, mode);
          if (fired.count === 0 && path.startsWith(`${LATCH_PATH}/`)) {
            fired.count++;
            proxy.cut();
            throw new ConnectionLossError(ZK_CODES.CONNECTIONLOSS, 'create', path);
          }
          return created;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

test.serial('a contender whose latch create reply is lost finds its node by UUID and never leaves an orphan', async (t) => {
  const { ensemble } = t.context;
  const root = uniqueRoot('lost-reply');
  const timeline = new LeadershipTimeline();
  const observer = await connectedClient({ connect: ensemble.connectString, chroot: root });
  const proxies = [await proxyTo(ensemble, 0), await proxyTo(ensemble, 1)];
  const fired = [{ count: 0 }, { count: 0 }];
  const contenders: TestContender[] = [];
  const faulty = (i: number, name: string): Promise<TestContender> => TestContender.start({
    connect: proxies[i].address, root, name, timeline,
    wrapClient: (client) => loseFirstLatchCreateReply(client, proxies[i], fired[i]),
  });
  try {
    // Alone: it must lead on the node it created, without creating a second one.
    const a = await faulty(0, 'A');
    contenders.push(a);
    await eventually('A leads', () => a.isLeader);
    t.is(fired[0].count, 1, 'the fault was injected');
    t.is(a.service.stats.creates, 1, 'A created exactly one latch node');
    let owners = await latchOwners(observer);
    t.is(owners.size, 1);
    t.deepEqual([...owners.values()], [a.client.sessionId]);
    t.is(a.epoch, sequenceOf([...owners.keys()][0]), 'A leads with the sequence of its one node');

    // Behind a leader: it must be a standby watching its predecessor, on its one node.
    const b = await faulty(1, 'B');
    contenders.push(b);
    await eventually('B holds its latch node', async () => [...(await latchOwners(observer)).values()].includes(b.client.sessionId!));
    await eventually('B has listed the latch', () => b.service.stats.childListings > 0 && b.service.stats.creates === 1);
    t.is(fired[1].count, 1, 'the fault was injected');
    owners = await latchOwners(observer);
    t.is(owners.size, 2, 'one latch node per live contender');
    t.deepEqual([...owners.values()].sort(), [a.client.sessionId, b.client.sessionId].sort());
    t.deepEqual(leadersAmong(contenders), ['A']);

    await a.close();
    await eventually('B takes over from A', () => b.isLeader);
    t.is(b.service.stats.creates, 1, 'B still created exactly one latch node');
    t.deepEqual([...(await latchOwners(observer)).values()], [b.client.sessionId]);

    await b.close();
    t.deepEqual(await observer.getChildren(LATCH_PATH), [], 'no orphan latch node remains');
    t.deepEqual(timeline.violations, []);
  } finally {
    await closeAll(contenders);
    await observer.close();
    await Promise.all(proxies.map(closeProxy));
  }
});

test.serial('a connection lost while the new session makes its chroot is retried within the connect timeout, not fatal', async (t) => {
  const proxy = await proxyTo(t.context.ensemble, 0);
  const logger = new RecordingLogger();
  const client = new NativeZooKeeperClient({ connect: proxy.address, chroot: uniqueRoot('chroot-retry'), sessionTimeoutMs: 6000, logger });
  t.teardown(async () => { await client.close(); await closeProxy(proxy); });
  // Hold the first answers after the handshake (the chroot's exists), then reset the connection under them.
  let held = false;
  client.on('state', (change: { state: string }) => {
    if (change.state !== 'CONNECTED' || held) return;
    held = true;
    proxy.stall();
    setTimeout(() => { proxy.cut(); proxy.pass(); }, 300);
  });
  await client.waitUntilConnected(15_000);
  t.true(held, 'the fault was injected');
  t.true(logger.events.some((e) => e.event === 'zk.chroot.retry'), JSON.stringify(logger.events.map((e) => e.event)));
  t.truthy(await client.exists('/'), 'the chroot exists and the session serves');
});
