/**
 * Replica and TaskManager processes for the benchmarks: `node bin/ha-dispatcher.js dispatcher|taskmanager`
 * with -D settings, each logging its JSON events to its own file, so intervals can be read from the
 * processes' own clocks (`leadership.granted` → `dispatcher.ready`).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePorts } from '../../src/util/ports';
import { HaProcess, ProcessKind } from '../../src/util/ha-process';
import { HttpClient, parseJson } from './http';
import { until } from './wait';
import { BenchContext, BlockedError } from './types';

export interface LogEvent {
  event: string;
  /** Epoch milliseconds from the event's own timestamp. */
  at: number;
  [key: string]: any;
}

/** A replica or TaskManager of a benchmark: the shared HaProcess plus the figures the scenarios read. */
export class BenchProcess extends HaProcess {
  constructor(
    id: string,
    kind: ProcessKind,
    args: string[],
    logDir: string,
    /** REST URL (replicas only). */
    url = '',
    /** Extra Node.js flags for this process (e.g. --trace-gc). */
    nodeFlags: string[] = [],
  ) {
    // HA_BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the replicas; Node
    // refuses --cpu-prof in NODE_OPTIONS.
    const profile = kind === 'dispatcher' ? (process.env.HA_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean) : [];
    super(id, kind, args, logDir, url, { nodeFlags: [...profile, ...nodeFlags] });
  }

  /** The JSON events (named `name`, when given) from byte `fromByte` of the log on, each with its own time. */
  override events(name?: string, fromByte = 0): LogEvent[] {
    return super.events(name, fromByte)
      .filter((e) => typeof e.event === 'string')
      .map((e) => ({ ...e, event: e.event as string, at: Date.parse(String(e.timestamp)) }));
  }

  /** Resident set size from /proc (Linux), in bytes. */
  rssBytes(): number | null {
    const pid = this.pid;
    if (!pid) return null;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : null;
    } catch {
      return null;
    }
  }

  /** Lines of the log that are not JSON events (e.g. V8's --trace-gc output on stdout). */
  plainLines(fromByte = 0): string[] {
    return this.readLog(fromByte).split('\n').filter((l) => l && !l.startsWith('{'));
  }
}

/** The epochs each replica logged `recovery.completed` for, read incrementally (logs grow large with many jobs). */
class RecoveryLog {
  private readonly read = new Map<BenchProcess, { offset: number; epochs: Set<number> }>();

  seen(r: BenchProcess, epoch: number): boolean {
    const s = this.read.get(r) ?? { offset: 0, epochs: new Set<number>() };
    this.read.set(r, s);
    const text = r.readLog(s.offset);
    const end = text.lastIndexOf('\n') + 1; // whole lines only: the last one may still be written
    for (const line of text.slice(0, end).split('\n')) {
      if (!line.includes('"recovery.completed"')) continue;
      const e = parseJson<any>(line);
      if (e?.event === 'recovery.completed' && typeof e.epoch === 'number') s.epochs.add(e.epoch);
    }
    s.offset += Buffer.byteLength(text.slice(0, end));
    return s.epochs.has(epoch);
  }
}

/** What the benchmarks read from a replica's `GET /health`. */
export interface Health {
  status: number;
  role?: string;
  /** The replica's own term while it leads, else null. */
  epoch: number | null;
  leader?: { replicaId: string; epoch: number } | null;
  /** The standby mirror (undefined when the replica does not report one; null when it has none). */
  mirror?: { state: 'off' | 'loading' | 'synced'; graphs: number; results: number; quarantine: number; syncedAt: string | number | null } | null;
}

export interface ClusterOptions {
  connect: string;
  logDir: string;
  replicas: number;
  sessionTimeoutMs: number;
  taskManagers?: number;
  slots?: number;
  /** Extra "key=value" settings for every process. */
  settings?: string[];
  /** Extra Node.js flags for the replicas (e.g. --trace-gc). */
  replicaNodeFlags?: string[];
}

/** One cluster-id (its own chroot) with replicas and, optionally, TaskManagers. */
export class BenchCluster {
  readonly replicas: BenchProcess[] = [];
  readonly taskManagers: BenchProcess[] = [];
  readonly clusterId = `bench-${crypto.randomBytes(5).toString('hex')}`;
  readonly http = new HttpClient(4);
  private readonly common: string[];

  private constructor(options: ClusterOptions) {
    this.common = [
      `high-availability.zookeeper.quorum=${options.connect}`,
      `high-availability.cluster-id=${this.clusterId}`,
      `high-availability.zookeeper.client.session-timeout=${options.sessionTimeoutMs}`,
      'heartbeat.interval=500', 'heartbeat.timeout=5000',
      // The benchmarks measure the machinery, not admission control: no limit may refuse their load.
      'dispatcher.max-pending-jobs=10000000', 'dispatcher.max-stored-jobgraph-bytes=1000000000000',
      'dispatcher.submission-rate=10000000', 'dispatcher.submission-burst=10000000',
      ...(options.settings ?? []),
    ].flatMap((s) => ['-D', s]);
  }

  /** The ZooKeeper chroot the cluster's replicas use. */
  get root(): string { return `/ha-dispatcher/${this.clusterId}`; }

  /**
   * Creates and starts a cluster with execution (TaskManagers) whose stop the scenario's context defers.
   * @throws BlockedError when it does not come up (the execution backend is not usable), with the log tail.
   */
  static async launch(ctx: Pick<BenchContext, 'defer'>, options: ClusterOptions): Promise<BenchCluster> {
    const cluster = await BenchCluster.create(options);
    ctx.defer(() => cluster.stop());
    try {
      await cluster.start();
    } catch (err) {
      throw new BlockedError(`the execution backend is not usable: ${(err as Error).message}\n${cluster.logs(10)}`);
    }
    return cluster;
  }

