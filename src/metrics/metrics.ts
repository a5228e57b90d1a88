/**
 * Prometheus metrics of one dispatcher replica. A registry per process object (not prom-client's global
 * one) so several replicas can live in one test process. Names follow Prometheus conventions (base
 * units, `_total` only on counters, `_seconds`, `_timestamp_seconds`); `promtool check metrics` passes
 * on the exposition. Leader-only state (job counts, epoch, restarts) is read from the dispatcher at
 * scrape time, so a demoted replica stops exporting it at once. Every metric is listed in README.md.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Label values of `ha_dispatcher_leadership_changes_total`, all exported from start-up at 0. */
export const LEADERSHIP_CHANGES = ['granted', 'ready', 'revoked'] as const;
/** Label values of `ha_dispatcher_zookeeper_session_events_total` (LOST is reported as `expired`). */
export const SESSION_EVENTS = ['connected', 'suspended', 'reconnected', 'expired'] as const;
/**
 * Label values of `ha_dispatcher_submissions_total`: invalid = the graph failed validation, rejected = the
 * body was unreadable (size, JSON), in_progress = the same jobId is being stored right now, not_leader =
 * leadership ended during the submission.
 */
export const SUBMISSION_OUTCOMES = ['accepted', 'duplicate', 'invalid', 'rejected', 'conflict', 'unconfirmed', 'in_progress', 'not_leader', 'throttled'] as const;
/** Label values of `ha_dispatcher_autoscaler_decisions_total`, all exported from start-up at 0. */
export const AUTOSCALER_DIRECTIONS = ['up', 'down'] as const;
/** Label values of `ha_dispatcher_admission_rejections_total` and `ha_dispatcher_admission_limit`: the configuration keys. */
export const ADMISSION_LIMIT_KEYS = ['dispatcher.max-pending-jobs', 'dispatcher.max-stored-jobgraph-bytes', 'dispatcher.submission-rate'] as const;

/** What the metrics read from the Dispatcher on scrape (it satisfies this structurally). */
export interface DispatcherView {
  readonly role: 'standby' | 'recovering' | 'leader';
  readonly epoch: number | null;
  /** Jobs by visible status; may throw when not the ready leader. */
  jobCounts(): Record<string, number>;
  /** Per job `state` and `restarts` (Flink's numRestarts); may throw when not the ready leader. */
  jobsOverview(): Array<{ state: string; restarts: number }>;
  /** Admission usage and limits; may throw when not the ready leader. */
  admissionStatus?(): { pendingJobs: number; storedGraphBytes: number; limits: { maxPendingJobs: number; maxStoredGraphBytes: number; submissionRate: number } };
  /** Results held by the leader and the retention; may throw when not the ready leader. */
  resultRetentionStatus?(): { results: number; retention: { maxCount: number } };
}

