/**
 * LeaderLiveness against real HTTP servers on 127.0.0.1: it follows the published leader, probes its
 * /livez, turns unreachable after consecutive failed probes (a stopped server) and reachable again,
 * logs both transitions, and reports the predecessor's last answer for a later term only.
 */
import test from 'ava';
import * as http from 'node:http';
import { EventEmitter } from 'node:events';
import { AddressInfo } from 'node:net';
import { LeaderLiveness } from '../../src/election/leader-liveness';
import { LeaderInfo } from '../../src/election/leader-info';
import { closeServer, listen } from '../../src/http/server';
import { eventually } from '../../src/util/poll';
import { leaderInfo, RecordingLogger } from '../helpers/fake-rest-deps';

class FakeRetrieval extends EventEmitter {
  current: LeaderInfo | null = null;
  publish(leader: LeaderInfo | null): void { this.current = leader; this.emit('change', leader); }
}

async function livezServer(port = 0): Promise<{ server: http.Server; url: string; probes: () => number }> {
  let probes = 0;
  const server = http.createServer((req, res) => { if (req.url === '/livez') probes++; res.end('{"status":"alive"}'); });
  await listen(server, port, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, probes: () => probes };
}

test('a leader that stops answering turns unreachable after failed probes, and reachable once it answers again', async (t) => {
  const leader = await livezServer();
  const port = Number(new URL(leader.url).port);
  const retrieval = new FakeRetrieval();
  const logger = new RecordingLogger();
  const liveness = new LeaderLiveness(retrieval, { selfId: 'replica-a', intervalMs: 20, timeoutMs: 200, logger });
  t.teardown(() => liveness.stop());
  liveness.start();
  const target = { replicaId: 'replica-b', restUrl: leader.url, epoch: 8 };
  retrieval.publish(leaderInfo('replica-b', leader.url, 8));
  t.true(liveness.alive(target), 'a newly published leader counts as alive');
  await eventually('probes answered', () => leader.probes() >= 3 && liveness.state?.lastSeenAt !== null);
  t.true(liveness.alive(target));

  await closeServer(leader.server);
  await eventually('the stopped leader is unreachable', () => !liveness.alive(target));
  t.true(logger.events.some((e) => e.event === 'leader.unreachable' && e.fields.leader === 'replica-b'));
  t.true(liveness.alive({ ...target, epoch: 9 }), 'another leader than the tracked one is not judged');

  const back = await livezServer(port);
  t.teardown(() => closeServer(back.server));
  await eventually('the leader answers again', () => liveness.alive(target));
  t.true(logger.events.some((e) => e.event === 'leader.reachable'));
});

test('a leader that accepts connections but never answers (frozen) turns unreachable within the probe deadline', async (t) => {
  const sockets = new Set<import('node:net').Socket>();
  const frozen = http.createServer(() => { /* never answers */ });
  frozen.on('connection', (s) => sockets.add(s));
  await listen(frozen, 0, '127.0.0.1');
  t.teardown(() => { for (const s of sockets) s.destroy(); return closeServer(frozen); });
  const url = `http://127.0.0.1:${(frozen.address() as AddressInfo).port}`;
  const retrieval = new FakeRetrieval();
  const liveness = new LeaderLiveness(retrieval, { selfId: 'replica-a', intervalMs: 20, timeoutMs: 100, staleAfterMs: 5000 });
  t.teardown(() => liveness.stop());
  liveness.start();
  retrieval.publish(leaderInfo('replica-b', url, 8));
  await eventually('the frozen leader is unreachable', () => !liveness.alive({ replicaId: 'replica-b', restUrl: url, epoch: 8 }), 5000);
  t.is(liveness.state?.lastSeenAt, null, 'it never answered');
});

test('lastSeenAt: the last answer of a leader with a lower epoch; nothing for a first term or while it is itself the leader', async (t) => {
  const leader = await livezServer();
  t.teardown(() => closeServer(leader.server));
  const retrieval = new FakeRetrieval();
  const liveness = new LeaderLiveness(retrieval, { selfId: 'replica-a', intervalMs: 20, timeoutMs: 200 });
  t.teardown(() => liveness.stop());
  liveness.start();
  t.is(liveness.lastSeenAt(1), undefined);
  const before = Date.now();
  retrieval.publish(leaderInfo('replica-b', leader.url, 8));
  await eventually('an answer', () => liveness.state?.lastSeenAt !== null);
  // This replica wins the next term: it stops probing and keeps the predecessor's last answer.
  retrieval.publish(leaderInfo('replica-a', 'http://127.0.0.1:1', 9));
  t.is(liveness.state, null);
  const seen = liveness.lastSeenAt(9)!;
  t.true(seen >= before && seen <= Date.now());
  t.is(liveness.lastSeenAt(8), undefined, 'the leader of the same epoch is not its own predecessor');
});
