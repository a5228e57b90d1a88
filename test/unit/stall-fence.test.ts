/** The TaskManager's stall detector (see src/taskmanager/stall-fence.ts), on a hand-driven clock. */
import test from 'ava';
import { StallFence } from '../../src/util/stall-fence';
import { FakeClock } from '../helpers/fake-clock';

test('a gap in the beat of at least the threshold fences commands for fenceMs; regular beats never do', async (t) => {
  const clock = new FakeClock();
  const stalls: number[] = [];
  const fence = new StallFence({ thresholdMs: 3000, fenceMs: 1000, clock, onStall: (gap) => stalls.push(gap) });
  for (let i = 0; i < 50; i++) {
    await clock.advance(100);
    fence.beat();
  }
  t.false(fence.fenced);
  await clock.advance(2900); // slow, not stalled
  t.false(fence.fenced);
  await clock.advance(7000); // SIGSTOP for 7 s: the first thing after resuming is the queued request
  t.true(fence.fenced, 'a request served before the overdue beat sees the stall itself');
  t.deepEqual(stalls, [7000]);
  await clock.advance(500);
  fence.beat();
  t.true(fence.fenced);
  await clock.advance(600);
  t.false(fence.fenced, 'the fence lifts after fenceMs');
  t.is(stalls.length, 1);
});

test('a started fence beats on its own timer, and a wall-clock step is not a stall', async (t) => {
  const clock = new FakeClock();
  const stalls: number[] = [];
  const fence = new StallFence({ thresholdMs: 3000, fenceMs: 1000, beatMs: 100, clock, onStall: (gap) => stalls.push(gap) });
  fence.start();
  t.deepEqual(clock.pending, [100]);
  await clock.advance(10_000);
  clock.jumpWallClock(60 * 60_000);
  t.false(fence.fenced);
  clock.jumpWallClock(-2 * 60 * 60_000);
  await clock.advance(100);
  t.false(fence.fenced);
  t.deepEqual(stalls, []);
  fence.stop();
  t.deepEqual(clock.pending, [], 'stop cancels the beat');
});
