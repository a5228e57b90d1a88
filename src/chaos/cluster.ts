/**
 * The system under test of a chaos run: a local ZooKeeper ensemble, 3 dispatcher replicas and 2
 * TaskManagers as real processes on loopback. Each replica reaches ZooKeeper through its own fault
 * proxies (one per server), so one replica can be partitioned, and its session read and expired, without
 * touching the others. Every process incarnation logs to its own file; `events()` turns those JSON
 * lines, and the task start/end file, into history events.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isJobId } from '../jobgraph';
import { LocalEnsemble } from '../ensemble/local-ensemble';
import { expireSession, NativeZooKeeperClient } from '../zk/client';
import { freePorts } from '../util/ports';
import { sleep } from '../util/clock';
import { HaProcess, ProcessKind, readJsonLines } from '../util/ha-process';
import { requestJson } from '../http/client';
import { JOBGRAPHS_PATH, JOBRESULTS_PATH } from '../zk/layout';
import { generateStateKey } from '../zk/sealed';
import { localLaunchedTaskManagers } from '../resources/autoscaler-providers';
import { FaultMode, FaultProxy } from './fault-proxy';
import type { DeployEvent, FinalJob, HistoryEvent, LeadershipEvent, TaskEvent, TmEpochEvent } from './history';

export interface ChaosClusterOptions {
  ensemble: LocalEnsemble;
  /** Folder for logs, the task file and TaskManager data. */
  dir: string;
  clusterId: string;
  replicas?: number;
  taskManagers?: number;
  slots?: number;
  sessionTimeoutMs?: number;
  /** Extra "key=value" settings for every process. */
  settings?: string[];
  /** Give every process one cluster state key (src/zk/sealed.ts): unsealed state in ZooKeeper is refused. */
  stateKey?: boolean;
}

/** One replica or TaskManager; restarts keep its id (and a replica its REST port) but start a new incarnation with its own log. */
export class ChaosProcess extends HaProcess {
  readonly proxies: FaultProxy[] = [];

  constructor(id: string, kind: ProcessKind, args: string[], dir: string, url = '') {
    super(id, kind, args, dir, url, { logPerIncarnation: true });
  }

  /** Sets every ZooKeeper proxy of this process to `mode` (pass, blackhole, reject). */
  setNetwork(mode: FaultMode): void {
    for (const p of this.proxies) p.mode = mode;
  }
}

export class ChaosCluster {
  readonly replicas: ChaosProcess[] = [];
  readonly taskManagers: ChaosProcess[] = [];
  readonly taskFile: string;
  /** The internal RPC is authenticated in chaos runs too, as in production. */
  readonly tokenFile: string;
  readonly sessionTimeoutMs: number;
  /** Where forged tasks would leave their marker files (a file here means a forged job ran). */
  readonly markerDir: string;
  /** The cluster state key file, when `stateKey` was asked for. */
  readonly stateKeyFile: string | null;

  private constructor(readonly options: ChaosClusterOptions) {
    this.taskFile = path.join(options.dir, 'tasks.txt');
    this.tokenFile = path.join(options.dir, 'internal-token');
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 4000;
    this.markerDir = path.join(options.dir, 'forged-markers');
    this.stateKeyFile = options.stateKey ? path.join(options.dir, 'state.key') : null;
  }

  get ensemble(): LocalEnsemble { return this.options.ensemble; }
  get namespace(): string { return `/ha-dispatcher/${this.options.clusterId}`; }

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    fs.mkdirSync(options.dir, { recursive: true });
    const cluster = new ChaosCluster(options);
    fs.writeFileSync(cluster.taskFile, '');
    fs.writeFileSync(cluster.tokenFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
    fs.mkdirSync(cluster.markerDir, { recursive: true });
    if (cluster.stateKeyFile) fs.writeFileSync(cluster.stateKeyFile, `${generateStateKey()}\n`, { mode: 0o600 });
    const replicaCount = options.replicas ?? 3;
    const ports = await freePorts(replicaCount);
    for (let i = 0; i < replicaCount; i++) {
      const id = `r${i + 1}`;
      const proxies = await Promise.all(options.ensemble.servers.map((s) => FaultProxy.start({ host: '127.0.0.1', port: s.clientPort })));
      const quorum = proxies.map((p) => p.address).join(',');
      const p = new ChaosProcess(id, 'dispatcher', cluster.settings(quorum, [`rest.port=${ports[i]}`, `replica.id=${id}`]), options.dir, `http://127.0.0.1:${ports[i]}`);
      p.proxies.push(...proxies);
      cluster.replicas.push(p);
    }
    // Fixed RPC ports, as in production: a restarted TaskManager comes back under the same id and address.
    const tmPorts = await freePorts(options.taskManagers ?? 2);
    for (let i = 0; i < tmPorts.length; i++) {
      const id = `tm${i + 1}`;
      cluster.taskManagers.push(new ChaosProcess(id, 'taskmanager', cluster.settings(options.ensemble.connectString, [
        `taskmanager.id=${id}`, `taskmanager.numberOfTaskSlots=${options.slots ?? 4}`, `taskmanager.data-dir=${path.join(options.dir, id)}`,
        'taskmanager.bind-address=127.0.0.1', `taskmanager.rpc-port=${tmPorts[i]}`,
      ]), options.dir));
    }
    for (const p of [...cluster.replicas, ...cluster.taskManagers]) p.start();
    await cluster.waitForLeader(60_000);
    await cluster.waitForTaskManagers(60_000);
    return cluster;
  }

