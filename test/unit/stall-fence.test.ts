/** The TaskManager's stall detector (see src/taskmanager/stall-fence.ts), on a hand-driven clock. */
import test from 'ava';
import { StallFence } from '../../src/taskmanager/stall-fence';

test('a gap in the beat of at least the threshold fences commands for fenceMs; regular beats never do', (t) => {
  let now = 1000;
  const stalls: number[] = [];
  const fence = new StallFence({ thresholdMs: 3000, fenceMs: 1000, now: () => now, onStall: (gap) => stalls.push(gap) });
  for (let i = 0; i < 50; i++) {
    now += 100;
    fence.beat();
  }
  t.false(fence.fenced);
  now += 2900; // slow, not stalled
  t.false(fence.fenced);
  now += 7000; // SIGSTOP for 7 s: the first thing after resuming is the queued request
  t.true(fence.fenced, 'a request served before the overdue beat sees the stall itself');
  t.deepEqual(stalls, [7000]);
  now += 500;
  fence.beat();
  t.true(fence.fenced);
  now += 600;
  t.false(fence.fenced, 'the fence lifts after fenceMs');
  t.is(stalls.length, 1);
});
