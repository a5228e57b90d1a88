/**
 * deploy/haproxy/haproxy.cfg's leader entrance on its own, with the real haproxy in front of a stand-in
 * replica (a plain node HTTP server on 127.0.0.1 that passes the leader-only /health check and answers
 * every other request with a 307, as a leader demoted a moment ago does): the entrance turns that 307
 * into 503 + Retry-After (a 307 back to itself would be a loop); the client entrance rewrites a 307 to
 * the entrance without a doubled "/" even when HAPROXY_LEADER_URL ends in one; and `haproxy -c` refuses
 * the entrance's variables set half or on the client entrance's own address.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { AddressInfo } from 'node:net';
import { closeServer, listen } from '../../src/http/server';
import { freePorts } from '../../src/util/ports';
import { eventually } from '../../src/util/poll';
import { killOnExit, stopChild } from '../../src/util/process';
import { packageRoot } from '../../src/util/package-root';

const HAPROXY = '/usr/sbin/haproxy';
const CFG = path.join(packageRoot(), 'deploy', 'haproxy', 'haproxy.cfg');

function check(env: Record<string, string>): { status: number | null; output: string } {
  const r = spawnSync(HAPROXY, ['-c', '-f', CFG], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('haproxy -c refuses the leader entrance set half, or on the client entrance\'s address', (t) => {
  const base = { HAPROXY_BIND: '127.0.0.1:18081', REPLICA1: '127.0.0.1:18090' };
  t.is(check(base).status, 0);
  t.is(check({ ...base, HAPROXY_LEADER_BIND: '127.0.0.1:18082', HAPROXY_LEADER_URL: 'http://127.0.0.1:18082' }).status, 0);
  const bindOnly = check({ ...base, HAPROXY_LEADER_BIND: '127.0.0.1:18082' });
  t.not(bindOnly.status, 0);
  t.regex(bindOnly.output, /HAPROXY_LEADER_BIND is set without HAPROXY_LEADER_URL/);
  const urlOnly = check({ ...base, HAPROXY_LEADER_URL: 'http://127.0.0.1:18082' });
  t.not(urlOnly.status, 0);
  t.regex(urlOnly.output, /HAPROXY_LEADER_URL is set without HAPROXY_LEADER_BIND/);
  const same = check({ ...base, HAPROXY_LEADER_BIND: '127.0.0.1:18081', HAPROXY_LEADER_URL: 'http://127.0.0.1:18081' });
  t.not(same.status, 0);
  t.regex(same.output, /HAPROXY_LEADER_BIND must differ from HAPROXY_BIND/);
});

test('the leader entrance answers a demoted leader\'s 307 with 503 + Retry-After; the client entrance points 307s at it without a doubled "/"', async (t) => {
  // Passes both checks (/health 200), answers everything else 307 to its own advertised URL.
  const replica = http.createServer((req, res) => {
    if (req.url?.startsWith('/health')) { res.writeHead(200).end('{}'); return; }
    res.writeHead(307, { Location: `http://replica-1.internal:8081${req.url}` }).end();
  });
  await listen(replica, 0, '127.0.0.1');
  t.teardown(() => closeServer(replica));
  const [lbPort, entrancePort] = await freePorts(2);
  const haproxy = spawn(HAPROXY, ['-f', CFG, '-db'], {
    env: {
      PATH: process.env.PATH ?? '', HAPROXY_BIND: `127.0.0.1:${lbPort}`, REPLICA1: `127.0.0.1:${(replica.address() as AddressInfo).port}`,
      HAPROXY_HEALTH_CHECK: '/health?standbyok=true', HAPROXY_LEADER_BIND: `127.0.0.1:${entrancePort}`,
      HAPROXY_LEADER_URL: `http://127.0.0.1:${entrancePort}/`,
    },
    stdio: 'ignore',
  });
  killOnExit(haproxy);
  t.teardown(() => stopChild(haproxy, 'SIGTERM', 5000));
  const entrance = `http://127.0.0.1:${entrancePort}`;
  await eventually('the leader entrance has its one server UP', () => fetch(`${entrance}/haproxy-health`).then((r) => r.status === 200, () => false), 30_000, 50);

  const viaClientEntrance = await fetch(`http://127.0.0.1:${lbPort}/jobs/abc?x=1,2`, { redirect: 'manual' });
  t.is(viaClientEntrance.status, 307);
  t.is(viaClientEntrance.headers.get('location'), `${entrance}/jobs/abc?x=1,2`);

  const atEntrance = await fetch(`${entrance}/jobs/abc?x=1`, { redirect: 'manual' });
  t.is(atEntrance.status, 503);
  t.is(atEntrance.headers.get('retry-after'), '1');
  t.is(atEntrance.headers.get('location'), null);
});
