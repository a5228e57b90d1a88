/**
 * Fakes for `createApp(deps)` unit tests: a Dispatcher whose role, jobs and answers a test sets
 * directly, leader retrieval as a settable `current`, an in-memory ZooKeeper client (FakeZkClient)
 * and a logger that records events.
 */
import { AppDeps, RestDispatcher } from '../../src/rest/deps';
import { Role, JobSummary, SubmitResult, Page, PageRequest } from '../../src/dispatcher/dispatcher';
import type { AdmissionStatus } from '../../src/dispatcher/admission';
import type { ResultRetention } from '../../src/dispatcher/result-retention';
import { LeaderInfo } from '../../src/election/leader-info';
import { ExceptionEntry, JobDetails } from '../../src/jobmaster/types';
import { QuarantineEntry } from '../../src/store/jobgraph-store';
import { NotFoundError } from '../../src/http/errors';
import { createMetrics } from '../../src/metrics/metrics';
import { EventFields, EventLogger } from '../../src/util/logger';
import { FakeZkClient } from './fake-zk';

export class FakeDispatcher implements RestDispatcher {
  role: Role = 'leader';
  epoch: number | null = 7;
  /** Bodies passed to `submit`, in order. */
  readonly submitted: unknown[] = [];
  /** Thrown by the next and every later `submit` while set. */
  submitError: Error | null = null;
  readonly cancelled: string[] = [];
  jobs: JobSummary[] = [];
  details: JobDetails[] = [];
  quarantine: QuarantineEntry[] = [];

  async submit(body: unknown): Promise<SubmitResult> {
    this.submitted.push(body);
    if (this.submitError) throw this.submitError;
    return { jobId: (body as { jobId: string }).jobId, created: true };
  }

  async cancel(jobId: string): Promise<void> {
    this.find(jobId);
    this.cancelled.push(jobId);
  }

  listJobs(): JobSummary[] { return this.jobs; }
  jobsOverview(): JobDetails[] { return this.details; }
  /** Pages by position in `jobs` / `details` (the cursor's submittedAt is the index). */
  pageOfJobs(page: PageRequest): Page<JobSummary> { return fakePage(this.jobs, page, (j) => j.id); }
  pageOfJobsOverview(page: PageRequest): Page<JobDetails> { return fakePage(this.details, page, (d) => d.jid); }
  admissionStatus(): AdmissionStatus {
    return { pendingJobs: this.jobs.length, storedGraphBytes: 0, submissionTokens: 10, limits: { maxPendingJobs: 100, maxStoredGraphBytes: 1_000_000, submissionRate: 10, submissionBurst: 10 } };
  }
  resultRetentionStatus(): { retention: ResultRetention; results: number; historyLoaded: boolean } {
    return { retention: { maxCount: 1000 }, results: 0, historyLoaded: true };
  }
  async jobDetails(jobId: string): Promise<JobDetails> { return this.find(jobId); }

  async jobExceptions(jobId: string): Promise<{ 'root-exception': string | null; timestamp: number | null; 'exception-history': { entries: ExceptionEntry[] } }> {
    this.find(jobId);
    return { 'root-exception': null, timestamp: null, 'exception-history': { entries: [] } };
  }

  async executionResult(jobId: string): Promise<{ status: { id: 'IN_PROGRESS' | 'COMPLETED' } }> {
    this.find(jobId);
    return { status: { id: 'IN_PROGRESS' } };
  }

  quarantined(): QuarantineEntry[] { return this.quarantine; }

  jobCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const j of this.jobs) counts[j.status] = (counts[j.status] ?? 0) + 1;
    return counts;
  }

  private find(jobId: string): JobDetails {
    const details = this.details.find((d) => d.jid === jobId);
    if (!details) throw new NotFoundError(`job ${jobId} not found`);
    return details;
  }
}

function fakePage<T>(items: T[], { after, limit }: PageRequest, id: (item: T) => string): Page<T> {
  const from = after ? after.submittedAt + 1 : 0;
  const slice = items.slice(from, from + limit);
  const last = from + slice.length - 1;
  return { items: slice, next: last + 1 < items.length && slice.length > 0 ? { submittedAt: last, jobId: id(items[last]) } : null };
}

export interface LoggedEvent { level: 'debug' | 'info' | 'warn' | 'error'; event: string; fields: EventFields }

export class RecordingLogger implements EventLogger {
  constructor(readonly events: LoggedEvent[] = []) {}
  debug(event: string, fields: EventFields = {}): void { this.events.push({ level: 'debug', event, fields }); }
  info(event: string, fields: EventFields = {}): void { this.events.push({ level: 'info', event, fields }); }
  warn(event: string, fields: EventFields = {}): void { this.events.push({ level: 'warn', event, fields }); }
  error(event: string, fields: EventFields = {}): void { this.events.push({ level: 'error', event, fields }); }
  child(): EventLogger { return new RecordingLogger(this.events); }
}

/** Leader info as a ready leader publishes it in /leader/info. */
export function leaderInfo(replicaId: string, restUrl: string, epoch: number): LeaderInfo {
  return { replicaId, restUrl, rpcUrl: restUrl, epoch, zkSessionId: '1', electedAt: '2024-01-01T00:00:00.000Z', readyAt: '2024-01-01T00:00:01.000Z' };
}

export interface FakeRestDeps {
  deps: AppDeps;
  dispatcher: FakeDispatcher;
  retrieval: { current: LeaderInfo | null };
  client: FakeZkClient;
  logger: RecordingLogger;
}

/**
 * Deps of replica `replica-a` (REST URL http://a.test:8081): the ready leader at epoch 7, connected,
 * metrics on, no token, 1 KiB body limit. `overrides` replace any field of the deps.
 */
export function fakeRestDeps(overrides: Partial<AppDeps> = {}): FakeRestDeps {
  const dispatcher = new FakeDispatcher();
  const retrieval = { current: leaderInfo('replica-a', 'http://a.test:8081', 7) as LeaderInfo | null };
  const client = new FakeZkClient();
  const logger = new RecordingLogger();
  const deps: AppDeps = {
    replicaId: 'replica-a', version: '9.9.9-test', dispatcher, retrieval, client, logger,
    metrics: createMetrics(),
    publicConfig: { 'rest.port': 8081 },
    maxBodyBytes: 1024,
    ...overrides,
  };
  return { deps, dispatcher, retrieval, client, logger };
}

/** Makes `f` a standby of a ready leader `replica-b` (http://b.test:8081/, epoch 8). */
export function asStandby(f: FakeRestDeps): void {
  f.dispatcher.role = 'standby';
  f.dispatcher.epoch = null;
  f.retrieval.current = leaderInfo('replica-b', 'http://b.test:8081/', 8);
}