export interface DispatcherMetrics {
  registry: Registry;
  isLeader: Gauge;
  epoch: Gauge;
  zkConnected: Gauge;
  zkOperationSeconds: Histogram;
  zkSessionEvents: Counter;
  leadershipChanges: Counter;
  leaderLastChange: Gauge;
  noReadyLeaderSeconds: Counter;
  recoverySeconds: Histogram;
  lastRecoverySeconds: Gauge;
  failoverSeconds: Histogram;
  lastFailoverSeconds: Gauge;
  jobsByState: Gauge;
  jobRestarts: Gauge;
  jobFailures: Counter;
  submissions: Counter;
  redirects: Counter;
  httpRequests: Counter;
  httpRequestSeconds: Histogram;
  quarantined: Gauge;
  pendingJobs: Gauge;
  storedGraphBytes: Gauge;
  admissionLimit: Gauge;
  admissionRejections: Counter;
  jobResults: Gauge;
  jobResultsDeleted: Counter;
  /** Records read from ZooKeeper whose MAC did not verify (src/zk/sealed.ts), by seal context kind. */
  stateMacInvalid: Counter;
  taskManagers: Gauge;
  taskManagersLost: Counter;
  slots: Gauge;
  slotsAvailable: Gauge;
  /** The TaskManager pool size the leader's autoscaler last asked for (docs/ARCHITECTURE.md, "Autoscaling"). */
  autoscalerDesired: Gauge;
  /** Launches recorded but not registered yet. */
  autoscalerPendingLaunches: Gauge;
  /** Scaling decisions carried out, by `direction` (AUTOSCALER_DIRECTIONS). */
  autoscalerDecisions: Counter;
  autoscalerLaunchFailures: Counter;
  buildInfo: Gauge;
  /** Leader-only series come from `view` at scrape time; call once the Dispatcher exists. */
  bindDispatcher(view: DispatcherView): void;
  /**
   * Tells the metrics how to judge "a ready leader is known" (this replica leads, or `/leader/info`
   * names one while connected). Call `noteLeaderView()` whenever an input may have changed; the
   * no-ready-leader counter is brought up to date on every scrape too.
   */
  trackReadyLeader(view: () => { known: boolean; identity: string | null }): void;
  noteLeaderView(): void;
  /** A leadership transition of this replica: counts it and stamps the last-change time. */
  leadershipChanged(change: (typeof LEADERSHIP_CHANGES)[number]): void;
  /**
   * The replica became the ready leader; all times epoch-ms. Failover time runs from the earliest of
   * `leaderLastSeenAt` (the predecessor's last answer to this replica's liveness probes or forwarded
   * requests), `predecessorGoneAt` (its latch node seen to vanish) and `grantedAt` to `now`: a SIGKILLed
   * leader's latch node vanishes only once its session expires, long after clients saw errors.
   */
  leaderReady(times: { grantedAt: number; predecessorGoneAt?: number; leaderLastSeenAt?: number; now: number }): void;
}

export interface MetricsOptions {
  /** Standard `process_*` / `nodejs_*` metrics (unprefixed, so stock Node.js dashboards work). */
  defaultMetrics?: boolean;
  version?: string;
  /** Labels `ha_dispatcher_leader_epoch`. */
  replicaId?: string;
  now?: () => number;
}

/** prom-client's defaults include gauges ending in `_total` (sums of the labelled `nodejs_active_*`); promtool rejects them. */
const NONCONFORMING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Registers prom-client's default metrics under their standard names, minus the non-conforming ones. */
export function registerDefaultMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of NONCONFORMING_DEFAULTS) registry.removeSingleMetric(name);
}

