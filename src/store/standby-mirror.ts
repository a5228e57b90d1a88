/**
 * A standby's verified mirror of what a new leader must read before it can list jobs: the stored
 * graphs (`/jobgraphs/<id>`, verified and parsed like the leader reads them), the results of those jobs
 * (`/jobresults/<id>`, names of all, contents only where a graph exists: a leftover cleanup), and the
 * quarantine (`/quarantine/jobgraphs/<node>`). Kept current with one-shot watches, re-armed on every
 * event: a membership change costs one `getChildren` of the changed folder plus one read per new
 * node; a graph is read once per job id (graphs are immutable per id; quarantine records are named by
 * content); a watched result is read again when it changes. Nothing is ever re-listed wholesale.
 *
 * Each folder remembers the child version (`cversion`, with the folder's `czxid`) of its latest
 * complete pass. On grant, `catchUp()` `sync`s and reads each folder's stat: a folder whose child
 * version is unchanged is not listed again (only nodes a data watch dropped are re-read), so the leader
 * publishes after a few round trips whatever the number of stored jobs (docs/ARCHITECTURE.md,
 * "Recovery"). Read-only: the mirror never writes. Talks to ZooKeeper through the stores and the
 * src/zk/ client.
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

/**
 * What the mirror holds. From `snapshot()` the collections are copies; from `catchUp()` they are the
 * mirror's own, read-only, and valid until it runs again (start()): a grant takes them over without
 * copying 10,000 entries, while the mirror is stopped.
 */
export interface MirrorSnapshot<G> {
  /**
   * The `/jobgraphs` children of the latest complete listing (after `catchUp()`: as of the catch-up;
   * empty while the folder does not exist). Every id has an entry in `graphs` unless its node vanished.
   */
  graphIds: readonly string[];
  /** Job id → stored graph (verified; an unreadable one as `ok: false`). */
  graphs: ReadonlyMap<string, StoredGraph<G>>;
  /** Ids in `graphs` that no recovery can run: an unreadable graph, or a name `isValidId` refuses. Few. */
  suspects: ReadonlySet<string>;
  /** Names of every `/jobresults` child. */
  resultIds: ReadonlySet<string>;
  /** Job id → result, for the ids with both a graph and a result (unreadable ones included). */
  results: ReadonlyMap<string, StoredResult>;
  /** Quarantine records, oldest first (a copy). */
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
const PATHS: Record<Folder, string> = { graphs: JOBGRAPHS_PATH, results: JOBRESULTS_PATH, quarantine: QUARANTINE_PATH };

/** A folder's children as one listing saw them, with the stat that names that membership. */
interface Listing {
  /** The folder node's creation zxid: a folder deleted and made again starts its cversion anew. */
  czxid: number;
  /** Child version: changes with every child created or deleted. */
  cversion: number;
  /** As listed; never mutated. */
  children: string[];
}

export class StandbyMirror<G> {
  private readonly graphs = new Map<string, StoredGraph<G>>();
  /** See MirrorSnapshot.suspects; kept with `graphs` (setGraph). */
  private readonly suspects = new Set<string>();
  /**
   * Graphs whose data watch fired while the mirror was stopped: held unchanged meanwhile (a leader
   * works from the map catchUp handed over), read again by the next catch-up or start.
   */
  private readonly staleGraphs = new Set<string>();
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
  /** Per folder: the listing of its latest complete pass (absent: none yet, or the folder did not exist). */
  private readonly listings = new Map<Folder, Listing>();
  /** Per folder: single-node re-reads a data watch started (a graph or a result changed), in flight. */
  private readonly nodeReads = new Map<Folder, Set<Promise<void>>>(FOLDERS.map((f) => [f, new Set()]));
  /** Result reads `readResultsOfGraphs` has in flight, by job id. */
  private readonly resultReads = new Map<string, Promise<void>>();
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
    /** Names a stored graph may have (the Dispatcher's job id rule); others are suspects. */
    private readonly isValidId: (id: string) => boolean = () => true,
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
   * Brings the mirror up to date with the servers' latest state and returns it: `sync`, then one
   * `exists` per folder (in parallel). A folder whose child version (`cversion`, same `czxid`) equals that
   * of its latest complete listing, with no refresh in flight, is not listed again: only children of that
   * listing missing from the mirror (a data watch dropped them) are read, after any re-read in flight.
   * Any other folder (changed, never completely listed, absent) is listed and its new nodes read; a
   * refresh in flight is awaited first and its listing compared. Correct by ZooKeeper's ordering: after
   * `sync`, the watch event of every change made before it arrives ahead of the answers that follow.
   * Works whether or not the mirror runs. Rejects on ZooKeeper trouble (a retry is safe). Znodes:
   * `/jobgraphs`, `/jobresults`, `/quarantine/jobgraphs` and their children (read only). Costs 4
   * requests when nothing changed.
   */
  async catchUp(): Promise<MirrorSnapshot<G>> {
    await this.client.sync(JOBGRAPHS_PATH);
    this.reads++;
    await Promise.all(FOLDERS.map((f) => this.catchUpFolder(f)));
    return this.view();
  }

