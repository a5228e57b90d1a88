/**
 * The Dispatcher: a leader contender. On grant it recovers (results first, then every unfinished
 * graph), starts a JobMaster per job, and only then confirms leadership. On revoke it suspends every
 * JobMaster (never cancels, never deletes) and drops all leader state. Submissions are acknowledged
 * only once the graph is in ZooKeeper.
 */
import { LRUCache } from 'lru-cache';
import { LeaderElectionService, LeaderContender, LeadershipTerm } from '../election/service';
import { canonicalJson, generateJobId, isJobId, JobGraph, JobGraphLimits, parseJobGraph } from '../jobgraph';
import { JobDetails, JobMaster, JobMasterFactory, JobStatus, TerminalOutcome, ExceptionEntry } from '../jobmaster/types';
import { JobGraphStore, graphDigest, QuarantineEntry, StoredGraph } from '../store/jobgraph-store';
import { JOBGRAPHS_PATH } from '../zk/layout';
import { JobResultEntry, JobResultStore } from '../store/jobresult-store';
import { ZkClient } from '../zk/client';
import { ZkError } from '../zk/errors';
import { ConflictError, HttpError, NotFoundError, NotLeaderError, ValidationError } from '../http/errors';
import { EventLogger, silentLogger } from '../util/logger';
import { Clock, sleep, systemClock } from '../util/clock';
import { DispatcherMetrics } from '../metrics/metrics';
import { SerialQueue } from '../util/serial-queue';

export type Role = 'standby' | 'recovering' | 'leader';

/** Window in which `/jobgraphs` watch events are coalesced into one adoption pass. */
const ADOPTION_COALESCE_MS = 100;
/** JobMasters started between two paced round trips during adoption. */
const ADOPTION_BATCH = 200;

export interface DispatcherOptions {
  client: ZkClient;
  election: LeaderElectionService;
  jobMasterFactory: JobMasterFactory;
  limits: JobGraphLimits;
  jobstore: { maxCapacity: number; expirationMs: number };
  metrics?: DispatcherMetrics;
  logger?: EventLogger;
  clock?: Clock;
  /** Extra cleanup of a job whose result is recorded (the execution backend's progress node). */
  onJobCleanup?: (jobId: string, guard: () => void) => Promise<void>;
  /** Epoch-ms of the last answer of the leader before the term with `epoch` (leader liveness), for the failover metric. */
  predecessorLastSeenAt?: (epoch: number) => number | undefined;
}

export interface SubmitResult { jobId: string; created: boolean }
export interface JobSummary { id: string; status: JobStatus }

interface TrackedJob { jobMaster: JobMaster; digest: string; submittedAt: number }

/** Everything that exists only while this replica leads one term. */
class LeaderState {
  readonly jobs = new Map<string, TrackedJob>();
  readonly results = new Map<string, JobResultEntry>();
  readonly guard: () => void;
  /** Ids being submitted right now, so the /jobgraphs watch does not start them a second time. */
  readonly submitting = new Set<string>();
  /** Jobs whose result record cannot be read: never run, never cleaned up, reported. */
  readonly unreadableResults = new Set<string>();
  quarantined: QuarantineEntry[] = [];
  /** Adoption passes (recovery and /jobgraphs watch events) run one at a time. */
  readonly adoptions = new SerialQueue();
  /** A coalesced adoption pass is waiting for its timer. */
  adoptionScheduled = false;
  ready = false;
  constructor(readonly term: LeadershipTerm, guard: () => void, readonly graphStore: JobGraphStore<JobGraph>, readonly resultStore: JobResultStore) {
    this.guard = guard;
  }
}

export class Dispatcher implements LeaderContender {
  private state: LeaderState | null = null;
  private recovering = false;
  private readonly completed: LRUCache<string, JobDetails>;
  /** Failure history of completed jobs, kept as long as their details. */
  private readonly completedExceptions: LRUCache<string, ExceptionEntry[]>;
  private readonly logger: EventLogger;
  private readonly clock: Clock;

