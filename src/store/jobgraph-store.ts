/**
 * JobGraph store: `/jobgraphs/<jobId>` holds the submitted graph in an envelope. Written only by the
 * current leader, through the session that holds its latch node (the write guard checks the term
 * before every write). What it deliberately leaves out: job progress and results (other stores).
 */
import * as crypto from 'node:crypto';
import { ZooKeeperClient, Watcher } from '../zk/client';
import { NodeExistsError, NoNodeError, NotEmptyError } from '../zk/errors';
import { join } from '../zk/paths';
import { JOBGRAPHS_PATH, jobGraphPath, QUARANTINE_PATH, quarantineNodePath } from '../zk/layout';
import { mapLimit } from '../util/concurrency';
import { writeBounded } from './bounded-write';
import { sealOf } from '../zk/sealed';

export const ENVELOPE_FORMAT_VERSION = 1;

export interface JobGraphEnvelope<G = unknown> {
  formatVersion: number;
  submittedAt: string;
  /** sha256 of the graph's canonical JSON: decides whether a resubmission is "the same graph". */
  digest: string;
  graph: G;
  /** The principal that submitted the job (REST roles); absent when the API was open, and in envelopes written before it existed. Sealed with the rest. */
  submittedBy?: string;
}

/** An envelope as `/jobgraphs/<jobId>` stores it (JobGraphStore.encode): `data` sealed JSON, `bytes` its UTF-8 length. */
export interface EncodedGraph { jobId: string; data: string; bytes: number }

/** `bytes`: size of the stored node (admission counts it). */
export type StoredGraph<G> = { jobId: string; ok: true; envelope: JobGraphEnvelope<G>; bytes?: number } | { jobId: string; ok: false; reason: string; raw: Buffer };

export interface QuarantineEntry { jobId: string; node: string; reason: string; quarantinedAt: string }

/** Throws when this replica may no longer write (not the leader of the term the store serves). */
export type WriteGuard = () => void;

export function graphDigest(canonicalJson: string): string {
  return crypto.createHash('sha256').update(canonicalJson).digest('hex');
}

export class JobGraphStore<G = unknown> {
  constructor(
    private readonly client: ZooKeeperClient,
    private readonly guard: WriteGuard,
    /** Validates a stored graph on read; throws on a graph the product cannot run. */
    private readonly parseGraph: (raw: unknown) => G,
  ) {}

  async init(): Promise<void> {
    await Promise.all([this.client.mkdirp(JOBGRAPHS_PATH), this.client.mkdirp(QUARANTINE_PATH)]);
  }

  /**
   * The data `put` writes for `envelope` at `/jobgraphs/<jobId>`, sealed once: a submission measures it
   * (admission counts `bytes`, the UTF-8 length of the node as stored, MAC included) and stores the
   * same string. No I/O; the size bound is checked by `put`.
   */
  encode(jobId: string, envelope: JobGraphEnvelope<G>): EncodedGraph {
    const data = sealOf(this.client).seal(graphContext(jobId), envelope);
    return { jobId, data, bytes: Buffer.byteLength(data, 'utf8') };
  }

  /**
   * Persists an encoded envelope with one `create` of `/jobgraphs/<jobId>` (no read first: the create's
   * NODEEXISTS answers whether the id is taken). Returns 'created', or the already stored envelope when
   * the id exists (one `get`; the caller decides between idempotent success and conflict).
   * @throws ZnodeTooLargeError (nothing sent), ZkError, whatever the write guard throws.
   */
  async put(encoded: EncodedGraph): Promise<{ created: true } | { created: false; existing: StoredGraph<G> }> {
    this.guard();
    const { jobId } = encoded;
    try {
      await writeBounded(this.client, jobGraphPath(jobId), encoded.data, { op: 'create' });
      return { created: true };
    } catch (err) {
      if (!(err instanceof NodeExistsError)) throw err;
      const existing = await this.get(jobId);
      if (!existing) return this.put(encoded); // deleted meanwhile: try again
      return { created: false, existing };
    }
  }

  /** The stored graph (null when absent); the optional watcher fires once when the node changes or goes. */
  async get(jobId: string, watcher?: Watcher): Promise<StoredGraph<G> | null> {
    try {
      const path = jobGraphPath(jobId);
      const { data } = await this.client.get(path, watcher);
      return this.decode(jobId, path, data);
    } catch (err) {
      if (err instanceof NoNodeError) return null;
      throw err;
    }
  }

  /** Ids of every stored graph; the optional watcher fires once on the next membership change. */
  listIds(watcher?: Watcher): Promise<string[]> {
    return this.client.getChildren(JOBGRAPHS_PATH, watcher);
  }

  /** Reads many graphs with many requests in flight (one round trip costs ~1.5 ms on loopback). */
  readAll(jobIds: string[], concurrency = 256): Promise<Array<StoredGraph<G> | null>> {
    return mapLimit(jobIds, concurrency, (id) => this.get(id));
  }