  private settings(quorum: string, extra: string[]): string[] {
    return [
      `high-availability.zookeeper.quorum=${quorum}`,
      `high-availability.cluster-id=${this.options.clusterId}`,
      `high-availability.zookeeper.client.session-timeout=${this.sessionTimeoutMs}`,
      'heartbeat.interval=500', 'heartbeat.timeout=4000',
      'jobmanager.reconcile-timeout=4000',
      'taskmanager.orphan-timeout=30000',
      `security.internal.token-file=${this.tokenFile}`,
      ...(this.stateKeyFile ? [`high-availability.zookeeper.state-key-file=${this.stateKeyFile}`] : []),
      'restart-strategy.type=fixed-delay', 'restart-strategy.fixed-delay.attempts=1000', 'restart-strategy.fixed-delay.delay=200',
      ...(this.options.settings ?? []),
      ...extra,
    ].flatMap((s) => ['-D', s]);
  }

  replica(id: string): ChaosProcess {
    const r = this.replicas.find((x) => x.id === id);
    if (!r) throw new Error(`no replica ${id}`);
    return r;
  }

  /** The ready leader by its own /health, or null. */
  async currentLeader(): Promise<ChaosProcess | null> {
    for (const r of this.replicas) {
      if (!r.running || r.paused) continue;
      const h = await requestJson('GET', `${r.url}/health`, undefined, { timeoutMs: 2000 }).catch(() => null);
      if (h?.status === 200 && h.body?.role === 'leader') return r;
    }
    return null;
  }

