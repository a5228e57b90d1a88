/**
 * A standby's verified mirror of what a new leader must read before it can list jobs: the stored
 * graphs (`/jobgraphs/<id>`, verified and parsed like the leader reads them), the results of those jobs
 * (`/jobresults/<id>`, names of all, contents only where a graph exists: a leftover cleanup), and the
 * quarantine (`/quarantine/jobgraphs/<node>`). Kept current with one-shot watches, re-armed on every
 * event: a membership change costs one `getChildren` of the changed folder plus one read per new
 * node; a graph is read once per job id (graphs are immutable per id; quarantine records are named by
 * content); a watched result is read again when it changes. Nothing is ever re-listed wholesale.
 *
 * On grant, `catchUp()` `sync`s, compares children with the mirror and reads only what changed, so the
 * leader publishes after a handful of round trips (docs/ARCHITECTURE.md, "Recovery"). Read-only: the
 * mirror never writes. Talks to ZooKeeper only through the stores (src/zk/ client).
 */
import type { ZooKeeperClient } from '../zk/client';
import { JOBGRAPHS_PATH, JOBRESULTS_PATH, QUARANTINE_PATH } from '../zk/layout';
import { NoNodeError } from '../zk/errors';
import { mapLimit } from '../util/concurrency';
import { EventLogger, silentLogger } from '../util/logger';
import { Clock, systemClock } from '../util/clock';
import { JobGraphStore, QuarantineEntry, sortQuarantine, StoredGraph } from './jobgraph-store';
import { JobResultStore, StoredResult } from './jobresult-store';

/** Reads in flight at once while catching up (one round trip costs ~1.5 ms on loopback). */
const READ_CONCURRENCY = 64;

/** What the mirror holds; the maps are copies. */
export interface MirrorSnapshot<G> {
  /** Job id → stored graph (verified; an unreadable one as `ok: false`). */
  graphs: Map<string, StoredGraph<G>>;
  /** Names of every `/jobresults` child. */
  resultIds: Set<string>;
  /** Job id → result, for the ids with both a graph and a result (unreadable ones included). */
  results: Map<string, StoredResult>;
  /** Quarantine records, oldest first. */
  quarantine: QuarantineEntry[];
}

/** What `/health` shows of the mirror (src/rest/routes/probes.ts). */
export interface MirrorStatus {
  /**
   * `off` while stopped (this replica leads, or closed); `synced` once every folder's latest refresh
   * pass completed (listing and every read it needed) with nothing in flight; `loading` otherwise.
   */
  state: 'off' | 'loading' | 'synced';
  /** Graphs held (`/jobgraphs` children read). */
  graphs: number;
  /** Names of `/jobresults` children held (contents only for ids that also have a graph). */
  results: number;
  /** Quarantine records held. */
  quarantine: number;
  /** Epoch-ms of the first moment it was synced after the latest start(); null until then and while off. */
  syncedAt: number | null;
}

type Folder = 'graphs' | 'results' | 'quarantine';
const FOLDERS: readonly Folder[] = ['graphs', 'results', 'quarantine'];

export class StandbyMirror<G> {
  private readonly graphs = new Map<string, StoredGraph<G>>();
  private readonly resultIds = new Set<string>();
  private readonly results = new Map<string, StoredResult>();
  private readonly quarantine = new Map<string, QuarantineEntry>();
  /** Results with a data watch armed (one per node, whatever the number of events). */
  private readonly watchedResults = new Set<string>();
  private readonly refreshing = new Map<Folder, Promise<void>>();
  private readonly again = new Set<Folder>();
  private running = false;
  /** Per folder: whether its latest refresh pass completed; absent before the first pass ends. */
  private readonly passDone = new Map<Folder, boolean>();
  /** Monotonic ms of the latest start(), for the `mirror.synced` event. */
  private startedAt = 0;
  private syncedAt: number | null = null;
  private syncedLogged = false;
  private readonly logger: EventLogger;
  /** ZooKeeper reads issued so far (children listings and node reads), for tests and diagnostics. */
  reads = 0;

