/**
 * The pure parts of trusted cluster state: the state seal (src/zk/sealed.ts), the leader URL check
 * (src/election/trust.ts) and where the CLI sends its REST token (src/client/rest-client.ts).
 */
import test from 'ava';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { canonicalJson, InvalidState, StateSeal, UNAUTHENTICATED_STATE } from '../../src/zk/sealed';
import { isSafeLeaderUrl } from '../../src/election/trust';
import { RestClient } from '../../src/client/rest-client';
import { CliError } from '../../src/client/rest-client';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef0123456789abcdef');

test('a sealed value opens under the same key and context, with its mac field removed', (t) => {
  const seal = new StateSeal(KEY);
  const bytes = seal.seal('jobgraph:a', { b: 1, a: { y: [1, 'x'], x: null } });
  t.regex(JSON.parse(bytes).mac, /^hmac-sha256:[0-9a-f]{64}$/);
  const opened = seal.open('jobgraph:a', '/jobgraphs/a', Buffer.from(bytes));
  t.deepEqual(opened, { ok: true, value: { b: 1, a: { y: [1, 'x'], x: null } } });
});

test('a changed value, another context, another key or no MAC is refused with a state.mac.invalid report', (t) => {
  const reports: InvalidState[] = [];
  const events: string[] = [];
  const logger = { error: (event: string) => events.push(event), warn() {}, info() {}, debug() {}, child() { return logger; } } as any;
  const seal = new StateSeal(KEY, { logger, onInvalid: (i) => reports.push(i) });
  const bytes = seal.seal('jobgraph:a', { command: 'true' });
  const tampered = bytes.replace('"true"', '"rm -rf /"');
  t.false(seal.open('jobgraph:a', '/jobgraphs/a', tampered).ok);
  t.false(seal.open('jobgraph:b', '/jobgraphs/b', bytes).ok);
  t.false(new StateSeal(Buffer.alloc(32, 7)).open('jobgraph:a', '/jobgraphs/a', bytes).ok);
  const unsealed = seal.open('jobgraph:a', '/jobgraphs/a', JSON.stringify({ command: 'true' }));
  t.false(unsealed.ok);
  t.regex((unsealed as { reason: string }).reason, /no MAC/);
  t.deepEqual(reports.map((r) => r.path), ['/jobgraphs/a', '/jobgraphs/b', '/jobgraphs/a']);
  t.deepEqual(events, ['state.mac.invalid', 'state.mac.invalid', 'state.mac.invalid']);
});

test('without a key nothing is sealed and anything that is a JSON object opens', (t) => {
  const bytes = UNAUTHENTICATED_STATE.seal('x', { a: 1, mac: 'old' });
  t.deepEqual(JSON.parse(bytes), { a: 1 });
  t.deepEqual(UNAUTHENTICATED_STATE.open('x', '/x', '{"a":1,"mac":"whatever"}'), { ok: true, value: { a: 1 } });
  t.false(UNAUTHENTICATED_STATE.open('x', '/x', '[1]').ok);
  t.throws(() => new StateSeal(Buffer.alloc(8)), { message: /at least 32 bytes/ });
});

test('canonical JSON sorts keys at every level and drops undefined fields', (t) => {
  t.is(canonicalJson({ b: [{ d: 1, c: 2 }], a: undefined, c: 'x' }), '{"b":[{"c":2,"d":1}],"c":"x"}');
});

test('only plain http(s) URLs without credentials or control characters are leader URLs', (t) => {
  t.true(isSafeLeaderUrl('http://127.0.0.1:8081'));
  t.true(isSafeLeaderUrl('https://dispatcher-1.example.com'));
  for (const bad of ['javascript:alert(1)', 'http://a\r\nSet-Cookie: x=1', 'ftp://x', 'http://user:pw@x', '/relative', '', 'http://x y', 42]) {
    t.false(isSafeLeaderUrl(bad), String(bad));
  }
});

interface Server { url: string; auth: Array<string | undefined>; close(): Promise<void> }

async function server(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Server> {
  const auth: Array<string | undefined> = [];
  const s = http.createServer((req, res) => { auth.push(req.headers.authorization); handler(req, res); });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, auth,
    close: () => new Promise((resolve) => { s.closeAllConnections(); s.close(() => resolve()); }),
  };
}

test('the CLI follows a vouched redirect (X-HA-Leader-*) with its token, and never sends it to an unvouched origin', async (t) => {
  const leader = await server((_req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"jobs":[]}'); });
  const stranger = await server((_req, res) => { res.setHeader('content-type', 'application/json'); res.end('{"stolen":true}'); });
  const vouching = await server((req, res) => {
    res.statusCode = 307;
    res.setHeader('Location', `${leader.url}${req.url}`);
    res.setHeader('X-HA-Leader-Id', 'r2');
    res.setHeader('X-HA-Leader-Epoch', '7');
    res.end();
  });
  const bare = await server((req, res) => { res.statusCode = 307; res.setHeader('Location', `${stranger.url}${req.url}`); res.end(); });
  try {
    const ok = await new RestClient({ url: vouching.url, token: 'sekret', deadlineMs: 5000 }).request('GET', '/jobs');
    t.is(ok.status, 200);
    t.deepEqual(leader.auth, ['Bearer sekret']);

    const err = await t.throwsAsync(new RestClient({ url: bare.url, token: 'sekret', deadlineMs: 1500 }).request('GET', '/jobs'));
    t.true(err instanceof CliError);
    t.regex(err!.message, /did not name as the cluster's leader/);
    t.deepEqual(stranger.auth, []);
  } finally {
    await Promise.all([leader.close(), stranger.close(), vouching.close(), bare.close()]);
  }
});
