import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../util/errors';
import { DEFAULT_MAX_SUBTASKS_PER_JOB, DEFAULT_MAX_VERTICES_PER_JOB, MAX_ATTEMPTS, MAX_SUBTASKS_PER_JOB, MAX_TIMER_MS, MAX_VERTICES } from '../jobgraph/limits';
import type { RestartStrategyConfig, RestartStrategyType } from '../jobgraph/types';
import { DURATION_EXAMPLES, parseDurationMs } from '../util/duration';
import { FLINK_ALIASES, IGNORED_FLINK_KEYS as IGNORED_FLINK_KEYS_EXACT, ignoredFlinkKey, RESTART_STRATEGY_NAMES } from './flink-names';
import { readStateKey } from '../zk/sealed';
import { parseCommandTemplate } from '../util/command-template';
import { Credentials, CredentialsError, loadCredentialsFile } from '../security/credentials';
import { DEFAULT_PRIORITY_CLASS, DEFAULT_PRIORITY_CLASSES, MAX_PRIORITY, MIN_PRIORITY, PRIORITY_CLASS_NAME } from '../jobgraph/priority';

export type AllocationStrategy = 'spread' | 'score';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'silent';

/**
 * The configuration, keyed by the flat Flink-style names users write in YAML and `-D`, so the key in
 * an error, a runbook or `GET /config` is the same string everywhere. Durations are milliseconds
 * unless the comment says otherwise.
 */
