/**
 * The history of one chaos run: what clients asked and saw, which faults were injected, what the
 * replicas and TaskManagers logged about leadership and task deployment, which task processes
 * really started, and the final state read back after the run. The runner records it; the checker
 * (checker.ts) reads nothing else, so a history saved as JSON lines can be checked again later.
 *
 * Times are epoch milliseconds from the same machine's clock (every process runs on loopback).
 */
import * as fs from 'node:fs';

/** One HTTP exchange inside a client operation (a 307 and its follow-up are two attempts). */
export interface Attempt {
  t: number;
  url: string;
  /** HTTP status, or 0 when no answer arrived (refused, reset, timed out). */
  status: number;
  retryAfter?: string;
  error?: string;
  /** First error message of a `{"errors": [...]}` body. */
  message?: string;
}

/** `submit-over-limit`: a graph beyond the dispatcher's limits, which must be refused (400) and change nothing. */
export type OpKind = 'submit' | 'resubmit' | 'submit-over-limit' | 'cancel' | 'status' | 'list' | 'overview';

/**
 * A client operation from its first attempt to its final answer.
 * outcome: `ok` (2xx), `rejected` (a final 4xx), `unavailable` (gave up on 503s or unreachable replicas),
 * `unknown` (gave up after a request may have reached the leader).
 */
export interface OpEvent {
  kind: 'op';
  id: number;
  client: string;
  op: OpKind;
  jobId?: string;
  /** The JobGraph a submit sent (with its jobId), so the checker can compare what was stored. */
  graph?: unknown;
  start: number;
  end: number;
  outcome: 'ok' | 'rejected' | 'unavailable' | 'unknown';
  /** Final HTTP status (0 if none). */
  status: number;
  attempts: Attempt[];
  /** Job state a status read returned. */
  state?: string;
}

export interface FaultEvent {
  kind: 'fault';
  t: number;
  name: string;
  phase: 'inject' | 'heal';
  target: string;
  detail?: string;
}

/** From a replica's `leadership.granted` / `leadership.ready` / `leadership.revoked` log lines. */
export interface LeadershipEvent {
  kind: 'leadership';
  t: number;
  replicaId: string;
  /** Process incarnation (a restarted replica keeps its id). */
  incarnation?: number;
  epoch: number;
  change: 'granted' | 'ready' | 'revoked';
  reason?: string;
}

/** A TaskManager learned of a leader epoch (leader retrieval, registration). */
export interface TmEpochEvent {
  kind: 'tm-epoch';
  t: number;
  /** Position in the TaskManager's own log, to order events within one millisecond. */
  seq: number;
  tm: string;
  incarnation?: number;
  epoch: number;
  source: string;
}

/** A TaskManager accepted a deploy command (its `task.status` DEPLOYING line carries the command's epoch). */
export interface DeployEvent {
  kind: 'deploy';
  t: number;
  seq: number;
  tm: string;
  incarnation?: number;
  jobId: string;
  vertexId: string;
  subtask: number;
  attempt: number;
  epoch: number;
}

/** A TaskManager refused a command from an epoch below the highest it had seen (fencing at work). */
export interface RejectedCommandEvent {
  kind: 'rejected-command';
  t: number;
  tm: string;
  epoch: number;
  highestEpoch: number;
}

/** A task process wrote its start (or end) line: the ground truth that work ran. */
export interface TaskEvent {
  kind: 'task';
  t: number;
  phase: 'start' | 'end';
  jobId: string;
  vertexId: string;
  subtask: number;
  attempt: number;
  pid: number;
}

export interface FinalJob {
  jobId: string;
  /** GET /jobs/:id on the leader after the run: status code and, when 200, the job's state and shape. */
  restStatus: number;
  state?: string;
  name?: string;
  vertices?: Array<{ id: string; parallelism: number }>;
  endTime?: number;
  /** Read from ZooKeeper directly: which store holds the job, and the digest of the graph it holds. */
  stored: 'jobgraphs' | 'jobresults' | 'both' | 'none' | 'unreadable';
  storedDigest?: string;
  resultStatus?: string;
  resultEndTime?: number;
}

export interface FinalEvent {
  kind: 'final';
  t: number;
  /** A job still running at the end is legitimate if it showed activity this recently. */
  legitimateRunningMs: number;
  jobs: FinalJob[];
}

export interface ScenarioEvent {
  kind: 'scenario';
  t: number;
  name: string;
  phase: 'start' | 'end';
  seed?: number;
  /** `expectNoFailovers: true`: the scenario injects nothing that may change the leader (checked). */
  settings?: Record<string, unknown>;
}

/**
 * A hostile ZooKeeper client (no credentials, no state key) wrote or deleted something: a forged
 * JobGraph (`jobId`), a forged `/leader/info` (its `url` points at the trap), a deleted latch node.
 */
export interface ForgeryEvent {
  kind: 'forgery';
  t: number;
  what: 'jobgraph' | 'leader-info-ephemeral' | 'leader-info-persistent' | 'latch-delete';
  path: string;
  jobId?: string;
  url?: string;
}

/** Evidence that forged state was trusted: the trap behind a forged leader URL was contacted, or a forged task's marker file exists. */
export interface ForgeryTrustedEvent {
  kind: 'forgery-trusted';
  t: number;
  how: 'trap-contacted' | 'marker-written';
  detail: string;
  jobId?: string;
}

/** Anything else worth keeping (process restarts, notes); the checker ignores it. */
export interface NoteEvent {
  kind: 'note';
  t: number;
  text: string;
  data?: Record<string, unknown>;
}

export type HistoryEvent = OpEvent | FaultEvent | LeadershipEvent | TmEpochEvent | DeployEvent | RejectedCommandEvent | TaskEvent | FinalEvent | ScenarioEvent
  | ForgeryEvent | ForgeryTrustedEvent | NoteEvent;

/** Collects events in memory and, when given a file, appends each as a JSON line as it happens. */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];
  private opIds = 0;

  constructor(private readonly file?: string) {
    if (file) fs.writeFileSync(file, '');
  }

  nextOpId(): number {
    return ++this.opIds;
  }

  record(event: HistoryEvent): void {
    this.events.push(event);
    if (this.file) fs.appendFileSync(this.file, `${JSON.stringify(event)}\n`);
  }

  note(text: string, data?: Record<string, unknown>): void {
    this.record({ kind: 'note', t: Date.now(), text, data });
  }
}

export function readHistory(file: string): HistoryEvent[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as HistoryEvent);
}
