/**
 * Prometheus metrics of one process. A registry per process object (not prom-client's global one)
 * so several replicas can live in one test process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface DispatcherMetrics {
  registry: Registry;
  isLeader: Gauge;
  epoch: Gauge;
  zkConnected: Gauge;
  zkOperationSeconds: Histogram;
  leadershipChanges: Counter;
  recoverySeconds: Histogram;
  failoverSeconds: Gauge;
  jobsByState: Gauge;
  submissions: Counter;
  redirects: Counter;
  quarantined: Gauge;
  taskManagers: Gauge;
  slotsTotal: Gauge;
  slotsAvailable: Gauge;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): DispatcherMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'ha_dispatcher_process_' });
  const registers = [registry];
  return {
    registry,
    isLeader: new Gauge({ name: 'ha_dispatcher_leader', help: '1 while this replica is the ready leader', registers }),
    epoch: new Gauge({ name: 'ha_dispatcher_leader_epoch', help: 'Epoch of the current term held by this replica (0 when standby)', registers }),
    zkConnected: new Gauge({ name: 'ha_dispatcher_zookeeper_connected', help: '1 while the ZooKeeper session is connected', registers }),
    zkOperationSeconds: new Histogram({
      name: 'ha_dispatcher_zookeeper_operation_seconds', help: 'ZooKeeper operation latency', labelNames: ['op', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5], registers,
    }),
    leadershipChanges: new Counter({ name: 'ha_dispatcher_leadership_changes_total', help: 'Grants and revocations', labelNames: ['change'], registers }),
    recoverySeconds: new Histogram({ name: 'ha_dispatcher_recovery_seconds', help: 'Time from leadership grant to ready', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers }),
    failoverSeconds: new Gauge({ name: 'ha_dispatcher_last_failover_seconds', help: 'Grant-to-ready time of the last term this replica led', registers }),
    jobsByState: new Gauge({ name: 'ha_dispatcher_jobs', help: 'Jobs known to the leader by state', labelNames: ['state'], registers }),
    submissions: new Counter({ name: 'ha_dispatcher_submissions_total', help: 'Job submissions by outcome', labelNames: ['outcome'], registers }),
    redirects: new Counter({ name: 'ha_dispatcher_redirects_total', help: 'Requests a standby redirected (307) or refused (503)', labelNames: ['outcome'], registers }),
    quarantined: new Gauge({ name: 'ha_dispatcher_quarantined_jobgraphs', help: 'Unreadable JobGraphs moved aside', registers }),
    taskManagers: new Gauge({ name: 'ha_dispatcher_taskmanagers', help: 'Registered TaskManagers', registers }),
    slotsTotal: new Gauge({ name: 'ha_dispatcher_slots_total', help: 'Slots offered by registered TaskManagers', registers }),
    slotsAvailable: new Gauge({ name: 'ha_dispatcher_slots_available', help: 'Free slots', registers }),
  };
}