export interface DispatcherConfig {
  /** Flink's HA services; ZooKeeper is the only kind here (the key exists so Flink configurations validate). */
  'high-availability.type': 'zookeeper';
  /** "host:port,host:port" */
  'high-availability.zookeeper.quorum': string;
  'high-availability.zookeeper.path.root': string;
  /** One path segment under path.root; separates clusters sharing an ensemble. A leading "/" (Flink's "/default") is dropped. */
  'high-availability.cluster-id': string;
  'high-availability.zookeeper.client.session-timeout': number;
  'high-availability.zookeeper.client.connection-timeout': number;
  'high-availability.zookeeper.client.tolerate-suspended-connections': boolean;
  /** "user:password" for ZooKeeper digest ACLs. Secret: never logged, redacted by publicConfig. */
  'high-availability.zookeeper.client.digest-auth'?: string;
  /**
   * A file holding digest-auth (one line "user:password"; keeps it out of command lines and config
   * files, e.g. a mounted secret); read at start-up, like the token files. Not together with digest-auth.
   */
  'high-availability.zookeeper.client.digest-auth-file'?: string;
  /**
   * ACL of every node the product creates (Flink's key): `open` (world:anyone, all permissions) or
   * `creator` (only the digest identity). Default `creator` when digest-auth (or its file) is set, else `open`.
   */
  'high-availability.zookeeper.client.acl': 'open' | 'creator';
  /** With the creator ACL, also let world:anyone read the nodes (zkCli without credentials). */
  'high-availability.zookeeper.client.acl-world-read': boolean;
  /**
   * File holding the cluster state key (trimmed content, at least 32 bytes, e.g. `openssl rand -hex 32`):
   * every record in ZooKeeper carries an HMAC-SHA256 under it (src/zk/sealed.ts). Required with the creator ACL.
   */
  'high-availability.zookeeper.state-key-file'?: string;
  'rest.bind-address': string;
  /** 0 = ephemeral: the REST layer learns the port when it listens. */
  'rest.port': number;
  /**
   * The URL standbys redirect to, without trailing "/". Derived from bind address and port unless
   * given; left unset when rest.port is 0 (use `advertisedRestUrl(config, boundPort)`).
   */
  'rest.advertised-url'?: string;
  /** Defaults to dispatcher.max-jobgraph-bytes. */
  'rest.max-body-bytes': number;
  /** How a standby answers leader-only requests: 307 to the leader's advertised URL, or proxy them to it. */
  'rest.standby-mode': 'redirect' | 'forward';
  /**
   * Graceful stop: after resigning, how long (ms) the REST port stays open answering 503 + Retry-After
   * (health 503, `Connection: close`) before it closes, so a load balancer's health checks take the
   * replica out before its port refuses connections. 0 closes at once.
   */
  'rest.shutdown-drain': number;
  'heartbeat.interval': number;
  'heartbeat.timeout': number;
  'jobstore.max-capacity': number;
  /** Seconds, as in Flink. */
  'jobstore.expiration-time': number;
  'taskmanager.numberOfTaskSlots': number;
  /** A TaskManager with no leader contact for this long stops its tasks. */
  'taskmanager.orphan-timeout': number;
  /** Where a TaskManager's RPC server (leader → TaskManager commands, task logs) listens. */
  'taskmanager.bind-address': string;
  /** 0 = ephemeral: the TaskManager registers the port it actually bound. */
  'taskmanager.rpc-port': number;
  /** The URL the leader reaches this TaskManager at (containers, NAT); derived from bind address and port unless given. */
  'taskmanager.advertised-url'?: string;
  /** Generated (host-pid-random) when absent; names the TaskManager in REST, logs and exceptions. */
  'taskmanager.id': string;
  /** Absolute path. */
  'taskmanager.data-dir': string;
  /** Runs tasks as this system user (uid/gid from `getent passwd`); absent: as the TaskManager's own user. */
  'taskmanager.task.user'?: string;
  /** Comma-separated absolute paths or globs (`*`, `**`, `?`) of the programs tasks may run; absent: any. */
  'taskmanager.command.allowed'?: string;
  /** Absolute path: the only directory `{"fromFile": ...}` job secrets may be read from. */
  'taskmanager.task.secrets-dir': string;
  /** Bytes one task log file may reach before it is rotated to `.1`. */
  'taskmanager.log.max-bytes': number;
  /** Files kept per task attempt (current plus rotated); the oldest beyond it is deleted. */
  'taskmanager.log.max-files': number;
  /** Logs of attempts that ended (last written) longer ago than this are deleted by a periodic sweep. */
  'taskmanager.log.retention': number;
  'jobmanager.reconcile-timeout': number;
  'dispatcher.max-parallelism': number;
  /** Vertices of one job (at most 1000). */
  'dispatcher.max-vertices-per-job': number;
  /** Sum of every vertex's parallelism in one job: bounds the job's stored progress (src/jobgraph/limits.ts). */
  'dispatcher.max-subtasks-per-job': number;
  'dispatcher.max-jobgraph-bytes': number;
  /** Admission: jobs not yet terminal (stored or being stored); beyond it POST /jobs answers 429. */
  'dispatcher.max-pending-jobs': number;
  /** Admission: bytes of stored JobGraph nodes of unfinished jobs; beyond it POST /jobs answers 429. */
  'dispatcher.max-stored-jobgraph-bytes': number;
  /** Admission: submissions per second, cluster-wide (token bucket refill rate). */
  'dispatcher.submission-rate': number;
  /** Admission: submissions allowed at once before the rate applies (token bucket size). */
  'dispatcher.submission-burst': number;
  /** Final job results kept in ZooKeeper (`/jobresults`); older ones are deleted by the leader. */
  'job-result-store.retention.max-count': number;
  /** Results older than this (by end time) are deleted too; unset = kept until max-count pushes them out. */
  'job-result-store.retention.max-age'?: number;
  'resourcemanager.allocation-strategy': AllocationStrategy;
  /**
   * Free slots kept for jobs of a priority class or higher, by class name (`urgent:2` or `{urgent: 2}`):
   * lower classes wait rather than take them. Empty: nothing reserved.
   */
  'resourcemanager.reserved-slots': Readonly<Record<string, number>>;
  /** The leader grows and shrinks the TaskManager pool (docs/ARCHITECTURE.md, "Autoscaling"). */
  'resourcemanager.autoscaler.enabled': boolean;
  /** `local`: TaskManager processes on the leader's host; `command`: the operator's scale-up/scale-down commands. */
  'resourcemanager.autoscaler.provider': 'local' | 'command';
  /** Fewest TaskManagers (taking work) the pool keeps. */
  'resourcemanager.autoscaler.min': number;
  /** Most TaskManagers the autoscaler grows the pool to; at least min. */
  'resourcemanager.autoscaler.max': number;
  /** Waiting slot requests beyond the free slots must persist this long before the pool grows. */
  'resourcemanager.autoscaler.scale-up-delay': number;
  /** A TaskManager must stand idle this long before it is drained. */
  'resourcemanager.autoscaler.scale-down-cooldown': number;
  /** A launch that has not registered after this no longer counts toward the pool; also bounds each provider call. */
  'resourcemanager.autoscaler.launch-timeout': number;
  /** `command` provider: program and arguments (no shell) with `{count}` (pool size asked for) and `{id}`. */
  'resourcemanager.autoscaler.command.scale-up'?: string;
  /** `command` provider: run once a drained TaskManager was released; same placeholders. */
  'resourcemanager.autoscaler.command.scale-down'?: string;
  /** Named job priorities, higher first (`{"low":0,"normal":50,"urgent":100}` or `low:0,normal:50,urgent:100`). */
  'scheduler.priority-classes': Readonly<Record<string, number>>;
  /** The class of a job that names no priority; one of scheduler.priority-classes. */
  'scheduler.default-priority-class': string;
  /** A job that cannot be placed may cancel running subtasks of strictly lower priority (they run again as new attempts). */
  'scheduler.preemption.enabled': boolean;
  'restart-strategy.type': RestartStrategyType;
  'restart-strategy.fixed-delay.attempts': number;
  'restart-strategy.fixed-delay.delay': number;
  'restart-strategy.exponential-delay.initial-backoff': number;
  'restart-strategy.exponential-delay.max-backoff': number;
  'restart-strategy.exponential-delay.backoff-multiplier': number;
  'restart-strategy.exponential-delay.attempts-before-reset-backoff': number;
  'restart-strategy.failure-rate.max-failures-per-interval': number;
  'restart-strategy.failure-rate.failure-rate-interval': number;
  'restart-strategy.failure-rate.delay': number;
  /**
   * Shared secret of the internal RPC (TaskManager ↔ leader). When set, every internal call carries it
   * and both sides refuse calls without it (401) or with another (403). Secret: redacted by publicConfig.
   */
  'security.internal.token'?: string;
  /** A file holding security.internal.token (keeps it out of command lines and config files); read at start-up. */
  'security.internal.token-file'?: string;
  /**
   * Shared secret of the client REST API: when set, every endpoint but the probes (/livez, /readyz,
   * /health), /metrics and the dashboard page needs it as a bearer token. Secret: redacted by publicConfig.
   */
  'security.rest.token'?: string;
  /** A file holding security.rest.token; read at start-up. */
  'security.rest.token-file'?: string;
  /**
   * YAML or JSON file of REST principals: token hashes (sha-256 hex) and client-certificate names →
   * principal and roles (viewer, submitter, operator, admin; src/security/credentials.ts). Read and
   * validated at start-up. Works alongside security.rest.token (the principal `rest-token`, role admin).
   */
  'security.rest.credentials-file'?: string;
  /**
   * Where audit lines go (JSON lines, appended, created 0600); unset: the process log, event `audit`.
   * Replicas audit REST actions and refusals and TaskManager registrations; TaskManagers their refused RPC requests.
   */
  'security.audit.file'?: string;
  /** TLS on the REST API (rest.port, which also carries the TaskManagers' calls to the leader): URLs become https. */
  'security.ssl.rest.enabled': boolean;
  /** PEM certificate (chain) the REST API presents; required when security.ssl.rest.enabled. */
  'security.ssl.rest.cert-file'?: string;
  /** PEM private key of security.ssl.rest.cert-file. */
  'security.ssl.rest.key-file'?: string;
  /** PEM CA certificate(s) of the REST certificate: TaskManagers trust it (with security.ssl.internal.ca-file) when they call the leader. */
  'security.ssl.rest.ca-file'?: string;
  /**
   * Mutual TLS on the internal RPC (TaskManager ↔ leader, both ways): every replica and TaskManager
   * presents security.ssl.internal.cert-file and accepts only peers whose certificate chains to
   * security.ssl.internal.ca-file. A TaskManager's certificate names its id (SAN URI
   * `urn:ha-dispatcher:taskmanager:<id>`, or CN). Needs security.ssl.rest.enabled on replicas.
   */
  'security.ssl.internal.enabled': boolean;
  /** PEM certificate for TLS server and client auth (extended key usage serverAuth and clientAuth). */
  'security.ssl.internal.cert-file'?: string;
  'security.ssl.internal.key-file'?: string;
  /** PEM CA certificate(s) the internal peers' certificates must chain to: the cluster CA. */
  'security.ssl.internal.ca-file'?: string;
  /**
   * The loudly named opt-out of the start-up refusal: a replica or TaskManager bound beyond loopback
   * without authentication (no token, no mutual TLS) refuses to start unless this is true.
   */
  'security.allow-unauthenticated-non-loopback': boolean;
  /** The one origin (e.g. https://ops.example.com) sent as Access-Control-Allow-Origin; absent: no CORS header. */
  'web.access-control-allow-origin'?: string;
  /** Generated (host-pid-random) when absent. */
  'replica.id': string;
  'log.level': LogLevel;
}

