/**
 * TaskManager identity at the ResourceManager (src/resources/taskmanager-identity.ts): reports only on
 * attempts deployed to the reporter, no hijacking of a registered id with another certificate from
 * another address, no epoch raised by an implausible claim. Each refusal changes nothing and is an event.
 */
import test from 'ava';
import { JobTaskListener, ResourceManager } from '../../src/resources/resource-manager';
import { IDENTITY_EVENTS, TaskManagerCredential, taskManagerServerTls } from '../../src/resources/taskmanager-identity';
import { generateCa, generateCertificate } from '../../src/security/certificates';
import { closeServer, createServer, listen } from '../../src/http/server';
import { HttpTransportError, requestJson } from '../../src/http/client';
import type { ExecutionId, RegistrationRequest, TaskReport } from '../../src/taskmanager/protocol';
import { MAX_EPOCH_STEP } from '../../src/taskmanager/task-table';
import { HttpError } from '../../src/http/errors';
import type { EventFields, EventLogger } from '../../src/util/logger';
import { FakeClock } from '../helpers/fake-clock';

const JOB = 'b'.repeat(32);
const id = (subtask: number, attempt = 0): ExecutionId => ({ jobId: JOB, vertexId: 'v', subtask, attempt });
const report = (e: ExecutionId, state: TaskReport['state']): TaskReport => ({ ...e, state, startedAt: 1000, endedAt: state === 'RUNNING' ? undefined : 3000 });
const cert = (taskManagerId: string, fingerprint: string): TaskManagerCredential => ({ taskManagerId, replicaId: undefined, fingerprint });
const registration = (taskManagerId: string, port: number, extra: Partial<RegistrationRequest> = {}): RegistrationRequest =>
  ({ taskManagerId, host: 'h', address: `https://127.0.0.1:${port}`, slots: 2, epoch: 3, tasks: [], ...extra });

class Events implements EventLogger {
  readonly seen: Array<{ event: string } & EventFields> = [];
  debug(): void {}
  info(event: string, fields?: EventFields): void { this.seen.push({ event, ...fields }); }
  warn(event: string, fields?: EventFields): void { this.seen.push({ event, ...fields }); }
  error(event: string, fields?: EventFields): void { this.seen.push({ event, ...fields }); }
  child(): EventLogger { return this; }
  named(event: string): Array<EventFields> { return this.seen.filter((e) => e.event === event); }
}

class Listener implements JobTaskListener {
  reports: Array<[string, TaskReport]> = [];
  lost: string[] = [];
  async onReport(tm: string, r: TaskReport): Promise<'ok' | 'cancel'> { this.reports.push([tm, r]); return 'ok'; }
  owns(): boolean { return true; }
  onTaskManagerLost(tm: string): void { this.lost.push(tm); }
}

function setup(onEpochBehind?: (e: number) => void): { rm: ResourceManager; events: Events; listener: Listener } {
  const events = new Events();
  const rm = new ResourceManager({ epoch: 3, heartbeatTimeoutMs: 60_000, clock: new FakeClock(), logger: events, onEpochBehind });
  rm.start();
  const listener = new Listener();
  rm.registerJob(JOB, listener);
  return { rm, events, listener };
}

test('a status report on an attempt deployed to another TaskManager, or to none, is rejected (403) and changes nothing', async (t) => {
  const { rm, events, listener } = setup();
  await rm.register(registration('tm1', 1), cert('tm1', 'AA'));
  await rm.register(registration('tm2', 2), cert('tm2', 'BB'));
  t.is(rm.allocate(id(0)), 'tm1');
  const before = rm.list();

  for (const spoofed of [report(id(0), 'FAILED'), report(id(7), 'FINISHED')]) {
    const err = await t.throwsAsync(rm.status({ taskManagerId: 'tm2', epoch: 3, reports: [spoofed] }), { instanceOf: HttpError });
    t.is(err!.status, 403);
    t.regex(err!.message, /did not deploy to it/);
  }
  t.deepEqual(listener.reports, [], 'no JobMaster heard the spoofed reports');
  t.deepEqual(rm.list().map((v) => ({ ...v, timeSinceLastHeartbeat: 0 })), before.map((v) => ({ ...v, timeSinceLastHeartbeat: 0 })), 'slots and tasks unchanged');
  const rejected = events.named(IDENTITY_EVENTS.reportRejected);
  t.is(rejected.length, 2);
  t.like(rejected[0], { taskManagerId: 'tm2', kind: 'status', keys: [`${JOB}/v/0/0`], placedOn: ['tm1'] });
  t.like(rejected[1], { placedOn: [null] });

  // The TaskManager it was deployed to reports it, also after its slot was released (a deploy that timed out).
  rm.release('tm1', id(0));
  t.deepEqual(await rm.status({ taskManagerId: 'tm1', epoch: 3, reports: [report(id(0), 'FINISHED')] }), { acknowledged: [`${JOB}/v/0/0`], cancel: [] });
  t.is(listener.reports.length, 1);
  rm.stop();
});

