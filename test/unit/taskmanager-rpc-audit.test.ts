/**
 * A TaskManager's RPC server audits what it refuses, as a replica does: a missing or wrong internal
 * token, a client certificate the cluster CA did not sign, a TaskManager's certificate sending a
 * command — one `audit` line each (security.audit.file, else the process log), never the token.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { validateConfig } from '../../src/config';
import { requestJson } from '../../src/http/client';
import { AuditEntry, AuditLog, createAuditLog } from '../../src/security/audit';
import { generateCa, generateCertificate } from '../../src/security/certificates';
import { RpcServer, taskManagerApp, TaskManagerCommands } from '../../src/taskmanager/rpc-server';
import { TaskManager } from '../../src/taskmanager/task-manager';
import { silentLogger } from '../../src/util/logger';
import { RecordingLogger } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

const TOKEN = 'f3a9c1e07b2d4e6f8a1b5c7d9e0f1a2b';

/** Just enough TaskManager for GET /tasks. */
const owner = { taskManagerId: 'tm-1', logDir: os.tmpdir(), status: () => ({ tasks: [] }) } as unknown as TaskManagerCommands;

class RecordingAudit implements AuditLog {
  readonly entries: AuditEntry[] = [];
  record(entry: AuditEntry): void { this.entries.push(entry); }
  async close(): Promise<void> { /* nothing to flush */ }
}

test('a missing or wrong internal token is answered 401/403 and audited; allowed calls and probes are not', async (t) => {
  const audit = new RecordingAudit();
  const handler = taskManagerApp(owner, { logger: new RecordingLogger(), internalToken: TOKEN, audit }).callback();

  t.is((await inject(handler, { path: '/tasks' })).status, 401);
  t.is((await inject(handler, { method: 'POST', path: '/deploy', headers: { authorization: 'Bearer not-the-cluster-token' }, body: '{}' })).status, 403);
  t.is((await inject(handler, { path: '/tasks', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  t.is((await inject(handler, { path: '/livez' })).status, 200);

  t.deepEqual(audit.entries.map(({ remoteAddress: _, ...e }) => e), [
    { principal: 'anonymous', action: 'GET /tasks', target: '/tasks', outcome: 'denied', status: 401 },
    { principal: 'anonymous', action: 'POST /deploy', target: '/deploy', outcome: 'denied', status: 403 },
  ]);
  t.false(JSON.stringify(audit.entries).includes('not-the-cluster-token'), 'the presented token is never audited');
  t.false(JSON.stringify(audit.entries).includes(TOKEN));
});

test('mutual TLS: a certificate of another CA (401) and a TaskManager\'s certificate sending a command (403) are audited with who it named', async (t) => {
  const ca = await generateCa();
  const otherCa = await generateCa('someone else');
  const [server, replica, tm2, foreign] = await Promise.all([
    generateCertificate(ca, 'taskmanager', 'tm-1'), generateCertificate(ca, 'replica', 'r1'),
    generateCertificate(ca, 'taskmanager', 'tm-2'), generateCertificate(otherCa, 'replica', 'r1'),
  ]);
  const audit = new RecordingAudit();
  const rpc = await RpcServer.listen(owner, {
    bindAddress: '127.0.0.1', port: 0, logger: silentLogger, audit,
    tls: { cert: Buffer.from(server.cert), key: Buffer.from(server.key), clientCa: Buffer.from(ca.cert) },
  });
  t.teardown(() => rpc.close());
  const url = `https://127.0.0.1:${rpc.port}/tasks`;

  t.is((await requestJson('GET', url, undefined, { tls: { ca: ca.cert, cert: replica.cert, key: replica.key } })).status, 200);
  t.is((await requestJson('GET', url, undefined, { tls: { ca: ca.cert, cert: tm2.cert, key: tm2.key } })).status, 403);
  t.is((await requestJson('GET', url, undefined, { tls: { ca: ca.cert, cert: foreign.cert, key: foreign.key } })).status, 401);
  t.is((await requestJson('GET', url, undefined, { tls: { ca: ca.cert } })).status, 401);

  t.deepEqual(audit.entries.map((e) => [e.principal, e.status, e.outcome]), [
    ['taskmanager:tm-2', 403, 'denied'],
    ['anonymous', 401, 'denied'],
    ['anonymous', 401, 'denied'],
  ]);
  for (const e of audit.entries) t.is(e.remoteAddress, '127.0.0.1');
});

test('security.audit.file reaches the TaskManager; its refusals are JSON lines there, naming the TaskManager', async (t) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tm-audit-')), 'audit.jsonl');
  t.is(TaskManager.optionsFrom(validateConfig({ 'security.audit.file': file }), silentLogger).auditFile, file);
  t.is(TaskManager.optionsFrom(validateConfig({}), silentLogger).auditFile, undefined);

  const audit = createAuditLog({ file, logger: silentLogger, fields: { taskManagerId: 'tm-1' } });
  const handler = taskManagerApp(owner, { logger: new RecordingLogger(), internalToken: TOKEN, audit }).callback();
  t.is((await inject(handler, { method: 'POST', path: '/cancel', body: '{}' })).status, 401);
  await audit.close();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.length, 1);
  t.like(lines[0], { event: 'audit', taskManagerId: 'tm-1', principal: 'anonymous', action: 'POST /cancel', outcome: 'denied', status: 401 });
  t.regex(lines[0].timestamp, /^\d{4}-\d\d-\d\dT/);
  t.is(fs.statSync(file).mode & 0o777, 0o600);
});

test('a deploy whose body arrived after a stall began is refused (503) and not started, though the stall began after the request did', async (t) => {
  // The stall fence is checked before the body is read and again after it: a SIGSTOP while the body
  // was being read resumes into a request the leader has given up on.
  let checks = 0;
  const deployed: unknown[] = [];
  const stallingOwner = {
    ...owner, stalled: () => ++checks > 1, highestEpoch: () => 0, admitCommand: () => 'admitted', accepting: () => true,
    deploy: (req: unknown) => { deployed.push(req); return { key: 'k', state: 'RUNNING' }; },
  } as unknown as TaskManagerCommands;
  const logger = new RecordingLogger();
  const handler = taskManagerApp(stallingOwner, { logger, internalToken: TOKEN }).callback();
  const res = await inject(handler, { method: 'POST', path: '/deploy', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ epoch: 0 }) });
  t.is(res.status, 503);
  t.is(checks, 2, 'checked before and after the body');
  t.deepEqual(deployed, []);
  t.truthy(logger.events.find((e) => e.event === 'taskmanager.deploy.refused'));
});