export type ConfigKey = keyof DispatcherConfig;

/** ZooKeeper refuses nodes of 1 MiB or more (jute.maxbuffer), and a job graph is stored in one node. */
export const ZOOKEEPER_NODE_LIMIT_BYTES = 1_048_576;

type KeyWithoutStaticDefault = 'rest.advertised-url' | 'taskmanager.advertised-url' | 'rest.max-body-bytes' | 'replica.id' | 'taskmanager.id' |
  'high-availability.zookeeper.client.digest-auth' | 'high-availability.zookeeper.client.acl' | 'high-availability.zookeeper.state-key-file' |
  'high-availability.zookeeper.client.digest-auth-file' |
  'security.internal.token' | 'security.internal.token-file' |
  'security.rest.token' | 'security.rest.token-file' | 'security.rest.credentials-file' | 'security.audit.file' | 'taskmanager.task.user' | 'taskmanager.command.allowed' |
  'job-result-store.retention.max-age' | 'resourcemanager.autoscaler.command.scale-up' | 'resourcemanager.autoscaler.command.scale-down' |
  'security.ssl.rest.cert-file' | 'security.ssl.rest.key-file' | 'security.ssl.rest.ca-file' |
  'security.ssl.internal.cert-file' | 'security.ssl.internal.key-file' | 'security.ssl.internal.ca-file' | 'web.access-control-allow-origin';

export const DEFAULTS: Readonly<Omit<DispatcherConfig, KeyWithoutStaticDefault>> = Object.freeze({
  'high-availability.type': 'zookeeper',
  'high-availability.zookeeper.quorum': '127.0.0.1:2181',
  'high-availability.zookeeper.path.root': '/ha-dispatcher',
  'high-availability.cluster-id': 'default',
  // 10 s from the session-timeout benchmark (BENCHMARKS.md, scenario 9): survives multi-second stalls, a crash costs ~10 s.
  'high-availability.zookeeper.client.session-timeout': 10_000,
  'high-availability.zookeeper.client.connection-timeout': 15_000,
  'high-availability.zookeeper.client.tolerate-suspended-connections': false,
  'high-availability.zookeeper.client.acl-world-read': false,
  'rest.bind-address': '127.0.0.1',
  'rest.port': 8081,
  'rest.standby-mode': 'redirect',
  // The HAProxy recipe marks a server down after 2 failed checks 500 ms apart (deploy/haproxy/haproxy.cfg).
  'rest.shutdown-drain': 1500,
  'heartbeat.interval': 10_000,
  'heartbeat.timeout': 50_000,
  'jobstore.max-capacity': 1000,
  'jobstore.expiration-time': 3600,
  'taskmanager.numberOfTaskSlots': 1,
  // Must outlast a leader failover (at least one session timeout plus recovery), or tasks die on every one.
  'taskmanager.orphan-timeout': 180_000,
  'taskmanager.bind-address': '127.0.0.1',
  'taskmanager.rpc-port': 0,
  'taskmanager.data-dir': path.join(os.tmpdir(), 'ha-dispatcher'),
  'taskmanager.task.secrets-dir': '/run/secrets',
  'taskmanager.log.max-bytes': 10 * 1024 * 1024,
  'taskmanager.log.max-files': 3,
  'taskmanager.log.retention': 7 * 86_400_000,
  'jobmanager.reconcile-timeout': 10_000,
  'dispatcher.max-parallelism': 128,
  'dispatcher.max-vertices-per-job': DEFAULT_MAX_VERTICES_PER_JOB,
  'dispatcher.max-subtasks-per-job': DEFAULT_MAX_SUBTASKS_PER_JOB,
  'dispatcher.max-jobgraph-bytes': 512_000,
  'dispatcher.max-pending-jobs': 5000,
  'dispatcher.max-stored-jobgraph-bytes': 64 * 1024 * 1024,
  'dispatcher.submission-rate': 200,
  'dispatcher.submission-burst': 1000,
  'job-result-store.retention.max-count': 1000,
  'resourcemanager.allocation-strategy': 'spread',
  'resourcemanager.reserved-slots': Object.freeze({}),
  'resourcemanager.autoscaler.enabled': false,
  'resourcemanager.autoscaler.provider': 'local',
  'resourcemanager.autoscaler.min': 1,
  'resourcemanager.autoscaler.max': 10,
  'resourcemanager.autoscaler.scale-up-delay': 10_000,
  'resourcemanager.autoscaler.scale-down-cooldown': 120_000,
  'resourcemanager.autoscaler.launch-timeout': 120_000,
  'scheduler.priority-classes': DEFAULT_PRIORITY_CLASSES,
  'scheduler.default-priority-class': DEFAULT_PRIORITY_CLASS,
  'scheduler.preemption.enabled': false,
  'restart-strategy.type': 'none',
  'restart-strategy.fixed-delay.attempts': 1,
  'restart-strategy.fixed-delay.delay': 1000,
  'restart-strategy.exponential-delay.initial-backoff': 1000,
  // Flink's default.
  'restart-strategy.exponential-delay.max-backoff': 300_000,
  'restart-strategy.exponential-delay.backoff-multiplier': 2.0,
  'restart-strategy.exponential-delay.attempts-before-reset-backoff': 10,
  'restart-strategy.failure-rate.max-failures-per-interval': 1,
  'restart-strategy.failure-rate.failure-rate-interval': 60_000,
  'restart-strategy.failure-rate.delay': 1000,
  'security.ssl.rest.enabled': false,
  'security.ssl.internal.enabled': false,
  'security.allow-unauthenticated-non-loopback': false,
  'log.level': 'info',
});

/** Keys whose values never leave the process. */
export const SECRET_KEYS: ReadonlySet<ConfigKey> = new Set<ConfigKey>(['high-availability.zookeeper.client.digest-auth', 'security.internal.token', 'security.rest.token']);

type Parser<T> = (value: unknown, key: string) => T;

const SEGMENT = /^[A-Za-z0-9_.-]{1,128}$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;