  /** Creates the processes; `start()` launches them. */
  static async create(options: ClusterOptions): Promise<BenchCluster> {
    const cluster = new BenchCluster(options);
    const ports = await freePorts(options.replicas);
    ports.forEach((port, i) => {
      const id = `${cluster.clusterId}-r${i + 1}`;
      cluster.replicas.push(new BenchProcess(id, 'dispatcher', [...cluster.common, '-D', `rest.port=${port}`, '-D', `replica.id=r${i + 1}`],
        options.logDir, `http://127.0.0.1:${port}`, options.replicaNodeFlags));
    });
    for (let i = 0; i < (options.taskManagers ?? 0); i++) {
      const id = `${cluster.clusterId}-tm${i + 1}`;
      cluster.taskManagers.push(new BenchProcess(id, 'taskmanager', [...cluster.common, '-D', `taskmanager.id=tm${i + 1}`,
        '-D', `taskmanager.numberOfTaskSlots=${options.slots ?? 1}`, '-D', `taskmanager.data-dir=${path.join(options.logDir, id)}`], options.logDir));
    }
    return cluster;
  }

  /** Launches every process; resolves once a leader is ready and every TaskManager registered. */
  async start(): Promise<void> {
    for (const r of this.replicas) r.start();
    await this.leader(60_000);
    if (this.taskManagers.length) {
      for (const tm of this.taskManagers) tm.start();
      await this.waitForTaskManagers(this.taskManagers.length, 60_000);
    }
  }

  /** `GET /health` of `r` (status 0 when it does not answer). */
  async health(r: BenchProcess): Promise<Health> {
    const a = await this.http.tryRequest('GET', `${r.url}/health`);
    const body = parseJson<any>(a.text);
    return { status: a.status, role: body?.role, epoch: typeof body?.epoch === 'number' ? body.epoch : null, leader: body?.leader ?? null, mirror: body?.mirror };
  }

  /**
   * Waits until the cluster is in the steady state a failover drill starts from, and returns how long
   * that took (ms): a ready leader that logged `recovery.completed` for its epoch (its background
   * recovery — JobMaster starts — is over), and every other running replica a standby that knows it
   * and whose standby mirror is `synced` (with `graphs` stored graphs, when given: a restarted replica
   * has re-read them all). Polls every 100 ms.
   * @throws Error after `timeoutMs` naming what was not settled.
   */
  async settle(options: { graphs?: number; timeoutMs: number }): Promise<number> {
    const started = Date.now();
    let pending = 'a ready leader';
    const completed = new RecoveryLog();
    const settled = async (): Promise<true | null> => {
      const leader = await this.leaderOrNull();
      if (!leader) { pending = 'a ready leader'; return null; }
      const { epoch } = await this.health(leader);
      if (epoch === null || !completed.seen(leader, epoch)) {
        pending = `${leader.id}: recovery.completed for epoch ${epoch}`;
        return null;
      }
      for (const r of this.replicas) {
        if (r === leader || !r.running) continue;
        const h = await this.health(r);
        const m = h.mirror;
        if (h.status !== 429 || !m || m.state !== 'synced' || (options.graphs !== undefined && m.graphs !== options.graphs)) {
          pending = `${r.id}: a standby (429) with a synced mirror${options.graphs !== undefined ? ` of ${options.graphs} graphs` : ''}; ` +
            `it answers ${h.status}, mirror ${m === undefined ? 'not reported' : JSON.stringify(m && { state: m.state, graphs: m.graphs })}`;
          return null;
        }
      }
      return true;
    };
    try {
      await until('a settled cluster', settled, options.timeoutMs, 100);
    } catch {
      throw new Error(`the cluster did not settle within ${options.timeoutMs / 1000} s; still waiting for ${pending}`);
    }
    return Date.now() - started;
  }

  /** The ready leader among running replicas, by its own /health. */
  leader(timeoutMs = 30_000): Promise<BenchProcess> {
    return until('a ready leader', () => this.leaderOrNull(), timeoutMs, 20);
  }

  /** The running replica that answers /health as the ready leader now, or null. */
  private async leaderOrNull(): Promise<BenchProcess | null> {
    for (const r of this.replicas) {
      if (!r.running) continue;
      const h = await this.health(r);
      if (h.status === 200 && h.role === 'leader') return r;
    }
    return null;
  }

  /** Waits until `r` is a standby that knows the ready leader (answers 429 on /health). */
  standbyReady(r: BenchProcess, timeoutMs = 30_000): Promise<true> {
    return until(`${r.id} a standby that knows the leader`, async () => (await this.health(r)).status === 429 || null, timeoutMs, 20);
  }

  async waitForTaskManagers(count: number, timeoutMs = 30_000): Promise<void> {
    await until(`${count} registered TaskManagers`, async () => {
      const leader = await this.leader(timeoutMs);
      const a = await this.http.tryRequest('GET', `${leader.url}/taskmanagers`);
      return (a.status === 200 && parseJson<any>(a.text)?.taskmanagers?.length === count) || null;
    }, timeoutMs, 100);
  }

  async stop(): Promise<void> {
    this.http.close();
    await Promise.all(this.taskManagers.map((t) => t.stop('SIGTERM', 10_000)));
    await Promise.all(this.replicas.map((r) => r.stop('SIGKILL')));
  }

  logs(lines = 15): string {
    return [...this.replicas, ...this.taskManagers].map((p) => `---- ${p.id} ----\n${p.tail(lines)}`).join('\n');
  }
}