  async waitForLeader(timeoutMs: number): Promise<ChaosProcess | null> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leader = await this.currentLeader();
      if (leader) return leader;
      await sleep(100);
    }
    return null;
  }

  async waitForTaskManagers(timeoutMs: number): Promise<boolean> {
    const want = this.taskManagers.filter((t) => t.running && !t.paused).length;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leader = await this.currentLeader();
      const a = leader ? await requestJson('GET', `${leader.url}/taskmanagers`, undefined, { timeoutMs: 2000 }).catch(() => null) : null;
      if (a?.status === 200 && a.body.taskmanagers.length >= want) return true;
      await sleep(200);
    }
    return false;
  }

  /**
   * Expires a process's ZooKeeper session from outside, with the credentials its proxies saw. Its own
   * connection is held silent for the moment it takes (well under the session timeout): otherwise its
   * client reconnects at once, takes the session back, and the close that expires it fails as "moved".
   */
  async expireSessionOf(p: ChaosProcess): Promise<string | null> {
    const latest = p.proxies.map((x) => x.lastSession).filter((s) => s !== null).sort((a, b) => b!.seenAt - a!.seenAt)[0];
    if (!latest) return null;
    p.setNetwork('blackhole');
    try {
      await expireSession(this.ensemble.connectString, latest, Math.max(1000, Math.floor(this.sessionTimeoutMs / 3)));
    } finally {
      p.setNetwork('pass');
    }
    return latest.sessionId;
  }

  /** Brings everything back: proxies pass, paused processes resume, dead ones restart, every ZooKeeper server runs. */
  async heal(): Promise<void> {
    for (const r of this.replicas) r.setNetwork('pass');
    for (const p of [...this.replicas, ...this.taskManagers]) {
      if (p.paused) await p.signal('SIGCONT');
      if (!p.running) p.start();
    }
    for (const s of await this.ensemble.status()) {
      if (s.paused) this.ensemble.resumeServer(s.id);
      if (!s.alive) await this.ensemble.restartServer(s.id);
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.taskManagers.map((t) => t.signal('SIGTERM', 10_000)));
    // TaskManagers the leader's autoscaler launched (`local` provider) are nobody's children here.
    for (const { pid } of localLaunchedTaskManagers(this.options.clusterId)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
    }
    await Promise.all(this.replicas.map((r) => r.signal('SIGKILL')));
    await Promise.all(this.replicas.flatMap((r) => r.proxies.map((p) => p.close())));
  }

  logs(lines = 30): string {
    return [...this.replicas, ...this.taskManagers].map((p) => `---- ${p.id} (incarnation ${p.incarnation}) ----\n${p.tail(lines)}`).join('\n');
  }

  // ---- history from logs ---------------------------------------------------------------------

  /** Leadership, TaskManager epoch and deploy events from every incarnation's log, and task starts/ends. */
  events(): HistoryEvent[] {
    const out: HistoryEvent[] = [];
    for (const r of this.replicas) {
      for (let inc = 1; inc <= r.incarnation; inc++) {
        for (const e of readJsonLines(r.logFile(inc))) {
          const change = e.event === 'leadership.granted' ? 'granted' : e.event === 'leadership.revoked' ? 'revoked' : e.event === 'leadership.ready' ? 'ready' : null;
          if (!change || typeof e.epoch !== 'number') continue;
          const ev: LeadershipEvent = { kind: 'leadership', t: Date.parse(e.timestamp), replicaId: r.id, incarnation: inc, epoch: e.epoch, change };
          if (e.reason) ev.reason = String(e.reason);
          out.push(ev);
        }
      }
    }
    for (const tm of this.taskManagers) {
      for (let inc = 1; inc <= tm.incarnation; inc++) {
        readJsonLines(tm.logFile(inc)).forEach((e, seq) => {
          const t = Date.parse(e.timestamp);
          if (e.event === 'leader.changed' && typeof e.leaderEpoch === 'number') {
            out.push({ kind: 'tm-epoch', t, seq, tm: tm.id, incarnation: inc, epoch: e.leaderEpoch, source: 'leader.changed' } satisfies TmEpochEvent);
          } else if (e.event === 'taskmanager.registered' && typeof e.epoch === 'number') {
            out.push({ kind: 'tm-epoch', t, seq, tm: tm.id, incarnation: inc, epoch: e.epoch, source: 'registered' } satisfies TmEpochEvent);
          } else if (e.event === 'taskmanager.command.rejected' && typeof e.epoch === 'number') {
            out.push({ kind: 'rejected-command', t, tm: tm.id, epoch: e.epoch, highestEpoch: Number(e.highestEpoch) });
          } else if (e.event === 'task.status' && e.status === 'DEPLOYING' && typeof e.epoch === 'number') {
            out.push({
              kind: 'deploy', t, seq, tm: tm.id, incarnation: inc, jobId: e.jobId, vertexId: e.vertexId, subtask: e.subtask, attempt: e.attempt, epoch: e.epoch,
            } satisfies DeployEvent);
          }
        });
      }
    }
    for (const record of readTaskFile(this.taskFile)) out.push(record);
    for (const name of fs.existsSync(this.markerDir) ? fs.readdirSync(this.markerDir) : []) {
      const file = path.join(this.markerDir, name);
      out.push({ kind: 'forgery-trusted', t: fs.statSync(file).mtimeMs, how: 'marker-written', detail: `marker file ${file} exists`, jobId: name });
    }
    return out;
  }

  // ---- final state -----------------------------------------------------------------------------

  /** After the run: each job as the leader's REST API and ZooKeeper itself report it. */
  async finalJobs(jobIds: string[]): Promise<FinalJob[]> {
    const leader = await this.waitForLeader(60_000);
    const zk = new NativeZooKeeperClient({ connect: this.ensemble.connectString, chroot: this.namespace, sessionTimeoutMs: 30_000 });
    try {
      await zk.waitUntilConnected(30_000);
      const out: FinalJob[] = [];
      for (const jobId of jobIds) {
        const job: FinalJob = { jobId, restStatus: 0, stored: 'none' };
        for (let attempt = 0; attempt < 5 && leader; attempt++) {
          const a = await requestJson('GET', `${leader.url}/jobs/${jobId}`, undefined, { timeoutMs: 5000 }).catch(() => null);
          if (!a || a.status === 503) {
            await sleep(500);
            continue;
          }
          job.restStatus = a.status;
          if (a.status === 200) {
            job.state = a.body.state;
            job.name = a.body.name;
            job.endTime = a.body['end-time'];
            job.vertices = (a.body.vertices ?? []).map((v: { id: string; parallelism: number }) => ({ id: v.id, parallelism: v.parallelism }));
          }
          break;
        }
        const [graph, result] = await Promise.all([readNode(zk, `${JOBGRAPHS_PATH}/${jobId}`), readNode(zk, `${JOBRESULTS_PATH}/${jobId}`)]);
        try {
          if (graph) job.storedDigest = (JSON.parse(graph) as { digest: string }).digest;
          if (result) {
            const r = JSON.parse(result) as { jobStatus: string; endTime: number; graphDigest: string };
            job.resultStatus = r.jobStatus;
            job.resultEndTime = r.endTime;
            job.storedDigest ??= r.graphDigest;
          }
          job.stored = graph && result ? 'both' : graph ? 'jobgraphs' : result ? 'jobresults' : 'none';
        } catch {
          job.stored = 'unreadable';
        }
        out.push(job);
      }
      return out;
    } finally {
      await zk.close();
    }
  }
}

async function readNode(zk: NativeZooKeeperClient, p: string): Promise<string | null> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await zk.get(p)).data.toString('utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'NONODE') return null;
      if (attempt >= 10) throw err;
      await sleep(300);
    }
  }
}

/** The line each chaos task writes when it starts and when it ends (see workload.ts). */
export function readTaskFile(file: string): TaskEvent[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: TaskEvent[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (start|end) (\S+) (\S+) (\d+) (\d+) (\d+)$/.exec(line.trim());
    if (!m || !isJobId(m[3])) continue;
    out.push({ kind: 'task', t: Number(m[1]), phase: m[2] as 'start' | 'end', jobId: m[3], vertexId: m[4], subtask: Number(m[5]), attempt: Number(m[6]), pid: Number(m[7]) });
  }
  return out;
}
