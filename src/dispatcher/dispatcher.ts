/**
 * The Dispatcher: a leader contender. On grant it reads what it needs to list jobs (the stored graphs
 * and the results of those jobs only; with a hot standby mirror, only what changed), tracks every
 * unfinished job, and confirms leadership at once; each recovered job's JobMaster is then built and
 * started in the background, a few at a time (recovery-pool.ts), each job on its own — until its
 * JobMaster runs, a recovered job shows RECONCILING, and its TaskManagers' reports are kept for it. A finished-but-not-cleaned-up job is cleaned up, never rerun, and an unreadable graph
 * quarantined, both before the confirm (rare, and the listings must show them); the retained history of results is loaded (and trimmed to the retention) in the
 * background too. On revoke it suspends every JobMaster (never cancels, never deletes, no ZooKeeper
 * I/O) and drops all leader state. Submissions pass admission
 * control and are acknowledged only once the graph is in ZooKeeper, cancels only once the request is
 * (`/jobs/<id>/cancel`), so a failover right after either answer keeps it: recovery cancels a job
 * whose cancel was recorded.
 */
import { LRUCache } from 'lru-cache';
import { LeaderElectionService, LeaderContender, LeadershipTerm } from '../election/service';
import { canonicalJson, generateJobId, isJobId, JobGraph, JobGraphLimits, parseJobGraph } from '../jobgraph';
import { JobDetails, JobMaster, JobMasterFactory, JobStatus, TerminalOutcome, ExceptionEntry, isTerminalJobStatus } from '../jobmaster/types';
import { JobGraphStore, graphDigest, QuarantineEntry, StoredGraph } from '../store/jobgraph-store';
import { JobResultEntry, JobResultStore, StoredResult } from '../store/jobresult-store';
import { CancelRequestStore } from '../store/cancel-request-store';
import { ZooKeeperClient } from '../zk/client';
import { ZkError } from '../zk/errors';
import { ConflictError, HttpError, NotFoundError, NotLeaderError, ValidationError } from '../http/errors';
import { EventLogger, silentLogger } from '../util/logger';
import { Clock, sleep, systemClock } from '../util/clock';
import { DispatcherMetrics } from '../metrics/metrics';
import { SerialQueue } from '../util/serial-queue';
import { AdmissionController, AdmissionLimits, AdmissionRejectedError, AdmissionStatus } from './admission';
import { describeRetention, ResultRetention, ResultSweeper } from './result-retention';
import { countOutcomes, emptyCounts, RecoveryOutcome, RecoveryPool } from './recovery-pool';
import { MirrorSnapshot, StandbyMirror } from '../store/standby-mirror';

export type Role = 'standby' | 'recovering' | 'leader';

/**
 * Window in which `/jobgraphs` watch events are coalesced into one adoption pass: at least
 * ADOPTION_COALESCE_MS, and one ms per ADOPTION_IDS_PER_MS stored graphs (capped at
 * ADOPTION_COALESCE_MAX_MS), so listing under a stream of submissions costs at most about
 * ADOPTION_IDS_PER_MS listed ids per ms, however many graphs are stored.
 */
const ADOPTION_COALESCE_MS = 100;
const ADOPTION_COALESCE_MAX_MS = 2000;
const ADOPTION_IDS_PER_MS = 10;
/**
 * Recovery steps (mostly JobMaster starts, each loading its progress) running at once after the grant:
 * bounds the ZooKeeper answers this process must handle at a time, so pings still get out and the
 * session (and with it the term) is never lost to a flood of reads.
 */
const RECOVERY_CONCURRENCY = 16;
/** Longest wait between retries of a job's recovery step that met ZooKeeper trouble. */
const RECOVERY_RETRY_MAX_MS = 5000;
/** Recovered jobs tracked per event-loop turn after the grant (promotePending): requests are served between chunks. */
const PROMOTE_CHUNK = 500;

export interface DispatcherOptions {
  client: ZooKeeperClient;
  election: LeaderElectionService;
  jobMasterFactory: JobMasterFactory;
  limits: JobGraphLimits;
  jobstore: { maxCapacity: number; expirationMs: number };
  /** Admission control of new jobs; unlimited when absent. */
  admission?: AdmissionLimits;
  /** Retention of job results in ZooKeeper; the last 1000 jobs when absent. */
  retention?: ResultRetention;
  metrics?: DispatcherMetrics;
  logger?: EventLogger;
  clock?: Clock;
  /**
   * A recovered job whose JobMaster is not built yet: keep its TaskManagers' reports until it registers
   * (the ResourceManager's `expectJob`). Returns the release of that. Nothing is kept when absent.
   */
  expectRecoveredJob?: (term: LeadershipTerm, jobId: string) => () => void;
  /** Extra cleanup of a job whose result is recorded (the execution backend's progress node). */
  onJobCleanup?: (jobId: string, guard: () => void) => Promise<void>;
  /** Epoch-ms of the last answer of the leader before the term with `epoch` (leader liveness), for the failover metric. */
  predecessorLastSeenAt?: (epoch: number) => number | undefined;
  /**
   * Keep a verified mirror of graphs, results and quarantine while standby (src/store/standby-mirror.ts),
   * so a grant reads only what changed. Off when absent.
   */
  standbyMirror?: boolean;
}

export interface SubmitResult { jobId: string; created: boolean }
export interface JobSummary { id: string; status: JobStatus }

/** Position in the job listing order: submission time (epoch-ms), then job id. */
export interface JobCursor { submittedAt: number; jobId: string }
/** A page request: up to `limit` jobs strictly after `after` in listing order. */
export interface PageRequest { after?: JobCursor; limit: number }
/** One page; `next` is the cursor of its last job when more follow, else null. */
export interface Page<T> { items: T[]; next: JobCursor | null }

/** Job results read on demand (not yet in the term's index) kept per term. */
const RESULT_CACHE_SIZE = 1000;
const UNLIMITED: AdmissionLimits = { maxPendingJobs: Infinity, maxStoredGraphBytes: Infinity, submissionRate: Infinity, submissionBurst: Infinity };

interface TrackedJob {
  /**
   * Null while a recovered job waits for its turn in the recovery pool: building 10,000 JobMasters
   * before publishing would make the failover grow with the stored jobs. Built on its turn, or when a
   * cancel or a detailed view needs it first (ensureJobMaster).
   */
  jobMaster: JobMaster | null;
  graph: JobGraph;
  digest: string;
  submittedAt: number;
  bytes: number;
  /** Recovered from the store by this term (not submitted to it). */
  recovered: boolean;
  /** `jobMaster.start()` was called (a recovered job waits for the recovery pool, or a cancel). */
  started: boolean;
  /** The principal that submitted the job (REST roles), when recorded. */
  submittedBy?: string;
  /** Ends the keeping of a recovered job's TaskManager reports (when it is given up before its JobMaster registers). */
  releaseReports?: () => void;
}

