/**
 * Real replica and TaskManager processes for execution tests: `node bin/ha-dispatcher.js dispatcher`
 * and `... taskmanager`, each with its own log file of JSON events, all in one fresh cluster-id.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../../src/util/ports';
import { ClientTls, JsonResponse, requestJson } from '../../src/http/client';
import { generateJobId } from '../../src/jobgraph';
import { HaProcess as ManagedProcess } from '../../src/util/ha-process';
import { eventually } from './ensemble';

export type Answer = JsonResponse & { url: string };

/** One HTTP exchange, no redirect following; bounded, since a peer may be frozen (SIGSTOP). */
export async function call(method: string, url: string, body?: unknown, timeoutMs = 30_000, token?: string, tls?: ClientTls): Promise<Answer> {
  return { ...await requestJson(method, url, body, { timeoutMs, token, tls }), url };
}

/** A replica or TaskManager of an execution test (the shared HaProcess, one log file per process). */
export { HaProcess as ManagedProcess } from '../../src/util/ha-process';

export interface ExecutionClusterOptions {
  connect: string;
  replicas?: number;
  taskManagers?: number;
  slots?: number;
  sessionTimeoutMs?: number;
  /** Extra "key=value" settings for every process. */
  settings?: string[];
  /** security.rest.token, when the settings configure one: the helpers' REST calls send it. */
  restToken?: string;
  /** Extra environment of the process with this id (replicas r1…, TaskManagers tm1…), e.g. libfaketime's. */
  env?: (id: string) => Record<string, string> | undefined;
  /** Leave replica.id unset, so each start of a replica generates a new one (as in production by default). */
  generatedReplicaIds?: boolean;
  /** With security.ssl.rest.enabled in the settings: replicas are https, the helpers' REST calls trust this CA. */
  restTls?: ClientTls;
}

export class ExecutionCluster {
  readonly replicas: ManagedProcess[] = [];
  readonly taskManagers: ManagedProcess[] = [];
  readonly dir: string;
  private readonly common: string[];

