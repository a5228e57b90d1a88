/**
 * The safety checker: reads a recorded history (history.ts) and nothing else, and reports every
 * violation of the properties the product promises under failure (docs/ARCHITECTURE.md, "Failure model"):
 *
 *  single-leader-per-epoch   at most one replica is granted leadership in any epoch
 *  epochs-increase           leadership grants never go back to a lower epoch
 *  acknowledged-job-lost     every submission answered 202 is present after the run
 *  graph-altered             ... with the graph that was submitted (digest and shape)
 *  rerun-after-result        no job with a result (terminal status) is deployed or started again
 *  stale-epoch-task          no TaskManager accepts a command from an epoch below one it already saw
 *  job-stuck                 every acknowledged job ends, or is still running with recent activity
 *  server-error              clients never see a 5xx other than 503 with Retry-After
 *  final-snapshot-missing    the run read back its final state (without it nothing above can be proven)
 *  forged-state-trusted      nothing a hostile ZooKeeper client forged ran or was followed: no forged job
 *                            deployed, started, RUNNING or FINISHED, no marker file, no contact with a forged leader URL
 *  limit-not-enforced        a submission beyond the dispatcher's limits was accepted
 *  rejected-job-stored       a submission refused outright (400, 429) left the job behind
 *  throttled-without-retry-after  a 429 came without Retry-After (429 with it is admission control at work)
 *  unexpected-failover       the leader changed in a scenario that injects nothing that may change it
 *
 * It also computes the figures of the per-scenario summary line.
 */
import { canonicalJson, parseJobGraph } from '../jobgraph';
import { graphDigest } from '../store/jobgraph-store';
import { isTerminalJobStatus } from '../jobgraph/status';
import { flinkVertexId } from '../rest/flink-views';
import type {
  DeployEvent, FaultEvent, FinalEvent, FinalJob, ForgeryEvent, ForgeryTrustedEvent, HistoryEvent, LeadershipEvent, OpEvent, TaskEvent, TmEpochEvent,
} from './history';

export type CheckName =
  | 'single-leader-per-epoch' | 'epochs-increase' | 'acknowledged-job-lost' | 'graph-altered' | 'rerun-after-result'
  | 'stale-epoch-task' | 'job-stuck' | 'server-error' | 'final-snapshot-missing'
  | 'forged-state-trusted' | 'limit-not-enforced' | 'rejected-job-stored' | 'throttled-without-retry-after' | 'unexpected-failover';

export interface Violation {
  check: CheckName;
  message: string;
  /** The history events involved (operations, grants, deploys, task starts). */
  events: HistoryEvent[];
}

export interface Unavailability { windows: number; totalMs: number; longestMs: number }

export interface ScenarioSummary {
  scenario: string;
  durationMs: number;
  operations: number;
  submissionsAcknowledged: number;
  faults: number;
  failovers: number;
  highestEpoch: number | null;
  unavailability: Unavailability;
  taskStarts: number;
  /** Subtasks that completed more than once (at-least-once after a reconcile timeout; a figure, not a violation). */
  subtasksCompletedTwice: number;
  /** Those, by the fault injected last before the repeated run started ("none" when no fault preceded it). */
  completedTwiceAfter: Record<string, number>;
  /** Commands TaskManagers refused because they came from an older epoch. */
  staleCommandsRejected: number;
  jobs: { finished: number; canceled: number; failed: number; running: number };
  violations: number;
}

export interface CheckResult { summary: ScenarioSummary; violations: Violation[] }

/** Shorter spans without any answer are a client moving to the next replica, not unavailability. */
const UNAVAILABLE_MIN_MS = 300;

