/**
 * The chaos checker is only worth its runs if it catches what it promises to catch: each test feeds
 * it a small history with one planted violation (and a clean one that must pass).
 */
import test from 'ava';
import { checkHistory, formatSummary, formatViolation, unavailability } from '../../src/chaos/checker';
import type { FinalJob, HistoryEvent, OpEvent } from '../../src/chaos/history';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const JOB_A = 'a'.repeat(32);
const JOB_B = 'b'.repeat(32);

function graph(jobId: string, name = `job-${jobId.slice(0, 4)}`): object {
  return { jobId, name, vertices: [{ id: 'work', parallelism: 2, task: { type: 'sleep', ms: 100 } }], restartStrategy: { type: 'none' } };
}

let opId = 0;
function submit(jobId: string, at: number, status = 202, client = 'c1'): OpEvent {
  return {
    kind: 'op', id: ++opId, client, op: 'submit', jobId, graph: graph(jobId), start: at, end: at + 5,
    outcome: status === 202 ? 'ok' : status >= 500 || status === 0 ? 'unavailable' : 'rejected', status,
    attempts: [{ t: at, url: 'http://127.0.0.1:1/jobs', status, ...(status === 503 ? { retryAfter: '1' } : {}) }],
  };
}

function finished(jobId: string, endTime: number): FinalJob {
  return {
    jobId, restStatus: 200, state: 'FINISHED', name: `job-${jobId.slice(0, 4)}`, vertices: [], endTime,
    stored: 'jobresults', resultStatus: 'FINISHED', resultEndTime: endTime,
  };
}

/** A healthy two-term history: r1 leads epoch 0, is killed, r2 leads epoch 1; two jobs run and finish. */
function cleanHistory(): HistoryEvent[] {
  return [
    { kind: 'scenario', t: T0, name: 'unit', phase: 'start' },
    { kind: 'leadership', t: T0 + 10, replicaId: 'r1', epoch: 0, change: 'granted' },
    { kind: 'leadership', t: T0 + 20, replicaId: 'r1', epoch: 0, change: 'ready' },
    { kind: 'tm-epoch', t: T0 + 30, seq: 1, tm: 'tm1', epoch: 0, source: 'leader.changed' },
    submit(JOB_A, T0 + 100),
    { kind: 'deploy', t: T0 + 110, seq: 2, tm: 'tm1', jobId: JOB_A, vertexId: 'work', subtask: 0, attempt: 0, epoch: 0 },
    { kind: 'task', t: T0 + 120, phase: 'start', jobId: JOB_A, vertexId: 'work', subtask: 0, attempt: 0, pid: 100 },
    { kind: 'task', t: T0 + 220, phase: 'end', jobId: JOB_A, vertexId: 'work', subtask: 0, attempt: 0, pid: 100 },
    { kind: 'fault', t: T0 + 300, name: 'kill-leader', phase: 'inject', target: 'r1' },
    { kind: 'leadership', t: T0 + 900, replicaId: 'r2', epoch: 1, change: 'granted' },
    { kind: 'leadership', t: T0 + 950, replicaId: 'r2', epoch: 1, change: 'ready' },
    { kind: 'tm-epoch', t: T0 + 960, seq: 3, tm: 'tm1', epoch: 1, source: 'leader.changed' },
    {
      kind: 'op', id: ++opId, client: 'c2', op: 'submit', jobId: JOB_B, graph: graph(JOB_B), start: T0 + 400, end: T0 + 1000, outcome: 'ok', status: 202,
      attempts: [
        { t: T0 + 400, url: 'http://127.0.0.1:1/jobs', status: 0, error: 'ECONNREFUSED' },
        { t: T0 + 500, url: 'http://127.0.0.1:2/jobs', status: 503, retryAfter: '1' },
        { t: T0 + 990, url: 'http://127.0.0.1:2/jobs', status: 202 },
      ],
    },
    { kind: 'deploy', t: T0 + 1010, seq: 4, tm: 'tm1', jobId: JOB_B, vertexId: 'work', subtask: 0, attempt: 0, epoch: 1 },
    { kind: 'task', t: T0 + 1020, phase: 'start', jobId: JOB_B, vertexId: 'work', subtask: 0, attempt: 0, pid: 101 },
    { kind: 'scenario', t: T0 + 2000, name: 'unit', phase: 'end' },
    { kind: 'final', t: T0 + 3000, legitimateRunningMs: 10_000, jobs: [finished(JOB_A, T0 + 230), finished(JOB_B, T0 + 1200)] },
  ];
}

