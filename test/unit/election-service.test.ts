/**
 * LeaderElectionService against a fake driver (no ZooKeeper): terms, ordering of contender callbacks,
 * readiness → leader info for that term only, error routing, and events ignored after stop.
 */
import test from 'ava';
import { LeaderContender, LeaderElectionService, LeadershipTerm } from '../../src/election/service';
import { Dispatcher } from '../../src/dispatcher/dispatcher';
import { PassiveJobMaster } from '../../src/jobmaster/passive-job-master';
import { DispatcherMetrics } from '../../src/metrics/metrics';
import { EventFields, EventLogger } from '../../src/util/logger';
import { eventually } from '../../src/util/poll';
import { FakeClock } from '../helpers/fake-clock';
import { FakeElectionDriver } from '../helpers/fake-election-driver';
import { FakeZkClient } from '../helpers/fake-zk';

interface Logged { level: string; event: string; fields: EventFields }

function recordingLogger(into: Logged[]): EventLogger {
  const log = (level: string) => (event: string, fields: EventFields = {}): void => { into.push({ level, event, fields }); };
  const logger: EventLogger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), child: () => logger };
  return logger;
}

/** A contender that records its calls in order; behaviour per call can be overridden. */
class RecordingContender implements LeaderContender {
  readonly calls: string[] = [];
  readonly terms: LeadershipTerm[] = [];
  readonly errors: Error[] = [];
  onGrant: (term: LeadershipTerm) => Promise<void> | void = () => undefined;
  onRevoke: (term: LeadershipTerm) => Promise<void> | void = () => undefined;
  onError: (err: Error) => Promise<void> | void = () => undefined;
  async grantLeadership(term: LeadershipTerm): Promise<void> {
    this.calls.push(`grant ${term.epoch}`);
    this.terms.push(term);
    await this.onGrant(term);
    this.calls.push(`granted ${term.epoch}`);
  }
  async revokeLeadership(term: LeadershipTerm, reason: string): Promise<void> {
    this.calls.push(`revoke ${term.epoch} (${reason})`);
    await this.onRevoke(term);
  }
  async handleError(err: Error): Promise<void> {
    this.calls.push(`error ${err.message}`);
    this.errors.push(err);
    await this.onError(err);
  }
}

function setup(): { driver: FakeElectionDriver; service: LeaderElectionService; contender: RecordingContender; logs: Logged[]; clock: FakeClock } {
  const driver = new FakeElectionDriver();
  const logs: Logged[] = [];
  const clock = new FakeClock();
  const service = new LeaderElectionService(driver.factory, {
    contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1/rpc' }, logger: recordingLogger(logs), clock,
  });
  const contender = new RecordingContender();
  service.start(contender);
  return { driver, service, contender, logs, clock };
}

/** The `leadership.event.ignored` records (all at debug, or a placeholder that fails the comparison). */
function ignored(logs: Logged[]): Array<{ event: unknown; reason: unknown; epoch: unknown }> {
  return logs.filter((l) => l.event === 'leadership.event.ignored')
    .map((l) => ({ event: l.fields.event, reason: l.level === 'debug' ? l.fields.reason : `logged at ${l.level}`, epoch: l.fields.epoch }));
}