export function checkHistory(events: HistoryEvent[], scenarioName?: string): CheckResult {
  const ops = events.filter((e): e is OpEvent => e.kind === 'op');
  const leadership = events.filter((e): e is LeadershipEvent => e.kind === 'leadership').sort((a, b) => a.t - b.t);
  const deploys = events.filter((e): e is DeployEvent => e.kind === 'deploy');
  const tasks = events.filter((e): e is TaskEvent => e.kind === 'task');
  const final = events.filter((e): e is FinalEvent => e.kind === 'final').pop() ?? null;
  const violations: Violation[] = [
    ...checkLeadership(leadership),
    ...checkAcknowledged(ops, final),
    ...checkNoRerun(ops, deploys, tasks, final),
    ...checkStaleEpochs(events.filter((e): e is TmEpochEvent | DeployEvent => e.kind === 'tm-epoch' || e.kind === 'deploy')),
    ...checkTermination(ops, deploys, tasks, final),
    ...checkServerErrors(ops),
    ...checkForgeries(events, ops, deploys, tasks, final),
    ...checkRefusedSubmissions(ops, final),
  ];
  const summary = summarize(events, ops, leadership, tasks, final, violations.length, scenarioName);
  const start = events.find((e) => e.kind === 'scenario' && e.phase === 'start');
  if (start?.kind === 'scenario' && start.settings?.expectNoFailovers === true && summary.failovers > 0) {
    violations.push({
      check: 'unexpected-failover',
      message: `${summary.failovers} failovers in a scenario that injects nothing that may change the leader`,
      events: leadership.filter((e) => e.change !== 'ready'),
    });
    summary.violations = violations.length;
  }
  return { summary, violations };
}

// ---- leadership ---------------------------------------------------------------------------------

function checkLeadership(leadership: LeadershipEvent[]): Violation[] {
  const violations: Violation[] = [];
  const grants = leadership.filter((e) => e.change === 'granted');
  const byEpoch = new Map<number, LeadershipEvent[]>();
  for (const g of grants) byEpoch.set(g.epoch, [...(byEpoch.get(g.epoch) ?? []), g]);
  for (const [epoch, list] of byEpoch) {
    const replicas = [...new Set(list.map((g) => g.replicaId))];
    if (replicas.length > 1) {
      violations.push({ check: 'single-leader-per-epoch', message: `epoch ${epoch} was granted to ${replicas.length} replicas: ${replicas.join(', ')}`, events: list });
    }
  }
  let highest: LeadershipEvent | null = null;
  for (const g of grants) {
    if (highest && g.epoch < highest.epoch) {
      violations.push({
        check: 'epochs-increase',
        message: `${g.replicaId} was granted epoch ${g.epoch} after ${highest.replicaId} had been granted epoch ${highest.epoch}`,
        events: [highest, g],
      });
    }
    if (!highest || g.epoch > highest.epoch) highest = g;
  }
  return violations;
}

// ---- acknowledged submissions ---------------------------------------------------------------------

/** The first acknowledged submission of every job id. */
function acknowledgedSubmissions(ops: OpEvent[]): Map<string, OpEvent> {
  const acked = new Map<string, OpEvent>();
  for (const op of ops) {
    if ((op.op === 'submit' || op.op === 'resubmit') && op.outcome === 'ok' && op.jobId && !acked.has(op.jobId)) acked.set(op.jobId, op);
  }
  return acked;
}

function expectedDigest(graph: unknown): string | null {
  try {
    return graphDigest(canonicalJson(parseJobGraph(graph, { maxParallelism: Number.MAX_SAFE_INTEGER })));
  } catch {
    return null;
  }
}

