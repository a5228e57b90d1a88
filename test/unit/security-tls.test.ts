/**
 * Secure defaults and TLS, in-process: no CORS header unless configured, the Bearer scheme in any
 * case, no ZooKeeper session ids on /health, a token with a second line never echoed, the TLS config
 * keys, the start-up refusal of unauthenticated non-loopback binds, and requestJson over https with a
 * throwaway CA (server verification, mutual TLS, the certificate's TaskManager identity).
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Koa from 'koa';
import { createApp } from '../../src/rest/app';
import { validateConfig } from '../../src/config';
import { ConfigError } from '../../src/util/errors';
import { HttpTransportError, requestJson } from '../../src/http/client';
import { closeServer, createServer, listen } from '../../src/http/server';
import { requireAuthentication } from '../../src/config/secure-defaults';
import { generateCa, generateCertificate, Pem } from '../../src/security/certificates';
import { requireClientCertificate, verifiedPeer } from '../../src/security/tls';
import { silentLogger } from '../../src/util/logger';
import { fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

const TOKEN = 'a'.repeat(32);

test('no CORS header by default; web.access-control-allow-origin sends exactly that origin', async (t) => {
  const open = await inject(createApp(fakeRestDeps().deps).callback(), { path: '/livez' });
  t.false('access-control-allow-origin' in open.headers);
  const allowed = await inject(createApp(fakeRestDeps({ allowOrigin: 'https://ops.example.com' }).deps).callback(), { path: '/livez' });
  t.is(allowed.headers['access-control-allow-origin'], 'https://ops.example.com');
  t.regex(allowed.headers.vary ?? '', /Origin/);
  t.is(validateConfig({ 'web.access-control-allow-origin': 'https://ops.example.com/' })['web.access-control-allow-origin'], 'https://ops.example.com');
  t.throws(() => validateConfig({ 'web.access-control-allow-origin': 'https://ops.example.com/path' }), { instanceOf: ConfigError });
});

test('the Bearer scheme is case-insensitive', async (t) => {
  const handler = createApp(fakeRestDeps({ restToken: TOKEN }).deps).callback();
  for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
    t.is((await inject(handler, { path: '/jobs', headers: { authorization: `${scheme} ${TOKEN}` } })).status, 200, scheme);
  }
  t.is((await inject(handler, { path: '/jobs', headers: { authorization: `Basic ${TOKEN}` } })).status, 401);
});

test('/health shows no ZooKeeper session id', async (t) => {
  const f = fakeRestDeps();
  const health = await inject(createApp(f.deps).callback(), { path: '/health' });
  t.is(health.status, 200);
  t.deepEqual(Object.keys(health.json().zookeeper), ['state']);
  t.false(health.text.includes('sessionId'));
});

test('a token with a second line is refused without echoing it', async (t) => {
  const secret = 'first-line-secret-0123456789\nsecond-line-secret';
  const err = await t.throwsAsync(requestJson('GET', 'http://127.0.0.1:1/jobs', undefined, { token: secret, timeoutMs: 1000 }));
  t.regex(err!.message, /one line/);
  t.false(err!.message.includes('first-line-secret'));
  t.false(err!.message.includes('second-line-secret'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-token-'));
  fs.writeFileSync(path.join(dir, 'token'), secret);
  const configErr = t.throws(() => validateConfig({ 'security.rest.token-file': path.join(dir, 'token') }), { instanceOf: ConfigError });
  t.false(configErr!.message.includes('first-line-secret'));
});

test('TLS keys: files are required when enabled, advertised URLs must be https, derived URLs are https', (t) => {
  t.throws(() => validateConfig({ 'security.ssl.rest.enabled': true }), { message: /security\.ssl\.rest\.cert-file and security\.ssl\.rest\.key-file/ });
  t.throws(() => validateConfig({ 'security.ssl.internal.enabled': 'true', 'security.ssl.internal.cert-file': '/x.crt', 'security.ssl.internal.key-file': '/x.key' }),
    { message: /security\.ssl\.internal\.ca-file/ });
  const files = { 'security.ssl.rest.enabled': true, 'security.ssl.rest.cert-file': '/x.crt', 'security.ssl.rest.key-file': '/x.key' };
  t.throws(() => validateConfig({ ...files, 'rest.advertised-url': 'http://dispatcher-1:8081' }), { message: /rest\.advertised-url.*https/ });
  t.is(validateConfig({ ...files, 'rest.port': 8443 })['rest.advertised-url'], 'https://127.0.0.1:8443');
  t.throws(() => validateConfig({ 'security.ssl.internal.enabled': true, 'security.ssl.internal.cert-file': '/x.crt', 'security.ssl.internal.key-file': '/x.key',
    'security.ssl.internal.ca-file': '/ca.crt', 'taskmanager.advertised-url': 'http://tm-1:6121' }), { message: /taskmanager\.advertised-url.*https/ });
});

test('binding beyond loopback without authentication is refused, naming the keys; the opt-out only warns', (t) => {
  const surfaces = [{ name: 'the REST API', authenticated: false, keys: ['security.rest.token-file'] }];
  t.notThrows(() => requireAuthentication('rest.bind-address', '127.0.0.1', surfaces, false, silentLogger));
  const err = t.throws(() => requireAuthentication('rest.bind-address', '0.0.0.0', surfaces, false, silentLogger), { instanceOf: ConfigError });
  t.regex(err!.message, /rest\.bind-address.*security\.rest\.token-file.*security\.allow-unauthenticated-non-loopback/s);
  t.notThrows(() => requireAuthentication('rest.bind-address', '0.0.0.0', surfaces, true, silentLogger));
  t.notThrows(() => requireAuthentication('rest.bind-address', '0.0.0.0', [{ ...surfaces[0], authenticated: true }], false, silentLogger));
});

interface Pki { ca: Pem; server: Pem; tm1: Pem; replica: Pem; otherCa: Pem; foreign: Pem }
let pki: Promise<Pki> | undefined;
function certificates(): Promise<Pki> {
  pki ??= (async () => {
    const ca = await generateCa();
    const otherCa = await generateCa('someone else');
    return {
      ca, otherCa,
      server: await generateCertificate(ca, 'replica', 'r1'),
      tm1: await generateCertificate(ca, 'taskmanager', 'tm1'),
      replica: await generateCertificate(ca, 'replica', 'r2'),
      foreign: await generateCertificate(otherCa, 'taskmanager', 'tm1'),
    };
  })();
  return pki;
}

test('requestJson over https: the CA is verified, mutual TLS names the peer, a missing or foreign client certificate is refused', async (t) => {
  const { ca, server: serverPem, tm1, replica, otherCa, foreign } = await certificates();
  const app = new Koa();
  app.use(requireClientCertificate('security.ssl.internal.ca-file', new Set(['/livez'])));
  app.use((ctx) => { ctx.body = { peer: verifiedPeer(ctx) }; });
  const server = createServer({ cert: Buffer.from(serverPem.cert), key: Buffer.from(serverPem.key), clientCa: Buffer.from(ca.cert) });
  server.on('request', app.callback());
  await listen(server, 0, '127.0.0.1');
  t.teardown(() => closeServer(server));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;

  const asTm = await requestJson('GET', `${url}/x`, undefined, { tls: { ca: ca.cert, cert: tm1.cert, key: tm1.key } });
  t.is(asTm.status, 200);
  t.like(asTm.body.peer, { role: 'taskmanager', taskManagerId: 'tm1', commonName: 'tm1' });
  const asReplica = await requestJson('GET', `${url}/x`, undefined, { tls: { ca: ca.cert, cert: replica.cert, key: replica.key } });
  t.like(asReplica.body.peer, { role: 'replica', replicaId: 'r2' });
  t.is(asReplica.body.peer.taskManagerId, undefined, 'a replica certificate names no TaskManager');

  t.is((await requestJson('GET', `${url}/x`, undefined, { tls: { ca: ca.cert } })).status, 401, 'no client certificate');
  t.is((await requestJson('GET', `${url}/livez`, undefined, { tls: { ca: ca.cert } })).status, 200, 'open paths need none');
  t.is((await requestJson('GET', `${url}/x`, undefined, { tls: { ca: ca.cert, cert: foreign.cert, key: foreign.key } })).status, 401, 'a certificate of another CA');

  const untrusted = await t.throwsAsync(requestJson('GET', `${url}/x`, undefined, { tls: { ca: otherCa.cert } }), { instanceOf: HttpTransportError });
  t.regex(untrusted!.message, /SELF_SIGNED|UNABLE_TO_VERIFY|unable to verify|certificate/i);
  const plain = await t.throwsAsync(requestJson('GET', `${url.replace('https:', 'http:')}/livez`, undefined, { timeoutMs: 5000 }), { instanceOf: HttpTransportError });
  t.is(plain!.kind, 'network', 'plain http to a TLS port gets no answer');
});
