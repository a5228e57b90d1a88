/**
 * Simulated TaskManagers for the scale benchmark: many in the benchmark process, each speaking the
 * real internal protocol (src/taskmanager/protocol.ts) to the real leader. Each has its own RPC
 * server on a loopback port (the leader takes a bare base URL as a TaskManager's address), follows
 * the leader through the product's own LeaderRetrievalService (one shared ZooKeeper session for the
 * whole fleet), registers its slots, heartbeats, accepts deploys and reports RUNNING and then FINISHED
 * — without spawning anything. A `sleep` task finishes after its `ms`; any other task type at once.
 * With `hold` set, tasks stay RUNNING until `release()`: how a benchmark keeps N jobs running.
 */
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LeaderRetrievalService } from '../../src/election/retrieval';
import type { LeaderInfo } from '../../src/election/leader-info';
import {
  DeployRequest, executionKey, HeartbeatResponse, RegistrationRequest, RegistrationResponse, StatusResponse, TaskReport, TERMINAL_REPORTED,
} from '../../src/taskmanager/protocol';
import { rpcCall } from '../../src/taskmanager/rpc';
import { NativeZooKeeperClient } from '../../src/zk/client';

export interface FleetOptions {
  connect: string;
  /** The cluster's chroot, e.g. `/ha-dispatcher/<cluster-id>`. */
  root: string;
  /** Between heartbeats, ms (the TaskManagers' heartbeat.interval). */
  heartbeatIntervalMs: number;
  sessionTimeoutMs?: number;
}

/** Counters of the whole fleet, as seen from the TaskManagers' side. */
export interface FleetCounters {
  heartbeats: number;
  heartbeatsRefused: number;
  registrations: number;
  deploys: number;
  reports: number;
}

/** When each job's deploys arrived (epoch-ms), for submit → all subtasks deployed. */
export interface JobDeploys {
  count: number;
  lastAt: number;
}

export class SimulatedFleet {
  readonly members: SimulatedTaskManager[] = [];
  readonly counters: FleetCounters = { heartbeats: 0, heartbeatsRefused: 0, registrations: 0, deploys: 0, reports: 0 };
  /** Per job id: deploys received (first attempts and restarts alike). */
  readonly deploysByJob = new Map<string, JobDeploys>();
  /** Tasks stay RUNNING until `release()` while true. */
  hold = false;

  private constructor(readonly options: FleetOptions, private readonly client: NativeZooKeeperClient, readonly retrieval: LeaderRetrievalService) {}

  /** Connects the fleet's ZooKeeper session and starts following the leader. */
  static async start(options: FleetOptions): Promise<SimulatedFleet> {
    const client = new NativeZooKeeperClient({ connect: options.connect, chroot: options.root, sessionTimeoutMs: options.sessionTimeoutMs ?? 4000 });
    await client.waitUntilConnected(15_000);
    const retrieval = new LeaderRetrievalService(client);
    const fleet = new SimulatedFleet(options, client, retrieval);
    retrieval.on('change', (leader: LeaderInfo | null) => { for (const m of fleet.members) m.leaderChanged(leader); });
    retrieval.start();
    return fleet;
  }

  /** Adds `count` TaskManagers of `slots` slots each (ids `<prefix><n>`), listening and registering. */
  async add(count: number, slots: number, prefix = 'sim-tm'): Promise<void> {
    for (let i = 0; i < count; i++) {
      const tm = new SimulatedTaskManager(this, `${prefix}${this.members.length + 1}`, slots);
      await tm.listen();
      this.members.push(tm);
      tm.leaderChanged(this.retrieval.current);
    }
  }

  /** How many members are registered with the leader of `epoch`. */
  registeredWith(epoch: number): number {
    return this.members.filter((m) => m.registeredEpoch === epoch).length;
  }

  /** Epoch-ms at which the last member registered with `epoch`, or null if some has not yet. */
  allRegisteredAt(epoch: number): number | null {
    let last = 0;
    for (const m of this.members) {
      if (m.registeredEpoch !== epoch) return null;
      last = Math.max(last, m.registeredAt);
    }
    return last;
  }

  /** Tasks held RUNNING right now across the fleet. */
  runningTasks(): number {
    return this.members.reduce((n, m) => n + m.running(), 0);
  }

  /** Tasks whose outcome the leader has not acknowledged yet (running ones included). */
  unacknowledgedTasks(): number {
    return this.members.reduce((n, m) => n + m.unacknowledged(), 0);
  }

  /** Ends the hold: every held task finishes now. */
  release(): void {
    this.hold = false;
    for (const m of this.members) m.finishAll();
  }