test('a registration may adopt attempts of earlier terms, but not ones this leader deployed to another registered TaskManager', async (t) => {
  const { rm, events, listener } = setup();
  await rm.register(registration('tm1', 1), cert('tm1', 'AA'));
  t.is(rm.allocate(id(0)), 'tm1');
  const err = await t.throwsAsync(rm.register(registration('tm2', 2, { tasks: [report(id(0), 'FINISHED')] }), cert('tm2', 'BB')), { instanceOf: HttpError });
  t.is(err!.status, 403);
  t.deepEqual(rm.list().map((v) => v.id), ['tm1'], 'the refused registration registered nothing');
  t.deepEqual(listener.reports, []);
  t.like(events.named(IDENTITY_EVENTS.reportRejected)[0], { taskManagerId: 'tm2', kind: 'registration' });

  const adopted = await rm.register(registration('tm2', 2, { tasks: [report(id(5, 2), 'RUNNING')] }), cert('tm2', 'BB'));
  t.deepEqual(adopted.cancel, [], 'an attempt no one here deployed (an earlier term\'s) is adopted');
  t.deepEqual(await rm.status({ taskManagerId: 'tm2', epoch: 3, reports: [report(id(5, 2), 'FINISHED')] }), { acknowledged: [`${JOB}/v/5/2`], cancel: [] });
  rm.stop();
});

test('a registered id from another address with another certificate is refused (409); the same certificate (a restart) or the same address is adopted', async (t) => {
  const { rm, events, listener } = setup();
  await rm.register(registration('tm1', 1), cert('tm1', 'AA'));
  t.is(rm.allocate(id(0)), 'tm1');

  const err = await t.throwsAsync(rm.register(registration('tm1', 9), cert('tm1', 'EVIL')), { instanceOf: HttpError });
  t.is(err!.status, 409);
  t.regex(err!.message, /registered from https:\/\/127\.0\.0\.1:1 with another certificate/);
  t.like(rm.get('tm1'), { address: 'https://127.0.0.1:1', freeSlots: 1 }, 'the registered TaskManager keeps its address and task');
  t.deepEqual(listener.lost, []);
  t.like(events.named(IDENTITY_EVENTS.registrationRefused)[0], { taskManagerId: 'tm1', address: 'https://127.0.0.1:9', fingerprint: 'EVIL', registeredFingerprint: 'AA' });

  await rm.register(registration('tm1', 1), cert('tm1', 'RENEWED'));
  t.like(rm.get('tm1'), { address: 'https://127.0.0.1:1', freeSlots: 1 }, 'a renewed certificate from the same address is adopted');
  await rm.register(registration('tm1', 7), cert('tm1', 'RENEWED'));
  t.like(rm.get('tm1'), { address: 'https://127.0.0.1:7', freeSlots: 2 }, 'the same certificate from a new address: a restarted process');
  t.deepEqual(listener.lost, ['tm1'], 'whatever the former process ran is gone with it');
  rm.stop();
});

test('an implausible epoch claim raises nothing: a registration is refused (403) and a 409 answer is ignored', async (t) => {
  const behind: number[] = [];
  const { rm, events } = setup((e) => behind.push(e));
  const forged = registration('tm1', 1, { highestEpoch: 3 + MAX_EPOCH_STEP + 1 });
  const err = await t.throwsAsync(rm.register(forged, cert('tm1', 'AA')), { instanceOf: HttpError });
  t.is(err!.status, 403);
  t.deepEqual(behind, [], 'no term above it was asked for');
  t.is(rm.overview().taskmanagers, 0);
  t.like(events.named(IDENTITY_EVENTS.epochImplausible)[0], { taskManagerId: 'tm1', claimed: 3 + MAX_EPOCH_STEP + 1 });
  const plausible = await t.throwsAsync(rm.register({ ...forged, highestEpoch: 3 + MAX_EPOCH_STEP }, cert('tm1', 'AA')), { instanceOf: HttpError });
  t.is(plausible!.status, 409, 'a claim within the step still asks for a term above it');
  t.deepEqual(behind, [3 + MAX_EPOCH_STEP]);
  rm.stop();
});

test('commands go only to a server whose certificate names the TaskManager they are for: a registration with another\'s address gets no work', async (t) => {
  const ca = await generateCa();
  const tm2 = await generateCertificate(ca, 'taskmanager', 'tm2');
  const replica = await generateCertificate(ca, 'replica', 'r1');
  const server = createServer({ cert: Buffer.from(tm2.cert), key: Buffer.from(tm2.key) });
  server.on('request', (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"ok":true}'); });
  await listen(server, 0, '127.0.0.1');
  t.teardown(() => closeServer(server));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/tasks`;
  const base = { ca: ca.cert, cert: replica.cert, key: replica.key };

  t.is((await requestJson('GET', url, undefined, { tls: taskManagerServerTls(base, 'tm2') })).status, 200, 'tm2\'s own server');
  const refused = await t.throwsAsync(requestJson('GET', url, undefined, { tls: taskManagerServerTls(base, 'tm1') }), { instanceOf: HttpTransportError });
  t.regex(refused!.message, /names TaskManager tm2, not tm1/);
});
