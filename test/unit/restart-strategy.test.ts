import test from 'ava';
import { createRestartStrategy, EXPONENTIAL_RESET_THRESHOLD_MS } from '../../src/jobmaster/restart-strategy';

test('none never restarts', (t) => {
  const s = createRestartStrategy({ type: 'none' });
  t.like(s.onFailure(0), { restart: false });
  t.regex((s.onFailure(0) as { reason: string }).reason, /"none"/);
});

test('fixed-delay grants exactly `attempts` restarts with the configured delay, then refuses', (t) => {
  const s = createRestartStrategy({ type: 'fixed-delay', attempts: 3, delayMs: 250 });
  for (let i = 0; i < 3; i++) t.deepEqual(s.onFailure(i * 1000), { restart: true, delayMs: 250 });
  const last = s.onFailure(10_000);
  t.false(last.restart);
  t.regex((last as { reason: string }).reason, /fixed-delay.*3 restart attempts/);
});

test('fixed-delay with 0 attempts fails at the first failure', (t) => {
  t.false(createRestartStrategy({ type: 'fixed-delay', attempts: 0, delayMs: 1 }).onFailure(0).restart);
});

test('exponential-delay multiplies the backoff up to the maximum and stops after `attempts`', (t) => {
  const s = createRestartStrategy({ type: 'exponential-delay', initialBackoffMs: 100, maxBackoffMs: 500, backoffMultiplier: 2, attempts: 5 });
  const delays = [0, 1, 2, 3, 4].map((i) => s.onFailure(i * 10));
  t.deepEqual(delays.map((d) => (d.restart ? d.delayMs : -1)), [100, 200, 400, 500, 500]);
  t.false(s.onFailure(100).restart);
});

test('exponential-delay without attempts restarts forever; a quiet threshold resets the backoff', (t) => {
  const s = createRestartStrategy({ type: 'exponential-delay', initialBackoffMs: 10, maxBackoffMs: 1000, backoffMultiplier: 3 });
  let now = 0;
  for (let i = 0; i < 50; i++) t.true(s.onFailure((now += 10)).restart);
  t.deepEqual(s.onFailure((now += 10)), { restart: true, delayMs: 1000 });
  t.deepEqual(s.onFailure(now + EXPONENTIAL_RESET_THRESHOLD_MS), { restart: true, delayMs: 10 });
});

test('failure-rate fails once more than maxFailuresPerInterval failures fall inside the interval', (t) => {
  const s = createRestartStrategy({ type: 'failure-rate', maxFailuresPerInterval: 2, failureRateIntervalMs: 1000, delayMs: 50 });
  t.deepEqual(s.onFailure(0), { restart: true, delayMs: 50 });
  t.deepEqual(s.onFailure(400), { restart: true, delayMs: 50 });
  // The first failure left the window: still two inside it.
  t.deepEqual(s.onFailure(1100), { restart: true, delayMs: 50 });
  const refused = s.onFailure(1200);
  t.false(refused.restart);
  t.regex((refused as { reason: string }).reason, /3 failures within 1000 ms exceed the limit of 2/);
});

test('the state survives a snapshot, so a new leader continues the count', (t) => {
  const config = { type: 'fixed-delay' as const, attempts: 2, delayMs: 0 };
  const first = createRestartStrategy(config);
  first.onFailure(0);
  first.onFailure(1);
  const second = createRestartStrategy(config, JSON.parse(JSON.stringify(first.snapshot())));
  t.false(second.onFailure(2).restart);
  const rate = createRestartStrategy({ type: 'failure-rate', maxFailuresPerInterval: 1, failureRateIntervalMs: 1000, delayMs: 0 });
  rate.onFailure(0);
  t.false(createRestartStrategy(rate.config, rate.snapshot()).onFailure(10).restart);
});
