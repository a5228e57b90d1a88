/**
 * high-availability.zookeeper.client.digest-auth-file: the ZooKeeper digest identity read from a file
 * (a mounted secret), like the token files — parsed, validated, exclusive with digest-auth, redacted,
 * and handed to the TaskManager with the state key it needs to verify /leader/info.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigErrorList, clusterStateKey, loadConfig, publicConfig, validateConfig } from '../../src/config';
import { createApp } from '../../src/rest/app';
import { TaskManager } from '../../src/taskmanager/task-manager';
import { ConfigError } from '../../src/util/errors';
import { silentLogger } from '../../src/util/logger';
import { generateStateKey } from '../../src/zk/sealed';
import { fakeRestDeps } from '../helpers/fake-rest-deps';
import { inject } from '../helpers/in-process-http';

const KEY = 'high-availability.zookeeper.client.digest-auth';
const FILE_KEY = 'high-availability.zookeeper.client.digest-auth-file';
const PASSWORD = 'c0rrect-h0rse-battery';

const dir = mkdtempSync(path.join(os.tmpdir(), 'digest-auth-file-'));
let files = 0;
function secretFile(content: string): string {
  const file = path.join(dir, `secret-${files++}`);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** Asserts a ConfigError keyed by `key` whose message names it, matches `detail` and never shows the password. */
function rejects(t: import('ava').ExecutionContext, fn: () => unknown, key: string, detail: RegExp): ConfigError {
  const err = t.throws(fn, { instanceOf: ConfigError })!;
  t.is(err.key, key);
  t.true(err.message.includes(`"${key}"`), err.message);
  t.regex(err.message, detail);
  t.false(err.message.includes(PASSWORD), 'the secret is never shown');
  return err;
}

test('the file\'s one line (trailing newline trimmed) becomes digest-auth; the path is kept, resolved', (t) => {
  const file = secretFile(`ha:${PASSWORD}\n`);
  const config = validateConfig({ [FILE_KEY]: path.relative(process.cwd(), file) });
  t.is(config[KEY], `ha:${PASSWORD}`);
  t.is(config[FILE_KEY], file);
  t.is(validateConfig({ [FILE_KEY]: secretFile(`ha:${PASSWORD}`) })[KEY], `ha:${PASSWORD}`, 'no newline is fine too');
  t.is(validateConfig({ [FILE_KEY]: secretFile(`ha:${PASSWORD}\r\n`) })[KEY], `ha:${PASSWORD}`, 'a CRLF line end is trimmed');
  t.is(validateConfig({})[FILE_KEY], undefined, 'unset by default');
});

test('with the file, the ACL defaults to creator exactly as with digest-auth; acl: open still wins when asked for', (t) => {
  const file = secretFile(`ha:${PASSWORD}\n`);
  t.is(validateConfig({ [FILE_KEY]: file })['high-availability.zookeeper.client.acl'], 'creator');
  t.is(validateConfig({ [KEY]: `ha:${PASSWORD}` })['high-availability.zookeeper.client.acl'], 'creator');
  t.is(validateConfig({})['high-availability.zookeeper.client.acl'], 'open');
  t.is(validateConfig({ [FILE_KEY]: file, 'high-availability.zookeeper.client.acl': 'open' })['high-availability.zookeeper.client.acl'], 'open');
  // creator needs a state key, as with digest-auth; the error names the key and how to make one.
  const err = t.throws(() => clusterStateKey(validateConfig({ [FILE_KEY]: file })), { instanceOf: ConfigError })!;
  t.is(err.key, 'high-availability.zookeeper.state-key-file');
  t.regex(err.message, /digest-auth-file.*openssl rand -hex 32/);
  const keyFile = secretFile(`${generateStateKey()}\n`);
  t.is(clusterStateKey(validateConfig({ [FILE_KEY]: file, 'high-availability.zookeeper.state-key-file': keyFile }))!.length, 64);
});

test('acl: creator without any digest identity names the file key as the fix', (t) => {
  rejects(t, () => validateConfig({ 'high-availability.zookeeper.client.acl': 'creator' }), 'high-availability.zookeeper.client.acl', /needs high-availability\.zookeeper\.client\.digest-auth-file/);
});