/** Everything that exists only while this replica leads one term. */
class LeaderState {
  readonly jobs = new Map<string, TrackedJob>();
  /** Results known this term: recorded, found at recovery, loaded with the history. */
  readonly results = new Map<string, JobResultEntry>();
  /** Results read on demand before the history was loaded. */
  readonly resultCache = new LRUCache<string, JobResultEntry>({ max: RESULT_CACHE_SIZE });
  /** Bytes of the stored graphs of tracked jobs (admission). */
  storedGraphBytes = 0;
  sweeper: ResultSweeper | null = null;
  readonly guard: () => void;
  /** Ids being submitted right now, so the /jobgraphs watch does not start them a second time. */
  readonly submitting = new Set<string>();
  /** Jobs whose result record cannot be read: never run, never cleaned up, reported. */
  readonly unreadableResults = new Set<string>();
  quarantined: QuarantineEntry[] = [];
  /** Adoption passes (recovery and /jobgraphs watch events) run one at a time. */
  readonly adoptions = new SerialQueue();
  /** Per-job recovery steps, started once the term is ready. */
  readonly recovery = new RecoveryPool(RECOVERY_CONCURRENCY);
  /** Outcomes of the steps queued by the grant's adoption pass (`recovery.completed`). */
  readonly grantSteps: Array<Promise<RecoveryOutcome>> = [];
  /** Stored graphs settled before the grant's confirm (cleanups, quarantines, failures), by every attempt of the term. */
  settledAtGrant = emptyCounts();
  /** A coalesced adoption pass is waiting for its timer. */
  adoptionScheduled = false;
  /** Children of `/jobgraphs` in the latest listing: sets the next coalescing window. */
  listedGraphs = 0;
  /**
   * The stored graphs a grant found in the mirror (its own map: read-only; the mirror is stopped while
   * this replica leads), not yet tracked one by one: listed as RECONCILING from the moment the leader
   * is ready, tracked in the background (promotePending) or at once when a request names one
   * (promote). Tracking 10,000 jobs before publishing would make the failover grow with the stored jobs.
   * Null once all are tracked.
   */
  pending: ReadonlyMap<string, StoredGraph<JobGraph>> | null = null;
  /** Ids of `pending` already tracked or settled. */
  readonly promoted = new Set<string>();
  /** Pending jobs expected at the grant (expectRecoveredJob), by id: the release their tracking takes over. */
  readonly expected = new Map<string, () => void>();
  /** Settles once every pending graph is tracked (or the term ended). */
  promotion: Promise<void> = Promise.resolve();
  ready = false;
  constructor(readonly term: LeadershipTerm, guard: () => void, readonly graphStore: JobGraphStore<JobGraph>, readonly resultStore: JobResultStore,
    readonly cancelRequests: CancelRequestStore) {
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
  private readonly admission: AdmissionController;
  readonly retention: ResultRetention;
  /** The standby mirror (when enabled): runs while this replica does not lead. */
  readonly mirror: StandbyMirror<JobGraph> | null = null;

  constructor(private readonly options: DispatcherOptions) {
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.admission = new AdmissionController(options.admission ?? UNLIMITED, this.clock);
    this.retention = options.retention ?? { maxCount: 1000 };
    this.completed = new LRUCache({ max: Math.max(1, options.jobstore.maxCapacity), ttl: options.jobstore.expirationMs });
    this.completedExceptions = new LRUCache({ max: Math.max(1, options.jobstore.maxCapacity), ttl: options.jobstore.expirationMs });
    if (options.standbyMirror) {
      const readOnly = (): void => { throw new NotLeaderError('the standby mirror never writes'); };
      const parse = (raw: unknown): JobGraph => parseJobGraph(raw, options.limits);
      this.mirror = new StandbyMirror(options.client, new JobGraphStore(options.client, readOnly, parse), new JobResultStore(options.client, readOnly), this.logger,
        this.clock, isJobId);
      this.mirror.start(); // a new replica is a standby; before the session connects it arms on CONNECTED
    }
  }

  /** Stops the standby mirror (the replica is closing). */
  close(): void {
    this.mirror?.stop();
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
    // What earlier attempts settled stays settled (and counted in recovery.completed).
    const settled = emptyCounts();
    for (let attempt = 0; this.options.election.isLeader(term); attempt++) {
      if (await this.recoverAndServe(term, attempt, settled)) return;
      await sleep(Math.min(5000, 250 * 2 ** attempt));
    }
  }

  /** One recovery attempt; true when done (ready, or leadership already gone). */
  private async recoverAndServe(term: LeadershipTerm, attempt: number, settled: LeaderState['settledAtGrant']): Promise<boolean> {
    const { client, election, metrics } = this.options;
    const guard = (): void => {
      if (!election.isLeader(term)) throw new NotLeaderError('leadership was lost; the write was not made');
    };
    const parse = (raw: unknown): JobGraph => parseJobGraph(raw, this.options.limits);
    const state = new LeaderState(term, guard, new JobGraphStore(client, guard, parse), new JobResultStore(client, guard), new CancelRequestStore(client, guard));
    state.settledAtGrant = settled;
    this.state = state;
    this.recovering = true;
    this.logger.info('dispatcher.recovery.started', { epoch: term.epoch, attempt });
    try {
      await this.recover(state);
      if (election.isLeader(term) && this.state === state) state.ready = await election.confirmLeadership(term);
      this.recovering = false;
      if (!state.ready) return true;
      const readyAt = this.clock.now();
      state.promotion = this.promotePending(state);
      state.recovery.start();
      // The grant used the mirror's names of /jobgraphs: list them now, which also arms the leader's own
      // watch and adopts a graph a previous term wrote in its last moments.
      if (this.mirror) this.runAdoption(state);
      this.startSweeper(state);
      metrics?.leaderReady({ grantedAt: term.grantedAt, predecessorGoneAt: term.predecessorGoneAt,
        leaderLastSeenAt: this.options.predecessorLastSeenAt?.(term.epoch), now: readyAt });
      const resuming = state.grantSteps.length + pendingCount(state);
      this.logger.info('dispatcher.ready', { epoch: term.epoch, jobs: state.jobs.size + pendingCount(state), recoveryMs: Math.round(readyAt - term.grantedAt), resuming });
      void this.reportRecovery(state, readyAt);
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

  /**
   * Suspends every JobMaster and forgets the term. No ZooKeeper I/O: a suspended JobMaster only stops
   * acting locally, and queued recovery steps are dropped (a graceful stop hands over at once).
   */
  private async dropLeaderState(state: LeaderState, reason: string): Promise<void> {
    this.state = null;
    state.sweeper?.stop();
    state.recovery.stop();
    this.recovering = false;
    this.options.metrics?.quarantined.set(0); // leader state; jobs, epoch and leader gauges follow the role at scrape time
    this.mirror?.start(); // standby again: only what changed while leading is read
    await Promise.all([...state.jobs.values()].map((j) => j.jobMaster?.suspend().catch((err) => {
      this.logger.error('job.suspend.failed', { jobId: j.graph.jobId, error: err as Error });
    })));
    this.logger.info('dispatcher.suspended', { epoch: state.term.epoch, reason, jobs: state.jobs.size });
  }

  /**
   * The part of recovery before the leader publishes itself: what listing jobs needs (graph ids, the
   * graphs, the results of those jobs, the quarantine), and every unfinished job tracked (its JobMaster
   * not built yet). Everything else is queued in the recovery pool.
   */
  private async recover(state: LeaderState): Promise<void> {
    const { graphStore, resultStore } = state;
    this.mirror?.stop(); // the leader reads the store itself from here on
    // Independent requests go out together: every sequential round trip here delays the failover. With a
    // mirror: sync, compare children, read only what changed since the last event (the folders exist:
    // the mirror listed them; without one, init makes them before the listing below).
    const [known] = await Promise.all([this.mirror?.catchUp(), graphStore.init(), resultStore.init()]);
    // Results are read for stored graphs only (during adoption): the history waits until after ready.
    const adopt = known ? () => this.adoptFromMirror(state, known) : () => this.adoptStoredGraphs(state, 'grant');
    const [quarantined] = await Promise.all([known?.quarantine ?? graphStore.listQuarantined(), state.adoptions.run(adopt)]);
    // The adoption pass quarantines in parallel with the listing: each record once.
    const added = state.quarantined.filter((q) => !quarantined.some((l) => l.node === q.node));
    state.quarantined = [...quarantined, ...added];
    this.options.metrics?.quarantined.set(state.quarantined.length);
  }

  /** Once the grant's recovery steps are done: one `recovery.completed` line with counts and durations (ms). */
  private async reportRecovery(state: LeaderState, readyAt: number): Promise<void> {
    await state.promotion;
    const outcomes = await Promise.all(state.grantSteps);
    if (this.state !== state) return;
    const now = this.clock.now();
    const counts = countOutcomes(outcomes);
    for (const k of Object.keys(counts) as Array<keyof typeof counts>) counts[k] += state.settledAtGrant[k];
    this.logger.info('recovery.completed', {
      epoch: state.term.epoch, ...counts,
      publishMs: Math.round(readyAt - state.term.grantedAt), resumeMs: Math.round(now - readyAt), totalMs: Math.round(now - state.term.grantedAt),
    });
  }

  /**
   * Tracks every stored graph not yet tracked: reads the graphs and the results of exactly those jobs,
   * tracks each unfinished job and queues its JobMaster's build and start (and any cleanup or
   * quarantine) in the recovery pool. Lists `/jobgraphs` with a watch, so a graph written in the last
   * moments of a previous term is never orphaned. A grant without a mirror, and every watch event,
   * come here (a grant with one: adoptFromMirror). Touches `/jobgraphs` (children, watch),
   * `/jobgraphs/<id>`, `/jobresults/<id>` (reads).
   */
  private async adoptStoredGraphs(state: LeaderState, during: 'grant' | 'watch'): Promise<void> {
    const { graphStore } = state;
    const ids = await graphStore.listIds(() => this.scheduleAdoption(state));
    state.listedGraphs = ids.length;
    const fresh = ids.filter((id) => !state.jobs.has(id) && !state.submitting.has(id) && !state.recovery.has(id) && !pendingGraph(state, id));
    // A graph with a result is a job that ended before its cleanup finished: read exactly those results.
    const [stored, results] = await Promise.all([graphStore.readAll(fresh), state.resultStore.getMany(fresh.filter((id) => !state.results.has(id)))]);
    if (this.state !== state) return;
    for (const result of results) this.adoptResult(state, result);
    for (let i = 0; i < fresh.length; i++) {
      const id = fresh[i];
      const graph = stored[i];
      if (!graph || state.jobs.has(id) || state.submitting.has(id)) continue;
      if (state.results.has(id) || !isJobId(id) || !graph.ok) {
        await this.settleAtAdoption(state, id, graph, during);
        continue;
      }
      const step = this.trackStoredGraph(state, id, graph, during);
      if (during === 'grant') state.grantSteps.push(step);
    }
  }

  /**
   * A grant with the mirror caught up (`known`, its own collections): the rare graphs that are no job
   * to run — a leftover cleanup (a result exists), an unreadable graph, a name that is no job id — are
   * settled here, before the leader publishes itself, as a listing pass does; every other graph becomes
   * `pending`, listed at once and tracked after the confirm (promotePending). Per stored graph only its
   * job is expected (expectRecoveredJob: a set insertion), so its TaskManagers' reports are kept from the
   * confirm on. Touches what settling touches (`/jobgraphs/<id>`, `/jobresults/<id>`,
   * `/quarantine/jobgraphs`, `/jobs/<id>`).
   */
  private async adoptFromMirror(state: LeaderState, known: MirrorSnapshot<JobGraph>): Promise<void> {
    state.listedGraphs = known.graphIds.length;
    for (const result of known.results.values()) this.adoptResult(state, result);
    const settle = new Set([...known.results.keys(), ...known.suspects]);
    for (const id of settle) {
      const graph = known.graphs.get(id);
      if (!graph || state.promoted.has(id)) continue;
      await this.settleAtAdoption(state, id, graph, 'grant');
      state.promoted.add(id);
    }
    // The term's ResourceManager hears TaskManagers from the confirm on, and answers a report of a job
    // it does not expect with 'cancel' (or acknowledges an outcome unnoted): every pending job is
    // expected now, one cheap call each, before its turn in promotePending tracks it.
    const { expectRecoveredJob } = this.options;
    if (expectRecoveredJob) {
      for (const [id, graph] of known.graphs) if (graph.ok && !state.promoted.has(id)) state.expected.set(id, expectRecoveredJob(state.term, id));
    }
    state.pending = known.graphs;
  }

  /**
   * A stored graph that is not a job to run, met by an adoption pass: settled now (rare, a few writes
   * each, and what the listings must already show). ZooKeeper trouble is thrown (the pass is retried);
   * any other error fails that job alone.
   */
  private async settleAtAdoption(state: LeaderState, id: string, graph: StoredGraph<JobGraph>, during: 'grant' | 'watch'): Promise<void> {
    try {
      const outcome = await this.settleStoredGraph(state, id, graph);
      if (outcome && during === 'grant') state.settledAtGrant[outcome]++;
    } catch (err) {
      if (isRetryableRecoveryError(err)) throw err;
      await this.failUnrecoverable(state, id, graph, err as Error);
      if (during === 'grant') state.settledAtGrant.failed++;
    }
  }

  /**
   * After the confirm: tracks every pending graph (see LeaderState.pending), PROMOTE_CHUNK per turn of
   * the event loop, queueing each job's recovery step. Ends when all are tracked or the term ended.
   */
  private async promotePending(state: LeaderState): Promise<void> {
    const pending = state.pending;
    if (!pending) return;
    let done = 0;
    for (const id of pending.keys()) {
      if (this.state !== state) return;
      this.promote(state, id);
      if (++done % PROMOTE_CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.state === state) state.pending = null;
  }

  /** Tracks a pending graph now (its recovery step queued); the tracked job, or undefined when `id` is none. */
  private promote(state: LeaderState, id: string): TrackedJob | undefined {
    const graph = pendingGraph(state, id);
    if (!graph) return undefined;
    state.promoted.add(id);
    // Suspects were settled at the grant; a graph that is not a job to run never reaches here.
    if (!graph.ok || !isJobId(id) || state.results.has(id) || state.jobs.has(id)) {
      state.expected.get(id)?.();
      state.expected.delete(id);
      return state.jobs.get(id);
    }
    state.grantSteps.push(this.trackStoredGraph(state, id, graph, 'grant'));
    return state.jobs.get(id);
  }

  /**
   * A stored graph that is not a job to run: a job with a result is cleaned up (never run; the graph is
   * kept as evidence if the result is unreadable), an unreadable graph or a name that is no job id is
   * quarantined. Null when nothing was done.
   */
  private async settleStoredGraph(state: LeaderState, id: string, graph: StoredGraph<JobGraph>): Promise<'cleaned' | 'quarantined' | null> {
    if (state.results.has(id)) {
      if (state.unreadableResults.has(id)) return null;
      await this.cleanUp(state, id);
      return 'cleaned';
    }
    if (!isJobId(id)) {
      await this.quarantine(state, { jobId: id, ok: false, reason: 'node name is not a job id', raw: graph.ok ? Buffer.from(JSON.stringify(graph.envelope)) : graph.raw });
      return 'quarantined';
    }
    if (!graph.ok) {
      await this.quarantine(state, graph);
      return 'quarantined';
    }
    return null;
  }

  /**
   * An unfinished job (readable graph, no result): tracked now (so REST lists it, RECONCILING, and its
   * TaskManagers' reports are kept for it); building and starting its JobMaster is queued in the
   * recovery pool. A JobMaster that cannot be built fails the job there (deterministic).
   */
  private trackStoredGraph(state: LeaderState, id: string, graph: Extract<StoredGraph<JobGraph>, { ok: true }>, during: 'grant' | 'watch'): Promise<RecoveryOutcome> {
    const job = this.trackJob(state, graph.envelope.graph, graph.envelope.digest, storedSubmittedAt(state, graph), true,
      graph.bytes ?? Buffer.byteLength(JSON.stringify(graph.envelope)), submitterOf(graph.envelope), 'later');
    return this.queueStep(state, id, graph, () => this.resumeJob(state, job, during));
  }

  /**
   * Queues one job's recovery step. ZooKeeper trouble is retried (backoff up to RECOVERY_RETRY_MAX_MS)
   * while the term lasts; any other error is deterministic and fails this job alone (failUnrecoverable).
   */
  private queueStep(state: LeaderState, id: string, graph: StoredGraph<JobGraph>, step: () => Promise<RecoveryOutcome>): Promise<RecoveryOutcome> {
    return state.recovery.add(id, async () => {
      for (let attempt = 0; ; attempt++) {
        if (this.state !== state) return 'abandoned';
        try {
          return await step();
        } catch (err) {
          if (this.state !== state || err instanceof NotLeaderError) return 'abandoned';
          if (!isRetryableRecoveryError(err)) {
            await this.failUnrecoverable(state, id, graph, err as Error).catch((e) => {
              this.logger.error('job.recovery.failed', { jobId: id, epoch: state.term.epoch, reason: `recording the failure failed too: ${(e as Error).message}` });
            });
            return 'failed';
          }
          this.logger.debug('job.recovery.retry', { jobId: id, epoch: state.term.epoch, attempt, error: err as Error });
          await sleep(Math.min(RECOVERY_RETRY_MAX_MS, 100 * 2 ** attempt));
        }
      }
    });
  }

  /**
   * A recovered job's turn: builds its JobMaster (a factory error is deterministic: queueStep fails the
   * job), reads its recorded cancel (`/jobs/<id>/cancel`), then starts it.
   */
  private async resumeJob(state: LeaderState, job: TrackedJob, during: 'grant' | 'watch'): Promise<RecoveryOutcome> {
    const jobId = job.graph.jobId;
    this.ensureJobMaster(state, job);
    const cancelRequested = await state.cancelRequests.isRecorded(jobId);
    if (this.state !== state || state.jobs.get(jobId) !== job) return 'abandoned';
    if (job.started) return 'recovered'; // a client's cancel started it meanwhile
    this.logger.debug('job.recovered', { jobId, epoch: state.term.epoch, during, cancelRequested });
    await this.startTracked(state, job, cancelRequested);
    return 'recovered';
  }

  /**
   * Starts a tracked job's JobMaster (once; built first if needed); with `cancel` it is canceled right
   * away (an acknowledged cancel: the job ends CANCELED; what its tasks do meanwhile is no failure).
   * Resolves once it runs. Throws what the JobMaster factory throws, before anything is marked started.
   */
  private startTracked(state: LeaderState, job: TrackedJob, cancel: boolean): Promise<void> {
    const jobMaster = this.ensureJobMaster(state, job);
    job.started = true;
    const running = jobMaster.start();
    if (cancel) jobMaster.cancel();
    return running;
  }

  /**
   * A stored job whose recovery failed deterministically (its state cannot be stored, its record cannot
   * be quarantined, its JobMaster cannot be built): a readable graph ends FAILED with the reason in its
   * recorded result (`/jobresults/<jobId>`) and is cleaned up like any ended job; anything else stays
   * where it is, logged (`job.recovery.failed`), and is skipped — the leader serves the other jobs.
   */
  private async failUnrecoverable(state: LeaderState, id: string, graph: StoredGraph<JobGraph>, err: Error): Promise<void> {
    const reason = `the job cannot be recovered: ${err.message}`;
    this.logger.error('job.recovery.failed', { jobId: id, epoch: state.term.epoch, reason, recorded: graph.ok && isJobId(id) });
    const tracked = state.jobs.get(id);
    if (tracked) {
      tracked.jobMaster?.suspend().catch(() => undefined);
      tracked.releaseReports?.();
      state.jobs.delete(id);
      state.storedGraphBytes -= tracked.bytes;
    }
    if (!graph.ok || !isJobId(id)) return;
    const now = this.clock.now();
    const submittedAt = Date.parse(graph.envelope.submittedAt) || now;
    const entry = await state.resultStore.createDirty({
      jobId: id, name: graph.envelope.graph.name, jobStatus: 'FAILED', graphDigest: graph.envelope.digest,
      startTime: submittedAt, endTime: now, failure: { message: reason, timestamp: now },
    });
    state.results.set(id, entry);
    this.options.metrics?.jobFailures.inc();
    await this.cleanUp(state, id);
  }

  /**
   * A `/jobgraphs` membership change. The leader's own submissions and cleanups fire the watch too,
   * and a listing costs time proportional to the number of stored graphs (in the leader and in
   * ZooKeeper), so passes are coalesced: at most one listing per window (ADOPTION_COALESCE_MS, longer
   * the more graphs the latest listing held) instead of one per submission. Nothing is missed: the
   * next listing sees every change made meanwhile, and re-arms the watch.
   */
  private scheduleAdoption(state: LeaderState): void {
    if (state.adoptionScheduled) return;
    state.adoptionScheduled = true;
    const timer = this.clock.setTimeout(() => {
      state.adoptionScheduled = false;
      if (this.state !== state || !this.options.election.isLeader(state.term)) return;
      this.runAdoption(state);
    }, adoptionWindowMs(state.listedGraphs));
    timer.unref?.();
  }

  /** One adoption pass with a listing of `/jobgraphs` (and its watch), after the passes already queued. */
  private runAdoption(state: LeaderState): void {
    void state.adoptions.run(() => this.adoptStoredGraphs(state, 'watch'))
      .catch((err) => this.logger.warn('jobgraphs.watch.failed', { error: err as Error }));
  }

  private async quarantine(state: LeaderState, graph: Extract<StoredGraph<JobGraph>, { ok: false }>): Promise<void> {
    const entry = await state.graphStore.quarantine(graph.jobId, graph.raw, graph.reason);
    state.quarantined.push(entry);
    this.options.metrics?.quarantined.set(state.quarantined.length);
    this.logger.error('jobgraph.quarantined', { jobId: graph.jobId, reason: graph.reason, node: entry.node, epoch: state.term.epoch });
  }

  /** Adds a stored result to the term's index (an unreadable one as a FAILED placeholder, never rerun). */
  private adoptResult(state: LeaderState, stored: StoredResult): void {
    if (!stored.ok) {
      // An unreadable result still means "this job ended": never run it again; report it.
      this.logger.error('jobresult.unreadable', { jobId: stored.jobId, reason: stored.reason, epoch: state.term.epoch });
      state.results.set(stored.jobId, unreadableResult(stored.jobId));
      state.unreadableResults.add(stored.jobId);
      return;
    }
    state.results.set(stored.entry.jobId, stored.entry);
    state.resultCache.delete(stored.entry.jobId);
  }

  /** Once ready: load the retained history in the background and keep `/jobresults` within retention. */
  private startSweeper(state: LeaderState): void {
    state.sweeper = new ResultSweeper({
      store: state.resultStore,
      results: state.results,
      unreadable: state.unreadableResults,
      active: () => this.state === state && state.ready && this.options.election.isLeader(state.term),
      adopt: (stored) => {
        this.adoptResult(state, stored);
        // Dirty with its graph already gone: the leader before died between removing the graph and
        // marking the result clean (recovery finds only dirty results whose graph still exists).
        if (stored.ok && stored.entry.state === 'dirty' && !state.jobs.has(stored.entry.jobId)) {
          this.cleanUp(state, stored.entry.jobId).catch((err) => this.logger.warn('jobresult.cleanup.failed', { jobId: stored.entry.jobId, error: err as Error }));
        }
      },
      cleanUp: (jobId) => this.cleanUp(state, jobId),
      onDeleted: (count) => this.options.metrics?.jobResultsDeleted.inc(count),
    }, this.retention, this.clock, this.logger);
    state.sweeper.start();
  }

  /**
   * Tracks a job (not started). `build` 'now' builds its JobMaster at once (throws what the factory
   * throws); 'later' (a recovered job) leaves that to ensureJobMaster and keeps its TaskManagers'
   * reports meanwhile (expectRecoveredJob).
   */
  private trackJob(state: LeaderState, graph: JobGraph, digest: string, submittedAt: number, recovered: boolean, bytes: number, submittedBy: string | undefined,
    build: 'now' | 'later'): TrackedJob {
    const job: TrackedJob = { jobMaster: null, graph, digest, submittedAt, bytes, recovered, started: false, ...(submittedBy !== undefined ? { submittedBy } : {}) };
    if (build === 'now') this.ensureJobMaster(state, job);
    else {
      job.releaseReports = state.expected.get(graph.jobId) ?? this.options.expectRecoveredJob?.(state.term, graph.jobId);
      state.expected.delete(graph.jobId);
    }
    state.jobs.set(graph.jobId, job);
    state.storedGraphBytes += bytes;
    return job;
  }

  /** The job's JobMaster, built on first use. Throws what the JobMaster factory throws. */
  private ensureJobMaster(state: LeaderState, job: TrackedJob): JobMaster {
    if (job.jobMaster) return job.jobMaster;
    const { graph, digest } = job;
    job.jobMaster = this.options.jobMasterFactory({
      graph,
      term: state.term,
      guard: state.guard,
      submittedAt: job.submittedAt,
      recovered: job.recovered,
      onTerminal: (outcome) => { void this.onJobTerminal(state, graph, digest, outcome); },
    });
    return job.jobMaster;
  }

  /**
   * Tracks a submitted job at once (listings, details and cancels see it as soon as the submission is
   * answered) and starts its JobMaster on the next turn of the event loop, after the answer is on its
   * way: building and starting it is not part of what the 202 confirms (the graph is stored), so it
   * stays off the request's critical path, and so does `announce` (the submission's log line), which
   * runs first. A cancel meanwhile starts it itself (`started`); a term that ended meanwhile suspended it.
   */
  private startJobMaster(state: LeaderState, graph: JobGraph, digest: string, submittedAt: number, recovered: boolean, bytes: number,
    submittedBy?: string, announce?: () => void): void {
    const job = this.trackJob(state, graph, digest, submittedAt, recovered, bytes, submittedBy, 'now');
    setImmediate(() => {
      announce?.();
      if (job.started || this.state !== state || state.jobs.get(graph.jobId) !== job) return;
      this.startTracked(state, job, false).catch((err) => {
        this.logger.error('job.start.failed', { jobId: graph.jobId, epoch: state.term.epoch, error: err as Error });
      });
    });
  }

  /**
   * Terminal job: dirty result → graph removed → result clean; then the job lives in the cache.
   * Touches `/jobresults/<jobId>` (create, set), `/jobgraphs/<jobId>` and `/jobs/<jobId>` (delete).
   * A connection loss is retried for as long as this term leads: the session usually survives it
   * (a ZooKeeper server dying under the connection), so no next leader would ever finish the job.
   */
  private async onJobTerminal(state: LeaderState, graph: JobGraph, digest: string, outcome: TerminalOutcome): Promise<void> {
    const jobId = graph.jobId;
    if (this.state !== state) return; // a suspended JobMaster's late outcome belongs to no term
    const tracked = state.jobs.get(jobId);
    const recorded = await this.whileLeading(state, 'jobresult.write', jobId, () => state.resultStore.createDirty({
      jobId, name: graph.name, jobStatus: outcome.status, graphDigest: digest,
      startTime: outcome.details['start-time'], endTime: outcome.details['end-time'], failure: outcome.failure,
      ...(tracked ? { submittedAt: tracked.submittedAt } : {}),
      ...(tracked?.submittedBy !== undefined ? { submittedBy: tracked.submittedBy } : {}),
    }));
    if (!recorded) return; // not recorded: the next leader recovers the job and its persisted progress finishes it
    state.results.set(jobId, recorded);
    this.completed.set(jobId, withSubmitter(outcome.details, tracked?.submittedBy));
    if (outcome.exceptions?.length) this.completedExceptions.set(jobId, outcome.exceptions);
    if (tracked && state.jobs.get(jobId) === tracked) {
      state.jobs.delete(jobId);
      state.storedGraphBytes -= tracked.bytes;
    }
    state.sweeper?.noteRecorded();
    if (outcome.status === 'FAILED') this.options.metrics?.jobFailures.inc();
    this.logger.info('job.status', { jobId, status: outcome.status, epoch: state.term.epoch, terminal: true });
    // A dirty result left behind is cleaned up by the next leader's recovery (or the sweeper).
    await this.whileLeading(state, 'jobresult.cleanup', jobId, async () => { await this.cleanUp(state, jobId); return true; });
  }

  /**
   * Runs `write` until it succeeds, retrying connection losses (backoff 100 ms doubling to 5 s) while
   * `state` is still this leader's term. Returns null when it gave up: the term ended, or a
   * non-transient error (logged as `<event>.failed`). Each retry is logged as `<event>.retry`.
   */
  private async whileLeading<T>(state: LeaderState, event: string, jobId: string, write: () => Promise<T>): Promise<T | null> {
    for (let attempt = 1, backoffMs = 100; ; attempt++, backoffMs = Math.min(backoffMs * 2, 5000)) {
      try {
        return await write();
      } catch (err) {
        const transient = err instanceof ZkError && err.isConnectionLoss;
        const leading = this.state === state && this.options.election.isLeader(state.term);
        if (!transient || !leading) {
          this.logger.error(`${event}.failed`, { jobId, attempt, error: err as Error });
          return null;
        }
        this.logger.warn(`${event}.retry`, { jobId, attempt, backoffMs, error: err as Error });
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, backoffMs));
      }
    }
  }

  /**
   * Progress first, the graph second: while a dirty result's graph exists, recovery finds the result
   * through `/jobgraphs` and redoes the whole cleanup; once the graph is gone, nothing is left but the flag.
   */
  private async cleanUp(state: LeaderState, jobId: string): Promise<void> {
    await state.cancelRequests.remove(jobId); // before the backend removes /jobs/<jobId>, which must be empty by then
    await this.options.onJobCleanup?.(jobId, state.guard);
    await state.graphStore.remove(jobId);
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

  /**
   * Stores a new JobGraph and tracks the job; resolves once the graph is in ZooKeeper, and its JobMaster
   * starts right after (startJobMaster). A resubmission of a known job (same id and graph) answers
   * `created: false` whatever the limits. Touches `/jobgraphs/<jobId>` (one create; a get only when it
   * exists) and, before the history is loaded, reads `/jobresults/<jobId>` (a finished job is never run again).
   * `submittedBy`: the submitting principal, stored (sealed) with the graph and shown with the job; a
   * resubmission keeps the first submitter.
   * @throws ValidationError (400), ConflictError (409), AdmissionRejectedError (429 + Retry-After),
   * HttpError 503 (IN_PROGRESS, UNCONFIRMED) and NotLeaderError (503).
   */
  async submit(body: unknown, submittedBy?: string): Promise<SubmitResult> {
    const state = this.requireLeader();
    // Admission counts tracked jobs and their bytes: just after a failover, wait (milliseconds) until
    // the recovered ones all are.
    if (state.pending) {
      await state.promotion;
      if (this.state !== state) throw new NotLeaderError('leadership was lost during submission; retry the same request');
    }
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
    // Every recovered job is tracked by now (the wait above): a resubmission of one is found here.
    const known = state.jobs.get(jobId)?.digest ?? (await this.findResult(state, jobId))?.graphDigest;
    if (known !== undefined) return this.answerResubmission(jobId, known, digest);
    if (this.state !== state) throw new NotLeaderError('leadership was lost during submission; retry the same request');
    if (state.submitting.has(jobId)) {
      metrics?.submissions.inc({ outcome: 'in_progress' });
      throw new HttpError(503, `job ${jobId} is being submitted right now; retry the same request`, { code: 'IN_PROGRESS', headers: { 'Retry-After': '1' } });
    }
    const submittedAt = this.clock.now();
    const envelope = { formatVersion: 1, submittedAt: new Date(submittedAt).toISOString(), digest, graph, ...(submittedBy !== undefined ? { submittedBy } : {}) };
    // Serialized (and sealed) once: admission counts the bytes the store then writes.
    const encoded = state.graphStore.encode(jobId, envelope);
    const { bytes } = encoded;
    try {
      // Jobs being stored count as pending, so concurrent submissions cannot overshoot the limits.
      this.admission.admit({ pendingJobs: state.jobs.size + state.submitting.size, storedGraphBytes: state.storedGraphBytes }, bytes);
    } catch (err) {
      if (err instanceof AdmissionRejectedError) {
        metrics?.submissions.inc({ outcome: 'throttled' });
        metrics?.admissionRejections.inc({ limit: err.limit });
      }
      throw err;
    }
    state.submitting.add(jobId);
    state.storedGraphBytes += bytes; // reserved while the write is in flight
    try {
      const put = await state.graphStore.put(encoded);
      if (!put.created) {
        const existing = put.existing;
        if (!existing.ok) throw new ConflictError(`job ${jobId} exists in the store but is unreadable (${existing.reason}); submit with another jobId`);
        if (existing.envelope.digest !== digest) return this.answerResubmission(jobId, existing.envelope.digest, digest);
        if (!state.jobs.has(jobId)) this.startJobMaster(state, existing.envelope.graph, digest, Date.parse(existing.envelope.submittedAt), true, existing.bytes ?? bytes, submitterOf(existing.envelope));
        metrics?.submissions.inc({ outcome: 'duplicate' });
        return { jobId, created: false };
      }
      if (this.state !== state) throw new NotLeaderError('leadership was lost during submission; retry the same request');
      this.startJobMaster(state, graph, digest, submittedAt, false, bytes, submittedBy,
        () => this.logger.info('job.submitted', { jobId, name: graph.name, epoch: state.term.epoch, vertices: graph.vertices.length }));
      metrics?.submissions.inc({ outcome: 'accepted' });
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
      state.storedGraphBytes -= bytes;
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

  /**
   * Cancels a running job. Resolves (the REST layer answers 202) only once the request is recorded in
   * `/jobs/<jobId>/cancel`, so a failover right after the answer still ends the job CANCELED. Throws
   * NotFoundError, ConflictError (already ended), NotLeaderError, HttpError 503 UNCONFIRMED when the
   * write could not be confirmed (asking again is safe).
   */
  async cancel(jobId: string): Promise<void> {
    const state = this.requireLeader();
    assertJobId(jobId);
    const job = state.jobs.get(jobId) ?? this.promote(state, jobId);
    if (job) {
      try {
        await state.cancelRequests.record(jobId, state.term.epoch, this.clock.now());
      } catch (err) {
        if (err instanceof ZkError) {
          throw new HttpError(503, `could not confirm that the cancel of job ${jobId} was recorded (${err.code}); retry the same request`, { code: 'UNCONFIRMED', headers: { 'Retry-After': '1' } });
        }
        throw err;
      }
      if (this.state !== state) throw new NotLeaderError('leadership was lost during the cancel; retry the same request');
      this.logger.info('job.cancel.requested', { jobId, epoch: state.term.epoch });
      // A recovered job still waiting for its turn starts now: canceling needs its progress and tasks.
      // A JobMaster that cannot be built is left to the job's recovery step, which fails the job.
      const failedStart = (err: unknown): void => this.logger.error('job.start.failed', { jobId, epoch: state.term.epoch, error: err as Error });
      if (!job.started) {
        try {
          this.startTracked(state, job, true).catch(failedStart);
        } catch (err) {
          failedStart(err);
        }
      } else job.jobMaster?.cancel();
      return;
    }
    const result = await this.requireResult(state, jobId);
    throw new ConflictError(`job ${jobId} already ended with status ${result.jobStatus}; nothing to cancel`);
  }

  /** Every job the leader knows (unfinished ones and loaded results), in listing order. */
  listJobs(): JobSummary[] {
    return this.pageOfJobs({ limit: Infinity }).items;
  }

  /**
   * One page of the job list in a stable order: submission time (epoch-ms), then job id. Jobs added
   * while a client pages appear after its cursor; a job keeps its place when it ends.
   */
  pageOfJobs(page: PageRequest): Page<JobSummary> {
    const state = this.requireLeader();
    return this.page(state, page, (id) => {
      const job = state.jobs.get(id);
      if (!job && pendingGraph(state, id)) return { id, status: 'RECONCILING' as JobStatus };
      return { id, status: job ? trackedStatus(job) : state.results.get(id)!.jobStatus };
    });
  }

  /**
   * Details of every job the leader knows, in listing order: what a metrics scrape reads, so it builds
   * and tracks nothing (a scrape right after a failover would otherwise track every pending job and
   * build every recovered JobMaster at once). A recovered job whose JobMaster is not built yet shows
   * RECONCILING without vertices.
   */
  jobsOverview(): JobDetails[] {
    const state = this.requireLeader();
    return this.page(state, { limit: Infinity }, (id) => {
      const job = state.jobs.get(id);
      if (job) return withSubmitter(job.jobMaster ? this.trackedDetails(state, job) : this.unbuiltDetails(job.graph, job.submittedAt), job.submittedBy);
      const pending = pendingGraph(state, id);
      if (pending?.ok) return withSubmitter(this.unbuiltDetails(pending.envelope.graph, storedSubmittedAt(state, pending)), submitterOf(pending.envelope));
      return this.completedDetails(state.results.get(id)!);
    }).items;
  }

  /** One page of job details, in the order of `pageOfJobs`. */
  pageOfJobsOverview(page: PageRequest): Page<JobDetails> {
    const state = this.requireLeader();
    return this.page(state, page, (id) => {
      const job = state.jobs.get(id) ?? this.promote(state, id);
      return job ? withSubmitter(this.trackedDetails(state, job), job.submittedBy) : this.completedDetails(state.results.get(id)!);
    });
  }

  private page<T>(state: LeaderState, { after, limit }: PageRequest, view: (id: string) => T): Page<T> {
    const keys: JobCursor[] = [...state.jobs.entries()].map(([jobId, j]) => ({ submittedAt: j.submittedAt, jobId }));
    for (const [jobId, g] of pendingGraphs(state)) keys.push({ submittedAt: storedSubmittedAt(state, g), jobId });
    for (const [jobId, r] of state.results) if (!state.jobs.has(jobId)) keys.push({ submittedAt: r.submittedAt ?? r.startTime, jobId });
    keys.sort(compareCursor);
    let from = 0;
    if (after) {
      // First key strictly after the cursor (binary search: the cursor's job may be gone).
      let hi = keys.length;
      while (from < hi) {
        const mid = (from + hi) >>> 1;
        if (compareCursor(keys[mid], after) <= 0) from = mid + 1; else hi = mid;
      }
    }
    const slice = keys.slice(from, from + limit);
    const more = from + slice.length < keys.length;
    return { items: slice.map((k) => view(k.jobId)), next: more && slice.length > 0 ? slice[slice.length - 1] : null };
  }

  /** @throws ValidationError, NotFoundError (with the retention when the job may have been forgotten), NotLeaderError. */
  async jobDetails(jobId: string): Promise<JobDetails> {
    const state = this.requireLeader();
    assertJobId(jobId);
    const job = state.jobs.get(jobId) ?? this.promote(state, jobId);
    if (job) return withSubmitter(this.trackedDetails(state, job), job.submittedBy);
    return this.completedDetails(await this.requireResult(state, jobId));
  }

  async jobExceptions(jobId: string): Promise<{ 'root-exception': string | null; timestamp: number | null; 'exception-history': { entries: ExceptionEntry[] } }> {
    const state = this.requireLeader();
    assertJobId(jobId);
    const job = state.jobs.get(jobId) ?? this.promote(state, jobId);
    let entries: ExceptionEntry[];
    if (job) entries = job.jobMaster?.exceptions() ?? [];
    else {
      const result = await this.requireResult(state, jobId);
      entries = this.completedExceptions.get(jobId)
        ?? (result.failure ? [{ timestamp: result.failure.timestamp, exceptionName: 'JobFailure', stacktrace: result.failure.message }] : []);
    }
    const root = entries[entries.length - 1];
    return { 'root-exception': root?.stacktrace ?? null, timestamp: root?.timestamp ?? null, 'exception-history': { entries } };
  }

  async executionResult(jobId: string): Promise<{ status: { id: 'IN_PROGRESS' | 'COMPLETED' }; 'job-execution-result'?: object }> {
    const state = this.requireLeader();
    assertJobId(jobId);
    if (state.jobs.has(jobId) || pendingGraph(state, jobId)) return { status: { id: 'IN_PROGRESS' } };
    const r = await this.requireResult(state, jobId);
    return {
      status: { id: 'COMPLETED' },
      'job-execution-result': { id: jobId, 'application-status': r.jobStatus, 'net-runtime': r.endTime - r.startTime, ...(r.failure ? { 'failure-cause': r.failure } : {}) },
    };
  }

  quarantined(): QuarantineEntry[] {
    return this.requireLeader().quarantined;
  }

  jobCounts(): Record<string, number> {
    const state = this.requireLeader();
    const counts: Record<string, number> = {};
    const add = (status: string): void => { counts[status] = (counts[status] ?? 0) + 1; };
    for (const j of state.jobs.values()) add(trackedStatus(j));
    if (pendingCount(state) > 0) counts.RECONCILING = (counts.RECONCILING ?? 0) + pendingCount(state);
    for (const [id, r] of state.results) if (!state.jobs.has(id)) add(r.jobStatus);
    return counts;
  }

  /** Admission limits and what counts against them right now (leader only). */
  admissionStatus(): AdmissionStatus {
    const state = this.requireLeader();
    return this.admission.status({ pendingJobs: state.jobs.size + pendingCount(state) + state.submitting.size, storedGraphBytes: state.storedGraphBytes });
  }

  /** Result retention and the results the leader holds (leader only); `historyLoaded` false while the background load runs. */
  resultRetentionStatus(): { retention: ResultRetention; results: number; historyLoaded: boolean } {
    const state = this.requireLeader();
    return { retention: this.retention, results: state.results.size, historyLoaded: state.sweeper?.historyLoaded ?? false };
  }

  /**
   * A finished job's result: from the term's index, else (before the history is loaded) from
   * `/jobresults/<jobId>` on demand, cached. Null when the job has no result.
   */
  private async findResult(state: LeaderState, jobId: string): Promise<JobResultEntry | null> {
    const known = state.results.get(jobId) ?? state.resultCache.get(jobId);
    if (known) return known;
    if (state.sweeper?.historyLoaded) return null; // the index holds every stored result
    const stored = await state.resultStore.get(jobId);
    if (!stored) return null;
    const entry = stored.ok ? stored.entry : unreadableResult(jobId);
    if (this.state === state) state.resultCache.set(jobId, entry);
    return entry;
  }

  private async requireResult(state: LeaderState, jobId: string): Promise<JobResultEntry> {
    const result = await this.findResult(state, jobId);
    if (result) return result;
    throw new NotFoundError(`job ${jobId} not found; finished jobs are kept for ${describeRetention(this.retention)}`);
  }

  /**
   * What REST shows of a tracked job. A recovered job whose JobMaster is not built yet gets it built
   * here (the same object its recovery step starts later), so its plan and vertices show; if that
   * fails, the job's recovery step fails it, and until then it shows without vertices.
   */
  private trackedDetails(state: LeaderState, job: TrackedJob): JobDetails {
    let jobMaster: JobMaster;
    try {
      jobMaster = this.ensureJobMaster(state, job);
    } catch {
      return this.unbuiltDetails(job.graph, job.submittedAt);
    }
    const details = jobMaster.details();
    const shown = trackedStatus(job);
    if (shown === details.state) return details;
    const timestamps = { ...details.timestamps };
    if (isTerminalJobStatus(details.state)) delete timestamps[details.state];
    return { ...details, state: shown, 'end-time': -1, duration: details.now - details['start-time'], timestamps };
  }

  /** A recovered job without a JobMaster (not built yet, or it cannot be): RECONCILING, no vertices. `submittedAt` epoch-ms. */
  private unbuiltDetails(graph: JobGraph, submittedAt: number): JobDetails {
    const now = this.clock.now();
    return { jid: graph.jobId, name: graph.name, state: 'RECONCILING', 'start-time': submittedAt, 'end-time': -1, duration: now - submittedAt,
      now, timestamps: {}, vertices: [], restarts: 0, attempt: 0 };
  }

  private completedDetails(result: JobResultEntry): JobDetails {
    const cached = this.completed.get(result.jobId);
    if (cached && cached.state === result.jobStatus) return cached;
    // Evicted or from an earlier term: the final status always comes from the result store.
    return withSubmitter({
      jid: result.jobId, name: result.name, state: result.jobStatus,
      'start-time': result.startTime, 'end-time': result.endTime, duration: result.endTime - result.startTime,
      now: this.clock.now(), timestamps: { [result.jobStatus]: result.endTime }, vertices: [], restarts: 0, attempt: 0,
    }, typeof result.submittedBy === 'string' ? result.submittedBy : undefined);
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

/**
 * What REST shows of a tracked job: a recovered job whose JobMaster has not loaded its progress yet
 * (still INITIALIZING, maybe waiting for the recovery pool) is RECONCILING — the status it enters next,
 * and the truth about its tasks: they may still run and are adopted once their TaskManagers report.
 */
function trackedStatus(job: TrackedJob): JobStatus {
  const status = job.jobMaster?.status ?? 'INITIALIZING'; // not built yet: a recovered job waiting for its turn
  return job.recovered && status === 'INITIALIZING' ? 'RECONCILING' : visibleStatus(status);
}

/** The recorded submitter of a stored graph (a string, or nothing). */
function submitterOf(envelope: { submittedBy?: unknown }): string | undefined {
  return typeof envelope.submittedBy === 'string' ? envelope.submittedBy : undefined;
}

function withSubmitter(details: JobDetails, submittedBy: string | undefined): JobDetails {
  return submittedBy === undefined ? details : { ...details, submittedBy };
}

/** Errors a later attempt can get past: ZooKeeper trouble and a lost term. Anything else is deterministic. */
function isRetryableRecoveryError(err: unknown): boolean {
  return err instanceof ZkError || err instanceof NotLeaderError;
}

function compareCursor(a: JobCursor, b: JobCursor): number {
  return a.submittedAt - b.submittedAt || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
}

function assertJobId(jobId: string): asserts jobId is string {
  if (!isJobId(jobId)) throw new ValidationError(`job id must be 32 lowercase hex characters, got ${JSON.stringify(String(jobId).slice(0, 80))}`);
}

function unreadableResult(jobId: string): JobResultEntry {
  return { state: 'clean', jobId, name: '(unreadable result)', jobStatus: 'FAILED', startTime: 0, endTime: 0, graphDigest: '', failure: { message: 'the stored job result is unreadable', timestamp: 0 } };
}

/** The stored graph of `id` when the grant found it and nobody has tracked it yet (LeaderState.pending). */
function pendingGraph(state: LeaderState, id: string): StoredGraph<JobGraph> | undefined {
  return state.promoted.has(id) ? undefined : state.pending?.get(id);
}

/** Pending graphs not tracked yet (each a recovered job: the grant settled the others). */
function pendingCount(state: LeaderState): number {
  return state.pending ? state.pending.size - state.promoted.size : 0;
}

/**
 * A stored graph's submission time (epoch-ms). An envelope without a readable one takes the term's grant
 * time: the same while the job is pending and once it is tracked, so it keeps its place in the job list.
 */
function storedSubmittedAt(state: LeaderState, graph: Extract<StoredGraph<JobGraph>, { ok: true }>): number {
  return Date.parse(graph.envelope.submittedAt) || state.term.grantedAt;
}

/** Each pending graph not tracked yet, with its job id. */
function* pendingGraphs(state: LeaderState): Generator<[string, Extract<StoredGraph<JobGraph>, { ok: true }>]> {
  if (!state.pending) return;
  for (const [id, graph] of state.pending) if (graph.ok && !state.promoted.has(id)) yield [id, graph];
}

/** The coalescing window (ms) of adoption passes after a listing of `listed` stored graphs. */
function adoptionWindowMs(listed: number): number {
  return Math.min(ADOPTION_COALESCE_MAX_MS, Math.max(ADOPTION_COALESCE_MS, Math.ceil(listed / ADOPTION_IDS_PER_MS)));
}
