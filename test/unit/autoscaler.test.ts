/**
 * The autoscaler (docs/ARCHITECTURE.md, "Autoscaling"): the pure decision with a fake clock, and the
 * per-term Autoscaler against fakes of the ResourceManager, the provider and the ZooKeeper store.
 */
import test from 'ava';
import { FakeClock } from '../helpers/fake-clock';
import { decideScaling, INITIAL_MEMORY, PoolMember, ScalingLimits, ScalingMemory } from '../../src/resources/autoscaler-decision';
import { Autoscaler, AutoscalerState, LAUNCH_GONE_GRACE_MS, AutoscalerStateStore, ProviderRequest, ScalableResources, TaskManagerProvider } from '../../src/resources/autoscaler';
import type { TaskManagerView } from '../../src/resources/resource-manager';
import type { DrainRecord } from '../../src/resources/drain';
import { replicaConfigArgs } from '../../src/resources/autoscaler-providers';
import { fillTemplate, parseCommandTemplate } from '../../src/util/command-template';
import { runCommand } from '../../src/resources/autoscaler-providers';
import { loadConfig } from '../../src/config';
import { NotLeaderError } from '../../src/http/errors';

const LIMITS: ScalingLimits = { min: 1, max: 4, scaleUpDelayMs: 1000, scaleDownCooldownMs: 5000, slotsPerTaskManager: 2 };
const member = (id: string, busySlots: number, launched = false): PoolMember => ({ id, slots: 2, busySlots, launched });

/** Runs rounds of the decision on a fake clock, carrying its memory along. */
class Rounds {
  memory: ScalingMemory = INITIAL_MEMORY;
  constructor(readonly clock = new FakeClock(), readonly limits = LIMITS) {}
  decide(members: PoolMember[], waitingRequests: number, pendingLaunches = 0) {
    const d = decideScaling(this.limits, { now: this.clock.monotonicNow(), waitingRequests, members, pendingLaunches }, this.memory);
    this.memory = d.memory;
    return d;
  }
}

test('demand beyond the free slots grows the pool only after it persisted for the scale-up delay, and never beyond max', async (t) => {
  const r = new Rounds();
  const busy = [member('tm1', 2)];
  t.is(r.decide(busy, 10).direction, 'none', 'demand just appeared');
  await r.clock.advance(999);
  t.is(r.decide(busy, 10).direction, 'none');
  await r.clock.advance(1);
  const up = r.decide(busy, 10);
  t.like(up, { direction: 'up', current: 1, desired: 4, launch: 3 });
  t.regex(up.reason, /10 slot requests waited beside 0 free slots/);
});

test('demand that stops before the delay resets it; coming launches count as free slots', async (t) => {
  const r = new Rounds();
  r.decide([member('tm1', 2)], 3);
  await r.clock.advance(600);
  r.decide([member('tm1', 2)], 0);
  await r.clock.advance(600);
  t.is(r.decide([member('tm1', 2)], 3).direction, 'none', 'the delay starts again');
  await r.clock.advance(1000);
  // Two launches coming (4 slots) cover 3 waiting requests: nothing more.
  t.is(r.decide([member('tm1', 2)], 3, 2).direction, 'none');
  t.is(r.decide([member('tm1', 2)], 5, 2).direction, 'none', 'a shortfall again: the delay starts');
  await r.clock.advance(1000);
  t.like(r.decide([member('tm1', 2)], 5, 2), { direction: 'up', current: 3, desired: 4, launch: 1 }, 'a shortfall persisting through the delay');
});