  noteDeploy(jobId: string): void {
    this.counters.deploys++;
    const d = this.deploysByJob.get(jobId) ?? { count: 0, lastAt: 0 };
    d.count++;
    d.lastAt = Date.now();
    this.deploysByJob.set(jobId, d);
  }

  async stop(): Promise<void> {
    this.retrieval.stop();
    await Promise.all(this.members.map((m) => m.stop()));
    await this.client.close();
  }
}

interface SimTask {
  report: TaskReport;
  timer: NodeJS.Timeout | null;
  acknowledged: boolean;
}

/** One simulated TaskManager: contact with the leader runs one call at a time, as the real one's does. */
class SimulatedTaskManager {
  private readonly server: http.Server;
  private readonly instanceId = crypto.randomUUID();
  private address = '';
  private leader: LeaderInfo | null = null;
  /** Epoch of the leader we are registered with (null while not). */
  registeredEpoch: number | null = null;
  registeredAt = 0;
  private highestEpoch = -1;
  private readonly tasks = new Map<string, SimTask>();
  private readonly unreported = new Set<string>();
  private busy = false;
  private again = false;
  private heartbeatDue = false;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly fleet: SimulatedFleet, readonly id: string, private readonly slots: number) {
    this.server = http.createServer((req, res) => { void this.serve(req, res); });
    this.server.keepAliveTimeout = 5_000;
    // Members are added one after another, so the fleet's heartbeats are spread over the interval.
    const interval = fleet.options.heartbeatIntervalMs;
    this.heartbeatTimer = setInterval(() => { this.heartbeatDue = true; this.contact(); }, interval);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.address = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
        resolve();
      });
    });
  }

  leaderChanged(leader: LeaderInfo | null): void {
    if (leader && this.leader && leader.epoch === this.leader.epoch && leader.rpcUrl === this.leader.rpcUrl) return;
    this.leader = leader;
    this.registeredEpoch = null;
    this.contact();
  }

  running(): number {
    let n = 0;
    for (const t of this.tasks.values()) if (!TERMINAL_REPORTED.has(t.report.state)) n++;
    return n;
  }

  unacknowledged(): number {
    return this.tasks.size;
  }

  finishAll(): void {
    for (const [key, t] of this.tasks) if (t.report.state === 'RUNNING') this.finish(key);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const t of this.tasks.values()) if (t.timer) clearTimeout(t.timer);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- leader → TaskManager ----

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: any = null;
    try { body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null; } catch { body = null; }
    const answer = (status: number, value: unknown): void => {
      const text = JSON.stringify(value);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method === 'POST' && (req.url === '/deploy' || req.url === '/cancel')) {
      if (typeof body?.epoch !== 'number' || body.epoch < this.highestEpoch) return answer(409, { errors: ['stale leader epoch'], epoch: this.highestEpoch });
      if (req.url === '/deploy') return answer(200, this.deploy(body as DeployRequest));
      return answer(200, { canceled: this.cancel(body) });
    }
    if (req.method === 'GET' && req.url === '/tasks') return answer(200, { tasks: [...this.tasks.values()].map((t) => t.report) });
    if (req.method === 'GET' && req.url === '/livez') return answer(200, { status: 'alive', taskManagerId: this.id });
    return answer(404, { errors: ['no such endpoint'] });
  }

  private deploy(req: DeployRequest): { key: string; state: string } {
    const key = executionKey(req);
    const known = this.tasks.get(key);
    if (known) return { key, state: known.report.state };
    this.fleet.noteDeploy(req.jobId);
    const task: SimTask = {
      report: { jobId: req.jobId, vertexId: req.vertexId, subtask: req.subtask, attempt: req.attempt, state: 'RUNNING', startedAt: Date.now(), pid: null },
      timer: null, acknowledged: false,
    };
    this.tasks.set(key, task);
    this.changed(key);
    if (!this.fleet.hold) {
      const ms = req.task?.type === 'sleep' ? Math.max(0, Number((req.task as { ms?: number }).ms) || 0) : 0;
      task.timer = setTimeout(() => this.finish(key), ms);
    }
    return { key, state: 'DEPLOYING' };
  }

  private finish(key: string): void {
    const t = this.tasks.get(key);
    if (!t || TERMINAL_REPORTED.has(t.report.state)) return;
    t.timer = null;
    t.report = { ...t.report, state: 'FINISHED', endedAt: Date.now() };
    this.changed(key);
  }

  private cancel(req: { jobId: string; vertexId?: string; subtask?: number; attempt?: number }): string[] {
    const canceled: string[] = [];
    for (const [key, t] of this.tasks) {
      const r = t.report;
      if (r.jobId !== req.jobId || TERMINAL_REPORTED.has(r.state)) continue;
      if (req.vertexId !== undefined && (r.vertexId !== req.vertexId || r.subtask !== req.subtask || r.attempt !== req.attempt)) continue;
      if (t.timer) clearTimeout(t.timer);
      t.report = { ...r, state: 'CANCELED', endedAt: Date.now() };
      canceled.push(key);
      this.unreported.add(key);
    }
    return canceled;
  }

  private changed(key: string): void {
    this.unreported.add(key);
    this.contact();
  }

  // ---- TaskManager → leader: one call at a time ----

  private contact(): void {
    if (this.stopped) return;
    if (this.busy) { this.again = true; return; }
    this.busy = true;
    void this.round().finally(() => {
      this.busy = false;
      if (this.again) { this.again = false; setImmediate(() => this.contact()); } else if (this.registeredEpoch === null && this.leader && !this.retryTimer) {
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.contact(); }, 100);
      }
    });
  }

  private async round(): Promise<void> {
    const leader = this.leader;
    if (!leader?.rpcUrl) return;
    try {
      if (this.registeredEpoch === null) await this.register(leader);
      else if (this.heartbeatDue) {
        this.heartbeatDue = false;
        await this.heartbeat(leader);
      }
      if (this.registeredEpoch !== null && this.unreported.size > 0) await this.report(leader);
    } catch {
      this.registeredEpoch = null; // transport failure: register again
    }
  }

  private async register(leader: LeaderInfo): Promise<void> {
    const tasks = [...this.tasks.values()].filter((t) => !t.acknowledged).map((t) => t.report);
    for (const t of tasks) this.unreported.delete(executionKey(t));
    const request: RegistrationRequest = {
      taskManagerId: this.id, instanceId: this.instanceId, host: '127.0.0.1', address: this.address, slots: this.slots,
      epoch: leader.epoch, highestEpoch: this.highestEpoch, tasks,
    };
    const res = await rpcCall<RegistrationResponse>('POST', `${leader.rpcUrl}/internal/taskmanagers`, request, { timeoutMs: 15_000 });
    if (res.status !== 200) return;
    this.highestEpoch = Math.max(this.highestEpoch, res.body.epoch);
    this.registeredEpoch = res.body.epoch;
    this.registeredAt = Date.now();
    this.fleet.counters.registrations++;
    this.acknowledge(res.body.acknowledged);
  }

  private async heartbeat(leader: LeaderInfo): Promise<void> {
    const running = [...this.tasks.entries()].filter(([, t]) => !TERMINAL_REPORTED.has(t.report.state)).map(([k]) => k);
    const res = await rpcCall<HeartbeatResponse>('POST', `${leader.rpcUrl}/internal/taskmanagers/${encodeURIComponent(this.id)}/heartbeat`,
      { epoch: this.registeredEpoch, running }, { timeoutMs: 5_000 });
    if (res.status !== 200) {
      this.fleet.counters.heartbeatsRefused++;
      this.registeredEpoch = null;
      this.again = true;
      return;
    }
    this.fleet.counters.heartbeats++;
    // Unacknowledged outcomes are sent again, as the real TaskManager does.
    for (const [key, t] of this.tasks) if (!t.acknowledged && TERMINAL_REPORTED.has(t.report.state)) this.unreported.add(key);
  }

  private async report(leader: LeaderInfo): Promise<void> {
    const keys = [...this.unreported];
    this.unreported.clear();
    const reports = keys.map((k) => this.tasks.get(k)?.report).filter((r): r is TaskReport => r !== undefined);
    const res = await rpcCall<StatusResponse>('POST', `${leader.rpcUrl}/internal/tasks/status`,
      { taskManagerId: this.id, epoch: this.registeredEpoch, reports }, { timeoutMs: 15_000 });
    if (res.status !== 200) {
      for (const k of keys) this.unreported.add(k);
      this.registeredEpoch = null;
      this.again = true;
      return;
    }
    this.fleet.counters.reports += reports.length;
    this.acknowledge(res.body.acknowledged);
    for (const key of res.body.cancel ?? []) {
      const t = this.tasks.get(key);
      if (t && !TERMINAL_REPORTED.has(t.report.state)) this.cancel({ ...t.report });
    }
  }

  private acknowledge(keys: string[] | undefined): void {
    for (const key of keys ?? []) {
      const t = this.tasks.get(key);
      if (t && TERMINAL_REPORTED.has(t.report.state)) this.tasks.delete(key);
    }
  }
}