test('digest-auth and digest-auth-file together: one error naming both keys', (t) => {
  const err = rejects(t, () => validateConfig({ [KEY]: `ha:${PASSWORD}`, [FILE_KEY]: secretFile(`ha:${PASSWORD}\n`) }), FILE_KEY, /keep one/);
  t.true(err.message.includes(KEY), err.message);
  // Also when they come from different layers (file < environment < -D).
  const yaml = secretFile(`${FILE_KEY}: ${secretFile(`ha:${PASSWORD}\n`)}\n`);
  rejects(t, () => loadConfig({ file: yaml, env: {}, overrides: [`${KEY}=ha:${PASSWORD}`] }), FILE_KEY, /is set together with high-availability\.zookeeper\.client\.digest-auth;/);
});

test('a missing, empty, multi-line or malformed file is a config error naming the key, the file and what to write', (t) => {
  const missing = path.join(dir, 'no-such-digest');
  const err = rejects(t, () => validateConfig({ [FILE_KEY]: missing }), FILE_KEY, /cannot be read: ENOENT/);
  t.true(err.message.includes(missing), 'names the file');
  t.regex(err.message, /create the file|correct the path/);
  // A missing file does not also report "acl creator needs digest-auth": one problem, one error.
  t.false(err instanceof ConfigErrorList);
  const withCreator = t.throws(() => validateConfig({ [FILE_KEY]: missing, 'high-availability.zookeeper.client.acl': 'creator' }), { instanceOf: ConfigError })!;
  t.false(withCreator instanceof ConfigErrorList, withCreator.message);
  t.is(withCreator.key, FILE_KEY);

  rejects(t, () => validateConfig({ [FILE_KEY]: secretFile('') }), FILE_KEY, /empty file.*user:password.*openssl rand/);
  rejects(t, () => validateConfig({ [FILE_KEY]: secretFile('  \n\n') }), FILE_KEY, /empty file/);
  rejects(t, () => validateConfig({ [FILE_KEY]: secretFile(`ha:${PASSWORD}\nother:${PASSWORD}\n`) }), FILE_KEY, /several lines.*exactly one line/);
  for (const bad of [PASSWORD, `:${PASSWORD}`, 'ha:', `ha:${PASSWORD} x`, `h a:${PASSWORD}`]) {
    rejects(t, () => validateConfig({ [FILE_KEY]: secretFile(`${bad}\n`) }), FILE_KEY, /does not hold "user:password".*not shown/);
  }
  rejects(t, () => validateConfig({ [FILE_KEY]: dir }), FILE_KEY, /cannot be read: EISDIR/);
});

test('errors from several keys are all reported at once', (t) => {
  const err = t.throws(() => validateConfig({ [FILE_KEY]: secretFile(''), 'rest.port': -1 }), { instanceOf: ConfigErrorList })!;
  t.deepEqual((err as ConfigErrorList).errors.map((e) => e.key).sort(), [FILE_KEY, 'rest.port']);
});

test('the password from the file is redacted in publicConfig and GET /jobmanager/config; the path is shown', async (t) => {
  const file = secretFile(`ha:${PASSWORD}\n`);
  const shown = publicConfig(validateConfig({ [FILE_KEY]: file }));
  t.is(shown[KEY], '******');
  t.is(shown[FILE_KEY], file, 'the path is no secret');
  t.is(shown['high-availability.zookeeper.client.acl'], 'creator');
  t.false(JSON.stringify(shown).includes(PASSWORD));

  const handler = createApp(fakeRestDeps({ publicConfig: shown }).deps).callback();
  const res = await inject(handler, { path: '/jobmanager/config' });
  t.is(res.status, 200);
  const entries: Array<{ key: string; value: string }> = res.json();
  t.deepEqual(entries.find((e) => e.key === KEY), { key: KEY, value: '******' });
  t.deepEqual(entries.find((e) => e.key === FILE_KEY), { key: FILE_KEY, value: file });
  t.false(res.text.includes(PASSWORD));
});

test('a TaskManager gets the digest identity and state key from the files, and both files are its own protected secrets', (t) => {
  const file = secretFile(`ha:${PASSWORD}\n`);
  const keyFile = secretFile(`${generateStateKey()}\n`);
  const options = TaskManager.optionsFrom(validateConfig({ [FILE_KEY]: file, 'high-availability.zookeeper.state-key-file': keyFile }), silentLogger);
  t.is(options.zookeeper.digestAuth, `ha:${PASSWORD}`);
  t.is(options.zookeeper.stateKey?.length, 64);
  // Protected: refused as a task's {"fromFile"} secret, and checked against the task user's read access.
  t.true(options.secretFiles!.includes(file));
  t.true(options.secretFiles!.includes(keyFile));
});
