/**
 * rest.standby-mode forward: a standby (createApp with a LeaderForwarder) in front of a leader (a koa
 * app echoing what it got), both on 127.0.0.1 ephemeral ports. Method, path, query, body, status and
 * headers pass; hop-by-hop headers do not; answers stream; a leader that freezes mid-request (a child
 * process under SIGSTOP) is answered 503 + Retry-After within the deadline and counts as a failed probe.
 */
import test from 'ava';
import * as http from 'node:http';
import { spawn } from 'node:child_process';
import { AddressInfo } from 'node:net';
import Koa from 'koa';
import { createApp } from '../../src/rest/app';
import { LeaderForwarder, endToEnd } from '../../src/rest/forward';
import { LeaderTarget } from '../../src/election/leader-liveness';
import { closeServer, listen } from '../../src/http/server';
import { killOnExit, stopChild } from '../../src/util/process';
import { eventually } from '../../src/util/poll';
import { asStandby, fakeRestDeps, leaderInfo } from '../helpers/fake-rest-deps';

async function serve(listener: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(listener);
  await listen(server, 0, '127.0.0.1');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

class LivenessLog {
  readonly successes: string[] = [];
  readonly failures: string[] = [];
  recordSuccess(t: LeaderTarget): void { this.successes.push(t.replicaId); }
  recordFailure(t: LeaderTarget): void { this.failures.push(t.replicaId); }
}

/** A standby replica-a whose published ready leader is replica-b at `leaderUrl`, in forward mode. */
async function standby(t: import('ava').ExecutionContext, leaderUrl: string, forwarder: LeaderForwarder, token?: string) {
  const f = fakeRestDeps({ forwarder, restToken: token });
  asStandby(f);
  f.retrieval.current = leaderInfo('replica-b', leaderUrl, 8);
  const s = await serve(createApp(f.deps).callback());
  t.teardown(() => closeServer(s.server));
  return s.url;
}

test('a forwarded request keeps method, path, query, body and end-to-end headers; the answer keeps status, headers and body', async (t) => {
  let got: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string } | null = null;
  const leaderApp = new Koa();
  leaderApp.use(async (ctx) => {
    let body = '';
    for await (const chunk of ctx.req) body += chunk;
    got = { method: ctx.method, url: ctx.originalUrl, headers: ctx.req.headers, body };
    ctx.status = 202;
    ctx.set('X-HA-Replica-Id', 'replica-b');
    ctx.set('X-Custom', 'from-leader');
    ctx.set('Location', '/jobs/abc');
    ctx.body = { accepted: true };
  });
  const leader = await serve(leaderApp.callback());
  t.teardown(() => closeServer(leader.server));
  const liveness = new LivenessLog();
  const forwarder = new LeaderForwarder({ replicaId: 'replica-a', liveness });
  t.teardown(() => forwarder.close());
  const url = await standby(t, leader.url, forwarder, 'secret-token');

  // node:http, not fetch: fetch refuses to send Connection and Keep-Alive headers.
  const res = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request(`${url}/jobs?wait=1&x=%2F`, {
      method: 'POST',
      headers: { authorization: 'Bearer secret-token', 'content-type': 'application/json', 'x-request-id': 'r-1', 'keep-alive': 'timeout=5', connection: 'keep-alive, x-drop-me', 'x-drop-me': '1' },
    }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => { body += d.toString(); }).on('end', () => resolve({ status: r.statusCode!, headers: r.headers, body })).on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ name: 'graph' }));
  });
  t.is(res.status, 202);
  t.deepEqual(JSON.parse(res.body), { accepted: true });
  t.is(res.headers['x-custom'], 'from-leader');
  t.is(res.headers.location, '/jobs/abc');
  t.is(res.headers['x-ha-replica-id'], 'replica-b', 'the answer names the leader that wrote it');
  t.truthy(got);
  const seen = got!;
  t.is(seen.method, 'POST');
  t.is(seen.url, '/jobs?wait=1&x=%2F');
  t.is(seen.body, JSON.stringify({ name: 'graph' }));
  t.is(seen.headers.authorization, 'Bearer secret-token', 'the leader of the same cluster gets the token');
  t.is(seen.headers['content-type'], 'application/json');
  t.is(seen.headers['x-request-id'], 'r-1');
  t.is(seen.headers['x-ha-forwarded-by'], 'replica-a');
  t.is(seen.headers.host, new URL(leader.url).host);
  t.is(seen.headers['x-drop-me'], undefined, 'headers named in Connection are hop-by-hop');
  t.not(seen.headers['keep-alive'], 'timeout=5');
  t.deepEqual(liveness.successes, ['replica-b']);

  // The token is still checked by the standby itself.
  t.is((await fetch(`${url}/jobs`, { redirect: 'manual' })).status, 401);
  t.deepEqual(liveness.successes, ['replica-b'], 'an unauthenticated request never reached the leader');
});

