/**
 * Admission control of job submissions: the leader refuses a new job (HTTP 429 + `Retry-After`) when
 * accepting it would exceed a configured bound, so no flood of valid submissions can grow ZooKeeper
 * (one node per pending job, up to `dispatcher.max-jobgraph-bytes` each) or the leader without limit.
 * Three limits, each named by its configuration key in the refusal:
 *  - `dispatcher.max-pending-jobs`: jobs not yet terminal (stored, or being stored right now);
 *  - `dispatcher.max-stored-jobgraph-bytes`: bytes of the stored JobGraph nodes of those jobs;
 *  - `dispatcher.submission-rate` / `dispatcher.submission-burst`: one global token bucket.
 * Resubmissions of a job that is already known never reach admission (they stay idempotent).
 */
import { HttpError } from '../http/errors';
import { ADMISSION_LIMIT_KEYS } from '../metrics/metrics';
import type { Clock } from '../util/clock';

export interface AdmissionLimits {
  maxPendingJobs: number;
  /** Bytes (UTF-8 length of the stored JSON envelopes). */
  maxStoredGraphBytes: number;
  /** Tokens added per second. */
  submissionRate: number;
  /** Bucket size: submissions accepted at once after a quiet period. */
  submissionBurst: number;
}

/** The configuration key of a limit (also the label of `ha_dispatcher_admission_rejections_total`). */
export type AdmissionLimitKey = (typeof ADMISSION_LIMIT_KEYS)[number];

/** What the leader holds right now, as admission counts it. */
export interface AdmissionUsage {
  pendingJobs: number;
  storedGraphBytes: number;
}

/** Limits and usage, as `/overview` and the metrics report them. */
export interface AdmissionStatus extends AdmissionUsage {
  limits: AdmissionLimits;
  /** Submissions the token bucket would accept right now (fractional). */
  submissionTokens: number;
}

/** The 429 a refused submission answers: `code` TOO_MANY_REQUESTS, `extra.limit` the configuration key. */
export class AdmissionRejectedError extends HttpError {
  constructor(readonly limit: AdmissionLimitKey, message: string, retryAfterSeconds: number) {
    super(429, message, { code: 'TOO_MANY_REQUESTS', headers: { 'Retry-After': String(retryAfterSeconds) }, extra: { limit } });
    this.name = 'AdmissionRejectedError';
  }
}

/** Retry-After (s) when a capacity limit (pending jobs, stored bytes) refuses: jobs must end first. */
const CAPACITY_RETRY_AFTER_S = 5;

export class AdmissionController {
  private tokens: number;
  private refilledAt: number;

  constructor(readonly limits: AdmissionLimits, private readonly clock: Clock) {
    this.tokens = limits.submissionBurst;
    this.refilledAt = clock.monotonicNow();
  }

  /**
   * Admits one new job of `graphBytes` given the current usage, taking a token from the bucket.
   * Capacity limits are checked first, so a refused submission never spends a token.
   * @throws AdmissionRejectedError (429) naming the limit that refused it.
   */
  admit(usage: AdmissionUsage, graphBytes: number): void {
    const { maxPendingJobs, maxStoredGraphBytes, submissionRate } = this.limits;
    if (usage.pendingJobs >= maxPendingJobs) {
      throw new AdmissionRejectedError('dispatcher.max-pending-jobs',
        `too many unfinished jobs: ${usage.pendingJobs} jobs are not yet terminal (limit dispatcher.max-pending-jobs = ${maxPendingJobs}); retry once some have ended`,
        CAPACITY_RETRY_AFTER_S);
    }
    if (usage.storedGraphBytes + graphBytes > maxStoredGraphBytes) {
      throw new AdmissionRejectedError('dispatcher.max-stored-jobgraph-bytes',
        `stored JobGraphs would exceed their budget: ${usage.storedGraphBytes} + ${graphBytes} bytes > dispatcher.max-stored-jobgraph-bytes = ${maxStoredGraphBytes}; retry once some jobs have ended`,
        CAPACITY_RETRY_AFTER_S);
    }
    this.refill();
    if (this.tokens < 1) {
      const waitS = Math.max(1, Math.ceil((1 - this.tokens) / submissionRate));
      throw new AdmissionRejectedError('dispatcher.submission-rate',
        `submission rate exceeded (limit dispatcher.submission-rate = ${submissionRate}/s, burst dispatcher.submission-burst = ${this.limits.submissionBurst}); retry in ${waitS} s`,
        waitS);
    }
    this.tokens -= 1;
  }

  status(usage: AdmissionUsage): AdmissionStatus {
    this.refill();
    return { ...usage, limits: this.limits, submissionTokens: this.tokens };
  }

  private refill(): void {
    const now = this.clock.monotonicNow();
    const elapsedS = Math.max(0, now - this.refilledAt) / 1000;
    this.refilledAt = now;
    this.tokens = Math.min(this.limits.submissionBurst, this.tokens + elapsedS * this.limits.submissionRate);
  }
}