/** Parses raw values (YAML scalars or -D strings); the table's type ties each parser to its key's type. */
const PARSERS: { readonly [K in ConfigKey]-?: Parser<NonNullable<DispatcherConfig[K]>> } = {
  'high-availability.type': (value, key) => {
    const type = text(value, key).toLowerCase();
    if (type !== 'zookeeper') throw new ConfigError(key, `must be zookeeper: leader election and job storage here run on ZooKeeper only, got ${show(value)}`);
    return 'zookeeper';
  },
  'high-availability.zookeeper.quorum': quorum,
  'high-availability.zookeeper.path.root': zkRoot,
  'high-availability.cluster-id': (value, key) => {
    const id = text(value, key).replace(/^\//, '');
    if (!SEGMENT.test(id) || id === '.' || id === '..' || id === 'zookeeper') {
      throw new ConfigError(key, `must be one path segment of 1 to 128 letters, digits, "_", "." or "-" (not ".", ".." or "zookeeper"), got ${show(id)}`);
    }
    return id;
  },
  'high-availability.zookeeper.client.session-timeout': duration(1),
  'high-availability.zookeeper.client.connection-timeout': duration(1),
  'high-availability.zookeeper.client.tolerate-suspended-connections': bool,
  'high-availability.zookeeper.client.digest-auth': (value, key) => digestAuth(value, key),
  'high-availability.zookeeper.client.digest-auth-file': (value, key) => path.resolve(text(value, key)),
  'high-availability.zookeeper.client.acl': oneOf(['open', 'creator']),
  'high-availability.zookeeper.client.acl-world-read': bool,
  'high-availability.zookeeper.state-key-file': (value, key) => path.resolve(text(value, key)),
  'rest.bind-address': (value, key) => {
    const host = text(value, key);
    if (!isIP(host) && !HOST.test(host)) throw new ConfigError(key, `must be an IP address or host name, e.g. 0.0.0.0 or 127.0.0.1, got ${show(host)}`);
    return host;
  },
  'rest.port': int(0, 65535),
  'rest.advertised-url': advertisedUrl('http://dispatcher-1.example.com:8081', true),
  'taskmanager.advertised-url': advertisedUrl('http://taskmanager-1.example.com:6121', false),
  'rest.max-body-bytes': int(1),
  'rest.standby-mode': oneOf(['redirect', 'forward']),
  'rest.shutdown-drain': duration(0),
  'heartbeat.interval': duration(1),
  'heartbeat.timeout': duration(1),
  'jobstore.max-capacity': int(1),
  'jobstore.expiration-time': duration(1, 1000),
  'taskmanager.numberOfTaskSlots': int(1, 65536),
  'taskmanager.orphan-timeout': duration(1),
  'taskmanager.bind-address': (value, key) => {
    const host = text(value, key);
    if (!isIP(host) && !HOST.test(host)) throw new ConfigError(key, `must be an IP address or host name, e.g. 0.0.0.0 or 127.0.0.1, got ${show(host)}`);
    return host;
  },
  'taskmanager.rpc-port': int(0, 65535),
  'taskmanager.id': (value, key) => {
    const id = text(value, key);
    if (!SEGMENT.test(id)) throw new ConfigError(key, `must be 1 to 128 letters, digits, "_", "." or "-", got ${show(id)}`);
    return id;
  },
  'taskmanager.data-dir': (value, key) => path.resolve(text(value, key)),
  'taskmanager.task.user': (value, key) => {
    const user = text(value, key);
    if (!/^[a-z_][a-z0-9_-]{0,31}\$?$/i.test(user)) throw new ConfigError(key, `must be a system user name such as ha-task, got ${show(user)}`);
    return user;
  },
  'taskmanager.command.allowed': (value, key) => {
    const list = Array.isArray(value) ? value.map((v) => text(v, key)) : text(value, key).split(',').map((v) => v.trim()).filter(Boolean);
    const bad = list.find((p) => !p.startsWith('/') || p.includes(','));
    if (list.length === 0 || bad !== undefined) throw new ConfigError(key, `must be a list of absolute paths or globs, e.g. "/usr/bin/*,/opt/jobs/**", got ${show(bad ?? value)}`);
    return list.join(',');
  },
  'taskmanager.task.secrets-dir': (value, key) => path.resolve(text(value, key)),
  'taskmanager.log.max-bytes': int(1024),
  'taskmanager.log.max-files': int(1, 100),
  'taskmanager.log.retention': duration(1000),
  'jobmanager.reconcile-timeout': duration(1),
  'dispatcher.max-parallelism': int(1, 32768),
  'dispatcher.max-vertices-per-job': int(1, MAX_VERTICES),
  'dispatcher.max-subtasks-per-job': int(1, MAX_SUBTASKS_PER_JOB),
  'dispatcher.max-jobgraph-bytes': int(1, ZOOKEEPER_NODE_LIMIT_BYTES - 1, 'a job graph is stored in one ZooKeeper node, which must stay below 1 MiB'),
  'dispatcher.max-pending-jobs': int(1),
  'dispatcher.max-stored-jobgraph-bytes': int(1),
  'dispatcher.submission-rate': (value, key) => {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new ConfigError(key, `must be a number of submissions per second above 0, e.g. 200, got ${show(value)}`);
    return n;
  },
  'dispatcher.submission-burst': int(1),
  'job-result-store.retention.max-count': int(1),
  // Not a timer: any age up to ten years (a bare number means ms).
  'job-result-store.retention.max-age': (value, key) => {
    const ms = parseDurationMs(value, 1);
    if (ms === undefined || ms < 1000 || ms > 10 * 365 * 86_400_000) throw new ConfigError(key, `must be a duration between 1s and 3650d such as 7d or 12h, got ${show(value)}`);
    return ms;
  },
  'resourcemanager.allocation-strategy': oneOf(['spread', 'score']),
  'resourcemanager.reserved-slots': namedIntegers(0, 1_000_000, 'urgent:2'),
  'resourcemanager.autoscaler.enabled': bool,
  'resourcemanager.autoscaler.provider': oneOf(['local', 'command']),
  'resourcemanager.autoscaler.min': int(0, 10_000),
  'resourcemanager.autoscaler.max': int(1, 10_000),
  'resourcemanager.autoscaler.scale-up-delay': duration(0),
  'resourcemanager.autoscaler.scale-down-cooldown': duration(0),
  'resourcemanager.autoscaler.launch-timeout': duration(1000),
  'resourcemanager.autoscaler.command.scale-up': commandTemplate,
  'resourcemanager.autoscaler.command.scale-down': commandTemplate,
  'scheduler.priority-classes': namedIntegers(MIN_PRIORITY, MAX_PRIORITY, 'low:0,normal:50,urgent:100'),
  'scheduler.default-priority-class': (value, key) => {
    const name = text(value, key);
    if (!PRIORITY_CLASS_NAME.test(name)) throw new ConfigError(key, `must be a priority class name such as normal, got ${show(name)}`);
    return name;
  },
  'scheduler.preemption.enabled': bool,
  'restart-strategy.type': (value, key) => {
    const name = RESTART_STRATEGY_NAMES[typeof value === 'string' ? value.trim().toLowerCase() : ''];
    if (!name) throw new ConfigError(key, `must be one of none, fixed-delay, exponential-delay, failure-rate (or Flink's names: off, disable, fixeddelay, failurerate, exponentialdelay), got ${show(value)}`);
    return name as RestartStrategyType;
  },
  'restart-strategy.fixed-delay.attempts': int(0, MAX_ATTEMPTS),
  'restart-strategy.fixed-delay.delay': duration(0),
  'restart-strategy.exponential-delay.initial-backoff': duration(1),
  'restart-strategy.exponential-delay.max-backoff': duration(1),
  'restart-strategy.exponential-delay.backoff-multiplier': (value, key) => {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 1) throw new ConfigError(key, `must be a number of at least 1, e.g. 2.0, got ${show(value)}`);
    return n;
  },
  'restart-strategy.exponential-delay.attempts-before-reset-backoff': int(1, MAX_ATTEMPTS),
  'restart-strategy.failure-rate.max-failures-per-interval': int(1, MAX_ATTEMPTS),
  'restart-strategy.failure-rate.failure-rate-interval': duration(1),
  'restart-strategy.failure-rate.delay': duration(0),
  'security.internal.token': (value, key) => token(value, key),
  'security.internal.token-file': (value, key) => path.resolve(text(value, key)),
  'security.rest.token': (value, key) => token(value, key),
  'security.rest.token-file': (value, key) => path.resolve(text(value, key)),
  'security.rest.credentials-file': (value, key) => path.resolve(text(value, key)),
  'security.audit.file': (value, key) => path.resolve(text(value, key)),
  'security.ssl.rest.enabled': bool,
  'security.ssl.rest.cert-file': (value, key) => path.resolve(text(value, key)),
  'security.ssl.rest.key-file': (value, key) => path.resolve(text(value, key)),
  'security.ssl.rest.ca-file': (value, key) => path.resolve(text(value, key)),
  'security.ssl.internal.enabled': bool,
  'security.ssl.internal.cert-file': (value, key) => path.resolve(text(value, key)),
  'security.ssl.internal.key-file': (value, key) => path.resolve(text(value, key)),
  'security.ssl.internal.ca-file': (value, key) => path.resolve(text(value, key)),
  'security.allow-unauthenticated-non-loopback': bool,
  'web.access-control-allow-origin': (value, key) => {
    const raw = text(value, key);
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.origin !== raw.replace(/\/$/, '')) {
      throw new ConfigError(key, `must be one origin (scheme://host[:port], no path), e.g. https://ops.example.com, got ${show(raw)}`);
    }
    return url.origin;
  },
  'replica.id': (value, key) => {
    const id = text(value, key);
    if (!SEGMENT.test(id)) throw new ConfigError(key, `must be 1 to 128 letters, digits, "_", "." or "-", got ${show(id)}`);
    return id;
  },
  'log.level': oneOf(['error', 'warn', 'info', 'debug', 'silent']),
};

