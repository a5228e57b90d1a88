import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULTS, PROPERTIES_ENV, advertisedRestUrl, clusterRestartStrategy, loadConfig, parseDurationMs, publicConfig,
  validateConfig, zookeeperNamespace,
} from '../../src/config';
import { ConfigErrorList, ignoredFlinkKeys, logIgnoredFlinkKeys } from '../../src/config';
import { ConfigError } from '../../src/util/errors';
import { FLINK_HA_IGNORED_KEYS, flinkHaSnippet } from '../helpers/flink-config';
import { RecordingLogger } from '../helpers/fake-rest-deps';

const dir = mkdtempSync(path.join(os.tmpdir(), 'config-test-'));
let files = 0;
function yamlFile(text: string): string {
  const file = path.join(dir, `config-${files++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** Asserts a ConfigError whose message names `key` and matches `detail`. */
function rejects(t: import('ava').ExecutionContext, fn: () => unknown, key: string, detail?: RegExp): void {
  const err = t.throws(fn, { instanceOf: ConfigError });
  t.is(err?.key, key);
  t.true(err!.message.includes(`"${key}"`), err!.message);
  if (detail) t.regex(err!.message, detail);
}

test('defaults apply when nothing is configured', (t) => {
  const config = loadConfig({ env: {} });
  for (const [key, value] of Object.entries(DEFAULTS)) t.deepEqual(config[key as keyof typeof DEFAULTS], value, key);
  t.is(config['high-availability.zookeeper.quorum'], '127.0.0.1:2181');
  t.is(config['rest.max-body-bytes'], config['dispatcher.max-jobgraph-bytes']);
  t.is(config['rest.advertised-url'], 'http://127.0.0.1:8081');
  t.regex(config['replica.id'], /^[A-Za-z0-9_.-]+$/);
  t.is(config['high-availability.zookeeper.client.digest-auth'], undefined);
  t.is(zookeeperNamespace(config), '/ha-dispatcher/default');
  t.deepEqual(clusterRestartStrategy(config), { type: 'none' });
});

test('YAML file with flat keys', (t) => {
  const config = loadConfig({
    env: {},
    file: yamlFile([
      'high-availability.zookeeper.quorum: zk1:2181, zk2:2181,zk3:2181',
      'high-availability.cluster-id: 2024',
      'rest.port: 0',
      'heartbeat.interval: 2 s',
      'heartbeat.timeout: "10 s"',
      'high-availability.zookeeper.client.tolerate-suspended-connections: true',
      'restart-strategy.type: fixed-delay',
      'restart-strategy.fixed-delay.attempts: 3',
    ].join('\n')),
  });
  t.is(config['high-availability.zookeeper.quorum'], 'zk1:2181,zk2:2181,zk3:2181');
  t.is(config['high-availability.cluster-id'], '2024');
  t.is(config['heartbeat.interval'], 2000);
  t.is(config['heartbeat.timeout'], 10_000);
  t.true(config['high-availability.zookeeper.client.tolerate-suspended-connections']);
  t.is(config['rest.advertised-url'], undefined, 'an ephemeral port is only known after listening');
  t.is(advertisedRestUrl(config, 40123), 'http://127.0.0.1:40123');
  t.deepEqual(clusterRestartStrategy(config), { type: 'fixed-delay', attempts: 3, delayMs: 1000 });
});

test('YAML file with nested maps is flattened with dots', (t) => {
  const config = loadConfig({
    env: {},
    file: yamlFile(`
high-availability:
  cluster-id: prod
  zookeeper:
    path.root: /apps/dispatch
    client:
      session-timeout: 30 s
rest:
  port: 9000
  advertised-url: http://lb.example.com:9000/
restart-strategy:
  type: exponential-delay
  exponential-delay:
    initial-backoff: 100 ms
    backoff-multiplier: 1.5
`),
  });
  t.is(config['high-availability.cluster-id'], 'prod');
  t.is(config['high-availability.zookeeper.client.session-timeout'], 30_000);
  t.is(zookeeperNamespace(config), '/apps/dispatch/prod');
  t.is(config['rest.port'], 9000);
  t.is(config['rest.advertised-url'], 'http://lb.example.com:9000');
  t.deepEqual(clusterRestartStrategy(config), {
    type: 'exponential-delay', initialBackoffMs: 100, maxBackoffMs: 300_000, backoffMultiplier: 1.5, attempts: 10,
  });
});

test('-D overrides win over the environment, which wins over the file', (t) => {
  const file = yamlFile('rest.port: 9000\nheartbeat.interval: 1000\nlog.level: debug\n');
  const config = loadConfig({
    file,
    env: { [PROPERTIES_ENV]: 'rest.port: 9100\nheartbeat.interval: 500 ms' },
    overrides: ['rest.port=9200', '-Djobstore.max-capacity=5', 'high-availability.zookeeper.client.digest-auth=ops:s3cret=x'],
  });
  t.is(config['rest.port'], 9200);
  t.is(config['heartbeat.interval'], 500);
  t.is(config['log.level'], 'debug');
  t.is(config['jobstore.max-capacity'], 5);
  t.is(config['high-availability.zookeeper.client.digest-auth'], 'ops:s3cret=x');
});

test('an empty override unsets a key back to its default', (t) => {
  const config = loadConfig({ env: {}, file: yamlFile('rest.bind-address: 0.0.0.0\n'), overrides: ['rest.bind-address='] });
  t.is(config['rest.bind-address'], '127.0.0.1');
});

test('durations accept numbers (ms) and Flink-style unit strings', (t) => {
  t.is(parseDurationMs(1500), 1500);
  t.is(parseDurationMs('250'), 250);
  t.is(parseDurationMs('500 ms'), 500);
  t.is(parseDurationMs('10 s'), 10_000);
  t.is(parseDurationMs('10s'), 10_000);
  t.is(parseDurationMs('1 min'), 60_000);
  t.is(parseDurationMs('2 minutes'), 120_000);
  t.is(parseDurationMs('1 h'), 3_600_000);
  t.is(parseDurationMs('1 d'), 86_400_000);
  t.is(parseDurationMs('10 parsecs'), undefined);
  t.is(parseDurationMs('-5 s'), undefined);
  t.is(parseDurationMs('1.5 s'), undefined);
  t.is(parseDurationMs('10 constructor'), undefined);
  t.is(validateConfig({ 'jobstore.expiration-time': '2 h' })['jobstore.expiration-time'], 7200, 'expiration-time is in seconds');
  t.is(validateConfig({ 'jobstore.expiration-time': 90 })['jobstore.expiration-time'], 90);
  rejects(t, () => validateConfig({ 'jobstore.expiration-time': '1500 ms' }), 'jobstore.expiration-time', /whole number of seconds/);
  rejects(t, () => validateConfig({ 'heartbeat.interval': '10 sec0' }), 'heartbeat.interval', /duration such as/);
});

test('booleans accept true/false strings', (t) => {
  const key = 'high-availability.zookeeper.client.tolerate-suspended-connections';
  t.true(validateConfig({ [key]: 'TRUE' })[key]);
  t.false(validateConfig({ [key]: 'false' })[key]);
  rejects(t, () => validateConfig({ [key]: 'yes' }), key, /true or false/);
});

test('unknown keys are rejected with a suggestion', (t) => {
  rejects(t, () => validateConfig({ 'rest.prot': 8081 }), 'rest.prot', /did you mean "rest\.port"/);
  rejects(t, () => validateConfig({ 'taskmanager.numberoftaskslots': 2 }), 'taskmanager.numberoftaskslots', /did you mean "taskmanager\.numberOfTaskSlots"/);
  rejects(t, () => validateConfig({ 'restart-strategy': 'fixed-delay' }), 'restart-strategy', /restart-strategy\.type/);
  rejects(t, () => validateConfig({ 'metrics.reporter': 'prom' }), 'metrics.reporter', /unknown key/);
  rejects(t, () => loadConfig({ env: {}, file: yamlFile('__proto__: {rest.port: 1}\n') }), '__proto__.rest.port', /unknown key/);
  rejects(t, () => loadConfig({ env: {}, file: yamlFile('rest:\n  prot: 1\n') }), 'rest.prot', /did you mean/);
});

test('values of the wrong type name the key', (t) => {
  rejects(t, () => validateConfig({ 'rest.port': 'eighty' }), 'rest.port', /integer between 0 and 65535, got "eighty"/);
  rejects(t, () => validateConfig({ 'rest.port': 70000 }), 'rest.port', /between 0 and 65535/);
  rejects(t, () => validateConfig({ 'taskmanager.numberOfTaskSlots': 0 }), 'taskmanager.numberOfTaskSlots', /at least 1|between 1/);
  rejects(t, () => validateConfig({ 'dispatcher.max-parallelism': 1.5 }), 'dispatcher.max-parallelism', /integer/);
  rejects(t, () => validateConfig({ 'resourcemanager.allocation-strategy': 'random' }), 'resourcemanager.allocation-strategy', /spread, score/);
  rejects(t, () => validateConfig({ 'restart-strategy.type': 'fixed-delays' }), 'restart-strategy.type', /fixed-delay/);
  rejects(t, () => validateConfig({ 'log.level': ['info'] }), 'log.level', /got a list/);
  rejects(t, () => validateConfig({ 'high-availability.zookeeper.quorum': 'zk1,zk2:2181' }), 'high-availability.zookeeper.quorum', /host:port/);
  rejects(t, () => validateConfig({ 'high-availability.zookeeper.path.root': 'ha' }), 'high-availability.zookeeper.path.root', /absolute/);
  rejects(t, () => validateConfig({ 'rest.advertised-url': 'ftp://x' }), 'rest.advertised-url', /http\(s\) URL/);
  rejects(t, () => validateConfig({ 'restart-strategy.exponential-delay.backoff-multiplier': '0.5' }), 'restart-strategy.exponential-delay.backoff-multiplier', /at least 1/);
});

test('heartbeat.timeout must exceed heartbeat.interval', (t) => {
  rejects(t, () => validateConfig({ 'heartbeat.interval': '10 s', 'heartbeat.timeout': '10 s' }), 'heartbeat.timeout', /greater than heartbeat\.interval/);
  rejects(t, () => validateConfig({ 'heartbeat.timeout': 5000 }), 'heartbeat.timeout', /raise heartbeat\.timeout or lower heartbeat\.interval/);
});

test('cluster-id must be a single safe path segment', (t) => {
  for (const id of ['../x', '..', 'a/b', 'with space', 'zookeeper', 'x\u0000']) {
    rejects(t, () => validateConfig({ 'high-availability.cluster-id': id }), 'high-availability.cluster-id', /one path segment/);
  }
  t.is(validateConfig({ 'high-availability.cluster-id': 'team_a.prod-1' })['high-availability.cluster-id'], 'team_a.prod-1');
});

test('max-jobgraph-bytes must stay below the ZooKeeper node limit', (t) => {
  rejects(t, () => validateConfig({ 'dispatcher.max-jobgraph-bytes': 1_048_576 }), 'dispatcher.max-jobgraph-bytes', /ZooKeeper/);
  t.is(validateConfig({ 'dispatcher.max-jobgraph-bytes': 1_048_575 })['rest.max-body-bytes'], 1_048_575);
});

test('malformed -D overrides and files are reported', (t) => {
  rejects(t, () => loadConfig({ env: {}, overrides: ['foo'] }), 'foo', /-D key=value/);
  rejects(t, () => loadConfig({ env: {}, overrides: ['=1'] }), '=1', /-D key=value/);
  rejects(t, () => loadConfig({ env: {}, file: yamlFile('rest.port: 1\nrest:\n  port: 2\n') }), 'rest.port', /set twice/);
  rejects(t, () => loadConfig({ env: {}, file: yamlFile('rest.port: [1\n') }), '--config', /not valid YAML/);
  rejects(t, () => loadConfig({ env: {}, file: yamlFile('- a\n- b\n') }), '--config', /YAML map/);
  rejects(t, () => loadConfig({ env: {}, file: path.join(dir, 'missing.yaml') }), '--config', /cannot read/);
});

test('publicConfig is flat and redacts secrets', (t) => {
  const config = validateConfig({ 'high-availability.zookeeper.client.digest-auth': 'ops:hunter2' });
  const shown = publicConfig(config);
  t.is(shown['high-availability.zookeeper.client.digest-auth'], '******');
  t.is(shown['rest.port'], 8081);
  t.is(shown['heartbeat.timeout'], 50_000);
  t.false(JSON.stringify(shown).includes('hunter2'));
  t.false('high-availability.zookeeper.client.digest-auth' in publicConfig(validateConfig({})));
  const err = t.throws(() => validateConfig({ 'high-availability.zookeeper.client.digest-auth': 'no-colon-hunter2' }));
  t.false(err!.message.includes('hunter2'), 'a rejected secret is not echoed');
});

for (const surface of ['internal', 'rest'] as const) {
  const key = `security.${surface}.token` as const;
  const fileKey = `security.${surface}.token-file` as const;
  test(`${key}: from the key or a file (trimmed), never both, at least 16 characters, redacted in GET /config`, (t) => {
    const token = 'a3f1c9e07b2d4e6f8a1b';
    t.is(validateConfig({ [key]: token })[key], token);
    const file = yamlFile(`${token}\n`);
    const fromFile = validateConfig({ [fileKey]: file });
    t.is(fromFile[key], token);
    t.is(fromFile[fileKey], file);
    const shown = publicConfig(fromFile);
    t.is(shown[key], '******');
    t.is(shown[fileKey], file, 'the path is no secret');
    t.is(validateConfig({})[key], undefined, 'unset by default (open, for local use)');

    rejects(t, () => validateConfig({ [key]: 'short-secret' }), key, /16 to 512 printable characters/);
    const err = t.throws(() => validateConfig({ [key]: 'has spaces in the middle' }), { instanceOf: ConfigError });
    t.false(err!.message.includes('has spaces'), 'the value is not echoed');
    rejects(t, () => validateConfig({ [key]: token, [fileKey]: file }), fileKey, /keep one/);
    rejects(t, () => validateConfig({ [fileKey]: path.join(dir, 'missing-token') }), fileKey, /cannot be read: ENOENT/);
    rejects(t, () => validateConfig({ [fileKey]: yamlFile('tiny\n') }), fileKey, /16 to 512/);
  });
}

test('a stock Flink HA configuration validates, with exactly one warning listing the ignored Flink keys', (t) => {
  const config = loadConfig({ env: {}, file: yamlFile(flinkHaSnippet('zk1:2181,zk2:2181,zk3:2181')) });
  t.is(config['high-availability.type'], 'zookeeper');
  t.is(config['high-availability.cluster-id'], 'default', 'Flink\'s leading "/" is dropped');
  t.is(zookeeperNamespace(config), '/flink/default');
  t.is(config['taskmanager.numberOfTaskSlots'], 2);
  t.deepEqual(clusterRestartStrategy(config), { type: 'fixed-delay', attempts: 3, delayMs: 1000 });
  t.deepEqual(ignoredFlinkKeys(config), FLINK_HA_IGNORED_KEYS);
  const logger = new RecordingLogger();
  logIgnoredFlinkKeys(config, logger);
  t.deepEqual(logger.events.map((e) => [e.level, e.event]), [['warn', 'config.ignored-flink-keys']]);
  t.deepEqual(logger.events[0].fields.keys, FLINK_HA_IGNORED_KEYS);
  for (const key of FLINK_HA_IGNORED_KEYS) t.false(key in publicConfig(config), `${key} is not shown as configuration`);

  const plain = new RecordingLogger();
  logIgnoredFlinkKeys(validateConfig({ 'rest.port': 1 }), plain);
  t.deepEqual(plain.events, [], 'no warning without ignored keys');
});

test('Flink\'s names are aliases of ours; the configuration shows the canonical name', (t) => {
  const config = validateConfig({
    'taskmanager.rpc.port': '6122', 'taskmanager.bind-host': '0.0.0.0', 'taskmanager.resource-id': 'tm-a',
    'rest.bind-port': '9081', 'rest.server.max-content-length': 4096, 'high-availability': 'ZooKeeper',
  });
  t.like(config, {
    'taskmanager.rpc-port': 6122, 'taskmanager.bind-address': '0.0.0.0', 'taskmanager.id': 'tm-a', 'rest.port': 9081,
    'rest.max-body-bytes': 4096, 'high-availability.type': 'zookeeper',
  });
  const shown = publicConfig(config);
  t.is(shown['rest.port'], 9081);
  t.false('rest.bind-port' in shown);
  rejects(t, () => validateConfig({ 'rest.port': 1, 'rest.bind-port': 2 }), 'rest.bind-port', /same option as "rest\.port".*keep one/);
  rejects(t, () => validateConfig({ 'taskmanager.rpc.port': 'x' }), 'taskmanager.rpc.port', /integer/);
  rejects(t, () => validateConfig({ 'high-availability.type': 'kubernetes' }), 'high-availability.type', /ZooKeeper only/);
});

test('restart strategy names: ours and Flink\'s, in any case', (t) => {
  const type = (name: string): string => validateConfig({ 'restart-strategy.type': name })['restart-strategy.type'];
  t.deepEqual(['none', 'off', 'disable', 'NONE'].map(type), ['none', 'none', 'none', 'none']);
  t.deepEqual(['fixeddelay', 'fixed-delay', 'FixedDelay'].map(type), ['fixed-delay', 'fixed-delay', 'fixed-delay']);
  t.deepEqual(['failurerate', 'failure-rate'].map(type), ['failure-rate', 'failure-rate']);
  t.deepEqual(['exponentialdelay', 'exponential-delay'].map(type), ['exponential-delay', 'exponential-delay']);
});

test('exponential-delay.max-backoff defaults to Flink\'s 5 min', (t) => {
  t.is(DEFAULTS['restart-strategy.exponential-delay.max-backoff'], 300_000);
});

test('every configuration problem is reported at once; typos of our keys are rejected even among Flink families', (t) => {
  const err = t.throws(() => validateConfig({
    'rest.prot': 1, 'heartbeat.interval': 'soon', 'high-availability.zookeeper.path.roots': '/x', 'state.backend.type': 'rocksdb',
  }), { instanceOf: ConfigErrorList }) as ConfigErrorList;
  t.deepEqual(err.errors.map((e) => e.key), ['rest.prot', 'heartbeat.interval', 'high-availability.zookeeper.path.roots']);
  t.is(err.key, 'rest.prot');
  t.regex(err.message, /3 problems/);
  t.regex(err.message, /did you mean "rest\.port"/);
  t.regex(err.message, /"heartbeat\.interval": must be a duration/);
  t.regex(err.message, /did you mean "high-availability\.zookeeper\.path\.root"/);
  // A cross-key check is skipped when one of its keys is already wrong (no follow-on noise).
  const one = t.throws(() => validateConfig({ 'heartbeat.timeout': 'x', 'heartbeat.interval': 1000 }), { instanceOf: ConfigError });
  t.false(one instanceof ConfigErrorList);
  t.is(one!.key, 'heartbeat.timeout');
});
