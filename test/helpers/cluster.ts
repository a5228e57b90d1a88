/**
 * Real dispatcher replica processes for integration tests: `node bin/ha-dispatcher.js dispatcher`
 * with -D settings, REST on 127.0.0.1, each cluster in its own cluster-id (chroot).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { JsonResponse, requestJson } from '../../src/http/client';
import { HaProcess } from '../../src/util/ha-process';
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

export type HttpAnswer = JsonResponse;

/** One HTTP exchange without following redirects (tests look at 307s themselves); a string or Buffer body is sent as is. */
export function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const raw = typeof body === 'string' || Buffer.isBuffer(body);
  return requestJson(method, url, body, { headers, raw, timeoutMs: 60_000 });
}

/** A replica on an ephemeral REST port, learnt from its log; restarts keep that port. */
export class ReplicaProcess extends HaProcess {
  constructor(id: string, args: string[], logDir: string) {
    super(id, 'dispatcher', args, logDir);
  }

  /** Restarts keep the first URL: `rest.port` is pinned to it after the first start. */
  protected override startArgs(): string[] {
    return this.url ? [...this.args, '-D', `rest.port=${new URL(this.url).port}`] : [...this.args, '-D', 'rest.port=0'];
  }

  /** Reads "replica <id> serving <url>" (inside the JSON line `replica.serving`) from the log; null until it appears. */
  servedUrl(): string | null {
    const m = /replica \S+ serving (http:\/\/[^\s"]+)/.exec(this.tail(200));
    return m ? m[1] : null;
  }

  async health(): Promise<HttpAnswer | null> {
    try { return await http('GET', `${this.url}/health`); } catch { return null; }
  }
}

export class Cluster {
  private constructor(readonly clusterId: string, readonly replicas: ReplicaProcess[], readonly logDir: string) {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    const clusterId = options.clusterId ?? `c-${crypto.randomBytes(5).toString('hex')}`;
    const count = options.replicas ?? 3;
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `ha-cluster-${clusterId}-`));
    const replicas = Array.from({ length: count }, (_, i) => new ReplicaProcess(`r${i + 1}`, [
      '-D', `high-availability.zookeeper.quorum=${options.connect}`,
      '-D', `high-availability.cluster-id=${clusterId}`,
      '-D', `high-availability.zookeeper.client.session-timeout=${options.sessionTimeoutMs ?? 4000}`,
      '-D', `replica.id=r${i + 1}`,
      ...(options.settings ?? []).flatMap((s) => ['-D', s]),
    ], logDir));
    const cluster = new Cluster(clusterId, replicas, logDir);
    for (const r of replicas) r.start();
    try {
      await eventually('every replica serves REST', () => replicas.every((r) => {
        if (!r.running) throw new Error(`replica ${r.id} exited during start-up:\n${r.tail()}`);
        const url = r.servedUrl();
        if (url) r.url = url;
        return url !== null;
      }), 60000, 50);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
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