export function createMetrics(options: MetricsOptions = {}): DispatcherMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) registerDefaultMetrics(registry);
  const registers = [registry];
  const now = options.now ?? Date.now;
  let dispatcher: DispatcherView | null = null;
  const leading = (): boolean => dispatcher?.role === 'leader';
  const admission = (): ReturnType<NonNullable<DispatcherView['admissionStatus']>> | null => {
    if (!leading()) return null;
    try { return dispatcher!.admissionStatus?.() ?? null; } catch { return null; /* leadership ended during the scrape */ }
  };

  let leaderView: (() => { known: boolean; identity: string | null }) | null = null;
  let lastIdentity: string | null | undefined;
  let noLeaderSince: number | null = null;

  const metrics: DispatcherMetrics = {
    registry,
    isLeader: new Gauge({
      name: 'ha_dispatcher_leader', help: '1 while this replica is the ready leader, else 0', registers,
      collect() { if (dispatcher) this.set(leading() ? 1 : 0); },
    }),
    epoch: new Gauge({
      // Labelled so the series can be absent: prom-client keeps an unlabelled gauge at 0 after reset().
      name: 'ha_dispatcher_leader_epoch', help: 'Epoch (fencing token) of the term this replica leads; absent unless ready leader',
      labelNames: ['replica_id'], registers,
      collect() {
        this.reset();
        const epoch = dispatcher?.epoch;
        if (leading() && typeof epoch === 'number') this.set({ replica_id: options.replicaId ?? 'unknown' }, epoch);
      },
    }),
    zkConnected: new Gauge({ name: 'ha_dispatcher_zookeeper_connected', help: '1 while the ZooKeeper session is connected', registers }),
    zkOperationSeconds: new Histogram({
      name: 'ha_dispatcher_zookeeper_operation_duration_seconds', help: 'ZooKeeper operation latency by operation and outcome (ok or error code)',
      labelNames: ['op', 'outcome'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5], registers,
    }),
    zkSessionEvents: new Counter({
      name: 'ha_dispatcher_zookeeper_session_events_total', help: 'ZooKeeper session state changes (connected, suspended, reconnected, expired)',
      labelNames: ['event'], registers,
    }),
    leadershipChanges: new Counter({
      name: 'ha_dispatcher_leadership_changes_total', help: 'Leadership transitions of this replica (granted, ready, revoked)', labelNames: ['change'], registers,
    }),
    leaderLastChange: new Gauge({
      name: 'ha_dispatcher_leader_last_change_timestamp_seconds', help: 'Unix time at which the ready leader this replica sees (itself, another, or none) last changed', registers,
    }),
    noReadyLeaderSeconds: new Counter({
      name: 'ha_dispatcher_no_ready_leader_seconds_total', help: 'Seconds this replica saw no ready leader (neither leading nor finding one in /leader/info while connected)', registers,
      collect() { metrics.noteLeaderView(); },
    }),
    recoverySeconds: new Histogram({
      name: 'ha_dispatcher_recovery_seconds', help: 'Time from leadership grant to publish (/leader/info written: the ready leader), i.e. the foreground recovery that lists and reads the stored jobs; recovered JobMasters start after it, in the background',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    }),
    lastRecoverySeconds: new Gauge({ name: 'ha_dispatcher_last_recovery_seconds', help: 'Grant-to-publish time (foreground recovery) of the last term this replica led', registers }),
    failoverSeconds: new Histogram({
      name: 'ha_dispatcher_failover_seconds', help: 'Time from the predecessor\'s last sign of life (last answer to this replica, or its latch node vanishing; else the grant) to ready',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers,
    }),
    lastFailoverSeconds: new Gauge({
      name: 'ha_dispatcher_last_failover_seconds', help: 'Predecessor-last-sign-of-life-to-ready time of the last term this replica led (grant-to-ready for a first election)', registers,
    }),
    jobsByState: new Gauge({
      name: 'ha_dispatcher_jobs', help: 'Jobs known to the ready leader by state; exported by the ready leader only', labelNames: ['state'], registers,
      collect() {
        this.reset();
        if (!leading()) return;
        try {
          for (const [state, count] of Object.entries(dispatcher!.jobCounts())) this.set({ state }, count);
        } catch { /* leadership ended during the scrape */ }
      },
    }),
    jobRestarts: new Gauge({
      name: 'ha_dispatcher_job_restarts', help: 'Sum of restarts (Flink numRestarts) of the unfinished jobs by job state; ready leader only',
      labelNames: ['state'], registers,
      collect() {
        this.reset();
        if (!leading()) return;
        try {
          const sums = new Map<string, number>();
          for (const j of dispatcher!.jobsOverview()) if (!TERMINAL.has(j.state)) sums.set(j.state, (sums.get(j.state) ?? 0) + j.restarts);
          for (const [state, sum] of sums) this.set({ state }, sum);
        } catch { /* leadership ended during the scrape */ }
      },
    }),
    jobFailures: new Counter({ name: 'ha_dispatcher_job_failures_total', help: 'Jobs this replica recorded as FAILED while leading', registers }),
    submissions: new Counter({ name: 'ha_dispatcher_submissions_total', help: 'Job submissions by outcome', labelNames: ['outcome'], registers }),
    redirects: new Counter({ name: 'ha_dispatcher_redirects_total', help: 'Leader-only requests a standby redirected (307), forwarded to the leader, or refused (503)', labelNames: ['outcome'], registers }),
    httpRequests: new Counter({
      name: 'ha_dispatcher_http_requests_total', help: 'REST requests by route template, method and status code', labelNames: ['route', 'method', 'code'], registers,
    }),
    httpRequestSeconds: new Histogram({
      name: 'ha_dispatcher_http_request_duration_seconds', help: 'REST request latency by route template, method and status code', labelNames: ['route', 'method', 'code'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10], registers,
    }),
    quarantined: new Gauge({ name: 'ha_dispatcher_quarantined_jobgraphs', help: 'Unreadable JobGraphs moved aside', registers }),
    pendingJobs: new Gauge({
      name: 'ha_dispatcher_pending_jobs', help: 'Jobs not yet terminal (stored or being stored), as admission counts them; ready leader only', registers,
      collect() { this.reset(); const a = admission(); if (a) this.set(a.pendingJobs); },
    }),
    storedGraphBytes: new Gauge({
      name: 'ha_dispatcher_stored_jobgraph_bytes', help: 'Bytes of the stored JobGraphs of unfinished jobs, as admission counts them; ready leader only', registers,
      collect() { this.reset(); const a = admission(); if (a) this.set(a.storedGraphBytes); },
    }),
    admissionLimit: new Gauge({
      name: 'ha_dispatcher_admission_limit', help: 'Admission limits by configuration key (jobs, bytes, submissions per second); ready leader only, absent when unlimited',
      labelNames: ['limit'], registers,
      collect() {
        this.reset();
        const a = admission();
        if (!a) return;
        const values: Record<(typeof ADMISSION_LIMIT_KEYS)[number], number> = {
          'dispatcher.max-pending-jobs': a.limits.maxPendingJobs, 'dispatcher.max-stored-jobgraph-bytes': a.limits.maxStoredGraphBytes, 'dispatcher.submission-rate': a.limits.submissionRate,
        };
        for (const limit of ADMISSION_LIMIT_KEYS) if (Number.isFinite(values[limit])) this.set({ limit }, values[limit]);
      },
    }),
    admissionRejections: new Counter({
      name: 'ha_dispatcher_admission_rejections_total', help: 'Submissions refused with 429 by admission control, by the limit (configuration key) that refused them',
      labelNames: ['limit'], registers,
    }),
    jobResults: new Gauge({
      name: 'ha_dispatcher_job_results', help: 'Job results the ready leader holds (kept in ZooKeeper under the retention); ready leader only', registers,
      collect() {
        this.reset();
        if (!leading()) return;
        try { const r = dispatcher!.resultRetentionStatus?.(); if (r) this.set(r.results); } catch { /* leadership ended during the scrape */ }
      },
    }),
    jobResultsDeleted: new Counter({ name: 'ha_dispatcher_job_results_deleted_total', help: 'Job results this replica deleted from ZooKeeper under the retention while leading', registers }),
    stateMacInvalid: new Counter({ name: 'ha_dispatcher_state_mac_invalid_total', help: 'ZooKeeper records refused because their MAC did not verify, by kind (jobgraph, jobresult, progress, leader-info, contender)', labelNames: ['kind'], registers }),
    taskManagers: new Gauge({ name: 'ha_dispatcher_taskmanagers', help: 'TaskManagers registered with this leader', registers }),
    taskManagersLost: new Counter({ name: 'ha_dispatcher_taskmanagers_lost_total', help: 'TaskManagers this leader declared lost (heartbeat timeout or unreachable)', registers }),
    slots: new Gauge({ name: 'ha_dispatcher_slots', help: 'Slots offered by registered TaskManagers', registers }),
    slotsAvailable: new Gauge({ name: 'ha_dispatcher_slots_available', help: 'Free slots of registered TaskManagers', registers }),
    autoscalerDesired: new Gauge({ name: 'ha_dispatcher_autoscaler_desired_taskmanagers', help: 'TaskManager pool size the autoscaler last asked for (leader with resourcemanager.autoscaler.enabled)', registers }),
    autoscalerPendingLaunches: new Gauge({ name: 'ha_dispatcher_autoscaler_pending_launches', help: 'TaskManagers the autoscaler launched that have not registered yet', registers }),
    autoscalerDecisions: new Counter({ name: 'ha_dispatcher_autoscaler_decisions_total', help: 'Scaling decisions the autoscaler carried out, by direction (up, down)', labelNames: ['direction'], registers }),
    autoscalerLaunchFailures: new Counter({ name: 'ha_dispatcher_autoscaler_launch_failures_total', help: 'TaskManager launches the provider failed or did not finish in time', registers }),
    buildInfo: new Gauge({ name: 'ha_dispatcher_build_info', help: 'Always 1; labels name the version and the Node.js version', labelNames: ['version', 'nodejs_version'], registers }),

    bindDispatcher(view) { dispatcher = view; },
    trackReadyLeader(view) { leaderView = view; metrics.noteLeaderView(); },
    noteLeaderView() {
      if (!leaderView) return;
      const t = now();
      const { known, identity } = leaderView();
      if (noLeaderSince !== null) metrics.noReadyLeaderSeconds.inc(Math.max(0, t - noLeaderSince) / 1000);
      noLeaderSince = known ? null : t;
      const id = known ? identity : null;
      if (id !== lastIdentity) {
        lastIdentity = id;
        metrics.leaderLastChange.set(t / 1000);
      }
    },
    leadershipChanged(change) {
      metrics.leadershipChanges.inc({ change });
      metrics.noteLeaderView();
    },
    leaderReady({ grantedAt, predecessorGoneAt, leaderLastSeenAt, now: readyAt }) {
      const recovery = Math.max(0, readyAt - grantedAt) / 1000;
      const failover = Math.max(0, readyAt - Math.min(grantedAt, predecessorGoneAt ?? grantedAt, leaderLastSeenAt ?? grantedAt)) / 1000;
      metrics.recoverySeconds.observe(recovery);
      metrics.lastRecoverySeconds.set(recovery);
      metrics.failoverSeconds.observe(failover);
      metrics.lastFailoverSeconds.set(failover);
      metrics.leadershipChanged('ready');
    },
  };

  // Counters exist at 0 from start-up for every label value, so increase() sees the first event.
  for (const change of LEADERSHIP_CHANGES) metrics.leadershipChanges.inc({ change }, 0);
  for (const event of SESSION_EVENTS) metrics.zkSessionEvents.inc({ event }, 0);
  for (const outcome of SUBMISSION_OUTCOMES) metrics.submissions.inc({ outcome }, 0);
  for (const outcome of ['redirect', 'forward', 'unavailable']) metrics.redirects.inc({ outcome }, 0);
  for (const limit of ADMISSION_LIMIT_KEYS) metrics.admissionRejections.inc({ limit }, 0);
  for (const direction of AUTOSCALER_DIRECTIONS) metrics.autoscalerDecisions.inc({ direction }, 0);
  metrics.zkConnected.set(0);
  metrics.buildInfo.set({ version: options.version ?? 'unknown', nodejs_version: process.version }, 1);
  return metrics;
}

const TERMINAL = new Set(['FINISHED', 'FAILED', 'CANCELED']);

/** Maps a ZooKeeper client state to the session event it counts as (null: not counted). */
export function sessionEventOf(state: string): (typeof SESSION_EVENTS)[number] | null {
  switch (state) {
    case 'CONNECTED': return 'connected';
    case 'SUSPENDED': return 'suspended';
    case 'RECONNECTED': return 'reconnected';
    case 'LOST': return 'expired';
    default: return null;
  }
}
