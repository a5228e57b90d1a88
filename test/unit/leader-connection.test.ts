/**
 * The TaskManager's leader connection (src/taskmanager/leader-connection.ts) on a fake clock, with a
 * scripted transport in place of HTTP and a hand-published leader in place of ZooKeeper.
 */
import test from 'ava';
import { EventEmitter } from 'node:events';
import { LeaderConnection, LeaderSource, LeaderTransport } from '../../src/taskmanager/leader-connection';
import { TaskHandle, TaskTable } from '../../src/taskmanager/task-table';
import type { LeaderInfo } from '../../src/election/leader-info';
import type { TaskReport } from '../../src/taskmanager/protocol';
import type { RpcCallOptions, RpcResponse } from '../../src/taskmanager/rpc';
import { silentLogger } from '../../src/util/logger';
import { FakeClock, settle } from '../helpers/fake-clock';

class FakeLeaders extends EventEmitter implements LeaderSource {
  current: LeaderInfo | null = null;
  start(): void {}
  stop(): void {}
  publish(replicaId: string, epoch: number): void {
    this.current = { replicaId, rpcUrl: `http://${replicaId}`, restUrl: `http://${replicaId}`, epoch, zkSessionId: 's', electedAt: '', readyAt: '' };
    this.emit('change', this.current);
  }
}

interface Call { route: string; url: string; body: any; at: number; signal?: AbortSignal }
type Answer = (call: Call) => Promise<RpcResponse<unknown>> | RpcResponse<unknown>;

/** Answers per route (register, heartbeat, status); a missing route fails like an unreachable leader. */
class ScriptedTransport {
  readonly calls: Call[] = [];
  readonly routes = new Map<string, Answer>();
  constructor(private readonly clock: FakeClock) {}

  readonly send: LeaderTransport = async <T>(_method: 'POST', url: string, body: unknown, options: RpcCallOptions): Promise<RpcResponse<T>> => {
    const path = new URL(url).pathname;
    const route = path === '/internal/taskmanagers' ? 'register' : path.endsWith('/heartbeat') ? 'heartbeat' : path === '/internal/tasks/status' ? 'status' : path;
    const call: Call = { route, url, body: JSON.parse(JSON.stringify(body)), at: this.clock.monotonicNow(), signal: options.signal };
    this.calls.push(call);
    const answer = this.routes.get(route);
    if (!answer) throw new Error(`${url}: ECONNREFUSED`);
    return (await answer(call)) as RpcResponse<T>;
  };

  of(route: string): Call[] { return this.calls.filter((c) => c.route === route); }

  /** A leader that registers everyone and acknowledges nothing. */
  acceptAll(): void {
    this.routes.set('register', (c) => ({ status: 200, body: { epoch: c.body.epoch, acknowledged: [], cancel: [] } }));
    this.routes.set('heartbeat', (c) => ({ status: 200, body: { epoch: c.body.epoch, cancel: [] } }));
    this.routes.set('status', () => ({ status: 200, body: { acknowledged: [], cancel: [] } }));
  }
}

class StubTask implements TaskHandle {
  cancels = 0;
  cancel(): Promise<void> {
    this.cancels++;
    return Promise.resolve();
  }
}

function setup(options: { heartbeatIntervalMs?: number; orphanTimeoutMs?: number } = {}) {
  const clock = new FakeClock();
  const leaders = new FakeLeaders();
  const transport = new ScriptedTransport(clock);
  const tasks = new TaskTable<StubTask>();
  const connection = new LeaderConnection({
    taskManagerId: 'tm-1', instanceId: 'i-1', host: 'h', slots: 2, heartbeatIntervalMs: options.heartbeatIntervalMs ?? 10_000,
    orphanTimeoutMs: options.orphanTimeoutMs ?? 60_000, leaders, tasks, clock, logger: silentLogger, transport: transport.send,
  });
  connection.start('http://tm-1:6130');
  return { clock, leaders, transport, tasks, connection };
}

const JOB = 'c'.repeat(32);
const gaps = (calls: Call[]): number[] => calls.slice(1).map((c, i) => c.at - calls[i].at);
const states = (call: Call): string[] => (call.body.reports ?? call.body.tasks).map((r: TaskReport) => `${r.subtask}:${r.state}`);

test('registration is retried after 100 ms, doubling up to 2 s, and the back-off starts over once registered', async (t) => {
  const { clock, leaders, transport, connection } = setup();
  leaders.publish('leader-a', 3);
  await clock.advance(9000);
  t.deepEqual(gaps(transport.of('register')), [100, 200, 400, 800, 1600, 2000, 2000]);
  t.is(connection.registration, null);

  transport.acceptAll();
  await clock.advance(2000);
  t.like(connection.registration, { epoch: 3, rpcUrl: 'http://leader-a', leaderId: 'leader-a' });
  transport.routes.delete('heartbeat');
  transport.routes.delete('register');
  // The heartbeat at 20 s fails: register again, backing off from 100 ms.
  await clock.advance(29_100 - clock.monotonicNow());
  t.is(connection.registration, null);
  const failedHeartbeat = transport.of('heartbeat').at(-1)!;
  t.is(failedHeartbeat.at, 20_000);
  const retries = transport.of('register').filter((c) => c.at >= failedHeartbeat.at);
  t.deepEqual(retries.map((c) => c.at - failedHeartbeat.at), [100, 300, 700, 1500, 3100, 5100, 7100, 9100]);
  connection.stop();
});

