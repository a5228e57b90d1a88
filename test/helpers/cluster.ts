/**
 * Real dispatcher replica processes for integration tests: `node bin/ha-dispatcher.js dispatcher`
 * with -D settings, REST on 127.0.0.1, each cluster in its own cluster-id (chroot).
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../../src/util/ports';
import { packageRoot } from '../../src/util/package-root';
import { eventually } from './ensemble';

export interface ClusterOptions {
  connect: string;
  /** Defaults to a fresh random id, i.e. an empty chroot. */
  clusterId?: string;
  replicas?: number;
  sessionTimeoutMs?: number;
  /** Extra "key=value" settings for every replica. */
  settings?: string[];
}

export interface HttpAnswer { status: number; headers: Headers; body: any; text: string }

/** One HTTP exchange without following redirects (tests look at 307s themselves). */
export async function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const init: RequestInit = { method, redirect: 'manual', headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' || Buffer.isBuffer(body) ? (body as string) : JSON.stringify(body);
    if (!('content-type' in headers)) (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed: unknown = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export class ReplicaProcess {
  child: ChildProcess | null = null;
  readonly url: string;
  readonly logFile: string;

  constructor(readonly id: string, readonly port: number, private readonly args: string[], logDir: string) {
    this.url = `http://127.0.0.1:${port}`;
    this.logFile = path.join(logDir, `${id}.log`);
  }

  start(): void {
    const log = fs.openSync(this.logFile, 'a');
    this.child = spawn(process.execPath, [path.join(packageRoot(), 'bin', 'ha-dispatcher.js'), 'dispatcher', ...this.args],
      { stdio: ['ignore', log, log], env: { ...process.env, HA_LOG_LEVEL: 'info' } });
    fs.closeSync(log);
  }

  get running(): boolean { return this.child !== null && this.child.exitCode === null && this.child.signalCode === null; }

  /** Sends a signal and, unless it is SIGSTOP/SIGCONT, waits for the process to exit. */
  async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    if (sig === 'SIGSTOP' || sig === 'SIGCONT') { child.kill(sig); return; }
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGCONT');
    child.kill(sig);
    await exited;
  }

  async health(): Promise<HttpAnswer | null> {
    try { return await http('GET', `${this.url}/health`); } catch { return null; }
  }

  tail(lines = 30): string {
    try { return fs.readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n'); } catch { return ''; }
  }
}

export class Cluster {
  private constructor(readonly clusterId: string, readonly replicas: ReplicaProcess[], readonly logDir: string) {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    const clusterId = options.clusterId ?? `c-${crypto.randomBytes(5).toString('hex')}`;
    const count = options.replicas ?? 3;
    const ports = await freePorts(count);
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `ha-cluster-${clusterId}-`));
    const replicas = ports.map((port, i) => new ReplicaProcess(`r${i + 1}`, port, [
      '-D', `high-availability.zookeeper.quorum=${options.connect}`,
      '-D', `high-availability.cluster-id=${clusterId}`,
      '-D', `high-availability.zookeeper.client.session-timeout=${options.sessionTimeoutMs ?? 4000}`,
      '-D', `rest.port=${port}`,
      '-D', `replica.id=r${i + 1}`,
      ...(options.settings ?? []).flatMap((s) => ['-D', s]),
    ], logDir));
    const cluster = new Cluster(clusterId, replicas, logDir);
    for (const r of replicas) r.start();
    await eventually('every replica answers /livez', async () => {
      const answers = await Promise.all(replicas.map((r) => http('GET', `${r.url}/livez`).catch(() => null)));
      return answers.every((a) => a?.status === 200);
    }, 30000);
    return cluster;
  }

  /** The ready leader (by its own /health) among running replicas. */
  async leader(timeoutMs = 30000, exclude: ReplicaProcess[] = []): Promise<ReplicaProcess> {
    return eventually('a ready leader', async () => {
      for (const r of this.replicas) {
        if (!r.running || exclude.includes(r)) continue;
        const h = await r.health();
        if (h?.status === 200 && h.body?.role === 'leader') return r;
      }
      return null;
    }, timeoutMs, 50);
  }

  async standbys(leader: ReplicaProcess): Promise<ReplicaProcess[]> {
    return this.replicas.filter((r) => r !== leader && r.running);
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.signal('SIGKILL')));
  }

  logs(): string {
    return this.replicas.map((r) => `---- ${r.id} ----\n${r.tail()}`).join('\n');
  }
}