function checkAcknowledged(ops: OpEvent[], final: FinalEvent | null): Violation[] {
  const acked = acknowledgedSubmissions(ops);
  if (!final) {
    return acked.size === 0 ? [] : [{
      check: 'final-snapshot-missing',
      message: `${acked.size} submissions were acknowledged but the history has no final snapshot to check them against`,
      events: [],
    }];
  }
  const finalById = new Map(final.jobs.map((j) => [j.jobId, j]));
  const violations: Violation[] = [];
  for (const [jobId, op] of acked) {
    const job = finalById.get(jobId);
    const present = job && (job.restStatus === 200 || (job.stored !== 'none' && job.stored !== 'unreadable'));
    if (!job || !present) {
      violations.push({
        check: 'acknowledged-job-lost',
        message: `job ${jobId} was acknowledged (202 at ${iso(op.end)}) but after the run ` +
          (job ? `GET /jobs/${jobId} answered ${job.restStatus} and ZooKeeper holds ${job.stored === 'none' ? 'no graph and no result' : 'an unreadable record'}` : 'it was not in the final snapshot'),
        events: [op],
      });
      continue;
    }
    const digest = expectedDigest(op.graph);
    if (digest && job.storedDigest && job.storedDigest !== digest) {
      violations.push({
        check: 'graph-altered',
        message: `job ${jobId}: the stored graph digest ${job.storedDigest.slice(0, 12)}… differs from the acknowledged graph's ${digest.slice(0, 12)}… (${job.stored})`,
        events: [op],
      });
    }
    const shape = graphShape(op.graph, jobId);
    if (shape && job.restStatus === 200 && job.vertices && job.vertices.length > 0) {
      const seen = job.vertices.map((v) => `${v.id}×${v.parallelism}`).join(',');
      if (seen !== shape.vertices || (job.name !== undefined && job.name !== shape.name)) {
        violations.push({
          check: 'graph-altered',
          message: `job ${jobId}: REST shows "${job.name}" with vertices ${seen}, the acknowledged graph was "${shape.name}" with ${shape.vertices}`,
          events: [op],
        });
      }
    }
  }
  return violations;
}

/** The graph's name and vertices as REST shows them (vertex ids as Flink's 32-hex ids). */
function graphShape(graph: unknown, jobId: string): { name: string; vertices: string } | null {
  const g = graph as { name?: unknown; vertices?: Array<{ id?: unknown; parallelism?: unknown }> } | null;
  if (!g || !Array.isArray(g.vertices) || typeof g.name !== 'string') return null;
  return { name: g.name, vertices: g.vertices.map((v) => `${flinkVertexId(jobId, String(v.id))}×${Number(v.parallelism ?? 1)}`).join(',') };
}

// ---- no re-run after a result ---------------------------------------------------------------------

/** When each job is known to have had its result: the recorded end time, or the first read of a terminal state. */
function resultTimes(ops: OpEvent[], final: FinalEvent | null): Map<string, { t: number; how: string; event?: HistoryEvent }> {
  const times = new Map<string, { t: number; how: string; event?: HistoryEvent }>();
  const offer = (jobId: string, t: number, how: string, event?: HistoryEvent): void => {
    const known = times.get(jobId);
    if (!known || t < known.t) times.set(jobId, { t, how, event });
  };
  for (const job of final?.jobs ?? []) {
    const end = job.resultEndTime ?? (isTerminalJobStatus(job.state) ? job.endTime : undefined);
    if (end !== undefined && end > 0) offer(job.jobId, end, `its result (${job.resultStatus ?? job.state}) ended it at ${iso(end)}`);
  }
  for (const op of ops) {
    if (op.op === 'status' && op.outcome === 'ok' && op.jobId && isTerminalJobStatus(op.state)) {
      offer(op.jobId, op.end, `a client read ${op.state} at ${iso(op.end)} (op #${op.id})`, op);
    }
  }
  return times;
}

function checkNoRerun(ops: OpEvent[], deploys: DeployEvent[], tasks: TaskEvent[], final: FinalEvent | null): Violation[] {
  const ended = resultTimes(ops, final);
  const violations: Violation[] = [];
  const reported = new Set<string>();
  for (const e of [...deploys, ...tasks.filter((x) => x.phase === 'start')]) {
    const end = ended.get(e.jobId);
    if (!end || e.t <= end.t) continue;
    const key = `${e.jobId}/${e.vertexId}/${e.subtask}/${e.attempt}/${e.kind}`;
    if (reported.has(key)) continue;
    reported.add(key);
    const what = e.kind === 'deploy'
      ? `TaskManager ${e.tm} accepted a deploy of ${e.vertexId}[${e.subtask}] attempt ${e.attempt} (epoch ${e.epoch}) at ${iso(e.t)}`
      : `task ${e.vertexId}[${e.subtask}] attempt ${e.attempt} started (pid ${e.pid}) at ${iso(e.t)}`;
    violations.push({
      check: 'rerun-after-result',
      message: `job ${e.jobId} ran again after it ended: ${what}, but ${end.how}`,
      events: end.event ? [end.event, e] : [e],
    });
  }
  return violations;
}

