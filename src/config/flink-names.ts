/**
 * Flink's configuration names, so a stock Flink `config.yaml` works here: the one table of Flink keys
 * that are aliases of ours (the value is used under our canonical key, which `GET /jobmanager/config`
 * shows), and the Flink keys this product has no use for (memory, state backends, checkpointing, the
 * web UI, blob storage ...), which are accepted and ignored with one start-up warning.
 */
import type { ConfigKey } from './options';

/** Flink key → our canonical key. */
export const FLINK_ALIASES: Readonly<Record<string, ConfigKey>> = Object.freeze({
  'high-availability': 'high-availability.type',
  'high-availability.mode': 'high-availability.type',
  'taskmanager.rpc.port': 'taskmanager.rpc-port',
  'taskmanager.bind-host': 'taskmanager.bind-address',
  'taskmanager.resource-id': 'taskmanager.id',
  'rest.bind-port': 'rest.port',
  'rest.server.max-content-length': 'rest.max-body-bytes',
});

/**
 * Flink keys accepted and ignored, with why. Exact keys; `IGNORED_FLINK_PREFIXES` covers whole families.
 * Keys whose concept exists here under another form name the key to use instead.
 */
export const IGNORED_FLINK_KEYS: Readonly<Record<string, string>> = Object.freeze({
  'high-availability.storageDir': 'job graphs and results are stored in ZooKeeper itself',
  'high-availability.storage-path': 'job graphs and results are stored in ZooKeeper itself',
  'high-availability.zookeeper.client.retry-wait': 'the ZooKeeper client reconnects on its own within the session timeout',
  'high-availability.zookeeper.client.max-retry-attempts': 'the ZooKeeper client reconnects on its own within the session timeout',
  'high-availability.jobmanager.port': 'replicas talk over rest.port only',
  'rest.address': 'use rest.advertised-url (a URL) for the address standbys redirect to',
  'taskmanager.host': 'use taskmanager.advertised-url (a URL) for the address the leader reaches a TaskManager at',
  'cluster.evenly-spread-out-slots': 'see resourcemanager.allocation-strategy (spread is the default)',
  'restart-strategy.exponential-delay.jitter-factor': 'backoffs here have no jitter',
  'restart-strategy.exponential-delay.reset-backoff-threshold': 'see restart-strategy.exponential-delay.attempts-before-reset-backoff',
  'parallelism.default': 'every vertex of a JobGraph states its parallelism',
  'io.tmp.dirs': 'see taskmanager.data-dir',
  'jobmanager.execution.failover-strategy': 'failed subtasks restart alone (region failover of independent tasks)',
  'jobmanager.archive.fs.dir': 'there is no history server',
  'metrics.reporters': 'metrics are served at GET /metrics (Prometheus)',
});

/** Families of Flink keys that configure what does not exist here (JVM memory, RPC, state, checkpoints ...). */
export const IGNORED_FLINK_PREFIXES: readonly string[] = Object.freeze([
  'jobmanager.memory.', 'taskmanager.memory.', 'jobmanager.rpc.', 'jobmanager.bind-host', 'jobmanager.adaptive-scheduler.', 'jobmanager.scheduler',
  'taskmanager.network.', 'taskmanager.cpu.', 'taskmanager.registration.', 'taskmanager.debug.', 'taskmanager.jvm-exit-on-oom',
  'state.', 'execution.', 'checkpointing.', 'web.', 'blob.', 'env.', 'akka.', 'pekko.', 'classloader.', 'metrics.reporter.', 'metrics.scope.',
  'security.ssl.', 'security.kerberos.', 'kubernetes.', 'yarn.', 'historyserver.', 'slot.', 'slotmanager.', 'pipeline.', 'table.', 'python.',
  'fs.', 's3.', 'query.', 'queryable-state.', 'cluster.', 'heartbeat.rpc-failure-threshold', 'resourcemanager.taskmanager-timeout', 'rest.client.',
  'rest.server.numThreads', 'rest.flamegraph.', 'rest.await-leader-timeout', 'rest.retry.', 'rest.connection-timeout', 'rest.idleness-timeout',
  'rest.profiling.', 'rest.async.', 'rest.cache.', 'high-availability.kubernetes.', 'high-availability.zookeeper.path.',
]);

/** Why a Flink key is ignored here, or undefined when it is not a Flink key this product knows to ignore. */
export function ignoredFlinkKey(key: string): string | undefined {
  if (Object.hasOwn(IGNORED_FLINK_KEYS, key)) return IGNORED_FLINK_KEYS[key];
  return IGNORED_FLINK_PREFIXES.some((p) => key.startsWith(p)) ? 'configures a Flink feature that does not exist here' : undefined;
}

/** Flink's names of the restart strategies (case-insensitive) → ours. */
export const RESTART_STRATEGY_NAMES: Readonly<Record<string, string>> = Object.freeze({
  none: 'none', off: 'none', disable: 'none', disabled: 'none', 'no-restart': 'none', norestart: 'none',
  'fixed-delay': 'fixed-delay', fixeddelay: 'fixed-delay',
  'failure-rate': 'failure-rate', failurerate: 'failure-rate',
  'exponential-delay': 'exponential-delay', exponentialdelay: 'exponential-delay',
});
