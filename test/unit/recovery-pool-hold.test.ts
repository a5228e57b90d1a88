/**
 * The recovery pool's test lever (HA_DISPATCHER_TEST_RECOVERY_HOLD_FILE, src/dispatcher/recovery-pool.ts):
 * a held step runs once the file is gone, and a step still held when the term ends never runs.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RecoveryPool } from '../../src/dispatcher/recovery-pool';

function holdFile(t: import('ava').ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-recovery-hold-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'hold');
  fs.writeFileSync(file, '');
  return file;
}

test('a step held by the hold file runs once the file is removed', async (t) => {
  const hold = holdFile(t);
  const pool = new RecoveryPool(2, hold);
  pool.start();
  const ran: string[] = [];
  const outcome = pool.add('job-a', async () => { ran.push('job-a'); return 'recovered'; });
  t.true(pool.has('job-a'));
  fs.rmSync(hold);
  t.is(await outcome, 'recovered');
  t.deepEqual(ran, ['job-a']);
});

test('a step still held when the pool stops is abandoned without running', async (t) => {
  const hold = holdFile(t);
  const pool = new RecoveryPool(2, hold);
  pool.start();
  const ran: string[] = [];
  const outcome = pool.add('job-b', async () => { ran.push('job-b'); return 'recovered'; });
  pool.stop();
  t.is(await outcome, 'abandoned');
  t.deepEqual(ran, []);
});
