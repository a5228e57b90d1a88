/**
 * createApp through app.callback(), in-process with fakes: probes, the leader gate (307 / 503),
 * the token guard, 404/405 answers and the error middleware. Jobs routes: rest-jobs.test.ts.
 */
import test from 'ava';
import { atLeader } from '../../src/rest/forward';
import { createApp } from '../../src/rest/app';
import { LATCH_PATH } from '../../src/election/zk-driver';
import { asStandby, fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

function serve(f: ReturnType<typeof fakeRestDeps>) {
  const handler = createApp(f.deps).callback();
  return (path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) => inject(handler, { path, ...init });
}

// ---- probes ----

test('probes on the ready leader: live, ready, healthy with its own epoch', async (t) => {
  const f = fakeRestDeps();
  const get = serve(f);
  const live = await get('/livez');
  t.is(live.status, 200);
  t.deepEqual(live.json(), { status: 'alive', replicaId: 'replica-a' });
  t.is(live.headers['x-ha-replica-id'], 'replica-a');
  t.false('access-control-allow-origin' in live.headers, 'no CORS header unless web.access-control-allow-origin is set');

  const ready = await get('/readyz');
  t.is(ready.status, 200);
  t.deepEqual(ready.json(), { ready: true, role: 'leader', zookeeper: 'CONNECTED' });

  const health = await get('/health');
  t.is(health.status, 200);
  t.like(health.json(), { role: 'leader', replicaId: 'replica-a', epoch: 7, leader: { replicaId: 'replica-a', restUrl: 'http://a.test:8081', epoch: 7 } });
  t.is((await get('/health?activecode=204')).status, 204);
  t.is((await get('/health?activecode=99')).status, 200, 'an out-of-range code falls back to the default');
});

test('probes on a standby with a ready leader elsewhere: ready, health 429 unless told otherwise', async (t) => {
  const f = fakeRestDeps();
  asStandby(f);
  const get = serve(f);
  const ready = await get('/readyz');
  t.is(ready.status, 200);
  t.like(ready.json(), { ready: true, role: 'standby' });

  const health = await get('/health');
  t.is(health.status, 429);
  t.like(health.json(), { role: 'standby', epoch: null, leader: { replicaId: 'replica-b', restUrl: 'http://b.test:8081/', epoch: 8 } });
  t.is((await get('/health?standbyok=true')).status, 200);
  t.is((await get('/health?standbycode=200')).status, 200);
});

test('probes without a ready leader, and while disconnected from ZooKeeper: not ready, 503 + Retry-After', async (t) => {
  const f = fakeRestDeps();
  asStandby(f);
  f.retrieval.current = null;
  const get = serve(f);
  const ready = await get('/readyz');
  t.is(ready.status, 503);
  t.is(ready.headers['retry-after'], '1');
  t.deepEqual(ready.json(), { ready: false, role: 'standby', zookeeper: 'CONNECTED' });
  const health = await get('/health?standbyok=true');
  t.is(health.status, 503);
  t.is(health.json().leader, null);

  // The leader itself, cut off from ZooKeeper, is alive but neither ready nor healthy.
  const g = fakeRestDeps();
  g.client.suspend();
  const get2 = serve(g);
  t.is((await get2('/livez')).status, 200);
  const notReady = await get2('/readyz');
  t.is(notReady.status, 503);
  t.like(notReady.json(), { ready: false, role: 'leader', zookeeper: 'SUSPENDED' });
  const unhealthy = await get2('/health');
  t.is(unhealthy.status, 503);
  t.is(unhealthy.headers['retry-after'], '1');
  t.like(unhealthy.json(), { zookeeper: { state: 'SUSPENDED' } });
});

test('a standby whose retrieval still names itself does not count itself as a ready leader elsewhere', async (t) => {
  const f = fakeRestDeps();
  f.dispatcher.role = 'standby';
  const get = serve(f);
  t.is((await get('/readyz')).status, 503);
  t.is((await get('/jobs')).status, 503);
});

// ---- the leader gate ----

test('a standby answers leader-only requests with 307 to the leader, keeping path and query', async (t) => {
  const f = fakeRestDeps();
  asStandby(f);
  const req = serve(f);
  const res = await req('/jobs/overview?x=1');
  t.is(res.status, 307);
  t.is(res.headers.location, 'http://b.test:8081/jobs/overview?x=1');
  t.is(res.headers['x-ha-leader-id'], 'replica-b');
  t.is(res.headers['x-ha-leader-epoch'], '8');
  t.is(res.headers['x-ha-replica-id'], 'replica-a');
  t.deepEqual(res.json(), { redirect: true, leader: { replicaId: 'replica-b', restUrl: 'http://b.test:8081/', epoch: 8 } });

  const submit = await req('/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.is(submit.status, 307);
  t.is(submit.headers.location, 'http://b.test:8081/jobs');
  t.deepEqual(f.dispatcher.submitted, [], 'a standby never submits');
  t.deepEqual((await f.deps.metrics!.redirects.get()).values.filter((v) => v.value > 0).map((v) => [v.labels.outcome, v.value]), [['redirect', 2]]);
});

test('a request target in absolute form (GET http://elsewhere/jobs) is redirected with its path and query only, never to the host it names', async (t) => {
  const f = fakeRestDeps();
  asStandby(f);
  const res = await serve(f)('http://evil.example/jobs?x=1');
  t.is(res.status, 307);
  t.is(res.headers.location, 'http://b.test:8081/jobs?x=1');
  t.is(atLeader('http://b.test:8081/', '//evil.example/jobs'), 'http://b.test:8081//evil.example/jobs', 'an origin-form path is kept as it is');
  t.is(atLeader('http://b.test:8081', '*'), 'http://b.test:8081/');
});

test('without a ready leader, or while recovering, leader-only requests get 503 + Retry-After', async (t) => {
  const f = fakeRestDeps();
  asStandby(f);
  f.retrieval.current = null;
  const req = serve(f);
  const none = await req('/overview');
  t.is(none.status, 503);
  t.is(none.headers['retry-after'], '1');
  t.deepEqual(none.json(), { errors: ['no ready leader is known right now; retry shortly'] });

  // Recovering: the published leader may still be the previous one; redirecting there would bounce.
  asStandby(f);
  f.dispatcher.role = 'recovering';
  const recovering = await req('/jobs');
  t.is(recovering.status, 503);
  t.is(recovering.headers['retry-after'], '1');
  t.regex(recovering.json().errors[0], /recovering jobs/);
  t.deepEqual((await f.deps.metrics!.redirects.get()).values.filter((v) => v.value > 0).map((v) => [v.labels.outcome, v.value]), [['unavailable', 2]]);
});

test('/leader names the ready leader on every replica, 503 when none is known', async (t) => {
  const f = fakeRestDeps();
  asStandby(f);
  const req = serve(f);
  const leader = await req('/leader');
  t.is(leader.status, 200);
  t.like(leader.json(), { replicaId: 'replica-b', epoch: 8 });
  f.client.suspend();
  const none = await req('/leader');
  t.is(none.status, 503);
  t.is(none.headers['retry-after'], '1');
});

test('/replicas lists the latch contenders in latch order, unreadable ones marked', async (t) => {
  const f = fakeRestDeps();
  await f.client.mkdirp(LATCH_PATH);
  await f.client.create(`${LATCH_PATH}/latch-`, JSON.stringify({ replicaId: 'replica-a' }), 'ephemeral_sequential');
  await f.client.create(`${LATCH_PATH}/latch-`, 'not json', 'ephemeral_sequential');
  const res = await serve(f)('/replicas');
  t.is(res.status, 200);
  t.deepEqual(res.json().replicas.map((r: Record<string, unknown>) => [r.position, r.replicaId ?? null, r.unreadable ?? false]),
    [[0, 'replica-a', false], [1, null, true]]);
});

test('/metrics serves the Prometheus registry; 404 when metrics are off', async (t) => {
  const f = fakeRestDeps();
  asStandby(f);
  const res = await serve(f)('/metrics');
  t.is(res.status, 200);
  t.regex(res.headers['content-type'], /^text\/plain/);
  t.regex(res.text, /ha_dispatcher_redirects_total/);
  const off = await serve(fakeRestDeps({ metrics: undefined }))('/metrics');
  t.is(off.status, 404);
  t.deepEqual(off.json(), { errors: ['metrics are not enabled on this replica'] });
});

// ---- unknown routes ----

test('unknown endpoints, and known paths with a method they do not take, get a JSON 404', async (t) => {
  const req = serve(fakeRestDeps());
  const res = await req('/no/such/thing');
  t.is(res.status, 404);
  t.regex(res.headers['content-type'], /application\/json/);
  t.deepEqual(res.json(), { errors: ['no such endpoint: GET /no/such/thing'] });
  const wrong = await req('/jobs', { method: 'DELETE' });
  t.is(wrong.status, 404);
  t.deepEqual(wrong.json(), { errors: ['no such endpoint: DELETE /jobs'] });
});

test('routes mounted by install() answer ahead of the 404 fallback', async (t) => {
  const f = fakeRestDeps({ install: (app) => app.use(async (ctx, next) => {
    if (ctx.path !== '/internal/ping') return next();
    ctx.body = { pong: true };
  }) });
  const req = serve(f);
  t.deepEqual((await req('/internal/ping')).json(), { pong: true });
  t.is((await req('/internal/other')).status, 404);
});

// ---- token guard ----

test('with security.rest.token set: 401 without a token, 403 with a wrong one; probes, metrics and the page stay open', async (t) => {
  const f = fakeRestDeps({ restToken: 's3cret' });
  const req = serve(f);
  const missing = await req('/jobs');
  t.is(missing.status, 401);
  t.is(missing.headers['www-authenticate'], 'Bearer realm="ha-dispatcher"');
  t.regex(missing.json().errors[0], /security\.rest\.token/);
  const wrong = await req('/jobs', { headers: { authorization: 'Bearer nope' } });
  t.is(wrong.status, 403);
  t.deepEqual(wrong.json(), { errors: ["the bearer token is not this cluster's security.rest.token"] });
  t.is((await req('/jobs', { headers: { authorization: 'Bearer s3cret' } })).status, 200);
  for (const open of ['/livez', '/readyz', '/health', '/metrics', '/']) t.is((await req(open)).status, 200, open);
  t.is((await req('/internal/anything')).status, 404, '/internal/* is guarded by its own token, not this one');
});

test('a standby refuses a request without the token before redirecting it', async (t) => {
  const f = fakeRestDeps({ restToken: 's3cret' });
  asStandby(f);
  const req = serve(f);
  const res = await req('/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  t.is(res.status, 401);
  t.false('location' in res.headers);
  t.is((await req('/jobs', { headers: { authorization: 'Bearer s3cret' } })).status, 307);
});

// ---- the error middleware ----

test('an unexpected error answers 500 without its message and is logged as rest.internal-error', async (t) => {
  const f = fakeRestDeps();
  f.dispatcher.pageOfJobs = () => { throw new Error('zk path /secret/thing broke'); };
  const res = await serve(f)('/jobs');
  t.is(res.status, 500);
  t.deepEqual(res.json(), { errors: ['internal error; see the server log'] });
  t.notRegex(res.text, /secret/);
  const logged = f.logger.events.filter((e) => e.event === 'rest.internal-error');
  t.is(logged.length, 1);
  t.like(logged[0], { level: 'error', fields: { method: 'GET', path: '/jobs' } });
});
