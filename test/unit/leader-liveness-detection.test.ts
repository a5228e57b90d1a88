/**
 * How fast LeaderLiveness tells a dead leader from a frozen or draining one: a refused connection is
 * unreachable at once, a closed kept-alive connection makes it probe again without waiting for the
 * interval, failed probes (timeouts, resets: a frozen process) still need `failuresToDown` in a row,
 * and a leader draining for a graceful stop (answers with `Connection: close`) stays alive until its
 * port closes. Scripted probes make the outcomes exact; real servers on 127.0.0.1 check the wiring.
 */
import test from 'ava';
import * as http from 'node:http';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { AddressInfo } from 'node:net';
import { LeaderLiveness, LivenessProbe, ProbeOutcome } from '../../src/election/leader-liveness';
import { LeaderInfo } from '../../src/election/leader-info';
import { closeServer, listen } from '../../src/http/server';
import { eventually } from '../../src/util/poll';
import { leaderInfo, RecordingLogger } from '../helpers/fake-rest-deps';

class FakeRetrieval extends EventEmitter {
  current: LeaderInfo | null = null;
  publish(leader: LeaderInfo | null): void { this.current = leader; this.emit('change', leader); }
}

/** A probe whose every call waits for the test to say what it saw. */
function scriptedProbe(): { calls: Array<{ settle: (o: ProbeOutcome) => void; connectionLost: () => void }>; probe: LivenessProbe } {
  const calls: Array<{ settle: (o: ProbeOutcome) => void; connectionLost: () => void }> = [];
  const probe: LivenessProbe = (_url, _ms, connectionLost) => new Promise((settle) => calls.push({ settle, connectionLost }));
  return { calls, probe };
}

const TARGET = { replicaId: 'replica-b', restUrl: 'http://127.0.0.1:9', epoch: 4 };
/** Longer than any test: a probe that happens anyway was triggered by something else than the interval. */
const NEVER_MS = 600_000;

function tracker(t: import('ava').ExecutionContext, options: { probe?: LivenessProbe; intervalMs: number; failuresToDown: number }):
  { liveness: LeaderLiveness; retrieval: FakeRetrieval; logger: RecordingLogger } {
  const retrieval = new FakeRetrieval();
  const logger = new RecordingLogger();
  const liveness = new LeaderLiveness(retrieval, { selfId: 'replica-a', timeoutMs: 1000, staleAfterMs: NEVER_MS, logger, ...options });
  t.teardown(() => liveness.stop());
  liveness.start();
  return { liveness, retrieval, logger };
}

test('a refused connection makes the leader unreachable at once, whatever failuresToDown says', async (t) => {
  const { calls, probe } = scriptedProbe();
  const { liveness, retrieval, logger } = tracker(t, { probe, intervalMs: 5, failuresToDown: 5 });
  retrieval.publish(leaderInfo(TARGET.replicaId, TARGET.restUrl, TARGET.epoch));
  await eventually('the first probe', () => calls.length === 1);
  t.true(liveness.alive(TARGET));
  calls[0].settle('refused');
  await eventually('unreachable after the one refused probe', () => !liveness.alive(TARGET));
  const down = logger.events.filter((e) => e.event === 'leader.unreachable');
  t.is(down.length, 1);
  t.regex(String(down[0].fields.reason), /refused/);
});

test('failed probes (timeouts, resets) still need failuresToDown in a row; an answer in between starts the count again', async (t) => {
  const { calls, probe } = scriptedProbe();
  const { liveness, retrieval, logger } = tracker(t, { probe, intervalMs: 1, failuresToDown: 3 });
  retrieval.publish(leaderInfo(TARGET.replicaId, TARGET.restUrl, TARGET.epoch));
  const settleNext = async (outcome: ProbeOutcome): Promise<void> => {
    const n = calls.length;
    calls[n - 1].settle(outcome);
    await eventually(`probe ${n + 1}`, () => calls.length === n + 1); // the outcome was recorded before the next probe
  };
  await eventually('the first probe', () => calls.length === 1);
  await settleNext('failed');
  await settleNext('failed');
  t.true(liveness.alive(TARGET), 'two failures of three');
  await settleNext('answered');
  await settleNext('failed');
  await settleNext('failed');
  t.true(liveness.alive(TARGET), 'the answer reset the count');
  calls[calls.length - 1].settle('failed');
  await eventually('unreachable after three failures in a row', () => !liveness.alive(TARGET));
  t.regex(String(logger.events.find((e) => e.event === 'leader.unreachable')?.fields.reason), /3 consecutive probes failed/);
});

