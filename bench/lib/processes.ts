/**
 * Replica and TaskManager processes for the benchmarks: `node bin/ha-dispatcher.js dispatcher|taskmanager`
 * with -D settings, each logging its JSON events to its own file, so intervals can be read from the
 * processes' own clocks (`leadership.granted` → `dispatcher.ready`).
 */
import { ChildProcess } from 'node:child_process';
import { spawnClean } from '../../src/util/clean-spawn';
import { killOnExit } from '../../src/util/process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePorts } from '../../src/util/ports';
import { packageRoot } from '../../src/util/package-root';
import { HttpClient, parseJson } from './http';
import { until } from './wait';

export interface LogEvent {
  event: string;
  /** Epoch milliseconds from the event's own timestamp. */
  at: number;
  [key: string]: any;
}

export class BenchProcess {
  child: ChildProcess | null = null;
  readonly logFile: string;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly kind: 'dispatcher' | 'taskmanager',
    private readonly args: string[],
    logDir: string,
    /** REST URL (replicas only). */
    readonly url = '',
    /** Extra Node.js flags for this process (e.g. --trace-gc). */
    private readonly nodeFlags: string[] = [],
  ) {
    this.logFile = path.join(logDir, `${id}.log`);
  }

  start(): void {
    if (this.running) throw new Error(`${this.id} is already running`);
    const log = fs.openSync(this.logFile, 'a');
    // HA_BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the replicas; Node
    // refuses --cpu-prof in NODE_OPTIONS.
    const nodeArgs = [...(this.kind === 'dispatcher' ? (process.env.HA_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean) : []), ...this.nodeFlags];
    // The benchmark holds ZooKeeper sessions of its own: children must not inherit their sockets.
    const child = spawnClean(process.execPath, [...nodeArgs, path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), this.kind, ...this.args],
      { stdio: ['ignore', log, log], env: { ...process.env, HA_LOG_LEVEL: 'info' } });
    fs.closeSync(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    killOnExit(child);
  }

  get pid(): number | null { return this.running ? this.child?.pid ?? null : null; }
  get running(): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null; }

  /** Sends the signal without waiting. */
  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child!.kill(signal);
  }

  /** Sends the signal and waits (bounded) for the exit; SIGKILL after the bound. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    await this.waitForExit(timeoutMs);
  }

  async waitForExit(timeoutMs = 15_000): Promise<void> {
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (timedOut && this.running) {
      this.child!.kill('SIGKILL');
      await this.exited;
    }
  }

  /** Bytes logged so far: pass to `events` to see only what came after. */
  logSize(): number {
    try { return fs.statSync(this.logFile).size; } catch { return 0; }
  }

  events(name?: string, fromByte = 0): LogEvent[] {
    const text = this.readFrom(fromByte);
    const out: LogEvent[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      const e = parseJson<Record<string, any>>(line);
      if (!e || typeof e.event !== 'string' || (name && e.event !== name)) continue;
      out.push({ ...e, event: e.event, at: Date.parse(String(e.timestamp)) });
    }
    return out;
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
    return this.readFrom(fromByte).split('\n').filter((l) => l && !l.startsWith('{'));
  }

  /** The log from byte `fromByte` on ('' when it cannot be read). */
  private readFrom(fromByte: number): string {
    try {
      const fd = fs.openSync(this.logFile, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.max(0, size - fromByte));
        fs.readSync(fd, buf, 0, buf.length, fromByte);
        return buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return '';
    }
  }


  tail(lines = 20): string {
    try { return fs.readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }
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
      ...(options.settings ?? []),
    ].flatMap((s) => ['-D', s]);
  }

  /** The ZooKeeper chroot the cluster's replicas use. */
  get root(): string { return `/ha-dispatcher/${this.clusterId}`; }

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

  async health(r: BenchProcess): Promise<{ status: number; role?: string; leader?: { replicaId: string; epoch: number } | null }> {
    const a = await this.http.tryRequest('GET', `${r.url}/health`);
    const body = parseJson<any>(a.text);
    return { status: a.status, role: body?.role, leader: body?.leader ?? null };
  }

  /** The ready leader among running replicas, by its own /health. */
  leader(timeoutMs = 30_000): Promise<BenchProcess> {
    return until('a ready leader', async () => {
      for (const r of this.replicas) {
        if (!r.running) continue;
        const h = await this.health(r);
        if (h.status === 200 && h.role === 'leader') return r;
      }
      return null;
    }, timeoutMs, 20);
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
