/**
 * The Flink view layer: maps what the Dispatcher, its JobMasters and the ResourceManager report into
 * the response shapes of Flink's REST API v1 (names, casing, types and units as Flink's: times are
 * epoch-ms, -1 for an unknown start or end, durations ms). Pure functions; the route modules only
 * pick the data and call these. Fields Flink does not define are kept as extras only where they do
 * not collide with a Flink name (e.g. `subtasks` on a job's vertices, `restarts`).
 */
import { createHash } from 'node:crypto';
import type { ExceptionEntry, JobDetails, JobStatus, SubtaskDetail, TaskState, VertexDetail } from '../jobmaster/types';
import type { JobSummary } from '../dispatcher/dispatcher';
import type { TaskManagerView } from '../resources/resource-manager';

/** Flink's JobStatus values, in Flink's order. */
export const FLINK_JOB_STATUSES: readonly JobStatus[] = [
  'INITIALIZING', 'CREATED', 'RUNNING', 'FAILING', 'FAILED', 'CANCELLING', 'CANCELED', 'FINISHED', 'RESTARTING', 'SUSPENDED', 'RECONCILING',
];

/** Flink's ExecutionState values (ours are a subset). */
export const FLINK_EXECUTION_STATES = [
  'CREATED', 'SCHEDULED', 'DEPLOYING', 'RUNNING', 'FINISHED', 'CANCELING', 'CANCELED', 'FAILED', 'RECONCILING', 'INITIALIZING',
] as const;
export type FlinkExecutionState = typeof FLINK_EXECUTION_STATES[number];

/** Flink's placeholder for a subtask not deployed anywhere. */
const UNASSIGNED = '(unassigned)';
/** Flink reports this commit id when it does not know its own. */
const UNKNOWN_COMMIT = 'DeadD0d0';
/** Flink's default `maxExceptions` of the exceptions endpoint. */
export const DEFAULT_MAX_EXCEPTIONS = 20;

/**
 * A job vertex's Flink id: 32 lowercase hex characters derived from the job id and the vertex id of
 * the JobGraph, so it is stable across leaders and restarts.
 */
export function flinkVertexId(jobId: string, vertexId: string): string {
  return createHash('sha256').update(`${jobId}\u0000${vertexId}`).digest('hex').slice(0, 32);
}

/** The vertex of `details` a path names, by its Flink id or by the JobGraph's vertex id; undefined when none. */
export function findVertex(details: JobDetails, idOrName: string): VertexDetail | undefined {
  return details.vertices.find((v) => v.id === idOrName || flinkVertexId(details.jid, v.id) === idOrName);
}

/** `GET /config`: the dashboard configuration. `refreshIntervalMs` is how often the web UI polls. */
export function dashboardConfig(version: string, now: Date, refreshIntervalMs = 3000): object {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return {
    'refresh-interval': refreshIntervalMs,
    'timezone-name': zone,
    // Flink: the zone's offset from UTC in ms (positive east of Greenwich).
    'timezone-offset': -now.getTimezoneOffset() * 60_000,
    'flink-version': version,
    'flink-revision': UNKNOWN_COMMIT,
    // Jobs are submitted as JSON JobGraphs and cancelled over REST; no jar upload, no rescaling, no history server.
    features: { 'web-submit': false, 'web-cancel': true, 'web-rescale': false, 'web-history': false },
  };
}

/** `GET /jobmanager/config`: `[{key, value}]`, values as strings, as Flink lists its configuration. */
export function configEntries(config: Readonly<Record<string, unknown>>): Array<{ key: string; value: string }> {
  return Object.entries(config).map(([key, value]) => ({ key, value: String(value) }));
}

/** `GET /overview`: cluster overview with version. `resources` from the ResourceManager (zeros without one). */
export function clusterOverview(
  resources: { taskmanagers: number; 'slots-total': number; 'slots-available': number; 'taskmanagers-blocked'?: number; 'slots-free-and-blocked'?: number },
  jobs: { running: number; finished: number; cancelled: number; failed: number },
  version: string,
): object {
  return {
    taskmanagers: resources.taskmanagers,
    'slots-total': resources['slots-total'],
    'slots-available': resources['slots-available'],
    // Drained TaskManagers (POST /taskmanagers/:id/drain) are Flink's blocked ones.
    'slots-free-and-blocked': resources['slots-free-and-blocked'] ?? 0,
    'taskmanagers-blocked': resources['taskmanagers-blocked'] ?? 0,
    'jobs-running': jobs.running,
    'jobs-finished': jobs.finished,
    'jobs-cancelled': jobs.cancelled,
    'jobs-failed': jobs.failed,
    'flink-version': version,
    'flink-commit': UNKNOWN_COMMIT,
  };
}

