/** The REST credentials file: what a valid one maps, and every problem of a bad one at once, each with its path. */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CredentialsError, hashToken, loadCredentialsFile, parseCredentials } from '../../src/security/credentials';
import { validateConfig, restCredentials } from '../../src/config';
import { grants, highestRole } from '../../src/security/roles';

const ALICE = 'alice-token-0123456789abcdef';
const OPS = 'ops-token-0123456789abcdef01';

test('a valid file maps token hashes and certificate names to principals with their highest role', (t) => {
  const creds = parseCredentials([
    'principals:',
    `  - name: alice`,
    `    roles: [viewer, submitter]`,
    `    token-sha256: [${hashToken(ALICE)}]`,
    `  - { name: ops, roles: [operator], token-sha256: ["${hashToken(OPS)}"], certificates: [ops.example.com, "urn:ha-dispatcher:user:ops"] }`,
  ].join('\n'), 'creds.yaml');
  t.deepEqual(creds.byTokenHash.get(hashToken(ALICE)), { name: 'alice', role: 'submitter' });
  t.deepEqual(creds.byTokenHash.get(hashToken(OPS)), { name: 'ops', role: 'operator' });
  t.deepEqual(creds.byCertificate.get('urn:ha-dispatcher:user:ops'), { name: 'ops', role: 'operator' });
  t.is(creds.byCertificate.get('alice'), undefined);
  t.deepEqual(creds.principals.map((p) => p.name), ['alice', 'ops']);
});

test('JSON is read too (a YAML subset)', (t) => {
  const creds = parseCredentials(JSON.stringify({ principals: [{ name: 'ci', roles: ['admin'], 'token-sha256': [hashToken(ALICE)] }] }), 'creds.json');
  t.is(creds.byTokenHash.get(hashToken(ALICE))?.role, 'admin');
});

test('a bad file reports every problem at once, each with its path', (t) => {
  const text = [
    'principals:',
    '  - name: alice',
    '    roles: [viewer, superuser]',           // unknown role
    '    token-sha256: [NOT-A-HASH]',           // not hex
    '    colour: blue',                         // unknown key
    '  - roles: [viewer]',                      // no name
    '    certificates: [x]',
  ].join('\n');
  const err = t.throws(() => parseCredentials(text, 'creds.yaml'), { instanceOf: CredentialsError })!;
  t.deepEqual([...err.problems].sort(), [
    '/principals/0: unknown key "colour"',
    '/principals/0/roles/1: must be one of viewer, submitter, operator, admin',
    '/principals/0/token-sha256/0: must be the sha-256 of a token as 64 lowercase hex characters (print it with `ha-dispatcher hash-token`)',
    '/principals/1: "name" is required',
  ].sort());
  t.regex(err.message, /^creds\.yaml: 4 problems:/);
  t.false(err.message.includes('NOT-A-HASH'), 'values are not echoed');
});

test('duplicates, reserved names and principals nothing authenticates are reported together', (t) => {
  const h = hashToken(ALICE);
  const text = JSON.stringify({ principals: [
    { name: 'alice', roles: ['viewer'], 'token-sha256': [h], certificates: ['alice'] },
    { name: 'alice', roles: ['admin'], 'token-sha256': [h], certificates: ['alice'] },
    { name: 'anonymous', roles: ['viewer'] },
  ] });
  const err = t.throws(() => parseCredentials(text, 'c'), { instanceOf: CredentialsError })!;
  t.deepEqual(err.problems, [
    '/principals/1/name: "alice" is already the name of /principals/0',
    '/principals/1/token-sha256/0: the same token is already given to /principals/0',
    '/principals/1/certificates/0: "alice" is already given to /principals/0',
    '/principals/2/name: "anonymous" is reserved (audit lines use it); choose another name',
    '/principals/2: has neither token-sha256 nor certificates, so nothing authenticates it',
  ]);
});

test('not YAML, not a map, or unreadable: one problem naming the file', (t) => {
  t.regex(t.throws(() => parseCredentials('principals: [', 'c.yaml'), { instanceOf: CredentialsError })!.message, /^c\.yaml: is not valid YAML or JSON/);
  t.deepEqual(t.throws(() => parseCredentials('- a\n- b', 'c.yaml'), { instanceOf: CredentialsError })!.problems, ['/: must be object']);
  t.regex(t.throws(() => loadCredentialsFile('/nonexistent/creds.yaml'), { instanceOf: CredentialsError })!.message, /cannot be read: ENOENT/);
});

test('hashToken: sha-256 hex of a well-formed token; refuses short or spaced ones without echoing them', (t) => {
  t.is(hashToken('abcdefabcdefabcdef0123'), '276517f9b606a4505ba128c83fb24a8a827930a5c2b8cc300b6464818f2811fa');
  const err = t.throws(() => hashToken('short'))!;
  t.false(err.message.includes('short'));
  t.throws(() => hashToken('has a space in it, sixteen+'));
});

test('roles are cumulative', (t) => {
  t.true(grants('admin', 'viewer'));
  t.true(grants('operator', 'submitter'));
  t.false(grants('submitter', 'operator'));
  t.false(grants('viewer', 'submitter'));
  t.is(highestRole(['viewer', 'operator', 'submitter']), 'operator');
});

test('security.rest.credentials-file is validated with the other keys: its problems are one ConfigError among all', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ha-creds-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'principals:\n  - { name: x, roles: [king] }\n');
  const err = t.throws(() => validateConfig({ 'security.rest.credentials-file': bad, 'heartbeat.interval': 'soon' }))!;
  t.regex(err.message, /2 problems/);
  t.regex(err.message, /security\.rest\.credentials-file.*\/principals\/0\/roles\/0: must be one of/s);
  t.regex(err.message, /heartbeat\.interval/);

  const good = path.join(dir, 'good.yaml');
  fs.writeFileSync(good, `principals:\n  - { name: x, roles: [viewer], token-sha256: [${hashToken(ALICE)}] }\n`);
  const config = validateConfig({ 'security.rest.credentials-file': good, 'security.audit.file': path.join(dir, 'audit.jsonl') });
  t.is(restCredentials(config)?.byTokenHash.get(hashToken(ALICE))?.name, 'x');
  t.is(restCredentials({ ...config })?.principals.length, 1, 'a copied config reads the file again');
  t.is(restCredentials(validateConfig({})), undefined);
});