// ---- stale epochs ---------------------------------------------------------------------------------

function checkStaleEpochs(events: Array<TmEpochEvent | DeployEvent>): Violation[] {
  const byTm = new Map<string, Array<TmEpochEvent | DeployEvent>>();
  for (const e of events) {
    const key = `${e.tm}#${e.incarnation ?? 0}`;
    byTm.set(key, [...(byTm.get(key) ?? []), e]);
  }
  const violations: Violation[] = [];
  for (const list of byTm.values()) {
    // A TaskManager's own log order is authoritative; the time stamp breaks ties between files.
    list.sort((a, b) => a.seq - b.seq || a.t - b.t);
    let highest: TmEpochEvent | DeployEvent | null = null;
    for (const e of list) {
      if (e.kind === 'deploy' && highest && e.epoch < highest.epoch) {
        violations.push({
          check: 'stale-epoch-task',
          message: `TaskManager ${e.tm} accepted a deploy of job ${e.jobId} ${e.vertexId}[${e.subtask}] attempt ${e.attempt} from epoch ${e.epoch} ` +
            `at ${iso(e.t)}, after it had seen epoch ${highest.epoch} (${highest.kind === 'deploy' ? 'a deploy' : highest.source}) at ${iso(highest.t)}`,
          events: [highest, e],
        });
      }
      if (!highest || e.epoch > highest.epoch) highest = e;
    }
  }
  return violations;
}

// ---- termination ----------------------------------------------------------------------------------

function checkTermination(ops: OpEvent[], deploys: DeployEvent[], tasks: TaskEvent[], final: FinalEvent | null): Violation[] {
  if (!final) return [];
  const acked = acknowledgedSubmissions(ops);
  const lastActivity = new Map<string, number>();
  const touch = (jobId: string | undefined, t: number): void => {
    if (jobId && t > (lastActivity.get(jobId) ?? 0)) lastActivity.set(jobId, t);
  };
  for (const op of acked.values()) touch(op.jobId, op.end);
  for (const e of deploys) touch(e.jobId, e.t);
  for (const e of tasks) touch(e.jobId, e.t);
  const violations: Violation[] = [];
  for (const job of final.jobs) {
    const op = acked.get(job.jobId);
    if (!op || isTerminal(job)) continue;
    const last = lastActivity.get(job.jobId) ?? op.end;
    if (final.t - last <= final.legitimateRunningMs) continue;
    violations.push({
      check: 'job-stuck',
      message: `job ${job.jobId} is ${job.state ?? `unreadable (GET answered ${job.restStatus})`} at the end of the run and showed no activity ` +
        `for ${Math.round((final.t - last) / 1000)} s (a running job must show some within ${Math.round(final.legitimateRunningMs / 1000)} s)`,
      events: [op],
    });
  }
  return violations;
}

function isTerminal(job: FinalJob): boolean {
  return isTerminalJobStatus(job.state) || job.resultStatus !== undefined;
}

// ---- client-visible errors ------------------------------------------------------------------------

function checkServerErrors(ops: OpEvent[]): Violation[] {
  const violations: Violation[] = [];
  for (const op of ops) {
    for (const a of op.attempts) {
      if (a.status < 500) continue;
      if (a.status === 503 && a.retryAfter) continue;
      violations.push({
        check: 'server-error',
        message: `${op.op} op #${op.id} got ${a.status}${a.status === 503 ? ' without Retry-After' : ''} from ${a.url} at ${iso(a.t)}` +
          (a.message ? `: ${a.message}` : ''),
        events: [op],
      });
    }
  }
  return violations;
}

// ---- hostile clients -------------------------------------------------------------------------------

/** States that mean a job was taken for real (a forged job may at most be quarantined, FAILED or CANCELED). */
const RAN_STATES = new Set(['RUNNING', 'FINISHED', 'RESTARTING']);