/** `GET /jobs`: ids and statuses. */
export function jobIdsWithStatus(jobs: readonly JobSummary[]): object {
  return { jobs: jobs.map((j) => ({ id: j.id, status: j.status })) };
}

/** Counts per ExecutionState, every state present (0 when none), as Flink's `tasks`/`status-counts`. */
export function countsByState(states: readonly string[]): Record<FlinkExecutionState, number> {
  const counts = Object.fromEntries(FLINK_EXECUTION_STATES.map((s) => [s, 0])) as Record<FlinkExecutionState, number>;
  for (const s of states) if (s in counts) counts[s as FlinkExecutionState]++;
  return counts;
}

function allSubtasks(details: JobDetails): SubtaskDetail[] {
  return details.vertices.flatMap((v) => v.subtasks);
}

/** `GET /jobs/overview` row: the job with its subtask counts, lower-case state names plus `total`. */
export function jobOverviewRow(details: JobDetails): object {
  const counts = countsByState(allSubtasks(details).map((s) => s.status));
  const tasks: Record<string, number> = { total: allSubtasks(details).length };
  for (const [state, n] of Object.entries(counts)) tasks[state.toLowerCase()] = n;
  return {
    jid: details.jid, name: details.name, state: details.state,
    'start-time': details['start-time'], 'end-time': details['end-time'], duration: details.duration,
    'last-modification': lastModification(details),
    tasks,
    // Extra: the submitting principal (REST roles), when one was recorded.
    ...(details.submittedBy !== undefined ? { 'submitted-by': details.submittedBy } : {}),
    ...priorityFields(details),
  };
}

function lastModification(details: JobDetails): number {
  return Math.max(details['start-time'], ...Object.values(details.timestamps).map(Number));
}

/** Every JobStatus with the epoch-ms it was entered, 0 for those not reached (Flink's `timestamps`). */
function allTimestamps(details: JobDetails): Record<JobStatus, number> {
  return Object.fromEntries(FLINK_JOB_STATUSES.map((s) => [s, details.timestamps[s] ?? 0])) as Record<JobStatus, number>;
}

/** Flink's IO metrics of a vertex or subtask. Tasks here exchange no records, so every count is 0 and complete. */
const IO_METRICS = Object.freeze({
  'read-bytes': 0, 'read-bytes-complete': true, 'write-bytes': 0, 'write-bytes-complete': true,
  'read-records': 0, 'read-records-complete': true, 'write-records': 0, 'write-records-complete': true,
  'accumulated-backpressured-time': 0, 'accumulated-idle-time': 0, 'accumulated-busy-time': 0,
});

/** Duration until now for a started, unfinished interval; -1 when it never started. */
function elapsed(start: number, end: number, now: number): number {
  if (start < 0) return -1;
  return (end >= 0 ? end : now) - start;
}

/**
 * `GET /jobs/:jobid`. `now` is the request's time (epoch-ms): a finished job's `duration` stays fixed,
 * `now` does not.
 */
export function jobDetailsView(details: JobDetails, now: number): object {
  const statuses = allSubtasks(details).map((s) => s.status);
  return {
    jid: details.jid,
    name: details.name,
    isStoppable: false,
    state: details.state,
    'job-type': 'BATCH',
    'start-time': details['start-time'],
    'end-time': details['end-time'],
    duration: details.duration,
    // Flink: -1 when the job sets no maximum parallelism.
    maxParallelism: -1,
    now,
    timestamps: allTimestamps(details),
    // Extra: the submitting principal (REST roles), when one was recorded.
    ...(details.submittedBy !== undefined ? { 'submitted-by': details.submittedBy } : {}),
    vertices: details.vertices.map((v) => ({
      id: flinkVertexId(details.jid, v.id),
      name: v.name,
      maxParallelism: v.parallelism,
      parallelism: v.parallelism,
      status: v.status,
      'start-time': v['start-time'],
      'end-time': v['end-time'],
      duration: elapsed(v['start-time'], v['end-time'], now),
      tasks: countsByState(v.subtasks.map((s) => s.status)),
      metrics: IO_METRICS,
      // Extras: the JobGraph's own vertex id and its inputs (JobGraph vertex ids), for plans drawn by id.
      vertexId: v.id,
      inputs: [...(v.inputs ?? [])],
      // Extra: the subtasks, as the CLI and dashboards show them.
      subtasks: v.subtasks.map((s) => ({
        subtask: s.subtask, status: s.status, attempt: s.attempt, taskmanager: s.taskmanager,
        'start-time': s['start-time'], 'end-time': s['end-time'], duration: s.duration,
        ...(s.log ? { log: `/jobs/${details.jid}/vertices/${flinkVertexId(details.jid, v.id)}/subtasks/${s.subtask}/attempts/${s.attempt}/log` } : {}),
      })),
    })),
    'status-counts': countsByState(statuses),
    plan: jobPlan(details),
    restarts: details.restarts,
    ...priorityFields(details),
  };
}