  constructor(
    private readonly client: ZooKeeperClient,
    private readonly graphStore: JobGraphStore<G>,
    private readonly resultStore: JobResultStore,
    logger: EventLogger = silentLogger,
    private readonly clock: Clock = systemClock,
  ) {
    this.logger = logger.child({ component: 'mirror' });
  }

  /** Begins (or resumes) mirroring; also re-arms the watches after a new session. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = this.clock.monotonicNow();
    this.syncedAt = null;
    this.syncedLogged = false;
    this.client.on('state', this.onState);
    this.refreshAll();
  }

  /** Stops acting on events (the replica leads and reads the store itself); what it holds is kept. */
  stop(): void {
    this.running = false;
    this.client.off('state', this.onState);
  }

  /**
   * Brings the mirror up to date with the servers' latest state and returns it: `sync`, then each
   * folder's children compared with the mirror, reading only new nodes (and results that changed).
   * Works whether or not the mirror runs. Rejects on ZooKeeper trouble (a retry is safe).
   */
  async catchUp(): Promise<MirrorSnapshot<G>> {
    await this.client.sync(JOBGRAPHS_PATH);
    this.reads++;
    await Promise.all((['graphs', 'results', 'quarantine'] as const).map((f) => this.refresh(f, true)));
    return this.snapshot();
  }

  /** The mirror's state and sizes, for `/health`; cheap (no ZooKeeper request). */
  status(): MirrorStatus {
    const state = !this.running ? 'off' : this.isSynced() ? 'synced' : 'loading';
    return { state, graphs: this.graphs.size, results: this.resultIds.size, quarantine: this.quarantine.size, syncedAt: state === 'off' ? null : this.syncedAt };
  }

  private isSynced(): boolean {
    return this.refreshing.size === 0 && FOLDERS.every((f) => this.passDone.get(f) === true);
  }

  /** After a pass or a read ends: notes (and logs once) the first moment it is synced after each start(). */
  private noteProgress(): void {
    if (!this.running || !this.isSynced()) return;
    if (this.syncedAt === null) this.syncedAt = this.clock.now();
    if (this.syncedLogged) return;
    this.syncedLogged = true;
    this.logger.info('mirror.synced', {
      graphs: this.graphs.size, results: this.resultIds.size, quarantine: this.quarantine.size,
      ms: Math.round(this.clock.monotonicNow() - this.startedAt),
    });
  }

  snapshot(): MirrorSnapshot<G> {
    return {
      graphs: new Map(this.graphs), resultIds: new Set(this.resultIds), results: new Map(this.results),
      quarantine: sortQuarantine([...this.quarantine.values()]),
    };
  }

  private readonly onState = (change: { state: string }): void => {
    // A new session has none of our watches: arm them again (a re-list of names, reads of new nodes only).
    if (change.state === 'CONNECTED' || change.state === 'RECONNECTED') this.refreshAll();
  };

  private refreshAll(): void {
    for (const folder of ['graphs', 'results', 'quarantine'] as const) this.schedule(folder);
  }

  /** A watch fired (or the mirror started): refresh that folder, once more if events arrive meanwhile. */
  private schedule(folder: Folder): void {
    if (!this.running) return;
    this.refresh(folder, false).catch((err) => {
      this.logger.debug('mirror.refresh.failed', { folder, error: err as Error });
      // The watch may not be armed: the next session event (or catchUp on grant) restores it.
    });
  }

  private refresh(folder: Folder, force: boolean): Promise<void> {
    const current = this.refreshing.get(folder);
    if (current) {
      // An event during a refresh: one more pass after it sees everything that changed meanwhile.
      this.again.add(folder);
      return force ? current.then(() => this.refresh(folder, true)) : current;
    }
    const run = (async () => {
      try {
        do {
          this.again.delete(folder);
          this.passDone.set(folder, false);
          if (folder === 'graphs') await this.refreshGraphs();
          else if (folder === 'results') await this.refreshResults();
          else await this.refreshQuarantine();
          this.passDone.set(folder, true);
        } while (this.again.has(folder));
      } finally {
        this.refreshing.delete(folder);
        this.noteProgress();
      }
    })();
    this.refreshing.set(folder, run);
    return run;
  }

