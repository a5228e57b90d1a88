/** The audit log's two sinks: its own file (JSON lines, mode 600) or the process log under event `audit`. */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AuditEntry, createAuditLog } from '../../src/security/audit';
import { RecordingLogger } from '../helpers/fake-rest-deps';

const ENTRY: AuditEntry = { principal: 'alice', action: 'job.cancel', target: 'a'.repeat(32), outcome: 'denied', status: 403, remoteAddress: '127.0.0.1' };

test('with security.audit.file: one JSON line per entry in a file only its owner can read', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-audit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'audit.jsonl');
  const logger = new RecordingLogger();
  const audit = createAuditLog({ file, logger, fields: { replicaId: 'r1' } });
  audit.record(ENTRY);
  audit.record({ ...ENTRY, principal: 'ops', outcome: 'allowed', status: 202 });
  await audit.close();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.length, 2);
  t.like(lines[0], { event: 'audit', replicaId: 'r1', ...ENTRY });
  t.like(lines[1], { principal: 'ops', outcome: 'allowed', status: 202 });
  t.false(Number.isNaN(Date.parse(lines[0].timestamp)));
  t.is(fs.statSync(file).mode & 0o777, 0o600);
  t.deepEqual(logger.events, [], 'nothing went to the process log');
});

test('without a file: the process log under event "audit"', async (t) => {
  const logger = new RecordingLogger();
  createAuditLog({ logger }).record(ENTRY);
  t.is(logger.events.length, 1);
  t.is(logger.events[0].event, 'audit');
  t.like(logger.events[0].fields, ENTRY);
});

test('an audit file that cannot be opened stops the start', (t) => {
  t.throws(() => createAuditLog({ file: '/nonexistent-dir/audit.jsonl', logger: new RecordingLogger() }), { code: 'ENOENT' });
});