  async remove(jobId: string): Promise<void> {
    await this.removeTree(jobGraphPath(jobId), 0);
  }

  /**
   * Deletes a node and anything someone created below it: the product never writes children under a
   * graph, but one foreign child must not make a job's cleanup (and with it every recovery) fail forever.
   */
  private async removeTree(path: string, depth: number): Promise<void> {
    this.guard();
    try {
      await this.client.delete(path);
    } catch (err) {
      if (err instanceof NoNodeError) return;
      if (!(err instanceof NotEmptyError) || depth >= 8) throw err;
      for (const child of await this.client.getChildren(path).catch(() => [] as string[])) await this.removeTree(join(path, child), depth + 1);
      await this.removeTree(path, depth + 1);
    }
  }

  /** Moves an unreadable graph aside so recovery never trips over it again; the bytes are kept. */
  async quarantine(jobId: string, raw: Buffer, reason: string): Promise<QuarantineEntry> {
    this.guard();
    const quarantinedAt = new Date().toISOString();
    // Named by content, so a new leader redoing an interrupted quarantine finds the record already there.
    const node = `${safeName(jobId)}-${crypto.createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
    const record = { jobId, reason, quarantinedAt, originalPath: join(JOBGRAPHS_PATH, jobId), dataBase64: raw.toString('base64') };
    await writeBounded(this.client, quarantineNodePath(node), JSON.stringify(record), { op: 'create' }).catch((err) => {
      if (!(err instanceof NodeExistsError)) throw err;
    });
    await this.client.delete(join(JOBGRAPHS_PATH, jobId)).catch((err) => {
      if (!(err instanceof NoNodeError)) throw err;
    });
    return { jobId, node, reason, quarantinedAt };
  }

  async listQuarantined(): Promise<QuarantineEntry[]> {
    const nodes = await this.listQuarantineNodes().catch(() => [] as string[]);
    const entries = await mapLimit(nodes, 64, async (node) => (await this.getQuarantined(node)) ?? unreadableQuarantine(node));
    return sortQuarantine(entries);
  }

  /** Names of the `/quarantine/jobgraphs` children; the optional watcher fires once on the next membership change. */
  listQuarantineNodes(watcher?: Watcher): Promise<string[]> {
    return this.client.getChildren(QUARANTINE_PATH, watcher);
  }

  /** One quarantine record (null when gone); an unreadable one is reported as such, never thrown. Rejects on ZooKeeper trouble. */
  async getQuarantined(node: string): Promise<QuarantineEntry | null> {
    let data: Buffer;
    try {
      ({ data } = await this.client.get(quarantineNodePath(node)));
    } catch (err) {
      if (err instanceof NoNodeError) return null;
      throw err;
    }
    try {
      const r = JSON.parse(data.toString('utf8')) as QuarantineEntry;
      return { jobId: String(r.jobId), node, reason: String(r.reason), quarantinedAt: String(r.quarantinedAt) };
    } catch {
      return unreadableQuarantine(node);
    }
  }

  private decode(jobId: string, path: string, data: Buffer): StoredGraph<G> {
    // A graph that fails verification is never run: the dispatcher quarantines it with this reason.
    const opened = sealOf(this.client).open<JobGraphEnvelope>(graphContext(jobId), path, data);
    if (!opened.ok) return { jobId, ok: false, reason: opened.reason, raw: data };
    const envelope = opened.value;
    if (!envelope || typeof envelope !== 'object' || envelope.formatVersion !== ENVELOPE_FORMAT_VERSION || typeof envelope.digest !== 'string') {
      return { jobId, ok: false, reason: `not a format-${ENVELOPE_FORMAT_VERSION} JobGraph envelope`, raw: data };
    }
    try {
      const graph = this.parseGraph(envelope.graph);
      return { jobId, ok: true, envelope: { ...envelope, graph }, bytes: data.length };
    } catch (err) {
      return { jobId, ok: false, reason: `invalid graph: ${(err as Error).message}`, raw: data };
    }
  }
}

/** What a graph's MAC binds it to: its job id (a sealed graph copied to another id does not verify). */
function graphContext(jobId: string): string {
  return `jobgraph:${jobId}`;
}

function unreadableQuarantine(node: string): QuarantineEntry {
  return { jobId: node, node, reason: 'unreadable quarantine record', quarantinedAt: '' };
}

/** Oldest quarantine first (ISO times sort as strings). */
export function sortQuarantine(entries: QuarantineEntry[]): QuarantineEntry[] {
  return entries.sort((a, b) => a.quarantinedAt.localeCompare(b.quarantinedAt));
}

/** Quarantine node names come from whatever child name was found; keep them path-safe. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100) || 'unnamed';
}
