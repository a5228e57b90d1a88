/** Job graphs the benchmarks submit, and the exact bytes the JobGraph store writes for them. */
import * as crypto from 'node:crypto';
import { canonicalJson, JobGraph, parseJobGraph } from '../../src/jobgraph';
import { ENVELOPE_FORMAT_VERSION, graphDigest } from '../../src/store/jobgraph-store';
import { JOBGRAPHS_PATH } from '../../src/zk/layout';
import { NativeZooKeeperClient } from '../../src/zk/client';
import { mapLimit } from './wait';

const LIMITS = { maxParallelism: 128 };

/** Unique job ids per benchmark run: a random prefix, then a counter. */
export class JobIds {
  private readonly prefix = crypto.randomBytes(6).toString('hex');
  private n = 0;
  next(): string {
    return `${this.prefix}${(this.n++).toString(16).padStart(20, '0')}`;
  }
}

/**
 * A typical small graph (the README's shape: a command vertex feeding a sleep vertex), about 400
 * bytes once stored. Without TaskManagers its job waits for slots, so it stays in the store.
 */
export function typicalGraph(jobId: string, n: number): Record<string, unknown> {
  return {
    jobId,
    name: `bench-job-${n}`,
    vertices: [
      { id: 'extract', name: 'Extract', parallelism: 4, task: { type: 'command', argv: ['node', 'extract.js'], env: { DAY: '2026-11-20' }, timeoutMs: 60000 } },
      { id: 'load', parallelism: 1, inputs: ['extract'], task: { type: 'sleep', ms: 500 } },
    ],
    restartStrategy: { type: 'fixed-delay', attempts: 3, delayMs: 1000 },
  };
}

/** A graph that finishes at once on any TaskManager (one built-in sleep of 0 ms). */
export function trivialGraph(jobId: string, n: number): Record<string, unknown> {
  return { jobId, name: `done-${n}`, vertices: [{ id: 'noop', parallelism: 1, task: { type: 'sleep', ms: 0 } }] };
}

/** The node content the JobGraph store writes for `graph` (same envelope, same digest). */
export function envelopeBytes(graph: Record<string, unknown>, submittedAt = new Date()): string {
  const parsed: JobGraph = parseJobGraph(graph, LIMITS);
  const digest = graphDigest(canonicalJson(parsed));
  return JSON.stringify({ formatVersion: ENVELOPE_FORMAT_VERSION, submittedAt: submittedAt.toISOString(), digest, graph: parsed });
}

/** Writes envelopes straight into `/jobgraphs` of a chroot (the store's layout), `concurrency` in flight. */
export async function writeStoredGraphs(client: NativeZooKeeperClient, graphs: Array<Record<string, unknown>>, concurrency: number): Promise<void> {
  await client.mkdirp(JOBGRAPHS_PATH);
  await mapLimit(graphs, concurrency, async (g) => {
    await client.create(`${JOBGRAPHS_PATH}/${String(g.jobId)}`, envelopeBytes(g), 'persistent');
  });
}