test('a forwarded answer streams: the first chunk arrives before the leader wrote the rest; error statuses pass as they are', async (t) => {
  let release: () => void = () => {};
  const released = new Promise<void>((r) => { release = r; });
  const leader = await serve((req, res) => {
    if (req.url === '/jobs/missing') { res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"errors":["no such job"]}'); return; }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    void released.then(() => res.end('second\n'));
  });
  t.teardown(() => closeServer(leader.server));
  const forwarder = new LeaderForwarder({ replicaId: 'replica-a' });
  t.teardown(() => forwarder.close());
  const url = await standby(t, leader.url, forwarder);

  const res = await fetch(`${url}/jobs`);
  t.is(res.status, 200);
  const reader = res.body!.getReader();
  const first = await reader.read();
  t.is(Buffer.from(first.value!).toString(), 'first\n');
  release();
  let rest = '';
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += Buffer.from(r.value).toString();
  t.is(rest, 'second\n');

  const missing = await fetch(`${url}/jobs/missing`);
  t.is(missing.status, 404);
  t.deepEqual(await missing.json(), { errors: ['no such job'] });
});

test('a leader that freezes mid-request (SIGSTOP) is answered 503 + Retry-After within the deadline, never a hang', async (t) => {
  const child = spawn(process.execPath, ['-e', `
    const http = require('node:http');
    const server = http.createServer((req, res) => { console.log('request ' + req.url); setTimeout(() => res.end('late'), 5000); });
    server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));`], { stdio: ['ignore', 'pipe', 'inherit'] });
  killOnExit(child);
  t.teardown(async () => { child.kill('SIGCONT'); await stopChild(child, 'SIGKILL', 2000); });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const port = await eventually('the leader process listens', () => /port (\d+)/.exec(out)?.[1], 10_000);
  const leaderUrl = `http://127.0.0.1:${port}`;
  const liveness = new LivenessLog();
  const deadlineMs = 1500;
  const forwarder = new LeaderForwarder({ replicaId: 'replica-a', liveness, deadlineMs });
  t.teardown(() => forwarder.close());
  const url = await standby(t, leaderUrl, forwarder);

  const answer = fetch(`${url}/jobs`, { signal: AbortSignal.timeout(20_000) });
  await eventually('the leader got the forwarded request', () => out.includes('request /jobs'), 10_000);
  child.kill('SIGSTOP');
  // The client's own 20 s abort would fail the test if the standby left it hanging.
  const res = await answer;
  t.is(res.status, 503);
  t.is(res.headers.get('retry-after'), '1');
  t.regex(((await res.json()) as { errors: string[] }).errors[0], /leader replica-b did not answer the forwarded request/);
  t.deepEqual(liveness.failures, ['replica-b'], 'the failed forward counts against the leader\'s liveness');
});

test('endToEnd drops hop-by-hop headers and those named in Connection', (t) => {
  t.deepEqual(endToEnd({ connection: 'close, X-Trace', 'x-trace': '1', 'transfer-encoding': 'chunked', host: 'a', te: 'trailers', accept: '*/*' }), { accept: '*/*' });
});
