/**
 * The leadership history store (one bounded znode, version-conditional appends) and the routes that
 * serve it and the dashboard: /leadership/history on a standby, the static assets with their CSP.
 */
import test from 'ava';
import { LEADERSHIP_HISTORY_PATH, LeadershipHistoryStore, LeadershipTermRecord, termRecord } from '../../src/store/leadership-history';
import { DASHBOARD_CSP } from '../../src/rest/dashboard';
import { createApp } from '../../src/rest/app';
import { ZK_CODES } from '../../src/zk/errors';
import { FakeZkClient } from '../helpers/fake-zk';
import { asStandby, fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

const term = (epoch: number, replicaId: string, grantedAt = epoch * 1000): LeadershipTermRecord =>
  termRecord({ epoch, grantedAt }, replicaId, `http://${replicaId}.test`, grantedAt + 40);

test('terms are appended in epoch order, each ends when the next starts, with a cause from the previous term', async (t) => {
  const store = new LeadershipHistoryStore(new FakeZkClient());
  t.deepEqual(await store.read(), []);
  t.true(await store.append(term(3, 'r1')));
  t.true(await store.append(term(5, 'r2')));
  t.true(await store.append(term(6, 'r2')));
  const terms = await store.read();
  t.deepEqual(terms.map((x) => [x.epoch, x.replicaId, x.recoveryMs, x.endedAt]), [
    [3, 'r1', 40, new Date(5000).toISOString()],
    [5, 'r2', 40, new Date(6000).toISOString()],
    [6, 'r2', 40, null],
  ]);
  t.deepEqual(terms.map((x) => x.cause), ['first recorded election', 'took over from r1 (epoch 3)', 're-elected after losing the latch of epoch 5']);
  t.false(await store.append(term(6, 'r2')), 'an epoch is recorded once');
});

test('the list keeps only the newest terms', async (t) => {
  const client = new FakeZkClient();
  const store = new LeadershipHistoryStore(client, 3);
  for (let epoch = 1; epoch <= 5; epoch++) await store.append(term(epoch, `r${epoch}`));
  t.deepEqual((await store.read()).map((x) => x.epoch), [3, 4, 5]);
  const { data } = await client.get(LEADERSHIP_HISTORY_PATH);
  t.is(JSON.parse(data.toString()).length, 3);
});

test('a write that loses the version race is dropped, not retried', async (t) => {
  const client = new FakeZkClient();
  const store = new LeadershipHistoryStore(client);
  await store.append(term(1, 'r1'));
  client.failNext('set', LEADERSHIP_HISTORY_PATH, ZK_CODES.BADVERSION);
  t.false(await store.append(term(2, 'r2')));
  t.deepEqual((await store.read()).map((x) => x.epoch), [1]);
  client.failNext('set', LEADERSHIP_HISTORY_PATH, ZK_CODES.CONNECTIONLOSS);
  await t.throwsAsync(store.append(term(2, 'r2')), { name: 'ConnectionLossError' });
});

test('an unreadable history node reads as empty and is replaced by the next append', async (t) => {
  const client = new FakeZkClient();
  await client.mkdirp('/history');
  await client.create(LEADERSHIP_HISTORY_PATH, 'not json');
  const store = new LeadershipHistoryStore(client);
  t.deepEqual(await store.read(), []);
  t.true(await store.append(term(4, 'r1')));
  t.deepEqual((await store.read()).map((x) => x.epoch), [4]);
});

test('a standby serves /leadership/history itself; the dashboard assets come with a strict CSP and without the token', async (t) => {
  const f = fakeRestDeps({ restToken: 'secret-token' });
  asStandby(f);
  await new LeadershipHistoryStore(f.client).append(term(8, 'replica-b'));
  const handler = createApp(f.deps).callback();

  t.is((await inject(handler, { path: '/leadership/history' })).status, 401);
  const history = await inject(handler, { path: '/leadership/history', headers: { authorization: 'Bearer secret-token' } });
  t.is(history.status, 200);
  t.deepEqual(history.json().terms.map((x: LeadershipTermRecord) => [x.epoch, x.replicaId]), [[8, 'replica-b']]);

  for (const [path, type] of [['/', 'text/html'], ['/dashboard/app.js', 'text/javascript'], ['/dashboard/app.css', 'text/css']]) {
    const res = await inject(handler, { path });
    t.is(res.status, 200, path);
    t.true(res.headers['content-type'].startsWith(type), path);
    t.is(res.headers['content-security-policy'], DASHBOARD_CSP, path);
  }
  const page = (await inject(handler, { path: '/' })).text;
  t.notRegex(page, /<script>|<style|style=|\son[a-z]+=/i, 'no inline script, style or handler');
});