test('below min the pool grows at once; above max idle TaskManagers are drained at once, busy ones never', async (t) => {
  const r = new Rounds(new FakeClock(), { ...LIMITS, min: 2 });
  t.like(r.decide([], 0), { direction: 'up', current: 0, desired: 2, launch: 2 });
  t.like(r.decide([member('tm1', 0)], 0, 1), { direction: 'none', current: 2 });
  const over = new Rounds(new FakeClock(), { ...LIMITS, max: 2 });
  t.like(over.decide([member('tm1', 1), member('tm2', 0), member('tm3', 0), member('tm4', 2)], 0), { direction: 'down', desired: 2, drain: ['tm3', 'tm2'] });
  t.like(over.decide([member('tm1', 1), member('tm2', 2), member('tm3', 1)], 0), { direction: 'none', current: 3 });
});

test('idle TaskManagers are drained after the cooldown, launched ones first, never below min nor below the waiting demand', async (t) => {
  const r = new Rounds();
  const pool = [member('tm1', 0), member('auto-1', 0, true), member('auto-2', 0, true), member('auto-3', 1, true)];
  t.is(r.decide(pool, 0).direction, 'none', 'idle only just now');
  await r.clock.advance(4999);
  t.is(r.decide(pool, 0).direction, 'none');
  await r.clock.advance(1);
  t.like(r.decide(pool, 0), { direction: 'down', current: 4, desired: 1, drain: ['auto-2', 'auto-1', 'tm1'] }, 'the busy one stays');
  // Two requests waiting (stale or behind a reservation): the free slots that cover them stay.
  t.like(r.decide(pool, 2), { direction: 'down', desired: 2, drain: ['auto-2', 'auto-1'] });
  // min 1: the last idle one stays.
  t.like(r.decide([member('tm1', 0), member('auto-1', 0, true)], 0), { direction: 'down', desired: 1, drain: ['auto-1'] });
  t.like(r.decide([member('tm1', 0)], 0), { direction: 'none', current: 1 });
});

test('a TaskManager that takes a task restarts its cooldown', async (t) => {
  const r = new Rounds();
  r.decide([member('tm1', 1), member('tm2', 0)], 0);
  await r.clock.advance(3000);
  r.decide([member('tm1', 1), member('tm2', 1)], 0);
  await r.clock.advance(3000);
  t.is(r.decide([member('tm1', 1), member('tm2', 0)], 0).direction, 'none', 'idle again only just now');
  await r.clock.advance(5000);
  t.like(r.decide([member('tm1', 1), member('tm2', 0)], 0), { direction: 'down', drain: ['tm2'] });
});

test('drain order among static TaskManagers: the highest id first (numeric), the newest pod of a StatefulSet', async (t) => {
  const r = new Rounds(new FakeClock(), { ...LIMITS, scaleDownCooldownMs: 0, min: 1 });
  t.like(r.decide([member('taskmanager-2', 0), member('taskmanager-10', 0), member('taskmanager-1', 1)], 0), { drain: ['taskmanager-10', 'taskmanager-2'] });
});

// ---- the Autoscaler against fakes ------------------------------------------------------------

class FakeStore implements AutoscalerStateStore {
  state: AutoscalerState | null = null;
  writes: AutoscalerState[] = [];
  failWrites = false;
  async read(): Promise<AutoscalerState | null> { return this.state && structuredClone(this.state); }
  async write(state: AutoscalerState): Promise<void> {
    if (this.failWrites) throw new NotLeaderError('term over');
    this.state = structuredClone(state);
    this.writes.push(this.state);
  }
}

class FakeProvider implements TaskManagerProvider {
  readonly name = 'fake';
  readonly namesTaskManagers = true;
  launched: string[] = [];
  released: string[] = [];
  /** State stored when each launch was asked for. */
  storedAtLaunch: Array<AutoscalerState | null> = [];
  behaviour: 'ok' | 'fail' | 'hang' = 'ok';
  constructor(private readonly store: FakeStore) {}
  launch(request: ProviderRequest): Promise<void> {
    this.storedAtLaunch.push(structuredClone(this.store.state));
    if (this.behaviour === 'fail') return Promise.reject(new Error('quota exceeded'));
    if (this.behaviour === 'hang') return new Promise(() => undefined);
    this.launched.push(request.id);
    return Promise.resolve();
  }
  releaseAttempts = 0;
  releaseFailures = 0;
  async release(request: ProviderRequest): Promise<void> {
    this.releaseAttempts++;
    if (this.releaseFailures-- > 0) throw new Error('kubectl: connection refused');
    this.released.push(request.id);
  }
  /** Launches known gone (a killed process); others unknown. */
  gone = new Set<string>();
  launchAlive(launch: { id: string }): boolean | undefined { return this.gone.has(launch.id) ? false : undefined; }
}