  constructor(private readonly options: DispatcherOptions) {
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.completed = new LRUCache({ max: Math.max(1, options.jobstore.maxCapacity), ttl: options.jobstore.expirationMs });
    this.completedExceptions = new LRUCache({ max: Math.max(1, options.jobstore.maxCapacity), ttl: options.jobstore.expirationMs });
  }

  get role(): Role {
    if (this.state?.ready && this.options.election.isLeader(this.state.term)) return 'leader';
    return this.recovering ? 'recovering' : 'standby';
  }

  get epoch(): number | null { return this.state?.term.epoch ?? null; }

  // ---- leadership -------------------------------------------------------------------------

  async grantLeadership(term: LeadershipTerm): Promise<void> {
    this.options.metrics?.leadershipChanged('granted');
    // A failed recovery is retried while the term lasts: holding the latch without ever serving
    // would block every standby, and exiting would turn a bad moment into a crash loop.
    for (let attempt = 0; this.options.election.isLeader(term); attempt++) {
      if (await this.recoverAndServe(term, attempt)) return;
      await sleep(Math.min(5000, 250 * 2 ** attempt));
    }
  }

  /** One recovery attempt; true when done (ready, or leadership already gone). */
  private async recoverAndServe(term: LeadershipTerm, attempt: number): Promise<boolean> {
    const { client, election, metrics } = this.options;
    const guard = (): void => {
      if (!election.isLeader(term)) throw new NotLeaderError('leadership was lost; the write was not made');
    };
    const parse = (raw: unknown): JobGraph => parseJobGraph(raw, this.options.limits);
    const state = new LeaderState(term, guard, new JobGraphStore(client, guard, parse), new JobResultStore(client, guard));
    this.state = state;
    this.recovering = true;
    this.logger.info('dispatcher.recovery.started', { epoch: term.epoch, attempt });
    try {
      await this.recover(state);
      if (election.isLeader(term) && this.state === state) state.ready = await election.confirmLeadership(term);
      this.recovering = false;
      if (!state.ready) return true;
      const seconds = (this.clock.now() - term.grantedAt) / 1000;
      metrics?.leaderReady({ grantedAt: term.grantedAt, predecessorGoneAt: term.predecessorGoneAt,
        leaderLastSeenAt: this.options.predecessorLastSeenAt?.(term.epoch), now: this.clock.now() });
      this.logger.info('dispatcher.ready', { epoch: term.epoch, jobs: state.jobs.size, recoveryMs: Math.round(seconds * 1000) });
      return true;
    } catch (err) {
      this.logger.error('dispatcher.recovery.failed', { epoch: term.epoch, attempt, error: err as Error });
      if (this.state === state) await this.dropLeaderState(state, 'recovery failed');
      this.recovering = election.isLeader(term);
      return false;
    }
  }

  async revokeLeadership(term: LeadershipTerm, reason: string): Promise<void> {
    const state = this.state;
    this.options.metrics?.leadershipChanged('revoked');
    if (!state || state.term !== term) return;
    await this.dropLeaderState(state, reason);
  }

  /**
   * A leadership callback failed (or the election reported an error): never serve a half-set-up term.
   * Drops the term's leader state (JobMasters suspended) and resigns the term, so a standby can lead
   * while this replica keeps running and contends again.
   */
  async handleError(err: Error): Promise<void> {
    const { election } = this.options;
    const term = election.currentTerm;
    this.logger.error('dispatcher.leadership.error', { epoch: term?.epoch ?? null, action: term ? 'resign' : 'none', error: err });
    const state = this.state;
    if (state) await this.dropLeaderState(state, 'leadership error');
    if (term) await election.resign(term);
  }

  private async dropLeaderState(state: LeaderState, reason: string): Promise<void> {
    this.state = null;
    this.recovering = false;
    this.options.metrics?.quarantined.set(0); // leader state; jobs, epoch and leader gauges follow the role at scrape time
    await Promise.all([...state.jobs.values()].map((j) => j.jobMaster.suspend().catch((err) => {
      this.logger.error('job.suspend.failed', { jobId: j.jobMaster.jobId, error: err as Error });
    })));
    this.logger.info('dispatcher.suspended', { epoch: state.term.epoch, reason, jobs: state.jobs.size });
  }

