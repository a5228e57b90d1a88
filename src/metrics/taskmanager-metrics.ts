/**
 * Prometheus metrics of one TaskManager, served at `GET /metrics` on its RPC server. State (slots,
 * tasks, heartbeat age, log bytes) is read from the TaskManager at scrape time through a small view;
 * events (task launches) come in through hooks. Every metric is listed in README.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Middleware } from 'koa';
import { Counter, Gauge, Registry } from 'prom-client';
import { registerDefaultMetrics } from './metrics';

/** What the metrics read from the TaskManager on scrape. */
export interface TaskManagerView {
  slots(): number;
  /** States of the tasks this TaskManager holds (DEPLOYING, RUNNING, FINISHED, …). */
  taskStates(): string[];
  /** The leader it is registered with and ms since that leader last answered (monotonic); null while unregistered. */
  leaderContact(): { leaderId: string; ageMs: number } | null;
  /** Directory of task log files; its total size is exported. */
  logDir(): string;
}

export interface TaskManagerMetrics {
  registry: Registry;
  /** Serves `GET /metrics` (open, like a replica's); passes every other request on. */
  middleware(): Middleware;
  /** A deploy started a new task attempt. */
  taskLaunched(): void;
}

export function createTaskManagerMetrics(view: TaskManagerView, options: { version?: string; defaultMetrics?: boolean } = {}): TaskManagerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) registerDefaultMetrics(registry);
  const registers = [registry];
  new Gauge({ name: 'ha_taskmanager_slots', help: 'Task slots this TaskManager offers', registers, collect() { this.set(view.slots()); } });
  new Gauge({
    name: 'ha_taskmanager_tasks', help: 'Task attempts held by this TaskManager by state (terminal ones until the leader acknowledged them, plus a short history)',
    labelNames: ['state'], registers,
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const s of view.taskStates()) counts.set(s, (counts.get(s) ?? 0) + 1);
      for (const [state, n] of counts) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'ha_taskmanager_leader_heartbeat_age_seconds', help: 'Seconds since the leader (leader_id) last answered a heartbeat, registration or report; absent while unregistered',
    labelNames: ['leader_id'], registers,
    collect() {
      this.reset();
      const last = view.leaderContact();
      if (last !== null) this.set({ leader_id: last.leaderId }, Math.max(0, last.ageMs) / 1000);
    },
  });
  new Gauge({
    name: 'ha_taskmanager_task_log_bytes', help: 'Bytes of task log files in this TaskManager\'s log directory', registers,
    async collect() { this.set(await directoryBytes(view.logDir())); },
  });
  const launches = new Counter({ name: 'ha_taskmanager_task_launches_total', help: 'Task attempts this TaskManager started', registers });
  new Gauge({ name: 'ha_taskmanager_build_info', help: 'Always 1; labels name the version and the Node.js version', labelNames: ['version', 'nodejs_version'], registers })
    .set({ version: options.version ?? 'unknown', nodejs_version: process.version }, 1);

  return {
    registry,
    middleware: () => async (ctx, next) => {
      if (ctx.path !== '/metrics' || ctx.method !== 'GET') return next();
      ctx.type = registry.contentType;
      ctx.body = await registry.metrics();
    },
    taskLaunched: () => launches.inc(),
  };
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      total += await fs.promises.stat(path.join(dir, entry.name)).then((s) => s.size, () => 0);
    }
  } catch { /* no log directory yet */ }
  return total;
}