  /** The mirror's own collections (see MirrorSnapshot): no copies. */
  private view(): MirrorSnapshot<G> {
    return {
      graphIds: this.listings.get('graphs')?.children ?? [], graphs: this.graphs, suspects: this.suspects,
      resultIds: this.resultIds, results: this.results, quarantine: sortQuarantine([...this.quarantine.values()]),
    };
  }

  private async catchUpFolder(folder: Folder): Promise<void> {
    this.reads++;
    const stat = await this.client.exists(PATHS[folder]);
    // Whatever events started before the stat's answer finishes first (once: a mirror that runs may see more).
    const inFlight = this.refreshing.get(folder);
    if (inFlight) await inFlight.catch(() => undefined);
    await Promise.allSettled([...this.nodeReads.get(folder)!]);
    const listing = this.listings.get(folder);
    const unchanged = stat !== null && listing !== undefined && listing.czxid === stat.czxid && listing.cversion === stat.cversion;
    if (!unchanged || this.refreshing.has(folder)) return this.refresh(folder, true);
    try {
      await this.fill(folder, listing);
    } finally {
      this.noteProgress();
    }
  }

  /** Reads the children of `listing` that the mirror lacks (membership unchanged since it). */
  private async fill(folder: Folder, listing: Listing): Promise<void> {
    if (folder === 'graphs') {
      const missing = listing.children.filter((id) => !this.graphs.has(id) || this.staleGraphs.has(id));
      await mapLimit(missing, READ_CONCURRENCY, (id) => this.readGraph(id));
      await this.readResultsOfGraphs();
    } else if (folder === 'results') {
      await this.readResultsOfGraphs();
    } else {
      const missing = listing.children.filter((n) => !this.quarantine.has(n));
      await this.readQuarantine(missing);
    }
  }

  /** The mirror's state and sizes, for `/health`; cheap (no ZooKeeper request). */
  status(): MirrorStatus {
    const state = !this.running ? 'off' : this.isSynced() ? 'synced' : 'loading';
    return { state, graphs: this.graphs.size, results: this.resultIds.size, quarantine: this.quarantine.size, syncedAt: state === 'off' ? null : this.syncedAt };
  }

  private isSynced(): boolean {
    return this.refreshing.size === 0 && FOLDERS.every((f) => this.passDone.get(f) === true && this.nodeReads.get(f)!.size === 0);
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
      graphIds: this.listings.get('graphs')?.children.slice() ?? [],
      graphs: new Map(this.graphs), suspects: new Set(this.suspects), resultIds: new Set(this.resultIds), results: new Map(this.results),
      quarantine: sortQuarantine([...this.quarantine.values()]),
    };
  }

