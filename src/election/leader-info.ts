/** What `/leader/info` holds: written by the leader once recovered, read by standbys and TaskManagers. */
export { LEADER_INFO_PATH } from '../zk/layout';

export interface LeaderInfo {
  replicaId: string;
  restUrl: string;
  rpcUrl: string;
  epoch: number;
  sessionId: string;
  electedAt: string;
  readyAt: string;
}

export function parseLeaderInfo(data: Buffer): LeaderInfo | null {
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<LeaderInfo>;
    if (typeof v.replicaId !== 'string' || typeof v.restUrl !== 'string' || typeof v.epoch !== 'number') return null;
    return v as LeaderInfo;
  } catch {
    return null;
  }
}