export const CONFIG_KEYS = Object.keys(PARSERS) as ConfigKey[];

/** The credentials file a validated configuration names, as read while validating (see `restCredentials`). */
const CREDENTIALS = new WeakMap<DispatcherConfig, Credentials>();

/**
 * The REST principals of security.rest.credentials-file (read once while validating; read again for a
 * config that was copied since), undefined when the key is unset.
 * @throws ConfigError when the file cannot be read or is invalid (every problem, each with its path).
 */
export function restCredentials(config: DispatcherConfig): Credentials | undefined {
  const file = config['security.rest.credentials-file'];
  if (file === undefined) return undefined;
  const known = CREDENTIALS.get(config);
  if (known) return known;
  try {
    return loadCredentialsFile(file);
  } catch (err) {
    if (err instanceof CredentialsError) throw new ConfigError('security.rest.credentials-file', err.message);
    throw err;
  }
}

/** Flink keys a validated configuration ignored (see `ignoredFlinkKeys`). */
const IGNORED = new WeakMap<DispatcherConfig, readonly string[]>();

/**
 * The one validator: turns raw flat key/values (from YAML, the environment, -D or code) into a full
 * config with defaults and derived values filled in. Flink's names of our keys are aliases
 * (src/config/flink-names.ts); Flink keys that configure nothing here are ignored and remembered
 * for `ignoredFlinkKeys`. Every problem is collected before throwing.
 * @throws ConfigError naming the key and what to change; with several problems, a ConfigErrorList of them all.
 */