  private constructor(readonly clusterId: string, private readonly options: ExecutionClusterOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `ha-exec-${clusterId}-`));
    this.common = [
      `high-availability.zookeeper.quorum=${options.connect}`,
      `high-availability.cluster-id=${clusterId}`,
      `high-availability.zookeeper.client.session-timeout=${options.sessionTimeoutMs ?? 4000}`,
      'heartbeat.interval=500', 'heartbeat.timeout=3000',
      ...(options.settings ?? []),
    ].flatMap((s) => ['-D', s]);
  }

  static async start(options: ExecutionClusterOptions): Promise<ExecutionCluster> {
    const cluster = new ExecutionCluster(`x-${crypto.randomBytes(5).toString('hex')}`, options);
    // Should the test worker be torn down without its after-hooks, ManagedChild SIGKILLs every process.
    const ports = await freePorts(options.replicas ?? 2);
    ports.forEach((port, i) => {
      const id = `r${i + 1}`;
      const idArgs = options.generatedReplicaIds ? [] : ['-D', `replica.id=${id}`];
      const p = new ManagedProcess(id, 'dispatcher', [...cluster.common, '-D', `rest.port=${port}`, ...idArgs], cluster.dir, `${options.restTls ? 'https' : 'http'}://127.0.0.1:${port}`,
        { env: options.env?.(id) });
      cluster.replicas.push(p);
      p.start();
    });
    for (let i = 0; i < (options.taskManagers ?? 2); i++) cluster.startTaskManager(`tm${i + 1}`);
    // Generous: on a loaded 2-core machine five Node processes take a while to start.
    await cluster.leader(60000);
    await cluster.waitForStandbys(60000);
    await cluster.waitForTaskManagers(options.taskManagers ?? 2, 60000);
    return cluster;
  }

  /**
   * Until every running replica is up and names the same ready leader (standbys: reachable), so a test
   * that reads the latch or a standby's redirect never sees a replica that is still starting.
   */
  waitForStandbys(timeoutMs = 30000): Promise<string> {
    return eventually('every replica naming the ready leader', async () => {
      const named = new Set<string>();
      for (const r of this.replicas) {
        if (!r.running) continue;
        const h = await call('GET', `${r.url}/health`, undefined, 1000, undefined, this.options.restTls).catch(() => null);
        const ok = h?.body?.role === 'leader' || (h?.body?.role === 'standby' && h.body.leaderReachable === true);
        if (!ok || !h?.body?.leader?.replicaId) return null;
        named.add(h.body.leader.replicaId);
      }
      return named.size === 1 ? [...named][0] : null;
    }, timeoutMs, 100);
  }

  /** `settings`: extra "key=value" settings for this TaskManager only (e.g. a fixed taskmanager.rpc-port). */
  startTaskManager(id: string, settings: string[] = []): ManagedProcess {
    const tm = new ManagedProcess(id, 'taskmanager', [...this.common, '-D', `taskmanager.id=${id}`,
      '-D', `taskmanager.numberOfTaskSlots=${this.options.slots ?? 4}`, '-D', `taskmanager.data-dir=${path.join(this.dir, id)}`,
      ...settings.flatMap((s) => ['-D', s])], this.dir, '', { env: this.options.env?.(id) });
    this.taskManagers.push(tm);
    tm.start();
    return tm;
  }

  /** The ready leader among running replicas (by its own /health). */
  leader(timeoutMs = 30000, exclude: ManagedProcess[] = []): Promise<ManagedProcess> {
    return eventually('a ready leader', async () => {
      for (const r of this.replicas) {
        if (!r.running || exclude.includes(r)) continue;
        const h = await call('GET', `${r.url}/health`, undefined, 1000, undefined, this.options.restTls).catch(() => null);
        if (h?.status === 200 && h.body?.role === 'leader') return r;
      }
      return null;
    }, timeoutMs, 50);
  }

  /** A leader-only REST call against the current leader. */
  async rest(method: string, pathAndQuery: string, body?: unknown): Promise<Answer> {
    const leader = await this.leader();
    return call(method, `${leader.url}${pathAndQuery}`, body, 30_000, this.options.restToken, this.options.restTls);
  }

  async waitForTaskManagers(count: number, timeoutMs = 30000): Promise<any[]> {
    return eventually(`${count} registered TaskManagers`, async () => {
      const a = await this.rest('GET', '/taskmanagers');
      return a.status === 200 && a.body.taskmanagers.length === count ? a.body.taskmanagers : null;
    }, timeoutMs, 100);
  }

  /** Submits with a client-chosen jobId, retrying 503 like the CLI does (the same jobId is idempotent). */
  async submit(graph: object): Promise<string> {
    const body = { jobId: generateJobId(), ...graph };
    return eventually('the job acknowledged (202)', async () => {
      const a = await this.rest('POST', '/jobs', body);
      if (a.status === 503) return null;
      if (a.status !== 202) throw new Error(`submit answered ${a.status}: ${a.text}`);
      return a.body.jobid as string;
    }, 60000, 200);
  }

  async job(jobId: string): Promise<any> {
    const a = await this.rest('GET', `/jobs/${jobId}`);
    if (a.status !== 200) throw new Error(`GET /jobs/${jobId} answered ${a.status}: ${a.text}`);
    return a.body;
  }

  waitForJob(jobId: string, predicate: (job: any) => boolean, what: string, timeoutMs = 60000): Promise<any> {
    return eventually(what, async () => {
      const j = await this.job(jobId);
      return predicate(j) ? j : null;
    }, timeoutMs, 100);
  }

  async stop(): Promise<void> {
    // TaskManagers first and gracefully: they stop their tasks' process groups on the way out.
    await Promise.all(this.taskManagers.map((t) => t.signal('SIGTERM')));
    await Promise.all(this.replicas.map((r) => r.signal('SIGKILL')));
  }

  logs(): string {
    return [...this.replicas, ...this.taskManagers].map((p) => `---- ${p.id} ----\n${p.tail()}`).join('\n');
  }
}

/** A `sh -c` command task that appends "<vertex> <subtask> <attempt> <pid>" to `startsFile` when it starts. */
export function shellTask(startsFile: string, script = ''): { type: 'command'; argv: string[] } {
  return { type: 'command', argv: ['sh', '-c', `echo "$VERTEX_ID $SUBTASK_INDEX $ATTEMPT $$" >> '${startsFile}'; ${script}`] };
}

/** Start lines per "vertex/subtask", from a starts file written by shellTask. */
export function startCounts(startsFile: string): Map<string, number> {
  const counts = new Map<string, number>();
  let text = '';
  try { text = fs.readFileSync(startsFile, 'utf8'); } catch { return counts; }
  for (const line of text.split('\n').filter(Boolean)) {
    const [vertex, subtask] = line.split(' ');
    counts.set(`${vertex}/${subtask}`, (counts.get(`${vertex}/${subtask}`) ?? 0) + 1);
  }
  return counts;
}

export function startPids(startsFile: string): number[] {
  try {
    return fs.readFileSync(startsFile, 'utf8').split('\n').filter(Boolean).map((l) => Number(l.split(' ')[3]));
  } catch {
    return [];
  }
}

export { isProcessAlive as isAlive } from '../../src/util/process';