test('start starts the driver and hands it the contender description', (t) => {
  const { driver } = setup();
  t.true(driver.started);
  t.like(driver.contenderInfo, { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1/rpc', pid: process.pid });
});

test('a grant reaches the contender as a term with the epoch, the ZooKeeper session and the grant time', async (t) => {
  const { driver, service, contender, clock } = setup();
  const elected = new Promise<LeadershipTerm>((resolve) => service.once('elected', resolve));
  driver.grant(7, 'abc');
  const term = await eventually('granted', () => contender.terms[0]);
  t.like(term, { epoch: 7, zkSessionId: 'abc', grantedAt: clock.now() });
  t.is(await elected, term);
  t.true(service.isLeader(term));
  t.is(service.currentTerm, term);
  t.false(service.isReadyLeader, 'not ready before confirmation');
});

test('confirming publishes leader info for that term only; a stale confirm publishes nothing and is logged', async (t) => {
  const { driver, service, contender, logs } = setup();
  driver.grant(3);
  const first = await eventually('first term', () => contender.terms[0]);
  driver.revoke('connection suspended');
  driver.grant(4);
  const second = await eventually('second term', () => contender.terms[1]);

  t.false(await service.confirmLeadership(first), 'the revoked term cannot be confirmed');
  t.deepEqual(driver.publications, []);
  t.deepEqual(ignored(logs), [{ event: 'confirm', reason: 'stale term', epoch: 3 }]);

  t.true(await service.confirmLeadership(second));
  t.is(driver.publications.length, 1);
  t.like(driver.publications[0].info, { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1/rpc', epoch: 4, zkSessionId: 's1' });
  t.is(driver.publications[0].grant.epoch, 4);
  t.true(service.isReadyLeader);
});

test('leadership lost while publishing: confirm answers false and the leader info is deleted', async (t) => {
  const { driver, service, contender } = setup();
  driver.grant(5);
  const term = await eventually('granted', () => contender.terms[0]);
  const confirmed = service.confirmLeadership(term);
  driver.revoke('latch node missing'); // before the (asynchronous) publish completes
  t.false(await confirmed);
  t.is(driver.leaderInfo, null);
  t.false(service.isReadyLeader);
});

test('revokes reach the contender in order, each only after its grant callback returned, then leader info is deleted', async (t) => {
  const { driver, service, contender } = setup();
  let release!: () => void;
  contender.onGrant = (term) => term.epoch === 1 ? new Promise<void>((resolve) => { release = resolve; }) : service.confirmLeadership(term).then(() => undefined);
  driver.grant(1);
  await eventually('grant 1 running', () => contender.calls.includes('grant 1'));
  driver.revoke('connection suspended');
  driver.grant(2);
  driver.revoke('session lost (expired)');
  await Promise.resolve();
  t.deepEqual(contender.calls, ['grant 1'], 'nothing overtakes a running grant callback');
  release();
  await eventually('all delivered', () => contender.calls.length === 3);
  // Epoch 2 was granted and revoked while epoch 1's grant ran: it is stale by the time it is dequeued.
  t.deepEqual(contender.calls, ['grant 1', 'granted 1', 'revoke 1 (connection suspended)']);
  t.is(service.currentTerm, null);

  driver.grant(3);
  await eventually('grant 3 done', () => contender.calls.includes('granted 3'));
  t.not(driver.leaderInfo, null);
  driver.revoke('own latch node deleted');
  await eventually('revoke 3', () => contender.calls.includes('revoke 3 (own latch node deleted)'));
  await eventually('leader info deleted after the revoke', () => driver.leaderInfo === null);
});

test('a stale grant, a grant while leading and a revoke while not leading are ignored and logged at debug', async (t) => {
  const { driver, contender, logs } = setup();
  driver.revoke('connection suspended');
  driver.grant(1);
  driver.grant(1);
  await eventually('grant 1', () => contender.calls.includes('granted 1'));
  driver.revoke('connection suspended');
  driver.grant(2);
  await eventually('grant 2', () => contender.calls.includes('granted 2'));
  t.deepEqual(contender.calls, ['grant 1', 'granted 1', 'revoke 1 (connection suspended)', 'grant 2', 'granted 2']);
  t.deepEqual(ignored(logs), [
    { event: 'revoke', reason: 'not leading', epoch: null },
    { event: 'grant', reason: 'already leading this term', epoch: 1 },
  ]);
});

test('a grant for a new epoch without a revoke ends the old term before the new one starts', async (t) => {
  const { driver, contender, logs } = setup();
  driver.grant(1);
  await eventually('grant 1', () => contender.calls.includes('granted 1'));
  driver.grant(2);
  await eventually('grant 2', () => contender.calls.includes('granted 2'));
  t.deepEqual(contender.calls, ['grant 1', 'granted 1', 'revoke 1 (superseded by epoch 2)', 'grant 2', 'granted 2']);
  t.true(logs.some((l) => l.event === 'leadership.revoked' && l.fields.epoch === 1));
});

test('a term granted and revoked before the contender heard of it is neither granted nor revoked', async (t) => {
  const { driver, contender, logs } = setup();
  driver.grant(1);
  driver.revoke('connection suspended');
  driver.grant(2);
  await eventually('grant 2', () => contender.calls.includes('granted 2'));
  t.deepEqual(contender.calls, ['grant 2', 'granted 2']);
  t.deepEqual(ignored(logs), [
    { event: 'grant', reason: 'stale term', epoch: 1 },
    { event: 'revoke', reason: 'term never reached the contender', epoch: 1 },
  ]);
});

test('a rejected grant, a rejected revoke and a driver error reach handleError; none escapes as an unhandled rejection', async (t) => {
  const { driver, contender, logs } = setup();
  contender.onGrant = () => { throw new Error('grant boom'); };
  contender.onRevoke = () => { throw new Error('revoke boom'); };
  driver.grant(1);
  await eventually('grant error handled', () => contender.errors.length === 1);
  driver.revoke('connection suspended');
  await eventually('revoke error handled', () => contender.errors.length === 2);
  driver.fail(new Error('driver boom'));
  await eventually('driver error handled', () => contender.errors.length === 3);
  t.deepEqual(contender.errors.map((e) => e.message), ['grant boom', 'revoke boom', 'driver boom']);
  t.deepEqual(logs.filter((l) => l.level === 'error').map((l) => l.event), ['leadership.grant.failed', 'leadership.revoke.failed', 'leadership.driver.failed']);

  contender.onError = () => { throw new Error('handler boom'); };
  driver.fail(new Error('again'));
  const unhandled = await eventually('a failing handler is logged', () => logs.find((l) => l.event === 'leadership.error.unhandled'));
  t.is((unhandled.fields.error as Error).message, 'handler boom');
  t.is((unhandled.fields.cause as Error).message, 'again');
});

test('after close the contender is revoked once and later driver events are ignored', async (t) => {
  const { driver, service, contender, logs } = setup();
  driver.grant(1);
  await eventually('granted', () => contender.calls.includes('granted 1'));
  await service.close();
  t.true(driver.closed);
  t.deepEqual(contender.calls, ['grant 1', 'granted 1', 'revoke 1 (resigned)']);
  driver.listener.grant({ epoch: 2, latchNode: 'n', zkSessionId: 's1' });
  driver.listener.revoke('closed');
  driver.listener.handleError(new Error('late'));
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(contender.calls, ['grant 1', 'granted 1', 'revoke 1 (resigned)'], 'nothing reaches the contender after close');
  t.deepEqual(ignored(logs).map((i) => `${String(i.event)}: ${String(i.reason)}`), ['revoke: service stopped', 'grant: service stopped', 'revoke: service stopped', 'error: service stopped']);
  t.false(await service.confirmLeadership(contender.terms[0]));
});

test('a graceful close hands over before the contender suspends: the term ends for guards at once, leader info and latch are gone before the revoke', async (t) => {
  const { driver, service, contender } = setup();
  driver.grant(1);
  await eventually('granted', () => contender.calls.includes('granted 1'));
  const term = contender.terms[0];
  t.true(await service.confirmLeadership(term));
  t.not(driver.leaderInfo, null);
  const seenAtRevoke: Array<{ closed: boolean; leaderInfo: unknown; leading: boolean }> = [];
  contender.onRevoke = () => { seenAtRevoke.push({ closed: driver.closed, leaderInfo: driver.leaderInfo, leading: service.isLeader(term) }); };
  const closing = service.close();
  t.false(service.isLeader(term), 'write guards of the term refuse from the first moment of the close');
  await closing;
  t.deepEqual(seenAtRevoke, [{ closed: true, leaderInfo: null, leading: false }]);
  t.deepEqual(contender.calls.slice(-1), ['revoke 1 (resigned)']);
});

test('the dispatcher handles a leadership error by dropping its leader state and resigning the term, then leads again on the next grant', async (t) => {
  const driver = new FakeElectionDriver();
  const logs: Logged[] = [];
  const logger = recordingLogger(logs);
  const client = new FakeZkClient();
  const election = new LeaderElectionService(driver.factory, { contenderInfo: { replicaId: 'r1', restUrl: 'http://r1', rpcUrl: 'http://r1' }, logger });
  let failGrants = 1;
  // Every metric a no-op, except that counting the first grant throws: the grant callback rejects.
  // Each member is callable (the metrics' methods) and carries inc/set/observe (its counters and gauges).
  const noop = Object.assign(() => undefined, { inc: () => undefined, set: () => undefined, observe: () => undefined, dec: () => undefined });
  const leadershipChanged = (change: string): void => { if (change === 'granted' && failGrants-- > 0) throw new Error('metrics registry broken'); };
  const metrics = new Proxy({}, { get: (_, name) => name === 'leadershipChanged' ? leadershipChanged : noop }) as unknown as DispatcherMetrics;
  const dispatcher = new Dispatcher({
    client, election, metrics, logger, limits: { maxParallelism: 4 }, jobstore: { maxCapacity: 10, expirationMs: 60000 },
    jobMasterFactory: (ctx) => new PassiveJobMaster(ctx),
  });
  election.start(dispatcher);

  const first = driver.grant(1);
  await eventually('the failed term is resigned', () => driver.resigned.length === 1);
  t.is(driver.resigned[0].epoch, first.epoch);
  t.is(dispatcher.role, 'standby');
  const error = logs.find((l) => l.event === 'dispatcher.leadership.error');
  t.like(error?.fields, { epoch: 1, action: 'resign' });

  driver.grant(2);
  await eventually('leads the next term', () => dispatcher.role === 'leader');
  t.is(dispatcher.epoch, 2);
  t.is(driver.leaderInfo?.epoch, 2);

  driver.fail(new Error('driver trouble'));
  await eventually('resigns the serving term too', () => driver.resigned.length === 2);
  t.is(dispatcher.role, 'standby');
  t.is(driver.leaderInfo, null);
  await election.close();
});

test('the integration timeline flags two contenders on one epoch and a side effect after its revoke, and nothing else', async (t) => {
  const { LeadershipTimeline } = await import('../helpers/election');
  const ok = new LeadershipTimeline();
  ok.grant('c0', 0);
  ok.act('c0', 0, 'write');
  ok.grant('c2', 1); // wall-clock overlap with c0's term is allowed: c0 learns of its revoke late
  ok.revoke('c0', 0, 'connection suspended');
  ok.act('c2', 1, 'write');
  ok.revoke('c2', 1, 'connection suspended');
  ok.grant('c2', 1); // the same contender regains its own epoch
  t.deepEqual(ok.violations, []);
  t.deepEqual(ok.leaders, ['c2']);

  const bad = new LeadershipTimeline();
  bad.grant('c0', 0);
  bad.grant('c1', 0);
  bad.revoke('c0', 0, 'closed');
  bad.act('c0', 0, 'write');
  t.deepEqual(bad.violations, ['c1 granted epoch 0, which c0 held', 'c0 acted (write) for epoch 0 outside its term (never granted or already revoked)']);
});
