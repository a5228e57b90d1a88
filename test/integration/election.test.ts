import anyTest, { TestFn } from 'ava';
import { LocalEnsemble } from '../../src/ensemble/local-ensemble';
import { LeaderRetrievalService } from '../../src/election/retrieval';
import { LEADER_INFO_PATH } from '../../src/election/leader-info';
import { LATCH_PATH } from '../../src/election/zk-driver';
import { expireSession } from '../../src/zk/client';
import { connectedClient, eventually, startEnsemble, uniqueRoot } from '../helpers/ensemble';
import { closeAll, LeadershipTimeline, TestContender } from '../helpers/election';

const test = anyTest as TestFn<{ ensemble: LocalEnsemble }>;

test.before(async (t) => {
  t.context.ensemble = await startEnsemble();
});

test.after.always(async (t) => {
  await t.context.ensemble?.stop({ removeData: true });
});

async function startContenders(connect: string, root: string, timeline: LeadershipTimeline, count: number, prefix = 'c'): Promise<TestContender[]> {
  const contenders: TestContender[] = [];
  for (let i = 0; i < count; i++) {
    contenders.push(await TestContender.start({ connect, root, name: `${prefix}${i}`, timeline }));
  }
  return contenders;
}

test('5 contenders elect exactly one leader and all agree on who leads and on the epoch', async (t) => {
  const root = uniqueRoot('five');
  const timeline = new LeadershipTimeline();
  const contenders = await startContenders(t.context.ensemble.connectString, root, timeline, 5);
  try {
    const leader = await eventually('a leader', () => contenders.find((c) => c.isLeader));
    t.is(contenders.filter((c) => c.isLeader).length, 1);
    // Every contender's own view of the leader, through the retrieval service on its own session.
    const views = await Promise.all(contenders.map(async (c) => {
      const retrieval = new LeaderRetrievalService(c.client);
      retrieval.start();
      const info = await eventually('leader info', () => retrieval.current);
      retrieval.stop();
      return info;
    }));
    for (const view of views) {
      t.is(view.replicaId, leader.name);
      t.is(view.epoch, leader.epoch!);
    }
    t.deepEqual(timeline.violations, []);
  } finally {
    await closeAll(contenders);
  }
});

test('when the leader closes another contender leads with a higher epoch, until each has led once', async (t) => {
  const root = uniqueRoot('rotate');
  const timeline = new LeadershipTimeline();
  const contenders = await startContenders(t.context.ensemble.connectString, root, timeline, 4);
  const ledBy = new Set<string>();
  let lastEpoch = -1;
  try {
    for (let round = 0; round < 4; round++) {
      const live = contenders.filter((c) => !ledBy.has(c.name));
      const leader = await eventually(`leader in round ${round}`, () => live.find((c) => c.isLeader));
      t.true(leader.epoch! > lastEpoch, `epoch ${leader.epoch} must exceed ${lastEpoch}`);
      t.is(live.filter((c) => c.isLeader).length, 1);
      lastEpoch = leader.epoch!;
      ledBy.add(leader.name);
      await leader.close();
    }
    t.is(ledBy.size, 4);
    t.deepEqual(timeline.violations, []);
  } finally {
    await closeAll(contenders);
  }
});

test('an expired leader session hands leadership to a standby and the old leader never acts with its old epoch', async (t) => {
  const { ensemble } = t.context;
  const root = uniqueRoot('expire');
  const timeline = new LeadershipTimeline();
  const contenders = await startContenders(ensemble.connectString, root, timeline, 3);
  try {
    const oldLeader = await eventually('first leader', () => contenders.find((c) => c.isLeader));
    const oldEpoch = oldLeader.epoch!;
    const credentials = oldLeader.client.sessionCredentials!;
    await expireSession(ensemble.connectString, credentials);
    const newLeader = await eventually('a standby takes over', () => contenders.find((c) => c !== oldLeader && c.isLeader));
    t.true(newLeader.epoch! > oldEpoch);
    await eventually('old leader reports revocation', () => oldLeader.revokes.some((r) => r.term.epoch === oldEpoch));
    // The old leader re-contends with a new session: it must come back as a standby.
    await eventually('old leader re-registered a latch node', async () => {
      const stat = await oldLeader.client.exists(LATCH_PATH);
      return oldLeader.client.isConnected && oldLeader.client.sessionId !== credentials.sessionId && stat !== null;
    });
    t.false(oldLeader.isLeader);
    t.is(oldLeader.grants.filter((g) => g.epoch === oldEpoch).length, 1, 'the old epoch was granted exactly once');
    const oldTerm = timeline.intervals.find((i) => i.contender === oldLeader.name && i.epoch === oldEpoch);
    t.true(oldTerm !== undefined && oldTerm.acts > 0 && oldTerm.revokedAt !== null, 'the old term acted, then was revoked (acts after it would be violations)');
    t.deepEqual(timeline.violations, []);
  } finally {
    await closeAll(contenders);
  }
});

