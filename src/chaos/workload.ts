/**
 * The chaos workload: clients that submit, cancel and read through every replica at once while
 * faults are injected, and record every operation (each HTTP attempt, its status and Retry-After)
 * into the history. A client behaves like the CLI: it follows 307s, retries 503 honouring
 * Retry-After and unreachable replicas on the next one, and resubmits with the same jobId, so a
 * retried submission is idempotent. Tasks are `sh` commands that append a start and an end line
 * (time, job, vertex, subtask, attempt, pid) to the task file — the ground truth of what ran.
 */
import { HttpTransportError, JsonResponse, requestJson } from '../http/client';
import { sleep } from '../util/clock';
import type { Attempt, HistoryRecorder, OpEvent, OpKind } from './history';
import { Random } from './random';

export interface WorkloadOptions {
  /** REST base URLs; client i starts at replicas[i % n]. */
  replicas: string[];
  clients: number;
  taskFile: string;
  recorder: HistoryRecorder;
  random: Random;
  /** Submissions stop after this many (bounded runs). */
  maxSubmissions: number;
  /** Pause between one client's operations. */
  pauseMs: [number, number];
  /** How long one operation may keep retrying. */
  opDeadlineMs: number;
}

interface Job { jobId: string; graph: Record<string, unknown>; ackedAt: number }

export class Workload {
  private running = false;
  private loops: Array<Promise<void>> = [];
  private submissions = 0;
  /** Acknowledged jobs, for cancels, status reads and resubmissions. */
  readonly acked: Job[] = [];

