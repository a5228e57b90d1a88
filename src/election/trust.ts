/**
 * When leader information is trusted: the one check standbys (redirects), the CLI (through a standby's
 * `X-HA-Leader-*` headers) and TaskManagers (registration) rely on. `/leader/info` is trusted only when
 *  1. it is ephemeral (a persistent node, owner "0", stands for no session);
 *  2. its MAC verifies under the cluster state key (src/zk/sealed.ts, context `leader-info`);
 *  3. the session it names is its owner, and that session also owns the lowest live latch node;
 *  4. its epoch and replica are the last ones taken from the sealed `/epoch` counter (every grant
 *     raises it), and its URLs match that contender's own (sealed) latch data;
 *  5. its URLs are http(s) URLs without credentials or control characters;
 *  6. no other live contender (another session) claims the same REST URL: a replica restarted at the
 *     leader's address before the old session expired would otherwise be redirected to by everyone,
 *     itself included, while nothing serves as leader there;
 *  7. it does not name this replica's own REST URL from another session (a replica never redirects
 *     to itself).
 * Anything else is "no leader" with a reason, logged as `leader.info.untrusted`.
 */
import type { Stat, Watcher, ZooKeeperClient } from '../zk/client';
import { NoNodeError } from '../zk/errors';
import { join, sequenceOf } from '../zk/paths';
import { EPOCH_PATH, LATCH_PATH, LEADER_INFO_PATH } from '../zk/layout';
import { sealOf } from '../zk/sealed';
import { LeaderInfo, LeaderInfoJson } from './leader-info';

/** Seal contexts of what the election writes (src/zk/sealed.ts). */
export const LEADER_INFO_CONTEXT = 'leader-info';
export const CONTENDER_CONTEXT = 'contender';
/** The `/epoch` fencing counter: `{epoch, replicaId, updatedAt}`, written by the driver on every grant. */
export const EPOCH_CONTEXT = 'epoch';

export type LeaderTrust = { trusted: true; leader: LeaderInfo } | { trusted: false; reason: string };

export interface TrustOptions {
  /** This process's own REST URL, when it is a replica: a record naming it from another session is no leader. */
  selfRestUrl?: string;
  /** Set on `/leader/info` (exists and get) and on the latch children: fires once on the next change. */
  watcher?: Watcher;
}

/**
 * Reads `/leader/info` and the latch and applies the checks above. Reads (and watches, with
 * `options.watcher`) `/leader/info`, lists `/leader/latch` and reads its children.
 * @returns the trusted leader, or why there is none (also when `/leader/info` does not exist).
 * @throws ZkError on connection loss and other ZooKeeper errors (not on a node vanishing meanwhile).
 */
export async function readTrustedLeader(client: ZooKeeperClient, options: TrustOptions = {}): Promise<LeaderTrust> {
  const { watcher } = options;
  let data: Buffer;
  let stat: Stat;
  try {
    const stat0 = await client.exists(LEADER_INFO_PATH, watcher);
    if (!stat0) return { trusted: false, reason: 'no /leader/info' };
    ({ data, stat } = await client.get(LEADER_INFO_PATH, watcher));
  } catch (err) {
    if (err instanceof NoNodeError) return { trusted: false, reason: 'no /leader/info' };
    throw err;
  }
  if (stat.ephemeralOwner === '0' || !stat.ephemeralOwner) return { trusted: false, reason: 'persistent /leader/info: no session stands behind it' };
  const opened = sealOf(client).open<Partial<LeaderInfoJson>>(LEADER_INFO_CONTEXT, LEADER_INFO_PATH, data);
  if (!opened.ok) return { trusted: false, reason: opened.reason };
  const json = opened.value;
  if (typeof json.replicaId !== 'string' || typeof json.restUrl !== 'string' || typeof json.rpcUrl !== 'string' ||
    !Number.isSafeInteger(json.epoch) || typeof json.sessionId !== 'string') {
    return { trusted: false, reason: 'not a leader information record' };
  }
  const { sessionId, ...rest } = json as LeaderInfoJson;
  const info: LeaderInfo = { ...rest, zkSessionId: sessionId };
  if (sessionId !== stat.ephemeralOwner) return { trusted: false, reason: `names session ${sessionId} but is owned by ${stat.ephemeralOwner}` };
  for (const url of [info.restUrl, info.rpcUrl]) {
    if (!isSafeLeaderUrl(url)) return { trusted: false, reason: `URL ${JSON.stringify(url).slice(0, 200)} is not a plain http(s) URL` };
  }

  const contenders = await liveContenders(client, watcher);
  const lowest = contenders[0];
  if (!lowest) return { trusted: false, reason: 'no live latch node' };
  if (lowest.owner !== stat.ephemeralOwner) return { trusted: false, reason: `session ${stat.ephemeralOwner} does not own the lowest live latch node ${lowest.node}` };
  if (!lowest.data) return { trusted: false, reason: `latch node ${lowest.node} holds no verifiable contender data` };
  const counter = await readEpochCounter(client, watcher);
  if (!counter.ok) return { trusted: false, reason: counter.reason };
  if (info.epoch !== counter.epoch || info.replicaId !== counter.replicaId) {
    return { trusted: false, reason: `epoch ${info.epoch} of ${info.replicaId} is not the last one taken (${counter.epoch} by ${counter.replicaId})` };
  }
  if (lowest.data.restUrl !== info.restUrl || (lowest.data.rpcUrl !== undefined && lowest.data.rpcUrl !== info.rpcUrl)) {
    return { trusted: false, reason: 'URL differs from the lowest contender\'s own' };
  }
  const claimant = contenders.slice(1).find((c) => c.owner !== lowest.owner && c.data?.restUrl === info.restUrl);
  if (claimant) return { trusted: false, reason: `${info.restUrl} is now claimed by a later contender (${claimant.node}): the leader's process was restarted` };
  if (options.selfRestUrl !== undefined && sameUrl(options.selfRestUrl, info.restUrl) && stat.ephemeralOwner !== client.sessionId) {
    return { trusted: false, reason: 'names this replica\'s own URL from another session (an earlier run of this replica)' };
  }
  return { trusted: true, leader: info };
}