export function validateConfig(raw: Readonly<Record<string, unknown>>): DispatcherConfig {
  const config: Record<string, unknown> = { ...DEFAULTS };
  const errors: ConfigError[] = [];
  const failed = new Set<string>();
  const ignored: string[] = [];
  /** Canonical key → the name the user set it under, to catch one setting given twice. */
  const setAs = new Map<string, string>();
  const attempt = (key: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      errors.push(err);
      failed.add(key);
    }
  };

  for (const [given, value] of Object.entries(raw)) {
    attempt(given, () => {
      const key = Object.hasOwn(PARSERS, given) ? given : Object.hasOwn(FLINK_ALIASES, given) ? FLINK_ALIASES[given] : undefined;
      if (key === undefined) {
        const why = ignoredFlinkKey(given);
        const typo = nearestKey(given);
        if (why === undefined || (typo !== undefined && !Object.hasOwn(IGNORED_FLINK_KEYS_EXACT, given))) throw new ConfigError(given, unknownKeyMessage(given));
        ignored.push(given);
        return;
      }
      // An empty value unsets the key, so `-D key=` or `key:` in YAML fall back to the default.
      if (value === undefined || value === null || value === '') return;
      const earlier = setAs.get(key);
      if (earlier !== undefined && earlier !== given) throw new ConfigError(given, `sets the same option as "${earlier}" (both mean ${key}); keep one`);
      setAs.set(key, given);
      config[key] = PARSERS[key as ConfigKey](value, given);
    });
  }
  const c = config as unknown as DispatcherConfig;
  const check = (keys: readonly string[], fn: () => void): void => {
    if (!keys.some((k) => failed.has(k) || failed.has(setAs.get(k) ?? k))) attempt(keys[0], fn);
  };

  check(['heartbeat.timeout', 'heartbeat.interval'], () => {
    if (c['heartbeat.timeout'] <= c['heartbeat.interval']) {
      throw new ConfigError('heartbeat.timeout', `must be greater than heartbeat.interval (${c['heartbeat.interval']} ms), got ${c['heartbeat.timeout']} ms; raise heartbeat.timeout or lower heartbeat.interval`);
    }
  });
  check(['taskmanager.orphan-timeout', 'high-availability.zookeeper.client.session-timeout'], () => {
    const session = c['high-availability.zookeeper.client.session-timeout'];
    if (c['taskmanager.orphan-timeout'] <= session) {
      throw new ConfigError('taskmanager.orphan-timeout', `must be greater than high-availability.zookeeper.client.session-timeout (${session} ms), got ${c['taskmanager.orphan-timeout']} ms: ` +
        'a leader failover takes at least one session timeout, and TaskManagers must keep their tasks running through it');
    }
  });
  check(['restart-strategy.exponential-delay.max-backoff', 'restart-strategy.exponential-delay.initial-backoff'], () => {
    const initial = c['restart-strategy.exponential-delay.initial-backoff'];
    if (c['restart-strategy.exponential-delay.max-backoff'] < initial) {
      throw new ConfigError('restart-strategy.exponential-delay.max-backoff', `must be at least restart-strategy.exponential-delay.initial-backoff (${initial} ms), got ${c['restart-strategy.exponential-delay.max-backoff']} ms`);
    }
  });

  check(['scheduler.default-priority-class', 'scheduler.priority-classes'], () => {
    const classes = c['scheduler.priority-classes'];
    if (!Object.hasOwn(classes, c['scheduler.default-priority-class'])) {
      throw new ConfigError('scheduler.default-priority-class', `must be one of scheduler.priority-classes (${Object.keys(classes).join(', ') || 'none'}), got ${show(c['scheduler.default-priority-class'])}`);
    }
  });
  check(['resourcemanager.reserved-slots', 'scheduler.priority-classes'], () => {
    const unknown = Object.keys(c['resourcemanager.reserved-slots']).filter((name) => !Object.hasOwn(c['scheduler.priority-classes'], name));
    if (unknown.length > 0) {
      throw new ConfigError('resourcemanager.reserved-slots', `names ${unknown.join(', ')}, not in scheduler.priority-classes (${Object.keys(c['scheduler.priority-classes']).join(', ') || 'none'})`);
    }
  });

  check(['resourcemanager.autoscaler.max', 'resourcemanager.autoscaler.min'], () => {
    if (c['resourcemanager.autoscaler.max'] < c['resourcemanager.autoscaler.min']) {
      throw new ConfigError('resourcemanager.autoscaler.max', `must be at least resourcemanager.autoscaler.min (${c['resourcemanager.autoscaler.min']}), got ${c['resourcemanager.autoscaler.max']}`);
    }
  });
  check(['resourcemanager.autoscaler.provider', 'resourcemanager.autoscaler.enabled', 'resourcemanager.autoscaler.command.scale-up', 'resourcemanager.autoscaler.command.scale-down', 'security.ssl.internal.enabled'], () => {
    if (!c['resourcemanager.autoscaler.enabled']) return;
    if (c['resourcemanager.autoscaler.provider'] === 'command') {
      const missing = (['resourcemanager.autoscaler.command.scale-up', 'resourcemanager.autoscaler.command.scale-down'] as const).filter((k) => c[k] === undefined);
      if (missing.length > 0) throw new ConfigError('resourcemanager.autoscaler.provider', `is command, so ${missing.join(' and ')} must be set, e.g. kubectl scale statefulset/taskmanager --replicas={count}`);
    } else if (c['security.ssl.internal.enabled']) {
      throw new ConfigError('resourcemanager.autoscaler.provider', 'is local, which starts TaskManagers without certificates of their own; with security.ssl.internal.enabled use the command provider (each TaskManager needs a certificate naming its id)');
    }
  });

  // Secrets given as files: read now, so a bad file stops the start, and the value lands under its own (redacted) key.
  for (const [key, fileKey, read] of SECRET_FILES) {
    const file = c[fileKey];
    if (file === undefined || failed.has(fileKey) || failed.has(key)) continue;
    attempt(fileKey, () => {
      if (c[key] !== undefined) throw new ConfigError(fileKey, `is set together with ${key}; keep one (the file keeps the secret out of config files and command lines)`);
      c[key] = read(file, fileKey);
    });
  }
  const credentialsFile = c['security.rest.credentials-file'];
  if (credentialsFile !== undefined && !failed.has('security.rest.credentials-file')) {
    attempt('security.rest.credentials-file', () => {
      try {
        CREDENTIALS.set(c, loadCredentialsFile(credentialsFile));
      } catch (err) {
        if (err instanceof CredentialsError) throw new ConfigError('security.rest.credentials-file', err.message);
        throw err;
      }
    });
  }
  const digest = c['high-availability.zookeeper.client.digest-auth'];
  c['high-availability.zookeeper.client.acl'] ??= digest !== undefined ? 'creator' : 'open';
  // A digest-auth-file that failed was meant as the identity: its own error says what to fix.
  if (c['high-availability.zookeeper.client.acl'] === 'creator' && digest === undefined && !failed.has('high-availability.zookeeper.client.digest-auth-file')) {
    errors.push(new ConfigError('high-availability.zookeeper.client.acl', 'is "creator", which needs high-availability.zookeeper.client.digest-auth-file ' +
      '(or digest-auth: the identity the nodes belong to); set it or use "open"'));
  }
  for (const surface of ['rest', 'internal'] as const) {
    const enabled = `security.ssl.${surface}.enabled` as const;
    if (!c[enabled]) continue;
    const needed = surface === 'rest' ? (['cert-file', 'key-file'] as const) : (['cert-file', 'key-file', 'ca-file'] as const);
    const keys = needed.map((k) => `security.ssl.${surface}.${k}` as const);
    check([enabled, ...keys], () => {
      const missing = keys.filter((k) => c[k] === undefined);
      if (missing.length > 0) throw new ConfigError(enabled, `is true, so ${missing.join(' and ')} must be set (PEM files)`);
    });
  }
  // TLS on: a plain-http URL would send tokens in clear, and a TLS port refuses it anyway.
  for (const [urlKey, tlsKey] of [['rest.advertised-url', 'security.ssl.rest.enabled'], ['taskmanager.advertised-url', 'security.ssl.internal.enabled']] as const) {
    check([urlKey, tlsKey], () => {
      const url = c[urlKey];
      if (c[tlsKey] && url !== undefined && !url.startsWith('https://')) throw new ConfigError(urlKey, `must be an https URL: ${tlsKey} is true, got ${show(url)}`);
    });
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new ConfigErrorList(errors);
  c['rest.max-body-bytes'] ??= c['dispatcher.max-jobgraph-bytes'];
  c['replica.id'] ??= generateReplicaId();
  c['taskmanager.id'] ??= generateReplicaId();
  if (c['rest.port'] !== 0) c['rest.advertised-url'] ??= deriveRestUrl(c['rest.bind-address'], c['rest.port'], c['security.ssl.rest.enabled']);
  IGNORED.set(c, ignored);
  return c;
}