class FakeResources implements ScalableResources {
  active = true;
  tms: TaskManagerView[] = [];
  waiting = 0;
  drained: string[] = [];
  add(id: string, busy = 0): void {
    this.tms.push({ id, host: 'h', address: `http://${id}`, slotsNumber: 2, freeSlots: 2 - busy, registeredAt: 0, lastHeartbeat: 0, timeSinceLastHeartbeat: 0, recentTaskMs: null, tasks: [], blocked: false });
  }
  list(): TaskManagerView[] { return this.tms; }
  pendingSlotRequests() { return Array.from({ length: this.waiting }, (_, i) => ({ key: `k${i}`, jobId: 'j', priority: 0 })); }
  async drain(id: string): Promise<DrainRecord> {
    this.drained.push(id);
    this.tms.find((t) => t.id === id)!.blocked = true;
    return { taskManagerId: id, requestedAt: 0, deadlineAt: null };
  }
}

/** A fresh fake clock, store, provider (recording into that store) and resource view. */
function parts(): { clock: FakeClock; store: FakeStore; provider: FakeProvider; resources: FakeResources } {
  const store = new FakeStore();
  return { clock: new FakeClock(), store, provider: new FakeProvider(store), resources: new FakeResources() };
}

function autoscaler(epoch: number, parts: { store: FakeStore; provider: FakeProvider; resources: FakeResources; clock: FakeClock }, launchTimeoutMs = 60_000): Autoscaler {
  return new Autoscaler({ ...LIMITS, epoch, ...parts, launchTimeoutMs, settleMs: 0, tickMs: 100 });
}

test('a launch is stored before the provider starts it; a new leader adopts launches under way instead of launching again', async (t) => {
  const { clock, store, provider, resources } = parts();
  resources.add('tm1', 2);
  resources.waiting = 10;
  const first = autoscaler(5, { store, provider, resources, clock });
  await first.round();
  await clock.advance(1000);
  await first.round();
  t.deepEqual(provider.launched, ['auto-5-1', 'auto-5-2', 'auto-5-3']);
  for (const [i, stored] of provider.storedAtLaunch.entries()) t.true(stored!.launches.some((l) => l.id === provider.launched[i]), 'recorded before it started');
  t.is(store.state!.desired, 4);
  first.stop(); // the leader dies; one launch registered meanwhile

  resources.add('auto-5-2');
  const second = autoscaler(6, { store, provider, resources, clock });
  await second.round();
  await clock.advance(1000);
  await second.round();
  t.deepEqual(provider.launched, ['auto-5-1', 'auto-5-2', 'auto-5-3'], 'nothing launched twice');
  t.deepEqual(store.state!.launches.map((l) => [l.id, l.registeredAt !== null]), [['auto-5-1', false], ['auto-5-2', true], ['auto-5-3', false]]);
  t.is(store.state!.epoch, 6);
});

test('a launch that never registers stops counting after the launch timeout; then demand launches again', async (t) => {
  const { clock, store, provider, resources } = parts();
  resources.add('tm1', 2);
  resources.waiting = 2;
  const a = autoscaler(3, { store, provider, resources, clock }, 10_000);
  await a.round();
  await clock.advance(1000);
  await a.round();
  t.deepEqual(provider.launched, ['auto-3-1']);
  await clock.advance(10_000);
  await a.round();
  t.deepEqual(provider.released, ['auto-3-1'], 'the provider is told to give it back');
  t.deepEqual(store.state!.launches, []);
  await clock.advance(1000);
  await a.round();
  t.deepEqual(provider.launched, ['auto-3-1', 'auto-3-2']);
});

