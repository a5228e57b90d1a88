/**
 * `/autoscaler` as an attacker or a clumsy operator meets it (FakeZkClient behind the ZooKeeperClient
 * interface, a real StateSeal): a sealed record round-trips; a record a foreign session wrote without
 * the state key, or one past the size bounds, is never trusted (read as none, logged); an operator's
 * delete is survived (the next write creates the node again); a term that ended writes nothing.
 */
import test from 'ava';
import { ZkAutoscalerStore } from '../../src/store/autoscaler-store';
import type { AutoscalerState } from '../../src/resources/autoscaler';
import { AUTOSCALER_PATH } from '../../src/zk/layout';
import { StateSeal } from '../../src/zk/sealed';
import { NotLeaderError } from '../../src/http/errors';
import { FakeZkClient } from '../helpers/fake-zk';
import { RecordingLogger } from '../helpers/fake-rest-deps';

const KEY = Buffer.alloc(32, 3);
const STATE: AutoscalerState = { desired: 3, launches: [{ id: 'auto-1-1', launchedAt: 1000, registeredAt: null }], draining: [], updatedAt: 2000, epoch: 1 };

function setup(leading = { value: true }): { client: FakeZkClient; store: ZkAutoscalerStore; logger: RecordingLogger } {
  const client = Object.assign(new FakeZkClient(), { seal: new StateSeal(KEY) });
  const logger = new RecordingLogger();
  const guard = (): void => { if (!leading.value) throw new NotLeaderError('term over'); };
  return { client, store: new ZkAutoscalerStore(client, guard, logger), logger };
}

test('a sealed record round-trips; an operator\'s delete reads as none and the next write creates the node again', async (t) => {
  const { client, store } = setup();
  t.is(await store.read(), null);
  await store.write(STATE);
  t.deepEqual(await store.read(), STATE);
  await client.delete(AUTOSCALER_PATH);
  t.is(await store.read(), null);
  await store.write({ ...STATE, desired: 2 });
  t.is((await store.read())?.desired, 2);
});

test('a record written without the state key, or past the bounds, is never trusted: read as none and logged', async (t) => {
  const { client, store, logger } = setup();
  // A foreign session's plausible record: valid shape, no MAC.
  await client.create(AUTOSCALER_PATH, JSON.stringify({ ...STATE, desired: 50 }));
  t.is(await store.read(), null);
  // Sealed, but not something this product writes (20,000 launches).
  const flood = { ...STATE, launches: Array.from({ length: 20_000 }, (_, i) => ({ id: `auto-1-${i}`, launchedAt: 1, registeredAt: null })) };
  await client.set(AUTOSCALER_PATH, new StateSeal(KEY).seal('autoscaler', flood));
  t.is(await store.read(), null);
  t.deepEqual(logger.events.filter((e) => e.event === 'autoscaler.state.unreadable').map((e) => e.fields.reason === 'not an autoscaler record'), [false, true]);
});

test('a term that ended writes nothing', async (t) => {
  const leading = { value: true };
  const { store } = setup(leading);
  await store.write(STATE);
  leading.value = false;
  await t.throwsAsync(store.write({ ...STATE, desired: 9 }), { instanceOf: NotLeaderError });
  leading.value = true;
  t.is((await store.read())?.desired, 3);
});