  private async recover(state: LeaderState): Promise<void> {
    const { graphStore, resultStore, term } = state;
    // Independent reads go out together: every sequential round trip here delays the failover.
    await Promise.all([graphStore.init(), resultStore.init()]);
    const [results, quarantined] = await Promise.all([resultStore.readAll(), graphStore.listQuarantined()]);
    for (const stored of results) {
      if (!stored.ok) {
        // An unreadable result still means "this job ended": never run it again; report it.
        this.logger.error('jobresult.unreadable', { jobId: stored.jobId, reason: stored.reason, epoch: term.epoch });
        state.results.set(stored.jobId, unreadableResult(stored.jobId));
        state.unreadableResults.add(stored.jobId);
        continue;
      }
      state.results.set(stored.entry.jobId, stored.entry);
      if (stored.entry.state === 'dirty') await this.cleanUp(state, stored.entry.jobId);
    }
    state.quarantined = quarantined;
    await state.adoptions.run(() => this.adoptStoredGraphs(state, true));
    this.options.metrics?.quarantined.set(state.quarantined.length);
  }

  /**
   * Starts a JobMaster for every stored graph not yet tracked and without a result. Also re-arms the
   * `/jobgraphs` watch, so a graph written in the last moments of a previous term is never orphaned.
   */
  private async adoptStoredGraphs(state: LeaderState, recovering: boolean): Promise<void> {
    const { graphStore, term } = state;
    const ids = await graphStore.listIds(() => this.scheduleAdoption(state));
    const fresh = ids.filter((id) => !state.jobs.has(id) && !state.submitting.has(id));
    const stored = await graphStore.readAll(fresh);
    // Recovery may start thousands of JobMasters, each reading its progress at once. Pace them: a
    // round trip issued after a batch is answered only once the batch's reads were (a session's answers
    // come in order), so with at most two batches outstanding the event loop never drowns in answers
    // for longer than the session timeout (pings must get out, or the server expires the session and
    // the term is lost), while ZooKeeper still works on one batch as this process handles the other.
    let previousBatch: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < fresh.length; i++) {
      if (i > 0 && i % ADOPTION_BATCH === 0) {
        const batch = this.options.client.exists(JOBGRAPHS_PATH);
        batch.catch(() => undefined); // awaited below, one batch later (or moot once the loop ends)
        await previousBatch;
        previousBatch = batch;
        if (this.state !== state) return;
      }
      const id = fresh[i];
      const graph = stored[i];
      if (!graph || state.jobs.has(id) || state.submitting.has(id)) continue;
      if (state.results.has(id)) {
        // A result exists: the graph is leftover cleanup work (kept as evidence if the result is unreadable).
        if (!state.unreadableResults.has(id)) await this.cleanUp(state, id);
        continue;
      }
      if (!isJobId(id)) {
        await this.quarantine(state, { jobId: id, ok: false, reason: 'node name is not a job id', raw: graph.ok ? Buffer.from(JSON.stringify(graph.envelope)) : graph.raw });
        continue;
      }
      if (!graph.ok) {
        await this.quarantine(state, graph);
        continue;
      }
      this.startJobMaster(state, graph.envelope.graph, graph.envelope.digest, Date.parse(graph.envelope.submittedAt) || this.clock.now(), true);
      this.logger.info('job.recovered', { jobId: id, epoch: term.epoch, during: recovering ? 'grant' : 'watch' });
    }
  }

  /**
   * A `/jobgraphs` membership change. The leader's own submissions and cleanups fire the watch too,
   * and a listing costs time proportional to the number of stored graphs, so passes are coalesced:
   * at most one listing per ADOPTION_COALESCE_MS instead of one per submission. Nothing is missed:
   * the next listing sees every change made meanwhile, and re-arms the watch.
   */
  private scheduleAdoption(state: LeaderState): void {
    if (state.adoptionScheduled) return;
    state.adoptionScheduled = true;
    const timer = this.clock.setTimeout(() => {
      state.adoptionScheduled = false;
      if (this.state !== state || !this.options.election.isLeader(state.term)) return;
      void state.adoptions.run(() => this.adoptStoredGraphs(state, false))
        .catch((err) => this.logger.warn('jobgraphs.watch.failed', { error: err as Error }));
    }, ADOPTION_COALESCE_MS);
    timer.unref?.();
  }

  private async quarantine(state: LeaderState, graph: Extract<StoredGraph<JobGraph>, { ok: false }>): Promise<void> {
    const entry = await state.graphStore.quarantine(graph.jobId, graph.raw, graph.reason);
    state.quarantined.push(entry);
    this.options.metrics?.quarantined.set(state.quarantined.length);
    this.logger.error('jobgraph.quarantined', { jobId: graph.jobId, reason: graph.reason, node: entry.node, epoch: state.term.epoch });
  }

  private startJobMaster(state: LeaderState, graph: JobGraph, digest: string, submittedAt: number, recovered: boolean): void {
    const jobMaster = this.options.jobMasterFactory({
      graph,
      term: state.term,
      guard: state.guard,
      submittedAt,
      recovered,
      onTerminal: (outcome) => { void this.onJobTerminal(state, graph, digest, outcome); },
    });
    state.jobs.set(graph.jobId, { jobMaster, digest, submittedAt });
    jobMaster.start();
  }

  /** Terminal job: dirty result → graph removed → result clean; then the job lives in the cache. */
  private async onJobTerminal(state: LeaderState, graph: JobGraph, digest: string, outcome: TerminalOutcome): Promise<void> {
    const jobId = graph.jobId;
    if (this.state !== state) return; // a suspended JobMaster's late outcome belongs to no term
    try {
      const entry = await state.resultStore.createDirty({
        jobId, name: graph.name, jobStatus: outcome.status, graphDigest: digest,
        startTime: outcome.details['start-time'], endTime: outcome.details['end-time'], failure: outcome.failure,
      });
      state.results.set(jobId, entry);
      this.completed.set(jobId, outcome.details);
      if (outcome.exceptions?.length) this.completedExceptions.set(jobId, outcome.exceptions);
      state.jobs.delete(jobId);
      if (outcome.status === 'FAILED') this.options.metrics?.jobFailures.inc();
      this.logger.info('job.status', { jobId, status: outcome.status, epoch: state.term.epoch, terminal: true });
      await this.cleanUp(state, jobId);
    } catch (err) {
      // Not recorded: the next leader recovers the job and its persisted progress finishes it.
      this.logger.error('jobresult.write.failed', { jobId, status: outcome.status, error: err as Error });
    }
  }

  private async cleanUp(state: LeaderState, jobId: string): Promise<void> {
    await state.graphStore.remove(jobId);
    await this.options.onJobCleanup?.(jobId, state.guard);
    await state.resultStore.markClean(jobId);
    const entry = state.results.get(jobId);
    if (entry) state.results.set(jobId, { ...entry, state: 'clean' });
  }

  // ---- requests (leader only) ---------------------------------------------------------------

  private requireLeader(): LeaderState {
    const state = this.state;
    if (!state || !state.ready || !this.options.election.isLeader(state.term)) throw new NotLeaderError();
    return state;
  }

  async submit(body: unknown): Promise<SubmitResult> {
    const state = this.requireLeader();
    const { metrics } = this.options;
    let graph: JobGraph;
    try {
      graph = parseJobGraph(body, this.options.limits);
    } catch (err) {
      metrics?.submissions.inc({ outcome: 'invalid' });
      throw err;
    }
    const digest = graphDigest(canonicalJson(graph));
    const jobId = graph.jobId;
    const known = state.jobs.get(jobId)?.digest ?? state.results.get(jobId)?.graphDigest;
    if (known !== undefined) return this.answerResubmission(jobId, known, digest);
    if (state.submitting.has(jobId)) {
      metrics?.submissions.inc({ outcome: 'in_progress' });
      throw new HttpError(503, `job ${jobId} is being submitted right now; retry the same request`, { code: 'IN_PROGRESS', headers: { 'Retry-After': '1' } });
    }
    state.submitting.add(jobId);
    try {
      const submittedAt = this.clock.now();
      const put = await state.graphStore.put(jobId, { formatVersion: 1, submittedAt: new Date(submittedAt).toISOString(), digest, graph });
      if (!put.created) {
        const existing = put.existing;
        if (!existing.ok) throw new ConflictError(`job ${jobId} exists in the store but is unreadable (${existing.reason}); submit with another jobId`);
        if (existing.envelope.digest !== digest) return this.answerResubmission(jobId, existing.envelope.digest, digest);
        if (!state.jobs.has(jobId)) this.startJobMaster(state, existing.envelope.graph, digest, Date.parse(existing.envelope.submittedAt), true);
        metrics?.submissions.inc({ outcome: 'duplicate' });
        return { jobId, created: false };
      }
      if (this.state !== state) throw new NotLeaderError('leadership was lost during submission; retry the same request');
      this.startJobMaster(state, graph, digest, submittedAt, false);
      metrics?.submissions.inc({ outcome: 'accepted' });
      this.logger.info('job.submitted', { jobId, name: graph.name, epoch: state.term.epoch, vertices: graph.vertices.length });
      return { jobId, created: true };
    } catch (err) {
      if (err instanceof ZkError) {
        metrics?.submissions.inc({ outcome: 'unconfirmed' });
        // The write may or may not have landed: the same request (same jobId) is safe to retry.
        throw new HttpError(503, `could not confirm that job ${jobId} was stored (${err.code}); retry the same request with "jobId": "${jobId}"`, { code: 'UNCONFIRMED', headers: { 'Retry-After': '1' } });
      }
      if (err instanceof NotLeaderError) metrics?.submissions.inc({ outcome: 'not_leader' });
      throw err;
    } finally {
      state.submitting.delete(jobId);
    }
  }

  private answerResubmission(jobId: string, storedDigest: string, digest: string): SubmitResult {
    if (storedDigest !== digest) {
      this.options.metrics?.submissions.inc({ outcome: 'conflict' });
      throw new ConflictError(`job ${jobId} was already submitted with a different graph; use a new jobId or resubmit the identical graph`);
    }
    this.options.metrics?.submissions.inc({ outcome: 'duplicate' });
    return { jobId, created: false };
  }

  /** Generates an id for graphs submitted without one, before validation sees them. */
  static withJobId(body: unknown): unknown {
    if (body && typeof body === 'object' && !Array.isArray(body) && !('jobId' in body)) return { ...body, jobId: generateJobId() };
    return body;
  }

  cancel(jobId: string): void {
    const state = this.requireLeader();
    assertJobId(jobId);
    const job = state.jobs.get(jobId);
    if (job) {
      this.logger.info('job.cancel.requested', { jobId, epoch: state.term.epoch });
      job.jobMaster.cancel();
      return;
    }
    const result = state.results.get(jobId);
    if (result) throw new ConflictError(`job ${jobId} already ended with status ${result.jobStatus}; nothing to cancel`);
    throw new NotFoundError(`job ${jobId} not found`);
  }

  listJobs(): JobSummary[] {
    const state = this.requireLeader();
    const jobs: JobSummary[] = [...state.jobs.entries()].map(([id, j]) => ({ id, status: visibleStatus(j.jobMaster.status) }));
    for (const [id, r] of state.results) if (!state.jobs.has(id)) jobs.push({ id, status: r.jobStatus });
    return jobs;
  }

  jobsOverview(): JobDetails[] {
    const state = this.requireLeader();
    const running = [...state.jobs.values()].map((j) => visibleDetails(j.jobMaster.details()));
    const done = [...state.results.values()].filter((r) => !state.jobs.has(r.jobId)).map((r) => this.completedDetails(r));
    return [...running, ...done];
  }

  jobDetails(jobId: string): JobDetails {
    const state = this.requireLeader();
    assertJobId(jobId);
    const job = state.jobs.get(jobId);
    if (job) return visibleDetails(job.jobMaster.details());
    const result = state.results.get(jobId);
    if (result) return this.completedDetails(result);
    throw new NotFoundError(`job ${jobId} not found`);
  }

  jobExceptions(jobId: string): { 'root-exception': string | null; timestamp: number | null; 'exception-history': { entries: ExceptionEntry[] } } {
    const state = this.requireLeader();
    assertJobId(jobId);
    const job = state.jobs.get(jobId);
    let entries: ExceptionEntry[];
    if (job) entries = job.jobMaster.exceptions();
    else {
      const result = state.results.get(jobId);
      if (!result) throw new NotFoundError(`job ${jobId} not found`);
      entries = this.completedExceptions.get(jobId)
        ?? (result.failure ? [{ timestamp: result.failure.timestamp, exceptionName: 'JobFailure', stacktrace: result.failure.message }] : []);
    }
    const root = entries[entries.length - 1];
    return { 'root-exception': root?.stacktrace ?? null, timestamp: root?.timestamp ?? null, 'exception-history': { entries } };
  }

  executionResult(jobId: string): { status: { id: 'IN_PROGRESS' | 'COMPLETED' }; 'job-execution-result'?: object } {
    const state = this.requireLeader();
    assertJobId(jobId);
    if (state.jobs.has(jobId)) return { status: { id: 'IN_PROGRESS' } };
    const r = state.results.get(jobId);
    if (!r) throw new NotFoundError(`job ${jobId} not found`);
    return {
      status: { id: 'COMPLETED' },
      'job-execution-result': { id: jobId, 'application-status': r.jobStatus, 'net-runtime': r.endTime - r.startTime, ...(r.failure ? { 'failure-cause': r.failure } : {}) },
    };
  }

  quarantined(): QuarantineEntry[] {
    return this.requireLeader().quarantined;
  }

  jobCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const j of this.listJobs()) counts[j.status] = (counts[j.status] ?? 0) + 1;
    return counts;
  }

  private completedDetails(result: JobResultEntry): JobDetails {
    const cached = this.completed.get(result.jobId);
    if (cached && cached.state === result.jobStatus) return cached;
    // Evicted or from an earlier term: the final status always comes from the result store.
    return {
      jid: result.jobId, name: result.name, state: result.jobStatus,
      'start-time': result.startTime, 'end-time': result.endTime, duration: result.endTime - result.startTime,
      now: this.clock.now(), timestamps: { [result.jobStatus]: result.endTime }, vertices: [], restarts: 0, attempt: 0,
    };
  }
}

