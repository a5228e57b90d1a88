/**
 * Regression (found by the chaos soak: subtasks that had finished ran a second time within the same
 * epoch after a short leader partition). A TaskManager forgets a finished task's outcome once a leader
 * acknowledges it, so nothing may acknowledge an outcome it did not record:
 *  - a suspended JobMaster refuses reports instead of answering 'ok';
 *  - a term's ResourceManager hears TaskManagers only once the term is ready, i.e. after recovery has
 *    started every JobMaster (before, a terminal report found no job and was acknowledged unrecorded).
 */
import test from 'ava';
import { EventEmitter } from 'node:events';
import { SchedulingJobMaster } from '../../src/jobmaster/job-master';
import type { JobProgress, ProgressStore } from '../../src/store/progress-store';
import { ExecutionBackendImpl } from '../../src/jobmaster/execution-backend';
import type { JobTaskListener, TaskExecutionService } from '../../src/resources/resource-manager';
import type { LeaderElectionService, LeadershipTerm } from '../../src/election/service';
import type { ZooKeeperClient } from '../../src/zk/client';
import { loadConfig } from '../../src/config';
import { silentLogger } from '../../src/util/logger';
import { FakeClock, settle } from '../helpers/fake-clock';

const JOB_ID = 'd'.repeat(32);

test('a suspended JobMaster refuses a finished report, so the TaskManager keeps it for the next leader', async (t) => {
  let listener: JobTaskListener | null = null;
  const executor: TaskExecutionService = {
    epoch: 4,
    registerJob: (_id, l) => { listener = l; return () => undefined; },
    expectJob: () => () => undefined,
    allocate: () => 'tm1',
    release: () => undefined,
    deploy: async () => undefined,
    cancel: async () => undefined,
    cancelJob: async () => undefined,
    describe: (id) => id,
    onResourcesChanged: () => () => undefined,
  };
  let saved: JobProgress | null = null;
  const progress: ProgressStore = { load: async () => saved, save: async (p) => { saved = p; } };
  const clock = new FakeClock();
  const jm = new SchedulingJobMaster({
    context: {
      graph: { jobId: JOB_ID, name: 'gap', vertices: [{ id: 'v', name: 'v', parallelism: 1, inputs: [], task: { type: 'sleep', ms: 1 } }] },
      term: { epoch: 4, zkSessionId: 's', latchNode: 'n', grantedAt: 0 }, guard: () => undefined, submittedAt: 0, recovered: false, onTerminal: () => undefined,
    },
    executor, progress, clock, reconcileTimeoutMs: 1000, defaultRestartStrategy: { type: 'none' },
  });
  jm.start();
  await settle();
  const held = listener!;
  await jm.suspend();
  await t.throwsAsync(held.onReport('tm1', { jobId: JOB_ID, vertexId: 'v', subtask: 0, attempt: 0, state: 'FINISHED', startedAt: 1, endedAt: 2 }),
    { name: 'NotLeaderError' });
  t.false(saved!.vertices.v.finished[0], 'nothing was recorded');
});

class FakeElection extends EventEmitter {
  leaderOf: LeadershipTerm | null = null;
  ready = false;
  isLeader(term: LeadershipTerm | null | undefined): boolean { return !!term && term === this.leaderOf; }
  get isReadyLeader(): boolean { return this.ready && this.leaderOf !== null; }
}

test('a new term\'s ResourceManager takes TaskManager messages only once the term is ready', (t) => {
  const election = new FakeElection();
  const backend = new ExecutionBackendImpl({
    config: loadConfig({ env: {} }), client: {} as ZooKeeperClient, election: election as unknown as LeaderElectionService, logger: silentLogger,
  });
  const term: LeadershipTerm = { epoch: 9, zkSessionId: 's', latchNode: 'n', grantedAt: 0 };
  election.leaderOf = term;
  election.emit('elected', term);
  t.is(backend.resources(), null, 'recovering: TaskManagers are answered 503 and keep their reports');
  election.ready = true;
  t.not(backend.resources(), null, 'ready: registrations and reports are taken');
  election.emit('revoked', term);
  t.is(backend.resources(), null);
});
