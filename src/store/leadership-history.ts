/**
 * Leadership history: the failover timeline, one persistent znode `/history/leadership` (under the
 * cluster's chroot) holding a JSON list of the last {@link MAX_LEADERSHIP_TERMS} terms, oldest first.
 * Each ready leader appends its own term; a term ends when a later one starts. The history is
 * informational: a write that loses a race (another replica wrote in between) is dropped, never retried
 * into a loop, and nothing reads it to make a decision.
 */
import type { ZooKeeperClient } from '../zk/client';
import { BadVersionError, NodeExistsError, NoNodeError } from '../zk/errors';
import { writeBounded } from './bounded-write';

export const LEADERSHIP_HISTORY_PATH = '/history/leadership';
/** 50 terms of a few hundred bytes each: far below ZooKeeper's 1 MB znode limit (jute.maxbuffer). */
export const MAX_LEADERSHIP_TERMS = 50;

/** One leadership term as the leader recorded it. Times are ISO-8601 strings. */
export interface LeadershipTermRecord {
  /** The fencing token of the term (latch sequence number). */
  epoch: number;
  replicaId: string;
  restUrl?: string;
  /** When the latch was granted. */
  grantedAt: string;
  /** When the leader finished recovery and published /leader/info. */
  readyAt: string;
  /** readyAt - grantedAt, in ms. */
  recoveryMs: number;
  /** Why this term started, when known (e.g. the first election, or which leader it replaced). */
  cause?: string;
}

/** A recorded term with its end: the next term's grantedAt (null while it is the latest). */
export interface LeadershipTermView extends LeadershipTermRecord { endedAt: string | null }

export class LeadershipHistoryStore {
  constructor(private readonly client: ZooKeeperClient, private readonly capacity = MAX_LEADERSHIP_TERMS) {}

  /** The recorded terms, oldest first, each with its end; [] before the first append. Reads one znode. */
  async read(): Promise<LeadershipTermView[]> {
    const { terms } = await this.load();
    return terms.map((t, i) => ({ ...t, endedAt: terms[i + 1]?.grantedAt ?? null }));
  }

  /**
   * Appends `record` (keeping the last `capacity` terms, ordered by epoch) with one version-conditional
   * setData, or a create for the first term. Fills `cause` from the previous term when not given.
   * @returns false when the write lost a race with another replica or the epoch is already recorded.
   * @throws ZkError on connection loss and other ZooKeeper errors (the caller logs and moves on).
   */
  async append(record: LeadershipTermRecord): Promise<boolean> {
    const { terms, version } = await this.load();
    if (terms.some((t) => t.epoch === record.epoch)) return false;
    const previous = terms.filter((t) => t.epoch < record.epoch).at(-1);
    const entry: LeadershipTermRecord = { ...record, cause: record.cause ?? causeOf(record, previous) };
    const next = [...terms, entry].sort((a, b) => a.epoch - b.epoch).slice(-this.capacity);
    const data = JSON.stringify(next);
    try {
      if (version === null) {
        await this.client.mkdirp('/history');
        await writeBounded(this.client, LEADERSHIP_HISTORY_PATH, data, { op: 'create' });
      } else {
        await writeBounded(this.client, LEADERSHIP_HISTORY_PATH, data, { op: 'set', version });
      }
      return true;
    } catch (err) {
      if (err instanceof BadVersionError || err instanceof NodeExistsError) return false;
      throw err;
    }
  }

  private async load(): Promise<{ terms: LeadershipTermRecord[]; version: number | null }> {
    try {
      const { data, stat } = await this.client.get(LEADERSHIP_HISTORY_PATH);
      return { terms: parseTerms(data.toString('utf8')), version: stat.version };
    } catch (err) {
      if (err instanceof NoNodeError) return { terms: [], version: null };
      throw err;
    }
  }
}

/** The stored list, dropping anything that is not a term record (an unreadable node reads as empty). */
function parseTerms(text: string): LeadershipTermRecord[] {
  let raw: unknown;
  try { raw = JSON.parse(text); } catch { return []; }
  if (!Array.isArray(raw)) return [];
  return raw.filter((t): t is LeadershipTermRecord => typeof t === 'object' && t !== null &&
    Number.isInteger((t as LeadershipTermRecord).epoch) && typeof (t as LeadershipTermRecord).replicaId === 'string');
}

function causeOf(record: LeadershipTermRecord, previous: LeadershipTermRecord | undefined): string {
  if (!previous) return 'first recorded election';
  if (previous.replicaId === record.replicaId) return `re-elected after losing the latch of epoch ${previous.epoch}`;
  return `took over from ${previous.replicaId} (epoch ${previous.epoch})`;
}

/** The record a replica appends once it is the ready leader of `term` (times in epoch-ms). */
export function termRecord(term: { epoch: number; grantedAt: number }, replicaId: string, restUrl: string, readyAtMs: number): LeadershipTermRecord {
  return {
    epoch: term.epoch, replicaId, restUrl,
    grantedAt: new Date(term.grantedAt).toISOString(), readyAt: new Date(readyAtMs).toISOString(),
    recoveryMs: Math.max(0, readyAtMs - term.grantedAt),
  };
}
