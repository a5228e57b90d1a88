/**
 * JobMaster fakes for the Dispatcher's unit tests: no ZooKeeper, no tasks, INITIALIZING until started.
 * Subclasses decide what start() does (run at once, or wait for the test).
 */
import type { JobDetails, JobMaster, JobMasterContext, JobStatus } from '../../src/jobmaster/types';

export abstract class FakeJobMaster implements JobMaster {
  current: JobStatus = 'INITIALIZING';
  constructor(readonly ctx: JobMasterContext) {}
  get jobId(): string { return this.ctx.graph.jobId; }
  get status(): JobStatus { return this.current; }
  abstract start(): Promise<void>;
  cancel(): void { /* not exercised unless a subclass says so */ }
  async suspend(): Promise<void> { this.current = 'SUSPENDED'; }
  details(): JobDetails {
    return { jid: this.jobId, name: this.ctx.graph.name, state: this.current, 'start-time': 0, 'end-time': -1, duration: 0, now: 0,
      timestamps: { INITIALIZING: 0 }, vertices: [], restarts: 0, attempt: 0 };
  }
  exceptions(): [] { return []; }
}
