/**
 * The REST role table: every route declares what it needs (a test walks the router), and the one
 * authorization step answers 401/403 naming the missing role, lets a submitter cancel only its own
 * jobs, and audits actions and refusals without secrets.
 */
import test from 'ava';
import { createApp, createRouter } from '../../src/rest/app';
import { declaredAccess } from '../../src/rest/access';
import type { AuditEntry, AuditLog } from '../../src/security/audit';
import { hashToken, parseCredentials } from '../../src/security/credentials';
import type { JobDetails } from '../../src/jobmaster/types';
import { asStandby, fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

const TOKENS = { viewer: 'viewer-token-0123456789ab', alice: 'alice-token-0123456789abc', bob: 'bob-token-0123456789abcde', ops: 'ops-token-0123456789abcde' };
const ADMIN = 'admin-token-0123456789abc';
const JOB = 'a'.repeat(32);

const credentials = parseCredentials(JSON.stringify({ principals: [
  { name: 'viewer', roles: ['viewer'], 'token-sha256': [hashToken(TOKENS.viewer)] },
  { name: 'alice', roles: ['submitter'], 'token-sha256': [hashToken(TOKENS.alice)] },
  { name: 'bob', roles: ['submitter'], 'token-sha256': [hashToken(TOKENS.bob)] },
  { name: 'ops', roles: ['operator'], 'token-sha256': [hashToken(TOKENS.ops)] },
] }), 'test');

function job(submittedBy?: string): JobDetails {
  return { jid: JOB, name: 'j', state: 'RUNNING', 'start-time': 1, 'end-time': -1, duration: 1, now: 2, timestamps: {}, vertices: [], restarts: 0, attempt: 0, ...(submittedBy ? { submittedBy } : {}) };
}

function secured() {
  const entries: AuditEntry[] = [];
  const audit: AuditLog = { record: (e) => { entries.push(e); }, close: async () => undefined };
  const f = fakeRestDeps({ restToken: ADMIN, restCredentials: credentials, audit });
  f.dispatcher.details = [job('alice')];
  const handler = createApp(f.deps).callback();
  const req = (who: keyof typeof TOKENS | 'admin' | null, method: string, path: string, body?: unknown) => inject(handler, {
    method, path, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { ...(who ? { authorization: `Bearer ${who === 'admin' ? ADMIN : TOKENS[who]}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
  });
  return { f, req, entries };
}

test('every route of the REST router declares the role it needs', (t) => {
  const router = createRouter(fakeRestDeps().deps);
  const undeclared = router.stack.filter((layer) => layer.methods.length > 0 && declaredAccess(layer) === undefined)
    .map((layer) => `${layer.methods.join(',')} ${String(layer.path)}`);
  t.deepEqual(undeclared, []);
  t.true(router.stack.length > 30, 'the walk saw the routes');
  const access = (method: string, path: string): string | undefined => {
    const layer = router.stack.find((l) => l.methods.includes(method) && l.path === path);
    return layer && declaredAccess(layer)?.access;
  };
  t.is(access('GET', '/livez'), 'public');
  t.is(access('GET', '/metrics'), 'public');
  t.is(access('GET', '/'), 'public');
  t.is(access('GET', '/jobs'), 'viewer');
  t.is(access('POST', '/jobs'), 'submitter');
  t.is(access('PATCH', '/jobs/:jobid'), 'submitter');
  t.is(access('GET', '/jobmanager/config'), 'admin');
  t.is(access('DELETE', '/cluster'), 'admin');
});

test('a viewer reads but gets 403 naming the role on submit and cancel; no credentials is 401', async (t) => {
  const { req, f } = secured();
  t.is((await req('viewer', 'GET', '/jobs')).status, 200);
  t.is((await req('viewer', 'GET', `/jobs/${JOB}`)).status, 200);
  const submit = await req('viewer', 'POST', '/jobs', { jobId: JOB });
  t.is(submit.status, 403);
  t.deepEqual(submit.json(), { errors: ['principal "viewer" has role viewer; POST /jobs needs role submitter'] });
  t.regex((await req('viewer', 'PATCH', `/jobs/${JOB}`)).json().errors[0], /needs role submitter/);
  t.regex((await req('alice', 'GET', '/jobmanager/config')).json().errors[0], /needs role admin/);
  const none = await req(null, 'GET', '/jobs');
  t.is(none.status, 401);
  t.regex(none.json().errors[0], /needs role viewer.*security\.rest\.credentials-file/);
  t.is((await req(null, 'GET', '/no/such/path')).status, 401, 'unknown paths need a principal too');
  t.is((await req('viewer', 'GET', '/no/such/path')).status, 404);
  t.is((await req(null, 'GET', '/livez')).status, 200, 'probes stay open');
  t.deepEqual(f.dispatcher.submitted, []);
  t.deepEqual(f.dispatcher.cancelled, []);
});

test('a submitter cancels its own job only; an operator and the rest-token admin cancel any', async (t) => {
  const { req, f } = secured();
  const byBob = await req('bob', 'PATCH', `/jobs/${JOB}`);
  t.is(byBob.status, 403);
  t.regex(byBob.json().errors[0], /"bob" has role submitter.*submitted by "alice": cancelling it needs role operator/);
  t.deepEqual(f.dispatcher.cancelled, []);
  t.is((await req('alice', 'PATCH', `/jobs/${JOB}`)).status, 202);
  t.is((await req('ops', 'PATCH', `/jobs/${JOB}`)).status, 202);
  t.is((await req('admin', 'PATCH', `/jobs/${JOB}`)).status, 202);
  t.deepEqual(f.dispatcher.cancelled, [JOB, JOB, JOB]);
  f.dispatcher.details = [job()];
  t.regex((await req('alice', 'PATCH', `/jobs/${JOB}`)).json().errors[0], /no recorded principal.*needs role operator/);
});

test('job details and the overview show the submitter', async (t) => {
  const { req } = secured();
  t.is((await req('viewer', 'GET', `/jobs/${JOB}`)).json()['submitted-by'], 'alice');
  t.is((await req('viewer', 'GET', '/jobs/overview')).json().jobs[0]['submitted-by'], 'alice');
});

test('a standby refuses before redirecting: the role is checked on every replica', async (t) => {
  const { req, f } = secured();
  asStandby(f);
  t.is((await req('viewer', 'POST', '/jobs', { jobId: JOB })).status, 403);
  t.is((await req('alice', 'POST', '/jobs', { jobId: JOB })).status, 307);
});

test('the audit log records actions and refusals with principal, action, target and outcome, never a token', async (t) => {
  const { req, entries } = secured();
  await req('alice', 'POST', '/jobs', { jobId: JOB });
  await req('viewer', 'POST', '/jobs', { jobId: JOB });
  await req('bob', 'PATCH', `/jobs/${JOB}`);
  await req(null, 'GET', `/jobs/${JOB}`);
  await req('admin', 'GET', '/jobmanager/config');
  await req('viewer', 'GET', '/jobs');
  const seen = entries.map(({ principal, action, target, outcome, status }) => ({ principal, action, target, outcome, status }));
  t.deepEqual(seen, [
    { principal: 'alice', action: 'job.submit', target: JOB, outcome: 'allowed', status: 202 },
    { principal: 'viewer', action: 'job.submit', target: '/jobs', outcome: 'denied', status: 403 },
    { principal: 'bob', action: 'job.cancel', target: JOB, outcome: 'denied', status: 403 },
    { principal: 'anonymous', action: 'GET /jobs/:jobid', target: JOB, outcome: 'denied', status: 401 },
    { principal: 'rest-token', action: 'config.read', target: '/jobmanager/config', outcome: 'allowed', status: 200 },
  ], 'plain reads are not audited');
  const text = JSON.stringify(entries);
  for (const secret of [ADMIN, ...Object.values(TOKENS)]) t.false(text.includes(secret));
});

test('an open cluster (no token, no credentials) lets everyone do everything as "anonymous", as before roles', async (t) => {
  const f = fakeRestDeps();
  f.dispatcher.details = [job('alice')];
  const handler = createApp(f.deps).callback();
  t.is((await inject(handler, { method: 'PATCH', path: `/jobs/${JOB}` })).status, 202);
  t.is((await inject(handler, { method: 'GET', path: '/jobmanager/config' })).status, 200);
});
