/**
 * A JobMaster that holds a job in CREATED and only reacts to cancel: used where no execution
 * backend is wired (unit tests of the Dispatcher, `execution.enabled: false`).
 */
import { JobDetails, JobMaster, JobMasterContext, JobStatus } from './types';
import { Clock, systemClock } from '../util/clock';

export class PassiveJobMaster implements JobMaster {
  private current: JobStatus = 'CREATED';
  private readonly timestamps: Partial<Record<JobStatus, number>>;
  private endTime = -1;

  constructor(private readonly ctx: JobMasterContext, private readonly clock: Clock = systemClock) {
    this.timestamps = { INITIALIZING: ctx.submittedAt, CREATED: clock.now() };
  }

  get jobId(): string { return this.ctx.graph.jobId; }
  get status(): JobStatus { return this.current; }
  async start(): Promise<void> { /* nothing runs without an execution backend */ }

  cancel(): void {
    if (this.current !== 'CREATED') return;
    this.current = 'CANCELED';
    this.endTime = this.clock.now();
    this.timestamps.CANCELED = this.endTime;
    this.ctx.onTerminal({ status: 'CANCELED', details: this.details() });
  }

  async suspend(): Promise<void> {
    this.current = 'SUSPENDED';
  }

  details(): JobDetails {
    const now = this.clock.now();
    const start = this.ctx.submittedAt;
    return {
      jid: this.jobId, name: this.ctx.graph.name, state: this.current, 'start-time': start, 'end-time': this.endTime,
      duration: (this.endTime > 0 ? this.endTime : now) - start, now, timestamps: { ...this.timestamps },
      vertices: this.ctx.graph.vertices.map((v) => ({
        id: v.id, name: v.name ?? v.id, parallelism: v.parallelism, status: 'CREATED', 'start-time': -1, 'end-time': -1, duration: -1,
        tasks: { CREATED: v.parallelism },
        subtasks: Array.from({ length: v.parallelism }, (_, i) => ({ subtask: i, status: 'CREATED' as const, attempt: 0, taskmanager: null, 'start-time': -1, 'end-time': -1, duration: -1 })),
      })),
      restarts: 0, attempt: 0,
    };
  }

  exceptions(): [] { return []; }
}
