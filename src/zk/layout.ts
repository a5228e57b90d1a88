/**
 * The product's ZooKeeper layout: every node path it creates, reads or watches, named once. Paths are
 * relative to the cluster's chroot `<high-availability.zookeeper.path.root>/<high-availability.cluster-id>`
 * (default `/ha-dispatcher/default`; the ZooKeeperClient applies it). README.md "ZooKeeper layout" describes
 * the same nodes for operators.
 *
 * Functions taking an id pass it through `segment()`, so an id from outside (REST, a stored node
 * name) can never become a path trick; they throw Error on an invalid segment.
 */
import { join, segment } from './paths';

// ---- leader election (src/election/) -------------------------------------------------------------

/**
 * `/leader/latch` — persistent parent of the election latch. Children
 * `_c_<uuid>-latch-<seq>`: ephemeral sequential, one per contender, written by each replica's
 * election driver; JSON contender info (replicaId, restUrl, rpcUrl, host, pid, version, startedAt,
 * sessionId). The lowest sequence owned by its session leads; the sequence only orders contenders
 * (the fencing token is `/epoch`).
 */
export const LATCH_PATH = '/leader/latch';

/** Prefix of the protected (per-attempt UUID) latch node names: `_c_<uuid>-latch-`. */
export const LATCH_NODE_PROTECTED_PREFIX = '_c_';

/** `/leader/latch/<node>`: one contender's latch node. */
export function latchNodePath(node: string): string {
  return join(LATCH_PATH, node);
}

/**
 * `/leader/info` — ephemeral, owned by the leader's session, written by the leader once its recovery
 * is done (readiness); JSON LeaderInfo (replicaId, restUrl, rpcUrl, epoch, sessionId, electedAt,
 * readyAt). Read and watched by standbys and TaskManagers to find the leader.
 */
export const LEADER_INFO_PATH = '/leader/info';

/**
 * `/epoch` — persistent, JSON `{epoch, replicaId, updatedAt (ISO)}`: the fencing-token counter. Every
 * leader raises it with a version-checked write when it is granted (a lost race grants nothing), and
 * raises it above what a TaskManager reports before resigning, so epochs only go up. Kept outside
 * `/leader` on purpose: cleaning up the latch (`deleteall <root>/leader`) must not reset it. Written
 * only by the election driver (src/election/zk-driver.ts).
 */
export const EPOCH_PATH = '/epoch';

// ---- job stores (src/store/) ---------------------------------------------------------------------

/**
 * `/jobgraphs` — persistent parent; children `/jobgraphs/<jobId>`: persistent, written by the leader's
 * Dispatcher on submission; JSON envelope `{formatVersion: 1, submittedAt (ISO), digest, graph}`.
 */
export const JOBGRAPHS_PATH = '/jobgraphs';

export function jobGraphPath(jobId: string): string {
  return join(JOBGRAPHS_PATH, segment(jobId));
}

/**
 * `/quarantine/jobgraphs` — persistent parent; children `<jobId>-<hash>`: persistent, written by a
 * recovering leader that found an unreadable graph; JSON `{jobId, reason, quarantinedAt (ISO),
 * originalPath, dataBase64}`. Only operators remove them.
 */
export const QUARANTINE_PATH = '/quarantine/jobgraphs';

/** `/quarantine/jobgraphs/<node>` (node names are built by the store and validated there). */
export function quarantineNodePath(node: string): string {
  return join(QUARANTINE_PATH, node);
}

/**
 * `/jobresults` — persistent parent; children `/jobresults/<jobId>`: persistent, written by the
 * leader's Dispatcher when a job ends; JSON `{state: dirty|clean, jobId, name, jobStatus, startTime,
 * endTime (epoch ms), graphDigest, failure?}`. A job with a result never runs again.
 */
export const JOBRESULTS_PATH = '/jobresults';

export function jobResultPath(jobId: string): string {
  return join(JOBRESULTS_PATH, segment(jobId));
}

/** `/jobs` — persistent parent of per-job runtime nodes (children created on first progress write). */
export const JOBS_PATH = '/jobs';

/** `/jobs/<jobId>` — persistent, empty; removed with its progress once the job's result is recorded. */
export function jobPath(jobId: string): string {
  return join(JOBS_PATH, segment(jobId));
}

/**
 * `/jobs/<jobId>/progress` — persistent, written only by the current leader's JobMaster (guarded);
 * the job-level part of its progress, JSON `{formatVersion: 2, jobId, epoch, updatedAt (epoch ms),
 * restarts, restart, exceptions}`. Format 1 (still read) also held `vertices.<id>.{attempts, finished,
 * deployed, taskManagers}`; format 2 keeps those in the vertex shards below (src/store/progress-store.ts).
 */
export function progressPath(jobId: string): string {
  return join(jobPath(jobId), 'progress');
}

/** `/jobs/<jobId>/vertices` — persistent, empty; parent of the job's vertex progress shards. */
export function vertexProgressShardsPath(jobId: string): string {
  return join(jobPath(jobId), 'vertices');
}

/**
 * `/jobs/<jobId>/vertices/<vertexId>` — persistent, written only by the current leader's JobMaster
 * (guarded); one vertex's subtask progress, JSON `{formatVersion: 2, vertexId, attempts[], finished[],
 * deployed[], taskManagers[]}`, bounded by the vertex's parallelism (src/jobgraph/limits.ts).
 */
export function vertexProgressPath(jobId: string, vertexId: string): string {
  return join(vertexProgressShardsPath(jobId), segment(vertexId));
}

/**
 * `/jobs/<jobId>/cancel` — persistent, JSON `{jobId, requestedAt (ISO), epoch}`: a cancel the leader
 * acknowledged (202). Written by the leader's Dispatcher (guarded) before it answers; a recovering
 * leader that finds it ends the job CANCELED. Removed with `/jobs/<jobId>` after the result is recorded.
 */
export function cancelRequestPath(jobId: string): string {
  return join(jobPath(jobId), 'cancel');
}

// ---- resources (src/resources/, src/store/drain-store.ts) ----------------------------------------

/**
 * `/drains` — persistent parent; children `/drains/<taskManagerId>`: persistent, sealed (context
 * `drain:<taskManagerId>`), written by the leader (guarded) when `POST /taskmanagers/:id/drain` is
 * accepted; JSON `{taskManagerId, requestedAt, deadlineAt (epoch ms or null)}`. Read by every new
 * leader's ResourceManager before it places work; removed when the TaskManager is released or lost.
 */
export const DRAINS_PATH = '/drains';

export function drainPath(taskManagerId: string): string {
  return join(DRAINS_PATH, segment(taskManagerId));
}

/**
 * `/autoscaler` — persistent, sealed (context `autoscaler`), written only by the leader (guarded):
 * the TaskManager autoscaler's desired state, JSON `{desired, launches: [{id, launchedAt,
 * registeredAt, host}], draining: [id], updatedAt, epoch}` (times epoch-ms). A launch is recorded before it
 * starts, so a new leader adopts launches under way (src/store/autoscaler-store.ts). Deleting it is
 * harmless: the leader writes it again on its next change.
 */
export const AUTOSCALER_PATH = '/autoscaler';