/** Extras: the job's scheduling priority and, when it is one, its class name. */
function priorityFields(details: JobDetails): object {
  if (details.priority === undefined) return {};
  return { priority: details.priority, ...(details.priorityClass ? { 'priority-class': details.priorityClass } : {}) };
}

/** `GET /jobs/:jobid/plan` (`{plan}`) and the `plan` of the job's details: one node per vertex, edges from its inputs. */
export function jobPlan(details: JobDetails): object {
  return {
    jid: details.jid,
    name: details.name,
    type: 'BATCH',
    nodes: details.vertices.map((v) => ({
      id: flinkVertexId(details.jid, v.id),
      parallelism: v.parallelism,
      operator: '',
      operator_strategy: '',
      description: v.name,
      ...((v.inputs ?? []).length > 0
        ? { inputs: (v.inputs ?? []).map((input, num) => ({ num, id: flinkVertexId(details.jid, input), ship_strategy: 'FORWARD', exchange: 'blocking' })) }
        : {}),
      optimizer_properties: {},
    })),
  };
}

/** `GET /jobs/:jobid/config`: the job's execution configuration as far as it exists here. */
export function jobConfigView(details: JobDetails): object {
  return {
    jid: details.jid,
    name: details.name,
    'execution-config': {
      'execution-mode': 'BATCH',
      'restart-strategy': 'the JobGraph\'s restartStrategy, else the cluster\'s restart-strategy.* configuration',
      'job-parallelism': Math.max(1, ...details.vertices.map((v) => v.parallelism)),
      'object-reuse-mode': false,
      'user-config': {},
    },
  };
}

/** `GET /jobs/:jobid/accumulators`: there are no accumulators here, so always empty. */
export function accumulatorsView(): object {
  return { 'job-accumulators': [], 'user-task-accumulators': [], 'serialized-user-task-accumulators': {} };
}

/** Where an exception happened, from the JobMaster's location text "<taskManagerId> (<url>)". */
function exceptionPlace(location: string | undefined): { taskManagerId: string | null; endpoint: string | null } {
  if (!location) return { taskManagerId: null, endpoint: null };
  const m = /^(\S+) \((?:https?:\/\/)?([^)]*?)\/?\)$/.exec(location);
  return m ? { taskManagerId: m[1], endpoint: m[2] } : { taskManagerId: location, endpoint: null };
}

/**
 * `GET /jobs/:jobid/exceptions`. `entries` oldest first, as the JobMaster keeps them; Flink lists the
 * newest first and at most `maxExceptions` (`truncated` tells whether more exist).
 */
export function jobExceptionsView(entries: readonly ExceptionEntry[], maxExceptions: number): object {
  const newestFirst = [...entries].reverse();
  const shown = newestFirst.slice(0, maxExceptions);
  const truncated = newestFirst.length > shown.length;
  const root = newestFirst[0];
  return {
    'root-exception': root?.stacktrace ?? null,
    timestamp: root?.timestamp ?? null,
    'all-exceptions': shown.filter((e) => e.taskName).map((e) => {
      const place = exceptionPlace(e.location);
      return { exception: e.stacktrace, task: e.taskName, location: place.endpoint ?? UNASSIGNED, timestamp: e.timestamp, taskManagerId: place.taskManagerId ?? UNASSIGNED };
    }),
    truncated,
    exceptionHistory: {
      entries: shown.map((e) => {
        const place = exceptionPlace(e.location);
        return {
          exceptionName: e.exceptionName, stacktrace: e.stacktrace, timestamp: e.timestamp,
          // Flink's deprecated `location` is host:port; only the TaskManager id is known once it is gone.
          taskName: e.taskName ?? null, location: place.endpoint ?? e.location ?? null, endpoint: place.endpoint, taskManagerId: place.taskManagerId,
          failureLabels: {}, concurrentExceptions: [],
        };
      }),
      truncated,
    },
  };
}