function checksOf(events: HistoryEvent[]): string[] {
  return checkHistory(events).violations.map((v) => v.check);
}

test('a clean history has no violations, and its summary counts operations, faults, failovers and unavailability', (t) => {
  const { summary, violations } = checkHistory(cleanHistory());
  t.deepEqual(violations, []);
  t.like(summary, { scenario: 'unit', operations: 2, submissionsAcknowledged: 2, faults: 1, failovers: 1, highestEpoch: 1, taskStarts: 2, violations: 0 });
  t.like(summary.jobs, { finished: 2, running: 0 });
  t.is(summary.unavailability.windows, 1);
  t.is(summary.unavailability.totalMs, 590, 'from the first failed attempt to the next answer');
  t.regex(formatSummary(summary), /^scenario unit: 2 operations \(2 submissions acknowledged\), 1 faults, 1 failovers .* 1 unavailability windows .* 0 violations/);
});

test('a subtask completed twice is counted (not a violation) and put down to the last fault before its repeated run', (t) => {
  const events = cleanHistory();
  const at = events.findIndex((e) => e.kind === 'scenario' && e.phase === 'end');
  events.splice(at, 0,
    { kind: 'task', t: T0 + 1100, phase: 'end', jobId: JOB_B, vertexId: 'work', subtask: 0, attempt: 0, pid: 101 },
    { kind: 'fault', t: T0 + 1120, name: 'pause-taskmanager', phase: 'inject', target: 'tm1' },
    // Attempt 1 of the same subtask ran to its end as well: at-least-once after the TaskManager was frozen.
    { kind: 'deploy', t: T0 + 1130, seq: 5, tm: 'tm1', jobId: JOB_B, vertexId: 'work', subtask: 0, attempt: 1, epoch: 1 },
    { kind: 'task', t: T0 + 1140, phase: 'start', jobId: JOB_B, vertexId: 'work', subtask: 0, attempt: 1, pid: 102 },
    { kind: 'task', t: T0 + 1190, phase: 'end', jobId: JOB_B, vertexId: 'work', subtask: 0, attempt: 1, pid: 102 },
  );
  const { summary, violations } = checkHistory(events);
  t.deepEqual(violations, []);
  t.is(summary.subtasksCompletedTwice, 1);
  t.deepEqual(summary.completedTwiceAfter, { 'pause-taskmanager': 1 });
  t.regex(formatSummary(summary), /1 subtasks completed twice \[after pause-taskmanager ×1\]/);
  t.deepEqual(checkHistory(cleanHistory()).summary.completedTwiceAfter, {});
});