/**
 * The Flink keys `config` was validated with that configure nothing here, in the order given. A
 * process logs them once at start-up (`config.ignored-flink-keys`, see `logIgnoredFlinkKeys`).
 */
export function ignoredFlinkKeys(config: DispatcherConfig): readonly string[] {
  return IGNORED.get(config) ?? [];
}

/** Logs the one start-up warning `config.ignored-flink-keys` when `config` ignored any Flink keys. */
export function logIgnoredFlinkKeys(config: DispatcherConfig, logger: { warn(event: string, fields: Record<string, unknown>): void }): void {
  const keys = ignoredFlinkKeys(config);
  if (keys.length > 0) {
    logger.warn('config.ignored-flink-keys', { keys: [...keys], reason: 'Flink options for features this product does not have; they have no effect here' });
  }
}

/** Several configuration problems at once; `errors` in the order found, `key` is the first one's. */
export class ConfigErrorList extends ConfigError {
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors[0].key, '');
    this.name = 'ConfigError';
    this.message = `${errors.length} problems:\n${errors.map((e) => `  - ${e.message}`).join('\n')}`;
  }
}

/** The URL other replicas redirect to (https with security.ssl.rest.enabled); pass the port actually bound (it differs when rest.port is 0). */
export function advertisedRestUrl(config: DispatcherConfig, boundPort: number): string {
  return config['rest.advertised-url'] ?? deriveRestUrl(config['rest.bind-address'], boundPort, config['security.ssl.rest.enabled']);
}

/**
 * The cluster state key (src/zk/sealed.ts), or null when state is unauthenticated. Called at start-up.
 * @throws ConfigError when the creator ACL is configured without a key file, or the file is unusable.
 */
export function clusterStateKey(config: DispatcherConfig): Buffer | null {
  const file = config['high-availability.zookeeper.state-key-file'];
  if (file === undefined) {
    if (config['high-availability.zookeeper.client.acl'] === 'creator') {
      throw new ConfigError('high-availability.zookeeper.state-key-file', 'is required with high-availability.zookeeper.client.acl "creator" (the default with digest-auth or digest-auth-file): ' +
        'write a key with e.g. "openssl rand -hex 32 > state.key" and give every replica and TaskManager the same file');
    }
    return null;
  }
  try {
    return readStateKey(file);
  } catch (err) {
    throw new ConfigError('high-availability.zookeeper.state-key-file', (err as Error).message);
  }
}

/** The cluster's ZooKeeper chroot: `<path.root>/<cluster-id>`. */
export function zookeeperNamespace(config: DispatcherConfig): string {
  return `${config['high-availability.zookeeper.path.root'].replace(/\/$/, '')}/${config['high-availability.cluster-id']}`;
}

/** The cluster-wide restart strategy, applied to jobs whose graph names none. */
export function clusterRestartStrategy(config: DispatcherConfig): RestartStrategyConfig {
  switch (config['restart-strategy.type']) {
    case 'none':
      return { type: 'none' };
    case 'fixed-delay':
      return { type: 'fixed-delay', attempts: config['restart-strategy.fixed-delay.attempts'], delayMs: config['restart-strategy.fixed-delay.delay'] };
    case 'exponential-delay':
      return {
        type: 'exponential-delay',
        initialBackoffMs: config['restart-strategy.exponential-delay.initial-backoff'],
        maxBackoffMs: config['restart-strategy.exponential-delay.max-backoff'],
        backoffMultiplier: config['restart-strategy.exponential-delay.backoff-multiplier'],
        attempts: config['restart-strategy.exponential-delay.attempts-before-reset-backoff'],
      };
    case 'failure-rate':
      return {
        type: 'failure-rate',
        maxFailuresPerInterval: config['restart-strategy.failure-rate.max-failures-per-interval'],
        failureRateIntervalMs: config['restart-strategy.failure-rate.failure-rate-interval'],
        delayMs: config['restart-strategy.failure-rate.delay'],
      };
  }
}