test('a launch known gone before it registered stops counting after the grace, not before; demand launches another', async (t) => {
  const { clock, store, provider, resources } = parts();
  resources.add('tm1', 2);
  resources.waiting = 2;
  const a = autoscaler(3, { store, provider, resources, clock });
  await a.round();
  await clock.advance(1000);
  await a.round();
  t.deepEqual(provider.launched, ['auto-3-1']);
  provider.gone.add('auto-3-1');
  await clock.advance(1000);
  await a.round();
  t.deepEqual(store.state!.launches.map((l) => l.id), ['auto-3-1'], 'within the grace: a leader losing its term may still be starting it');
  await clock.advance(LAUNCH_GONE_GRACE_MS);
  await a.round();
  t.deepEqual(store.state!.launches, []);
  await clock.advance(1000);
  await a.round();
  t.deepEqual(provider.launched, ['auto-3-1', 'auto-3-2']);
});

test('a failing provider or a state that cannot be stored launches nothing and never throws; an operator deleting the state is survived', async (t) => {
  const { clock, store, provider, resources } = parts();
  resources.add('tm1', 2);
  resources.waiting = 4;
  const a = autoscaler(2, { store, provider, resources, clock });
  provider.behaviour = 'fail';
  await a.round();
  await clock.advance(1000);
  await a.round();
  t.deepEqual(provider.launched, []);
  t.deepEqual(store.state!.launches, [], 'a failed launch is forgotten (and stored so)');
  t.is(store.state!.desired, 1);

  store.failWrites = true;
  provider.behaviour = 'ok';
  await clock.advance(1000);
  await a.round();
  t.deepEqual(provider.launched, [], 'not stored, not started');

  store.failWrites = false;
  store.state = null; // zkCli: delete /autoscaler
  await clock.advance(1000);
  await a.round();
  t.deepEqual(provider.launched, ['auto-2-3', 'auto-2-4']);
  t.is(store.state!.launches.length, 2, 'written again');
});

test('idle TaskManagers are drained (never stopped) after the cooldown; the provider hears of each once it was released', async (t) => {
  const { clock, store, provider, resources } = parts();
  resources.add('tm1', 1);
  resources.add('tm2', 2);
  resources.add('tm3');
  const a = autoscaler(4, { store, provider, resources, clock });
  await a.round();
  await clock.advance(5000);
  await a.round();
  t.deepEqual(resources.drained, ['tm3']);
  t.deepEqual(store.state!.draining, ['tm3']);
  t.deepEqual(provider.released, []);
  resources.tms = resources.tms.filter((tm) => tm.id !== 'tm3'); // released by the ResourceManager
  provider.releaseFailures = 1;
  await a.round();
  await new Promise((resolve) => setImmediate(resolve));
  await a.round();
  await new Promise((resolve) => setImmediate(resolve));
  t.is(provider.releaseAttempts, 1, 'a failed release waits for its back-off');
  t.deepEqual(store.state!.draining, ['tm3'], 'still owed to the provider');
  await clock.advance(1000);
  await a.round();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(provider.released, ['tm3']);
  t.deepEqual(store.state!.draining, []);
});