test('a closed kept-alive connection makes the tracker probe again at once, also when it closes under a probe in flight', async (t) => {
  const { calls, probe } = scriptedProbe();
  const { liveness, retrieval, logger } = tracker(t, { probe, intervalMs: NEVER_MS, failuresToDown: 3 });
  retrieval.publish(leaderInfo(TARGET.replicaId, TARGET.restUrl, TARGET.epoch));
  await eventually('the first probe', () => calls.length === 1);
  calls[0].settle('answered');
  await eventually('the answer is recorded', () => liveness.state?.lastSeenAt !== null);
  t.is(calls.length, 1, 'the next probe waits for the interval');

  // Closed, and the probe it starts is answered (a draining leader closing idle connections).
  calls[0].connectionLost();
  await eventually('a probe right after the connection closed', () => calls.length === 2);
  t.true(liveness.alive(TARGET), 'a closed connection alone is no verdict');
  calls[1].settle('answered');

  // Closed again, and again under the probe it started (that probe fails with a reset): one more probe right after it.
  calls[1].connectionLost();
  await eventually('a probe right after the connection closed', () => calls.length === 3);
  calls[2].connectionLost();
  calls[2].settle('failed');
  await eventually('a probe right after the failed one', () => calls.length === 4);
  // A failure that is no refusal (a reset, a deadline) is not conclusive: failuresToDown (3) still applies.
  calls[3].settle('failed');
  calls[3].connectionLost();
  await eventually('a probe after the second failure was recorded', () => calls.length === 5);
  t.true(liveness.alive(TARGET), 'two failures of three');
  t.false(logger.events.some((e) => e.event === 'leader.unreachable'));
  calls[4].settle('failed');
  await eventually('unreachable after the third failure', () => !liveness.alive(TARGET));
  t.regex(String(logger.events.find((e) => e.event === 'leader.unreachable')?.fields.reason), /3 consecutive probes failed/);
});

test('aliveNow hears a connection close that arrived with the request, and lets the probe it starts decide', async (t) => {
  const { calls, probe } = scriptedProbe();
  const { liveness, retrieval } = tracker(t, { probe, intervalMs: NEVER_MS, failuresToDown: 3 });
  retrieval.publish(leaderInfo(TARGET.replicaId, TARGET.restUrl, TARGET.epoch));
  await eventually('the first probe', () => calls.length === 1);
  calls[0].settle('answered');
  await eventually('the answer is recorded', () => liveness.state?.lastSeenAt !== null);

  // A request and the close arrive together (the close is handled after the request started): a draining leader answers.
  const draining = liveness.aliveNow(TARGET);
  calls[0].connectionLost();
  await eventually('the probe after the close', () => calls.length === 2);
  calls[1].settle('answered');
  t.true(await draining);

  // The same with a dead leader: its port refuses, and the request is not sent there.
  const dead = liveness.aliveNow(TARGET);
  calls[1].connectionLost();
  await eventually('the probe after the close', () => calls.length === 3);
  t.true(liveness.alive(TARGET), 'no verdict before the probe settles');
  calls[2].settle('refused');
  t.false(await dead);
});

/** A /livez server that counts probes; `draining` answers with `Connection: close` like rest.shutdown-drain. */
async function livezServer(): Promise<{ server: http.Server; url: string; probes: () => number; drain: () => void }> {
  let probes = 0;
  let draining = false;
  const server = http.createServer((req, res) => {
    if (req.url === '/livez') probes++;
    if (draining) res.setHeader('Connection', 'close');
    res.end('{"status":"alive"}');
  });
  server.keepAliveTimeout = NEVER_MS;
  await listen(server, 0, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, probes: () => probes,
    drain: () => { draining = true; server.closeIdleConnections(); } };
}

test('a real leader whose process goes away (connection closed, port refused) is unreachable without waiting for the next probe', async (t) => {
  const leader = await livezServer();
  const { liveness, retrieval, logger } = tracker(t, { intervalMs: NEVER_MS, failuresToDown: 5 });
  const target = { replicaId: 'replica-b', restUrl: leader.url, epoch: 8 };
  retrieval.publish(leaderInfo('replica-b', leader.url, 8));
  await eventually('the first answer', () => liveness.state?.lastSeenAt !== null);
  t.is(leader.probes(), 1);
  await closeServer(leader.server); // stops listening and closes the kept-alive connection, as a dying process's kernel does
  await eventually('unreachable', () => !liveness.alive(target));
  t.regex(String(logger.events.find((e) => e.event === 'leader.unreachable')?.fields.reason), /refused/);
});