/** `http(s)://<host>:<port>` for a bind address (a wildcard address becomes the host name). */
export function deriveRestUrl(bindAddress: string, port: number, tls = false): string {
  // A wildcard address is where we listen, not where anyone can reach us.
  const host = ['0.0.0.0', '::', '[::]'].includes(bindAddress) ? os.hostname() : bindAddress;
  return `${tls ? 'https' : 'http'}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

function generateReplicaId(): string {
  const host = os.hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'replica';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Our key (or Flink alias) `key` is most likely a typo of, if any is close enough. */
function nearestKey(key: string): string | undefined {
  const lower = key.toLowerCase();
  return [...CONFIG_KEYS, ...Object.keys(FLINK_ALIASES)].map((k) => ({ k, d: editDistance(lower, k.toLowerCase()) }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(key.length / 6)))
    .sort((a, b) => a.d - b.d)[0]?.k;
}

function unknownKeyMessage(key: string): string {
  const near = nearestKey(key);
  const children = CONFIG_KEYS.filter((k) => k.startsWith(`${key}.`));
  const hint = near
    ? `did you mean "${near}"?`
    : children.length > 0
      ? `it only has sub-keys, e.g. "${children[0]}"`
      : 'check its spelling against the configuration reference or remove it';
  return `unknown key; ${hint}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

function show(value: unknown): string {
  if (value !== null && typeof value === 'object') return Array.isArray(value) ? 'a list' : 'a map';
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function text(value: unknown, key: string): string {
  // YAML reads `cluster-id: 2024` as a number; the user meant the string.
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') throw new ConfigError(key, `must be a string, got ${show(value)}`);
  return value.trim();
}

function int(min: number, max = Number.MAX_SAFE_INTEGER, why?: string): Parser<number> {
  return (value, key) => {
    const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new ConfigError(key, `must be an integer ${range}, got ${show(value)}${why ? `; ${why}` : ''}`);
    }
    return n;
  };
}

/** Durations are timer delays, so they stop at Node's timer limit. `bareUnitMs` 1000 means seconds. */
function duration(minMs: number, bareUnitMs = 1): Parser<number> {
  const unit = bareUnitMs === 1000 ? 's' : 'ms';
  return (value, key) => {
    const ms = parseDurationMs(value, bareUnitMs);
    if (ms === undefined) throw new ConfigError(key, `must be a duration such as ${DURATION_EXAMPLES} (a bare number means ${unit}), got ${show(value)}`);
    if (ms < minMs || ms > MAX_TIMER_MS) throw new ConfigError(key, `must be between ${minMs} ms and ${MAX_TIMER_MS} ms, got ${show(value)}`);
    if (ms % bareUnitMs !== 0) throw new ConfigError(key, `must be a whole number of seconds, got ${show(value)}`);
    return ms / bareUnitMs;
  };
}

/**
 * A map of class names to integers in [min, max]: a YAML map, a JSON object string, or `name:n,name:n`.
 * Keys must match PRIORITY_CLASS_NAME.
 */
function namedIntegers(min: number, max: number, example: string): Parser<Readonly<Record<string, number>>> {
  return (value, key) => {
    let entries: Array<[string, unknown]>;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) entries = Object.entries(value);
    else if (typeof value === 'string' && value.trim().startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        throw new ConfigError(key, `must be a JSON object of name: integer, or ${example}; got ${show(value)}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(key, `must be a JSON object of name: integer, or ${example}; got ${show(value)}`);
      entries = Object.entries(parsed);
    } else if (typeof value === 'string') {
      entries = value.split(',').map((part) => part.trim()).filter(Boolean).map((part) => {
        const at = part.lastIndexOf(':');
        if (at <= 0) throw new ConfigError(key, `must be name:integer pairs separated by commas, e.g. ${example}; got ${show(part)}`);
        return [part.slice(0, at).trim(), part.slice(at + 1).trim()];
      });
    } else throw new ConfigError(key, `must be name:integer pairs, e.g. ${example}; got ${show(value)}`);
    const result: Record<string, number> = {};
    for (const [name, raw] of entries) {
      if (!PRIORITY_CLASS_NAME.test(name)) throw new ConfigError(key, `class name ${show(name)} must be a letter then up to 63 letters, digits, "_" or "-"`);
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(key, `${name} must be an integer between ${min} and ${max}, got ${show(raw)}`);
      Object.defineProperty(result, name, { value: n, enumerable: true, writable: false });
    }
    return Object.freeze(result);
  };
}

/** A command template of the autoscaler's `command` provider, checked by parsing it (src/resources/autoscaler-providers.ts); kept as written. */
function commandTemplate(value: unknown, key: string): string {
  const template = text(value, key);
  try {
    parseCommandTemplate(template);
  } catch (err) {
    throw new ConfigError(key, `${(err as Error).message}, got ${show(template)}`);
  }
  return template;
}

function bool(value: unknown, key: string): boolean {
  if (typeof value === 'boolean') return value;
  const s = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (s === 'true' || s === 'false') return s === 'true';
  throw new ConfigError(key, `must be true or false, got ${show(value)}`);
}

function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (value, key) => {
    const s = typeof value === 'string' ? value.trim() : value;
    if (!values.includes(s as T)) throw new ConfigError(key, `must be one of ${values.join(', ')}, got ${show(value)}`);
    return s as T;
  };
}

function advertisedUrl(example: string, allowPath: boolean): Parser<string> {
  return (value, key) => {
    const raw = text(value, key);
    const url = URL.canParse(raw) ? new URL(raw) : undefined;
    const pathless = allowPath || url?.pathname === '/' || url?.pathname === '';
    if (!url || !['http:', 'https:'].includes(url.protocol) || url.search || url.hash || url.username || !pathless) {
      throw new ConfigError(key, `must be an http(s) URL without ${allowPath ? '' : 'path or '}query, e.g. ${example}, got ${show(raw)}`);
    }
    return url.href.replace(/\/+$/, '');
  };
}

function quorum(value: unknown, key: string): string {
  const servers = text(value, key).split(',').map((s) => s.trim());
  for (const server of servers) {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(server);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      throw new ConfigError(key, `must be a comma-separated list of host:port, e.g. "zk1:2181,zk2:2181,zk3:2181", got ${show(server)} in ${show(value)}`);
    }
  }
  return servers.join(',');
}

function zkRoot(value: unknown, key: string): string {
  const root = text(value, key);
  const segments = root.split('/').slice(1);
  const bad = segments.find((s) => !SEGMENT.test(s) || s === '.' || s === '..');
  if (!root.startsWith('/') || (root !== '/' && bad !== undefined) || segments[0] === 'zookeeper') {
    throw new ConfigError(key, `must be an absolute ZooKeeper path of letters, digits, "_", "." or "-" segments, not under /zookeeper, e.g. "/ha-dispatcher", got ${show(root)}`);
  }
  return root;
}

function token(value: unknown, key: string): string {
  // Never echo the value: it is a secret.
  if (typeof value !== 'string' || !/^[\x21-\x7e]{16,512}$/.test(value)) {
    throw new ConfigError(key, 'must be 16 to 512 printable characters without spaces, e.g. from `openssl rand -hex 32` (value not shown: it is secret)');
  }
  return value;
}

/** A secret key, the key naming the file that may hold it instead, and how that file's content is read. */
const SECRET_FILES: ReadonlyArray<readonly [
  'security.internal.token' | 'security.rest.token' | 'high-availability.zookeeper.client.digest-auth',
  'security.internal.token-file' | 'security.rest.token-file' | 'high-availability.zookeeper.client.digest-auth-file',
  (file: string, fileKey: string) => string,
]> = [
  ['security.internal.token', 'security.internal.token-file', (file, key) => token(readTokenFile(file, key), key)],
  ['security.rest.token', 'security.rest.token-file', (file, key) => token(readTokenFile(file, key), key)],
  ['high-availability.zookeeper.client.digest-auth', 'high-availability.zookeeper.client.digest-auth-file', readDigestAuthFile],
];

/** ZooKeeper's digest scheme: "user:password", the user without ":", neither with whitespace. */
const DIGEST_AUTH = /^[^:\s]+:\S+$/;

function digestAuth(value: unknown, key: string): string {
  // Never echo the value: it is a password.
  if (typeof value !== 'string' || !DIGEST_AUTH.test(value)) throw new ConfigError(key, 'must be "user:password" (value not shown: it is secret)');
  return value;
}

/** One line "user:password" (surrounding whitespace and the trailing newline trimmed); errors never show the content. */
function readDigestAuthFile(file: string, key: string): string {
  const content = readTokenFile(file, key);
  if (content === '') throw new ConfigError(key, `names an empty file (${file}); write one line "user:password" into it, e.g. printf 'ha-dispatcher:%s\\n' "$(openssl rand -hex 24)" > ${file}`);
  if (/[\r\n]/.test(content)) throw new ConfigError(key, `names a file of several lines (${file}); it must hold exactly one line "user:password"`);
  if (!DIGEST_AUTH.test(content)) throw new ConfigError(key, `names a file (${file}) that does not hold "user:password" (a user without ":" or spaces, ":", a password without spaces; content not shown: it is secret)`);
  return content;
}

function readTokenFile(file: string, key: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(key, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (${file}); create the file (readable by this process) or correct the path`);
  }
}

/** Whether a bind address is reachable only from this machine. */
export function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