test('command templates: words split once, placeholders filled inside a word, unknown placeholders refused', (t) => {
  const words = parseCommandTemplate(`kubectl scale statefulset/tm --replicas={count} -l 'app=ha dispatcher'`);
  t.deepEqual(words, ['kubectl', 'scale', 'statefulset/tm', '--replicas={count}', '-l', 'app=ha dispatcher']);
  t.deepEqual(fillTemplate(words, { id: 'x; rm -rf /', desired: 3 }).slice(3), ['--replicas=3', '-l', 'app=ha dispatcher']);
  t.deepEqual(fillTemplate(['start-tm', '{id}'], { id: 'a b;c', desired: 1 }), ['start-tm', 'a b;c'], 'one word, never split or interpreted');
  // The README's Kubernetes scale-down recipe: values reach sh only as positional parameters.
  const recipe = parseCommandTemplate(`sh -c 'kubectl -n ha-dispatcher annotate pod "$1" controller.kubernetes.io/pod-deletion-cost=-1000 --overwrite && kubectl -n ha-dispatcher scale deployment/ha-dispatcher-taskmanager --replicas="$2"' scale-down {id} {count}`);
  t.deepEqual(fillTemplate(recipe, { id: 'tm-7; reboot', desired: 2 }).slice(3), ['scale-down', 'tm-7; reboot', '2']);
  t.true(recipe[2].startsWith('kubectl -n ha-dispatcher annotate pod "$1"'));
  t.throws(() => parseCommandTemplate('kubectl scale --replicas={replicas}'), { message: /unknown placeholder \{replicas\}/ });
  t.throws(() => parseCommandTemplate("kubectl 'scale"), { message: /unclosed/ });
  t.throws(() => parseCommandTemplate('  '), { message: /is empty/ });
});

test('a command that fails or hangs is reported (the hanging one stopped at its deadline)', async (t) => {
  await t.notThrowsAsync(runCommand(['true'], 5000));
  await t.throwsAsync(runCommand(['sh', '-c', 'echo no quota >&2; exit 3'], 5000), { message: /exited with code 3: no quota/ });
  await t.throwsAsync(runCommand(['sleep', '30'], 200), { message: /did not finish within 200 ms/ });
  await t.throwsAsync(runCommand(['/nonexistent/kubectl'], 5000), { message: /could not start|exited/ });
});

test('configuration: bad autoscaler values fail naming the key', (t) => {
  const load = (...overrides: string[]) => loadConfig({ overrides, env: {} });
  t.is(load()['resourcemanager.autoscaler.enabled'], false);
  t.throws(() => load('resourcemanager.autoscaler.min=3', 'resourcemanager.autoscaler.max=2'), { message: /resourcemanager\.autoscaler\.max.*at least resourcemanager\.autoscaler\.min \(3\)/ });
  t.throws(() => load('resourcemanager.autoscaler.provider=ec2'), { message: /resourcemanager\.autoscaler\.provider/ });
  t.throws(() => load('resourcemanager.autoscaler.enabled=true', 'resourcemanager.autoscaler.provider=command', 'resourcemanager.autoscaler.command.scale-up=kubectl scale x --replicas={count}'),
    { message: /resourcemanager\.autoscaler\.provider.*command\.scale-down must be set/ });
  t.throws(() => load('resourcemanager.autoscaler.command.scale-up=kubectl {pods}'), { message: /resourcemanager\.autoscaler\.command\.scale-up.*unknown placeholder/ });
  t.throws(() => load('resourcemanager.autoscaler.scale-up-delay=soon'), { message: /resourcemanager\.autoscaler\.scale-up-delay/ });
});

test('a launched TaskManager gets the replica\'s configuration arguments without replica-only keys', (t) => {
  t.deepEqual(replicaConfigArgs(['node', 'bin', 'dispatcher', '-D', 'rest.port=8081', '--config', 'c.yaml', '-D', 'high-availability.cluster-id=x', '-Dreplica.id=r1',
    '--define=taskmanager.numberOfTaskSlots=2', '-D', 'taskmanager.rpc-port=6121', '-D', 'resourcemanager.autoscaler.enabled=true']),
  ['--config', 'c.yaml', '-D', 'high-availability.cluster-id=x', '-D', 'taskmanager.numberOfTaskSlots=2']);
});