test('with 10 contenders the leader exit wakes exactly one watcher (no herd)', async (t) => {
  const root = uniqueRoot('herd');
  const timeline = new LeadershipTimeline();
  const contenders = await startContenders(t.context.ensemble.connectString, root, timeline, 10);
  try {
    const leader = await eventually('a leader', () => contenders.find((c) => c.isLeader));
    const others = contenders.filter((c) => c !== leader);
    // Every standby must have its predecessor watch in place before we measure.
    await eventually('all standbys watching', () => others.every((c) => c.service.stats.childListings > 0));
    const before = others.map((c) => ({ ...c.service.stats }));
    await leader.close();
    const next = await eventually('the next leader', () => others.find((c) => c.isLeader));
    const watchDelta = others.reduce((sum, c, i) => sum + c.service.stats.watchEvents - before[i].watchEvents, 0);
    const listingDelta = others.reduce((sum, c, i) => sum + c.service.stats.childListings - before[i].childListings, 0);
    t.is(watchDelta, 1, 'exactly one standby received a watch event');
    t.is(listingDelta, 1, 'only the woken standby listed the latch again');
    t.true(next.service.stats.watchEvents > before[others.indexOf(next)].watchEvents, 'the woken one is the new leader');
    t.deepEqual(timeline.violations, []);
  } finally {
    await closeAll(contenders);
  }
});

test('/leader/info appears only after readiness is confirmed, disappears with the leader, and retrieval reports each change', async (t) => {
  const { ensemble } = t.context;
  const root = uniqueRoot('info');
  const timeline = new LeadershipTimeline();
  const observer = await connectedClient({ connect: ensemble.connectString, chroot: root });
  const retrieval = new LeaderRetrievalService(observer);
  const seen: Array<string | null> = [];
  retrieval.on('change', (info) => seen.push(info ? `${info.replicaId}@${info.epoch}` : null));
  retrieval.start();
  const first = await TestContender.start({ connect: ensemble.connectString, root, name: 'first', timeline, manualConfirm: true });
  const second = await TestContender.start({ connect: ensemble.connectString, root, name: 'second', timeline });
  try {
    const term = await eventually('first is granted', () => first.grants[0]);
    t.is(await observer.exists(LEADER_INFO_PATH), null, 'no /leader/info before confirmation');
    t.is(retrieval.current, null);
    t.true(await first.confirm(term));
    const info = await eventually('retrieval sees first', () => retrieval.current);
    t.is(info.replicaId, 'first');
    t.is(info.epoch, term.epoch);
    const stat = await observer.exists(LEADER_INFO_PATH);
    t.is(stat?.ephemeralOwner, first.client.sessionId ?? undefined, '/leader/info is owned by the leader session');

    await first.close();
    await eventually('retrieval sees second', () => retrieval.current?.replicaId === 'second');
    const secondEpoch = second.epoch!;
    t.true(secondEpoch > term.epoch);
    await second.close();
    await eventually('retrieval reports no leader', () => seen[seen.length - 1] === null);
    t.deepEqual(seen.filter((s) => s !== null), [`first@${term.epoch}`, `second@${secondEpoch}`]);
    t.is(await observer.exists(LEADER_INFO_PATH), null);
  } finally {
    retrieval.stop();
    await closeAll([first, second]);
    await observer.close();
  }
});
