/** What `/leader/info` holds: written by the leader once recovered, read by standbys and TaskManagers. */
export { LEADER_INFO_PATH } from '../zk/layout';

export interface LeaderInfo {
  replicaId: string;
  restUrl: string;
  rpcUrl: string;
  /** Fencing token of the leader's term (latch sequence number). */
  epoch: number;
  /**
   * ZooKeeper session (hex) that owns the ephemeral node; readers trust the node only if its
   * ephemeralOwner equals it. Not a fencing token. Stored as JSON field `sessionId` (the on-disk
   * format TaskManagers and the CLI read); only the TypeScript name says "zk".
   */
  zkSessionId: string;
  /** ISO-8601 instant the term was granted. */
  electedAt: string;
  /** ISO-8601 instant the leader finished recovery and published this node. */
  readyAt: string;
}

/** The stored (and `GET /leader`) JSON shape: as `LeaderInfo`, with `sessionId` for `zkSessionId`. */
export interface LeaderInfoJson extends Omit<LeaderInfo, 'zkSessionId'> { sessionId: string }

/** `info` in its stored JSON shape, fields in the order they were always written. */
export function leaderInfoJson(info: LeaderInfo): LeaderInfoJson {
  const { replicaId, restUrl, rpcUrl, epoch, zkSessionId, electedAt, readyAt } = info;
  return { replicaId, restUrl, rpcUrl, epoch, sessionId: zkSessionId, electedAt, readyAt };
}

/** The bytes written to `/leader/info`. */
export function serializeLeaderInfo(info: LeaderInfo): string {
  return JSON.stringify(leaderInfoJson(info));
}

/** Parses the stored JSON form; null if unreadable or missing replicaId, restUrl or epoch. */
export function parseLeaderInfo(data: Buffer): LeaderInfo | null {
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<LeaderInfoJson>;
    if (typeof v.replicaId !== 'string' || typeof v.restUrl !== 'string' || typeof v.epoch !== 'number') return null;
    const { sessionId, ...rest } = v;
    return { ...rest, zkSessionId: sessionId } as LeaderInfo;
  } catch {
    return null;
  }
}