  constructor(private readonly options: WorkloadOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.options.clients; i++) this.loops.push(this.clientLoop(`c${i + 1}`, i));
  }

  /** Stops issuing operations and waits for the ones in flight (each bounded by its deadline). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async clientLoop(client: string, index: number): Promise<void> {
    const r = new Random(this.options.random.seed + 7919 * (index + 1));
    const { pauseMs } = this.options;
    while (this.running) {
      const action = r.weighted<OpKind>([[45, 'submit'], [25, 'status'], [6, 'list'], [4, 'overview'], [10, 'cancel'], [10, 'resubmit']]);
      try {
        await this.perform(client, index, action, r);
      } catch {
        // an operation never throws past its own recording; keep the loop alive regardless
      }
      await sleep(r.int(pauseMs[0], pauseMs[1]));
    }
  }

  private async perform(client: string, index: number, action: OpKind, r: Random): Promise<void> {
    const known = this.acked;
    switch (action) {
      case 'submit': {
        if (this.submissions >= this.options.maxSubmissions) return;
        this.submissions++;
        const graph = this.newGraph(r);
        const op = await this.op(client, index, 'submit', 'POST', '/jobs', graph, graph.jobId as string);
        if (op.outcome === 'ok') this.acked.push({ jobId: graph.jobId as string, graph, ackedAt: op.end });
        return;
      }
      case 'resubmit': {
        // The same jobId and graph again (often of a finished job): must be answered 202 and never run again.
        if (known.length === 0) return;
        const job = r.pick(known);
        await this.op(client, index, 'resubmit', 'POST', '/jobs', job.graph, job.jobId);
        return;
      }
      case 'cancel': {
        if (known.length === 0 || !r.chance(0.5)) return;
        const job = known[known.length - 1 - r.int(0, Math.min(known.length - 1, 5))];
        await this.op(client, index, 'cancel', 'PATCH', `/jobs/${job.jobId}?mode=cancel`, undefined, job.jobId);
        return;
      }
      case 'status': {
        if (known.length === 0) return;
        const job = r.pick(known);
        await this.op(client, index, 'status', 'GET', `/jobs/${job.jobId}`, undefined, job.jobId);
        return;
      }
      case 'list':
        await this.op(client, index, 'list', 'GET', '/jobs');
        return;
      case 'overview':
        await this.op(client, index, 'overview', 'GET', '/overview');
        return;
    }
  }

  /**
   * One submission outside the clients' loops (a scenario's own traffic), recorded like theirs; an
   * accepted `submit` joins the acknowledged jobs. Never throws.
   */
  async submit(client: string, graph: Record<string, unknown>, kind: 'submit' | 'submit-over-limit' = 'submit'): Promise<OpEvent> {
    const op = await this.op(client, 0, kind, 'POST', '/jobs', graph, graph.jobId as string);
    if (op.outcome === 'ok' && kind === 'submit') this.acked.push({ jobId: graph.jobId as string, graph, ackedAt: op.end });
    return op;
  }

  /** A read of one job through the replicas, recorded (e.g. a forged job's state). */
  async status(client: string, jobId: string): Promise<OpEvent> {
    return this.op(client, 0, 'status', 'GET', `/jobs/${jobId}`, undefined, jobId);
  }

  /** A job of short tasks (most) or long ones, each task writing its start and end lines. */
  private newGraph(r: Random): Record<string, unknown> {
    const jobId = r.hex(32);
    const long = r.chance(0.2);
    const task = (): Record<string, unknown> => {
      const seconds = long ? (r.int(20, 50) / 10).toFixed(1) : (r.int(1, 4) / 10).toFixed(1);
      return { type: 'command', argv: ['sh', '-c', taskScript(this.options.taskFile, seconds)] };
    };
    const vertices: Array<Record<string, unknown>> = [{ id: 'source', parallelism: r.int(1, 2), task: task() }];
    if (!long || r.chance(0.5)) vertices.push({ id: 'sink', parallelism: 1, inputs: ['source'], task: task() });
    return { jobId, name: `${long ? 'long' : 'short'}-${jobId.slice(0, 6)}`, vertices, restartStrategy: { type: 'fixed-delay', attempts: 1000, delayMs: 200 } };
  }

  /** One operation: attempts until an answer that ends it or the deadline; recorded in the history. */
  private async op(client: string, index: number, kind: OpKind, method: string, path: string, body?: unknown, jobId?: string): Promise<OpEvent> {
    const { replicas, recorder, opDeadlineMs } = this.options;
    const start = Date.now();
    const deadline = start + opDeadlineMs;
    const attempts: Attempt[] = [];
    let target = replicas[index % replicas.length];
    let hop = index;
    let url = `${target}${path}`;
    let final: { status: number; outcome: OpEvent['outcome']; state?: string } | null = null;
    let mayHaveLanded = false;
    while (Date.now() < deadline) {
      const t = Date.now();
      let res: JsonResponse;
      try {
        res = await requestJson(method, url, body, { timeoutMs: Math.max(500, Math.min(5000, deadline - t)) });
      } catch (err) {
        if (!(err instanceof HttpTransportError)) throw err;
        const code = err.code ?? (err.kind === 'timeout' ? 'TimeoutError' : err.detail);
        attempts.push({ t, url, status: 0, error: code });
        // Refused: nothing arrived. A timeout or reset after sending: the leader may have acted.
        if (code !== 'ECONNREFUSED') mayHaveLanded = true;
        hop++;
        target = replicas[hop % replicas.length];
        url = `${target}${path}`;
        await sleep(100);
        continue;
      }
      const attempt: Attempt = { t, url, status: res.status };
      const retryAfter = res.headers.get('retry-after');
      if (retryAfter) attempt.retryAfter = retryAfter;
      const parsed: any = res.body;
      if (Array.isArray(parsed?.errors) && typeof parsed.errors[0] === 'string') attempt.message = String(parsed.errors[0]).slice(0, 300);
      attempts.push(attempt);
      if (res.status === 307) {
        const location = res.headers.get('location');
        if (location) url = location;
        continue;
      }
      if (res.status === 503) {
        if (/stored|UNCONFIRMED|confirm/i.test(attempt.message ?? '')) mayHaveLanded = true;
        // Retry-After is in seconds; a chaos client retries sooner but never hammers.
        await sleep(Math.min(500, Math.max(100, Number(retryAfter) * 1000 || 250)));
        // A standby that knows no leader yet: try the next replica too.
        hop++;
        url = `${replicas[hop % replicas.length]}${path}`;
        continue;
      }
      if (res.status >= 500) {
        final = { status: res.status, outcome: 'unknown' };
        break;
      }
      final = { status: res.status, outcome: res.status < 300 ? 'ok' : 'rejected', state: typeof parsed?.state === 'string' ? parsed.state : undefined };
      break;
    }
    const op: OpEvent = {
      kind: 'op', id: recorder.nextOpId(), client, op: kind, start, end: Date.now(),
      outcome: final?.outcome ?? (mayHaveLanded && (kind === 'submit' || kind === 'resubmit' || kind === 'cancel') ? 'unknown' : 'unavailable'),
      status: final?.status ?? 0, attempts,
    };
    if (jobId) op.jobId = jobId;
    if (kind === 'submit' || kind === 'resubmit') op.graph = body;
    if (final?.state) op.state = final.state;
    recorder.record(op);
    return op;
  }
}

/**
 * A job of tiny tasks whose vertices have the given parallelisms (a chain: each reads the previous one),
 * e.g. [6, 1]: 7 subtasks.
 */
export function tinyGraph(jobId: string, taskFile: string, parallelisms: number[], name = `tiny-${jobId.slice(0, 6)}`): Record<string, unknown> {
  const vertices = parallelisms.map((parallelism, i) => ({
    id: `v${i}`, parallelism, ...(i > 0 ? { inputs: [`v${i - 1}`] } : {}),
    task: { type: 'command', argv: ['sh', '-c', taskScript(taskFile, '0.1')] },
  }));
  return { jobId, name, vertices, restartStrategy: { type: 'fixed-delay', attempts: 1000, delayMs: 200 } };
}

/** The task: start line, sleep, end line. `date +%s%3N` gives epoch milliseconds (GNU coreutils). */
export function taskScript(taskFile: string, seconds: string): string {
  const line = (phase: string): string => `echo "$(date +%s%3N) ${phase} $JOB_ID $VERTEX_ID $SUBTASK_INDEX $ATTEMPT $$" >> '${taskFile}'`;
  return `${line('start')}; sleep ${seconds}; ${line('end')}`;
}