function checkForgeries(events: HistoryEvent[], ops: OpEvent[], deploys: DeployEvent[], tasks: TaskEvent[], final: FinalEvent | null): Violation[] {
  const forged = new Map<string, ForgeryEvent>();
  for (const e of events) if (e.kind === 'forgery' && e.jobId) forged.set(e.jobId, e);
  const violations: Violation[] = [];
  const report = (message: string, evidence: HistoryEvent[]): void => { violations.push({ check: 'forged-state-trusted', message, events: evidence }); };
  for (const e of events.filter((x): x is ForgeryTrustedEvent => x.kind === 'forgery-trusted')) {
    const origin = e.jobId ? forged.get(e.jobId) : undefined;
    report(e.how === 'trap-contacted' ? `a forged leader URL was followed: ${e.detail}` : `a forged job ran: ${e.detail}`, origin ? [origin, e] : [e]);
  }
  const reported = new Set<string>();
  const once = (jobId: string, message: string, evidence: HistoryEvent[]): void => {
    if (reported.has(jobId)) return;
    reported.add(jobId);
    report(message, evidence);
  };
  for (const e of [...deploys, ...tasks]) {
    const origin = forged.get(e.jobId);
    if (origin) once(e.jobId, `forged job ${e.jobId} was ${e.kind === 'deploy' ? `deployed on ${e.tm}` : 'started'} at ${iso(e.t)}`, [origin, e]);
  }
  for (const op of ops) {
    const origin = op.jobId ? forged.get(op.jobId) : undefined;
    if (origin && op.state && RAN_STATES.has(op.state)) once(op.jobId!, `forged job ${op.jobId} was ${op.state} in REST (op #${op.id})`, [origin, op]);
  }
  for (const job of final?.jobs ?? []) {
    const origin = forged.get(job.jobId);
    const state = job.state ?? job.resultStatus;
    if (origin && state && RAN_STATES.has(state)) once(job.jobId, `forged job ${job.jobId} is ${state} after the run`, [origin]);
  }
  return violations;
}

/** Every attempt answered, none with a 5xx: the submission certainly never landed before its refusal. */
function certainlyRefused(op: OpEvent): boolean {
  return op.outcome === 'rejected' && op.attempts.every((a) => a.status > 0 && a.status < 500);
}

function checkRefusedSubmissions(ops: OpEvent[], final: FinalEvent | null): Violation[] {
  const violations: Violation[] = [];
  const acked = acknowledgedSubmissions(ops);
  for (const op of ops) {
    for (const a of op.attempts) {
      if (a.status === 429 && !a.retryAfter) {
        violations.push({ check: 'throttled-without-retry-after', message: `${op.op} op #${op.id} got 429 without Retry-After from ${a.url} at ${iso(a.t)}`, events: [op] });
      }
    }
    if (op.op === 'submit-over-limit' && op.outcome === 'ok') {
      violations.push({ check: 'limit-not-enforced', message: `a graph beyond the limits (job ${op.jobId}) was accepted with ${op.status}`, events: [op] });
    }
  }
  const finalById = new Map((final?.jobs ?? []).map((j) => [j.jobId, j]));
  for (const op of ops) {
    if ((op.op !== 'submit' && op.op !== 'submit-over-limit') || !op.jobId || acked.has(op.jobId) || !certainlyRefused(op)) continue;
    const job = finalById.get(op.jobId);
    if (job && (job.restStatus === 200 || (job.stored !== 'none' && job.stored !== 'unreadable'))) {
      violations.push({
        check: 'rejected-job-stored',
        message: `job ${op.jobId} was refused with ${op.status} but after the run GET answered ${job.restStatus} and ZooKeeper holds ${job.stored}`,
        events: [op],
      });
    }
  }
  return violations;
}

// ---- summary --------------------------------------------------------------------------------------