test('a leader draining for a graceful stop (Connection: close, port open) stays reachable until its port closes', async (t) => {
  const leader = await livezServer();
  t.teardown(() => closeServer(leader.server));
  const { liveness, retrieval, logger } = tracker(t, { intervalMs: 10, failuresToDown: 2 });
  const target = { replicaId: 'replica-b', restUrl: leader.url, epoch: 8 };
  retrieval.publish(leaderInfo('replica-b', leader.url, 8));
  await eventually('answers', () => leader.probes() >= 2);
  leader.drain();
  const atDrain = leader.probes();
  await eventually('answers while draining', () => leader.probes() >= atDrain + 5);
  t.true(liveness.alive(target));
  t.false(logger.events.some((e) => e.event === 'leader.unreachable'), 'never unreachable while draining');
  await closeServer(leader.server);
  await eventually('unreachable once the port is closed', () => !liveness.alive(target));
});

test('a leader that answered and then freezes (SIGSTOP: connection and port stay open) needs failuresToDown timed-out probes', async (t) => {
  let frozen = false;
  let hanging = 0;
  const held = new Set<http.ServerResponse>();
  const server = http.createServer((_req, res) => {
    if (!frozen) return res.end('{"status":"alive"}');
    hanging++;
    held.add(res); // never answered while frozen
  });
  server.keepAliveTimeout = NEVER_MS;
  await listen(server, 0, '127.0.0.1');
  t.teardown(() => { for (const res of held) res.destroy(); return closeServer(server); });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const retrieval = new FakeRetrieval();
  const logger = new RecordingLogger();
  const liveness = new LeaderLiveness(retrieval, { selfId: 'replica-a', intervalMs: 10, timeoutMs: 1000, failuresToDown: 3, staleAfterMs: NEVER_MS, logger });
  t.teardown(() => liveness.stop());
  liveness.start();
  const target = { replicaId: 'replica-b', restUrl: url, epoch: 8 };
  retrieval.publish(leaderInfo('replica-b', url, 8));
  await eventually('an answer over the kept-alive connection', () => liveness.state?.lastSeenAt !== null);
  frozen = true;
  // The first probe timed out and destroyed its own (kept-alive) connection: one failure, not a lost connection.
  await eventually('the second probe reached the frozen leader', () => hanging >= 2, 10_000);
  t.true(liveness.alive(target), 'one timed-out probe of three');
  await eventually('unreachable after three timed-out probes', () => !liveness.alive(target), 10_000);
  t.regex(String(logger.events.find((e) => e.event === 'leader.unreachable')?.fields.reason), /3 consecutive probes failed/);
});

test('a leader process SIGKILLed at any moment between probes is not alive for a request that arrives after its exit (10 kills)', async (t) => {
  // The HTTP agent drops the closed kept-alive socket in its own close listener, which may run after
  // the tracker's: a probe started at once went out on the dead socket and failed (one failure of
  // failuresToDown) instead of being refused, and the leader stayed "alive" until the next interval.
  const server = 'require("http").createServer((q, r) => r.end("ok")).listen(0, "127.0.0.1", function () { console.log(this.address().port); });';
  for (let kill = 0; kill < 10; kill++) {
    const child = spawn(process.execPath, ['-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => { child.kill('SIGKILL'); });
    const port = await new Promise<number>((resolve) => child.stdout.once('data', (d) => resolve(Number(String(d)))));
    const { liveness, retrieval } = tracker(t, { intervalMs: 250, failuresToDown: 2 });
    const target = { replicaId: 'replica-b', restUrl: `http://127.0.0.1:${port}`, epoch: 4 };
    retrieval.publish(leaderInfo(target.replicaId, target.restUrl, target.epoch));
    await eventually('the leader answered a probe', () => liveness.state?.lastSeenAt != null);
    // Somewhere within the probe interval (the loss must be heard, not the next regular probe's refusal).
    await new Promise((resolve) => setTimeout(resolve, 20 * kill));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    t.false(await liveness.aliveNow(target), `kill ${kill} (${20 * kill} ms after an answer): alive after the exit`);
    liveness.stop();
  }
});