  private watcher(folder: Folder): () => void {
    return () => this.schedule(folder);
  }

  private async refreshGraphs(): Promise<void> {
    this.reads++;
    const ids = new Set(await this.listed(JOBGRAPHS_PATH, 'graphs', (w) => this.graphStore.listIds(w)));
    for (const id of this.graphs.keys()) if (!ids.has(id)) this.graphs.delete(id);
    const fresh = [...ids].filter((id) => !this.graphs.has(id));
    await mapLimit(fresh, READ_CONCURRENCY, (id) => this.readGraph(id));
    await this.readResultsOfGraphs();
  }

  /**
   * Reads a graph once, with a data watch: the product never changes a stored graph, so the watch
   * fires only if someone deletes (a job's cleanup, a quarantine) or replaces it — then it is read again.
   */
  private async readGraph(id: string): Promise<void> {
    this.reads++;
    const graph = await this.graphStore.get(id, () => {
      this.graphs.delete(id);
      if (this.running) this.readGraph(id).catch((err) => this.logger.debug('mirror.refresh.failed', { folder: 'graphs', jobId: id, error: err as Error }));
    });
    if (graph) this.graphs.set(id, graph);
    else this.graphs.delete(id);
  }

  /** A folder's children with a watch; a folder not created yet is empty, watched for its creation. */
  private async listed(path: string, folder: Folder, list: (watcher: () => void) => Promise<string[]>): Promise<string[]> {
    for (;;) {
      try {
        return await list(this.watcher(folder));
      } catch (err) {
        if (!(err instanceof NoNodeError)) throw err;
        // Created between the listing and this check: list again (the listing arms the child watch).
        if (!(await this.client.exists(path, this.watcher(folder)))) return [];
      }
    }
  }

  private async refreshResults(): Promise<void> {
    this.reads++;
    const ids = await this.listed(JOBRESULTS_PATH, 'results', (w) => this.resultStore.listIds(w));
    this.resultIds.clear();
    for (const id of ids) this.resultIds.add(id);
    await this.readResultsOfGraphs();
  }

  /** Results of jobs that have a graph too (rare: an ending job), each read once and watched for change. */
  private async readResultsOfGraphs(): Promise<void> {
    for (const id of this.results.keys()) if (!this.graphs.has(id) || !this.resultIds.has(id)) this.results.delete(id);
    const wanted = [...this.resultIds].filter((id) => this.graphs.has(id) && !this.results.has(id));
    await mapLimit(wanted, READ_CONCURRENCY, (id) => this.readResult(id));
  }

  private async readResult(id: string): Promise<void> {
    this.reads++;
    const arm = !this.watchedResults.has(id);
    if (arm) this.watchedResults.add(id);
    let result: StoredResult | null;
    try {
      result = await this.resultStore.get(id, arm ? () => { this.watchedResults.delete(id); void this.onResultChanged(id); } : undefined);
    } catch (err) {
      if (arm) this.watchedResults.delete(id);
      throw err;
    }
    if (result && this.graphs.has(id)) this.results.set(id, result);
    else this.results.delete(id);
    if (!result && arm) this.watchedResults.delete(id); // no node, no watch
  }

  private async onResultChanged(id: string): Promise<void> {
    if (!this.running || !this.graphs.has(id)) {
      this.results.delete(id);
      return;
    }
    await this.readResult(id).catch((err) => this.logger.debug('mirror.refresh.failed', { folder: 'results', jobId: id, error: err as Error }));
  }

  private async refreshQuarantine(): Promise<void> {
    this.reads++;
    const nodes = new Set(await this.listed(QUARANTINE_PATH, 'quarantine', (w) => this.graphStore.listQuarantineNodes(w)));
    for (const node of this.quarantine.keys()) if (!nodes.has(node)) this.quarantine.delete(node);
    const fresh = [...nodes].filter((n) => !this.quarantine.has(n));
    const read = await mapLimit(fresh, READ_CONCURRENCY, (n) => { this.reads++; return this.graphStore.getQuarantined(n); });
    fresh.forEach((n, i) => { const q = read[i]; if (q) this.quarantine.set(n, q); });
  }
}