function summarize(events: HistoryEvent[], ops: OpEvent[], leadership: LeadershipEvent[], tasks: TaskEvent[],
  final: FinalEvent | null, violations: number, scenarioName?: string): ScenarioSummary {
  const scenario = events.find((e) => e.kind === 'scenario');
  const times = events.map((e) => ('t' in e ? e.t : e.kind === 'op' ? e.start : 0)).filter((t) => t > 0);
  const ready: string[] = [];
  for (const e of leadership) {
    if (e.change !== 'ready') continue;
    const key = `${e.replicaId}@${e.epoch}`;
    if (ready[ready.length - 1] !== key) ready.push(key);
  }
  const jobs = { finished: 0, canceled: 0, failed: 0, running: 0 };
  const acked = acknowledgedSubmissions(ops);
  for (const job of final?.jobs ?? []) {
    if (!acked.has(job.jobId)) continue;
    const state = job.resultStatus ?? job.state;
    if (state === 'FINISHED') jobs.finished++;
    else if (state === 'CANCELED') jobs.canceled++;
    else if (state === 'FAILED') jobs.failed++;
    else jobs.running++;
  }
  const epochs = leadership.map((e) => e.epoch);
  return {
    scenario: scenarioName ?? (scenario?.kind === 'scenario' ? scenario.name : 'unnamed'),
    durationMs: times.length ? maxOf(times) - minOf(times) : 0,
    operations: ops.length,
    submissionsAcknowledged: acked.size,
    faults: events.filter((e) => e.kind === 'fault' && e.phase === 'inject').length,
    failovers: Math.max(0, new Set(ready).size - 1),
    highestEpoch: epochs.length ? maxOf(epochs) : null,
    unavailability: unavailability(ops),
    taskStarts: tasks.filter((e) => e.phase === 'start').length,
    ...completedTwice(tasks, events.filter((e): e is FaultEvent => e.kind === 'fault' && e.phase === 'inject')),
    staleCommandsRejected: events.filter((e) => e.kind === 'rejected-command').length,
    jobs,
    violations,
  };
}

/** Subtasks whose run ended more than once, each put down to the last fault before its repeated run started. */
function completedTwice(tasks: TaskEvent[], faults: FaultEvent[]): Pick<ScenarioSummary, 'subtasksCompletedTwice' | 'completedTwiceAfter'> {
  const key = (e: TaskEvent): string => `${e.jobId}/${e.vertexId}/${e.subtask}`;
  const ends = new Map<string, TaskEvent[]>();
  for (const e of tasks) if (e.phase === 'end') ends.set(key(e), [...(ends.get(key(e)) ?? []), e]);
  const after: Record<string, number> = {};
  let count = 0;
  for (const runs of ends.values()) {
    if (runs.length < 2) continue;
    count++;
    const startedAt = runs.map((r) => tasks.find((e) => e.phase === 'start' && key(e) === key(r) && e.pid === r.pid)?.t ?? r.t).sort((a, b) => a - b);
    const repeatedAt = startedAt[1];
    const cause = faults.filter((f) => f.t <= repeatedAt).sort((a, b) => b.t - a.t)[0]?.name ?? 'none';
    after[cause] = (after[cause] ?? 0) + 1;
  }
  return { subtasksCompletedTwice: count, completedTwiceAfter: after };
}

/**
 * Client-visible unavailability: spans in which clients saw failures (503, or no answer) and nobody got
 * a real answer. A span starts at a failed attempt after the last answer and ends at the next answer
 * of any client on any replica (a 307 is neither). A failure that the next replica answers at once — a
 * killed or partitioned replica while the cluster serves — is not a window: spans under
 * UNAVAILABLE_MIN_MS are left out.
 */
export function unavailability(ops: OpEvent[]): Unavailability {
  const attempts = ops.flatMap((o) => o.attempts).sort((a, b) => a.t - b.t);
  const windows: Array<[number, number]> = [];
  let start: number | null = null;
  for (const a of attempts) {
    const failed = a.status === 0 || a.status === 503;
    if (failed && start === null) start = a.t;
    else if (!failed && a.status !== 307 && start !== null) {
      windows.push([start, a.t]);
      start = null;
    }
  }
  if (start !== null) windows.push([start, Math.max(start, maxOf(ops.map((o) => o.end)))]);
  const lengths = windows.map(([a, b]) => b - a).filter((ms) => ms >= UNAVAILABLE_MIN_MS);
  return { windows: lengths.length, totalMs: lengths.reduce((s, x) => s + x, 0), longestMs: lengths.length ? maxOf(lengths) : 0 };
}