/** The sealed `/epoch` counter as the election driver last wrote it. Reads `/epoch`. */
/** With `watcher`, a later grant (a new counter) makes the caller read the trust again. */
async function readEpochCounter(client: ZooKeeperClient, watcher?: Watcher): Promise<{ ok: true; epoch: number; replicaId: unknown } | { ok: false; reason: string }> {
  let data: Buffer;
  try {
    ({ data } = await client.get(EPOCH_PATH, watcher));
  } catch (err) {
    if (err instanceof NoNodeError) return { ok: false, reason: 'no /epoch counter' };
    throw err;
  }
  const opened = sealOf(client).open<{ epoch?: unknown; replicaId?: unknown }>(EPOCH_CONTEXT, EPOCH_PATH, data);
  if (!opened.ok) return { ok: false, reason: `/epoch: ${opened.reason}` };
  if (!Number.isSafeInteger(opened.value.epoch)) return { ok: false, reason: '/epoch holds no epoch' };
  return { ok: true, epoch: opened.value.epoch as number, replicaId: opened.value.replicaId };
}

/** An absolute http(s) URL with a host, no user info and no control characters or whitespace. */
export function isSafeLeaderUrl(url: unknown): boolean {
  if (typeof url !== 'string' || url.length === 0 || url.length > 2048 || /[\u0000-\u0020\u007f-\u009f]/.test(url)) return false;
  let parsed: URL;
  try { parsed = new URL(url); } catch { return false; }
  return (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.hostname !== '' && !parsed.username && !parsed.password;
}

interface LiveContender { node: string; owner: string; data: Record<string, unknown> | null }

/** Ephemeral latch nodes in sequence order with their owners and verified data (null when it fails). */
async function liveContenders(client: ZooKeeperClient, watcher?: Watcher): Promise<LiveContender[]> {
  let children: string[];
  try {
    children = await client.getChildren(LATCH_PATH, watcher);
  } catch (err) {
    if (err instanceof NoNodeError) return [];
    throw err;
  }
  const sorted = children.filter((c) => Number.isFinite(sequenceOf(c))).sort((a, b) => sequenceOf(a) - sequenceOf(b));
  const read = await Promise.all(sorted.map(async (node): Promise<LiveContender | null> => {
    const path = join(LATCH_PATH, node);
    try {
      const { data, stat } = await client.get(path);
      if (stat.ephemeralOwner === '0' || !stat.ephemeralOwner) return null;
      const opened = sealOf(client).open(CONTENDER_CONTEXT, path, data);
      return { node, owner: stat.ephemeralOwner, data: opened.ok ? opened.value : null };
    } catch (err) {
      if (err instanceof NoNodeError) return null;
      throw err;
    }
  }));
  return read.filter((c): c is LiveContender => c !== null);
}

function sameUrl(a: string, b: string): boolean {
  try { return new URL(a).origin === new URL(b).origin; } catch { return a === b; }
}