test('the registration back-off never exceeds the heartbeat interval', async (t) => {
  const { clock, leaders, transport, connection } = setup({ heartbeatIntervalMs: 300 });
  leaders.publish('leader-a', 1);
  await clock.advance(3000);
  const calls = transport.of('register');
  t.true(calls.length >= 10);
  t.true(gaps(calls).every((gap) => gap <= 300), `gaps ${gaps(calls).join(', ')}`);
  connection.stop();
});

test('an outcome the leader does not acknowledge is sent again with every heartbeat until it is', async (t) => {
  const { clock, leaders, transport, tasks, connection } = setup({ heartbeatIntervalMs: 1000 });
  transport.acceptAll();
  const task = tasks.add({ jobId: JOB, vertexId: 'v', subtask: 0, attempt: 0 }, new StubTask(), clock.now());
  leaders.publish('leader-a', 1);
  await settle();
  t.deepEqual(states(transport.of('register')[0]), ['0:DEPLOYING']);

  tasks.update(task.key, { state: 'FINISHED', endedAt: clock.now() });
  connection.reportChanged(task.key);
  await settle();
  t.deepEqual(transport.of('status').map(states), [['0:FINISHED']]);

  await clock.advance(1000);
  await clock.advance(1000);
  t.is(transport.of('heartbeat').length, 2);
  t.deepEqual(transport.of('status').map(states), [['0:FINISHED'], ['0:FINISHED'], ['0:FINISHED']], 'retransmitted after each heartbeat');

  transport.routes.set('status', (c) => ({ status: 200, body: { acknowledged: c.body.reports.map((r: TaskReport) => `${r.jobId}/${r.vertexId}/${r.subtask}/${r.attempt}`), cancel: [] } }));
  await clock.advance(1000);
  t.is(transport.of('status').length, 4);
  t.deepEqual(tasks.unacknowledgedOutcomes(), []);
  await clock.advance(3000);
  t.is(transport.of('status').length, 4, 'an acknowledged outcome is not sent again');
  t.is(transport.of('heartbeat').length, 6);
  connection.stop();
});

test('a report the leader did not take is carried by the next registration', async (t) => {
  const { clock, leaders, transport, tasks, connection } = setup();
  transport.acceptAll();
  const task = tasks.add({ jobId: JOB, vertexId: 'v', subtask: 1, attempt: 0 }, new StubTask(), clock.now());
  leaders.publish('leader-a', 1);
  await settle();
  transport.routes.set('status', () => ({ status: 503, body: { errors: ['recovering'] } }));
  tasks.update(task.key, { state: 'FAILED', error: 'boom', endedAt: clock.now() });
  connection.reportChanged(task.key);
  await settle();
  t.is(transport.of('status').length, 1);
  const registrations = transport.of('register');
  t.is(registrations.length, 2, 'a refused report means: register again');
  t.deepEqual(states(registrations[1]), ['1:FAILED']);
  t.like(connection.registration, { rpcUrl: 'http://leader-a' });
  connection.stop();
});

test('a leader change aborts the call in flight to the old leader and registers with the new one', async (t) => {
  const { leaders, transport, connection } = setup();
  transport.routes.set('register', (c) => {
    if (c.url.startsWith('http://leader-b')) return { status: 200, body: { epoch: c.body.epoch, acknowledged: [], cancel: [] } };
    return new Promise((_resolve, reject) => c.signal!.addEventListener('abort', () => reject(new Error('aborted'))));
  });
  leaders.publish('leader-a', 1);
  await settle();
  const [toA] = transport.of('register');
  t.false(toA.signal!.aborted, 'the old leader stands still');
  leaders.publish('leader-b', 2);
  await settle();
  t.true(toA.signal!.aborted);
  t.deepEqual(transport.of('register').map((c) => [c.url, c.body.epoch]), [['http://leader-a/internal/taskmanagers', 1], ['http://leader-b/internal/taskmanagers', 2]]);
  t.like(connection.registration, { epoch: 2, leaderId: 'leader-b' });
  connection.stop();
});

test('live tasks are canceled after orphanTimeoutMs without a leader, measured on the monotonic clock', async (t) => {
  const { clock, tasks, connection } = setup({ heartbeatIntervalMs: 1000, orphanTimeoutMs: 5000 });
  const handle = new StubTask();
  tasks.add({ jobId: JOB, vertexId: 'v', subtask: 0, attempt: 0 }, handle, clock.now());
  clock.jumpWallClock(60 * 60_000);
  await clock.advance(4000);
  t.is(handle.cancels, 0, 'a wall-clock step is no silence');
  await clock.advance(1000);
  t.true(handle.cancels > 0);
  connection.stop();
  t.deepEqual(clock.pending, [], 'stop clears the heartbeat and retry timers');
});
