/**
 * A stock Flink HA configuration (flat `key: value` lines as in Flink's config.yaml): ZooKeeper
 * quorum, `high-availability.type`, `high-availability.storageDir`, a cluster-id with Flink's leading
 * "/", and the memory, checkpoint, state-backend and web keys every Flink deployment carries.
 */
export function flinkHaSnippet(quorum: string, clusterId = '/default'): string {
  return `# Flink HA on ZooKeeper
high-availability.type: zookeeper
high-availability.storageDir: hdfs:///flink/ha/
high-availability.zookeeper.quorum: ${quorum}
high-availability.zookeeper.path.root: /flink
high-availability.cluster-id: ${clusterId}
high-availability.zookeeper.client.retry-wait: 5 s
high-availability.zookeeper.client.max-retry-attempts: 3
high-availability.zookeeper.client.acl: open
jobmanager.memory.process.size: 1600m
taskmanager.memory.process.size: 1728m
taskmanager.numberOfTaskSlots: 2
parallelism.default: 1
execution.checkpointing.interval: 3min
state.backend.type: hashmap
state.checkpoints.dir: file:///tmp/flink-checkpoints
web.submit.enable: false
restart-strategy.type: fixeddelay
restart-strategy.fixed-delay.attempts: 3
restart-strategy.fixed-delay.delay: 1 s
`;
}

/** The keys of `flinkHaSnippet` that configure nothing here, in order. */
export const FLINK_HA_IGNORED_KEYS: readonly string[] = [
  'high-availability.storageDir',
  'high-availability.zookeeper.client.retry-wait',
  'high-availability.zookeeper.client.max-retry-attempts',
  'jobmanager.memory.process.size',
  'taskmanager.memory.process.size',
  'parallelism.default',
  'execution.checkpointing.interval',
  'state.backend.type',
  'state.checkpoints.dir',
  'web.submit.enable',
];

/** The snippet as `key=value` settings for `-D` (every line is flat). */
export function asSettings(snippet: string): string[] {
  return snippet.split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => {
    const i = l.indexOf(': ');
    return `${l.slice(0, i)}=${l.slice(i + 2)}`;
  });
}