  private readonly onState = (change: { state: string }): void => {
    // A new session has none of our watches: arm them again (a re-list of names, reads of new nodes only).
    if (change.state === 'CONNECTED' || change.state === 'RECONNECTED') this.refreshAll();
    // Cut off, events may be missed: not synced until the passes after the reconnect complete.
    else if (change.state === 'SUSPENDED' || change.state === 'LOST') for (const f of FOLDERS) this.passDone.set(f, false);
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
          let listing: Listing | null;
          try {
            listing = folder === 'graphs' ? await this.refreshGraphs() : folder === 'results' ? await this.refreshResults() : await this.refreshQuarantine();
          } catch (err) {
            // An event (e.g. the session's reconnect) during a failed pass still gets its pass.
            if (this.again.has(folder)) continue;
            throw err;
          }
          // Complete: the listing and every read it needed succeeded.
          if (listing) this.listings.set(folder, listing);
          else this.listings.delete(folder);
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

  private async refreshGraphs(): Promise<Listing | null> {
    this.reads++;
    const listing = await this.listed('graphs');
    const ids = new Set(listing?.children);
    for (const id of this.graphs.keys()) if (!ids.has(id)) this.setGraph(id, null);
    const fresh = [...ids].filter((id) => !this.graphs.has(id) || this.staleGraphs.has(id));
    await mapLimit(fresh, READ_CONCURRENCY, (id) => this.readGraph(id));
    await this.readResultsOfGraphs();
    return listing;
  }

  /**
   * Reads a graph once, with a data watch: the product never changes a stored graph, so the watch
   * fires only if someone deletes (a job's cleanup, a quarantine) or replaces it — then it is read again.
   */
  private async readGraph(id: string): Promise<void> {
    this.reads++;
    const graph = await this.graphStore.get(id, () => {
      // Stopped: held as it is (a leader may be working from the map); the next catchUp or start reads it again.
      if (!this.running) {
        this.staleGraphs.add(id);
        return;
      }
      this.setGraph(id, null);
      this.track('graphs', this.readGraph(id), id);
    });
    this.staleGraphs.delete(id);
    this.setGraph(id, graph);
  }

  /** Holds (or, with null, drops) a graph, keeping `suspects` in step. */
  private setGraph(id: string, graph: StoredGraph<G> | null): void {
    if (graph) this.graphs.set(id, graph);
    else {
      this.graphs.delete(id);
      this.staleGraphs.delete(id);
    }
    if (graph && (!graph.ok || !this.isValidId(id))) this.suspects.add(id);
    else this.suspects.delete(id);
  }

  /** Tracks a re-read a data watch started: `catchUp` awaits it, `status()` is not synced while it runs. */
  private track(folder: Folder, read: Promise<void>, jobId: string): void {
    const reads = this.nodeReads.get(folder)!;
    const tracked: Promise<void> = read
      .catch((err) => {
        // Until the next pass (a reconnect lists again) or catchUp reads it, this folder is not synced.
        this.passDone.set(folder, false);
        this.logger.debug('mirror.refresh.failed', { folder, jobId, error: err as Error });
      })
      .finally(() => { reads.delete(tracked); this.noteProgress(); });
    reads.add(tracked);
  }

  /** A folder's children with a watch and the stat naming them; null (watched for its creation) while it does not exist. */
  private async listed(folder: Folder): Promise<Listing | null> {
    const path = PATHS[folder];
    for (;;) {
      try {
        const { children, stat } = await this.client.getChildrenWithStat(path, this.watcher(folder));
        return { czxid: stat.czxid, cversion: stat.cversion, children };
      } catch (err) {
        if (!(err instanceof NoNodeError)) throw err;
        // Created between the listing and this check: list again (the listing arms the child watch).
        if (!(await this.client.exists(path, this.watcher(folder)))) return null;
      }
    }
  }

  private async refreshResults(): Promise<Listing | null> {
    this.reads++;
    const listing = await this.listed('results');
    this.resultIds.clear();
    for (const id of listing?.children ?? []) this.resultIds.add(id);
    await this.readResultsOfGraphs();
    return listing;
  }

  /**
   * Results of jobs that have a graph too (rare: an ending job), each read once and watched for change.
   * Both the graphs' and the results' passes end here (in parallel on catch-up): a result already being
   * read is awaited, not read twice (a change after that read fires its data watch).
   */
  private async readResultsOfGraphs(): Promise<void> {
    for (const id of this.results.keys()) if (!this.graphs.has(id) || !this.resultIds.has(id)) this.results.delete(id);
    // Ids in both sets: walk the smaller one (either may hold thousands: stored graphs, finished jobs).
    const [few, many]: [Iterable<string>, { has(id: string): boolean }] = this.resultIds.size <= this.graphs.size ? [this.resultIds.keys(), this.graphs] : [this.graphs.keys(), this.resultIds];
    const wanted: string[] = [];
    for (const id of few) if (many.has(id) && !this.results.has(id)) wanted.push(id);
    await mapLimit(wanted, READ_CONCURRENCY, (id) => {
      let read = this.resultReads.get(id);
      if (!read) {
        read = this.readResult(id).finally(() => this.resultReads.delete(id));
        this.resultReads.set(id, read);
      }
      return read;
    });
  }

  private async readResult(id: string): Promise<void> {
    this.reads++;
    const arm = !this.watchedResults.has(id);
    if (arm) this.watchedResults.add(id);
    let result: StoredResult | null;
    try {
      result = await this.resultStore.get(id, arm ? () => { this.watchedResults.delete(id); this.onResultChanged(id); } : undefined);
    } catch (err) {
      if (arm) this.watchedResults.delete(id);
      throw err;
    }
    if (result && this.graphs.has(id)) this.results.set(id, result);
    else this.results.delete(id);
    if (!result && arm) this.watchedResults.delete(id); // no node, no watch
  }

  private onResultChanged(id: string): void {
    if (!this.running || !this.graphs.has(id)) {
      // Stopped: `catchUp` reads it again (its id is listed, its graph held, its content not).
      this.results.delete(id);
      return;
    }
    this.track('results', this.readResult(id), id);
  }

  private async refreshQuarantine(): Promise<Listing | null> {
    this.reads++;
    const listing = await this.listed('quarantine');
    const nodes = new Set(listing?.children);
    for (const node of this.quarantine.keys()) if (!nodes.has(node)) this.quarantine.delete(node);
    await this.readQuarantine([...nodes].filter((n) => !this.quarantine.has(n)));
    return listing;
  }

  private async readQuarantine(nodes: string[]): Promise<void> {
    const read = await mapLimit(nodes, READ_CONCURRENCY, (n) => { this.reads++; return this.graphStore.getQuarantined(n); });
    nodes.forEach((n, i) => { const q = read[i]; if (q) this.quarantine.set(n, q); });
  }
}