/** Loops, not Math.max(...xs): a long history spread into one call overflows the stack. -Infinity for []. */
function maxOf(xs: readonly number[]): number {
  return xs.reduce((m, x) => (x > m ? x : m), -Infinity);
}

function minOf(xs: readonly number[]): number {
  return xs.reduce((m, x) => (x < m ? x : m), Infinity);
}

// ---- report ---------------------------------------------------------------------------------------

export function formatSummary(s: ScenarioSummary): string {
  const u = s.unavailability;
  return `scenario ${s.scenario}: ${s.operations} operations (${s.submissionsAcknowledged} submissions acknowledged), ` +
    `${s.faults} faults, ${s.failovers} failovers (highest epoch ${s.highestEpoch ?? '-'}), ` +
    `${u.windows} unavailability windows ≥ ${UNAVAILABLE_MIN_MS / 1000} s (total ${(u.totalMs / 1000).toFixed(1)} s, longest ${(u.longestMs / 1000).toFixed(1)} s), ` +
    `${s.taskStarts} task starts (${s.subtasksCompletedTwice} subtasks completed twice${completedTwiceCauses(s)}, ${s.staleCommandsRejected} stale commands rejected), jobs ${s.jobs.finished} finished / ${s.jobs.canceled} canceled / ${s.jobs.failed} failed / ${s.jobs.running} running, ` +
    `${s.violations} violations, ${(s.durationMs / 1000).toFixed(0)} s`;
}

function completedTwiceCauses(s: ScenarioSummary): string {
  const causes = Object.entries(s.completedTwiceAfter).sort((a, b) => b[1] - a[1]);
  return causes.length ? ` [after ${causes.map(([name, n]) => `${name} ×${n}`).join(', ')}]` : '';
}

export function formatViolation(v: Violation, scenario?: string): string {
  const lines = [`VIOLATION${scenario ? ` [${scenario}]` : ''} ${v.check}: ${v.message}`];
  for (const e of v.events) lines.push(`    ${describeEvent(e)}`);
  return lines.join('\n');
}

export function describeEvent(e: HistoryEvent): string {
  switch (e.kind) {
    case 'op': {
      const attempts = e.attempts.map((a) => `${a.status || a.error || 'no answer'}${a.retryAfter ? `(Retry-After ${a.retryAfter})` : ''} ${a.url}`).join(' → ');
      return `op #${e.id} ${e.client} ${e.op}${e.jobId ? ` ${e.jobId}` : ''} ${iso(e.start)}..${iso(e.end)} ${e.outcome}${e.state ? ` state=${e.state}` : ''}: ${attempts}`;
    }
    case 'leadership':
      return `${iso(e.t)} ${e.replicaId} leadership ${e.change} epoch ${e.epoch}${e.reason ? ` (${e.reason})` : ''}`;
    case 'deploy':
      return `${iso(e.t)} ${e.tm} accepted deploy ${e.jobId} ${e.vertexId}[${e.subtask}] attempt ${e.attempt} epoch ${e.epoch}`;
    case 'tm-epoch':
      return `${iso(e.t)} ${e.tm} saw epoch ${e.epoch} (${e.source})`;
    case 'task':
      return `${iso(e.t)} task ${e.phase} ${e.jobId} ${e.vertexId}[${e.subtask}] attempt ${e.attempt} pid ${e.pid}`;
    case 'fault':
      return `${iso(e.t)} fault ${e.phase} ${e.name} on ${e.target}${e.detail ? ` (${e.detail})` : ''}`;
    default:
      return JSON.stringify(e).slice(0, 300);
  }
}

function iso(t: number): string {
  return new Date(t).toISOString().slice(11, 23);
}
