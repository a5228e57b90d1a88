/**
 * The leader gate and the probes with leader liveness: a standby whose published leader does not
 * answer never redirects there (503 LEADER_UNREACHABLE + Retry-After), and its /health and /readyz
 * say so (503, `leaderReachable: false`), `?standbyok=true` included.
 */
import test from 'ava';
import { createApp } from '../../src/rest/app';
import { LeaderTarget } from '../../src/election/leader-liveness';
import { asStandby, fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

function standbyWithLiveness() {
  const state = { alive: true, asked: [] as LeaderTarget[] };
  const f = fakeRestDeps({ liveness: { alive: (target) => (state.asked.push(target), state.alive) } });
  asStandby(f);
  const handler = createApp(f.deps).callback();
  return { f, state, get: (path: string) => inject(handler, { path }) };
}

test('a standby redirects to a leader that answers, and refuses with 503 + Retry-After once it does not', async (t) => {
  const { state, get } = standbyWithLiveness();
  const redirect = await get('/jobs');
  t.is(redirect.status, 307);
  t.is(redirect.headers.location, 'http://b.test:8081/jobs');
  t.like(state.asked[0], { replicaId: 'replica-b', epoch: 8 });

  state.alive = false;
  const refused = await get('/jobs');
  t.is(refused.status, 503);
  t.is(refused.headers['retry-after'], '1');
  t.false('location' in refused.headers);
  t.regex(refused.json().errors[0], /leader replica-b does not answer/);
});

test('/health and /readyz of a standby whose leader does not answer: 503 with leaderReachable false, standbyok or not', async (t) => {
  const { state, get } = standbyWithLiveness();
  t.is((await get('/health?standbyok=true')).status, 200);
  t.is((await get('/health')).json().leaderReachable, true);
  t.like((await get('/readyz')).json(), { ready: true, leaderReachable: true });

  state.alive = false;
  for (const path of ['/health', '/health?standbyok=true', '/health?standbycode=200']) {
    const health = await get(path);
    t.is(health.status, 503, path);
    t.is(health.headers['retry-after'], '1');
    t.like(health.json(), { role: 'standby', leaderReachable: false, leader: { replicaId: 'replica-b' } });
  }
  const ready = await get('/readyz');
  t.is(ready.status, 503);
  t.like(ready.json(), { ready: false, leaderReachable: false });
});

test('a leader whose node vanishes while the gate waits for its liveness verdict gets no 307: the target is read again after the wait', async (t) => {
  // As at a dead leader's session expiry: the /leader/info deletion is heard during the gate's one-turn
  // wait, and the tracker, no longer following that leader, would call it alive.
  const f = fakeRestDeps({ liveness: { alive: () => true, aliveNow: async () => { f.retrieval.current = null; return true; } } });
  asStandby(f);
  const handler = createApp(f.deps).callback();
  const res = await inject(handler, { path: '/jobs' });
  t.is(res.status, 503);
  t.is(res.headers['retry-after'], '1');
  t.false('location' in res.headers);
  t.regex(res.json().errors[0], /no ready leader/);
});

test('a leader replaced during the wait is judged as it stands: a live new leader gets the 307, an unreachable one a 503', async (t) => {
  for (const newAlive of [true, false]) {
    const f = fakeRestDeps({
      liveness: {
        alive: (target) => target.replicaId !== 'replica-c' || newAlive,
        aliveNow: async () => { f.retrieval.current = { ...f.retrieval.current!, replicaId: 'replica-c', restUrl: 'http://c.test:8081', epoch: 9 }; return false; },
      },
    });
    asStandby(f);
    const res = await inject(createApp(f.deps).callback(), { path: '/jobs' });
    if (newAlive) {
      t.is(res.status, 307);
      t.is(res.headers.location, 'http://c.test:8081/jobs');
    } else {
      t.is(res.status, 503);
      t.regex(res.json().errors[0], /leader replica-c does not answer/);
    }
  }
});