/** What the Dispatcher's execution result says (its own shape). */
export interface ExecutionResultInput {
  status: { id: 'IN_PROGRESS' | 'COMPLETED' };
  'job-execution-result'?: { id?: string; 'application-status'?: string; 'net-runtime'?: number; 'failure-cause'?: { message: string; timestamp: number } };
}

/** Flink's ApplicationStatus for a terminal JobStatus. */
export function applicationStatus(status: string | undefined): 'SUCCEEDED' | 'FAILED' | 'CANCELED' | 'UNKNOWN' {
  switch (status) {
    case 'FINISHED': return 'SUCCEEDED';
    case 'FAILED': return 'FAILED';
    case 'CANCELED': return 'CANCELED';
    default: return 'UNKNOWN';
  }
}

/**
 * `GET /jobs/:jobid/execution-result`. `failure-cause` has Flink's `class` and `stack-trace`, plus the
 * message and epoch-ms timestamp as extras; there is no `serialized-throwable` (no Java exception exists).
 */
export function executionResultView(result: ExecutionResultInput): object {
  const r = result['job-execution-result'];
  if (result.status.id !== 'COMPLETED' || !r) return { status: { id: 'IN_PROGRESS' } };
  const failure = r['failure-cause'];
  return {
    status: { id: 'COMPLETED' },
    'job-execution-result': {
      id: r.id,
      'application-status': applicationStatus(r['application-status']),
      'accumulator-results': {},
      'net-runtime': r['net-runtime'],
      ...(failure ? { 'failure-cause': { class: 'JobFailure', 'stack-trace': failure.message, message: failure.message, timestamp: failure.timestamp } } : {}),
    },
  };
}

