/**
 * Execution: one job of N trivial subtasks (`true`, a command task) on 2 TaskManagers × 8 slots,
 * submit → FINISHED, against spawning the same N processes directly from this process with as many
 * in flight as there are slots. One unmeasured warm-up job first.
 */
import { spawn } from 'node:child_process';
import { BenchCluster } from '../lib/processes';
import { parseJson } from '../lib/http';
import { JobIds } from '../lib/jobs';
import { nowMs, percentile, round, summarize } from '../lib/stats';
import { mapLimit, sleep } from '../lib/wait';
import { BenchContext, Scenario, ScenarioOutput } from '../lib/types';

const SIZES = {
  full: { subtasks: 100, taskManagers: 2, slots: 8, trials: 3, warmup: true },
  smoke: { subtasks: 4, taskManagers: 2, slots: 2, trials: 1, warmup: false },
};

const ARGV = ['true'];

export const execution: Scenario = {
  name: 'execution',
  title: 'Execution against direct spawning',
  budgetMs: (mode) => (mode === 'full' ? 120_000 : 30_000),
  async run(ctx: BenchContext): Promise<ScenarioOutput> {
    const size = SIZES[ctx.mode];
    const cluster = await BenchCluster.launch(ctx, {
      connect: ctx.connect, logDir: ctx.logDir, replicas: 1, sessionTimeoutMs: 4000,
      taskManagers: size.taskManagers, slots: size.slots,
    });
    const leader = await cluster.leader();
    const ids = new JobIds();
    const graph = (): Record<string, unknown> => ({
      jobId: ids.next(), name: 'bench-trivial',
      vertices: [{ id: 'work', parallelism: size.subtasks, task: { type: 'command', argv: ARGV } }],
    });
    const runJob = async (): Promise<{ jobMs: number; observedMs: number }> => {
      const g = graph();
      const t0 = Date.now();
      const a = await cluster.http.request('POST', `${leader.url}/jobs`, g);
      if (a.status !== 202) throw new Error(`submission answered ${a.status}: ${a.text.slice(0, 300)}`);
      const deadline = t0 + 90_000;
      while (Date.now() < deadline) {
        const d = await cluster.http.request('GET', `${leader.url}/jobs/${String(g.jobId)}`);
        const job = parseJson<any>(d.text);
        if (job?.state === 'FINISHED') {
          const observed = Date.now() - t0;
          return { jobMs: job['end-time'] > 0 ? job['end-time'] - t0 : observed, observedMs: observed };
        }
        if (job && ['FAILED', 'CANCELED'].includes(job.state)) throw new Error(`the job ended ${job.state}: ${d.text.slice(0, 500)}`);
        await sleep(10);
      }
      throw new Error(`the job did not finish within 90 s\n${cluster.logs(10)}`);
    };
    const direct = async (): Promise<number> => {
      const t = nowMs();
      await mapLimit(Array.from({ length: size.subtasks }), size.taskManagers * size.slots, () => new Promise<void>((resolve, reject) => {
        const child = spawn(ARGV[0], ARGV.slice(1), { stdio: 'ignore' });
        child.once('error', reject);
        child.once('exit', () => resolve());
      }));
      return nowMs() - t;
    };

    if (size.warmup) {
      await runJob();
      await direct();
    }
    const trials: Array<Record<string, unknown>> = [];
    for (let i = 0; i < size.trials; i++) {
      const directMs = await direct();
      const job = await runJob();
      trials.push({ trial: i + 1, jobMs: job.jobMs, observedMs: job.observedMs, directMs: round(directMs, 1), ratio: round(job.jobMs / directMs, 2) });
      ctx.log(`execution: trial ${i + 1}: submit → FINISHED ${job.jobMs} ms (polled ${job.observedMs} ms), direct spawning ${round(directMs, 1)} ms`);
    }
    const jobMs = trials.map((t) => t.jobMs as number);
    const directMs = trials.map((t) => t.directMs as number);
    const ratio = round(percentile(jobMs, 50)! / percentile(directMs, 50)!, 2);
    return {
      settings: { ...size, task: { type: 'command', argv: ARGV }, directConcurrency: size.taskManagers * size.slots },
      summary: { jobMs: summarize(jobMs), directMs: summarize(directMs), ratioOfMedians: ratio },
      trials,
      targets: [],
      notes: ['No target is set for this ratio; it is reported.'],
    };
  },
};