/**
 * A JobMaster that reached a terminal status stays tracked until its result is durably recorded. Until
 * then nobody may be told the job ended: if the write fails (the leader lost ZooKeeper), the next leader
 * recovers the job and runs it on, and a client that had read CANCELED would see it run and FINISH.
 * So the status shows the step before: CANCELLING, FAILING, or RUNNING for a finishing job.
 */
const UNRECORDED_TERMINAL: Partial<Record<JobStatus, JobStatus>> = { CANCELED: 'CANCELLING', FAILED: 'FAILING', FINISHED: 'RUNNING' };

function visibleStatus(status: JobStatus): JobStatus {
  return UNRECORDED_TERMINAL[status] ?? status;
}

function visibleDetails(details: JobDetails): JobDetails {
  const state = visibleStatus(details.state);
  if (state === details.state) return details;
  const timestamps = { ...details.timestamps };
  delete timestamps[details.state];
  return { ...details, state, 'end-time': -1, duration: details.now - details['start-time'], timestamps };
}

function assertJobId(jobId: string): asserts jobId is string {
  if (!isJobId(jobId)) throw new ValidationError(`job id must be 32 lowercase hex characters, got ${JSON.stringify(String(jobId).slice(0, 80))}`);
}

function unreadableResult(jobId: string): JobResultEntry {
  return { state: 'clean', jobId, name: '(unreadable result)', jobStatus: 'FAILED', startTime: 0, endTime: 0, graphDigest: '', failure: { message: 'the stored job result is unreadable', timestamp: 0 } };
}