/** `host:port` of a TaskManager, as Flink's `endpoint`; "(unassigned)" when unknown. */
export function endpointOf(taskManagerId: string | null, taskManagers: ReadonlyMap<string, TaskManagerView>): string {
  if (!taskManagerId) return UNASSIGNED;
  const address = taskManagers.get(taskManagerId)?.address;
  return address ? address.replace(/^https?:\/\//, '').replace(/\/$/, '') : UNASSIGNED;
}

/** One subtask's current execution attempt (Flink's SubtaskExecutionAttemptDetailsInfo). */
export function subtaskAttemptView(s: SubtaskDetail, taskManagers: ReadonlyMap<string, TaskManagerView>): object {
  const endpoint = endpointOf(s.taskmanager, taskManagers);
  return {
    subtask: s.subtask,
    status: s.status,
    attempt: s.attempt,
    endpoint,
    'start-time': s['start-time'],
    'end-time': s['end-time'],
    duration: s.duration,
    metrics: IO_METRICS,
    'taskmanager-id': s.taskmanager ?? UNASSIGNED,
  };
}

/** `GET /jobs/:jobid/vertices/:vertexid`. */
export function vertexDetailsView(jobId: string, v: VertexDetail, now: number, taskManagers: ReadonlyMap<string, TaskManagerView>): object {
  return {
    id: flinkVertexId(jobId, v.id), name: v.name, maxParallelism: v.parallelism, parallelism: v.parallelism, now,
    subtasks: v.subtasks.map((s) => subtaskAttemptView(s, taskManagers)),
  };
}

/**
 * `GET /jobs/:jobid/vertices/:vertexid/subtasktimes`: when each subtask entered each state, as far as
 * known here (deployment start and end; 0 for the states whose time is not recorded).
 */
export function subtaskTimesView(jobId: string, v: VertexDetail, now: number, taskManagers: ReadonlyMap<string, TaskManagerView>): object {
  return {
    id: flinkVertexId(jobId, v.id), name: v.name, now,
    subtasks: v.subtasks.map((s) => {
      const timestamps = Object.fromEntries(FLINK_EXECUTION_STATES.map((state) => [state, 0])) as Record<FlinkExecutionState, number>;
      if (s['start-time'] >= 0) timestamps.DEPLOYING = s['start-time'];
      if (s['end-time'] >= 0 && isTerminalTask(s.status)) timestamps[s.status] = s['end-time'];
      return { subtask: s.subtask, endpoint: endpointOf(s.taskmanager, taskManagers), duration: s.duration, timestamps };
    }),
  };
}

function isTerminalTask(state: TaskState): boolean {
  return state === 'FINISHED' || state === 'CANCELED' || state === 'FAILED';
}

/** `GET /jobs/:jobid/vertices/:vertexid/taskmanagers`: the vertex's subtasks grouped by TaskManager. */
export function vertexTaskManagersView(jobId: string, v: VertexDetail, now: number, taskManagers: ReadonlyMap<string, TaskManagerView>): object {
  const byTm = new Map<string, SubtaskDetail[]>();
  for (const s of v.subtasks) {
    const key = s.taskmanager ?? UNASSIGNED;
    byTm.set(key, [...(byTm.get(key) ?? []), s]);
  }
  return {
    id: flinkVertexId(jobId, v.id), name: v.name, now,
    taskmanagers: [...byTm].map(([tmId, subtasks]) => {
      const starts = subtasks.map((s) => s['start-time']).filter((t) => t >= 0);
      const start = starts.length ? Math.min(...starts) : -1;
      const end = subtasks.every((s) => s['end-time'] >= 0) ? Math.max(...subtasks.map((s) => s['end-time'])) : -1;
      return {
        endpoint: endpointOf(tmId === UNASSIGNED ? null : tmId, taskManagers),
        'taskmanager-id': tmId,
        status: subtasks[0].status,
        'start-time': start,
        'end-time': end,
        duration: elapsed(start, end, now),
        metrics: IO_METRICS,
        'status-counts': countsByState(subtasks.map((s) => s.status)),
      };
    }),
  };
}

/** TaskManager resources are not measured here: Flink's resource profile with every amount 0. */
const NO_RESOURCES = Object.freeze({ cpuCores: 0, taskHeapMemory: 0, taskOffHeapMemory: 0, managedMemory: 0, networkMemory: 0, extendedResources: {} });

/**
 * One entry of `GET /taskmanagers` (Flink's TaskManagerInfo). `timeSinceLastHeartbeat` is, as in
 * Flink despite its name, the epoch-ms of the last heartbeat; the age stays in our extra `heartbeatAgeMs`.
 */
export function taskManagerInfo(tm: TaskManagerView): object {
  const port = Number(new URL(tm.address).port) || -1;
  return {
    id: tm.id,
    path: tm.address,
    dataPort: port,
    jmxPort: -1,
    timeSinceLastHeartbeat: tm.lastHeartbeat,
    slotsNumber: tm.slotsNumber,
    freeSlots: tm.freeSlots,
    totalResource: NO_RESOURCES,
    freeResource: NO_RESOURCES,
    hardware: { cpuCores: -1, physicalMemory: -1, freeMemory: -1, managedMemory: -1 },
    memoryConfiguration: {
      frameworkHeap: 0, taskHeap: 0, frameworkOffHeap: 0, taskOffHeap: 0, networkMemory: 0, managedMemory: 0,
      jvmMetaspace: 0, jvmOverhead: 0, totalFlinkMemory: 0, totalProcessMemory: 0,
    },
    blocked: tm.blocked ?? false,
    // Extras (`address` is the RPC base URL, as `path`).
    host: tm.host,
    address: tm.address,
    registeredAt: tm.registeredAt,
    lastHeartbeat: tm.lastHeartbeat,
    heartbeatAgeMs: tm.timeSinceLastHeartbeat,
    recentTaskMs: tm.recentTaskMs,
    tasks: tm.tasks,
    ...(tm.drain ? { drain: tm.drain } : {}),
  };
}

/** `GET /taskmanagers/:id` (Flink's TaskManagerDetailsInfo without JVM metrics): the info plus its allocated slots. */
export function taskManagerDetails(tm: TaskManagerView): object {
  return {
    ...taskManagerInfo(tm),
    allocatedSlots: tm.tasks.map((t) => ({ jobId: t.jobId, resource: NO_RESOURCES })),
  };
}

/** The file name of a task attempt's log in `GET /taskmanagers/:id/logs`, parsed back by `parseTaskLogName`. */
export function taskLogName(t: { jobId: string; vertexId: string; subtask: number; attempt: number }): string {
  return `task-${t.jobId}-${flinkVertexId(t.jobId, t.vertexId)}-${t.subtask}-${t.attempt}.log`;
}

export function parseTaskLogName(name: string): { jobId: string; vertexHexId: string; subtask: number; attempt: number } | null {
  const m = /^task-([0-9a-f]{32})-([0-9a-f]{32})-(\d{1,9})-(\d{1,9})\.log$/.exec(name);
  return m ? { jobId: m[1], vertexHexId: m[2], subtask: Number(m[3]), attempt: Number(m[4]) } : null;
}