test('an acknowledged job missing after the run is reported with the submission that was acknowledged', (t) => {
  const events = cleanHistory();
  const final = events.find((e) => e.kind === 'final')!;
  if (final.kind !== 'final') throw new Error('no final');
  final.jobs = final.jobs.map((j) => (j.jobId === JOB_B ? { jobId: JOB_B, restStatus: 404, stored: 'none' } : j));
  const { violations } = checkHistory(events);
  t.deepEqual(violations.map((v) => v.check), ['acknowledged-job-lost']);
  t.true(violations[0].message.includes(JOB_B));
  t.is((violations[0].events[0] as OpEvent).jobId, JOB_B);
  const text = formatViolation(violations[0], 'unit');
  t.regex(text, /^VIOLATION \[unit\] acknowledged-job-lost: job b{32} was acknowledged/);
  t.regex(text, /\n {4}op #\d+ c2 submit b{32} .* ok: ECONNREFUSED .* → 503\(Retry-After 1\) .* → 202 /);
});

test('a job absent from the final snapshot altogether is lost too; no snapshot at all is its own violation', (t) => {
  const events = cleanHistory().map((e) => (e.kind === 'final' ? { ...e, jobs: e.jobs.filter((j) => j.jobId !== JOB_A) } : e));
  t.deepEqual(checksOf(events), ['acknowledged-job-lost']);
  t.deepEqual(checksOf(cleanHistory().filter((e) => e.kind !== 'final')), ['final-snapshot-missing']);
});

test('a stored graph that differs from the acknowledged one is reported', (t) => {
  const events = cleanHistory().map((e) => (e.kind === 'final'
    ? { ...e, jobs: e.jobs.map((j) => (j.jobId === JOB_A ? { ...j, storedDigest: '0'.repeat(64) } : j)) }
    : e));
  t.deepEqual(checksOf(events), ['graph-altered']);
  const renamed = cleanHistory().map((e) => (e.kind === 'final'
    ? { ...e, jobs: e.jobs.map((j) => (j.jobId === JOB_A ? { ...j, name: 'other', vertices: [{ id: 'work', parallelism: 1 }] } : j)) }
    : e));
  t.deepEqual(checksOf(renamed), ['graph-altered']);
});

test('two replicas granted the same epoch are reported with both grants', (t) => {
  const events = [...cleanHistory(), { kind: 'leadership', t: T0 + 1100, replicaId: 'r3', epoch: 1, change: 'granted' } as HistoryEvent];
  const { violations } = checkHistory(events);
  t.deepEqual(violations.map((v) => v.check), ['single-leader-per-epoch']);
  t.regex(violations[0].message, /epoch 1 was granted to 2 replicas: r2, r3/);
  t.is(violations[0].events.length, 2);
});

test('a grant of a lower epoch after a higher one is reported; the same replica regaining its own epoch is not', (t) => {
  const back = [...cleanHistory(), { kind: 'leadership', t: T0 + 1500, replicaId: 'r1', epoch: 0, change: 'granted' } as HistoryEvent];
  t.deepEqual(checksOf(back), ['epochs-increase']);
  const regained = [...cleanHistory(),
    { kind: 'leadership', t: T0 + 1500, replicaId: 'r2', epoch: 1, change: 'revoked', reason: 'connection suspended' } as HistoryEvent,
    { kind: 'leadership', t: T0 + 1600, replicaId: 'r2', epoch: 1, change: 'granted' } as HistoryEvent];
  t.deepEqual(checksOf(regained), []);
});

test('a finished job that runs again is reported, whether seen as a deploy or as a task process starting', (t) => {
  const rerun = [...cleanHistory(),
    { kind: 'task', t: T0 + 2500, phase: 'start', jobId: JOB_A, vertexId: 'work', subtask: 1, attempt: 1, pid: 200 } as HistoryEvent];
  const { violations } = checkHistory(rerun);
  t.deepEqual(violations.map((v) => v.check), ['rerun-after-result']);
  t.regex(violations[0].message, /job a{32} ran again after it ended: task work\[1\] attempt 1 started/);

  const redeployed = [...cleanHistory(),
    { kind: 'deploy', t: T0 + 2500, seq: 9, tm: 'tm1', jobId: JOB_A, vertexId: 'work', subtask: 0, attempt: 1, epoch: 1 } as HistoryEvent];
  t.deepEqual(checksOf(redeployed), ['rerun-after-result']);
});

test('a client reading a terminal state also marks the end: a later start is a re-run even without a final result time', (t) => {
  const events: HistoryEvent[] = [...cleanHistory().map((e) => (e.kind === 'final'
    ? { ...e, jobs: e.jobs.map((j) => (j.jobId === JOB_A ? { ...j, resultEndTime: undefined, endTime: undefined } : j)) }
    : e)),
  { kind: 'op', id: ++opId, client: 'c3', op: 'status', jobId: JOB_A, start: T0 + 600, end: T0 + 610, outcome: 'ok', status: 200, state: 'FINISHED',
    attempts: [{ t: T0 + 600, url: 'http://127.0.0.1:2/jobs/x', status: 200 }] },
  { kind: 'task', t: T0 + 700, phase: 'start', jobId: JOB_A, vertexId: 'work', subtask: 0, attempt: 1, pid: 300 }];
  const { violations } = checkHistory(events);
  t.deepEqual(violations.map((v) => v.check), ['rerun-after-result']);
  t.is(violations[0].events.length, 2, 'the read that saw the end and the start');
});

test('a TaskManager accepting a command from an epoch below one it already saw is a stale-epoch task', (t) => {
  const events = [...cleanHistory(),
    { kind: 'deploy', t: T0 + 1050, seq: 5, tm: 'tm1', jobId: JOB_B, vertexId: 'work', subtask: 1, attempt: 0, epoch: 0 } as HistoryEvent];
  const { violations } = checkHistory(events);
  t.deepEqual(violations.map((v) => v.check), ['stale-epoch-task']);
  t.regex(violations[0].message, /TaskManager tm1 accepted a deploy of job b{32} work\[1\] attempt 0 from epoch 0 .* after it had seen epoch 1/);
  // Another TaskManager that never heard of epoch 1 may still take epoch 0's command: fencing is per TaskManager.
  const other = [...cleanHistory(),
    { kind: 'deploy', t: T0 + 1050, seq: 1, tm: 'tm2', jobId: JOB_B, vertexId: 'work', subtask: 1, attempt: 0, epoch: 0 } as HistoryEvent];
  t.deepEqual(checksOf(other), []);
});

test('a 5xx other than 503 with Retry-After is reported; 503 with Retry-After is fine', (t) => {
  const bad = submit(JOB_A, T0 + 50, 500);
  const noRetry: OpEvent = { ...submit(JOB_A, T0 + 60, 503), attempts: [{ t: T0 + 60, url: 'http://x/jobs', status: 503 }] };
  const fine = submit(JOB_A, T0 + 70, 503);
  t.deepEqual(checksOf([...cleanHistory(), bad, noRetry, fine]), ['server-error', 'server-error']);
});

test('an acknowledged job still running without recent activity is stuck; with recent activity it is legitimately running', (t) => {
  const stuck = cleanHistory().map((e) => (e.kind === 'final'
    ? { ...e, jobs: e.jobs.map((j) => (j.jobId === JOB_B ? { jobId: JOB_B, restStatus: 200, state: 'RUNNING', stored: 'jobgraphs' as const } : j)) }
    : e));
  t.deepEqual(checksOf(stuck), []); // last activity 2 s before the snapshot, within 10 s
  const later = stuck.map((e) => (e.kind === 'final' ? { ...e, t: T0 + 60_000 } : e));
  const { violations } = checkHistory(later);
  t.deepEqual(violations.map((v) => v.check), ['job-stuck']);
  t.regex(violations[0].message, /job b{32} is RUNNING at the end of the run and showed no activity for 59 s/);
});

test('unavailability: spans where clients saw 503s or no answer and nobody got an answer; a quick hop to the next replica is no window', (t) => {
  const op = (start: number, codes: Array<[number, number]>): OpEvent => ({
    kind: 'op', id: ++opId, client: 'c', op: 'list', start, end: codes[codes.length - 1][0], outcome: 'ok', status: 200,
    attempts: codes.map(([at, status]) => ({ t: at, url: 'u', status, ...(status === 503 ? { retryAfter: '1' } : {}) })),
  });
  const u = unavailability([
    op(0, [[0, 503], [1000, 200]]), // two clients failing together: one span 0..1000
    op(800, [[800, 0], [1200, 200]]),
    op(5000, [[5000, 503], [5400, 307], [5500, 200]]), // a 307 is no answer yet: 5000..5500
    op(7000, [[7000, 0], [7050, 200]]), // refused, then the next replica answers at once: no window
    op(9000, [[9000, 200]]),
  ]);
  t.deepEqual(u, { windows: 2, totalMs: 1500, longestMs: 1000 });
});

// ---- hostile clients ------------------------------------------------------------------------------

const FORGED = 'f'.repeat(32);
const forgery: HistoryEvent = { kind: 'forgery', t: T0 + 50, what: 'jobgraph', path: `/jobgraphs/${FORGED}`, jobId: FORGED };

function withFinal(events: HistoryEvent[], extra: FinalJob[]): HistoryEvent[] {
  return events.map((e) => (e.kind === 'final' ? { ...e, jobs: [...e.jobs, ...extra] } : e));
}

test('a forged job that is quarantined (404, or FAILED) is fine; one deployed, started, RUNNING in REST or FINISHED after the run is forged state trusted', (t) => {
  const probe = (state: string | undefined, status = 200): OpEvent => ({
    kind: 'op', id: ++opId, client: 'forger', op: 'status', jobId: FORGED, start: T0 + 60, end: T0 + 70, outcome: status === 200 ? 'ok' : 'rejected', status,
    attempts: [{ t: T0 + 60, url: `http://x/jobs/${FORGED}`, status }], ...(state ? { state } : {}),
  });
  const refused = withFinal([...cleanHistory(), forgery, probe(undefined, 404), probe('FAILED')], [{ jobId: FORGED, restStatus: 404, stored: 'none' }]);
  t.deepEqual(checksOf(refused), []);
  t.deepEqual(checksOf([...cleanHistory(), forgery, probe('RUNNING')]), ['forged-state-trusted']);
  t.deepEqual(checksOf([...cleanHistory(), forgery, { kind: 'deploy', t: T0 + 80, seq: 9, tm: 'tm1', jobId: FORGED, vertexId: 'evil', subtask: 0, attempt: 0, epoch: 1 }]),
    ['forged-state-trusted']);
  const ranAfter = withFinal([...cleanHistory(), forgery], [{ jobId: FORGED, restStatus: 200, state: 'FINISHED', stored: 'jobresults' }]);
  const { violations } = checkHistory(ranAfter);
  t.deepEqual(violations.map((v) => v.check), ['forged-state-trusted']);
  t.regex(violations[0].message, /forged job f{32} is FINISHED after the run/);
  t.is(violations[0].events[0], forgery);
});

test('a marker file of a forged task, or a contact with a forged leader URL, is forged state trusted', (t) => {
  const marker: HistoryEvent = { kind: 'forgery-trusted', t: T0 + 90, how: 'marker-written', detail: 'marker file /x exists', jobId: FORGED };
  const trap: HistoryEvent = { kind: 'forgery-trusted', t: T0 + 95, how: 'trap-contacted', detail: 'GET /jobs from 4242' };
  const { violations } = checkHistory([...cleanHistory(), forgery, marker, trap]);
  t.deepEqual(violations.map((v) => v.check), ['forged-state-trusted', 'forged-state-trusted']);
  t.regex(violations[0].message, /a forged job ran: marker file/);
  t.regex(violations[1].message, /a forged leader URL was followed: GET \/jobs/);
});

test('429 with Retry-After is admission control at work; without it, a violation', (t) => {
  const throttled = (retryAfter?: string): OpEvent => ({
    ...submit('c'.repeat(32), T0 + 40, 429), attempts: [{ t: T0 + 40, url: 'http://x/jobs', status: 429, ...(retryAfter ? { retryAfter } : {}) }],
  });
  t.deepEqual(checksOf(withFinal([...cleanHistory(), throttled('1')], [{ jobId: 'c'.repeat(32), restStatus: 404, stored: 'none' }])), []);
  t.deepEqual(checksOf([...cleanHistory(), throttled()]), ['throttled-without-retry-after']);
});

test('an over-limit graph must not be accepted, and a refused submission must leave nothing behind', (t) => {
  const over = (status: number): OpEvent => ({ ...submit('d'.repeat(32), T0 + 40, status), op: 'submit-over-limit' });
  const gone: FinalJob = { jobId: 'd'.repeat(32), restStatus: 404, stored: 'none' };
  t.deepEqual(checksOf(withFinal([...cleanHistory(), over(400)], [gone])), []);
  t.deepEqual(checksOf(withFinal([...cleanHistory(), over(202)], [{ ...gone, restStatus: 200, state: 'RUNNING', stored: 'jobgraphs' }])), ['limit-not-enforced']);
  const { violations } = checkHistory(withFinal([...cleanHistory(), over(400)], [{ ...gone, stored: 'jobgraphs' }]));
  t.deepEqual(violations.map((v) => v.check), ['rejected-job-stored']);
  t.regex(violations[0].message, /refused with 400 but .* ZooKeeper holds jobgraphs/);
  // A refusal after an attempt that may have landed (no answer) proves nothing about what was stored.
  const uncertain: OpEvent = { ...over(400), attempts: [{ t: T0 + 40, url: 'http://x/jobs', status: 0, error: 'ECONNRESET' }, { t: T0 + 45, url: 'http://y/jobs', status: 400 }] };
  t.deepEqual(checksOf(withFinal([...cleanHistory(), uncertain], [{ ...gone, stored: 'jobgraphs' }])), []);
});

test('a scenario that expects no failovers reports each one; others count them only', (t) => {
  const history = cleanHistory(); // r1 then r2: one failover
  t.deepEqual(checksOf(history), []);
  const strict = history.map((e) => (e.kind === 'scenario' && e.phase === 'start' ? { ...e, settings: { expectNoFailovers: true } } : e));
  const { violations, summary } = checkHistory(strict);
  t.deepEqual(violations.map((v) => v.check), ['unexpected-failover']);
  t.is(summary.failovers, 1);
  t.is(summary.violations, 1);
});
