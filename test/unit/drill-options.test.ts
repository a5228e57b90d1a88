/**
 * The drills' connection options are the client verbs' (src/client/credentials.ts), and the HAProxy
 * recipe the haproxy drill runs is accepted by the real `haproxy -c` for every shape of its variables:
 * plain or TLS, one to five replicas.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generate } from 'selfsigned';
import { restToken, trustedCa } from '../../src/client/credentials';
import { CliError, EXIT } from '../../src/client/rest-client';
import { DRILL_USAGE, drillCommand } from '../../src/chaos/drills';
import { findHaproxy, HAPROXY_RECIPE } from '../../src/chaos/haproxy';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-drill-options-'));
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the token comes from --token-file, else $HA_DISPATCHER_TOKEN_FILE, else $HA_DISPATCHER_TOKEN; an unreadable file is a usage error', (t) => {
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.writeFileSync(a, 'token-a\n');
  fs.writeFileSync(b, 'token-b\n');
  t.is(restToken(a, { HA_DISPATCHER_TOKEN_FILE: b, HA_DISPATCHER_TOKEN: 'c' }), 'token-a');
  t.is(restToken(undefined, { HA_DISPATCHER_TOKEN_FILE: b, HA_DISPATCHER_TOKEN: 'c' }), 'token-b');
  t.is(restToken(undefined, { HA_DISPATCHER_TOKEN: 'c' }), 'c');
  t.is(restToken(undefined, {}), undefined);
  const err = t.throws(() => restToken(path.join(dir, 'missing'), {}), { instanceOf: CliError });
  t.is(err!.exitCode, EXIT.USAGE);
  t.regex(err!.message, /token file .*missing cannot be read: ENOENT/);
});

test('the CA comes from --ca-file, else $HA_DISPATCHER_CA_FILE; none means the system CAs', (t) => {
  const ca = path.join(dir, 'ca.crt');
  fs.writeFileSync(ca, 'PEM');
  t.is(String(trustedCa(ca, { HA_DISPATCHER_CA_FILE: '/nonexistent' })?.ca), 'PEM');
  t.is(String(trustedCa(undefined, { HA_DISPATCHER_CA_FILE: ca })?.ca), 'PEM');
  t.is(trustedCa(undefined, {}), undefined);
  t.throws(() => trustedCa(path.join(dir, 'nope.crt'), {}), { instanceOf: CliError, message: /CA file .*nope\.crt cannot be read/ });
});

test('drill takes the client verbs\' connection options: an unreadable --token-file stops it before any request', async (t) => {
  t.regex(DRILL_USAGE, /--url URL\[,URL\.\.\.\]\] \[--token-file FILE\] \[--ca-file FILE\]/);
  t.regex(DRILL_USAGE, /drills: .*\bhaproxy\b/);
  const err = await t.throwsAsync(drillCommand(['health', '--url', 'http://127.0.0.1:1', '--token-file', path.join(dir, 'missing')], {}), { instanceOf: CliError });
  t.is(err!.exitCode, EXIT.USAGE);
  await t.throwsAsync(drillCommand(['health', '--url', 'ftp://x'], {}), { instanceOf: CliError, message: /must start with http:\/\/ or https:\/\// });
});

/** `haproxy -c` of the shipped recipe with these variables. */
function check(env: Record<string, string>): { status: number | null; output: string } {
  const haproxy = findHaproxy();
  if (!haproxy) throw new Error('haproxy is not installed (.ci/setup installs it)');
  const r = spawnSync(haproxy, ['-c', '-f', HAPROXY_RECIPE], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the recipe is valid for one to five plain-http replicas, and needs REPLICA1', (t) => {
  for (let n = 1; n <= 5; n++) {
    const replicas = Object.fromEntries(Array.from({ length: n }, (_, i) => [`REPLICA${i + 1}`, `127.0.0.1:${8081 + i}`]));
    const r = check({ HAPROXY_BIND: '127.0.0.1:18081', ...replicas });
    t.is(r.status, 0, `${n} replicas: ${r.output}`);
  }
  t.not(check({ HAPROXY_BIND: '127.0.0.1:18081' }).status, 0, 'without REPLICA1');
});

test('with HAPROXY_REPLICA_CA_FILE and HAPROXY_TLS_CERT the recipe is valid and loads both files', async (t) => {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  const ca = path.join(dir, 'replica-ca.crt');
  const own = path.join(dir, 'haproxy.pem');
  fs.writeFileSync(ca, pems.cert);
  fs.writeFileSync(own, `${pems.cert.trim()}\n${pems.private.trim()}\n`);
  const base = { HAPROXY_BIND: '127.0.0.1:18081', REPLICA1: '127.0.0.1:8081', REPLICA2: '127.0.0.1:8082', REPLICA3: '127.0.0.1:8083' };
  const ok = check({ ...base, HAPROXY_REPLICA_CA_FILE: ca, HAPROXY_TLS_CERT: own });
  t.is(ok.status, 0, ok.output);
  // The files are really read: a missing one is an error naming it.
  const noCa = check({ ...base, HAPROXY_REPLICA_CA_FILE: path.join(dir, 'missing-ca.crt') });
  t.not(noCa.status, 0);
  t.regex(noCa.output, /missing-ca\.crt/);
  const noCert = check({ ...base, HAPROXY_TLS_CERT: path.join(dir, 'missing.pem') });
  t.not(noCert.status, 0);
  t.regex(noCert.output, /missing\.pem/);
});
